//! The sans-IO reverse-tunnel protocol of Outpost.
//!
//! An **agent** on a trusted network dials out one connection (TLS, done by
//! the caller) to a **hub**; after a mutual, channel-bound handshake either
//! side opens multiplexed **channels** over it: message channels for
//! request/response traffic, stream channels for forwarded byte streams.
//! The wire format is specified in `PROTOCOL.md` beside this crate.
//!
//! A [`Session`] never touches a socket or a clock: bytes go in with
//! [`Session::handle_input`], come out of [`Session::poll_transmit`]; time
//! comes in with [`Session::handle_timeout`] and the next deadline out of
//! [`Session::poll_timeout`]; what happened comes out of
//! [`Session::poll_event`]. A peer's fault closes the session and shows as
//! [`Event::Closed`]; a caller's mistake is an `Err` from the call.
//!
//! # Example
//!
//! Two sessions back to back in memory, as a driver would run them over a
//! TLS connection:
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Instant;
//! use outpost_tunnel_proto::*;
//!
//! let id = AgentId::new("plant-7").unwrap();
//! let secret = Secret::new(b"correct horse battery staple!!").unwrap();
//! let mut store = MemoryCredentials::new();
//! store.insert(id.clone(), secret.clone());
//!
//! // Both ends export the same value from their TLS connection.
//! let binding = ChannelBinding::new(&[7; 32]).unwrap();
//! let now = Instant::now();
//! let mut agent = Session::agent(
//!     Config::default(),
//!     AgentIdentity::new(id, secret),
//!     Start::new(binding.clone(), Random([1; 32])),
//!     now,
//! );
//! let mut hub = Session::hub(Config::default(), Arc::new(store), Start::new(binding, Random([2; 32])), now);
//!
//! // Move bytes both ways until neither side has anything to say.
//! fn pump(a: &mut Session, b: &mut Session, now: Instant) {
//!     let mut buf = Vec::new();
//!     loop {
//!         buf.clear();
//!         if a.poll_transmit(now, &mut buf) > 0 {
//!             b.handle_input(now, &buf);
//!         } else if b.poll_transmit(now, &mut buf) > 0 {
//!             a.handle_input(now, &buf);
//!         } else {
//!             break;
//!         }
//!     }
//! }
//!
//! pump(&mut agent, &mut hub, now);
//! assert!(agent.is_established() && hub.is_established());
//! assert_eq!(hub.agent_id().unwrap().as_str(), "plant-7");
//!
//! // The hub asks the agent for a message channel to a device.
//! let ch = hub.open_channel(ChannelKind::Message, b"plc-1", b"role=operator").unwrap();
//! pump(&mut agent, &mut hub, now);
//! while let Some(event) = agent.poll_event() {
//!     if let Event::ChannelRequested { channel, target, .. } = event {
//!         assert_eq!(&target[..], b"plc-1");
//!         agent.accept(channel).unwrap();
//!     }
//! }
//! pump(&mut agent, &mut hub, now);
//!
//! hub.send_message(ch, 1, b"read 40001").unwrap();
//! pump(&mut agent, &mut hub, now);
//! let request = agent.recv_message(ch).unwrap().unwrap();
//! agent.send_message(ch, request.correlation, b"42").unwrap();
//! pump(&mut agent, &mut hub, now);
//! let answer = hub.recv_message(ch).unwrap().unwrap();
//! assert_eq!((answer.correlation, &answer.payload[..]), (1, &b"42"[..]));
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod code;
mod config;
mod credentials;
mod error;
pub mod frame;
mod id;
mod session;

#[cfg(test)]
mod tests;

/// Hooks for the fuzz targets in `fuzz/`; not part of the API.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing {
    use crate::Session;

    /// Panics if the session's bookkeeping (windows, queues, channel
    /// states, timers) disagrees with itself.
    pub fn check_invariants(session: &Session) {
        session.check_invariants();
    }

    /// Bytes of memory the session holds for received data.
    pub fn receive_memory(session: &Session) -> usize {
        session.receive_memory()
    }
}

pub use code::ErrorCode;
pub use config::{Config, ConfigError, PROTOCOL_VERSION};
pub use credentials::{Credential, CredentialStore, MemoryCredentials};
pub use error::{ChannelError, OpenError, ReadError, Rejection, SendError, SessionError, Violation};
pub use frame::FrameError;
pub use id::{AgentId, ChannelBinding, ChannelId, ChannelKind, InvalidValue, Random, Secret, SessionId};
pub use session::{AgentIdentity, Event, Message, Role, Session, Start, Stats};
