//! The agent: runs on the plant network, listens on nothing, dials the hub,
//! and serves the hub's Modbus requests from the plant's devices under its
//! own access policy.
//!
//! It reconnects forever, from the first attempt on, with exponential
//! backoff and full jitter up to a cap. Each request is checked against the
//! local policy for the role of its channel (deny by default), then queued
//! for its device (bounded, with a limit of requests in flight per device)
//! and answered within the hub's budget. Nothing the hub sends widens the
//! policy.

mod acquire;
mod device;
mod serve;
#[cfg(feature = "spool")]
mod spool;
#[cfg(feature = "spool")]
pub use spool::SpoolError;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use outpost_modbus_core::access::Policy;
use outpost_tunnel_proto::{AgentId, AgentIdentity, Config, Random, Secret, Session, SessionError, Start};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::{JoinHandle, JoinSet};
use tracing::{info, warn};

pub(crate) use acquire::CHANNEL as ACQUISITION;
pub use device::Device;
use device::DeviceRuntime;
pub use outpost_acquisition::{GroupSpec, PointSpec};

use crate::counted::{Counted, Traffic};
use crate::driver::{closer, drive, Ended};
use crate::tasks::AbortOnDrop;
use crate::tls::{channel_binding, provider, AgentTls, TlsError};

/// Why an agent could not be built.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// A required setting is missing.
    #[error("the agent needs {0}")]
    Missing(&'static str),
    /// Two devices have the same name.
    #[error("device {0} is configured twice")]
    DuplicateDevice(String),
    /// A scan group names a device the agent does not have.
    #[error("scan group {group} names device {device}, which is not configured")]
    UnknownDevice {
        /// The group.
        group: String,
        /// The device it names.
        device: String,
    },
    /// A scan group cannot be published as it is.
    #[error("{0}")]
    Group(#[from] outpost_acquisition::GroupError),
    /// Two scan groups have the same name.
    #[error("scan group {0} is configured twice")]
    DuplicateGroup(String),
    /// The spool could not be opened.
    #[cfg(feature = "spool")]
    #[error("{0}")]
    Spool(#[from] spool::SpoolError),
}

/// Counters of an agent, readable at any time.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) connects: AtomicU64,
    pub(crate) sessions: AtomicU64,
    pub(crate) requests: AtomicU64,
    pub(crate) answered: AtomicU64,
    pub(crate) denials: AtomicU64,
    pub(crate) traffic: Arc<Traffic>,
}

/// A snapshot of an agent's counters.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AgentStats {
    /// Connection attempts to the hub.
    pub connects: u64,
    /// Sessions established with the hub.
    pub sessions: u64,
    /// Requests received from the hub.
    pub requests: u64,
    /// Requests the devices answered (normal responses and device exceptions).
    pub answered: u64,
    /// Requests the local policy refused.
    pub denials: u64,
    /// Bytes received from the hub (TLS payload).
    pub bytes_in: u64,
    /// Bytes sent to the hub (TLS payload).
    pub bytes_out: u64,
    /// Samples of scan groups dropped because the buffer was full.
    pub samples_dropped: u64,
}

/// Everything a running agent shares between its tasks.
#[derive(Debug)]
pub(crate) struct Inner {
    hub: String,
    tls: AgentTls,
    id: AgentId,
    secret: Secret,
    config: Config,
    /// Replaced whole by [`RunningAgent::set_policy`]; each request reads
    /// the one current when it arrives.
    pub(crate) policy: std::sync::RwLock<Arc<Policy>>,
    pub(crate) devices: HashMap<String, Arc<DeviceRuntime>>,
    backoff: (Duration, Duration),
    connect_timeout: Duration,
    local_address: Option<IpAddr>,
    pub(crate) counters: Counters,
    connected: watch::Sender<bool>,
    /// Set by [`RunningAgent::stop`]: finish what is in service, then close.
    /// Holds the grace period once stopping.
    pub(crate) stopping: watch::Sender<Option<Duration>>,
    pub(crate) trail: crate::audit::Trail,
    pub(crate) meters: crate::metrics::AgentMeters,
    /// Scan groups and the samples waiting for the hub, if any group is set.
    pub(crate) acquisition: Option<Arc<acquire::Acquisition>>,
}

