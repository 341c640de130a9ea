//! One session of the agent: moves the hub's channel requests and Modbus
//! requests into the sans-IO [`Admission`], forwards what it admits to the
//! devices, and moves the outcomes back. Every decision is the
//! admission's; this file logs them and moves bytes.

use std::collections::VecDeque;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use outpost_modbus_core::access::Denial;
use outpost_modbus_core::{Request, UnitId};
use outpost_tunnel_proto::{ChannelId, Message};
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use super::acquire;
use super::device::{DeviceRuntime, NoSlot};
use super::Inner;
use crate::audit::touched_span;
use crate::binding::{ChannelMetadata, Outcome};
use crate::driver::{Command, DriverEvent, Target};
use crate::in_flight::InFlight;
use crate::modbus::Requests;
use crate::profile::failure::outcome_of_device_error;
use crate::profile::{AcquisitionLink, Admission, LinkAction, LinkEvent, Refusal, Verdict};

/// Requests of one session in service at once, at most; past it, BUSY.
const MAX_REQUESTS: usize = 4096;
/// Commands waiting for room in the driver's queue before events stop
/// being read (each request yields one; the session's windows then hold
/// the hub back).
const OUTBOX: usize = MAX_REQUESTS;

/// Samples are queued for the driver only while fewer commands than this
/// wait (the publisher's window bounds them too).
const PUBLISH_BELOW: usize = 64;

/// Waits until the publisher may have a message.
async fn ready(acquisition: Option<&acquire::Acquisition>) {
    match acquisition {
        Some(a) => a.ready.notified().await,
        None => std::future::pending().await,
    }
}

/// Carries out what the acquisition link decided: an event for the
/// publisher, a command for the session. Returns whether the event was
/// the link's.
fn follow(
    acquisition: Option<&acquire::Acquisition>,
    (event, action): (LinkEvent, Option<LinkAction>),
    outbox: &mut VecDeque<Command>,
) -> bool {
    if let Some(action) = action {
        outbox.push_back(match action {
            LinkAction::Open => Command::Open {
                token: 0,
                target: Box::new(Target {
                    name: Bytes::from_static(acquire::CHANNEL),
                    metadata: Bytes::new(),
                }),
            },
            LinkAction::Reset(channel, code) => Command::Reset(channel, code),
        });
    }
    let Some(a) = acquisition else {
        return event != LinkEvent::NotOurs;
    };
    match event {
        LinkEvent::NotOurs => return false,
        LinkEvent::Taken => {}
        LinkEvent::Connected(channel) => {
            a.connected();
            debug!(%channel, "the hub takes samples");
            publish(a, channel, outbox);
        }
        LinkEvent::Send(channel) => publish(a, channel, outbox),
        LinkEvent::Stopped => a.disconnected(),
    }
    true
}

/// Queues the publisher's messages for the hub.
fn publish(acquisition: &acquire::Acquisition, channel: ChannelId, outbox: &mut VecDeque<Command>) {
    while outbox.len() < PUBLISH_BELOW {
        let Some(payload) = acquisition.poll_message() else {
            return;
        };
        outbox.push_back(Command::Send {
            channel,
            correlation: 0,
            payload,
        });
    }
}

/// A forwarded request whose outcome was handed to the driver.
struct Answered {
    channel: ChannelId,
    correlation: u32,
}

