//! `hub.toml`.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use outpost_modbus_core::access::Policy;
use outpost_modbus_core::UnitId;
use outpost_tunnel_proto::AgentId;

use super::{check_dates, read, relative, ConfigError, Findings, SessionSettings};
use crate::binding::Role;
use crate::hub::{FileCredentials, GatewayBuilder, Hub, HubBuilder, Route};
use crate::security::SecureServerTls;
use crate::tls::HubTls;

/// The hub's configuration file.
///
/// ```toml
/// listen = "0.0.0.0:7443"
/// credentials = "certs/credentials.toml"
///
/// [tls]
/// cert = "certs/hub.pem"
/// key = "certs/hub.key"
/// agent_ca = "certs/agent-ca.pem"
/// crl = "certs/agent-ca.crl.pem"
///
/// [[gateway]]            # plain Modbus TCP: off unless listed; one role
/// listen = "127.0.0.1:5020"
/// role = "scada"
/// default = { agent = "plant-7", target = "plc-1" }
///
/// [[secure_gateway]]     # Modbus/TCP Security: roles from certificates
/// listen = "0.0.0.0:802"
/// cert = "certs/hub.pem"
/// key = "certs/hub.key"
/// client_ca = "certs/client-ca.pem"
/// crl = "certs/client-ca.crl.pem"
/// default = { agent = "plant-7", target = "plc-1" }
/// ```
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct HubConfig {
    /// The address agents dial.
    pub listen: SocketAddr,
    /// The agents' secrets ([`FileCredentials`]).
    pub credentials: PathBuf,
    /// The hub's certificate and the agents' CA.
    pub tls: HubTlsFiles,
    /// Limits on agents' handshakes and requests (defaults of [`HubBuilder`]).
    #[serde(default)]
    pub limits: HubLimits,
    /// The tunnel sessions' settings.
    #[serde(default)]
    pub session: SessionSettings,
    /// Plain Modbus TCP gateways: each acts as its one `role`.
    #[serde(default)]
    pub gateway: Vec<GatewayConfig>,
    /// Modbus/TCP Security gateways: each client acts as its certificate's role.
    #[serde(default)]
    pub secure_gateway: Vec<GatewayConfig>,
    /// Where the `outpost` command serves Prometheus metrics (`GET /metrics`);
    /// off when absent. Keep it on loopback or a management network.
    pub metrics: Option<SocketAddr>,
    /// The file this was read from.
    #[serde(skip)]
    pub path: PathBuf,
}

/// `[tls]` of `hub.toml`.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct HubTlsFiles {
    /// The hub's certificate chain (PEM).
    pub cert: PathBuf,
    /// Its private key (PEM, readable by its owner only).
    pub key: PathBuf,
    /// The CA agents' certificates chain to.
    pub agent_ca: PathBuf,
    /// CRLs of that CA (optional).
    pub crl: Option<PathBuf>,
    /// Use a CRL past its next update as it is (false: certificates it
    /// covers are refused, so a stale CRL cannot hide a revocation).
    #[serde(default)]
    pub allow_expired_crl: bool,
}

/// `[limits]` of `hub.toml`; each key is optional.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct HubLimits {
    /// TLS and tunnel handshake together, in ms (10 000).
    pub handshake_timeout_ms: Option<u64>,
    /// TLS alone, in ms (3 000).
    pub tls_timeout_ms: Option<u64>,
    /// Handshakes in progress (64).
    pub max_handshakes: Option<usize>,
    /// Handshakes in progress from one address (8).
    pub max_handshakes_per_source: Option<usize>,
    /// How long a handshake runs before a newcomer may end it to make
    /// room, in ms (250).
    pub handshake_grace_ms: Option<u64>,
    /// Failed attempts per window before slowing (10).
    pub failures: Option<u32>,
    /// The failure window, in seconds (60).
    pub failure_window_s: Option<u64>,
    /// Unused device channels close after this many seconds (30).
    pub channel_idle_timeout_s: Option<u64>,
    /// Requests waiting or in flight per agent (4096).
    pub max_requests_per_agent: Option<usize>,
}

