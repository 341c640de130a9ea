//! One session of the agent: answering the hub's channel requests and
//! serving its Modbus requests from the plant's devices under the local
//! policy.

use std::collections::HashMap;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use outpost_modbus_core::{ExceptionCode, Request};
use outpost_tunnel_proto::{ChannelId, ChannelKind, ErrorCode, Message};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tracing::{debug, info, warn};

use super::device::DeviceRuntime;
use super::Inner;
use crate::binding::{ChannelMetadata, Outcome, TunnelRequest};
use crate::driver::{Command, DriverEvent};
use crate::modbus::{ClientError, Requests};

/// Requests of one session being served at once, at most.
const MAX_REQUESTS: usize = 1024;

/// What a channel is for: one device, one role.
#[derive(Debug)]
struct ChannelCtx {
    channel: ChannelId,
    device: Arc<DeviceRuntime>,
    metadata: ChannelMetadata,
}

/// Sends a command from its own task, so the event loop never waits on the driver.
fn send_later(commands: &mpsc::Sender<Command>, command: Command) {
    let commands = commands.clone();
    tokio::spawn(async move {
        let _ = commands.send(command).await;
    });
}

/// Handles the session's events until the driver ends. Returns whether the
/// session was established.
pub(super) async fn serve(
    inner: Arc<Inner>,
    mut events: mpsc::Receiver<DriverEvent>,
    commands: mpsc::Sender<Command>,
) -> bool {
    let mut established = false;
    let mut channels: HashMap<ChannelId, Arc<ChannelCtx>> = HashMap::new();
    let mut requests = JoinSet::new();
    while let Some(event) = events.recv().await {
        while requests.try_join_next().is_some() {}
        match event {
            DriverEvent::Established(agent) => {
                established = true;
                inner.counters.sessions.fetch_add(1, Relaxed);
                let _ = inner.connected.send(true);
                info!(target: "outpost::audit", %agent, hub = %inner.hub, "session established with the hub");
            }
            DriverEvent::ChannelRequested {
                channel,
                kind,
                target,
                metadata,
            } => match open(&inner, channel, kind, &target, &metadata) {
                Ok(ctx) => {
                    debug!(%channel, device = %ctx.device.name, role = %ctx.metadata.role, "channel accepted");
                    channels.insert(channel, Arc::new(ctx));
                    send_later(&commands, Command::Accept(channel));
                }
                Err(code) => send_later(&commands, Command::Refuse(channel, code)),
            },
            DriverEvent::Message(channel, message) => {
                let Some(ctx) = channels.get(&channel) else {
                    continue;
                };
                // Bounded work: past the cap, wait for a request to finish
                // (the session's windows then hold the hub back).
                while requests.len() >= MAX_REQUESTS {
                    let _ = requests.join_next().await;
                }
                let ctx = Arc::clone(ctx);
                let inner = Arc::clone(&inner);
                let commands = commands.clone();
                requests.spawn(async move {
                    let command = answer(&inner, &ctx, message).await;
                    let _ = commands.send(command).await;
                });
            }
            DriverEvent::ChannelGone(channel) => {
                channels.remove(&channel);
            }
            DriverEvent::ChannelAccepted(_) | DriverEvent::ChannelRefused(..) | DriverEvent::GoingAway => {}
        }
    }
    // The session is over: requests still running have no one to answer.
    requests.abort_all();
    established
}

/// Decides on a channel the hub asks for.
fn open(
    inner: &Inner,
    channel: ChannelId,
    kind: ChannelKind,
    target: &[u8],
    metadata: &[u8],
) -> Result<ChannelCtx, ErrorCode> {
    let target = String::from_utf8_lossy(target);
    if kind != ChannelKind::Message {
        warn!(target: "outpost::audit", %channel, device = %target, "refused a stream channel: only Modbus messages are served");
        return Err(ErrorCode::Refused);
    }
    let Some(device) = inner.devices.get(target.as_ref()) else {
        warn!(target: "outpost::audit", %channel, device = %target, "refused a channel to an unknown device");
        return Err(ErrorCode::UnknownTarget);
    };
    let metadata = ChannelMetadata::decode(metadata).map_err(|e| {
        warn!(target: "outpost::audit", %channel, device = %target, error = %e, "refused a channel with bad metadata");
        e.code()
    })?;
    Ok(ChannelCtx {
        channel,
        device: Arc::clone(device),
        metadata,
    })
}