/// Settings of an [`Agent`].
#[derive(Debug, Default)]
pub struct AgentBuilder {
    hub: Option<String>,
    tls: Option<AgentTls>,
    identity: Option<(AgentId, Secret)>,
    config: Option<Config>,
    policy: Option<Policy>,
    devices: Vec<Device>,
    backoff: Option<(Duration, Duration)>,
    connect_timeout: Option<Duration>,
    local_address: Option<IpAddr>,
    groups: Vec<GroupSpec>,
    buffer: Option<usize>,
    #[cfg(feature = "spool")]
    spool: Option<std::path::PathBuf>,
}

impl AgentBuilder {
    /// The hub's address (`host:port`).
    pub fn hub(mut self, address: impl Into<String>) -> Self {
        self.hub = Some(address.into());
        self
    }

    /// The agent's certificate and the hub's CA and name.
    pub fn tls(mut self, tls: AgentTls) -> Self {
        self.tls = Some(tls);
        self
    }

    /// The agent's id (the one its certificate names) and its secret.
    pub fn identity(mut self, id: AgentId, secret: Secret) -> Self {
        self.identity = Some((id, secret));
        self
    }

    /// The access policy: which roles may do what, per unit, function and
    /// address range. Without one, every request is denied.
    pub fn policy(mut self, policy: Policy) -> Self {
        self.policy = Some(policy);
        self
    }

    /// A device the hub may address.
    pub fn device(mut self, device: Device) -> Self {
        self.devices.push(device);
        self
    }

    /// Session settings (defaults of `tunnel-proto`).
    pub fn session_config(mut self, config: Config) -> Self {
        self.config = Some(config);
        self
    }

    /// Reconnect delays: the first retry waits up to `initial`, each next
    /// up to twice as long, never more than `cap` (full jitter: a uniformly
    /// random delay below the bound). Defaults: 500 ms and 30 s. The
    /// delays start over from `initial` only after a session that stayed
    /// up longer than `cap`: a hub that keeps closing sessions sooner keeps
    /// its agents backing off.
    pub fn backoff(mut self, initial: Duration, cap: Duration) -> Self {
        self.backoff = Some((initial, cap.max(initial)));
        self
    }

    /// How long one connection attempt (TCP and TLS) may take (10 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = Some(timeout);
        self
    }

    /// The local address the agent's connections to the hub come from
    /// (any, by default): on a host with several networks, the one toward
    /// the hub. Only the hub's addresses of the same family are dialled.
    pub fn local_address(mut self, address: IpAddr) -> Self {
        self.local_address = Some(address);
        self
    }

    /// A scan group: its points are polled from the device it names
    /// ([`GroupSpec::device`]) at its interval, through the device's queue
    /// (scans and the hub's requests share its in-flight limit), and
    /// reported by exception to the hub over a channel the agent opens.
    /// Samples wait for the hub's acknowledgement in a buffer bounded in
    /// bytes ([`AgentBuilder::acquisition_buffer`]).
    pub fn scan(mut self, group: GroupSpec) -> Self {
        self.groups.push(group);
        self
    }

    /// How many bytes of samples the agent keeps while the hub cannot take
    /// them (16 MiB; about 30 bytes a sample): past it, the oldest are
    /// dropped, counted and logged, and the hub asks for a snapshot.
    pub fn acquisition_buffer(mut self, bytes: usize) -> Self {
        self.buffer = Some(bytes);
        self
    }

    /// Keeps the samples that wait for the hub on disk as well, in a redb
    /// database at `path` (feature `spool`), so that an agent restarted
    /// while the hub was away still sends them, with their sequence
    /// numbers: the hub takes each once. Samples are written before they
    /// can be sent (a synced write per scan that made any); the buffer's
    /// bound ([`AgentBuilder::acquisition_buffer`]) holds for both. When
    /// the scan groups differ from those the spool was kept for, its
    /// samples are dropped (and logged) and the sequence numbers start
    /// over under a new epoch.
    #[cfg(feature = "spool")]
    pub fn spool(mut self, path: impl Into<std::path::PathBuf>) -> Self {
        self.spool = Some(path.into());
        self
    }

    /// Checks the settings.
    pub fn build(self) -> Result<Agent, AgentError> {
        let (id, secret) = self.identity.ok_or(AgentError::Missing("an identity"))?;
        let mut devices = HashMap::new();
        for d in &self.devices {
            if devices.insert(d.name.clone(), d.clone()).is_some() {
                return Err(AgentError::DuplicateDevice(d.name.clone()));
            }
        }
        let mut names = std::collections::HashSet::new();
        for g in &self.groups {
            g.check()?;
            if !devices.contains_key(&g.device) {
                return Err(AgentError::UnknownDevice {
                    group: g.name.clone(),
                    device: g.device.clone(),
                });
            }
            if !names.insert(g.name.as_str()) {
                return Err(AgentError::DuplicateGroup(g.name.clone()));
            }
        }
        let groups = acquire::order(self.groups);
        let buffer = self.buffer.unwrap_or(acquire::DEFAULT_BUFFER);
        Ok(Agent {
            hub: self.hub.ok_or(AgentError::Missing("a hub address"))?,
            tls: self.tls.ok_or(AgentError::Missing("TLS settings"))?,
            id,
            secret,
            config: self.config.unwrap_or_default(),
            policy: self.policy.unwrap_or_default(),
            devices: self.devices,
            backoff: self
                .backoff
                .unwrap_or((Duration::from_millis(500), Duration::from_secs(30))),
            connect_timeout: self.connect_timeout.unwrap_or(Duration::from_secs(10)),
            local_address: self.local_address,
            keeping: keeping(
                &groups,
                buffer,
                #[cfg(feature = "spool")]
                self.spool.as_deref(),
            )?,
            groups,
        })
    }
}