/// A `[[gateway]]` or `[[secure_gateway]]` of `hub.toml`.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct GatewayConfig {
    /// The address Modbus clients connect to.
    pub listen: SocketAddr,
    /// Plain gateway: the role every client acts as (required there; not
    /// allowed on a secure gateway, whose roles come from certificates).
    pub role: Option<String>,
    /// The name the agents' audit logs show (plain gateways).
    pub name: Option<String>,
    /// Secure gateway: its certificate chain (PEM).
    pub cert: Option<PathBuf>,
    /// Secure gateway: its key.
    pub key: Option<PathBuf>,
    /// Secure gateway: the CA the clients' certificates chain to.
    pub client_ca: Option<PathBuf>,
    /// Secure gateway: CRLs of that CA.
    pub crl: Option<PathBuf>,
    /// Where requests for units without a route of their own go.
    pub default: Option<TargetConfig>,
    /// Routes for single units.
    #[serde(default)]
    pub routes: Vec<RouteConfig>,
    /// The hub's copy of a policy, to refuse early (optional).
    pub policy: Option<Policy>,
    /// Clients at once (64).
    pub max_clients: Option<usize>,
    /// Requests in flight per client (16).
    pub max_in_flight: Option<usize>,
    /// How long a request may take, in ms (3 000).
    pub timeout_ms: Option<u64>,
    /// A silent client is closed after this many seconds (300).
    pub idle_timeout_s: Option<u64>,
    /// Reads are answered from the agents' scanned values when those are
    /// no older than this, in ms (off when absent; see
    /// [`GatewayBuilder::cache_reads`]).
    pub cache_max_age_ms: Option<u64>,
    /// Secure gateway: TLS deadline in ms (3 000).
    pub tls_timeout_ms: Option<u64>,
}

/// A device behind an agent, as a gateway's `default`.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct TargetConfig {
    /// The agent's id.
    pub agent: String,
    /// The device's name at the agent.
    pub target: String,
    /// The unit to address on the device (the client's if absent).
    pub device_unit: Option<u8>,
}

/// A route for one unit id.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct RouteConfig {
    /// The client's unit id.
    pub unit: u8,
    /// The agent's id.
    pub agent: String,
    /// The device's name at the agent.
    pub target: String,
    /// The unit to address on the device (the client's if absent).
    pub device_unit: Option<u8>,
}

/// Everything a hub needs, loaded and checked.
#[derive(Debug)]
#[non_exhaustive]
pub struct PreparedHub {
    /// The hub's settings, ready to start.
    pub builder: HubBuilder,
    /// The credentials (reload them on SIGHUP).
    pub credentials: Arc<FileCredentials>,
    /// The gateways' settings, plain ones first, in file order.
    pub gateways: Vec<GatewayBuilder>,
}

