//! The `Pair` harness: an agent and a hub session back to back over
//! in-memory pipes, with a simulated clock, latency and chunking.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::*;

pub(crate) const AGENT: &str = "plant-7";
pub(crate) const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";
pub(crate) const BINDING: [u8; 32] = [0xB1; 32];

/// How bytes in flight are cut before delivery.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Chunking {
    /// Each transmit arrives in one piece.
    Whole,
    /// Pieces of this many bytes.
    Fixed(usize),
    /// Pieces of 1..=max bytes from a seeded generator.
    Random { seed: u64, max: usize },
}

/// A small deterministic generator (xorshift64*).
#[derive(Debug, Clone)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub(crate) fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// One direction of the connection.
#[derive(Debug, Default)]
pub(crate) struct Pipe {
    in_flight: VecDeque<(Instant, Vec<u8>)>,
    /// Drop everything written (a peer gone silent).
    pub(crate) cut: bool,
    /// Every byte ever delivered, for comparisons.
    pub(crate) delivered: Vec<u8>,
}

pub(crate) struct Pair {
    pub(crate) agent: Session,
    pub(crate) hub: Session,
    pub(crate) now: Instant,
    pub(crate) latency: Duration,
    pub(crate) chunking: Chunking,
    rng: Rng,
    pub(crate) to_hub: Pipe,
    pub(crate) to_agent: Pipe,
    pub(crate) agent_events: VecDeque<Event>,
    pub(crate) hub_events: VecDeque<Event>,
    /// Whether to record every delivered byte.
    pub(crate) record: bool,
}

/// The OPEN a hub sends for its `n`th channel (ids 2, 4, 6, ...), as a
/// flood of them would carry it.
pub(crate) fn hub_open(n: u32, out: &mut Vec<u8>) -> ChannelId {
    let channel = ChannelId::new(2 + 2 * n).unwrap();
    crate::frame::Frame::Open(crate::frame::Open {
        channel,
        kind: ChannelKind::Stream,
        window: 10,
        target: Default::default(),
        metadata: Default::default(),
    })
    .encode(out);
    channel
}

pub(crate) fn agent_id() -> AgentId {
    AgentId::new(AGENT).unwrap()
}

pub(crate) fn store() -> MemoryCredentials {
    let mut store = MemoryCredentials::new();
    store.insert(agent_id(), Secret::new(SECRET).unwrap());
    store
}

pub(crate) struct Builder {
    pub(crate) agent_config: Config,
    pub(crate) hub_config: Config,
    pub(crate) store: MemoryCredentials,
    pub(crate) agent_id: AgentId,
    pub(crate) agent_secret: Secret,
    pub(crate) agent_binding: ChannelBinding,
    pub(crate) hub_binding: ChannelBinding,
    pub(crate) certified: Option<AgentId>,
    pub(crate) latency: Duration,
    pub(crate) chunking: Chunking,
}

impl Builder {
    pub(crate) fn new() -> Self {
        Builder {
            agent_config: Config::default(),
            hub_config: Config::default(),
            store: store(),
            agent_id: agent_id(),
            agent_secret: Secret::new(SECRET).unwrap(),
            agent_binding: ChannelBinding::new(&BINDING).unwrap(),
            hub_binding: ChannelBinding::new(&BINDING).unwrap(),
            certified: None,
            latency: Duration::from_millis(10),
            chunking: Chunking::Whole,
        }
    }

    pub(crate) fn build(self) -> Pair {
        let now = Instant::now();
        let agent = Session::agent(
            self.agent_config,
            AgentIdentity::new(self.agent_id, self.agent_secret),
            Start::new(self.agent_binding, Random([0xA1; 32])),
            now,
        );
        let mut start = Start::new(self.hub_binding, Random([0xB2; 32]));
        if let Some(id) = self.certified {
            start = start.certified_agent(id);
        }
        let hub = Session::hub(self.hub_config, Arc::new(self.store), start, now);
        let seed = match self.chunking {
            Chunking::Random { seed, .. } => seed,
            _ => 1,
        };
        Pair {
            agent,
            hub,
            now,
            latency: self.latency,
            chunking: self.chunking,
            rng: Rng::new(seed),
            to_hub: Pipe::default(),
            to_agent: Pipe::default(),
            agent_events: VecDeque::new(),
            hub_events: VecDeque::new(),
            record: false,
        }
    }

    /// Builds and completes the handshake.
    pub(crate) fn connect(self) -> Pair {
        let mut pair = self.build();
        pair.drive();
        assert!(pair.agent.is_established(), "agent: {:?}", pair.agent.error());
        assert!(pair.hub.is_established(), "hub: {:?}", pair.hub.error());
        pair.agent_events.clear();
        pair.hub_events.clear();
        pair
    }
}

/// Bound on steps of any drive loop.
const MAX_STEPS: usize = 1_000_000;

impl Pair {
    pub(crate) fn connected() -> Pair {
        Builder::new().connect()
    }

