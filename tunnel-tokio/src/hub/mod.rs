//! The hub: accepts agents on its one listening port, authenticates them
//! (client certificate, then the tunnel handshake's channel-bound proof of
//! the agent's secret), keeps a registry of connected agents, and gives
//! Rust programs and Modbus TCP gateways clients of the devices behind them.
//!
//! Work before authentication is bounded, in a way that protects agents as
//! much as the hub: a short deadline on TLS and a longer one on the tunnel
//! handshake; caps on handshakes in progress, overall and per source
//! address, where the oldest unfinished handshake makes room for a new one
//! (stalled connections cannot keep an agent out); failures counted per
//! certified identity once TLS has named one, and per address only before
//! that, an address over its limit being slowed to one handshake at a time
//! rather than locked out (an agent behind the same NAT still gets in).

mod connection;
mod credentials;
pub(crate) mod gatekeeper;
mod gateway;
pub(crate) mod limits;
mod line;
pub(crate) mod remote;
mod values;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use outpost_tunnel_proto::{AgentId, Config, Credential, CredentialStore, ErrorCode};
use tokio::net::TcpListener;
use tokio::sync::{broadcast, watch};
use tracing::{info, warn};

pub use credentials::{CredentialsError, FileCredentials};
pub use gateway::{Gateway, GatewayBuilder, Route};
pub use outpost_acquisition::Quality;
pub use remote::{AgentRef, RemoteClient};
pub use values::{Filter, Lagged, PointValue, Subscription};

use crate::counted::Traffic;
use crate::modbus::ClientError;
use crate::profile::RequesterConfig;
use crate::tasks::{accept_loop_when, AbortOnDrop};
use crate::tls::HubTls;
use gatekeeper::Gatekeeper;
use limits::{Gate, GateConfig};
use line::Line;

/// Something that happened to the hub's agents.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HubEvent {
    /// An agent authenticated; its session is up.
    Connected {
        /// The agent.
        agent: AgentId,
        /// Where it connected from.
        peer: SocketAddr,
    },
    /// An agent's session ended.
    Disconnected {
        /// The agent.
        agent: AgentId,
        /// Why, in words.
        reason: String,
    },
    /// A newer session of an agent replaced an older one.
    Superseded {
        /// The agent.
        agent: AgentId,
        /// Where the older session came from.
        old_peer: SocketAddr,
    },
    /// A live session was closed because its agent is no longer
    /// authorised (revoked or removed from the credentials, or its
    /// certificate no longer verifies), found by [`Hub::reload`].
    Revoked {
        /// The agent.
        agent: AgentId,
        /// Why, in words.
        reason: String,
    },
    /// A connection was refused before or during authentication.
    Rejected {
        /// Where it came from.
        peer: SocketAddr,
        /// Why, in words (the peer is told only AUTH_FAILED).
        reason: String,
    },
}

/// A snapshot of the hub's counters.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HubStats {
    /// Connections accepted on the listening port.
    pub connections: u64,
    /// Sessions authenticated.
    pub sessions: u64,
    /// Connections refused (limits, TLS, authentication).
    pub rejected: u64,
    /// Agents connected now.
    pub agents: u64,
    /// Bytes received from agents (TLS payload).
    pub bytes_in: u64,
    /// Bytes sent to agents (TLS payload).
    pub bytes_out: u64,
    /// Tunnel channels to devices the hub holds now, over every agent
    /// (one per agent, device and role in use; unused ones close after
    /// [`HubBuilder::channel_idle_timeout`]).
    pub channels: u64,
    /// TLS and tunnel handshakes in progress now.
    pub handshakes: u64,
    /// Reads gateways answered from the values agents' scan groups
    /// reported, without asking the device
    /// ([`GatewayBuilder::cache_reads`]).
    pub cached_reads: u64,
}

#[derive(Debug, Default)]
struct Counters {
    connections: AtomicU64,
    sessions: AtomicU64,
    rejected: AtomicU64,
    traffic: Arc<Traffic>,
    /// Reads gateways answered from scanned values.
    cached: AtomicU64,
}

/// A credential store, shown in debug output by name only.
#[derive(Clone)]
struct Store(Arc<dyn CredentialStore>);

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CredentialStore")
    }
}

