//! The hub's and the agent's machines back to back over two real
//! `tunnel-proto` sessions, with a simulated clock and a simulated device:
//! the whole profile, in memory, with no runtime. Scenario tests of what
//! the two sides do together, and random interleavings of requests, device
//! behaviour, session breaks and time.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use outpost_modbus_core::access::Policy;
use outpost_modbus_core::{Expectation, Request, UnitId};
use outpost_tunnel_proto::{
    AgentId, AgentIdentity, ChannelBinding, ChannelId, Config, Event, MemoryCredentials, Random, Secret, Session, Start,
};
use proptest::prelude::*;

use super::super::*;
use super::policy;
use crate::binding::{ChannelMetadata, Outcome, Principal, Role};

const READ: [u8; 5] = [0x03, 0x00, 0x00, 0x00, 0x01];
const WRITE: [u8; 5] = [0x06, 0x00, 0x01, 0x00, 0x07];

/// What the simulated device does with a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Behaviour {
    /// Answers after `latency`.
    Answer,
    /// Never answers (the agent's device client times out: NO_ANSWER).
    Silent,
}

/// A request at the device.
#[derive(Debug)]
struct AtDevice {
    ticket: Ticket,
    channel: ChannelId,
    correlation: u32,
    pdu: Vec<u8>,
    /// When the device answers, or gives up (its timeout).
    at: Instant,
    /// The session it arrived on (answers to an older one are lost).
    session: u32,
}

/// A request waiting in the agent's device queue.
#[derive(Debug)]
struct Waiting {
    channel: ChannelId,
    correlation: u32,
    pdu: Vec<u8>,
    session: u32,
}

struct World {
    now: Instant,
    hub: Session,
    agent: Session,
    session: u32,
    requester: Requester,
    admission: Admission<()>,
    queue: DeviceQueue,
    policy: Policy,
    waiting: HashMap<Ticket, Waiting>,
    at_device: Vec<AtDevice>,
    behaviour: Behaviour,
    latency: Duration,
    device_timeout: Duration,
    /// Writes the device carried out.
    writes: u32,
    done: HashMap<RequestId, Result<Bytes, Failure>>,
    ended_twice: bool,
}

fn sessions(now: Instant, n: u32) -> (Session, Session) {
    let id = AgentId::new("plant-7").unwrap();
    let secret = Secret::new(&[9; 32]).unwrap();
    let mut store = MemoryCredentials::new();
    store.insert(id.clone(), secret.clone());
    let binding = ChannelBinding::new(&[n as u8; 32]).unwrap();
    let agent = Session::agent(
        Config::default(),
        AgentIdentity::new(id.clone(), secret),
        Start::new(binding.clone(), Random([1; 32])),
        now,
    );
    let hub = Session::hub(
        Config::default(),
        Arc::new(store),
        Start::new(binding, Random([2; 32])).certified_agent(id),
        now,
    );
    (hub, agent)
}

impl World {
    fn new(in_flight: usize, bound: usize) -> Self {
        let now = Instant::now();
        let (hub, agent) = sessions(now, 1);
        let mut world = World {
            now,
            hub,
            agent,
            session: 1,
            requester: Requester::new(RequesterConfig::default()),
            admission: Admission::new(64),
            queue: DeviceQueue::new(in_flight, bound),
            policy: policy(),
            waiting: HashMap::new(),
            at_device: Vec::new(),
            behaviour: Behaviour::Answer,
            latency: Duration::from_millis(10),
            device_timeout: Duration::from_millis(1000),
            writes: 0,
            done: HashMap::new(),
            ended_twice: false,
        };
        world.run();
        world
    }

    fn submit(&mut self, pdu: &[u8], timeout: Duration) -> RequestId {
        let request = Request::decode(pdu).unwrap();
        let id = self.requester.submit(
            self.now,
            Submit {
                target: "plc".into(),
                metadata: ChannelMetadata {
                    role: Role::new("operator").unwrap(),
                    principal: Principal::new("pair").unwrap(),
                },
                unit: UnitId(1),
                pdu: Bytes::copy_from_slice(pdu),
                expect: Expectation::new(&request),
                changes: request.is_write(),
                deadline: self.now + timeout,
            },
        );
        self.run();
        id
    }