impl HubConfig {
    /// Reads `path`.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, ConfigError> {
        let path = path.as_ref();
        let mut config: HubConfig = read(path)?;
        config.path = path.to_path_buf();
        Ok(config)
    }

    fn at(&self, p: &Path) -> PathBuf {
        relative(&self.path, p)
    }

    /// The hub's TLS, from its files as they are now (what a reload reads).
    pub fn hub_tls(&self) -> Result<HubTls, crate::tls::TlsError> {
        use crate::tls::{load_certs, load_key, load_optional_crls, ExpiredCrl};
        let (cert, key) = (self.at(&self.tls.cert), self.at(&self.tls.key));
        let crls = load_optional_crls(self.tls.crl.as_ref().map(|p| self.at(p)).as_deref())?;
        let expired = if self.tls.allow_expired_crl {
            ExpiredCrl::Allow
        } else {
            ExpiredCrl::Refuse
        };
        HubTls::with_crl_policy(
            load_certs(&cert)?,
            load_key(&key)?,
            &load_certs(&self.at(&self.tls.agent_ca))?,
            crls,
            expired,
        )
        .map_err(crate::tls::naming(&cert, &key))
    }

    /// The TLS of the `index`th secure gateway, from its files as they are
    /// now (what a reload reads).
    pub fn secure_tls(&self, index: usize) -> Result<SecureServerTls, String> {
        let g = self.secure_gateway.get(index).ok_or("no such secure gateway")?;
        let (Some(cert), Some(key), Some(ca)) = (&g.cert, &g.key, &g.client_ca) else {
            return Err("a secure gateway needs cert, key and client_ca".into());
        };
        SecureServerTls::from_pem_files(
            &self.at(cert),
            &self.at(key),
            &self.at(ca),
            g.crl.as_ref().map(|p| self.at(p)).as_deref(),
        )
        .map_err(|e| e.to_string())
    }

    /// Loads every file the hub needs and checks every value; all the
    /// problems found, or the hub's settings.
    pub fn prepare(&self) -> Result<PreparedHub, ConfigError> {
        let mut f = Findings::new(&self.path);
        let tls = f.take("tls", self.hub_tls());
        check_dates(&mut f, "tls.cert", &self.at(&self.tls.cert));
        let session = self.session.build(&mut f);
        let credentials = f.take(
            "credentials",
            FileCredentials::load(self.at(&self.credentials)).map(Arc::new),
        );
        let l = &self.limits;
        let mut gateways = Vec::new();
        let mut listening = HashSet::from([self.listen]);
        for (kind, list) in [("gateway", &self.gateway), ("secure_gateway", &self.secure_gateway)] {
            for (i, g) in list.iter().enumerate() {
                let key = format!("{kind}[{i}]");
                if self.listen.port() != 0 && g.listen.port() != 0 && !listening.insert(g.listen) {
                    f.add(format!("{key}.listen"), format!("{} is used twice", g.listen));
                }
                let builder = if kind == "gateway" {
                    self.plain(&mut f, &key, g)
                } else {
                    self.secure(&mut f, &key, i, g)
                };
                // Routes are checked even when the rest of the gateway is
                // wrong, so every problem shows at once.
                let usable = builder.is_some();
                let builder = builder.unwrap_or_else(|| GatewayBuilder::new(g.listen, Role::new("-").expect("valid")));
                if let Some(builder) = routed(&mut f, &key, builder, g).filter(|_| usable) {
                    gateways.push(builder);
                }
            }
        }
        let prepared = match (tls, credentials) {
            (Some(tls), Some(credentials)) => {
                let mut builder = Hub::builder()
                    .listen(self.listen)
                    .tls(tls)
                    .credentials(credentials.clone())
                    .session_config(session);
                if let Some(ms) = l.handshake_timeout_ms {
                    builder = builder.handshake_timeout(Duration::from_millis(ms));
                }
                if let Some(ms) = l.tls_timeout_ms {
                    builder = builder.tls_timeout(Duration::from_millis(ms));
                }
                if let Some(n) = l.max_handshakes {
                    builder = builder.max_handshakes(n);
                }
                if let Some(n) = l.max_handshakes_per_source {
                    builder = builder.max_handshakes_per_source(n);
                }
                if let Some(ms) = l.handshake_grace_ms {
                    builder = builder.handshake_grace(Duration::from_millis(ms));
                }
                if l.failures.is_some() || l.failure_window_s.is_some() {
                    builder = builder.failure_limit(
                        l.failures.unwrap_or(10),
                        Duration::from_secs(l.failure_window_s.unwrap_or(60)),
                    );
                }
                if let Some(s) = l.channel_idle_timeout_s {
                    builder = builder.channel_idle_timeout(Duration::from_secs(s));
                }
                if let Some(n) = l.max_requests_per_agent {
                    builder = builder.max_requests_per_agent(n);
                }
                Some(PreparedHub {
                    builder,
                    credentials,
                    gateways,
                })
            }
            _ => None,
        };
        f.finish(prepared)
    }

    fn plain(&self, f: &mut Findings, key: &str, g: &GatewayConfig) -> Option<GatewayBuilder> {
        for (name, set) in [
            ("cert", g.cert.is_some()),
            ("key", g.key.is_some()),
            ("client_ca", g.client_ca.is_some()),
            ("crl", g.crl.is_some()),
            ("tls_timeout_ms", g.tls_timeout_ms.is_some()),
        ] {
            if set {
                f.add(
                    format!("{key}.{name}"),
                    "a plain gateway has no TLS: list it as [[secure_gateway]]",
                );
            }
        }
        let Some(role) = &g.role else {
            f.add(
                format!("{key}.role"),
                "missing: a plain gateway acts as one role (for example role = \"scada\")",
            );
            return None;
        };
        if let Some(policy) = &g.policy {
            if policy.role(role).is_none() {
                f.add(
                    format!("{key}.policy"),
                    format!("has no role {role:?}, the gateway's role: it would refuse every request"),
                );
            }
        }
        let role = f.take(format!("{key}.role"), Role::new(role).map_err(|_| ROLE_RULE))?;
        let mut builder = GatewayBuilder::new(g.listen, role);
        if let Some(name) = &g.name {
            builder = builder.name(name);
        }
        Some(builder)
    }

    fn secure(&self, f: &mut Findings, key: &str, i: usize, g: &GatewayConfig) -> Option<GatewayBuilder> {
        if g.role.is_some() {
            f.add(
                format!("{key}.role"),
                "a secure gateway takes each client's role from its certificate: remove role",
            );
        }
        let mut missing = false;
        for (name, set) in [
            ("cert", g.cert.is_some()),
            ("key", g.key.is_some()),
            ("client_ca", g.client_ca.is_some()),
        ] {
            if !set {
                f.add(format!("{key}.{name}"), "missing: a secure gateway needs it");
                missing = true;
            }
        }
        if missing {
            return None;
        }
        if let Some(cert) = &g.cert {
            check_dates(f, &format!("{key}.cert"), &self.at(cert));
        }
        let tls = f.take(key, self.secure_tls(i))?;
        let mut builder = GatewayBuilder::secure(g.listen, tls);
        if let Some(ms) = g.tls_timeout_ms {
            builder = builder.tls_timeout(Duration::from_millis(ms));
        }
        Some(builder)
    }
}