/// What the hub's tasks share.
#[derive(Debug)]
pub(crate) struct HubInner {
    tls: std::sync::RwLock<HubTls>,
    credentials: Store,
    config: Config,
    handshake_timeout: Duration,
    tls_timeout: Duration,
    /// The pre-authentication gate and the tasks of the handshakes it let in.
    gatekeeper: Arc<Gatekeeper>,
    pub(crate) trail: crate::audit::Trail,
    pub(crate) meters: crate::metrics::HubMeters,
    requester: RequesterConfig,
    registry: Mutex<HashMap<AgentId, Arc<Line>>>,
    changed: watch::Sender<u64>,
    events: broadcast::Sender<HubEvent>,
    counters: Counters,
    /// Every value agents report, to the subscriptions.
    values: broadcast::Sender<Arc<PointValue>>,
}

impl HubInner {
    /// The line of `agent`, if it is connected now.
    pub(crate) fn line(&self, agent: &AgentId) -> Option<Arc<Line>> {
        let registry = self.registry.lock().unwrap_or_else(|p| p.into_inner());
        registry.get(agent).filter(|l| l.is_up()).cloned()
    }

    /// The line of `agent`, made if it has none.
    fn line_or_new(&self, agent: &AgentId) -> Arc<Line> {
        let mut registry = self.registry.lock().unwrap_or_else(|p| p.into_inner());
        Arc::clone(
            registry
                .entry(agent.clone())
                .or_insert_with(|| Arc::new(Line::new(agent.clone(), self.requester, self.values.clone()))),
        )
    }

    fn emit(&self, event: HubEvent) {
        let _ = self.events.send(event);
    }

    /// Refuses a connection; `class` is its metric label (`limit`, `tls`,
    /// `identity`, `authentication`).
    fn reject(&self, peer: SocketAddr, class: &'static str, reason: String) {
        self.counters.rejected.fetch_add(1, Relaxed);
        self.meters.rejected.add(class);
        if self.trail.admit("agent.rejected", &peer.ip().to_string()) {
            warn!(target: "outpost::audit", event = "agent.rejected", %peer, %reason, "agent connection rejected");
        }
        self.emit(HubEvent::Rejected { peer, reason });
    }

    /// Rejects a connection that failed before TLS named an identity.
    fn reject_anonymous(&self, peer: SocketAddr, reason: String) {
        self.gatekeeper
            .with_gate(|g| g.failed_anonymous(Instant::now(), peer.ip()));
        self.reject(peer, "tls", reason);
    }
}

/// Settings of a [`Hub`].
#[derive(Debug)]
pub struct HubBuilder {
    listen: SocketAddr,
    tls: Option<HubTls>,
    credentials: Option<Store>,
    config: Config,
    handshake_timeout: Duration,
    tls_timeout: Duration,
    max_handshakes: usize,
    per_source: usize,
    handshake_grace: Duration,
    failure_limit: (u32, Duration),
    requester: RequesterConfig,
    subscription_capacity: usize,
}

impl HubBuilder {
    /// How many values a [`Subscription`] may fall behind before it misses
    /// the oldest (it is told how many: [`Lagged`]); 4096.
    pub fn subscription_capacity(mut self, values: usize) -> Self {
        self.subscription_capacity = values.clamp(1, usize::MAX / 2);
        self
    }

    /// The address agents dial (default `127.0.0.1:0`).
    pub fn listen(mut self, address: SocketAddr) -> Self {
        self.listen = address;
        self
    }

    /// The hub's certificate and the CA of its agents.
    pub fn tls(mut self, tls: HubTls) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Where agents' secrets come from ([`FileCredentials`], or any store).
    pub fn credentials(mut self, store: Arc<dyn CredentialStore>) -> Self {
        self.credentials = Some(Store(store));
        self
    }

    /// Session settings (defaults of `tunnel-proto`).
    pub fn session_config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// How long an agent has for TLS and the tunnel handshake together (10 s).
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    /// How long the TLS handshake may take (3 s), within
    /// [`HubBuilder::handshake_timeout`]: a client that stalls in TLS is
    /// closed early.
    pub fn tls_timeout(mut self, timeout: Duration) -> Self {
        self.tls_timeout = timeout;
        self
    }

    /// Handshakes in progress at once (64). When the table is full, the
    /// oldest unfinished handshake makes room for the next connection once
    /// it has run for [`HubBuilder::handshake_grace`]; until then the hub
    /// accepts nothing and new connections wait in the listen backlog.
    pub fn max_handshakes(mut self, n: usize) -> Self {
        self.max_handshakes = n.max(1);
        self
    }

