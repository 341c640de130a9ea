//! Tokio adapters of Outpost: TLS, the agent and hub drivers, Modbus gateways,
//! and an async Modbus client and server over `outpost-modbus-core`.
//!
//! Built so far: [`binding`], the Modbus application profile of the tunnel
//! (pure encode and decode, no IO), and [`modbus`], an async Modbus client
//! and server. The tunnel drivers, agent, hub and gateways follow.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod agent;
pub mod binding;
mod driver;
pub mod hub;
pub mod modbus;
pub mod tls;