const ROLE_RULE: &str = "a role is 1 to 64 printable ASCII characters, no spaces";

fn route(agent: &str, target: &str, unit: Option<u8>) -> Result<Route, String> {
    let agent = AgentId::new(agent).map_err(|e| format!("agent id {agent:?}: {e}"))?;
    if agent.as_str().bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(format!("agent id {agent:?}: agent ids are lowercase"));
    }
    if target.is_empty() {
        return Err("the device name is empty".into());
    }
    let route = Route::new(agent, target);
    Ok(match unit {
        Some(u) => route.with_unit(UnitId(u)),
        None => route,
    })
}

/// Adds a gateway's routes, limits and policy to its settings.
fn routed(f: &mut Findings, key: &str, mut builder: GatewayBuilder, g: &GatewayConfig) -> Option<GatewayBuilder> {
    if g.default.is_none() && g.routes.is_empty() {
        f.add(
            format!("{key}.default"),
            "no route: give default = { agent = ..., target = ... } or [[...routes]]",
        );
    }
    if let Some(t) = &g.default {
        builder = builder.route_all(f.take(format!("{key}.default"), route(&t.agent, &t.target, t.device_unit))?);
    }
    let mut units = HashSet::new();
    for (j, r) in g.routes.iter().enumerate() {
        if !units.insert(r.unit) {
            f.add(
                format!("{key}.routes[{j}].unit"),
                format!("unit {} is routed twice", r.unit),
            );
        }
        let one = f.take(format!("{key}.routes[{j}]"), route(&r.agent, &r.target, r.device_unit))?;
        builder = builder.route_unit(UnitId(r.unit), one);
    }
    if let Some(policy) = &g.policy {
        builder = builder.policy(policy.clone());
    }
    if let Some(n) = g.max_clients {
        builder = builder.max_clients(n);
    }
    if let Some(n) = g.max_in_flight {
        builder = builder.max_in_flight(n);
    }
    if let Some(ms) = g.timeout_ms {
        builder = builder.timeout(Duration::from_millis(ms));
    }
    if let Some(s) = g.idle_timeout_s {
        builder = builder.idle_timeout(Duration::from_secs(s));
    }
    if let Some(ms) = g.cache_max_age_ms {
        builder = builder.cache_reads(Duration::from_millis(ms));
    }
    Some(builder)
}
