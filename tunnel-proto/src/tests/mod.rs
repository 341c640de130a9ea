//! Scenario tests on the in-memory `Pair` harness.

mod util;

mod channels;
mod flow;
mod handshake;
mod liveness;
mod malformed;
mod properties;
mod vectors;