    /// Handshakes in progress at once from one source address (8); past
    /// it, the source's own oldest unfinished handshake makes room once it
    /// has had its grace, and before that the new connection is closed
    /// before TLS (its agent tries again after its backoff).
    pub fn max_handshakes_per_source(mut self, n: usize) -> Self {
        self.per_source = n.max(1);
        self
    }

    /// How long a handshake runs before a newcomer may end it to make room
    /// (250 ms): long enough for an honest agent's TLS and tunnel
    /// handshakes when many arrive at once (a hub restart), short enough
    /// that stalled connections hold a place only that long. Raise it for
    /// agents on slow links.
    pub fn handshake_grace(mut self, grace: Duration) -> Self {
        self.handshake_grace = grace;
        self
    }

    /// Failed attempts allowed per window (10 per 60 s), counted per
    /// certified agent identity once TLS has named one, and per source
    /// address for failures before that. An identity over the limit is
    /// closed right after TLS until its window ends; an address over the
    /// limit gets one handshake at a time (it is never locked out).
    pub fn failure_limit(mut self, failures: u32, window: Duration) -> Self {
        self.failure_limit = (failures.max(1), window);
        self
    }

    /// How long a tunnel channel to a device may go unused before it is
    /// closed (30 s); the next request opens it again.
    pub fn channel_idle_timeout(mut self, timeout: Duration) -> Self {
        self.requester.idle_timeout = timeout;
        self
    }

    /// Requests waiting or in flight per agent at once (4096); more fail
    /// at once with [`ClientError::Overloaded`].
    pub fn max_requests_per_agent(mut self, n: usize) -> Self {
        self.requester.max_requests = n.max(1);
        self
    }

    /// Binds the listening port and starts accepting agents.
    pub async fn start(self) -> Result<Hub, HubError> {
        let tls = self.tls.ok_or(HubError::Missing("TLS settings"))?;
        let credentials = self.credentials.ok_or(HubError::Missing("a credential store"))?;
        let listener = listen(self.listen).map_err(HubError::Bind)?;
        let local = listener.local_addr().map_err(HubError::Bind)?;
        let (changed, _) = watch::channel(0);
        let (events, _) = broadcast::channel(256);
        let inner = Arc::new(HubInner {
            tls: std::sync::RwLock::new(tls),
            credentials,
            config: self.config,
            handshake_timeout: self.handshake_timeout,
            tls_timeout: self.tls_timeout,
            gatekeeper: Gatekeeper::new(Gate::new(GateConfig {
                max_handshakes: self.max_handshakes,
                per_source: self.per_source,
                failure_limit: self.failure_limit.0,
                window: self.failure_limit.1,
                grace: self.handshake_grace,
            })),
            trail: crate::audit::Trail::default(),
            meters: crate::metrics::HubMeters::new(),
            requester: self.requester,
            registry: Mutex::new(HashMap::new()),
            changed,
            events,
            counters: Counters::default(),
            values: broadcast::channel(self.subscription_capacity).0,
        });
        info!(address = %local, "hub listening for agents");
        let task = AbortOnDrop(tokio::spawn(accept(listener, Arc::clone(&inner))));
        Ok(Hub {
            inner,
            local,
            _task: task,
        })
    }
}

/// Why a hub could not start, or an agent could not be reached.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum HubError {
    /// A required setting is missing.
    #[error("the hub needs {0}")]
    Missing(&'static str),
    /// The listening port could not be bound.
    #[error("cannot listen: {0}")]
    Bind(std::io::Error),
}

/// A running hub. Dropping it stops accepting agents and ends their sessions.
///
/// ```no_run
/// # async fn demo(hub: outpost_tunnel_tokio::hub::Hub) -> Result<(), Box<dyn std::error::Error>> {
/// use outpost_modbus_core::UnitId;
/// use outpost_tunnel_tokio::binding::Role;
/// use outpost_tunnel_tokio::modbus::Requests;
///
/// let plc = hub.agent("plant-7")?.modbus("plc-1", Role::new("operator")?);
/// let values = plc.read_holding_registers(UnitId(1), 0, 10).await?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Hub {
    inner: Arc<HubInner>,
    local: SocketAddr,
    /// The accept loop; it owns every connection task, so dropping it
    /// ends them all.
    _task: AbortOnDrop<()>,
}