    /// Moves everything that can move now, until nothing does.
    fn run(&mut self) {
        for _ in 0..10_000 {
            let mut moved = false;
            // Hub: the requester's actions into its session.
            while let Some(action) = self.requester.poll_action() {
                moved = true;
                match action {
                    Action::Open {
                        token,
                        target,
                        metadata,
                    } => {
                        let result =
                            self.hub
                                .open_channel(outpost_tunnel_proto::ChannelKind::Message, &target, &metadata);
                        self.requester.handle_opened(self.now, token, result);
                    }
                    Action::Send {
                        channel,
                        correlation,
                        payload,
                    } => {
                        // Small messages in large windows: never blocked here.
                        let _ = self.hub.send_message_bytes(channel, correlation, payload);
                    }
                    Action::Reset { channel, code } => {
                        let _ = self.hub.reset(channel, code);
                    }
                }
            }
            // The wire, both ways.
            let mut wire = Vec::new();
            if self.hub.poll_transmit(self.now, &mut wire) > 0 {
                moved = true;
                self.agent.handle_input(self.now, &wire);
            }
            wire.clear();
            if self.agent.poll_transmit(self.now, &mut wire) > 0 {
                moved = true;
                self.hub.handle_input(self.now, &wire);
            }
            moved |= self.hub_events();
            moved |= self.agent_events();
            moved |= self.device();
            while let Some((id, result)) = self.requester.poll_done() {
                moved = true;
                if self.done.insert(id, result).is_some() {
                    self.ended_twice = true;
                }
            }
            self.requester.check_invariants();
            if !moved {
                return;
            }
        }
        panic!("the pair never settled");
    }

    fn hub_events(&mut self) -> bool {
        let mut moved = false;
        while let Some(event) = self.hub.poll_event() {
            moved = true;
            match event {
                Event::Established { .. } => self.requester.session_up(self.now),
                Event::ChannelAccepted { channel } => self.requester.handle_accepted(self.now, channel),
                Event::ChannelRefused { channel, code } => self.requester.handle_refused(self.now, channel, code),
                Event::ChannelReset { channel, .. } | Event::ChannelClosed { channel } => {
                    self.requester.handle_gone(self.now, channel)
                }
                Event::Readable { channel } => {
                    while let Ok(Some(message)) = self.hub.recv_message(channel) {
                        self.requester
                            .handle_message(self.now, channel, message.correlation, message.payload);
                    }
                }
                _ => {}
            }
        }
        moved
    }

    fn agent_events(&mut self) -> bool {
        let mut moved = false;
        while let Some(event) = self.agent.poll_event() {
            moved = true;
            match event {
                Event::ChannelRequested {
                    channel,
                    kind,
                    target,
                    metadata,
                } => match self
                    .admission
                    .open(channel, kind, &target, &metadata, |n| (n == "plc").then_some(()))
                {
                    Ok(_) => {
                        let _ = self.agent.accept(channel);
                    }
                    Err(refusal) => {
                        let _ = self.agent.refuse(channel, refusal.code());
                    }
                },
                Event::ChannelReset { channel, .. } | Event::ChannelClosed { channel } => {
                    self.admission.channel_gone(channel)
                }
                Event::Readable { channel } => {
                    while let Ok(Some(message)) = self.agent.recv_message(channel) {
                        self.agent_request(channel, message.correlation, &message.payload);
                    }
                }
                _ => {}
            }
        }
        moved
    }

    fn agent_request(&mut self, channel: ChannelId, correlation: u32, payload: &[u8]) {
        let verdict = self
            .admission
            .handle_request(channel, correlation, payload, &self.policy, |_, unit| unit == UnitId(1));
        match verdict {
            Verdict::Forward(admitted) => {
                let deadline = self.now + admitted.budget;
                match self.queue.enqueue(self.now, deadline) {
                    Ok(ticket) => {
                        self.waiting.insert(
                            ticket,
                            Waiting {
                                channel,
                                correlation,
                                pdu: admitted.pdu.to_vec(),
                                session: self.session,
                            },
                        );
                    }
                    Err(QueueFull) => self.answer(channel, correlation, &Outcome::Busy),
                }
            }
            Verdict::Refuse { refusal, .. } => self.answer(channel, correlation, &refusal.outcome()),
            Verdict::Reset(code) => {
                let _ = self.agent.reset(channel, code);
            }
            Verdict::Ignore => {}
        }
    }