/// Handles the session's events until the driver ends. Returns whether the
/// session was established.
pub(super) async fn serve(
    inner: Arc<Inner>,
    mut events: mpsc::Receiver<DriverEvent>,
    commands: mpsc::Sender<Command>,
) -> bool {
    let mut established = false;
    let mut admission: Admission<Arc<DeviceRuntime>> = Admission::new(MAX_REQUESTS);
    // Requests forwarded to their devices, polled by this task (no task
    // per request: see `InFlight`).
    let mut requests: InFlight<(Answered, Command)> = InFlight::default();
    let mut outbox: VecDeque<Command> = VecDeque::new();
    // A stop: GOAWAY tells the hub, which sends nothing new and closes its
    // channels as their requests end; the session then closes itself
    // (or when the grace period is over).
    let mut stopping = inner.stopping.subscribe();
    let mut going_away = false;
    // The data acquisition channel: opened once the session is up, carries
    // samples once the hub accepted it (the rules: `AcquisitionLink`).
    let acquisition = inner.acquisition.clone();
    let mut link = AcquisitionLink::new();
    if let Some(grace) = *stopping.borrow_and_update() {
        going_away = true;
        link.stop();
        outbox.push_back(Command::GoAway(grace));
    }
    // The grace period of the stop asked for (none to wait for when the
    // agent is gone). One future for the session's life: a `changed()`
    // made per turn cost a waiter's registration and removal under the
    // watch's lock on each.
    let stop = async move {
        loop {
            if stopping.changed().await.is_err() {
                return Duration::ZERO;
            }
            if let Some(grace) = *stopping.borrow_and_update() {
                return grace;
            }
        }
    };
    tokio::pin!(stop);
    loop {
        // Commands go to the driver at once while it has room (a turn of
        // the loop saved per command); the rest wait below for room.
        while !outbox.is_empty() {
            match commands.try_reserve() {
                Ok(permit) => {
                    if let Some(command) = outbox.pop_front() {
                        permit.send(command);
                    }
                }
                // Full: waits below; closed: found below too.
                Err(_) => break,
            }
        }
        tokio::select! {
            (answered, command) = requests.next(), if !requests.is_empty() => {
                admission.finished(answered.channel, answered.correlation);
                outbox.push_back(command);
            }
            event = events.recv(), if outbox.len() < OUTBOX => {
                let Some(event) = event else { break };
                match event {
                    DriverEvent::Established(agent) => {
                        established = true;
                        if acquisition.is_some() {
                            follow(acquisition.as_deref(), (LinkEvent::Taken, link.established()), &mut outbox);
                        }
                        inner.counters.sessions.fetch_add(1, Relaxed);
                        let _ = inner.connected.send(true);
                        info!(target: "outpost::audit", event = "session.established", %agent, hub = %inner.hub, "session established with the hub");
                    }
                    DriverEvent::ChannelRequested { channel, kind, target } => {
                        let name = String::from_utf8_lossy(&target.name);
                        match admission.open(channel, kind, &target.name, &target.metadata, |n| inner.devices.get(n).cloned()) {
                            Ok(grant) => {
                                debug!(%channel, device = %grant.device.name, role = %grant.metadata.role, "channel accepted");
                                outbox.push_back(Command::Accept(channel));
                            }
                            Err(refusal) => {
                                warn!(target: "outpost::audit", event = "channel.refused", agent = %inner.id, %channel, device = %name, reason = ?refusal, "channel refused");
                                outbox.push_back(Command::Refuse(channel, refusal.code()));
                            }
                        }
                    }
                    DriverEvent::Opened { result, .. } => {
                        if let Err(e) = &result {
                            warn!(agent = %inner.id, error = %e, "the data acquisition channel could not be opened");
                        }
                        let action = link.opened(result.map_err(|_| ()));
                        follow(acquisition.as_deref(), (LinkEvent::Taken, action), &mut outbox);
                    }
                    DriverEvent::ChannelAccepted(channel) => {
                        follow(acquisition.as_deref(), (link.accepted(channel), None), &mut outbox);
                    }
                    DriverEvent::ChannelRefused(channel, code) => {
                        if follow(acquisition.as_deref(), (link.refused(channel), None), &mut outbox) {
                            warn!(agent = %inner.id, %code, "the hub refused the data acquisition channel; samples wait for the next session");
                        }
                    }
                    DriverEvent::Message(channel, message) if link.carrying() == Some(channel) => {
                        let handled = acquisition.as_deref().map(|a| a.handle(&message.payload));
                        if let Some(Err(e)) = &handled {
                            warn!(agent = %inner.id, error = %e, "the hub sent a data acquisition message that is not one; channel reset");
                        }
                        let valid = matches!(handled, Some(Ok(())));
                        follow(acquisition.as_deref(), link.message(channel, valid), &mut outbox);
                    }
                    DriverEvent::Message(channel, message) => {
                        if let Some(command) = admit(&inner, &mut admission, &mut requests, channel, message) {
                            outbox.push_back(command);
                        }
                    }
                    DriverEvent::ChannelGone(channel) => {
                        if follow(acquisition.as_deref(), (link.gone(channel), None), &mut outbox) {
                            debug!(agent = %inner.id, %channel, "the data acquisition channel is gone; samples wait for the next session");
                        } else {
                            admission.channel_gone(channel);
                        }
                    }
                    // The hub is stopping: it closes once every channel is.
                    DriverEvent::GoingAway => {
                        follow(acquisition.as_deref(), link.stop(), &mut outbox);
                    }
                }
            }
            () = ready(acquisition.as_deref()), if link.carrying().is_some() && outbox.len() < PUBLISH_BELOW => {
                if let (Some(a), Some(channel)) = (&acquisition, link.carrying()) {
                    publish(a, channel, &mut outbox);
                }
            }
            grace = &mut stop, if !going_away => {
                going_away = true;
                outbox.push_back(Command::GoAway(grace));
                // The session closes once every channel is: samples not
                // acknowledged wait for the next run (or the spool).
                follow(acquisition.as_deref(), link.stop(), &mut outbox);
            }
            permit = commands.reserve(), if !outbox.is_empty() => match permit {
                Ok(permit) => {
                    if let Some(command) = outbox.pop_front() {
                        permit.send(command);
                    }
                }
                Err(_) => break,
            },
        }
    }
    // The session is over: requests still running have no one to answer;
    // samples not acknowledged wait for the next.
    drop(requests);
    if let Some(a) = &acquisition {
        a.disconnected();
    }
    established
}

