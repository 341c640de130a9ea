//! Tokio adapters of Outpost: TLS, the agent and hub drivers, Modbus gateways,
//! and an async Modbus client and server over `outpost-modbus-core`.
//!
//! This crate is being built; it holds no public API yet.

#![forbid(unsafe_code)]
#![warn(missing_docs)]
