//! One agent as the hub's API sees it, across its sessions: the sans-IO
//! [`Requester`] behind a lock, the callers waiting on it, and the session
//! that carries its actions now. This file only moves bytes and time: the
//! rules are the requester's.

use std::collections::VecDeque;

use foldhash::{HashMap, HashMapExt};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use bytes::Bytes;
use outpost_acquisition::cache::{self, Known};
use outpost_acquisition::{Subscriber, Update};
use outpost_modbus_core::access::Table;
use outpost_modbus_core::{Bits, Request, Response, UnitId, Words};
use outpost_tunnel_proto::{AgentId, ChannelId, ChannelKind, ErrorCode};
use rustls::pki_types::CertificateDer;
use tokio::sync::{broadcast, oneshot};
use tracing::{debug, info, warn};

use super::values::{Filter, PointValue};
use crate::agent::ACQUISITION;
use crate::driver::{Closer, Command, DriverEvent, Target};
use crate::profile::{Action, Failure, OpenToken, RequestId, Requester, RequesterConfig, Submit};

/// How much longer than a request's deadline a caller waits for the
/// requester to end it (its outcome may still be on its way: the requester
/// allows up to 500 ms).
const CALLER_SLACK: Duration = Duration::from_millis(600);

/// Commands waiting for the session past which replies to the agent's
/// data acquisition messages are not queued.
const MAX_REPLIES_WAITING: usize = 1024;

/// Commands an empty outbox may keep room for.
const IDLE_OUTBOX: usize = 16;

/// The session that carries a line's traffic now.
#[derive(Debug)]
struct Carrier {
    generation: u64,
    peer: SocketAddr,
    /// Wakes the session's driver when commands wait for it.
    waker: Option<Waker>,
    closer: Closer,
    /// The certificate chain the session authenticated with.
    chain: Vec<CertificateDer<'static>>,
}

#[derive(Debug)]
struct State {
    requester: Requester,
    waiters: HashMap<RequestId, oneshot::Sender<Result<Bytes, Failure>>>,
    carrier: Option<Carrier>,
    generation: u64,
    /// Commands for the carrier, in order, until its driver takes them
    /// (bounded by the requester's requests and channels).
    outbox: VecDeque<Command>,
    /// The agent's data acquisition, once it opened its channel (boxed:
    /// most agents idle without one).
    acquisition: Option<Box<Acquired>>,
}

/// An agent's scan groups as the hub follows them.
#[derive(Debug, Default)]
struct Acquired {
    /// The current session's acquisition channel.
    channel: Option<ChannelId>,
    subscriber: Subscriber,
    /// Devices and units written to: their reads pass through until
    /// scans after the write had time to report it.
    written: Vec<(String, UnitId, Instant)>,
}

impl Acquired {
    /// The groups of `device` and `unit` whose latest samples are whole
    /// and no older than `max_age` (their interval), if nothing written
    /// keeps them out at `now`.
    fn fresh(&self, device: &str, unit: UnitId, max_age: Duration, now: Instant) -> Vec<Known<'_>> {
        if self
            .written
            .iter()
            .any(|(d, u, until)| d == device && *u == unit && *until > now)
        {
            return Vec::new();
        }
        self.subscriber
            .groups()
            .filter(|g| g.complete && g.birth.device == device && g.birth.unit == unit)
            .filter(|g| Duration::from_millis(u64::from(g.birth.interval_ms)) <= max_age)
            .map(|g| (g.birth, g.latest))
            .collect()
    }
}

impl State {
    /// Moves the requester's actions into the outbox, in order, and wakes
    /// the session's driver to take them (from whichever task holds the
    /// lock: a request needs no other hand-off to reach the driver).
    fn flush(&mut self) {
        while let Some(action) = self.requester.poll_action() {
            self.outbox.push_back(command(action));
        }
        let Some(carrier) = &mut self.carrier else {
            self.outbox.clear();
            return;
        };
        if !self.outbox.is_empty() {
            if let Some(waker) = carrier.waker.take() {
                waker.wake();
            }
        }
    }