/// Decides on one request: a command to send now, or a task that forwards
/// it to the device.
fn admit(
    inner: &Arc<Inner>,
    admission: &mut Admission<Arc<DeviceRuntime>>,
    requests: &mut InFlight<(Answered, Command)>,
    channel: ChannelId,
    message: Message,
) -> Option<Command> {
    let received = Instant::now();
    let correlation = message.correlation;
    // The device only: the grant's metadata is borrowed again where a
    // refusal or a write is audited (no copy of its strings per request).
    let device = Arc::clone(&admission.grant(channel)?.device);
    let policy = inner.policy();
    let verdict = admission.handle_request(channel, correlation, &message.payload, &policy, |d, unit| {
        d.serves(unit)
    });
    match verdict {
        Verdict::Ignore => None,
        Verdict::Reset(code) => {
            warn!(target: "outpost::audit", event = "channel.reset", agent = %inner.id, %channel, device = %device.name, %code, "the hub broke the profile; channel reset");
            Some(Command::Reset(channel, code))
        }
        Verdict::Refuse {
            refusal,
            unit,
            function,
            request,
        } => {
            inner.counters.requests.fetch_add(1, Relaxed);
            // The addresses it asked for, when it decoded that far.
            let span = request.as_ref().and_then(touched_span);
            // A refusal leaves the channel (and its grant) in place.
            if let Some(grant) = admission.grant(channel) {
                audit_refusal(
                    inner,
                    &device,
                    &grant.metadata,
                    &refusal,
                    (unit.0, function.map(|f| f.value())),
                    span,
                );
            }
            let outcome = refusal.outcome();
            inner.meters.outcomes.add(outcome.name());
            Some(send(channel, correlation, &outcome))
        }
        Verdict::Forward(admitted) => {
            inner.counters.requests.fetch_add(1, Relaxed);
            if admitted.request.is_write() || admitted.unit.0 == 0 {
                if let Some(grant) = admission.grant(channel) {
                    audit_allowed(inner, &device, &grant.metadata, admitted.unit, &admitted.request);
                }
            }
            let pdu = message.payload.slice_ref(admitted.pdu);
            let unit = admitted.unit;
            let deadline = received + admitted.budget;
            let inner = Arc::clone(inner);
            // An outcome for a channel reset meanwhile is dropped by the
            // session.
            requests.push(Box::pin(async move {
                let outcome = forward(&inner, &device, unit, &pdu, deadline).await;
                let mut payload = Vec::new();
                match &outcome {
                    Ok(answer) => Outcome::Answered(answer).encode(&mut payload),
                    Err(o) => o.encode(&mut payload),
                }
                inner.meters.outcomes.add(match &outcome {
                    Ok(_) => "ANSWERED",
                    Err(o) => o.name(),
                });
                let command = Command::Send {
                    channel,
                    correlation,
                    payload: Bytes::from(payload),
                };
                (Answered { channel, correlation }, command)
            }));
            None
        }
    }
}

/// The outcome message for `outcome`.
fn send(channel: ChannelId, correlation: u32, outcome: &Outcome<'_>) -> Command {
    let mut payload = Vec::with_capacity(outcome.encoded_len());
    outcome.encode(&mut payload);
    Command::Send {
        channel,
        correlation,
        payload: Bytes::from(payload),
    }
}

