//! The session state machine: one per connection, either role.
//!
//! Input is pushed in ([`Session::handle_input`], [`Session::handle_timeout`],
//! commands); output is pulled ([`Session::poll_transmit`],
//! [`Session::poll_event`], [`Session::poll_timeout`]). The session never
//! reads a clock and never blocks.

mod channels;
mod commands;
mod event;
mod flow;
mod handshake;
mod input;
mod timer;
mod transmit;

#[cfg(test)]
mod tests;

use std::collections::VecDeque;

use foldhash::{HashMap, HashMapExt};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;

pub use event::{Event, Message, Stats};
pub use handshake::{AgentIdentity, Start};

/// `T` of the specification, for its worked example.
#[cfg(test)]
pub(crate) fn transcript_hash(hello: &[u8], challenge: &[u8]) -> [u8; 32] {
    handshake::finish(handshake::transcript(&[hello, challenge]))
}

use self::channels::Channel;
use self::flow::{RecvWindow, SendWindow};
use self::handshake::Handshake;
use self::timer::{Timer, Timers};
use crate::code::ErrorCode;
use crate::config::Config;
use crate::credentials::CredentialStore;
use crate::error::{SessionError, Violation};
use crate::frame::{Frame, FrameDecoder, Hello};
use crate::id::{AgentId, ChannelBinding, ChannelId, SessionId};

/// Which end of the tunnel a session is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Dials out; owns the devices; opens odd channel ids.
    Agent,
    /// Accepts agents; opens even channel ids.
    Hub,
}

/// Control frames the peer can make this side queue (refusals, resets)
/// stop being queued past this many bytes of unsent output: a peer that
/// causes them without reading is cut off ([`Violation::Backlog`]).
const MAX_CONTROL_BACKLOG: usize = 256 * 1024;

#[derive(Debug)]
enum Phase {
    Handshake,
    Established,
    Closed(SessionError),
}

/// One end of a tunnel session. See the crate documentation for a
/// complete exchange.
pub struct Session {
    role: Role,
    config: Config,
    binding: ChannelBinding,
    certified_agent: Option<AgentId>,
    phase: Phase,
    handshake: Option<Handshake>,
    decoder: FrameDecoder,
    /// Encoded control frames waiting for `poll_transmit`, in order.
    control: Vec<u8>,
    pending_pong: Option<u64>,
    events: VecDeque<Event>,
    channels: HashMap<ChannelId, Channel>,
    /// Channels with something to send, served round-robin one frame at a time.
    send_queue: VecDeque<ChannelId>,
    /// Channels owed a `Writable` event when credit or buffer space frees up.
    blocked: Vec<ChannelId>,
    pending_opens: u32,
    next_local_id: u64,
    highest_peer_id: u32,
    peer_max_frame: u32,
    send_window: SendWindow,
    recv_window: RecvWindow,
    /// Bytes accepted by `send` and not yet transmitted.
    queued_bytes: u64,
    timers: Timers,
    /// The last channel went away; the idle timer starts at the next `now`.
    idle_pending: bool,
    ping_seq: u64,
    ping_outstanding: Option<(u64, Instant)>,
    /// The outstanding PING still waits in `control`; its time is set when sent.
    ping_unsent: bool,
    goaway_sent: bool,
    goaway_received: bool,
    agent: Option<AgentId>,
    session_id: Option<SessionId>,
    version: u16,
    stats: Stats,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("role", &self.role)
            .field("phase", &self.phase)
            .field("agent", &self.agent)
            .field("session", &self.session_id)
            .field("channels", &self.channels.len())
            .finish_non_exhaustive()
    }
}