    /// Hands every finished request to its caller.
    fn settle(&mut self) {
        while let Some((id, result)) = self.requester.poll_done() {
            if let Some(waiter) = self.waiters.remove(&id) {
                let _ = waiter.send(result);
            }
        }
    }
}

/// An agent known to the hub.
#[derive(Debug)]
pub(crate) struct Line {
    pub(crate) agent: AgentId,
    state: Mutex<State>,
    /// Where the values its agent reports go.
    values: broadcast::Sender<Arc<PointValue>>,
}

/// A session replaced by a newer one of the same agent.
#[derive(Debug)]
pub(crate) struct Superseded {
    pub(crate) peer: SocketAddr,
}

impl Line {
    pub(crate) fn new(agent: AgentId, config: RequesterConfig, values: broadcast::Sender<Arc<PointValue>>) -> Self {
        Line {
            agent,
            values,
            state: Mutex::new(State {
                requester: Requester::new(config),
                waiters: HashMap::new(),
                carrier: None,
                generation: 0,
                outbox: VecDeque::new(),
                acquisition: None,
            }),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether a session is up.
    pub(crate) fn is_up(&self) -> bool {
        self.state().carrier.is_some()
    }

    /// Whether nothing depends on this line: no session, no request.
    pub(crate) fn is_unused(&self) -> bool {
        let state = self.state();
        state.carrier.is_none() && state.requester.is_idle() && state.waiters.is_empty()
    }

    /// Channels the agent's current session holds for the hub's requests.
    pub(crate) fn channel_count(&self) -> usize {
        self.state().requester.channel_count()
    }

    /// Makes a new session the carrier; an older one is closed
    /// (SUPERSEDED) and its requests go on under the rules of a break.
    pub(crate) fn attach(
        &self,
        peer: SocketAddr,
        closer: Closer,
        chain: Vec<CertificateDer<'static>>,
    ) -> (u64, Option<Superseded>) {
        let now = Instant::now();
        let mut state = self.state();
        state.generation += 1;
        let generation = state.generation;
        let old = state.carrier.take();
        state.outbox.clear();
        if let Some(acquired) = &mut state.acquisition {
            acquired.channel = None;
        }
        if old.is_some() {
            state.requester.session_down(now);
        }
        state.carrier = Some(Carrier {
            generation,
            peer,
            waker: None,
            closer,
            chain,
        });
        state.requester.session_up(now);
        state.settle();
        state.flush();
        drop(state);
        let superseded = old.map(|old| {
            old.closer
                .close(ErrorCode::Superseded, "a newer session of this agent took over");
            Superseded { peer: old.peer }
        });
        (generation, superseded)
    }

    /// The session of `generation` ended.
    pub(crate) fn detach(&self, generation: u64) {
        let mut state = self.state();
        if state.carrier.as_ref().is_some_and(|c| c.generation == generation) {
            state.carrier = None;
            state.outbox.clear();
            if let Some(acquired) = &mut state.acquisition {
                acquired.channel = None;
            }
            state.requester.session_down(Instant::now());
            state.settle();
        }
    }

    /// The current session's peer and certificate chain.
    pub(crate) fn session(&self) -> Option<(SocketAddr, Vec<CertificateDer<'static>>)> {
        let state = self.state();
        state.carrier.as_ref().map(|c| (c.peer, c.chain.clone()))
    }

    /// Asks the current session to end.
    pub(crate) fn close(&self, code: ErrorCode, reason: &'static str) {
        if let Some(carrier) = &self.state().carrier {
            carrier.closer.close(code, reason);
        }
    }

    /// Sends a request and waits for what becomes of it.
    pub(crate) async fn request(&self, submit: Submit) -> Result<Bytes, Failure> {
        let changes = submit.changes;
        let deadline = submit.deadline;
        // A write makes values the hub holds for the device old.
        let written = changes.then(|| (submit.target.clone(), submit.unit));
        let (tx, rx) = oneshot::channel();
        let id = {
            let mut state = self.state();
            let id = state.requester.submit(Instant::now(), submit);
            state.waiters.insert(id, tx);
            state.settle();
            state.flush();
            id
        };
        let mut guard = CancelOnDrop {
            line: self,
            id: Some(id),
        };
        let limit = tokio::time::Instant::from_std(deadline + CALLER_SLACK);
        let mut rx = rx;
        let result = match tokio::time::timeout_at(limit, &mut rx).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(Failure::NoAgent),
            Err(_) => {
                // No session drove the requester's clock (the agent is
                // away): drive it here.
                let mut state = self.state();
                state.requester.handle_timeout(Instant::now());
                state.settle();
                state.flush();
                drop(state);
                rx.try_recv().unwrap_or(Err(Failure::no_answer(changes)))
            }
        };
        guard.id = None;
        if let Some((device, unit)) = written {
            self.written(&device, unit);
        }
        result
    }

    /// The next command for the session of `generation`; its driver is
    /// woken when one is queued. A session that is no longer the carrier
    /// gets none (it is being closed).
    pub(crate) fn poll_command(&self, generation: u64, cx: &mut Context<'_>) -> Poll<Command> {
        let mut state = self.state();
        let state = &mut *state;
        let Some(carrier) = state.carrier.as_mut().filter(|c| c.generation == generation) else {
            return Poll::Pending;
        };
        match state.outbox.pop_front() {
            Some(command) => Poll::Ready(command),
            None => {
                // Emptied after a burst: given back, an idle agent keeps none.
                if state.outbox.capacity() > IDLE_OUTBOX {
                    state.outbox = VecDeque::new();
                }
                if !carrier.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                    carrier.waker = Some(cx.waker().clone());
                }
                Poll::Pending
            }
        }
    }