/// Serves one request and builds the message that answers it (or the
/// reset of a channel that broke the profile).
async fn answer(inner: &Inner, ctx: &ChannelCtx, message: Message) -> Command {
    let received = Instant::now();
    let request = match TunnelRequest::decode(&message.payload) {
        Ok(r) => r,
        Err(e) => {
            warn!(target: "outpost::audit", channel = %ctx.channel, error = %e, "malformed request; channel reset");
            return Command::Reset(ctx.channel, e.code());
        }
    };
    inner.counters.requests.fetch_add(1, Relaxed);
    let mut pdu_out = Vec::new();
    let outcome = serve_request(inner, ctx, &request, received).await;
    match &outcome {
        Ok(pdu) => Outcome::Answered(pdu).encode(&mut pdu_out),
        Err(o) => o.encode(&mut pdu_out),
    }
    Command::Send {
        channel: ctx.channel,
        correlation: message.correlation,
        payload: Bytes::from(pdu_out),
    }
}

/// The device's answer, or the outcome that replaces it.
async fn serve_request(
    inner: &Inner,
    ctx: &ChannelCtx,
    request: &TunnelRequest<'_>,
    received: Instant,
) -> Result<Bytes, Outcome<'static>> {
    let unit = request.unit();
    let device = &ctx.device;
    let role = ctx.metadata.role.as_str();
    let decoded = Request::decode(request.pdu()).map_err(|e| {
        let code = match e.exception_code() {
            c @ (ExceptionCode::IllegalFunction | ExceptionCode::IllegalDataAddress) => c,
            _ => ExceptionCode::IllegalDataValue,
        };
        Outcome::Malformed(code)
    })?;
    let deny = |code: ExceptionCode, reason: &dyn std::fmt::Display| {
        inner.counters.denials.fetch_add(1, Relaxed);
        warn!(
            target: "outpost::audit",
            agent = %inner.id,
            hub = %inner.hub,
            role,
            principal = %ctx.metadata.principal,
            device = %device.name,
            unit = unit.0,
            function = decoded.function().value(),
            %reason,
            "request denied"
        );
        Outcome::Denied(code)
    };
    if request.is_retry() && decoded.is_write() {
        warn!(target: "outpost::audit", role, device = %device.name, "a retried write was refused");
        return Err(Outcome::Malformed(ExceptionCode::IllegalDataValue));
    }
    if !device.serves(unit) {
        return Err(deny(
            ExceptionCode::GatewayPathUnavailable,
            &"the device does not serve this unit",
        ));
    }
    if let Err(denial) = inner.policy.check(role, unit, &decoded) {
        return Err(deny(denial.exception_code(), &denial));
    }
    let Ok(_permit) = Arc::clone(&device.slots).try_acquire_owned() else {
        return Err(Outcome::Busy);
    };
    let deadline = received + request.budget();
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(Outcome::Expired);
    }
    match device
        .client
        .send_pdu(unit, request.pdu(), left.min(device.timeout))
        .await
    {
        Ok(pdu) => {
            inner.counters.answered.fetch_add(1, Relaxed);
            Ok(pdu)
        }
        Err(e) => {
            debug!(device = %device.name, error = %e, "device request failed");
            Err(match e {
                ClientError::Connect(_) | ClientError::Closed => Outcome::Unreachable,
                ClientError::Expired => Outcome::Expired,
                ClientError::Broadcast => Outcome::Denied(ExceptionCode::GatewayPathUnavailable),
                ClientError::InvalidRequest(_) | ClientError::Encode(_) => {
                    Outcome::Malformed(ExceptionCode::IllegalDataValue)
                }
                // Sent, or maybe sent, without a valid answer.
                _ => Outcome::NoAnswer,
            })
        }
    }
}