impl Session {
    /// The agent's end of a new connection. Queues HELLO at once.
    pub fn agent(config: Config, identity: AgentIdentity, start: Start, now: Instant) -> Session {
        let hello = Hello {
            versions: config.versions.clone(),
            max_frame: config.max_frame_size,
            session_window: config.session_window,
            nonce: start.random.0,
            agent: identity.id.clone(),
        };
        let mut s = Session::new(Role::Agent, config, start, now);
        let len = s.control.len();
        hello.encode(&mut s.control);
        let transcript = handshake::transcript(&[&s.control[len..]]);
        s.handshake = Some(Handshake::AgentHello {
            identity,
            hello,
            transcript,
        });
        s
    }

    /// The hub's end of a new connection, checking agents against `store`.
    pub fn hub(config: Config, store: Arc<dyn CredentialStore>, start: Start, now: Instant) -> Session {
        let random = start.random.clone();
        let mut s = Session::new(Role::Hub, config, start, now);
        s.handshake = Some(Handshake::HubHello { store, random });
        s
    }

    fn new(role: Role, config: Config, start: Start, now: Instant) -> Session {
        let mut timers = Timers::default();
        timers.set_after(Timer::Handshake, now, config.handshake_timeout);
        Session {
            role,
            decoder: FrameDecoder::new(config.max_frame_size, config.max_handshake_size),
            binding: start.binding,
            certified_agent: start.certified_agent,
            phase: Phase::Handshake,
            handshake: None,
            control: Vec::new(),
            pending_pong: None,
            events: VecDeque::new(),
            channels: HashMap::new(),
            send_queue: VecDeque::new(),
            blocked: Vec::new(),
            pending_opens: 0,
            next_local_id: match role {
                Role::Agent => 1,
                Role::Hub => 2,
            },
            highest_peer_id: 0,
            peer_max_frame: crate::frame::MIN_FRAME_LIMIT,
            send_window: SendWindow::new(0),
            recv_window: RecvWindow::new(config.session_window),
            queued_bytes: 0,
            timers,
            idle_pending: false,
            ping_seq: 0,
            ping_outstanding: None,
            ping_unsent: false,
            goaway_sent: false,
            goaway_received: false,
            agent: None,
            session_id: None,
            version: 0,
            stats: Stats::default(),
            config,
        }
    }

    /// Which end this is.
    pub fn role(&self) -> Role {
        self.role
    }

    /// Whether the handshake has finished and the session is not closed.
    pub fn is_established(&self) -> bool {
        matches!(self.phase, Phase::Established)
    }

    /// Whether the session has ended (its last frames may still await `poll_transmit`).
    pub fn is_closed(&self) -> bool {
        matches!(self.phase, Phase::Closed(_))
    }

    /// Whether the session has ended and everything it had to send has been
    /// taken: the driver may close the connection.
    pub fn is_drained(&self) -> bool {
        self.is_closed() && self.control.is_empty()
    }

    /// Why the session ended, once it has.
    pub fn error(&self) -> Option<&SessionError> {
        match &self.phase {
            Phase::Closed(e) => Some(e),
            _ => None,
        }
    }

    /// The authenticated agent, once established.
    pub fn agent_id(&self) -> Option<&AgentId> {
        self.agent.as_ref()
    }

    /// The protocol version in use, once established.
    pub fn version(&self) -> Option<u16> {
        (self.version != 0).then_some(self.version)
    }

    /// The session's id, once the hub has chosen it.
    pub fn session_id(&self) -> Option<SessionId> {
        self.session_id
    }

    /// Counters, including the latest round-trip time.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Whether either side sent GOAWAY.
    pub fn is_going_away(&self) -> bool {
        self.goaway_sent || self.goaway_received
    }

    /// Number of channels in any state.
    pub fn channel_count(&self) -> usize {
        self.channels.len()
    }

    /// Memory held for received data: channel buffers and the decoder.
    #[cfg(any(test, feature = "fuzzing"))]
    pub(crate) fn receive_memory(&self) -> usize {
        self.channels.values().map(|c| c.incoming.capacity()).sum::<usize>() + self.decoder.capacity()
    }