    /// When the requester's clock next needs a turn.
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        self.state().requester.poll_timeout()
    }

    /// Time passed: the requester's clock is at `now`.
    pub(crate) fn handle_timeout(&self, now: Instant) {
        let mut state = self.state();
        state.requester.handle_timeout(now);
        state.settle();
        state.flush();
    }

    /// An event of the session of `generation` (dropped if a newer one
    /// took over).
    pub(crate) fn on_event(&self, generation: u64, event: DriverEvent) {
        let now = Instant::now();
        let mut state = self.state();
        if state.carrier.as_ref().is_none_or(|c| c.generation != generation) {
            return;
        }
        if self.on_acquisition(&mut state, &event) {
            state.flush();
            return;
        }
        let requester = &mut state.requester;
        match event {
            DriverEvent::Opened { token, result } => requester.handle_opened(now, OpenToken(token), result),
            DriverEvent::ChannelAccepted(channel) => requester.handle_accepted(now, channel),
            DriverEvent::ChannelRefused(channel, code) => {
                debug!(agent = %self.agent, %channel, %code, "the agent refused a channel");
                requester.handle_refused(now, channel, code)
            }
            DriverEvent::ChannelGone(channel) => requester.handle_gone(now, channel),
            DriverEvent::Message(channel, message) => {
                requester.handle_message(now, channel, message.correlation, message.payload)
            }
            // The agent may not open channels to the hub: refuse them (the
            // session bounds the channels a peer may have pending).
            DriverEvent::ChannelRequested { channel, .. } => {
                state.outbox.push_back(Command::Refuse(channel, ErrorCode::Refused));
            }
            DriverEvent::GoingAway => {
                info!(target: "outpost::audit", event = "agent.going_away", agent = %self.agent, "the agent is stopping: requests in flight finish, new ones wait for its return");
                requester.session_going_away(now);
            }
            DriverEvent::Established(_) => {}
        }
        state.settle();
        // What the event set off goes out on the driver's next turn.
        state.flush();
    }
}