    fn answer(&mut self, channel: ChannelId, correlation: u32, outcome: &Outcome<'_>) {
        self.admission.finished(channel, correlation);
        let mut wire = Vec::new();
        outcome.encode(&mut wire);
        let _ = self.agent.send_message_bytes(channel, correlation, Bytes::from(wire));
    }

    /// The device takes started requests and answers those whose time came.
    fn device(&mut self) -> bool {
        let mut moved = false;
        while let Some(ticket) = self.queue.poll_started() {
            moved = true;
            let Some(w) = self.waiting.remove(&ticket) else {
                self.queue.finish(self.now, ticket);
                continue;
            };
            let at = match self.behaviour {
                Behaviour::Answer => self.now + self.latency,
                Behaviour::Silent => self.now + self.device_timeout,
            };
            self.at_device.push(AtDevice {
                ticket,
                channel: w.channel,
                correlation: w.correlation,
                pdu: w.pdu,
                at,
                session: w.session,
            });
        }
        while let Some(ticket) = self.queue.poll_expired() {
            moved = true;
            if let Some(w) = self.waiting.remove(&ticket) {
                if w.session == self.session {
                    self.answer(w.channel, w.correlation, &Outcome::Expired);
                }
            }
        }
        let now = self.now;
        let (due, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.at_device)
            .into_iter()
            .partition(|d| d.at <= now);
        self.at_device = later;
        for d in due {
            moved = true;
            self.queue.finish(self.now, d.ticket);
            let answered = self.behaviour == Behaviour::Answer;
            if answered && d.pdu[0] == WRITE[0] {
                self.writes += 1;
            }
            if d.session != self.session {
                continue;
            }
            if answered {
                let response: Vec<u8> = if d.pdu[0] == READ[0] {
                    vec![0x03, 0x02, 0x00, 0x2A]
                } else {
                    d.pdu.clone()
                };
                self.answer(d.channel, d.correlation, &Outcome::Answered(&response));
            } else {
                self.answer(d.channel, d.correlation, &Outcome::NoAnswer);
            }
        }
        moved
    }

    fn advance(&mut self, by: Duration) {
        // In steps, so every timer fires about when it is due.
        let end = self.now + by;
        while self.now < end {
            self.now = (self.now + Duration::from_millis(5)).min(end);
            self.hub.handle_timeout(self.now);
            self.agent.handle_timeout(self.now);
            self.requester.handle_timeout(self.now);
            self.queue.handle_timeout(self.now);
            self.run();
        }
    }

    /// The connection breaks; the agent dials again at once.
    fn reconnect(&mut self) {
        self.requester.session_down(self.now);
        self.session += 1;
        let (hub, agent) = sessions(self.now, self.session);
        self.hub = hub;
        self.agent = agent;
        self.admission = Admission::new(64);
        self.run();
    }
}

#[test]
fn a_request_crosses_both_sides_and_comes_back() {
    let mut w = World::new(1, 1024);
    assert!(w.requester.is_up());
    let id = w.submit(&READ, Duration::from_secs(2));
    w.advance(Duration::from_millis(10));
    assert_eq!(w.done[&id].as_deref(), Ok(&[0x03, 0x02, 0x00, 0x2A][..]));
}

#[test]
fn sixty_four_requests_at_once_wait_their_turn_and_none_is_busy() {
    let mut w = World::new(1, 1024);
    let ids: Vec<_> = (0..64).map(|_| w.submit(&READ, Duration::from_secs(2))).collect();
    // One at a time at the device, 10 ms each.
    w.advance(Duration::from_millis(700));
    for id in ids {
        assert!(w.done[&id].is_ok(), "{:?}", w.done.get(&id));
    }
    assert_eq!(w.requester.stats().opens, 1);
}

#[test]
fn requests_that_cannot_get_a_turn_in_time_expire_and_busy_comes_only_past_the_bound() {
    let mut w = World::new(1, 4);
    let ids: Vec<_> = (0..8).map(|_| w.submit(&READ, Duration::from_millis(25))).collect();
    w.advance(Duration::from_millis(200));
    let count = |f: &dyn Fn(&Result<Bytes, Failure>) -> bool| ids.iter().filter(|id| f(&w.done[id])).count();
    // One at the device, four waiting, three turned away at once.
    assert_eq!(count(&|r| *r == Err(Failure::Busy)), 3);
    // Three get a turn in time (10 ms each within 25 ms); two wait past
    // their budget.
    assert_eq!(count(&|r| *r == Err(Failure::Expired)), 2, "waited past their budget");
    assert_eq!(count(&|r| r.is_ok()), 3);
}

