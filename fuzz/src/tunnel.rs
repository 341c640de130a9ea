//! Tunnel targets: the frame decoder, frame round trips, and a hub and an
//! agent session driven by fuzz input in every state of their life.

use std::sync::Arc;
use std::time::{Duration, Instant};

use arbitrary::{Arbitrary, Unstructured};
use bytes::Bytes;
use outpost_tunnel_proto::frame::{
    Challenge, Frame, FrameDecoder, FrameType, Hello, Open, HEADER_LEN, MAX_REASON_LEN, MAX_VERSIONS, MIN_FRAME_LIMIT,
};
use outpost_tunnel_proto::fuzzing::check_invariants;
use outpost_tunnel_proto::{
    AgentId, AgentIdentity, ChannelBinding, ChannelId, ChannelKind, Config, ErrorCode, Event, MemoryCredentials,
    Random, Secret, Session, SessionError, SessionId, Start,
};

use crate::records::Records;

/// Target `tunnel_frame`: a byte stream through the frame decoder in pieces.
/// Byte 0 picks the limits, byte 1 the piece size. Every frame the decoder
/// returns is the exact bytes of the stream at that point, within the
/// limits; every frame that decodes re-encodes to those bytes.
pub fn tunnel_frame(data: &[u8]) {
    let [limits, piece, stream @ ..] = data else {
        return;
    };
    let max_frame = 1u32 << (8 + limits % 13);
    let max_handshake = 1u32 << (6 + (limits >> 4) % 11);
    let mut decoder = FrameDecoder::new(max_frame, max_handshake);
    let mut offset = 0;
    for chunk in stream.chunks(usize::from(*piece) + 1) {
        decoder.push(chunk);
        loop {
            match decoder.next_frame() {
                Ok(Some(raw)) => {
                    let len = HEADER_LEN + raw.payload.len();
                    let bytes = &stream[offset..offset + len];
                    assert_eq!(raw.header.to_bytes(), bytes[..HEADER_LEN]);
                    assert_eq!(raw.payload, bytes[HEADER_LEN..]);
                    assert!(raw.header.len <= max_frame.max(max_handshake).max(260));
                    offset += len;
                    let frame_type = raw.header.frame_type;
                    if let Ok(frame) = Frame::decode(raw) {
                        assert_eq!(frame.frame_type(), frame_type);
                        assert_eq!(frame.to_vec(), bytes, "{frame:?} re-encodes differently");
                    }
                }
                Ok(None) => break,
                // The stream cannot be resynchronised after a fault.
                Err(e) => {
                    let _ = e.code();
                    return;
                }
            }
        }
        // Everything after the last frame is held, less a header already parsed.
        let held = offset_in(stream, chunk) - offset;
        let buffered = decoder.buffered();
        assert!(
            buffered == held || buffered + HEADER_LEN == held,
            "{buffered} held of {held}"
        );
    }
}

/// Bytes of `stream` up to the end of `chunk` (a sub-slice of it).
fn offset_in(stream: &[u8], chunk: &[u8]) -> usize {
    chunk.as_ptr() as usize - stream.as_ptr() as usize + chunk.len()
}

/// A frame, as plain data.
#[derive(Debug, Arbitrary)]
enum FrameSpec {
    Hello(Vec<u16>, u32, u32, [u8; 32], String),
    Challenge(u16, u32, u32, [u8; 32], [u8; 16]),
    Proof([u8; 32]),
    Confirm([u8; 32]),
    Open(u32, bool, u32, Vec<u8>, Vec<u8>),
    Accept(u32, u32),
    Refuse(u32, u32),
    Data(u32, Vec<u8>),
    Message(u32, u32, Vec<u8>),
    Fin(u32),
    Reset(u32, u32),
    WindowUpdate(u32, u32),
    Ping(u64),
    Pong(u64),
    GoAway(u32, u32),
    Close(u32, Vec<u8>),
}