impl Line {
    /// Handles an event of the agent's data acquisition channel, or one
    /// that opens it; returns whether it was one.
    fn on_acquisition(&self, state: &mut State, event: &DriverEvent) -> bool {
        let current = state.acquisition.as_ref().and_then(|a| a.channel);
        match event {
            DriverEvent::ChannelRequested { channel, kind, target } if &target.name[..] == ACQUISITION => {
                if *kind != ChannelKind::Message || current.is_some() {
                    state.outbox.push_back(Command::Refuse(*channel, ErrorCode::Refused));
                } else {
                    state.acquisition.get_or_insert_with(Box::default).channel = Some(*channel);
                    state.outbox.push_back(Command::Accept(*channel));
                    debug!(agent = %self.agent, %channel, "the agent's data acquisition channel is open");
                }
                true
            }
            DriverEvent::ChannelGone(channel) if current == Some(*channel) => {
                if let Some(acquired) = &mut state.acquisition {
                    acquired.channel = None;
                }
                true
            }
            DriverEvent::Message(channel, message) if current == Some(*channel) => {
                let Some(acquired) = &mut state.acquisition else {
                    return true;
                };
                let refused = acquired.subscriber.refused();
                match outpost_acquisition::message::Message::decode(&message.payload) {
                    Ok(decoded) => acquired.subscriber.handle(decoded),
                    Err(e) => {
                        warn!(agent = %self.agent, error = %e, "the agent sent a data acquisition message that is not one; channel reset");
                        acquired.channel = None;
                        state
                            .outbox
                            .push_back(Command::Reset(*channel, ErrorCode::ProtocolError));
                        return true;
                    }
                }
                if acquired.subscriber.refused() > refused {
                    warn!(agent = %self.agent, "the agent described more scan groups or points than the hub follows for one agent; the birth was refused");
                }
                while let Some(reply) = acquired.subscriber.poll_message() {
                    // An agent that does not read its channel gets no more
                    // replies queued: acknowledgements are cumulative, and
                    // what is not acknowledged is sent again.
                    if state.outbox.len() >= MAX_REPLIES_WAITING {
                        continue;
                    }
                    let mut payload = Vec::new();
                    reply.encode(&mut payload);
                    state.outbox.push_back(Command::Send {
                        channel: *channel,
                        correlation: 0,
                        payload: Bytes::from(payload),
                    });
                }
                while let Some(update) = acquired.subscriber.poll_update() {
                    // Nobody listening is no error.
                    let _ = self.values.send(Arc::new(PointValue::new(&self.agent, update)));
                }
                true
            }
            _ => false,
        }
    }

    /// The answer to a read of `device`'s `unit`, rebuilt from the values
    /// the agent reported, when its scan groups cover the whole read with
    /// exact, good values no older than `max_age`, its channel is up and
    /// nothing written to the device since could have changed them.
    pub(crate) fn cached_read(&self, device: &str, unit: UnitId, pdu: &[u8], max_age: Duration) -> Option<Bytes> {
        let (table, start, quantity) = match Request::decode(pdu).ok()? {
            Request::ReadCoils(r) => (Table::Coils, r.start(), r.quantity()),
            Request::ReadDiscreteInputs(r) => (Table::DiscreteInputs, r.start(), r.quantity()),
            Request::ReadHoldingRegisters(r) => (Table::HoldingRegisters, r.start(), r.quantity()),
            Request::ReadInputRegisters(r) => (Table::InputRegisters, r.start(), r.quantity()),
            _ => return None,
        };
        let state = self.state();
        let acquired = state.acquisition.as_ref().filter(|a| a.channel.is_some())?;
        let groups = acquired.fresh(device, unit, max_age, Instant::now());
        if groups.is_empty() {
            return None;
        }
        let mut out = vec![0u8; 3 + 2 * usize::from(quantity)];
        let len = match table {
            Table::Coils | Table::DiscreteInputs => {
                let bits = cache::bits(groups, table, start, quantity)?;
                let bits = Bits::from_bools(&bits);
                let response = if table == Table::Coils {
                    Response::ReadCoils(bits)
                } else {
                    Response::ReadDiscreteInputs(bits)
                };
                response.encode(&mut out).ok()?
            }
            _ => {
                let words = cache::registers(groups, table, start, quantity)?;
                let words = Words::from_slice(&words);
                let response = if table == Table::HoldingRegisters {
                    Response::ReadHoldingRegisters(words)
                } else {
                    Response::ReadInputRegisters(words)
                };
                response.encode(&mut out).ok()?
            }
        };
        out.truncate(len);
        Some(Bytes::from(out))
    }

