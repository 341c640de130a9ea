//! The sans-IO reverse-tunnel protocol of Outpost: an agent on a trusted
//! network dials out one authenticated, encrypted connection to a hub, and
//! the hub reaches the agent's devices over multiplexed channels on it.
//!
//! This crate is being built; it holds no public API yet.

#![forbid(unsafe_code)]
#![warn(missing_docs)]