impl FrameSpec {
    /// The frame, or `None` where the spec breaks a rule of the frame.
    fn frame(self) -> Option<Frame> {
        let ch = ChannelId::new;
        Some(match self {
            FrameSpec::Hello(versions, max_frame, session_window, nonce, agent) => Frame::Hello(Hello {
                versions,
                max_frame,
                session_window,
                nonce,
                agent: AgentId::new(&agent).ok()?,
            }),
            FrameSpec::Challenge(version, max_frame, session_window, nonce, session) => Frame::Challenge(Challenge {
                version,
                max_frame,
                session_window,
                nonce,
                session: SessionId(session),
            }),
            FrameSpec::Proof(mac) => Frame::Proof(mac),
            FrameSpec::Confirm(mac) => Frame::Confirm(mac),
            FrameSpec::Open(channel, stream, window, target, metadata) => Frame::Open(Open {
                channel: ch(channel)?,
                kind: if stream {
                    ChannelKind::Stream
                } else {
                    ChannelKind::Message
                },
                window,
                target: Bytes::from(target),
                metadata: Bytes::from(metadata),
            }),
            FrameSpec::Accept(channel, window) => Frame::Accept {
                channel: ch(channel)?,
                window,
            },
            FrameSpec::Refuse(channel, code) => Frame::Refuse {
                channel: ch(channel)?,
                code: ErrorCode::from_u32(code),
            },
            FrameSpec::Data(channel, data) => Frame::Data {
                channel: ch(channel)?,
                data: Bytes::from(data),
            },
            FrameSpec::Message(channel, correlation, payload) => Frame::Message {
                channel: ch(channel)?,
                correlation,
                payload: Bytes::from(payload),
            },
            FrameSpec::Fin(channel) => Frame::Fin { channel: ch(channel)? },
            FrameSpec::Reset(channel, code) => Frame::Reset {
                channel: ch(channel)?,
                code: ErrorCode::from_u32(code),
            },
            FrameSpec::WindowUpdate(channel, increment) => Frame::WindowUpdate {
                channel: ch(channel),
                increment,
            },
            FrameSpec::Ping(v) => Frame::Ping(v),
            FrameSpec::Pong(v) => Frame::Pong(v),
            FrameSpec::GoAway(code, drain_ms) => Frame::GoAway {
                code: ErrorCode::from_u32(code),
                drain_ms,
            },
            FrameSpec::Close(code, reason) => Frame::Close {
                code: ErrorCode::from_u32(code),
                reason: Bytes::from(reason),
            },
        })
    }
}

/// Target `roundtrip_tunnel`: structured frames, encoded back to back and
/// decoded in pieces. A frame that follows the rules of its type decodes
/// to itself; one that breaks them is refused, never misread.
pub fn roundtrip_tunnel(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let Ok(piece) = u.int_in_range(1usize..=64) else {
        return;
    };
    let Ok(specs) = Vec::<FrameSpec>::arbitrary_take_rest(u) else {
        return;
    };
    for spec in specs.into_iter().take(32) {
        let Some(frame) = spec.frame() else {
            continue;
        };
        let wire = frame.to_vec();
        let mut decoder = FrameDecoder::new(1 << 24, 1 << 24);
        let mut decoded = None;
        for chunk in wire.chunks(piece) {
            assert!(decoded.is_none(), "a frame decoded before its last byte");
            decoder.push(chunk);
            match decoder.next_frame() {
                Ok(Some(raw)) => decoded = Some(Frame::decode(raw)),
                Ok(None) => {}
                Err(e) => {
                    decoded = Some(Err(e));
                    break;
                }
            }
        }
        // A HELLO carries at most MAX_VERSIONS versions, an OPEN at most
        // MAX_TARGET_LEN bytes of target, a CLOSE at most MAX_REASON_LEN bytes
        // of reason: the rest are not sent (documented on the fields).
        let mut expected = frame.clone();
        match &mut expected {
            Frame::Hello(h) => h.versions.truncate(MAX_VERSIONS),
            Frame::Open(o) => o.target.truncate(Open::MAX_TARGET_LEN),
            Frame::Close { reason, .. } => reason.truncate(MAX_REASON_LEN),
            _ => {}
        }
        match decoded.expect("a whole frame was pushed") {
            Ok(back) => assert_eq!(back, expected),
            // Only values outside a frame's rules are refused.
            Err(e) => assert!(breaks_rules(&frame), "{frame:?} was refused: {e}"),
        }
    }
}

/// Whether a frame holds a value its type forbids (PROTOCOL.md section 3).
fn breaks_rules(frame: &Frame) -> bool {
    match frame {
        Frame::Hello(h) => h.versions.is_empty() || h.max_frame < MIN_FRAME_LIMIT,
        Frame::Challenge(c) => c.max_frame < MIN_FRAME_LIMIT,
        Frame::Data { data, .. } => data.is_empty(),
        Frame::WindowUpdate { increment, .. } => *increment == 0,
        _ => false,
    }
}