    /// A request that changes `device`'s `unit` was answered (or given up
    /// on): its reads pass through until scans after it had time to
    /// report what it changed (two intervals of its slowest group).
    fn written(&self, device: &str, unit: UnitId) {
        let now = Instant::now();
        let mut state = self.state();
        let Some(acquired) = &mut state.acquisition else { return };
        let slowest = acquired
            .subscriber
            .births()
            .filter(|b| b.device == device && b.unit == unit)
            .map(|b| Duration::from_millis(u64::from(b.interval_ms)))
            .max();
        let Some(slowest) = slowest else { return };
        acquired.written.retain(|(_, _, until)| *until > now);
        acquired.written.push((device.to_owned(), unit, now + 2 * slowest));
    }

    /// The latest value of every point `filter` follows.
    pub(crate) fn values(&self, filter: &Filter, out: &mut Vec<PointValue>) {
        if !filter.takes_agent(&self.agent) {
            return;
        }
        let state = self.state();
        let Some(acquired) = &state.acquisition else { return };
        for group in acquired.subscriber.groups() {
            let (birth, latest) = (group.birth, group.latest);
            if !filter.takes_group(&birth.device, &birth.name) {
                continue;
            }
            for (info, sample) in birth.points.iter().zip(latest) {
                let Some(sample) = sample else { continue };
                let value = PointValue::new(
                    &self.agent,
                    Update {
                        device: birth.device.clone(),
                        group: birth.name.clone(),
                        point: info.name.clone(),
                        sample: *sample,
                    },
                );
                if filter.matches(&value) {
                    out.push(value);
                }
            }
        }
    }
}

/// The command that carries out an action.
fn command(action: Action) -> Command {
    match action {
        Action::Open {
            token,
            target,
            metadata,
        } => Command::Open {
            token: token.0,
            target: Box::new(Target { name: target, metadata }),
        },
        Action::Send {
            channel,
            correlation,
            payload,
        } => Command::Send {
            channel,
            correlation,
            payload,
        },
        Action::Reset { channel, code } => Command::Reset(channel, code),
    }
}

/// Cancels a request whose caller stopped waiting.
struct CancelOnDrop<'a> {
    line: &'a Line,
    id: Option<RequestId>,
}

impl Drop for CancelOnDrop<'_> {
    fn drop(&mut self) {
        if let Some(id) = self.id.take() {
            let mut state = self.line.state();
            state.waiters.remove(&id);
            state.requester.cancel(Instant::now(), id);
        }
    }
}

#[cfg(test)]
mod tests {
    //! The agent's data acquisition channel as the hub takes it, without
    //! sockets: which channels are accepted, what a broken message costs,
    //! and what valid ones give.

    use std::task::{Context, Poll, Waker};

    use outpost_acquisition::message::Message as Acquisition;
    use outpost_acquisition::{GroupSpec, PointSpec, Publisher};
    use outpost_modbus_core::scan::{Encoding, Point};
    use outpost_tunnel_proto::Message;

    use super::*;
    use crate::driver::closer;

    fn line() -> (Line, u64, broadcast::Receiver<Arc<PointValue>>) {
        let (values, receiver) = broadcast::channel(64);
        let line = Line::new(AgentId::new("plant-7").unwrap(), RequesterConfig::default(), values);
        let (closer, _) = closer();
        let (generation, _) = line.attach("127.0.0.1:1".parse().unwrap(), closer, Vec::new());
        (line, generation, receiver)
    }

    fn commands(line: &Line, generation: u64) -> Vec<Command> {
        let mut cx = Context::from_waker(Waker::noop());
        std::iter::from_fn(|| match line.poll_command(generation, &mut cx) {
            Poll::Ready(command) => Some(command),
            Poll::Pending => None,
        })
        .collect()
    }

    fn open(line: &Line, generation: u64, channel: u32, name: &'static [u8], kind: ChannelKind) {
        let target = Box::new(crate::driver::Target {
            name: Bytes::from_static(name),
            metadata: Bytes::new(),
        });
        let channel = ChannelId::new(channel).unwrap();
        line.on_event(generation, DriverEvent::ChannelRequested { channel, kind, target });
    }

    fn message(line: &Line, generation: u64, channel: u32, payload: Vec<u8>) {
        let message = Message {
            correlation: 0,
            payload: Bytes::from(payload),
        };
        line.on_event(
            generation,
            DriverEvent::Message(ChannelId::new(channel).unwrap(), message),
        );
    }

