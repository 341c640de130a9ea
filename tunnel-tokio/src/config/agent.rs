//! `agent.toml`.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use outpost_modbus_core::access::Policy;
use outpost_modbus_core::UnitId;
use outpost_tunnel_proto::{AgentId, Secret};

use super::{check_dates, read, relative, ConfigError, Findings, SessionSettings};
use crate::agent::{Agent, AgentBuilder, Device};
use crate::tls::AgentTls;

/// The agent's configuration file.
///
/// ```toml
/// id = "plant-7"
/// secret_file = "certs/plant-7.secret"
/// hub = "hub.example:7443"
/// hub_name = "hub.example"
///
/// [tls]
/// cert = "certs/plant-7.pem"
/// key = "certs/plant-7.key"
/// hub_ca = "certs/hub-ca.pem"
///
/// [[device]]
/// name = "plc-1"
/// tcp = "192.0.2.10:502"
/// units = [1]
///
/// [policy.roles.scada]
/// units = [1]
/// functions = ["read"]
/// holding_registers = { read = [[0, 99]] }
/// ```
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct AgentConfig {
    /// The agent's id (lowercase; its certificate's DNS name).
    pub id: String,
    /// A file holding the agent's secret in hexadecimal (owner-only).
    pub secret_file: PathBuf,
    /// The hub's address, `host:port`.
    pub hub: String,
    /// The name the hub's certificate carries.
    pub hub_name: String,
    /// The agent's certificate and the hub's CA.
    pub tls: AgentTlsFiles,
    /// Reconnection backoff.
    #[serde(default)]
    pub backoff: Backoff,
    /// How long one connection attempt may take, in ms (10 000).
    pub connect_timeout_ms: Option<u64>,
    /// The local address connections to the hub come from (any, when
    /// absent): on a host with several networks, the one toward the hub.
    pub local_address: Option<std::net::IpAddr>,
    /// The tunnel session's settings.
    #[serde(default)]
    pub session: SessionSettings,
    /// The devices the agent serves.
    #[serde(default)]
    pub device: Vec<DeviceConfig>,
    /// The access policy: deny by default.
    #[serde(default)]
    pub policy: Policy,
    /// Where the `outpost` command serves Prometheus metrics (`GET /metrics`);
    /// off when absent. The agent listens on nothing else: keep it on
    /// loopback, or leave it off.
    pub metrics: Option<std::net::SocketAddr>,
    /// The file this was read from.
    #[serde(skip)]
    pub path: PathBuf,
}

/// `[tls]` of `agent.toml`.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct AgentTlsFiles {
    /// The agent's certificate chain (PEM).
    pub cert: PathBuf,
    /// Its private key (PEM, owner-only).
    pub key: PathBuf,
    /// The CA the hub's certificate chains to.
    pub hub_ca: PathBuf,
}

/// `[backoff]` of `agent.toml`: exponential with full jitter.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Backoff {
    /// The first wait, in ms.
    pub initial_ms: Option<u64>,
    /// The longest wait, in ms.
    pub max_ms: Option<u64>,
}

/// A serial line (`serial = { path = "/dev/ttyUSB0", baud = 19200 }`).
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct SerialLine {
    /// The port.
    pub path: String,
    /// Bits per second (8E1).
    pub baud: u32,
}

/// A `[[device]]` of `agent.toml`: exactly one of `tcp`, `rtu_over_tcp`, `serial`.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct DeviceConfig {
    /// The name the hub addresses it by.
    pub name: String,
    /// A Modbus TCP device, `host:port`.
    pub tcp: Option<String>,
    /// RTU devices behind a serial-to-TCP gateway, `host:port`.
    pub rtu_over_tcp: Option<String>,
    /// RTU devices on a local serial port (feature `serial`).
    pub serial: Option<SerialLine>,
    /// Unit ids the hub may address.
    pub units: Vec<u8>,
    /// Requests in flight at once (1).
    pub max_in_flight: Option<usize>,
    /// Requests that may wait (1024).
    pub queue: Option<usize>,
    /// How long the device has to answer, in ms.
    pub timeout_ms: Option<u64>,
}

