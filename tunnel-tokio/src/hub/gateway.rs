//! Modbus TCP gateways on the hub: unmodified Modbus TCP clients (SCADA,
//! HMIs, pymodbus, mbpoll) reach plant devices through the tunnel.
//!
//! Each listener maps unit ids (or all of them) to a device behind an
//! agent. Plain Modbus TCP authenticates nobody, so a listener acts for its
//! clients with the one role it is configured with; bind it to loopback or
//! to a chosen interface. Each request keeps its client's transaction id;
//! clients are served concurrently, each with a bounded number of requests
//! in flight (past it the gateway stops reading from that client). Every
//! client of a gateway shares one tunnel channel per device (the agent's
//! audit log names the gateway). A client silent for the idle time is
//! closed; when the gateway is full, the client idle longest makes room.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Buf, BytesMut};
use outpost_modbus_core::frame::mbap::{self, MbapHeader};
use outpost_modbus_core::{ExceptionCode, FunctionCode, UnitId};
use outpost_tunnel_proto::AgentId;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Semaphore};
use tokio::task::{AbortHandle, JoinSet};
use tracing::{debug, info, warn};

use super::remote::RemoteClient;
use super::{HubError, HubInner};
use crate::binding::{ChannelMetadata, Principal, Role};
use crate::modbus::{ClientError, Requests};
use crate::profile::failure::gateway_exception;
use crate::tasks::{accept_loop, AbortOnDrop};

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

/// Settings of a [`Gateway`].
#[derive(Debug, Clone)]
pub struct GatewayBuilder {
    listen: SocketAddr,
    role: Role,
    name: String,
    default: Option<Route>,
    units: HashMap<u8, Route>,
    max_clients: usize,
    max_in_flight: usize,
    timeout: Duration,
    idle_timeout: Duration,
}

impl GatewayBuilder {
    /// A gateway listening on `listen` whose clients act as `role`.
    pub fn new(listen: SocketAddr, role: Role) -> Self {
        GatewayBuilder {
            listen,
            role,
            name: format!("gateway {listen}"),
            default: None,
            units: HashMap::new(),
            max_clients: 64,
            max_in_flight: 16,
            timeout: Duration::from_secs(3),
            idle_timeout: Duration::from_secs(300),
        }
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
    /// (with each client's address).
    pub fn name(mut self, name: &str) -> Self {
        self.name = name.to_owned();
        self
    }

    /// A client that sends nothing and waits for nothing this long is
    /// closed (5 minutes).
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = timeout.max(Duration::from_millis(1));
        self
    }

    /// Clients connected at once (64); when full, the client idle longest
    /// is closed to make room for a new one.
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
}

/// A running gateway. Dropping it closes its listener and its clients.
#[derive(Debug)]
pub struct Gateway {
    local: SocketAddr,
    /// The accept loop, which owns every client task.
    _task: AbortOnDrop<()>,
}

impl Gateway {
    /// The address the gateway listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }
}

/// Binds the gateway's listener and starts serving.
pub(super) async fn start(hub: Arc<HubInner>, config: GatewayBuilder) -> Result<Gateway, HubError> {
    let listener = TcpListener::bind(config.listen).await.map_err(HubError::Bind)?;
    let local = listener.local_addr().map_err(HubError::Bind)?;
    info!(target: "outpost::audit", event = "gateway.listening", address = %local, role = %config.role, "modbus gateway listening");
    let task = AbortOnDrop(tokio::spawn(accept(listener, hub, Arc::new(config))));
    Ok(Gateway { local, _task: task })
}

