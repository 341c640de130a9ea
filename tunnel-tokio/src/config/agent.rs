//! `agent.toml`.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use outpost_modbus_core::access::Policy;
use outpost_modbus_core::UnitId;
use outpost_tunnel_proto::{AgentId, Secret};

use super::{check_dates, read, relative, ConfigError, Findings, SessionSettings};
use crate::agent::{Agent, AgentBuilder, Device, GroupSpec, PointSpec};
use crate::tls::AgentTls;
use outpost_modbus_core::access::Table;
use outpost_modbus_core::scan::{Coalesce, Deadband, Encoding, Point, WordOrder};

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
///
/// # Data acquisition: polled here, reported to the hub by exception.
/// [[scan]]
/// name = "boiler"
/// device = "plc-1"
/// unit = 1
/// interval_ms = 1000
/// points = [
///   { name = "temperature", table = "input_registers", address = 0, type = "i16", deadband = 0.5 },
///   { name = "flow", table = "holding_registers", address = 10, type = "f32", word_order = "low_first" },
///   { name = "burner", table = "coils", address = 0, type = "bit" },
///   { name = "alarm", table = "holding_registers", address = 20, type = "bit", bit = 3 },
///   { name = "zone", table = "holding_registers", address = 30, type = "u16", count = 8 },
/// ]
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
    /// Scan groups: points the agent polls and reports to the hub by
    /// exception.
    #[serde(default)]
    pub scan: Vec<ScanConfig>,
    /// `[acquisition]`: where samples wait for the hub.
    #[serde(default)]
    pub acquisition: AcquisitionConfig,
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

/// A `[[scan]]` of `agent.toml`: points of one unit of one device,
/// polled together.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ScanConfig {
    /// The group's name (unique; as subscribers see it).
    pub name: String,
    /// The device, by its `[[device]]` name.
    pub device: String,
    /// The unit read.
    pub unit: u8,
    /// How often the group is polled, in ms.
    pub interval_ms: u64,
    /// Every point is reported at least this often, changed or not, in
    /// seconds (600).
    pub integrity_s: Option<u64>,
    /// Addresses not asked for that one read may span to save a request (8).
    pub max_gap: Option<u16>,
    /// Registers one read may ask for (125): lower for devices that take
    /// fewer.
    pub max_registers: Option<u16>,
    /// Bits one read may ask for (2000).
    pub max_bits: Option<u16>,
    /// The points.
    pub points: Vec<PointConfig>,
}

/// A point of a `[[scan]]`, or `count` of them one after the other.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct PointConfig {
    /// Its name; with `count`, the points are named `name[0]`, `name[1]`...
    pub name: String,
    /// `coils`, `discrete_inputs`, `holding_registers` or `input_registers`.
    pub table: TableName,
    /// Its (first) address.
    pub address: u16,
    /// `bit`, `u16`, `i16`, `u32`, `i32` or `f32`.
    #[serde(rename = "type")]
    pub kind: PointKind,
    /// For a `bit` of a register: which (0 to 15).
    pub bit: Option<u8>,
    /// For 32-bit values: `high_first` (the default) or `low_first`.
    pub word_order: Option<WordOrderName>,
    /// How far a number must move before it is reported again (0: any change).
    pub deadband: Option<f64>,
    /// How many values one after the other (1); for a bit of a register,
    /// the register's next bits.
    pub count: Option<u16>,
}

/// A table's name in `agent.toml`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum TableName {
    /// `coils`
    Coils,
    /// `discrete_inputs`
    DiscreteInputs,
    /// `holding_registers`
    HoldingRegisters,
    /// `input_registers`
    InputRegisters,
}

/// A point's type in `agent.toml`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum PointKind {
    /// A coil or discrete input, or (with `bit`) one bit of a register.
    Bit,
    /// An unsigned 16-bit register.
    U16,
    /// A signed 16-bit register.
    I16,
    /// An unsigned 32-bit value in two registers.
    U32,
    /// A signed 32-bit value in two registers.
    I32,
    /// An IEEE 754 single in two registers.
    F32,
}

/// A 32-bit value's word order in `agent.toml`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum WordOrderName {
    /// The high word at the lower address (the Modbus convention).
    HighFirst,
    /// The low word at the lower address.
    LowFirst,
}