impl Hub {
    /// Settings for a hub.
    pub fn builder() -> HubBuilder {
        HubBuilder {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            tls: None,
            credentials: None,
            config: Config::default(),
            handshake_timeout: Duration::from_secs(10),
            tls_timeout: Duration::from_secs(3),
            max_handshakes: 64,
            per_source: 8,
            handshake_grace: Duration::from_millis(250),
            failure_limit: (10, Duration::from_secs(60)),
            requester: RequesterConfig::default(),
            subscription_capacity: 4096,
        }
    }

    /// The address the hub listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// A connected agent.
    pub fn agent(&self, id: &str) -> Result<AgentRef, ClientError> {
        let agent = AgentId::new(id).map_err(|_| ClientError::NoAgent(id.to_owned()))?;
        if self.inner.line(&agent).is_none() {
            return Err(ClientError::NoAgent(id.to_owned()));
        }
        Ok(AgentRef {
            hub: Arc::clone(&self.inner),
            agent,
        })
    }

    /// The ids of the agents connected now.
    pub fn agents(&self) -> Vec<AgentId> {
        let registry = self.inner.registry.lock().unwrap_or_else(|p| p.into_inner());
        registry
            .iter()
            .filter(|(_, l)| l.is_up())
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// Waits until `id` is connected, at most `timeout`.
    pub async fn wait_for_agent(&self, id: &str, timeout: Duration) -> Result<AgentRef, ClientError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut changed = self.inner.changed.subscribe();
        loop {
            if let Ok(agent) = self.agent(id) {
                return Ok(agent);
            }
            match tokio::time::timeout_at(deadline, changed.changed()).await {
                Ok(Ok(())) => {}
                _ => return Err(ClientError::NoAgent(id.to_owned())),
            }
        }
    }

    /// Takes new TLS settings (a new CA or CRLs; `None` keeps the current
    /// ones) and checks every live session against them and against the
    /// credential store as it is now: a session whose agent is revoked or
    /// removed, or whose certificate no longer verifies (revoked in a CRL,
    /// expired), is closed at once with AUTH_FAILED, audited, and reported
    /// as [`HubEvent::Revoked`]; its CLOSE tells the agent it was revoked.
    /// New handshakes use the new settings.
    /// Returns the agents whose sessions were closed.
    ///
    /// Reload a [`FileCredentials`] first ([`FileCredentials::reload`]); a
    /// reload that fails there keeps the old credentials and says why.
    pub fn reload(&self, tls: Option<HubTls>) -> Vec<AgentId> {
        if let Some(tls) = tls {
            *self.inner.tls.write().unwrap_or_else(|p| p.into_inner()) = tls;
        }
        let tls = self.inner.tls.read().unwrap_or_else(|p| p.into_inner()).clone();
        let lines: Vec<Arc<Line>> = {
            let registry = self.inner.registry.lock().unwrap_or_else(|p| p.into_inner());
            registry.values().cloned().collect()
        };
        let mut closed = Vec::new();
        for line in lines {
            let Some((peer, chain)) = line.session() else {
                continue;
            };
            let reason = match self.inner.credentials.0.lookup(&line.agent) {
                Credential::Active(_) => tls.verify_agent(&chain).err().map(|e| format!("certificate: {e}")),
                Credential::Revoked => Some("revoked in the credentials".to_owned()),
                _ => Some("no longer in the credentials".to_owned()),
            };
            if let Some(reason) = reason {
                line.close(ErrorCode::AuthFailed, "revoked: this agent is no longer authorised");
                warn!(target: "outpost::audit", event = "agent.revoked", agent = %line.agent, %peer, %reason, "live session closed on reload: the agent is no longer authorised");
                self.inner.emit(HubEvent::Revoked {
                    agent: line.agent.clone(),
                    reason,
                });
                closed.push(line.agent.clone());
            }
        }
        info!(target: "outpost::audit", event = "hub.reloaded", closed = closed.len(), "hub reloaded: live sessions checked against the credentials and CRLs");
        closed
    }

    /// Starts a Modbus TCP gateway (see [`GatewayBuilder`]).
    pub async fn gateway(&self, config: GatewayBuilder) -> Result<Gateway, HubError> {
        gateway::start(Arc::clone(&self.inner), config).await
    }

