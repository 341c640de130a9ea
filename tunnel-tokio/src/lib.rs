//! Tokio adapters of Outpost: TLS, the agent and the hub, a Modbus TCP
//! gateway, and an async Modbus client and server over
//! `outpost-modbus-core`.
//!
//! The protocol lives in the two sans-IO crates and in this crate's
//! [`profile`] module (the Modbus profile's state machines, with no runtime
//! and no clock); the rest of this crate moves bytes and time. One task per
//! connection drives a `tunnel-proto` session over rustls, with bounded
//! queues both ways; every task has an owner that ends it.
//!
//! | module | holds |
//! |---|---|
//! | [`agent`] | [`agent::Agent`]: dials the hub, listens on nothing, serves devices under its policy, polls scan groups and reports by exception (`outpost-acquisition`), with a spool on disk (feature `spool`) |
//! | [`hub`] | [`hub::Hub`]: accepts agents, the Rust API ([`hub::RemoteClient`]), Modbus TCP and Modbus/TCP Security [`hub::Gateway`]s (which may answer reads from scanned values), the agents' latest values and subscriptions ([`hub::Hub::subscribe`]) |
//! | [`modbus`] | async [`modbus::Client`] (TCP, RTU over TCP) and [`modbus::Server`]; the [`modbus::Requests`] trait |
//! | [`metrics`] | counters and histograms through the `metrics` facade, named and labelled in one table |
//! | [`audit`] | the audit trail's events and their stable fields |
//! | `config` | `hub.toml` and `agent.toml` as library types, checked with every problem named (feature `config`) |
//! | [`binding`] | the Modbus application profile of the tunnel (`modbus/1`), pure encode and decode |
//! | [`profile`] | the profile's rules as sans-IO machines: the hub's [`profile::Requester`], the agent's [`profile::Admission`] and [`profile::DeviceQueue`], one failure table |
//! | [`secrets`] | files that hold secrets are readable by their owner only |
//! | [`security`] | Modbus/TCP Security: TLS settings, the role from a client certificate, the [`security::SecureServer`] and its [`security::Authorize`] hook |
//! | [`tls`] | rustls configurations, PEM loading, the agent id from a certificate, channel binding |
//!
//! The whole system in one process: `cargo run -p outpost-examples --example demo`.
//!
//! # Example: a Modbus TCP server and client on loopback
//!
//! ```
//! use std::sync::{Arc, Mutex};
//! use outpost_modbus_core::server::DataModel;
//! use outpost_modbus_core::{ExceptionCode, RegisterRange, UnitId};
//! use outpost_tunnel_tokio::modbus::{Client, Requests, Server};
//!
//! struct Meter([u16; 4]);
//! impl DataModel for Meter {
//!     fn read_input_registers(&mut self, r: RegisterRange, out: &mut [u16]) -> Result<(), ExceptionCode> {
//!         let values = self.0.get(r.start() as usize..=r.last() as usize).ok_or(ExceptionCode::IllegalDataAddress)?;
//!         out.copy_from_slice(values);
//!         Ok(())
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let address = listener.local_addr()?;
//! tokio::spawn(Server::builder().serve(listener, Arc::new(Mutex::new(Meter([230, 231, 229, 50])))));
//!
//! let meter = Client::tcp(address.to_string()).build();
//! assert_eq!(meter.read_input_registers(UnitId(1), 0, 3).await?, [230, 231, 229]);
//! # Ok(()) }
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

/// The sans-IO Modbus codec (`outpost-modbus-core`), re-exported so an
/// embedder depends on this crate alone.
pub use outpost_modbus_core as modbus_core;
/// The sans-IO tunnel protocol (`outpost-tunnel-proto`), re-exported.
pub use outpost_tunnel_proto as tunnel_proto;
/// An agent's id and secret, which every agent and hub program names.
pub use outpost_tunnel_proto::{AgentId, Secret};

pub mod agent;
pub mod audit;
pub mod binding;
#[cfg(feature = "config")]
pub mod config;
mod counted;
mod driver;
#[cfg(test)]
mod held;
pub mod hub;
mod in_flight;
pub mod metrics;
pub mod modbus;
pub mod profile;
pub mod secrets;
pub mod security;
mod tasks;
pub mod tls;
