//! Async Modbus over tokio, on the sans-IO `outpost-modbus-core` codec: a
//! [`Client`] (Modbus TCP with many transactions in flight, or RTU over TCP)
//! and a [`Server`] over a [`DataModel`](outpost_modbus_core::server::DataModel).
//!
//! Serial RTU on a local port is not offered: it needs a serial-port crate
//! with OS bindings, and RTU through a serial-to-TCP gateway
//! ([`Client::rtu_over_tcp`]) covers the plants this crate serves.

mod client;
mod connection;
mod error;
mod requests;
mod server;

pub use client::{Client, ClientBuilder, MAX_IN_FLIGHT};
pub use error::{ClientError, Sent};
pub use requests::{Answer, Requests};
pub use server::{Server, ServerBuilder};
