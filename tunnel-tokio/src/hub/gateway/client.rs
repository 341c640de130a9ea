//! One client of a gateway: reads MBAP frames, routes each request to its
//! device through the tunnel (or answers it at the hub), and writes the
//! answers back in whatever order they come.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use bytes::{Buf, BytesMut};
use outpost_modbus_core::frame::mbap::{self, MbapHeader};
use outpost_modbus_core::{ExceptionCode, FunctionCode, Request, UnitId};
use outpost_tunnel_proto::AgentId;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, Semaphore};
use tokio::task::JoinSet;
use tracing::{debug, info, warn};

use super::{elapsed_us, GatewayBuilder};
use crate::binding::ChannelMetadata;
use crate::hub::remote::RemoteClient;
use crate::hub::HubInner;
use crate::modbus::{ClientError, Requests};
use crate::profile::failure::gateway_exception;
use crate::security::{audit_denial, ClientIdentity};
use crate::tasks::AbortOnDrop;

/// One client of a gateway.
pub(super) struct Client {
    pub(super) hub: Arc<HubInner>,
    pub(super) config: Arc<GatewayBuilder>,
    pub(super) peer: SocketAddr,
    /// The role and principal its requests carry over the tunnel.
    pub(super) metadata: ChannelMetadata,
    /// On a secure gateway, who the client's certificate says it is.
    pub(super) identity: Option<ClientIdentity>,
    pub(super) started: tokio::time::Instant,
    pub(super) last_active: Arc<AtomicU64>,
    /// Set when the gateway stops.
    pub(super) draining: tokio::sync::watch::Receiver<bool>,
}

impl Client {
    pub(super) async fn serve<R, W>(self, mut rd: R, mut wr: W)
    where
        R: AsyncRead + Unpin,
        W: AsyncWrite + Unpin + Send + 'static,
    {
        let config = &self.config;
        let peer = self.peer;
        let mut draining = self.draining.clone();
        let role = self.metadata.role.clone();
        // Modbus/TCP Security answers every authorization failure with 01.
        let secure = self.identity.is_some();
        let (replies, mut outgoing) = mpsc::channel::<Vec<u8>>(config.max_in_flight);
        // The writer and every request end with this client's task.
        let mut writer = AbortOnDrop(tokio::spawn(async move {
            while let Some(frame) = outgoing.recv().await {
                if wr.write_all(&frame).await.is_err() {
                    return;
                }
                // A TLS stream keeps records back until flushed.
                if outgoing.is_empty() && wr.flush().await.is_err() {
                    return;
                }
            }
        }));
        let mut requests = JoinSet::new();
        let slots = Arc::new(Semaphore::new(config.max_in_flight));
        let mut clients: HashMap<(AgentId, String), RemoteClient> = HashMap::new();
        let mut buf = BytesMut::with_capacity(2 * mbap::MAX_ADU_LEN);
        'read: loop {
            loop {
                let frame = match mbap::decode(&buf) {
                    Ok(Some(frame)) => frame,
                    Ok(None) => break,
                    Err(e) => {
                        if self.hub.trail.admit("gateway.refused", &peer.ip().to_string()) {
                            warn!(target: "outpost::audit", event = "gateway.refused", gateway = %config.name, %peer, %role, reason = %e, "gateway client broke the MBAP framing; closed");
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
                        warn!(target: "outpost::audit", event = "gateway.refused", gateway = %config.name, %peer, %role, unit = header.unit.0, function = pdu[0], exception = 0x0Au8, reason = "no route for the unit", "gateway request refused");
                    }
                    let reply = exception_frame(header, pdu[0], ExceptionCode::GatewayPathUnavailable);
                    if replies.send(reply).await.is_err() {
                        break 'read;
                    }
                    continue;
                };
                let unit = route.unit.unwrap_or(header.unit);
                if let Some(code) = self.pre_filter(unit, &pdu, secure) {
                    if replies.send(exception_frame(header, pdu[0], code)).await.is_err() {
                        break 'read;
                    }
                    continue;
                }
                if let Some(max_age) = config.cache {
                    let cached = self
                        .hub
                        .line(&route.agent)
                        .and_then(|line| line.cached_read(&route.target, unit, &pdu, max_age));
                    if let Some(answer) = cached {
                        self.hub.counters.cached.fetch_add(1, Relaxed);
                        if replies.send(encode(header, &answer)).await.is_err() {
                            break 'read;
                        }
                        continue;
                    }
                }
                let client = clients
                    .entry((route.agent.clone(), route.target.clone()))
                    .or_insert_with(|| {
                        RemoteClient::new(
                            Arc::clone(&self.hub),
                            route.agent.clone(),
                            &route.target,
                            self.metadata.clone(),
                        )
                    })
                    .clone();
                let replies = replies.clone();
                let timeout = config.timeout;
                let audit = Arc::clone(&self.hub);
                let gateway = config.name.clone();
                let role = role.clone();
                let last_active = Arc::clone(&self.last_active);
                let started = self.started;
                requests.spawn(async move {
                    let reply = match client.send_pdu(unit, &pdu, timeout).await {
                        Ok(answer) => encode(header, &answer),
                        Err(e) => {
                            let code = match e {
                                ClientError::Denied(_) if secure => ExceptionCode::IllegalFunction,
                                _ => gateway_exception(&e),
                            };
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
                tokio::select! {
                    read = tokio::time::timeout(idle, rd.read_buf(&mut buf)) => match read {
                        Ok(read) => break read,
                        Err(_) if slots.available_permits() == config.max_in_flight => {
                            info!(gateway = %config.name, %peer, idle = ?idle, "idle gateway client closed");
                            break 'read;
                        }
                        Err(_) => {}
                    },
                    // The gateway is stopping: nothing new is read; what is
                    // in flight is answered below.
                    _ = draining.wait_for(|d| *d) => break 'read,
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

impl Client {
    /// The hub's own policy, if it has one: the exception to answer a
    /// request it denies with (and the denial audited), or `None` to pass
    /// the request on. A request that does not decode passes on: the agent
    /// refuses it.
    fn pre_filter(&self, unit: UnitId, pdu: &[u8], secure: bool) -> Option<ExceptionCode> {
        let policy = self.config.policy.as_ref()?;
        let request = Request::decode(pdu).ok()?;
        let denial = policy.check(self.metadata.role.as_str(), unit, &request).err()?;
        let identity = self.identity.clone().unwrap_or_else(|| ClientIdentity {
            role: self.metadata.role.clone(),
            subject: self.metadata.principal.clone(),
            peer: self.peer,
        });
        let code = if secure {
            ExceptionCode::IllegalFunction
        } else {
            denial.exception_code()
        };
        audit_denial(&self.hub.trail, &identity, unit, &request, &denial, code);
        Some(code)
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
