//! Modbus TCP gateways on the hub: unmodified Modbus TCP clients (SCADA,
//! HMIs, pymodbus, mbpoll) reach plant devices through the tunnel.
//!
//! Each listener maps unit ids (or all of them) to a device behind an
//! agent. A listener is one of two kinds:
//! - **plain** Modbus TCP ([`GatewayBuilder::new`]): it authenticates
//!   nobody, so it acts for its clients with the one role it is configured
//!   with; bind it to loopback or to a chosen interface;
//! - **Modbus/TCP Security** ([`GatewayBuilder::secure`]): TLS with client
//!   certificates, each client acting with the role its certificate
//!   carries; the role and the certificate's subject travel to the agent
//!   with every request, and the agent's policy decides.
//!
//! Either may pre-filter with the hub's own copy of a policy
//! ([`GatewayBuilder::policy`]); the agent's policy still decides. Each
//! request keeps its client's transaction id; clients are served
//! concurrently, each with a bounded number of requests in flight (past it
//! the gateway stops reading from that client). Clients of a gateway with
//! the same role and principal share one tunnel channel per device (the
//! agent's audit log names the gateway, or the certificate's subject). A
//! client silent for the idle time is closed; when the gateway is full,
//! the client idle longest makes room.

mod client;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use outpost_modbus_core::access::Policy;
use outpost_modbus_core::UnitId;
use outpost_tunnel_proto::AgentId;
use rustls::pki_types::CertificateDer;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::AbortHandle;
use tracing::{debug, info, warn};

use super::{HubError, HubInner};
use crate::binding::{ChannelMetadata, Principal, Role};
use crate::security::{ClientIdentity, HandshakeLimits, Handshakes, SecureServerTls};
use crate::tasks::{accept_loop, AbortOnDrop};
use client::Client;

/// Where a gateway sends the requests for a unit id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// The agent.
    pub agent: AgentId,
    /// The device's name at the agent.
    pub target: String,
    /// The unit id to address on the device; `None` keeps the client's.
    pub unit: Option<UnitId>,
}

impl Route {
    /// Requests go to `target` behind `agent`, with the client's unit id.
    pub fn new(agent: AgentId, target: &str) -> Self {
        Route {
            agent,
            target: target.to_owned(),
            unit: None,
        }
    }

    /// Requests address `unit` on the device, whatever the client's unit id.
    pub fn with_unit(mut self, unit: UnitId) -> Self {
        self.unit = Some(unit);
        self
    }
}

/// Who a gateway's clients act as.
#[derive(Debug, Clone)]
enum Mode {
    /// Plain Modbus TCP: every client acts as this role.
    Plain(Role),
    /// Modbus/TCP Security: each client acts as its certificate's role.
    Secure(SecureServerTls, HandshakeLimits),
}

/// Settings of a [`Gateway`].
#[derive(Debug, Clone)]
pub struct GatewayBuilder {
    listen: SocketAddr,
    mode: Mode,
    name: String,
    default: Option<Route>,
    units: HashMap<u8, Route>,
    policy: Option<Arc<Policy>>,
    max_clients: usize,
    max_in_flight: usize,
    timeout: Duration,
    idle_timeout: Duration,
    cache: Option<Duration>,
}

impl GatewayBuilder {
    fn with_mode(listen: SocketAddr, mode: Mode, name: String) -> Self {
        GatewayBuilder {
            listen,
            mode,
            name,
            default: None,
            units: HashMap::new(),
            policy: None,
            max_clients: 64,
            max_in_flight: 16,
            timeout: Duration::from_secs(3),
            idle_timeout: Duration::from_secs(300),
            cache: None,
        }
    }

    /// A plain Modbus TCP gateway listening on `listen` whose clients all
    /// act as `role`.
    pub fn new(listen: SocketAddr, role: Role) -> Self {
        Self::with_mode(listen, Mode::Plain(role), format!("gateway {listen}"))
    }

    /// A Modbus/TCP Security gateway listening on `listen` (802 by
    /// convention): TLS 1.2 or 1.3 with client certificates chained to the
    /// CA of `tls` and carrying exactly one role; each client acts as its
    /// role, its certificate's subject is the channel's principal, and a
    /// request its role may not make is answered with exception 01.
    pub fn secure(listen: SocketAddr, tls: SecureServerTls) -> Self {
        Self::with_mode(
            listen,
            Mode::Secure(tls, HandshakeLimits::default()),
            format!("secure gateway {listen}"),
        )
    }

    /// Every unit id not routed otherwise goes to `route`.
    pub fn route_all(mut self, route: Route) -> Self {
        self.default = Some(route);
        self
    }