/// A new epoch of sequence numbers.
fn random_epoch() -> u64 {
    let mut epoch = [0u8; 8];
    let _ = provider().secure_random.fill(&mut epoch);
    u64::from_be_bytes(epoch)
}

/// Where the samples of `groups` are kept, opening the spool if one is set.
fn keeping(
    groups: &[GroupSpec],
    buffer: usize,
    #[cfg(feature = "spool")] spool: Option<&std::path::Path>,
) -> Result<acquire::Keeping, AgentError> {
    let fresh = acquire::Restored {
        epoch: random_epoch(),
        ..acquire::Restored::default()
    };
    #[cfg(feature = "spool")]
    if let Some(path) = spool.filter(|_| !groups.is_empty()) {
        let blank = outpost_acquisition::Publisher::new(0, groups, 0);
        let (spool, restored) = spool::Spool::open(path, &blank, fresh.epoch)?;
        return Ok(acquire::Keeping {
            buffer,
            restored,
            spool: Some(spool),
        });
    }
    let _ = groups;
    Ok(acquire::Keeping {
        buffer,
        restored: fresh,
        #[cfg(feature = "spool")]
        spool: None,
    })
}

/// An agent, configured and not yet running.
///
/// ```no_run
/// # fn demo(tls: outpost_tunnel_tokio::tls::AgentTls, policy: outpost_modbus_core::access::Policy)
/// #     -> Result<(), Box<dyn std::error::Error>> {
/// use outpost_modbus_core::UnitId;
/// use outpost_tunnel_proto::{AgentId, Secret};
/// use outpost_tunnel_tokio::agent::{Agent, Device};
///
/// let agent = Agent::builder()
///     .hub("hub.example:7443")
///     .tls(tls)
///     .identity(AgentId::new("plant-7")?, Secret::new(b"a secret of at least 16 bytes")?)
///     .policy(policy)
///     .device(Device::tcp("plc-1", "10.1.2.3:502").units([UnitId(1)]))
///     .build()?;
/// let running = agent.spawn();
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Agent {
    hub: String,
    tls: AgentTls,
    id: AgentId,
    secret: Secret,
    config: Config,
    policy: Policy,
    devices: Vec<Device>,
    backoff: (Duration, Duration),
    connect_timeout: Duration,
    local_address: Option<IpAddr>,
    groups: Vec<GroupSpec>,
    keeping: acquire::Keeping,
}

impl Agent {
    /// Settings for an agent.
    pub fn builder() -> AgentBuilder {
        AgentBuilder::default()
    }

