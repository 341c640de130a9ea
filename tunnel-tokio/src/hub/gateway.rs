//! Modbus TCP gateways on the hub: unmodified Modbus TCP clients (SCADA,
//! HMIs, pymodbus, mbpoll) reach plant devices through the tunnel.
//!
//! Each listener maps unit ids (or all of them) to a device behind an
//! agent. Plain Modbus TCP authenticates nobody, so a listener acts for its
//! clients with the one role it is configured with; bind it to loopback or
//! to a chosen interface. Each request keeps its client's transaction id;
//! clients are served concurrently, each with a bounded number of requests
//! in flight (past it the gateway stops reading from that client).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, BytesMut};
use outpost_modbus_core::frame::mbap::{self, MbapHeader};
use outpost_modbus_core::{ExceptionCode, FunctionCode, UnitId};
use outpost_tunnel_proto::AgentId;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Semaphore};
use tokio::task::{JoinHandle, JoinSet};
use tracing::{debug, info, warn};

use super::remote::RemoteClient;
use super::{HubError, HubInner};
use crate::binding::{ChannelMetadata, Principal, Role};
use crate::modbus::{ClientError, Requests};

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

    /// Clients connected at once (64); more are closed at once.
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
    task: JoinHandle<()>,
}

impl Gateway {
    /// The address the gateway listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Binds the gateway's listener and starts serving.
pub(super) async fn start(hub: Arc<HubInner>, config: GatewayBuilder) -> Result<Gateway, HubError> {
    let listener = TcpListener::bind(config.listen).await.map_err(HubError::Bind)?;
    let local = listener.local_addr().map_err(HubError::Bind)?;
    info!(target: "outpost::audit", address = %local, role = %config.role, "modbus gateway listening");
    let task = tokio::spawn(accept(listener, hub, Arc::new(config)));
    Ok(Gateway { local, task })
}

async fn accept(listener: TcpListener, hub: Arc<HubInner>, config: Arc<GatewayBuilder>) {
    let mut clients = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        warn!(error = %e, "gateway accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                if clients.len() >= config.max_clients {
                    warn!(%peer, "gateway full; client closed");
                    continue;
                }
                let _ = stream.set_nodelay(true);
                let hub = Arc::clone(&hub);
                let config = Arc::clone(&config);
                clients.spawn(async move {
                    debug!(%peer, "gateway client connected");
                    serve_client(stream, peer, hub, config).await;
                    debug!(%peer, "gateway client gone");
                });
            }
            Some(_) = clients.join_next(), if !clients.is_empty() => {}
        }
    }
}

/// The exception a gateway answers with when a request fails.
fn exception_for(error: &ClientError) -> ExceptionCode {
    match error {
        ClientError::Exception(code) | ClientError::Denied(code) => *code,
        ClientError::InvalidRequest(e) => e.exception_code(),
        ClientError::Busy => ExceptionCode::ServerDeviceBusy,
        ClientError::Unreachable
        | ClientError::NoAgent(_)
        | ClientError::Refused(_)
        | ClientError::Connect(_)
        | ClientError::Broadcast
        | ClientError::Closed => ExceptionCode::GatewayPathUnavailable,
        // Sent, maybe, and no valid answer: the target failed to respond.
        _ => ExceptionCode::GatewayTargetFailedToRespond,
    }
}

async fn serve_client(stream: TcpStream, peer: SocketAddr, hub: Arc<HubInner>, config: Arc<GatewayBuilder>) {
    let (mut rd, mut wr) = stream.into_split();
    let (replies, mut outgoing) = mpsc::channel::<Vec<u8>>(config.max_in_flight);
    let writer = tokio::spawn(async move {
        while let Some(frame) = outgoing.recv().await {
            if wr.write_all(&frame).await.is_err() {
                return;
            }
        }
    });
    let slots = Arc::new(Semaphore::new(config.max_in_flight));
    let principal = Principal::new(&format!("{} client {peer}", config.name)).unwrap_or_default();
    let mut clients: HashMap<(AgentId, String), RemoteClient> = HashMap::new();
    let mut buf = BytesMut::with_capacity(2 * mbap::MAX_ADU_LEN);
    'read: loop {
        loop {
            let frame = match mbap::decode(&buf) {
                Ok(Some(frame)) => frame,
                Ok(None) => break,
                Err(e) => {
                    warn!(%peer, error = %e, "gateway client broke the MBAP framing; closed");
                    break 'read;
                }
            };
            let header = frame.header;
            let pdu = bytes::Bytes::copy_from_slice(frame.pdu);
            buf.advance(frame.len());
            // Bounded work per client: wait for a slot (and stop reading).
            let Ok(permit) = Arc::clone(&slots).acquire_owned().await else {
                break 'read;
            };
            let route = config.units.get(&header.unit.0).or(config.default.as_ref());
            let Some(route) = route else {
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
                        Arc::clone(&hub),
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
            tokio::spawn(async move {
                let _permit = permit;
                let reply = match client.send_pdu(unit, &pdu, timeout).await {
                    Ok(answer) => encode(header, &answer),
                    Err(e) => {
                        debug!(error = %e, "gateway request failed");
                        exception_frame(header, pdu[0], exception_for(&e))
                    }
                };
                let _ = replies.send(reply).await;
            });
        }
        match rd.read_buf(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
    }
    drop(replies);
    let _ = writer.await;
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