fn audit_refusal(
    inner: &Inner,
    device: &DeviceRuntime,
    metadata: &ChannelMetadata,
    refusal: &Refusal,
    (unit, function): (u8, Option<u8>),
    span: Option<(u16, u16)>,
) {
    let (start, quantity) = span.unwrap_or((0, 0));
    // 0 when the request did not decode as far as its function.
    let function = function.unwrap_or(0);
    let role = metadata.role.as_str();
    let principal = &metadata.principal;
    match refusal {
        Refusal::Unit => inner.meters.denials.add("unit"),
        Refusal::Policy(denial) => inner.meters.denials.add(match denial {
            Denial::UnknownRole { .. } => "unknown_role",
            Denial::Unit { .. } => "unit",
            Denial::Function { .. } => "function",
            Denial::Address { .. } => "address",
            Denial::File { .. } => "file",
            Denial::Fifo { .. } => "fifo",
            _ => "other",
        }),
        _ => {}
    }
    if matches!(refusal, Refusal::Unit | Refusal::Policy(_)) {
        inner.counters.denials.fetch_add(1, Relaxed);
    }
    // One source (a principal acting as a role) sending junk is summarised.
    if !inner.trail.admit("request.refused", &format!("{principal} as {role}")) {
        return;
    }
    match refusal {
        Refusal::Unit | Refusal::Policy(_) => {
            let rule: &dyn std::fmt::Display = match refusal {
                Refusal::Policy(denial) => denial,
                _ => &"the device does not serve this unit",
            };
            warn!(
                target: "outpost::audit",
                event = "request.denied",
                agent = %inner.id,
                hub = %inner.hub,
                role,
                %principal,
                device = %device.name,
                unit,
                function,
                start,
                quantity,
                %rule,
                "request denied"
            );
        }
        other => {
            let reason = match other {
                Refusal::RetriedWrite => "a write marked as a retry is never sent twice",
                _ => "not a valid Modbus request",
            };
            // One line per refusal: a limit hit, or a refused request.
            if matches!(other, Refusal::Busy) {
                warn!(target: "outpost::audit", event = "limit", limit = "requests_in_service", agent = %inner.id, role, %principal, device = %device.name, unit, function, "request refused: too many requests in service");
            } else {
                warn!(target: "outpost::audit", event = "request.refused", agent = %inner.id, role, %principal, device = %device.name, unit, function, reason, "request refused");
            }
        }
    }
}

/// Audits a request that changes the device, or a broadcast, before it goes.
fn audit_allowed(
    inner: &Inner,
    device: &DeviceRuntime,
    metadata: &ChannelMetadata,
    unit: UnitId,
    request: &Request<'_>,
) {
    let function = request.function().value();
    let kind = if unit.0 == 0 {
        "broadcast"
    } else if function == 0x08 {
        "device_control"
    } else {
        "write"
    };
    let (start, quantity) = touched_span(request).unwrap_or((0, 0));
    info!(
        target: "outpost::audit",
        event = "request.allowed",
        agent = %inner.id,
        role = metadata.role.as_str(),
        principal = %metadata.principal,
        device = %device.name,
        unit = unit.0,
        function,
        start,
        quantity,
        kind,
        "request allowed"
    );
}

/// Waits for the device's turn within the budget, then asks it.
async fn forward(
    inner: &Inner,
    device: &DeviceRuntime,
    unit: outpost_modbus_core::UnitId,
    pdu: &[u8],
    deadline: Instant,
) -> Result<Bytes, Outcome<'static>> {
    let _slot = device.slot(deadline).await.map_err(|e| match e {
        NoSlot::Busy => {
            warn!(target: "outpost::audit", event = "limit", limit = "device_queue", agent = %inner.id, device = %device.name, "request refused: the device's queue is full");
            Outcome::Busy
        }
        NoSlot::Expired => Outcome::Expired,
    })?;
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(Outcome::Expired);
    }
    let sent = Instant::now();
    let answer = device.client.send_pdu(unit, pdu, left.min(device.timeout)).await;
    device.latency.record(sent.elapsed().as_secs_f64());
    // Whether the device can be reached is logged when it changes, not per
    // request: an operator sees a PLC go away and come back.
    let unreachable = matches!(answer, Err(crate::modbus::ClientError::Connect(_)));
    if device.unreachable.swap(unreachable, Relaxed) != unreachable {
        match &answer {
            Err(e) if unreachable => warn!(agent = %inner.id, device = %device.name, error = %e, "device unreachable"),
            _ => info!(agent = %inner.id, device = %device.name, "device reachable again"),
        }
    }
    match answer {
        Ok(pdu) => {
            inner.counters.answered.fetch_add(1, Relaxed);
            Ok(pdu)
        }
        Err(e) => {
            let outcome = outcome_of_device_error(&e);
            if matches!(e, crate::modbus::ClientError::DeviceFault) {
                warn!(device = %device.name, "the device answered a request it was not asked; its requests failed at once");
            } else {
                debug!(device = %device.name, error = %e, outcome = outcome.name(), "device request failed");
            }
            Err(outcome)
        }
    }
}
