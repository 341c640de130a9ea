//! One client of a gateway: reads MBAP frames, routes each request to its
//! device through the tunnel (or answers it at the hub), and writes the
//! answers back in whatever order they come.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use bytes::{Buf, BytesMut};
use outpost_modbus_core::frame::mbap::{self, MbapHeader};
use outpost_modbus_core::{ExceptionCode, FunctionCode, Request, UnitId};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tracing::{debug, info, warn};

use super::{us_between, GatewayBuilder};
use crate::binding::ChannelMetadata;
use crate::hub::remote::RemoteClient;
use crate::hub::HubInner;
use crate::in_flight::{Boxed, InFlight};
use crate::modbus::{ClientError, Requests};
use crate::profile::failure::gateway_exception;
use crate::security::{audit_denial, ClientIdentity};

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

/// An answer on its way: the reply frame, once the request ends.
type Answer = Boxed<Vec<u8>>;

impl Client {
    /// Serves the client until it leaves, breaks the framing, idles out or
    /// the gateway stops.
    ///
    /// Everything happens in the client's own task: requests in flight
    /// are polled here (up to `max_in_flight`, then nothing more is read)
    /// and their answers written here, in whatever order they end. No task
    /// per request and no writer task: each was a hand-off on every
    /// request's path (measured on the gateway path's bench).
    pub(super) async fn serve<S>(self, mut stream: S)
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let config = &self.config;
        let peer = self.peer;
        let mut draining = self.draining.clone();
        let role: Arc<str> = Arc::from(self.metadata.role.as_str());
        // Modbus/TCP Security answers every authorization failure with 01.
        let secure = self.identity.is_some();
        let mut in_flight: InFlight<Vec<u8>> = InFlight::default();
        // The client of each route used so far (at most 257: a unit's own,
        // or the default), made once, not per request.
        let mut clients: Vec<(Option<u8>, Arc<RemoteClient>)> = Vec::new();
        let mut buf = BytesMut::with_capacity(2 * mbap::MAX_ADU_LEN);
        let idle = config.idle_timeout;
        let mut last_activity = tokio::time::Instant::now();
        // The idle timer moves only when it fires (a timer per read cost
        // the runtime's wheel an insertion and a removal per request).
        let idle_timer = tokio::time::sleep_until(last_activity + idle);
        tokio::pin!(idle_timer);
        // One future for the client's life (one made per turn cost a
        // waiter's registration and removal under the watch's lock).
        let drain = async move {
            let _ = draining.wait_for(|d| *d).await;
        };
        tokio::pin!(drain);
        'read: loop {
            // Bounded work per client: past its limit, nothing is decoded
            // (or read) until an answer goes out.
            while in_flight.len() < config.max_in_flight {
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
                match self.route(header, pdu, secure, &mut clients, &role) {
                    Routed::Answer(reply) => {
                        if !write(&mut stream, &reply).await {
                            break 'read;
                        }
                    }
                    Routed::Sent(request) => in_flight.push(request),
                }
            }
            let full = in_flight.len() >= config.max_in_flight;
            tokio::select! {
                reply = in_flight.next(), if !in_flight.is_empty() => {
                    last_activity = tokio::time::Instant::now();
                    self.touch(last_activity);
                    if !write(&mut stream, &reply).await {
                        break 'read;
                    }
                }
                read = stream.read_buf(&mut buf), if !full => {
                    last_activity = tokio::time::Instant::now();
                    self.touch(last_activity);
                    match read {
                        Ok(0) | Err(_) => break 'read,
                        Ok(_) => {}
                    }
                }
                // Idle: nothing in flight, and nothing read nor answered, for
                // the idle time.
                () = &mut idle_timer => {
                    let now = tokio::time::Instant::now();
                    if now < last_activity + idle {
                        idle_timer.as_mut().reset(last_activity + idle);
                    } else if in_flight.is_empty() {
                        info!(gateway = %config.name, %peer, idle = ?idle, "idle gateway client closed");
                        break 'read;
                    } else {
                        idle_timer.as_mut().reset(now + idle);
                    }
                }
                // The gateway is stopping: nothing new is read; what is in
                // flight is answered below.
                () = &mut drain => break 'read,
            }
        }
        // Answers still on their way go out before the connection closes
        // (each ends by its timeout).
        while !in_flight.is_empty() {
            let reply = in_flight.next().await;
            if !write(&mut stream, &reply).await {
                break;
            }
        }
    }

    /// Routes one request: an answer made here (no route, the hub's policy,
    /// a cached read), or the request sent through the tunnel.
    fn route(
        &self,
        header: MbapHeader,
        pdu: bytes::Bytes,
        secure: bool,
        clients: &mut Vec<(Option<u8>, Arc<RemoteClient>)>,
        role: &Arc<str>,
    ) -> Routed {
        let config = &self.config;
        let peer = self.peer;
        // Which route: the unit's own (keyed by the unit) or the default.
        let (key, route) = match config.units.get(&header.unit.0) {
            Some(route) => (Some(header.unit.0), Some(route)),
            None => (None, config.default.as_ref()),
        };
        let Some(route) = route else {
            if self.hub.trail.admit("gateway.refused", &peer.ip().to_string()) {
                warn!(target: "outpost::audit", event = "gateway.refused", gateway = %config.name, %peer, %role, unit = header.unit.0, function = pdu[0], exception = 0x0Au8, reason = "no route for the unit", "gateway request refused");
            }
            return Routed::Answer(exception_frame(header, pdu[0], ExceptionCode::GatewayPathUnavailable));
        };
        let unit = route.unit.unwrap_or(header.unit);
        if let Some(code) = self.pre_filter(unit, &pdu, secure) {
            return Routed::Answer(exception_frame(header, pdu[0], code));
        }
        if let Some(max_age) = config.cache {
            let cached = self
                .hub
                .line(&route.agent)
                .and_then(|line| line.cached_read(&route.target, unit, &pdu, max_age));
            if let Some(answer) = cached {
                self.hub.counters.cached.fetch_add(1, Relaxed);
                return Routed::Answer(encode(header, &answer));
            }
        }
        let client = match clients.iter().find(|(k, _)| *k == key) {
            Some((_, client)) => Arc::clone(client),
            None => {
                let client = Arc::new(RemoteClient::new(
                    Arc::clone(&self.hub),
                    route.agent.clone(),
                    &route.target,
                    self.metadata.clone(),
                ));
                clients.push((key, Arc::clone(&client)));
                client
            }
        };
        let timeout = config.timeout;
        let audit = Arc::clone(&self.hub);
        // Shared, not copied: the gateway's name and the role are only
        // read when a refusal is audited.
        let config = Arc::clone(config);
        let role = Arc::clone(role);
        Routed::Sent(Box::pin(async move {
            match client.send_pdu(unit, &pdu, timeout).await {
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
                        warn!(target: "outpost::audit", event = "gateway.refused", gateway = %config.name, %peer, %role, unit = unit.0, function = pdu[0], exception = code.value(), reason = %e, "gateway request refused");
                    } else {
                        debug!(%peer, error = %e, exception = code.value(), "gateway request failed");
                    }
                    exception_frame(header, pdu[0], code)
                }
            }
        }))
    }
}

/// What became of a request.
enum Routed {
    /// Answered at the hub.
    Answer(Vec<u8>),
    /// Sent through the tunnel: its answer comes from this future.
    Sent(Answer),
}

/// Writes one answer and flushes it (a TLS stream keeps records back until
/// flushed). Returns whether the client can still be written to.
async fn write<S: AsyncWrite + Unpin>(stream: &mut S, frame: &[u8]) -> bool {
    stream.write_all(frame).await.is_ok() && stream.flush().await.is_ok()
}

impl Client {
    /// Activity at `now`: the gateway's registry makes room by closing the
    /// client idle longest.
    fn touch(&self, now: tokio::time::Instant) {
        self.last_active.store(us_between(self.started, now), Relaxed);
    }

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