    /// Jumps this side's next channel id, to reach id exhaustion in a test.
    #[cfg(test)]
    pub(crate) fn skip_channel_ids_to(&mut self, next: u64) {
        self.next_local_id = next;
    }

    /// Panics if the session's bookkeeping disagrees with itself.
    #[cfg(any(test, feature = "fuzzing"))]
    pub(crate) fn check_invariants(&self) {
        use channels::State;
        if self.is_closed() {
            assert!(self.channels.is_empty() && self.send_queue.is_empty() && self.timers.next().is_none());
            return;
        }
        let pending = self.channels.values().filter(|c| c.state == State::Pending).count();
        assert_eq!(pending, self.pending_opens as usize, "pending opens");
        let queued: u64 = self.channels.values().map(|c| c.outgoing_bytes).sum();
        assert_eq!(queued, self.queued_bytes, "queued bytes");
        assert!(self.queued_bytes <= self.config.max_send_buffer);
        assert!(self.channels.len() <= self.config.max_channels as usize);
        let (window, allowed, unreturned) = self.recv_window.parts();
        let buffered: u64 = self.channels.values().map(|c| c.incoming_bytes).sum();
        assert_eq!(allowed + unreturned + buffered, window, "session receive window");
        for (id, ch) in &self.channels {
            let (window, allowed, unreturned) = ch.recv.parts();
            if !ch.fin_received {
                assert_eq!(
                    allowed + unreturned + ch.incoming_bytes,
                    window,
                    "receive window of {id}"
                );
            }
            assert!(ch.incoming_bytes <= window);
            let outgoing: u64 = ch.outgoing.iter().map(channels::Chunk::cost).sum();
            assert_eq!(outgoing, ch.outgoing_bytes, "outgoing bytes of {id}");
            assert_eq!(ch.scheduled, self.send_queue.contains(id), "scheduling of {id}");
            if ch.wants_to_send() {
                assert!(ch.scheduled, "{id} has data but is not scheduled");
            }
        }
        let mut ids: Vec<_> = self.send_queue.iter().collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), self.send_queue.len(), "a channel queued twice");
    }

    /// The next event, if any. Drain events after every input.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When to call [`Session::handle_timeout`] next, if ever.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.is_closed() {
            return None;
        }
        self.timers.next()
    }

    /// Acts on every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.advance(now);
        if self.is_closed() {
            return;
        }
        for timer in Timer::ALL {
            if !self.timers.is_expired(timer, now) || self.is_closed() {
                continue;
            }
            self.timers.clear(timer);
            match timer {
                Timer::Handshake => {
                    tracing::debug!(role = ?self.role, "handshake timed out");
                    self.close_with(SessionError::HandshakeTimedOut, b"handshake timeout");
                }
                Timer::PeerTimeout => {
                    tracing::debug!(role = ?self.role, agent = ?self.agent, "peer silent; closing");
                    self.close_with(SessionError::TimedOut, b"peer timeout");
                }
                Timer::KeepAlive => {
                    if self.ping_outstanding.is_none() {
                        self.send_ping(now);
                    }
                    self.timers
                        .set_after(Timer::KeepAlive, now, self.config.keepalive_interval);
                }
                Timer::Idle => self.shutdown(now, ErrorCode::Idle, std::time::Duration::ZERO),
                Timer::Drain => {
                    let code = ErrorCode::Shutdown;
                    self.close_with(SessionError::Local { code }, b"drain deadline passed");
                }
            }
        }
    }

    /// Starts the idle timer if it is due.
    fn advance(&mut self, now: Instant) {
        if self.idle_pending {
            self.idle_pending = false;
            if let (Some(idle), true) = (
                self.config.idle_timeout,
                self.channels.is_empty() && self.is_established(),
            ) {
                self.timers.set_after(Timer::Idle, now, idle);
            }
        }
    }

    fn send_ping(&mut self, now: Instant) {
        self.ping_seq += 1;
        self.ping_outstanding = Some((self.ping_seq, now));
        self.ping_unsent = true;
        Frame::Ping(self.ping_seq).encode(&mut self.control);
    }

    /// Ends the session because of a peer's fault or a timer: queues CLOSE,
    /// drops all channel state and reports [`Event::Closed`].
    fn close_with(&mut self, error: SessionError, reason: &[u8]) {
        if self.is_closed() {
            return;
        }
        let code = error.code();
        let reason = match &error {
            SessionError::VersionMismatch { supported, .. } if self.role == Role::Hub => {
                supported.iter().flat_map(|v| v.to_be_bytes()).collect()
            }
            _ => Bytes::copy_from_slice(reason),
        };
        Frame::Close { code, reason }.encode(&mut self.control);
        self.enter_closed(error);
    }

    fn enter_closed(&mut self, error: SessionError) {
        tracing::debug!(role = ?self.role, agent = ?self.agent, %error, "session closed");
        self.channels.clear();
        self.send_queue.clear();
        self.blocked.clear();
        self.pending_pong = None;
        self.queued_bytes = 0;
        self.timers.clear_all();
        self.decoder.clear();
        self.handshake = None;
        self.events.push_back(Event::Closed(error.clone()));
        self.phase = Phase::Closed(error);
    }

    fn violation(&mut self, v: impl Into<Violation>) {
        let v = v.into();
        tracing::debug!(role = ?self.role, agent = ?self.agent, violation = %v, "peer violated the protocol");
        self.close_with(SessionError::Violation(v), b"");
    }

    /// Wakes every channel owed a `Writable` event.
    fn wake_blocked(&mut self) {
        for id in std::mem::take(&mut self.blocked) {
            if let Some(ch) = self.channels.get_mut(&id) {
                if ch.blocked {
                    ch.blocked = false;
                    self.events.push_back(Event::Writable { channel: id });
                }
            }
        }
    }

    fn wake(&mut self, id: ChannelId) {
        if let Some(ch) = self.channels.get_mut(&id) {
            if ch.blocked {
                ch.blocked = false;
                self.blocked.retain(|b| *b != id);
                self.events.push_back(Event::Writable { channel: id });
            }
        }
    }

    fn schedule(&mut self, id: ChannelId) {
        if let Some(ch) = self.channels.get_mut(&id) {
            if !ch.scheduled && ch.wants_to_send() {
                ch.scheduled = true;
                self.send_queue.push_back(id);
            }
        }
    }

    /// Removes a finished channel, reports it, and completes a shutdown
    /// waiting for the last channel.
    fn retire_if_done(&mut self, id: ChannelId) {
        if self.channels.get(&id).is_some_and(Channel::is_done) {
            self.remove_channel(id);
            self.events.push_back(Event::ChannelClosed { channel: id });
            self.after_channel_removed();
        }
    }

    /// Drops a channel's state, refunding credit for data never sent and
    /// returning session credit for data never read.
    fn remove_channel(&mut self, id: ChannelId) -> Option<Channel> {
        let ch = self.channels.remove(&id)?;
        if ch.state == channels::State::Pending {
            self.pending_opens -= 1;
        }
        self.queued_bytes -= ch.outgoing_bytes;
        self.send_window.refund(ch.outgoing_bytes);
        self.return_session_credit(ch.incoming_bytes);
        Some(ch)
    }

    fn after_channel_removed(&mut self) {
        if self.channels.is_empty() {
            if self.goaway_sent {
                self.close_with(
                    SessionError::Local {
                        code: ErrorCode::NoError,
                    },
                    b"",
                );
            } else if self.config.idle_timeout.is_some() {
                self.idle_pending = true;
            }
        }
    }

    fn return_session_credit(&mut self, n: u64) {
        if let Some(inc) = self.recv_window.consume(n) {
            Frame::WindowUpdate {
                channel: None,
                increment: inc,
            }
            .encode(&mut self.control);
        }
    }
}