    /// Starts the agent on the current tokio runtime: it dials the hub and
    /// keeps a session up until the returned handle is shut down or dropped.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime.
    pub fn spawn(self) -> RunningAgent {
        let (connected, watcher) = watch::channel(false);
        let devices: HashMap<String, Arc<DeviceRuntime>> = self
            .devices
            .iter()
            .map(|d| (d.name.clone(), Arc::new(DeviceRuntime::start(d))))
            .collect();
        let acquisition = acquire::Acquisition::new(self.groups, &devices, self.keeping).map(Arc::new);
        let inner = Arc::new(Inner {
            hub: self.hub,
            tls: self.tls,
            id: self.id,
            secret: self.secret,
            config: self.config,
            policy: std::sync::RwLock::new(Arc::new(self.policy)),
            devices,
            backoff: self.backoff,
            connect_timeout: self.connect_timeout,
            local_address: self.local_address,
            counters: Counters::default(),
            connected,
            stopping: watch::channel(None).0,
            trail: crate::audit::Trail::default(),
            meters: crate::metrics::AgentMeters::new(),
            acquisition,
        });
        info!(
            target: "outpost::audit",
            event = "policy.loaded",
            agent = %inner.id,
            devices = inner.devices.len(),
            roles = ?inner.policy().roles().collect::<Vec<_>>(),
            "agent started; access policy loaded"
        );
        let task = tokio::spawn(run(Arc::clone(&inner)));
        // The scans run whether the hub is there or not: what they take
        // waits for it.
        let mut scans = JoinSet::new();
        if let Some(acquisition) = &inner.acquisition {
            for index in 0..acquisition.devices() {
                scans.spawn(Arc::clone(acquisition).scan(index));
            }
        }
        RunningAgent {
            inner,
            task,
            scans,
            connected: watcher,
        }
    }
}

/// A running agent. Dropping it stops the agent.
#[derive(Debug)]
pub struct RunningAgent {
    inner: Arc<Inner>,
    task: JoinHandle<()>,
    /// The scan tasks, one per device with scan groups (aborted with it).
    scans: JoinSet<()>,
    connected: watch::Receiver<bool>,
}

/// What [`RunningAgent::set_policy`] changed, by role name.
#[non_exhaustive]
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PolicyChange {
    /// Roles the new policy has and the old did not.
    pub added: Vec<String>,
    /// Roles the old policy had and the new does not.
    pub removed: Vec<String>,
    /// Roles in both whose rules differ.
    pub changed: Vec<String>,
}

/// A handle to a running agent's counters that outlives borrows of the
/// agent (for a metrics endpoint); it keeps nothing running.
#[derive(Debug, Clone)]
pub struct StatsHandle {
    inner: Arc<Inner>,
}

impl StatsHandle {
    /// The agent's counters now.
    pub fn stats(&self) -> AgentStats {
        self.inner.stats()
    }

    /// Whether a session with the hub is up now.
    pub fn is_connected(&self) -> bool {
        *self.inner.connected.borrow()
    }
}

impl Inner {
    /// The access policy now.
    pub(crate) fn policy(&self) -> Arc<Policy> {
        Arc::clone(&self.policy.read().unwrap_or_else(|p| p.into_inner()))
    }

    fn stats(&self) -> AgentStats {
        let c = &self.counters;
        AgentStats {
            connects: c.connects.load(Relaxed),
            sessions: c.sessions.load(Relaxed),
            requests: c.requests.load(Relaxed),
            answered: c.answered.load(Relaxed),
            denials: c.denials.load(Relaxed),
            bytes_in: c.traffic.received(),
            bytes_out: c.traffic.sent(),
            samples_dropped: self.acquisition.as_ref().map_or(0, |a| a.dropped()),
        }
    }
}

impl RunningAgent {
    /// The agent's counters.
    pub fn stats(&self) -> AgentStats {
        self.inner.stats()
    }

    /// Replaces the access policy: requests that arrive from now on are
    /// decided by `policy` (those already admitted go on). Audited as
    /// `policy.loaded`. Returns the roles added, removed and changed.
    pub fn set_policy(&self, policy: Policy) -> PolicyChange {
        let old = self.inner.policy();
        let mut change = PolicyChange::default();
        for role in policy.roles() {
            match old.role(role) {
                None => change.added.push(role.to_owned()),
                Some(rules) if Some(rules) != policy.role(role) => change.changed.push(role.to_owned()),
                Some(_) => {}
            }
        }
        change.removed = old
            .roles()
            .filter(|r| policy.role(r).is_none())
            .map(str::to_owned)
            .collect();
        *self.inner.policy.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(policy);
        info!(
            target: "outpost::audit",
            event = "policy.loaded",
            agent = %self.inner.id,
            devices = self.inner.devices.len(),
            roles = ?self.inner.policy().roles().collect::<Vec<_>>(),
            added = ?change.added,
            removed = ?change.removed,
            changed = ?change.changed,
            "access policy replaced"
        );
        change
    }

