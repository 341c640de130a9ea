//! Async Modbus over tokio, on the sans-IO `outpost-modbus-core` codec: a
//! [`Client`] (Modbus TCP with many transactions in flight, or RTU over TCP)
//! and a [`Server`] over a [`DataModel`](outpost_modbus_core::server::DataModel).
//!
//! RTU on a local serial port (`Client::rtu_serial`) comes with the optional
//! feature `serial` (tokio-serial, built without libudev).

mod client;
mod connection;
pub(crate) mod error;
mod link;
mod requests;
pub(crate) mod server;

pub use client::{Client, ClientBuilder, MAX_IN_FLIGHT};
pub use error::{ClientError, Sent};
pub use requests::{Answer, Requests};
pub use server::{Server, ServerBuilder};