impl AgentConfig {
    /// Reads `path`.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, ConfigError> {
        let path = path.as_ref();
        let mut config: AgentConfig = read(path)?;
        config.path = path.to_path_buf();
        Ok(config)
    }

    fn at(&self, p: &Path) -> PathBuf {
        relative(&self.path, p)
    }

    /// Loads every file the agent needs and checks every value; all the
    /// problems found, or the agent's settings.
    pub fn prepare(&self) -> Result<AgentBuilder, ConfigError> {
        let mut f = Findings::new(&self.path);
        let id = f.take("id", check_id(&self.id));
        if !self
            .hub
            .rsplit_once(':')
            .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok())
        {
            f.add(
                "hub",
                format!("{:?} is not host:port (for example \"hub.example:7443\")", self.hub),
            );
        }
        let tls = f.take(
            "tls",
            AgentTls::from_pem_files(
                &self.at(&self.tls.cert),
                &self.at(&self.tls.key),
                &self.at(&self.tls.hub_ca),
                &self.hub_name,
            ),
        );
        let secret = f.take("secret_file", self.secret());
        check_dates(&mut f, "tls.cert", &self.at(&self.tls.cert));
        let session = self.session.build(&mut f);
        let mut builder = Agent::builder()
            .hub(self.hub.clone())
            .policy(self.policy.clone())
            .session_config(session);
        if self.backoff.initial_ms.is_some() || self.backoff.max_ms.is_some() {
            let initial = self.backoff.initial_ms.unwrap_or(500);
            let max = self.backoff.max_ms.unwrap_or(60_000);
            if initial > max {
                f.add("backoff", "initial_ms is larger than max_ms");
            }
            builder = builder.backoff(Duration::from_millis(initial), Duration::from_millis(max));
        }
        if let Some(ms) = self.connect_timeout_ms {
            builder = builder.connect_timeout(Duration::from_millis(ms));
        }
        if let Some(address) = self.local_address {
            builder = builder.local_address(address);
        }
        let mut names = HashSet::new();
        for (i, d) in self.device.iter().enumerate() {
            let key = format!("device[{i}]");
            if !names.insert(d.name.as_str()) {
                f.add(format!("{key}.name"), format!("{:?} is used twice", d.name));
            }
            if d.units.is_empty() {
                f.add(
                    format!("{key}.units"),
                    "empty: list the unit ids the hub may address (for example units = [1])",
                );
            }
            if let Some(device) = f.take(key, device(d)) {
                builder = builder.device(device);
            }
        }
        let ready = match (id, tls, secret) {
            (Some(id), Some(tls), Some(secret)) => Some(builder.tls(tls).identity(id, secret)),
            _ => None,
        };
        f.finish(ready)
    }

    fn secret(&self) -> Result<Secret, String> {
        let path = self.at(&self.secret_file);
        let text = crate::secrets::read_private(&path).map_err(|e| e.to_string())?;
        Secret::from_hex(&text).map_err(|e| format!("{}: {e}", path.display()))
    }
}

fn check_id(id: &str) -> Result<AgentId, String> {
    if id.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(format!(
            "{id:?}: agent ids are DNS names in lowercase (the certificate's name)"
        ));
    }
    AgentId::new(id).map_err(|e| format!("{id:?} is not a valid agent id ({e}): letters, digits, '-' and '.'"))
}

fn device(d: &DeviceConfig) -> Result<Device, String> {
    let mut device = match (&d.tcp, &d.rtu_over_tcp, &d.serial) {
        (Some(address), None, None) => Device::tcp(&d.name, address),
        (None, Some(address), None) => Device::rtu_over_tcp(&d.name, address),
        #[cfg(feature = "serial")]
        (None, None, Some(line)) => Device::rtu_serial(&d.name, &line.path, line.baud),
        #[cfg(not(feature = "serial"))]
        (None, None, Some(_)) => {
            return Err("serial devices need a build with feature `serial`".into());
        }
        _ => return Err("give exactly one of tcp, rtu_over_tcp or serial".into()),
    };
    device = device.units(d.units.iter().copied().map(UnitId));
    if let Some(n) = d.max_in_flight {
        device = device.max_in_flight(n);
    }
    if let Some(n) = d.queue {
        device = device.queue(n);
    }
    if let Some(ms) = d.timeout_ms {
        device = device.timeout(Duration::from_millis(ms));
    }
    Ok(device)
}