/// `[acquisition]` of `agent.toml`.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct AcquisitionConfig {
    /// Bytes of samples kept while the hub cannot take them (16 MiB):
    /// past it the oldest are dropped, counted and logged.
    pub buffer_bytes: Option<usize>,
    /// A file where the samples are kept on disk as well (feature
    /// `spool`): an agent restarted while the hub was away still sends
    /// them. Off when absent.
    pub spool: Option<PathBuf>,
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
        let mut groups = HashSet::new();
        for (i, g) in self.scan.iter().enumerate() {
            let key = format!("scan[{i}]");
            if !groups.insert(g.name.as_str()) {
                f.add(format!("{key}.name"), format!("{:?} is used twice", g.name));
            }
            if !names.contains(g.device.as_str()) {
                f.add(
                    format!("{key}.device"),
                    format!("{:?} is no [[device]]'s name", g.device),
                );
            }
            if let Some(group) = f.take(key, scan_group(g)) {
                builder = builder.scan(group);
            }
        }
        if let Some(bytes) = self.acquisition.buffer_bytes {
            builder = builder.acquisition_buffer(bytes);
        }
        if let Some(path) = &self.acquisition.spool {
            #[cfg(feature = "spool")]
            {
                builder = builder.spool(self.at(path));
            }
            #[cfg(not(feature = "spool"))]
            f.add(
                "acquisition.spool",
                format!("{}: a spool needs a build with feature `spool`", path.display()),
            );
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

fn scan_group(g: &ScanConfig) -> Result<GroupSpec, String> {
    if g.interval_ms == 0 {
        return Err("interval_ms must be at least 1".into());
    }
    let mut coalesce = Coalesce::default();
    if let Some(gap) = g.max_gap {
        coalesce = coalesce.max_gap(gap);
    }
    if let Some(n) = g.max_registers {
        coalesce = coalesce.max_registers(n);
    }
    if let Some(n) = g.max_bits {
        coalesce = coalesce.max_bits(n);
    }
    let mut group = GroupSpec::new(&g.name, UnitId(g.unit), Duration::from_millis(g.interval_ms))
        .device(&g.device)
        .coalesce(coalesce);
    if let Some(s) = g.integrity_s {
        group = group.integrity(Duration::from_secs(s.max(1)));
    }
    for (i, p) in g.points.iter().enumerate() {
        for point in points(p).map_err(|e| format!("points[{i}] ({:?}): {e}", p.name))? {
            group = group.point(point);
        }
    }
    group.check().map_err(|e| e.to_string())?;
    Ok(group)
}

/// The points one `points` entry describes.
fn points(p: &PointConfig) -> Result<Vec<PointSpec>, String> {
    let table = match p.table {
        TableName::Coils => Table::Coils,
        TableName::DiscreteInputs => Table::DiscreteInputs,
        TableName::HoldingRegisters => Table::HoldingRegisters,
        TableName::InputRegisters => Table::InputRegisters,
    };
    let order = match p.word_order {
        None | Some(WordOrderName::HighFirst) => WordOrder::HighFirst,
        Some(WordOrderName::LowFirst) => WordOrder::LowFirst,
    };
    if p.word_order.is_some() && !matches!(p.kind, PointKind::U32 | PointKind::I32 | PointKind::F32) {
        return Err("word_order is for u32, i32 and f32".into());
    }
    let registers = matches!(table, Table::HoldingRegisters | Table::InputRegisters);
    let encoding = match (p.kind, p.bit) {
        (PointKind::Bit, Some(bit)) if registers => Encoding::RegisterBit(bit),
        (PointKind::Bit, None) if registers => return Err("a bit of a register needs `bit` (0 to 15)".into()),
        (PointKind::Bit, None) => Encoding::Bit,
        (_, Some(_)) => return Err("`bit` is for a bit of a register".into()),
        (PointKind::U16, None) => Encoding::U16,
        (PointKind::I16, None) => Encoding::I16,
        (PointKind::U32, None) => Encoding::U32(order),
        (PointKind::I32, None) => Encoding::I32(order),
        (PointKind::F32, None) => Encoding::F32(order),
    };
    let count = p.count.unwrap_or(1);
    if count == 0 {
        return Err("count must be at least 1".into());
    }
    let mut out = Vec::with_capacity(usize::from(count));
    for i in 0..count {
        // A range of bits of a register is the register's next bits (a
        // status word); any other range, the next addresses.
        let (address, encoding) = match encoding {
            Encoding::RegisterBit(bit) => {
                let bit = u16::from(bit) + i;
                (p.address, Encoding::RegisterBit(u8::try_from(bit).unwrap_or(u8::MAX)))
            }
            other => {
                let address = u32::from(p.address) + u32::from(i) * u32::from(other.width());
                let address = u16::try_from(address).map_err(|_| "the range runs past address 65535".to_string())?;
                (address, other)
            }
        };
        let point = Point::new(table, address, encoding).map_err(|e| e.to_string())?;
        let name = if p.count.is_some() {
            format!("{}[{i}]", p.name)
        } else {
            p.name.clone()
        };
        let mut spec = PointSpec::new(name, point);
        if let Some(d) = p.deadband {
            spec = spec.deadband(Deadband::new(d));
        }
        out.push(spec);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(text: &str) -> Result<GroupSpec, String> {
        let config: ScanConfig = toml::from_str(text).map_err(|e| e.to_string())?;
        scan_group(&config)
    }

    const HEAD: &str = "name = \"boiler\"\ndevice = \"plc-1\"\nunit = 3\ninterval_ms = 250\n";

    #[test]
    fn a_scan_group_from_toml() {
        let g = group(&format!(
            "{HEAD}integrity_s = 60\nmax_gap = 0\nmax_registers = 10\npoints = [
  {{ name = \"t\", table = \"input_registers\", address = 0, type = \"i16\", deadband = -0.5 }},
  {{ name = \"flow\", table = \"holding_registers\", address = 10, type = \"f32\", word_order = \"low_first\" }},
  {{ name = \"burner\", table = \"coils\", address = 7, type = \"bit\" }},
  {{ name = \"alarm\", table = \"holding_registers\", address = 20, type = \"bit\", bit = 14, count = 2 }},
  {{ name = \"zone\", table = \"holding_registers\", address = 30, type = \"u32\", count = 3 }},
]"
        ))
        .unwrap();
        assert_eq!(
            (g.name.as_str(), g.device.as_str(), g.unit),
            ("boiler", "plc-1", UnitId(3))
        );
        assert_eq!(
            (g.interval, g.integrity),
            (Duration::from_millis(250), Duration::from_secs(60))
        );
        assert_eq!(g.coalesce, Coalesce::default().max_gap(0).max_registers(10));
        let names: Vec<&str> = g.points.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(
            names,
            ["t", "flow", "burner", "alarm[0]", "alarm[1]", "zone[0]", "zone[1]", "zone[2]"]
        );
        let p = |i: usize| g.points[i].point;
        let at = |t, a, e| Point::new(t, a, e).unwrap();
        assert_eq!(p(0), at(Table::InputRegisters, 0, Encoding::I16));
        assert_eq!(g.points[0].deadband, Deadband::new(0.5));
        assert_eq!(
            p(1),
            at(Table::HoldingRegisters, 10, Encoding::F32(WordOrder::LowFirst))
        );
        assert_eq!(p(2), at(Table::Coils, 7, Encoding::Bit));
        assert_eq!(p(3), at(Table::HoldingRegisters, 20, Encoding::RegisterBit(14)));
        assert_eq!(p(4), at(Table::HoldingRegisters, 20, Encoding::RegisterBit(15)));
        assert_eq!(
            p(5),
            at(Table::HoldingRegisters, 30, Encoding::U32(WordOrder::HighFirst))
        );
        assert_eq!(
            p(7),
            at(Table::HoldingRegisters, 34, Encoding::U32(WordOrder::HighFirst))
        );
    }

    #[test]
    fn a_bad_scan_group_says_what_is_wrong() {
        let bad = |points: &str, why: &str| {
            let e = group(&format!("{HEAD}points = [{points}]")).unwrap_err();
            assert!(e.contains(why), "{e}");
        };
        bad(
            "{ name = \"a\", table = \"coils\", address = 0, type = \"u16\" }",
            "cannot be read from Coils",
        );
        bad(
            "{ name = \"a\", table = \"holding_registers\", address = 0, type = \"bit\" }",
            "needs `bit`",
        );
        bad(
            "{ name = \"a\", table = \"coils\", address = 0, type = \"bit\", bit = 1 }",
            "`bit` is for",
        );
        bad(
            "{ name = \"a\", table = \"holding_registers\", address = 0, type = \"u16\", word_order = \"low_first\" }",
            "word_order",
        );
        bad(
            "{ name = \"a\", table = \"holding_registers\", address = 0, type = \"bit\", bit = 15, count = 2 }",
            "points[0]",
        );
        bad(
            "{ name = \"a\", table = \"holding_registers\", address = 65534, type = \"u16\", count = 3 }",
            "past address 65535",
        );
        bad(
            "{ name = \"a\", table = \"holding_registers\", address = 65535, type = \"f32\" }",
            "past the last address",
        );
        bad(
            "{ name = \"a\", table = \"holding_registers\", address = 0, type = \"u16\", count = 0 }",
            "at least 1",
        );
        bad(
            "{ name = \"a\", table = \"coils\", address = 0, type = \"bit\" }, { name = \"a\", table = \"coils\", address = 1, type = \"bit\" }",
            "two points named",
        );
        bad("", "0 points");
        let e = group("name = \"g\"\ndevice = \"d\"\nunit = 1\ninterval_ms = 0\npoints = []").unwrap_err();
        assert!(e.contains("interval_ms"), "{e}");
        let e = group(&format!(
            "{HEAD}points = [{{ name = \"a\", table = \"coils\", address = 0, type = \"bool\" }}]"
        ))
        .unwrap_err();
        assert!(e.contains("bool"), "{e}");
    }
}