const AGENT: &str = "plant-7";
const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

/// The session under test, its honest peer, and what the test knows.
pub(crate) struct World {
    pub(crate) target: Session,
    pub(crate) peer: Session,
    now: Instant,
    /// Channels either side has seen.
    channels: Vec<ChannelId>,
    /// Channels the peer asked the target to open, not yet answered.
    requested: Vec<ChannelId>,
    piece: usize,
    closed: bool,
    out: Vec<u8>,
}

fn config(small: bool) -> Config {
    let mut c = Config::default();
    if small {
        let ok = c.max_frame_size(1024).is_ok()
            && c.channel_window(200).is_ok()
            && c.session_window(500).is_ok()
            && c.max_channels(4).is_ok()
            && c.max_pending_opens(2).is_ok()
            && c.max_send_buffer(2000).is_ok();
        assert!(ok, "small settings are valid");
    }
    c
}

fn agent_id() -> AgentId {
    AgentId::new(AGENT).expect("valid id")
}

fn secret() -> Secret {
    Secret::new(SECRET).expect("valid secret")
}

fn binding() -> ChannelBinding {
    ChannelBinding::new(&[0xB1; 32]).expect("valid binding")
}

/// Moves everything `from` has to send into `to`, in one piece.
fn hop(from: &mut Session, to: &mut Session, now: Instant, buf: &mut Vec<u8>) {
    buf.clear();
    while from.poll_transmit(now, buf) > 0 {}
    if !buf.is_empty() {
        to.handle_input(now, buf);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    Hub,
    Agent,
}

impl World {
    /// Both sessions, the target in `state`:
    /// 0: nothing received yet (hub before HELLO, agent before CHALLENGE);
    /// 1: mid-handshake (hub before PROOF, agent before CONFIRM);
    /// 2: established; 3: with channels open and one request pending;
    /// 4: the target shutting down; 5: the peer shutting down; 6: closed.
    pub(crate) fn new(role: Role, state: u8, options: u8) -> World {
        let now = Instant::now();
        let small = options & 0x04 != 0;
        let certified = (options >> 3) & 3;
        let agent = Session::agent(
            config(small),
            AgentIdentity::new(agent_id(), secret()),
            Start::new(binding(), Random([0xA1; 32])),
            now,
        );
        let mut store = MemoryCredentials::new();
        store.insert(agent_id(), secret());
        let mut start = Start::new(binding(), Random([0xB2; 32]));
        match certified {
            1 => start = start.certified_agent(agent_id()),
            2 => start = start.certified_agent(AgentId::new("plant-8").expect("valid id")),
            _ => {}
        }
        let hub = Session::hub(config(small), Arc::new(store), start, now);
        let (target, peer) = match role {
            Role::Hub => (hub, agent),
            Role::Agent => (agent, hub),
        };
        let mut w = World {
            target,
            peer,
            now,
            channels: Vec::new(),
            requested: Vec::new(),
            piece: [usize::MAX, 1, 7, 64][usize::from(options & 3)],
            closed: false,
            out: Vec::new(),
        };
        let state = state % 7;
        let mut buf = Vec::new();
        let (agent, hub) = match role {
            Role::Hub => (&mut w.peer, &mut w.target),
            Role::Agent => (&mut w.target, &mut w.peer),
        };
        match state {
            0 => {
                if role == Role::Agent {
                    // HELLO leaves; the fuzz input plays the hub.
                    buf.clear();
                    while agent.poll_transmit(now, &mut buf) > 0 {}
                }
            }
            1 => {
                hop(agent, hub, now, &mut buf);
                if role == Role::Agent {
                    hop(hub, agent, now, &mut buf);
                    hop(agent, hub, now, &mut buf);
                    // The hub's CONFIRM is dropped.
                    buf.clear();
                    while hub.poll_transmit(now, &mut buf) > 0 {}
                } else {
                    // The hub's CHALLENGE reaches the agent, whose PROOF is dropped.
                    hop(hub, agent, now, &mut buf);
                    buf.clear();
                    while agent.poll_transmit(now, &mut buf) > 0 {}
                }
            }
            _ => {
                for _ in 0..4 {
                    hop(agent, hub, now, &mut buf);
                    hop(hub, agent, now, &mut buf);
                }
                // Only a certificate naming another agent makes it fail.
                let refused = certified == 2;
                assert_eq!(agent.is_established(), !refused, "agent: {:?}", agent.error());
                assert_eq!(hub.is_established(), !refused, "hub: {:?}", hub.error());
            }
        }
        // A refused handshake already sent its CLOSE above.
        w.closed = w.target.is_closed();
        if state >= 3 {
            let a = w.target.open_channel(ChannelKind::Stream, b"plc-1", b"").ok();
            let b = w.peer.open_channel(ChannelKind::Message, b"plc-2", b"meta").ok();
            let c = w.peer.open_channel(ChannelKind::Stream, b"plc-3", b"").ok();
            w.pump();
            // The peer accepted `a`; the target accepts `b` and leaves `c` pending.
            if let Some(b) = b {
                let _ = w.target.accept(b);
            }
            w.requested.retain(|r| Some(*r) != b);
            w.pump();
            w.channels.extend([a, b, c].into_iter().flatten());
        }
        match state {
            4 => w.target.shutdown(now, ErrorCode::Shutdown, Duration::from_secs(5)),
            5 => {
                w.peer.shutdown(now, ErrorCode::Shutdown, Duration::from_secs(5));
                w.pump();
            }
            6 => w.target.close(ErrorCode::InternalError, b"closed for the test"),
            _ => {}
        }
        w.after_step();
        w
    }

    /// Exchanges what both sides have to send, a few rounds.
    fn pump(&mut self) {
        let mut buf = Vec::new();
        for _ in 0..3 {
            buf.clear();
            while self.target.poll_transmit(self.now, &mut buf) > 0 {}
            self.check_output(&buf);
            self.peer.handle_input(self.now, &buf);
            self.peer_events();
            hop(&mut self.peer, &mut self.target, self.now, &mut buf);
            self.after_step();
        }
    }

    /// The honest peer accepts what it is asked to open and reads what comes.
    fn peer_events(&mut self) {
        for _ in 0..1024 {
            let Some(event) = self.peer.poll_event() else {
                return;
            };
            match event {
                Event::ChannelRequested { channel, .. } => {
                    let _ = self.peer.accept(channel);
                    self.channels.push(channel);
                }
                Event::Readable { channel } => {
                    let mut buf = [0u8; 4096];
                    let _ = self.peer.read(channel, &mut buf);
                    while let Ok(Some(_)) = self.peer.recv_message(channel) {}
                }
                _ => {}
            }
        }
    }

    /// Once the target has closed, what it sent ends with CLOSE, unless it
    /// closed because the peer's CLOSE arrived (nothing is sent after that).
    fn check_output(&mut self, out: &[u8]) {
        self.out.extend_from_slice(out);
        if !self.target.is_closed() || self.closed {
            return;
        }
        self.closed = true;
        if matches!(self.target.error(), Some(SessionError::Remote { .. })) {
            return;
        }
        let mut decoder = FrameDecoder::new(1 << 24, 1 << 24);
        decoder.push(&self.out);
        let mut last = None;
        while let Ok(Some(raw)) = decoder.next_frame() {
            last = Some(raw.header.frame_type);
        }
        assert_eq!(last, Some(FrameType::Close), "closed without a CLOSE last");
        self.out.clear();
    }

    /// Checks kept after every step.
    fn after_step(&mut self) {
        check_invariants(&self.target);
        check_invariants(&self.peer);
        for _ in 0..1024 {
            match self.target.poll_event() {
                Some(Event::ChannelRequested { channel, .. }) => {
                    self.requested.push(channel);
                    self.channels.push(channel);
                }
                Some(Event::ChannelAccepted { channel }) => self.channels.push(channel),
                Some(Event::Closed(_)) => assert!(self.target.is_closed()),
                Some(_) => {}
                None => break,
            }
        }
        self.channels.sort_unstable();
        self.channels.dedup();
        self.channels.truncate(64);
        if self.target.is_closed() {
            let mut buf = Vec::new();
            while self.target.poll_transmit(self.now, &mut buf) > 0 {}
            self.check_output(&buf);
            assert!(self.target.is_drained());
            assert!(self.target.poll_timeout().is_none());
            assert!(self.target.error().is_some());
        }
    }

    fn channel(&self, pick: u8) -> ChannelId {
        match self.channels.get(usize::from(pick) % self.channels.len().max(1)) {
            Some(c) => *c,
            None => ChannelId::new(u32::from(pick) + 1).expect("non-zero"),
        }
    }

    /// Lets time pass up to `until`, firing timers on the way.
    fn advance(&mut self, by: Duration) {
        let until = self.now + by;
        for _ in 0..64 {
            let next = [self.target.poll_timeout(), self.peer.poll_timeout()]
                .into_iter()
                .flatten()
                .filter(|t| *t <= until)
                .min();
            let Some(t) = next else {
                break;
            };
            self.now = self.now.max(t);
            for s in [&mut self.target, &mut self.peer] {
                if s.poll_timeout().is_some_and(|at| at <= self.now) {
                    s.handle_timeout(self.now);
                }
            }
            self.pump();
        }
        self.now = until;
    }

    fn step(&mut self, op: u8, payload: &[u8]) {
        let first = payload.first().copied().unwrap_or(0);
        match op % 8 {
            0 => {
                for piece in payload.chunks(self.piece.max(1)) {
                    self.target.handle_input(self.now, piece);
                    check_invariants(&self.target);
                }
            }
            1 => {
                let ms = payload.iter().take(3).fold(0u64, |a, b| a << 8 | u64::from(*b));
                self.advance(Duration::from_millis(ms));
            }
            2 => {
                let mut buf = [0u8; 512];
                for ch in self.channels.clone() {
                    let _ = self.target.read(ch, &mut buf[..usize::from(first) + 1]);
                    let _ = self.target.recv_message(ch);
                    let _ = self.target.read_chunk(ch, usize::from(first));
                }
            }
            3 => {
                let ch = self.channel(first);
                let _ = self.target.send(ch, payload);
                let _ = self.target.send_message(ch, u32::from(first), payload);
            }
            4 => {
                if let Some(ch) = self.requested.pop() {
                    if first & 1 == 0 {
                        let _ = self.target.accept(ch);
                    } else {
                        let _ = self.target.refuse(ch, ErrorCode::from_u32(u32::from(first)));
                    }
                }
            }
            5 => {
                let kind = if first & 1 == 0 {
                    ChannelKind::Stream
                } else {
                    ChannelKind::Message
                };
                if let Ok(ch) = self.target.open_channel(kind, payload, b"") {
                    self.channels.push(ch);
                }
            }
            6 => {
                let ch = self.channel(payload.get(1).copied().unwrap_or(0));
                match first % 6 {
                    0 => drop(self.target.finish(ch)),
                    1 => drop(self.target.reset(ch, ErrorCode::from_u32(u32::from(first)))),
                    2 => self.target.ping(self.now),
                    3 => self.target.shutdown(
                        self.now,
                        ErrorCode::Shutdown,
                        Duration::from_millis(u64::from(first) * 10),
                    ),
                    4 => self.target.close(ErrorCode::from_u32(u32::from(first)), payload),
                    _ => {
                        let _ = self.target.max_message_len(ch);
                        let _ = self.target.is_open(ch);
                        let _ = self.target.stats();
                    }
                }
            }
            _ => self.pump(),
        }
        let mut buf = Vec::new();
        if op & 0x80 != 0 {
            // Keep what the target sends flowing out, as a socket would.
            while self.target.poll_transmit(self.now, &mut buf) > 0 {}
            self.check_output(&buf);
        }
        self.after_step();
    }
}

fn session(role: Role, data: &[u8]) {
    let [state, options, rest @ ..] = data else {
        return;
    };
    let mut world = World::new(role, *state, *options);
    for (op, payload) in Records::new(rest).take(256) {
        world.step(op, payload);
    }
    // Whatever happened, the session winds down on its own clock.
    world.advance(Duration::from_secs(600));
    world.after_step();
}

/// Target `hub_session`: a hub fed fuzz input as if from an agent, in
/// every state (see `World::new`), with application calls in between.
///
/// Input: a state byte, an options byte (bits 0-1: piece size of input;
/// bit 2: small windows and limits; bits 3-4: the TLS layer certifies no
/// agent, this agent, or another), then records `[op][len][payload]`: op
/// % 8 is input, time passing, reads, sends, answering open requests, opens,
/// channel and session calls, or an honest exchange with the peer; op bit 7
/// drains the target's output after the step.
pub fn hub_session(data: &[u8]) {
    session(Role::Hub, data);
}

/// Target `agent_session`: an agent fed fuzz input as if from a hub; the
/// input format is that of [`hub_session`].
pub fn agent_session(data: &[u8]) {
    session(Role::Agent, data);
}
