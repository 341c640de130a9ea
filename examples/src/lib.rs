//! Runnable tours of Outpost: the `examples/` folder of this package holds
//! the all-in-one demo and tours of the codec and the tunnel protocol. The
//! programs a deployment runs are the `outpost` command (package
//! `outpost-cli`).

#![forbid(unsafe_code)]
