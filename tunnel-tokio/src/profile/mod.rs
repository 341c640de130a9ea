//! The Modbus profile (PROTOCOL.md section 12) as sans-IO state machines:
//! no tokio, no sockets, no clock. Time is an argument; what to send and
//! what finished are pulled out. The hub's and the agent's tokio code only
//! move bytes and time into and out of these machines.
//!
//! - [`Requester`]: the hub's side for one agent: shared channels per
//!   device and role, opened once and closed when idle, correlation ids,
//!   deadlines, a read retried once, a write never re-sent;
//! - [`Admission`]: the agent's side for one session: channels to known
//!   devices, request decoding, the retried-write rule, duplicate
//!   correlation ids, units and the local policy;
//! - [`DeviceQueue`]: the agent's queue in front of a device: requests wait
//!   for a slot within their budget, BUSY only past a bound;
//! - [`failure`]: one table from every failure to the outcome on the wire,
//!   the API's error and the gateway's exception.
//!
//! A CI check (`.ci/profile-imports`) holds this module's imports to the
//! standard library's collections and time, `bytes`, the two sans-IO
//! crates and the pure binding.

mod admission;
mod device_queue;
pub mod failure;
mod requester;

pub use admission::{Admission, Admitted, ChannelRefusal, Grant, Refusal, Verdict};
pub use device_queue::{DeviceQueue, QueueFull, Ticket};
pub use failure::Failure;
pub use requester::{Action, OpenToken, RequestId, Requester, RequesterConfig, RequesterStats, Submit};

#[cfg(test)]
mod tests;
