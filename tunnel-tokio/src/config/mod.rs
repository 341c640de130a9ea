//! The hub's and the agent's configuration files (TOML) as library types
//! (feature `config`, on by default): a program embedding an agent reads
//! the same `agent.toml` as the `outpost` command, and gets the same
//! errors, each naming the file, the line and the key.
//!
//! - [`HubConfig`]: `hub.toml` (listener, TLS, credentials, limits, plain
//!   and Modbus/TCP Security gateways);
//! - [`AgentConfig`]: `agent.toml` (identity, hub, TLS, backoff, devices,
//!   access policy, scan groups and where their samples are kept).
//!
//! Paths in a file are relative to the file's folder. [`HubConfig::prepare`]
//! and [`AgentConfig::prepare`] load everything a start would (certificates,
//! keys and their modes, CAs, CRLs, secrets, credentials) and list every
//! problem, not just the first.

mod agent;
mod hub;

use std::path::{Path, PathBuf};

pub use agent::{
    AcquisitionConfig, AgentConfig, AgentTlsFiles, Backoff, DeviceConfig, PointConfig, PointKind, ScanConfig,
    SerialLine, TableName, WordOrderName,
};
pub use hub::{GatewayConfig, HubConfig, HubLimits, HubTlsFiles, PreparedHub, RouteConfig, TargetConfig};

/// Why a configuration file cannot be used.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        source: std::io::Error,
    },
    /// The file is not valid TOML, or not what the configuration expects.
    #[error("{path}:{line}:{column}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line of the problem.
        line: usize,
        /// 1-based column of the problem.
        column: usize,
        /// What was expected, in the parser's words, on one line.
        message: String,
    },
    /// A value parses but cannot be used (a file that does not load, an
    /// id that is not valid, a route to nowhere); every one found is listed.
    #[error("{}", Problems(.problems))]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Each problem: the key and what is wrong with it.
        problems: Vec<Problem>,
    },
}

/// One problem in a configuration: the key it is about and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The file.
    pub path: PathBuf,
    /// The key, as a TOML path (`tls.cert`, `device[1].units`).
    pub key: String,
    /// What is wrong, and what is expected.
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}: {}", self.path.display(), self.key, self.message)
    }
}

struct Problems<'a>(&'a [Problem]);

impl std::fmt::Display for Problems<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

impl ConfigError {
    /// Every problem, one per line (a parse or read error is one).
    pub fn lines(&self) -> Vec<String> {
        match self {
            ConfigError::Invalid { problems, .. } => problems.iter().map(ToString::to_string).collect(),
            other => vec![other.to_string()],
        }
    }
}

/// Collects problems while a configuration is checked.
#[derive(Debug)]
pub(crate) struct Findings {
    path: PathBuf,
    problems: Vec<Problem>,
}

impl Findings {
    pub(crate) fn new(path: &Path) -> Self {
        Findings {
            path: path.to_path_buf(),
            problems: Vec::new(),
        }
    }

    /// Records a problem with `key`.
    pub(crate) fn add(&mut self, key: impl Into<String>, message: impl std::fmt::Display) {
        self.problems.push(Problem {
            path: self.path.clone(),
            key: key.into(),
            message: message.to_string(),
        });
    }

    /// `Ok(value)`, or the problem recorded and `None`.
    pub(crate) fn take<T, E: std::fmt::Display>(&mut self, key: impl Into<String>, result: Result<T, E>) -> Option<T> {
        match result {
            Ok(v) => Some(v),
            Err(e) => {
                self.add(key, e);
                None
            }
        }
    }

    pub(crate) fn finish<T>(self, value: Option<T>) -> Result<T, ConfigError> {
        match value {
            Some(v) if self.problems.is_empty() => Ok(v),
            _ => Err(ConfigError::Invalid {
                path: self.path,
                problems: self.problems,
            }),
        }
    }
}

/// `[session]` of either file: the tunnel session's settings (each
/// optional; defaults of `outpost-tunnel-proto`).
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct SessionSettings {
    /// A PING after this many seconds without traffic.
    pub keepalive_interval_s: Option<u64>,
    /// The session ends when nothing arrives for this many seconds.
    pub peer_timeout_s: Option<u64>,
    /// Channels open at once.
    pub max_channels: Option<u32>,
    /// Bytes a channel may have in flight.
    pub channel_window: Option<u32>,
    /// Bytes the whole session may have in flight.
    pub session_window: Option<u32>,
}

impl SessionSettings {
    /// The tunnel configuration these settings make, problems recorded.
    pub(crate) fn build(&self, f: &mut Findings) -> outpost_tunnel_proto::Config {
        let mut config = outpost_tunnel_proto::Config::default();
        if let Some(s) = self.keepalive_interval_s {
            config.keepalive_interval(std::time::Duration::from_secs(s));
        }
        if let Some(s) = self.peer_timeout_s {
            config.peer_timeout(std::time::Duration::from_secs(s));
        }
        if let Some(n) = self.max_channels {
            f.take("session.max_channels", config.max_channels(n).map(|_| ()));
        }
        if let Some(n) = self.channel_window {
            f.take("session.channel_window", config.channel_window(n).map(|_| ()));
        }
        if let Some(n) = self.session_window {
            f.take("session.session_window", config.session_window(n).map(|_| ()));
        }
        config
    }
}

/// Whether the first certificate in `path` is valid now: a problem that
/// names its dates otherwise (an expired certificate is the most common
/// reason a deployment stops working one day).
pub(crate) fn check_dates(f: &mut Findings, key: &str, path: &Path) {
    let Ok(certs) = crate::tls::load_certs(path) else {
        return; // Reported where the file is loaded.
    };
    let Some(cert) = certs.first() else {
        return;
    };
    let Ok((_, cert)) =
        <x509_parser::certificate::X509Certificate<'_> as x509_parser::prelude::FromDer<'_, _>>::from_der(
            cert.as_ref(),
        )
    else {
        return;
    };
    let validity = cert.validity();
    let now = x509_parser::time::ASN1Time::now();
    if now > validity.not_after {
        f.add(
            key,
            format!("{}: the certificate expired on {}", path.display(), validity.not_after),
        );
    } else if now < validity.not_before {
        f.add(
            key,
            format!(
                "{}: the certificate is not valid before {}",
                path.display(),
                validity.not_before
            ),
        );
    }
}

/// Reads and parses a TOML file into `T`.
pub(crate) fn read<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse(path, &text)
}

/// Parses TOML text (from `path`) into `T`.
pub(crate) fn parse<T: serde::de::DeserializeOwned>(path: &Path, text: &str) -> Result<T, ConfigError> {
    toml::from_str(text).map_err(|e| {
        let offset = e.span().map_or(0, |s| s.start).min(text.len());
        let before = &text[..offset];
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        ConfigError::Parse {
            path: path.to_path_buf(),
            line,
            column,
            message: e.message().replace('\n', " ").trim().to_owned(),
        }
    })
}

/// `path` taken relative to the folder of the configuration file `config`.
pub(crate) fn relative(config: &Path, path: &Path) -> PathBuf {
    match config.parent() {
        Some(dir) if path.is_relative() => dir.join(path),
        _ => path.to_path_buf(),
    }
}

#[cfg(test)]
mod tests;