    /// The values agents' scan groups report, for the points `filter`
    /// follows: the latest of each now, then every new one. Agents poll
    /// their devices and report by exception over their own channel; the
    /// hub acknowledges what it has and asks for a full snapshot when an
    /// agent's session is new or samples were lost.
    ///
    /// ```no_run
    /// # async fn demo(hub: outpost_tunnel_tokio::hub::Hub) {
    /// use futures::StreamExt;
    /// use outpost_tunnel_tokio::hub::Filter;
    ///
    /// let mut values = hub.subscribe(Filter::all().agent("plant-7").group("boiler"));
    /// while let Some(Ok(v)) = values.next().await {
    ///     println!("{}/{}/{} = {:?} ({:?})", v.device, v.group, v.point, v.value, v.quality);
    /// }
    /// # }
    /// ```
    pub fn subscribe(&self, filter: Filter) -> Subscription {
        // Subscribed first: a value that arrives meanwhile is not missed
        // (it may come twice).
        let live = self.inner.values.subscribe();
        let current = self.values(&filter);
        Subscription::new(current, live, filter)
    }

    /// The latest value of every point `filter` follows, of the agents
    /// connected now (or whose requests are still in service).
    pub fn values(&self, filter: &Filter) -> Vec<PointValue> {
        let lines: Vec<Arc<Line>> = {
            let registry = self.inner.registry.lock().unwrap_or_else(|p| p.into_inner());
            registry.values().cloned().collect()
        };
        let mut out = Vec::new();
        for line in lines {
            line.values(filter, &mut out);
        }
        out
    }

    /// Events about agents: connected, disconnected, superseded, rejected.
    /// A receiver that falls more than 256 events behind loses the oldest.
    pub fn events(&self) -> broadcast::Receiver<HubEvent> {
        self.inner.events.subscribe()
    }

    /// The hub's counters.
    pub fn stats(&self) -> HubStats {
        let c = &self.inner.counters;
        HubStats {
            connections: c.connections.load(Relaxed),
            sessions: c.sessions.load(Relaxed),
            rejected: c.rejected.load(Relaxed),
            agents: self.agents().len() as u64,
            bytes_in: c.traffic.received(),
            bytes_out: c.traffic.sent(),
            channels: self.channel_count() as u64,
            handshakes: self.inner.gatekeeper.with_gate(|g| g.in_progress()) as u64,
            cached_reads: c.cached.load(Relaxed),
        }
    }

    fn channel_count(&self) -> usize {
        let registry = self.inner.registry.lock().unwrap_or_else(|p| p.into_inner());
        registry.values().map(|l| l.channel_count()).sum()
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        // Sessions are told why before their tasks end with the accept loop.
        let registry = self.inner.registry.lock().unwrap_or_else(|p| p.into_inner());
        for line in registry.values() {
            line.close(ErrorCode::Shutdown, "the hub is stopping");
        }
    }
}

/// How many connections wait in the kernel for the hub to accept them (the
/// system may cap it lower, `net.core.somaxconn`): agents that arrive
/// together after a hub restart wait there while the handshake table is
/// full, at no cost to the hub.
const LISTEN_BACKLOG: u32 = 4096;

/// The listening socket for agents.
fn listen(address: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if address.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    // A restarted hub binds its port again at once.
    socket.set_reuseaddr(true)?;
    socket.bind(address)?;
    socket.listen(LISTEN_BACKLOG)
}

/// Accepts connections until the hub is dropped; owns every connection task.
async fn accept(listener: TcpListener, inner: Arc<HubInner>) {
    let gatekeeper: &Gatekeeper = &inner.gatekeeper;
    accept_loop_when(listener, "hub", move || gatekeeper.room(), |tcp, peer, tasks| {
        inner.counters.connections.fetch_add(1, Relaxed);
        let admitted = inner.gatekeeper.admit(Instant::now(), peer.ip(), |place| {
            tasks.spawn(connection::connection(Arc::clone(&inner), tcp, peer, place))
        });
        match admitted {
            Err(reason) => inner.reject(peer, "limit", reason.into()),
            Ok(admitted) => {
                for _ in 0..admitted.evicted {
                    warn!(target: "outpost::audit", event = "limit", limit = "handshakes", %peer, "handshake table full; the oldest unfinished handshake was closed to make room");
                }
            }
        }
    })
    .await
}