    /// A handle to the agent's counters (see [`StatsHandle`]).
    pub fn stats_handle(&self) -> StatsHandle {
        StatsHandle {
            inner: Arc::clone(&self.inner),
        }
    }

    /// Whether a session with the hub is up.
    pub fn is_connected(&self) -> bool {
        *self.connected.borrow()
    }

    /// Waits until a session with the hub is up.
    pub async fn connected(&mut self) {
        let _ = self.connected.wait_for(|up| *up).await;
    }

    /// Stops the agent at once (its session ends; in-flight requests get no
    /// outcome). A spool write under way ends on its blocking thread before
    /// the spool's file is free; [`RunningAgent::stop`] waits for that.
    pub fn shutdown(self) {
        self.task.abort();
    }

    /// Stops the agent gracefully: requests already in service finish (for
    /// at most `grace`) and get their outcomes, new ones are answered BUSY,
    /// then the session ends with a CLOSE saying the agent is stopping (the
    /// hub logs a planned stop, not a fault). The agent does not reconnect.
    /// It returns once the agent's spool, if it has one, is closed: a new
    /// agent can open it at once.
    pub async fn stop(mut self, grace: Duration) {
        let _ = self.inner.stopping.send(Some(grace));
        info!(target: "outpost::audit", event = "agent.stopping", agent = %self.inner.id, grace = ?grace, "agent stopping: finishing the requests in service");
        // The serve loop closes by `grace`; the CLOSE gets a moment more.
        // Scans stop at once: what they would take has no session to go to.
        self.scans.shutdown().await;
        if tokio::time::timeout(grace + Duration::from_secs(1), &mut self.task)
            .await
            .is_err()
        {
            self.task.abort();
        }
        #[cfg(feature = "spool")]
        if let Some(closed) = self.inner.acquisition.as_ref().and_then(|a| a.release_spool()) {
            // A write under way is one transaction: it ends soon, even on
            // a slow disk; a stop does not wait for a disk that hangs.
            if tokio::time::timeout(SPOOL_CLOSE, closed).await.is_err() {
                warn!(agent = %self.inner.id, "the spool's last write has not ended; the agent stopped without waiting for it");
            }
        }
    }
}

/// How long a stop waits for the spool's last write.
#[cfg(feature = "spool")]
const SPOOL_CLOSE: Duration = Duration::from_secs(10);

impl Drop for RunningAgent {
    fn drop(&mut self) {
        self.task.abort();
        // The counters may outlive the agent (a `StatsHandle`); its spool
        // does not.
        #[cfg(feature = "spool")]
        if let Some(acquisition) = &self.inner.acquisition {
            acquisition.release_spool();
        }
    }
}

/// Dials, serves, and dials again, forever.
async fn run(inner: Arc<Inner>) {
    let mut attempt: u32 = 0;
    loop {
        inner.counters.connects.fetch_add(1, Relaxed);
        let started = Instant::now();
        if inner.stopping.borrow().is_some() {
            return;
        }
        let result = session(&inner).await;
        if inner.stopping.borrow().is_some() {
            return;
        }
        match result {
            Ok(()) => {}
            Err(SessionFailure::Ended(Ended::Session(SessionError::Remote { code, reason }))) => {
                // The hub's words (untrusted, shown escaped): why it closed.
                let reason = String::from_utf8_lossy(&reason).escape_debug().to_string();
                warn!(hub = %inner.hub, %code, %reason, "the hub closed the session");
            }
            Err(e) => warn!(hub = %inner.hub, error = %e, "session with the hub ended"),
        }
        let _ = inner.connected.send(false);
        // A session that stayed up a while starts the backoff over.
        if started.elapsed() > inner.backoff.1 {
            attempt = 0;
        }
        let delay = full_jitter(inner.backoff.0, inner.backoff.1, attempt);
        attempt = attempt.saturating_add(1);
        // A stop ends the wait at once.
        let mut stopping = inner.stopping.subscribe();
        let _ = tokio::time::timeout(delay, stopping.wait_for(Option::is_some)).await;
    }
}

