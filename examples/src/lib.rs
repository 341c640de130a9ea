//! Runnable programs for Outpost: see the `examples/` folder of this package.

#![forbid(unsafe_code)]