    /// Transmits everything both sides have and delivers what is due.
    /// Returns whether anything moved.
    pub(crate) fn step(&mut self) -> bool {
        let mut moved = false;
        moved |= transmit(
            &mut self.agent,
            &mut self.to_hub,
            self.now,
            self.latency,
            self.chunking,
            &mut self.rng,
        );
        moved |= transmit(
            &mut self.hub,
            &mut self.to_agent,
            self.now,
            self.latency,
            self.chunking,
            &mut self.rng,
        );
        moved |= deliver(&mut self.to_hub, &mut self.hub, self.now, self.record);
        moved |= deliver(&mut self.to_agent, &mut self.agent, self.now, self.record);
        self.agent.check_invariants();
        self.hub.check_invariants();
        while let Some(e) = self.agent.poll_event() {
            self.agent_events.push_back(e);
        }
        while let Some(e) = self.hub.poll_event() {
            self.hub_events.push_back(e);
        }
        moved
    }

    /// Runs until nothing is in flight and neither side has anything to
    /// send, advancing the clock only to deliver bytes in flight (timers
    /// fire if they fall due on the way).
    pub(crate) fn drive(&mut self) {
        for _ in 0..MAX_STEPS {
            if self.step() {
                continue;
            }
            let Some(next) = self.next_delivery() else { return };
            self.advance_to(next);
        }
        panic!("drive did not settle in {MAX_STEPS} steps");
    }

    /// Runs the clock forward by `d`, firing timers and deliveries in order.
    pub(crate) fn run_for(&mut self, d: Duration) {
        let end = self.now + d;
        for _ in 0..MAX_STEPS {
            while self.step() {}
            let next = [self.next_delivery(), self.agent.poll_timeout(), self.hub.poll_timeout()]
                .into_iter()
                .flatten()
                .filter(|t| *t <= end)
                .min();
            match next {
                Some(t) => self.advance_to(t),
                None => {
                    self.advance_to(end);
                    while self.step() {}
                    return;
                }
            }
        }
        panic!("run_for did not finish in {MAX_STEPS} steps");
    }

    fn advance_to(&mut self, t: Instant) {
        if t > self.now {
            self.now = t;
        }
        for s in [&mut self.agent, &mut self.hub] {
            if s.poll_timeout().is_some_and(|at| at <= self.now) {
                s.handle_timeout(self.now);
            }
        }
        self.step();
    }

    fn next_delivery(&self) -> Option<Instant> {
        [&self.to_hub, &self.to_agent]
            .iter()
            .filter_map(|p| p.in_flight.front().map(|(t, _)| *t))
            .min()
    }

    /// The next event of a kind from the agent, dropping others before it.
    pub(crate) fn agent_event(&mut self, pred: impl Fn(&Event) -> bool) -> Option<Event> {
        take(&mut self.agent_events, pred)
    }

    pub(crate) fn hub_event(&mut self, pred: impl Fn(&Event) -> bool) -> Option<Event> {
        take(&mut self.hub_events, pred)
    }

    /// Opens a channel from the hub, accepts it at the agent, and drives.
    pub(crate) fn open_from_hub(&mut self, kind: ChannelKind) -> ChannelId {
        let ch = self.hub.open_channel(kind, b"plc-1", b"").unwrap();
        self.drive();
        let requested = self.agent_event(|e| matches!(e, Event::ChannelRequested { .. }));
        assert!(matches!(requested, Some(Event::ChannelRequested { channel, .. }) if channel == ch));
        self.agent.accept(ch).unwrap();
        self.drive();
        assert!(self.hub_event(|e| matches!(e, Event::ChannelAccepted { .. })).is_some());
        ch
    }
}

fn take(events: &mut VecDeque<Event>, pred: impl Fn(&Event) -> bool) -> Option<Event> {
    let i = events.iter().position(pred)?;
    events.remove(i)
}

fn transmit(
    s: &mut Session,
    pipe: &mut Pipe,
    now: Instant,
    latency: Duration,
    chunking: Chunking,
    rng: &mut Rng,
) -> bool {
    let at = now + latency;
    let mut buf = Vec::new();
    let mut moved = false;
    while s.poll_transmit(now, &mut buf) > 0 {
        moved = true;
    }
    if pipe.cut || buf.is_empty() {
        return moved;
    }
    let mut rest = &buf[..];
    while !rest.is_empty() {
        let n = match chunking {
            Chunking::Whole => rest.len(),
            Chunking::Fixed(n) => n.min(rest.len()),
            Chunking::Random { max, .. } => (1 + rng.below(max)).min(rest.len()),
        };
        pipe.in_flight.push_back((at, rest[..n].to_vec()));
        rest = &rest[n..];
    }
    moved
}

fn deliver(pipe: &mut Pipe, s: &mut Session, now: Instant, record: bool) -> bool {
    let mut moved = false;
    while pipe.in_flight.front().is_some_and(|(t, _)| *t <= now) {
        let Some((_, bytes)) = pipe.in_flight.pop_front() else {
            break;
        };
        if record {
            pipe.delivered.extend_from_slice(&bytes);
        }
        s.handle_input(now, &bytes);
        moved = true;
    }
    moved
}
