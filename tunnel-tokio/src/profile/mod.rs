//! The Modbus profile (PROTOCOL.md section 12) as sans-IO state machines:
//! no tokio, no sockets, no clock. Time is an argument; what to send and
//! what finished are pulled out. The hub's and the agent's tokio code only
//! move bytes and time into and out of these machines.
//!
//! - [`Requester`]: the hub's side for one agent: shared channels per
//!   device and role, opened once and closed when idle, correlation ids,
//!   deadlines, a read retried once, a write never re-sent;
//! - [`failure`]: one table from every failure to the outcome on the wire,
//!   the API's error and the gateway's exception.
//!
//! A CI check (`.ci/profile-imports`) holds this module's imports to the
//! standard library's collections and time, `bytes`, the two sans-IO
//! crates and the pure binding.

pub mod failure;
mod requester;

pub use failure::Failure;
pub use requester::{Action, OpenToken, RequestId, Requester, RequesterConfig, RequesterStats, Submit};

#[cfg(test)]
mod tests;