/// A connected client, as the accept loop sees it.
#[derive(Debug)]
struct Slot {
    peer: SocketAddr,
    /// Microseconds since the gateway started when the client last acted.
    last_active: Arc<AtomicU64>,
    abort: AbortHandle,
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

async fn accept(listener: TcpListener, hub: Arc<HubInner>, config: Arc<GatewayBuilder>) {
    let clients = Arc::new(Mutex::new(Clients::default()));
    let started = tokio::time::Instant::now();
    accept_loop(listener, "modbus gateway", |stream, peer, tasks| {
        let mut registry = clients.lock().unwrap_or_else(|p| p.into_inner());
        if registry.slots.len() >= config.max_clients {
            // Full: the client idle longest makes room.
            let oldest = registry
                .slots
                .iter()
                .min_by_key(|(id, s)| (s.last_active.load(Relaxed), **id))
                .map(|(id, _)| *id);
            if let Some(slot) = oldest.and_then(|id| registry.slots.remove(&id)) {
                slot.abort.abort();
                warn!(target: "outpost::audit", event = "limit", limit = "gateway_clients", gateway = %config.name, %peer, closed = %slot.peer, "gateway full; the client idle longest was closed");
            }
        }
        let _ = stream.set_nodelay(true);
        let id = registry.next;
        registry.next += 1;
        let last_active = Arc::new(AtomicU64::new(elapsed_us(started)));
        let client = Client {
            hub: Arc::clone(&hub),
            config: Arc::clone(&config),
            peer,
            started,
            last_active: Arc::clone(&last_active),
        };
        let leave = Leave {
            clients: Arc::clone(&clients),
            id,
        };
        let abort = tasks.spawn(async move {
            let _leave = leave;
            debug!(%peer, "gateway client connected");
            client.serve(stream).await;
            debug!(%peer, "gateway client gone");
        });
        registry.slots.insert(id, Slot { peer, last_active, abort });
    })
    .await
}

fn elapsed_us(since: tokio::time::Instant) -> u64 {
    u64::try_from(since.elapsed().as_micros()).unwrap_or(u64::MAX)
}

/// One client of a gateway.
struct Client {
    hub: Arc<HubInner>,
    config: Arc<GatewayBuilder>,
    peer: SocketAddr,
    started: tokio::time::Instant,
    last_active: Arc<AtomicU64>,
}

impl Client {
    async fn serve(self, stream: TcpStream) {
        let config = &self.config;
        let peer = self.peer;
        let (mut rd, mut wr) = stream.into_split();
        let (replies, mut outgoing) = mpsc::channel::<Vec<u8>>(config.max_in_flight);
        // The writer and every request end with this client's task.
        let mut writer = AbortOnDrop(tokio::spawn(async move {
            while let Some(frame) = outgoing.recv().await {
                if wr.write_all(&frame).await.is_err() {
                    return;
                }
            }
        }));
        let mut requests = JoinSet::new();
        let slots = Arc::new(Semaphore::new(config.max_in_flight));
        // Every client of this gateway shares the gateway's channels: the
        // principal names the gateway, not the client's address and port.
        let principal = Principal::new(&config.name).unwrap_or_default();
        let mut clients: HashMap<(AgentId, String), RemoteClient> = HashMap::new();
        let mut buf = BytesMut::with_capacity(2 * mbap::MAX_ADU_LEN);
        'read: loop {
            loop {
                let frame = match mbap::decode(&buf) {
                    Ok(Some(frame)) => frame,
                    Ok(None) => break,
                    Err(e) => {
                        if self.hub.trail.admit("gateway.refused", &peer.ip().to_string()) {
                            warn!(target: "outpost::audit", event = "gateway.refused", gateway = %config.name, %peer, role = %config.role, reason = %e, "gateway client broke the MBAP framing; closed");
                        }
                        break 'read;
                    }
                };
                let header = frame.header;
                let pdu = bytes::Bytes::copy_from_slice(frame.pdu);
                buf.advance(frame.len());
                self.last_active.store(elapsed_us(self.started), Relaxed);
                // Bounded work per client: wait for a slot (and stop reading).
                let Ok(permit) = Arc::clone(&slots).acquire_owned().await else {
                    break 'read;
                };
                let route = config.units.get(&header.unit.0).or(config.default.as_ref());
                let Some(route) = route else {
                    if self.hub.trail.admit("gateway.refused", &peer.ip().to_string()) {
                        warn!(target: "outpost::audit", event = "gateway.refused", gateway = %config.name, %peer, role = %config.role, unit = header.unit.0, function = pdu[0], exception = 0x0Au8, reason = "no route for the unit", "gateway request refused");
                    }
                    let reply = exception_frame(header, pdu[0], ExceptionCode::GatewayPathUnavailable);
                    if replies.send(reply).await.is_err() {
                        break 'read;
                    }
                    continue;
                };
                let unit = route.unit.unwrap_or(header.unit);
                let client = clients
                    .entry((route.agent.clone(), route.target.clone()))
                    .or_insert_with(|| {
                        RemoteClient::new(
                            Arc::clone(&self.hub),
                            route.agent.clone(),
                            &route.target,
                            ChannelMetadata {
                                role: config.role.clone(),
                                principal: principal.clone(),
                            },
                        )
                    })
                    .clone();
                let replies = replies.clone();
                let timeout = config.timeout;
                let audit = Arc::clone(&self.hub);
                let gateway = config.name.clone();
                let role = config.role.clone();
                let last_active = Arc::clone(&self.last_active);
                let started = self.started;
                requests.spawn(async move {
                    let reply = match client.send_pdu(unit, &pdu, timeout).await {
                        Ok(answer) => encode(header, &answer),
                        Err(e) => {
                            let code = gateway_exception(&e);
                            let refused = matches!(
                                e,
                                ClientError::Denied(_) | ClientError::Overloaded | ClientError::ChannelLimit
                            );
                            if refused && audit.trail.admit("gateway.refused", &peer.ip().to_string()) {
                                warn!(target: "outpost::audit", event = "gateway.refused", %gateway, %peer, %role, unit = unit.0, function = pdu[0], exception = code.value(), reason = %e, "gateway request refused");
                            } else {
                                debug!(%peer, error = %e, exception = code.value(), "gateway request failed");
                            }
                            exception_frame(header, pdu[0], code)
                        }
                    };
                    let _ = replies.send(reply).await;
                    last_active.store(elapsed_us(started), Relaxed);
                    drop(permit);
                });
            }
            while requests.try_join_next().is_some() {}
            // Idle: nothing read and nothing in flight for the idle time.
            let idle = config.idle_timeout;
            let read = loop {
                match tokio::time::timeout(idle, rd.read_buf(&mut buf)).await {
                    Ok(read) => break read,
                    Err(_) if slots.available_permits() == config.max_in_flight => {
                        info!(gateway = %config.name, %peer, idle = ?idle, "idle gateway client closed");
                        break 'read;
                    }
                    Err(_) => {}
                }
            };
            match read {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
        drop(replies);
        // Answers still on their way go out before the connection closes.
        while requests.join_next().await.is_some() {}
        let _ = (&mut writer.0).await;
    }
}

fn encode(header: MbapHeader, pdu: &[u8]) -> Vec<u8> {
    let mut frame = vec![0u8; mbap::HEADER_LEN + pdu.len()];
    match mbap::encode(header, pdu, &mut frame) {
        Ok(n) => frame.truncate(n),
        Err(_) => return exception_frame(header, pdu[0], ExceptionCode::GatewayTargetFailedToRespond),
    }
    frame
}

fn exception_frame(header: MbapHeader, function: u8, code: ExceptionCode) -> Vec<u8> {
    // A function code with the exception bit set cannot be answered as such.
    let function = FunctionCode::from_u8(function & 0x7F).value() | 0x80;
    encode(header, &[function, code.value()])
}