    fn birth() -> Vec<u8> {
        let group = GroupSpec::new("tank", UnitId(1), Duration::from_secs(1))
            .device("plc-1")
            .point(PointSpec::new(
                "level",
                Point::new(Table::HoldingRegisters, 0, Encoding::U16).unwrap(),
            ));
        let mut publisher = Publisher::new(7, &[group], 1024);
        publisher.connected();
        let mut bytes = Vec::new();
        publisher.poll_message(1024).unwrap().encode(&mut bytes);
        bytes
    }

    #[test]
    fn one_message_channel_to_the_acquisition_target_is_accepted() {
        let (line, generation, _) = line();
        let channel = |c| ChannelId::new(c).unwrap();
        open(&line, generation, 2, ACQUISITION, ChannelKind::Stream);
        open(&line, generation, 4, b"plc-1", ChannelKind::Message);
        open(&line, generation, 6, ACQUISITION, ChannelKind::Message);
        open(&line, generation, 8, ACQUISITION, ChannelKind::Message);
        let got = commands(&line, generation);
        assert!(
            matches!(&got[..], [
            Command::Refuse(a, ErrorCode::Refused),
            Command::Refuse(b, ErrorCode::Refused),
            Command::Accept(c),
            Command::Refuse(d, ErrorCode::Refused),
        ] if (*a, *b, *c, *d) == (channel(2), channel(4), channel(6), channel(8))),
            "{got:?}"
        );
        // Once it is gone, the next one is taken.
        line.on_event(generation, DriverEvent::ChannelGone(channel(6)));
        open(&line, generation, 10, ACQUISITION, ChannelKind::Message);
        assert!(matches!(&commands(&line, generation)[..], [Command::Accept(c)] if *c == channel(10)));
    }

    #[test]
    fn a_broken_message_resets_the_channel_and_a_birth_is_answered() {
        let (line, generation, _) = line();
        open(&line, generation, 2, ACQUISITION, ChannelKind::Message);
        commands(&line, generation);
        // A birth it did not ask for: a rebirth is asked.
        message(&line, generation, 2, birth());
        let got = commands(&line, generation);
        let [Command::Send { payload, .. }] = &got[..] else {
            panic!("{got:?}")
        };
        assert!(matches!(Acquisition::decode(payload), Ok(Acquisition::Rebirth(_))));
        // Bytes that are no message: the channel is reset, the session goes on.
        message(&line, generation, 2, vec![0x7F]);
        let got = commands(&line, generation);
        assert!(
            matches!(&got[..], [Command::Reset(c, ErrorCode::ProtocolError)] if *c == ChannelId::new(2).unwrap()),
            "{got:?}"
        );
        assert!(line.is_up());
        // What arrives on it after the reset is not taken as acquisition.
        message(&line, generation, 2, birth());
        assert!(commands(&line, generation).is_empty());
    }

    #[test]
    fn an_agent_that_does_not_read_gets_no_more_replies_queued() {
        use outpost_acquisition::message::Samples;
        use outpost_acquisition::{Quality, Sample};
        let (line, generation, _) = line();
        open(&line, generation, 2, ACQUISITION, ChannelKind::Message);
        message(&line, generation, 2, birth());
        // Each message of samples earns an acknowledgement; none is taken.
        for seq in 0..(2 * MAX_REPLIES_WAITING as u64) {
            let sample = Sample {
                group: 0,
                seq,
                point: 0,
                at_ms: 1,
                quality: Quality::Good,
                value: None,
                snapshot: false,
            };
            let mut bytes = Vec::new();
            Acquisition::Samples(Samples {
                group: 0,
                epoch: 7,
                samples: vec![sample],
            })
            .encode(&mut bytes);
            message(&line, generation, 2, bytes);
        }
        let waiting = commands(&line, generation);
        assert_eq!(
            waiting.len(),
            MAX_REPLIES_WAITING,
            "the accept, the rebirth, then acknowledgements"
        );
        // The last acknowledgement queued is cumulative: what came later is
        // acknowledged by the next one taken.
        message(&line, generation, 2, vec![]);
        assert!(matches!(&commands(&line, generation)[..], [Command::Reset(..)]));
    }