/// A uniformly random delay below `min(cap, initial * 2^attempt)`.
fn full_jitter(initial: Duration, cap: Duration, attempt: u32) -> Duration {
    let bound = initial.saturating_mul(1u32 << attempt.min(20)).min(cap);
    let mut random = [0u8; 8];
    if provider().secure_random.fill(&mut random).is_err() {
        return bound;
    }
    let nanos = u64::from_le_bytes(random) % (bound.as_nanos().max(1) as u64);
    Duration::from_nanos(nanos)
}

/// Why a session attempt failed.
#[derive(Debug, thiserror::Error)]
enum SessionFailure {
    #[error("connect: {0}")]
    Connect(std::io::Error),
    #[error("TLS: {0}")]
    Tls(std::io::Error),
    #[error("{0}")]
    Binding(#[from] TlsError),
    #[error("{0}")]
    Ended(#[from] Ended),
}

/// A TCP connection to `hub`, from `local` when given.
async fn dial(hub: &str, local: Option<IpAddr>) -> std::io::Result<TcpStream> {
    let Some(local) = local else {
        return TcpStream::connect(hub).await;
    };
    let mut failure = None;
    for address in tokio::net::lookup_host(hub).await? {
        if address.is_ipv4() != local.is_ipv4() {
            continue;
        }
        let socket = if local.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        socket.bind(SocketAddr::new(local, 0))?;
        match socket.connect(address).await {
            Ok(tcp) => return Ok(tcp),
            Err(e) => failure = Some(e),
        }
    }
    Err(failure.unwrap_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::AddrNotAvailable,
            "the hub has no address of the local address's family",
        )
    }))
}

/// One connection to the hub, from dial to end.
async fn session(inner: &Arc<Inner>) -> Result<(), SessionFailure> {
    let tcp = tokio::time::timeout(inner.connect_timeout, dial(&inner.hub, inner.local_address))
        .await
        .map_err(|_| SessionFailure::Connect(std::io::ErrorKind::TimedOut.into()))?
        .map_err(SessionFailure::Connect)?;
    let _ = tcp.set_nodelay(true);
    let connector = tokio_rustls::TlsConnector::from(inner.tls.config());
    let tls = tokio::time::timeout(
        inner.connect_timeout,
        connector.connect(inner.tls.hub_name().clone(), tcp),
    )
    .await
    .map_err(|_| SessionFailure::Tls(std::io::ErrorKind::TimedOut.into()))?
    .map_err(SessionFailure::Tls)?;
    let binding = channel_binding(tls.get_ref().1)?;
    let mut random = [0u8; 32];
    provider()
        .secure_random
        .fill(&mut random)
        .map_err(|e| TlsError::Rustls(e.into()))?;
    let session = Session::agent(
        inner.config.clone(),
        AgentIdentity::new(inner.id.clone(), inner.secret.clone()),
        Start::new(binding, Random(random)),
        Instant::now(),
    );
    info!(hub = %inner.hub, agent = %inner.id, "connected to the hub; authenticating");
    let (commands_tx, commands_rx) = mpsc::channel(256);
    let (events_tx, events_rx) = mpsc::channel(256);
    // Both tasks end with this future: a stopped agent leaves no session behind.
    let io = Counted::new(tls, Arc::clone(&inner.counters.traffic));
    // The agent closes its session through the command queue (after the
    // outcomes queued before it): the closer stays unused.
    let (_closer, close_rx) = closer();
    let mut driver = AbortOnDrop(tokio::spawn(drive(io, session, commands_rx, close_rx, events_tx)));
    // A stop asked for is seen by the serve loop, which drains and closes.
    let mut serving = AbortOnDrop(tokio::spawn(serve::serve(Arc::clone(inner), events_rx, commands_tx)));
    let ended = (&mut driver.0)
        .await
        .unwrap_or_else(|e| Ended::Io(std::io::Error::other(e)));
    let _ = (&mut serving.0).await;
    match ended {
        Ended::Session(e) if e.is_clean() => Ok(()),
        other => Err(other.into()),
    }
}