    /// Requests for `unit` go to `route`.
    pub fn route_unit(mut self, unit: UnitId, route: Route) -> Self {
        self.units.insert(unit.0, route);
        self
    }

    /// The name the agent's audit log shows for this gateway's clients
    /// (on a plain gateway; a secure one names each client's certificate).
    pub fn name(mut self, name: &str) -> Self {
        self.name = name.to_owned();
        self
    }

    /// The hub's copy of a policy: requests it denies for the client's
    /// role are answered at the hub (exception 01 on a secure gateway, the
    /// denial's own code on a plain one) and never cross the tunnel. The
    /// agent's policy still decides everything that passes.
    pub fn policy(mut self, policy: Policy) -> Self {
        self.policy = Some(Arc::new(policy));
        self
    }

    /// Answers reads (01 to 04) at the hub, from the values the agent's
    /// scan groups reported, when those cover every address read with
    /// values reported on every change (no deadband), read well, by a
    /// group polled at least every `max_age`, whose full snapshot the hub
    /// has since the agent's channel opened; everything else passes
    /// through to the device (off by default). A request that changes a
    /// device sends that device's reads through for two of its groups'
    /// intervals after it is answered, so a client reads back what it
    /// wrote.
    ///
    /// Cached answers are the hub's: the agent's policy chose to publish
    /// those values to the hub and is not asked again. Who may read them
    /// here is this listener's decision: its role's rules in the hub's
    /// copy of a policy ([`GatewayBuilder::policy`]) when one is set, and
    /// anything routed to the device otherwise.
    pub fn cache_reads(mut self, max_age: Duration) -> Self {
        self.cache = Some(max_age);
        self
    }

    /// A client that sends nothing and waits for nothing this long is
    /// closed (5 minutes).
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = timeout.max(Duration::from_millis(1));
        self
    }

    /// Clients connected at once (64), TLS handshakes included; when full,
    /// the client idle longest is closed to make room for a new one.
    pub fn max_clients(mut self, n: usize) -> Self {
        self.max_clients = n.max(1);
        self
    }

    /// Requests in flight per client (16).
    pub fn max_in_flight(mut self, n: usize) -> Self {
        self.max_in_flight = n.max(1);
        self
    }

    /// How long a request may take, tunnel and device included (3 s);
    /// past it the client gets exception 0B.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Secure gateway: how long a client has to finish TLS (3 s).
    pub fn tls_timeout(mut self, timeout: Duration) -> Self {
        if let Mode::Secure(_, limits) = &mut self.mode {
            limits.timeout = timeout;
        }
        self
    }

    /// Secure gateway: TLS handshakes in progress at once (64) and from
    /// one source address (8); past either, the oldest unfinished one (of
    /// that source) makes room, so stalled handshakes cannot keep clients
    /// out. Failed handshakes (10 per 60 s per address) slow their address
    /// to one handshake at a time.
    pub fn max_handshakes(mut self, total: usize, per_source: usize) -> Self {
        if let Mode::Secure(_, limits) = &mut self.mode {
            limits.max = total.max(1);
            limits.per_source = per_source.max(1);
        }
        self
    }

    /// The address the gateway will listen on.
    pub fn listen_address(&self) -> SocketAddr {
        self.listen
    }

    /// Whether clients authenticate with certificates (Modbus/TCP Security).
    pub fn is_secure(&self) -> bool {
        matches!(self.mode, Mode::Secure(..))
    }
}

/// A running gateway. Dropping it closes its listener and its clients.
#[derive(Debug)]
pub struct Gateway {
    local: SocketAddr,
    name: String,
    clients: Arc<Mutex<Clients>>,
    /// A secure gateway's handshakes (and the TLS settings they use).
    handshakes: Option<Handshakes>,
    /// Tells the clients to finish what is in flight and close.
    draining: watch::Sender<bool>,
    /// The accept loop, which owns every client task.
    _task: AbortOnDrop<()>,
}

