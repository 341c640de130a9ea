//! Criterion benchmarks of Outpost: see `benches/`.

#![forbid(unsafe_code)]