    #[test]
    fn values_reach_subscriptions_and_a_cached_read() {
        let (line, generation, mut receiver) = line();
        open(&line, generation, 2, ACQUISITION, ChannelKind::Message);
        let group = GroupSpec::new("tank", UnitId(1), Duration::from_millis(100))
            .device("plc-1")
            .point(PointSpec::new(
                "level",
                Point::new(Table::HoldingRegisters, 0, Encoding::U16).unwrap(),
            ));
        let mut publisher = Publisher::new(7, std::slice::from_ref(&group), 1 << 16);
        let mut scanner = outpost_acquisition::Scanner::new(vec![group], 1, Instant::now());
        publisher.connected();
        let read_pdu = [0x03, 0, 0, 0, 1];
        for (round, value) in [(0, 40u16), (1, 41)] {
            let now = Instant::now() + Duration::from_secs(round);
            let read = scanner.poll_read(now, 1000 + round).unwrap();
            scanner.handle_answer(
                1000 + round,
                read.token,
                outpost_acquisition::Answer::Registers(&[value]),
            );
            while let Some(sample) = scanner.poll_sample() {
                publisher.push(sample);
            }
            while let Some(m) = publisher.poll_message(4096) {
                let mut bytes = Vec::new();
                m.encode(&mut bytes);
                message(&line, generation, 2, bytes);
            }
            for command in commands(&line, generation) {
                if let Command::Send { payload, .. } = command {
                    match Acquisition::decode(&payload).unwrap() {
                        Acquisition::Ack(ack) => publisher.handle_ack(ack),
                        Acquisition::Rebirth(r) => {
                            publisher.handle_rebirth(r);
                            scanner.request_snapshot(usize::from(r.group));
                        }
                        other => panic!("{other:?}"),
                    }
                }
            }
            // Until the snapshot the hub asked for came, nothing is cached.
            let cached = line.cached_read("plc-1", UnitId(1), &read_pdu, Duration::from_secs(1));
            assert_eq!(cached.is_some(), round == 1, "round {round}");
        }
        // Births come before the samples they describe; the snapshot made
        // the hub's view whole.
        for _ in 0..2 {
            let v = receiver.try_recv().unwrap();
            assert_eq!(
                (v.device.as_str(), v.group.as_str(), v.point.as_str()),
                ("plc-1", "tank", "level")
            );
        }
        let answer = line
            .cached_read("plc-1", UnitId(1), &read_pdu, Duration::from_secs(1))
            .unwrap();
        assert_eq!(&answer[..], [0x03, 2, 0, 41]);
        // Not for another unit, device, table, a read past the points, a
        // shorter max age than the group's interval, or a write.
        for (device, unit, pdu, age) in [
            ("plc-1", UnitId(2), &read_pdu[..], 1000),
            ("plc-2", UnitId(1), &read_pdu[..], 1000),
            ("plc-1", UnitId(1), &[0x04, 0, 0, 0, 1][..], 1000),
            ("plc-1", UnitId(1), &[0x03, 0, 0, 0, 2][..], 1000),
            ("plc-1", UnitId(1), &read_pdu[..], 50),
            ("plc-1", UnitId(1), &[0x06, 0, 0, 0, 1][..], 1000),
            ("plc-1", UnitId(1), &[0x03][..], 1000),
        ] {
            let age = Duration::from_millis(age);
            assert!(
                line.cached_read(device, unit, pdu, age).is_none(),
                "{device} {unit:?} {pdu:?} {age:?}"
            );
        }
        // A write to the device keeps reads from the cache for a while.
        line.written("plc-1", UnitId(1));
        assert!(line
            .cached_read("plc-1", UnitId(1), &read_pdu, Duration::from_secs(1))
            .is_none());
        line.written("plc-2", UnitId(1));
        // Nor once the agent's session is gone.
        line.detach(generation);
        assert!(line
            .cached_read("plc-1", UnitId(1), &read_pdu, Duration::from_secs(1))
            .is_none());
    }
}
