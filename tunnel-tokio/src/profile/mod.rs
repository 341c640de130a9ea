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
//! - [`AcquisitionLink`]: the agent's data acquisition channel in a
//!   session: opened once, carrying samples once accepted, reset on a
//!   broken message, closed on a stop;
//! - [`failure`]: one table from every failure to the outcome on the wire,
//!   the API's error and the gateway's exception.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use bytes::Bytes;
//! use outpost_modbus_core::{Expectation, Request, UnitId};
//! use outpost_tunnel_proto::ChannelId;
//! use outpost_tunnel_tokio::binding::{ChannelMetadata, Outcome, Principal, Role};
//! use outpost_tunnel_tokio::profile::{Action, Requester, RequesterConfig, Submit};
//!
//! let now = Instant::now();
//! let mut hub = Requester::new(RequesterConfig::default());
//! hub.session_up(now);
//! let pdu = [0x03, 0x00, 0x00, 0x00, 0x01];
//! let id = hub.submit(now, Submit {
//!     target: "plc-1".into(),
//!     metadata: ChannelMetadata { role: Role::new("operator")?, principal: Principal::default() },
//!     unit: UnitId(1),
//!     pdu: Bytes::copy_from_slice(&pdu),
//!     expect: Expectation::new(&Request::decode(&pdu)?),
//!     changes: false,
//!     deadline: now + Duration::from_secs(2),
//! });
//! // The first request opens the channel; the session names it, the agent accepts it.
//! let Some(Action::Open { token, .. }) = hub.poll_action() else { unreachable!() };
//! let channel = ChannelId::new(2).unwrap();
//! hub.handle_opened(now, token, Ok(channel));
//! hub.handle_accepted(now, channel);
//! // Now the request goes out, and the agent's outcome ends it.
//! let Some(Action::Send { correlation, .. }) = hub.poll_action() else { unreachable!() };
//! let mut outcome = Vec::new();
//! Outcome::Answered(&[0x03, 0x02, 0x00, 0x2A]).encode(&mut outcome);
//! hub.handle_message(now, channel, correlation, Bytes::from(outcome));
//! let (done, answer) = hub.poll_done().unwrap();
//! assert_eq!((done, answer.as_deref()), (id, Ok(&[0x03, 0x02, 0x00, 0x2A][..])));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! A CI check (`.ci/profile-imports`) holds this module's imports to the
//! standard library's collections and time, `bytes`, the two sans-IO
//! crates and the pure binding.

mod acquisition_link;
mod admission;
mod device_queue;
pub mod failure;
mod requester;

pub use acquisition_link::{AcquisitionLink, LinkAction, LinkEvent};
pub use admission::{Admission, Admitted, ChannelRefusal, Grant, Refusal, Verdict};
pub use device_queue::{DeviceQueue, QueueFull, Ticket};
pub use failure::Failure;
pub use requester::{Action, OpenToken, RequestId, Requester, RequesterConfig, RequesterStats, Submit};

#[cfg(test)]
mod tests;