#[test]
fn a_silent_device_ends_a_read_as_a_timeout_and_a_write_as_unknown() {
    let mut w = World::new(2, 1024);
    w.behaviour = Behaviour::Silent;
    w.device_timeout = Duration::from_millis(500);
    let read = w.submit(&READ, Duration::from_secs(2));
    let write = w.submit(&WRITE, Duration::from_secs(2));
    w.advance(Duration::from_millis(600));
    assert_eq!(w.done[&read], Err(Failure::Timeout));
    assert_eq!(w.done[&write], Err(Failure::OutcomeUnknown));
}

#[test]
fn a_break_retries_the_read_on_the_next_session_and_never_resends_the_write() {
    let mut w = World::new(2, 1024);
    w.latency = Duration::from_millis(100);
    let read = w.submit(&READ, Duration::from_secs(2));
    let write = w.submit(&WRITE, Duration::from_secs(2));
    w.advance(Duration::from_millis(50));
    w.reconnect();
    assert_eq!(w.done[&write], Err(Failure::OutcomeUnknown));
    w.advance(Duration::from_millis(300));
    assert!(w.done[&read].is_ok(), "the read was retried: {:?}", w.done.get(&read));
    assert_eq!(w.requester.stats().retries, 1);
    assert_eq!(w.writes, 1, "the device saw the write once");
}

#[test]
fn channels_close_when_unused_and_the_agent_forgets_them() {
    let mut w = World::new(1, 1024);
    let id = w.submit(&READ, Duration::from_secs(2));
    w.advance(Duration::from_millis(20));
    assert!(w.done[&id].is_ok());
    assert_eq!(w.admission.channel_count(), 1);
    w.advance(Duration::from_secs(31));
    assert_eq!(w.requester.channel_count(), 0);
    assert_eq!(w.admission.channel_count(), 0, "the agent dropped the reset channel");
    let again = w.submit(&READ, Duration::from_secs(2));
    w.advance(Duration::from_millis(20));
    assert!(w.done[&again].is_ok());
    assert_eq!(w.requester.stats().opens, 2);
}

#[derive(Debug, Clone)]
enum Step {
    Read(u16),
    Write(u16),
    Silent(bool),
    Reconnect,
    Advance(u16),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (10..3000u16).prop_map(Step::Read),
        2 => (10..3000u16).prop_map(Step::Write),
        1 => any::<bool>().prop_map(Step::Silent),
        1 => Just(Step::Reconnect),
        4 => (1..800u16).prop_map(Step::Advance),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Through real sessions: every request ends exactly once, and the
    /// device never carries out a write more often than it was asked for.
    #[test]
    fn random_traffic_through_both_sides_keeps_the_rules(steps in proptest::collection::vec(step(), 1..40)) {
        let mut w = World::new(2, 8);
        w.device_timeout = Duration::from_millis(400);
        let mut ids = Vec::new();
        let mut writes_asked = 0;
        for step in steps {
            match step {
                Step::Read(ms) => ids.push(w.submit(&READ, Duration::from_millis(u64::from(ms)))),
                Step::Write(ms) => {
                    writes_asked += 1;
                    ids.push(w.submit(&WRITE, Duration::from_millis(u64::from(ms))));
                }
                Step::Silent(silent) => w.behaviour = if silent { Behaviour::Silent } else { Behaviour::Answer },
                Step::Reconnect => w.reconnect(),
                Step::Advance(ms) => w.advance(Duration::from_millis(u64::from(ms))),
            }
            prop_assert!(!w.ended_twice);
        }
        w.advance(Duration::from_secs(5));
        prop_assert!(!w.ended_twice);
        for id in &ids {
            prop_assert!(w.done.contains_key(id), "{:?} never ended", id);
        }
        prop_assert!(w.writes <= writes_asked, "{} writes carried out for {} asked", w.writes, writes_asked);
    }
}
