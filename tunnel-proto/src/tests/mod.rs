//! Scenario tests on the in-memory `Pair` harness.

pub(crate) mod util;

mod channels;
mod flow;
mod handshake;
mod liveness;
mod malformed;
mod properties;
mod session_api;
mod vectors;

/// Drivers move sessions into tasks and share stores across threads.
#[test]
fn sessions_and_stores_are_send_and_stores_sync() {
    fn send<T: Send>() {}
    fn sync<T: Sync>() {}
    send::<crate::Session>();
    send::<crate::Event>();
    sync::<crate::MemoryCredentials>();
    send::<crate::SessionError>();
}