impl Gateway {
    /// The address the gateway listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Stops the gateway gracefully: clients stop being read, requests in
    /// flight are answered (for at most `grace`), then every connection
    /// and the listener close.
    pub async fn stop(self, grace: Duration) {
        let _ = self.draining.send(true);
        let deadline = tokio::time::Instant::now() + grace;
        while tokio::time::Instant::now() < deadline {
            let empty = self.clients.lock().unwrap_or_else(|p| p.into_inner()).slots.is_empty();
            if empty {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        info!(target: "outpost::audit", event = "gateway.stopped", gateway = %self.name, "gateway stopped");
    }

    /// A secure gateway takes new TLS settings (a new client CA, new CRLs)
    /// for new handshakes, and checks every connected client's certificate
    /// against them now: a client whose certificate no longer verifies
    /// (revoked, expired, from a CA no longer trusted) is closed at once
    /// and audited (`gateway.revoked`). Returns the addresses of the
    /// clients closed. A plain gateway has no TLS: nothing happens.
    pub fn reload(&self, tls: SecureServerTls) -> Vec<SocketAddr> {
        let Some(handshakes) = &self.handshakes else {
            return Vec::new();
        };
        handshakes.set_tls(tls.clone());
        let mut closed = Vec::new();
        let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        clients.slots.retain(|_, slot| {
            let Some(chain) = slot.chain.get() else {
                // Still in its handshake, which uses the old settings: it
                // is checked by them, then by the next reload.
                return true;
            };
            match tls.verify_client(chain) {
                Ok(()) => true,
                Err(e) => {
                    slot.abort();
                    warn!(target: "outpost::audit", event = "gateway.revoked", gateway = %self.name, peer = %slot.peer, reason = %e, "secure gateway client closed on reload: its certificate no longer verifies");
                    closed.push(slot.peer);
                    false
                }
            }
        });
        info!(target: "outpost::audit", event = "gateway.reloaded", gateway = %self.name, closed = closed.len(), "secure gateway reloaded");
        closed
    }
}

/// Binds the gateway's listener and starts serving.
pub(super) async fn start(hub: Arc<HubInner>, config: GatewayBuilder) -> Result<Gateway, HubError> {
    let listener = TcpListener::bind(config.listen).await.map_err(HubError::Bind)?;
    let local = listener.local_addr().map_err(HubError::Bind)?;
    match &config.mode {
        Mode::Plain(role) => {
            info!(target: "outpost::audit", event = "gateway.listening", address = %local, %role, security = "none", "modbus gateway listening");
        }
        Mode::Secure(..) => {
            info!(target: "outpost::audit", event = "gateway.listening", address = %local, role = "per client certificate", security = "modbus/tcp security", "modbus/tcp security gateway listening");
        }
    }
    let clients = Arc::new(Mutex::new(Clients::default()));
    let handshakes = match &config.mode {
        Mode::Secure(tls, limits) => Some(Handshakes::new(tls.clone(), *limits)),
        Mode::Plain(_) => None,
    };
    let name = config.name.clone();
    let (draining, drain_rx) = watch::channel(false);
    let task = AbortOnDrop(tokio::spawn(accept(
        listener,
        hub,
        Arc::new(config),
        Arc::clone(&clients),
        handshakes.clone(),
        drain_rx,
    )));
    Ok(Gateway {
        local,
        name,
        clients,
        handshakes,
        draining,
        _task: task,
    })
}

/// A connected client, as the accept loop sees it.
#[derive(Debug)]
struct Slot {
    peer: SocketAddr,
    /// A secure client's certificate chain, once its handshake is done.
    chain: Arc<OnceLock<Vec<CertificateDer<'static>>>>,
    /// Microseconds since the gateway started when the client last acted.
    last_active: Arc<AtomicU64>,
    /// Its task, once started.
    abort: Option<AbortHandle>,
}

impl Slot {
    /// Ends the client's task (if it has one yet).
    fn abort(&self) {
        if let Some(task) = &self.abort {
            task.abort();
        }
    }
}

/// The clients connected now, by a number of their own.
#[derive(Debug, Default)]
struct Clients {
    slots: HashMap<u64, Slot>,
    next: u64,
}

/// Removes a client's slot when its task ends (however it ends).
struct Leave {
    clients: Arc<Mutex<Clients>>,
    id: u64,
}

impl Drop for Leave {
    fn drop(&mut self) {
        self.clients
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .slots
            .remove(&self.id);
    }
}

async fn accept(
    listener: TcpListener,
    hub: Arc<HubInner>,
    config: Arc<GatewayBuilder>,
    clients: Arc<Mutex<Clients>>,
    handshakes: Option<Handshakes>,
    draining: watch::Receiver<bool>,
) {
    let started = tokio::time::Instant::now();
    accept_loop(listener, "modbus gateway", |stream, peer, tasks| {
        let _ = stream.set_nodelay(true);
        let last_active = Arc::new(AtomicU64::new(elapsed_us(started)));
        let chain = Arc::new(OnceLock::new());
        // The client's slot is taken first, its task started after, and
        // nothing that may drop a task runs under the registry's lock: a
        // dropped task leaves its slot, which takes the lock (a runtime
        // shutting down drops a task spawned on it at once, inside
        // `spawn`: that deadlocked).
        let (id, evicted) = {
            let mut registry = clients.lock().unwrap_or_else(|p| p.into_inner());
            let mut evicted = None;
            if registry.slots.len() >= config.max_clients {
                // Full: the client idle longest makes room.
                let oldest = registry
                    .slots
                    .iter()
                    .min_by_key(|(id, s)| (s.last_active.load(Relaxed), **id))
                    .map(|(id, _)| *id);
                evicted = oldest.and_then(|id| registry.slots.remove(&id));
            }
            let id = registry.next;
            registry.next += 1;
            registry.slots.insert(
                id,
                Slot {
                    peer,
                    chain: Arc::clone(&chain),
                    last_active: Arc::clone(&last_active),
                    abort: None,
                },
            );
            (id, evicted)
        };
        if let Some(slot) = evicted {
            slot.abort();
            warn!(target: "outpost::audit", event = "limit", limit = "gateway_clients", gateway = %config.name, %peer, closed = %slot.peer, "gateway full; the client idle longest was closed");
        }
        let abort = match (&config.mode, &handshakes) {
            (Mode::Secure(..), Some(handshakes)) => {
                let (handshakes_, hub, config_) = (handshakes.clone(), Arc::clone(&hub), Arc::clone(&config));
                let (clients_, last_active_) = (Arc::clone(&clients), Arc::clone(&last_active));
                let draining_ = draining.clone();
                let chain_ = Arc::clone(&chain);
                let admitted = handshakes.admit(peer, |place| {
                    // Made here, not before: a refused connection must not
                    // drop a `Leave` while the registry is locked.
                    let leave = Leave { clients: clients_, id };
                    tasks.spawn(async move {
                        let _leave = leave;
                        let gateway = &config_.name;
                        match handshakes_.accept(place, stream, &chain_).await {
                            Ok((tls, certified)) => {
                                let identity = ClientIdentity {
                                    role: certified.role,
                                    subject: certified.subject,
                                    peer,
                                };
                                info!(target: "outpost::audit", event = "gateway.accepted", %gateway, %peer, role = %identity.role, subject = %identity.subject, "modbus/tcp security client connected");
                                let metadata = ChannelMetadata {
                                    role: identity.role.clone(),
                                    principal: identity.subject.clone(),
                                };
                                let client = Client {
                                    hub: Arc::clone(&hub),
                                    config: Arc::clone(&config_),
                                    peer,
                                    metadata,
                                    identity: Some(identity),
                                    started,
                                    last_active: last_active_,
                                    draining: draining_,
                                };
                                client.serve(tls).await;
                            }
                            Err(reason) => {
                                if hub.trail.admit("gateway.rejected", &peer.ip().to_string()) {
                                    warn!(target: "outpost::audit", event = "gateway.rejected", %gateway, %peer, %reason, "modbus/tcp security client refused");
                                }
                            }
                        }
                        debug!(%peer, "gateway client gone");
                    })
                });
                match admitted {
                    Ok(abort) => abort,
                    Err(why) => {
                        clients.lock().unwrap_or_else(|p| p.into_inner()).slots.remove(&id);
                        warn!(target: "outpost::audit", event = "limit", limit = "gateway_handshakes", gateway = %config.name, %peer, reason = why, "connection closed before TLS");
                        return;
                    }
                }
            }
            (Mode::Plain(role), _) => {
                // Every client of a plain gateway shares the gateway's
                // channels: the principal names the gateway, not the
                // client's address and port.
                let metadata = ChannelMetadata {
                    role: role.clone(),
                    principal: Principal::new(&config.name).unwrap_or_default(),
                };
                let client = Client {
                    hub: Arc::clone(&hub),
                    config: Arc::clone(&config),
                    peer,
                    metadata,
                    identity: None,
                    started,
                    last_active: Arc::clone(&last_active),
                    draining: draining.clone(),
                };
                let leave = Leave {
                    clients: Arc::clone(&clients),
                    id,
                };
                tasks.spawn(async move {
                    let _leave = leave;
                    debug!(%peer, "gateway client connected");
                    client.serve(stream).await;
                    debug!(%peer, "gateway client gone");
                })
            }
            (Mode::Secure(..), None) => {
                clients.lock().unwrap_or_else(|p| p.into_inner()).slots.remove(&id);
                return;
            }
        };
        // Recorded unless the client has left already (its task ended).
        let mut registry = clients.lock().unwrap_or_else(|p| p.into_inner());
        match registry.slots.get_mut(&id) {
            Some(slot) => slot.abort = Some(abort),
            None => abort.abort(),
        }
    })
    .await
}

fn elapsed_us(since: tokio::time::Instant) -> u64 {
    us_between(since, tokio::time::Instant::now())
}

/// Microseconds from `since` to `now` (how a client's activity is kept).
fn us_between(since: tokio::time::Instant, now: tokio::time::Instant) -> u64 {
    u64::try_from(now.saturating_duration_since(since).as_micros()).unwrap_or(u64::MAX)
}
