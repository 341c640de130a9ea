//! Runnable programs for Outpost: the `examples/` folder of this package
//! holds tours and the all-in-one demo; `src/bin/` holds the programs a
//! deployment runs (`outpost-hub`, `outpost-agent`), a Modbus device
//! simulator (`modbus-sim`) and a certificate maker (`outpost-certs`),
//! configured with TOML files (samples in `config/`).

#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};

/// Reads and parses a TOML configuration file.
pub fn load<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// `path` taken relative to the folder of the configuration file `config`.
pub fn relative(config: &Path, path: &Path) -> PathBuf {
    match config.parent() {
        Some(dir) if path.is_relative() => dir.join(path),
        _ => path.to_path_buf(),
    }
}

/// The first command-line argument: the configuration file.
pub fn config_arg(program: &str) -> PathBuf {
    match std::env::args_os().nth(1) {
        Some(path) => PathBuf::from(path),
        None => {
            eprintln!("usage: {program} <config.toml>");
            std::process::exit(2);
        }
    }
}

/// Logs to stderr; `RUST_LOG` filters (default `info`).
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

/// Decodes hexadecimal text.
pub fn hex(s: &str) -> Option<Vec<u8>> {
    let s = s.trim();
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}
