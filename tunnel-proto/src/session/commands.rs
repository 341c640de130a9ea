//! What the application asks of a session. A caller's mistake is an `Err`;
//! nothing here can end the session except `shutdown` and `close`.

use std::time::{Duration, Instant};

use bytes::Bytes;

use super::channels::{Channel, Chunk, State};
use super::timer::Timer;
use super::{Message, Phase, Session};
use crate::code::ErrorCode;
use crate::error::{ChannelError, OpenError, ReadError, SendError, SessionError};
use crate::frame::{Frame, Open, MESSAGE_OVERHEAD};
use crate::id::{ChannelId, ChannelKind};

impl Session {
    /// Opens a channel of `kind` to `target`, carrying `metadata` to the
    /// peer. The peer answers with [`crate::Event::ChannelAccepted`] or
    /// [`crate::Event::ChannelRefused`]; sends before that return `Blocked`.
    pub fn open_channel(&mut self, kind: ChannelKind, target: &[u8], metadata: &[u8]) -> Result<ChannelId, OpenError> {
        match self.phase {
            Phase::Handshake => return Err(OpenError::NotEstablished),
            Phase::Closed(_) => return Err(OpenError::Closed),
            Phase::Established => {}
        }
        if self.is_going_away() {
            return Err(OpenError::GoingAway);
        }
        if target.len() > Open::MAX_TARGET_LEN {
            return Err(OpenError::TargetTooLong);
        }
        let len = 6 + target.len() + metadata.len();
        if len > self.peer_max_frame as usize {
            return Err(OpenError::TooLarge {
                len,
                max: self.peer_max_frame,
            });
        }
        if self.channels.len() >= self.config.max_channels as usize {
            return Err(OpenError::TooManyChannels);
        }
        let Some(id) = u32::try_from(self.next_local_id).ok().and_then(ChannelId::new) else {
            return Err(OpenError::IdsExhausted);
        };
        self.next_local_id += 2;
        let window = self.config.channel_window;
        self.channels.insert(id, Channel::new(kind, State::Opening, window, 0));
        self.timers.clear(Timer::Idle);
        self.stats.channels_opened += 1;
        let open = Open {
            channel: id,
            kind,
            window,
            target: Bytes::copy_from_slice(target),
            metadata: Bytes::copy_from_slice(metadata),
        };
        Frame::Open(open).encode(&mut self.control);
        Ok(id)
    }

    /// Accepts a channel the peer asked for ([`crate::Event::ChannelRequested`]).
    pub fn accept(&mut self, channel: ChannelId) -> Result<(), ChannelError> {
        self.check_open()?;
        let window = self.config.channel_window;
        let ch = self.pending(channel)?;
        ch.state = State::Open;
        self.pending_opens -= 1;
        Frame::Accept { channel, window }.encode(&mut self.control);
        self.schedule(channel);
        Ok(())
    }

    /// Refuses a channel the peer asked for, telling it `code`.
    pub fn refuse(&mut self, channel: ChannelId, code: ErrorCode) -> Result<(), ChannelError> {
        self.check_open()?;
        self.pending(channel)?;
        self.remove_channel(channel);
        Frame::Refuse { channel, code }.encode(&mut self.control);
        self.after_channel_removed();
        Ok(())
    }

    fn pending(&mut self, channel: ChannelId) -> Result<&mut Channel, ChannelError> {
        match self.channels.get_mut(&channel) {
            Some(ch) if ch.state == State::Pending => Ok(ch),
            _ => Err(ChannelError::UnknownChannel(channel)),
        }
    }

    fn check_open(&self) -> Result<(), ChannelError> {
        match self.phase {
            Phase::Closed(_) => Err(ChannelError::Closed),
            _ => Ok(()),
        }
    }

    /// Queues bytes on a stream channel. Returns how many were taken (as many
    /// as credit and buffer space allow), or `Blocked` if none could be.
    pub fn send(&mut self, channel: ChannelId, data: &[u8]) -> Result<usize, SendError> {
        self.send_with(channel, data.len(), |n| Bytes::copy_from_slice(&data[..n]))
    }

    /// Like [`Session::send`], without copying: the session keeps a slice
    /// of `data` (the part taken).
    pub fn send_bytes(&mut self, channel: ChannelId, data: Bytes) -> Result<usize, SendError> {
        self.send_with(channel, data.len(), |n| data.slice(..n))
    }

    fn send_with(
        &mut self,
        channel: ChannelId,
        len: usize,
        take: impl FnOnce(usize) -> Bytes,
    ) -> Result<usize, SendError> {
        let room = self.send_room(channel, ChannelKind::Stream)?;
        let n = (len as u64).min(room) as usize;
        if n == 0 && len > 0 {
            return Err(self.block(channel, 1));
        }
        if n > 0 {
            self.enqueue(channel, Chunk::Data(take(n)));
        }
        Ok(n)
    }

    /// Queues one message on a message channel, whole or not at all.
    pub fn send_message(&mut self, channel: ChannelId, correlation: u32, payload: &[u8]) -> Result<(), SendError> {
        self.send_message_with(channel, correlation, payload.len(), || Bytes::copy_from_slice(payload))
    }

    /// Like [`Session::send_message`], without copying.
    pub fn send_message_bytes(
        &mut self,
        channel: ChannelId,
        correlation: u32,
        payload: Bytes,
    ) -> Result<(), SendError> {
        self.send_message_with(channel, correlation, payload.len(), || payload)
    }

    fn send_message_with(
        &mut self,
        channel: ChannelId,
        correlation: u32,
        len: usize,
        take: impl FnOnce() -> Bytes,
    ) -> Result<(), SendError> {
        let room = self.send_room(channel, ChannelKind::Message)?;
        let cost = (MESSAGE_OVERHEAD + len) as u64;
        let max = self.max_message_cost(channel);
        if cost > max {
            return Err(SendError::TooLarge {
                len,
                max: max.saturating_sub(4) as usize,
            });
        }
        if cost > room {
            return Err(self.block(channel, cost));
        }
        self.enqueue(channel, Chunk::Message(correlation, take()));
        Ok(())
    }

    /// The largest message payload that can be sent on `channel` (its peer's
    /// frame limit and half of each window the message must fit), once the
    /// channel is accepted.
    pub fn max_message_len(&self, channel: ChannelId) -> Option<usize> {
        let ch = self.channels.get(&channel)?;
        (ch.state == State::Open).then(|| self.max_message_cost(channel).saturating_sub(4) as usize)
    }

    fn max_message_cost(&self, channel: ChannelId) -> u64 {
        let window = self.channels.get(&channel).map_or(0, |c| c.send.initial());
        let frame = u64::from(self.peer_max_frame);
        frame
            .min(u64::from(window) / 2)
            .min(u64::from(self.send_window.initial()) / 2)
            .min(self.config.max_send_buffer)
    }

    /// Credit and buffer space available to `channel` now.
    fn send_room(&mut self, channel: ChannelId, kind: ChannelKind) -> Result<u64, SendError> {
        if self.is_closed() {
            return Err(SendError::Closed);
        }
        let ch = self.channels.get(&channel).ok_or(SendError::UnknownChannel(channel))?;
        if ch.kind != kind {
            return Err(SendError::WrongKind);
        }
        if ch.fin_queued {
            return Err(SendError::Finished);
        }
        if ch.state != State::Open {
            return Ok(0);
        }
        let buffer = self.config.max_send_buffer.saturating_sub(self.queued_bytes);
        Ok(ch.send.credit().min(self.send_window.credit()).min(buffer))
    }

    /// Records that `channel` waits for `needed` bytes of room. A channel
    /// short of its own credit is woken by its WINDOW_UPDATE (or ACCEPT);
    /// otherwise it waits on the session (credit or buffer space).
    fn block(&mut self, channel: ChannelId, needed: u64) -> SendError {
        if let Some(ch) = self.channels.get_mut(&channel) {
            let own_limit = ch.state != State::Open || ch.send.credit() < needed;
            if !ch.blocked || !own_limit {
                ch.blocked = true;
                if !own_limit && !self.blocked.contains(&channel) {
                    self.blocked.push(channel);
                }
            }
        }
        SendError::Blocked
    }

    fn enqueue(&mut self, channel: ChannelId, chunk: Chunk) {
        let cost = chunk.cost();
        if let Some(ch) = self.channels.get_mut(&channel) {
            ch.send.spend(cost);
            ch.outgoing_bytes += cost;
            ch.outgoing.push_back(chunk);
            self.send_window.spend(cost);
            self.queued_bytes += cost;
            self.schedule(channel);
        }
    }

    /// Up to `max` bytes from a stream channel without copying. `Ok(None)`
    /// once the peer has finished and everything was read.
    pub fn read_chunk(&mut self, channel: ChannelId, max: usize) -> Result<Option<Bytes>, ReadError> {
        let ch = self.readable(channel, ChannelKind::Stream)?;
        let Some(chunk) = ch.pop_data(max) else {
            return self.end_of_input(channel).map(|()| None);
        };
        self.consumed(channel, chunk.len() as u64);
        Ok(Some(chunk))
    }

    /// Copies bytes from a stream channel into `buf`. `Ok(0)` (with a
    /// non-empty `buf`) once the peer has finished and everything was read.
    pub fn read(&mut self, channel: ChannelId, buf: &mut [u8]) -> Result<usize, ReadError> {
        if buf.is_empty() {
            return Ok(0);
        }
        // A channel's bytes wait in one contiguous buffer: one chunk takes
        // all there is, up to `buf`. Data comes first; the end of input is
        // reported by the next call.
        match self.read_chunk(channel, buf.len())? {
            Some(chunk) => {
                buf[..chunk.len()].copy_from_slice(&chunk);
                Ok(chunk.len())
            }
            None => Ok(0),
        }
    }

    /// The next message from a message channel. `Ok(None)` once the peer
    /// has finished and every message was read.
    pub fn recv_message(&mut self, channel: ChannelId) -> Result<Option<Message>, ReadError> {
        let ch = self.readable(channel, ChannelKind::Message)?;
        let Some((correlation, payload)) = ch.pop_message() else {
            return self.end_of_input(channel).map(|()| None);
        };
        self.consumed(channel, (MESSAGE_OVERHEAD + payload.len()) as u64);
        Ok(Some(Message { correlation, payload }))
    }

    fn readable(&mut self, channel: ChannelId, kind: ChannelKind) -> Result<&mut Channel, ReadError> {
        if self.is_closed() {
            return Err(ReadError::Closed);
        }
        let ch = self
            .channels
            .get_mut(&channel)
            .ok_or(ReadError::UnknownChannel(channel))?;
        if ch.kind != kind {
            return Err(ReadError::WrongKind);
        }
        ch.readable_signalled = false;
        Ok(ch)
    }

    /// Nothing buffered: either the peer finished (deliver the end once,
    /// maybe retire the channel) or the caller must wait.
    fn end_of_input(&mut self, channel: ChannelId) -> Result<(), ReadError> {
        let Some(ch) = self.channels.get_mut(&channel) else {
            return Err(ReadError::UnknownChannel(channel));
        };
        if !ch.fin_received {
            return Err(ReadError::Blocked);
        }
        ch.fin_delivered = true;
        self.retire_if_done(channel);
        Ok(())
    }

    /// Returns credit for consumed bytes at half a window.
    fn consumed(&mut self, channel: ChannelId, n: u64) {
        if let Some(ch) = self.channels.get_mut(&channel) {
            if !ch.fin_received {
                if let Some(inc) = ch.recv.consume(n) {
                    Frame::WindowUpdate {
                        channel: Some(channel),
                        increment: inc,
                    }
                    .encode(&mut self.control);
                }
            }
        }
        self.return_session_credit(n);
    }

    /// Sends FIN after everything queued: this side will send nothing more
    /// on the channel. The channel closes once the peer finishes too and
    /// its FIN is read.
    pub fn finish(&mut self, channel: ChannelId) -> Result<(), ChannelError> {
        self.check_open()?;
        match self.channels.get_mut(&channel) {
            Some(ch) if ch.state != State::Pending && !ch.fin_queued => ch.fin_queued = true,
            _ => return Err(ChannelError::UnknownChannel(channel)),
        }
        self.schedule(channel);
        Ok(())
    }

    /// Abandons a channel in both directions: queued and unread data are
    /// dropped and the peer is told `code`.
    pub fn reset(&mut self, channel: ChannelId, code: ErrorCode) -> Result<(), ChannelError> {
        self.check_open()?;
        self.remove_channel(channel)
            .ok_or(ChannelError::UnknownChannel(channel))?;
        self.stats.channels_reset += 1;
        Frame::Reset { channel, code }.encode(&mut self.control);
        self.after_channel_removed();
        Ok(())
    }

    /// Sends a PING now; the round-trip time shows in [`Session::stats`].
    pub fn ping(&mut self, now: Instant) {
        self.advance(now);
        if self.is_established() {
            self.send_ping(now);
        }
    }

    /// Starts a graceful shutdown: sends GOAWAY with `code`, refuses new
    /// channels, lets open ones finish for at most `drain`, then closes.
    /// Before the handshake has finished, closes at once.
    pub fn shutdown(&mut self, now: Instant, code: ErrorCode, drain: Duration) {
        self.advance(now);
        match self.phase {
            Phase::Closed(_) => return,
            Phase::Handshake => return self.close(code, b""),
            Phase::Established => {}
        }
        if !self.goaway_sent {
            self.goaway_sent = true;
            let drain_ms = u32::try_from(drain.as_millis()).unwrap_or(u32::MAX);
            Frame::GoAway { code, drain_ms }.encode(&mut self.control);
            self.timers.set_after(Timer::Drain, now, drain);
            self.timers.clear(Timer::Idle);
            let pending: Vec<ChannelId> = self
                .channels
                .iter()
                .filter(|(_, c)| c.state == State::Pending)
                .map(|(id, _)| *id)
                .collect();
            for id in pending {
                self.remove_channel(id);
                Frame::Refuse {
                    channel: id,
                    code: ErrorCode::Shutdown,
                }
                .encode(&mut self.control);
            }
        }
        if self.channels.is_empty() {
            self.close(ErrorCode::NoError, b"");
        }
    }

    /// Ends the session at once with `code` and a short diagnostic `reason`
    /// (cut at 256 bytes). Queued data is dropped; CLOSE is the last frame.
    pub fn close(&mut self, code: ErrorCode, reason: &[u8]) {
        self.close_with(SessionError::Local { code }, reason);
    }

    /// Whether a channel exists and is open for data.
    pub fn is_open(&self, channel: ChannelId) -> bool {
        self.channels.get(&channel).is_some_and(|c| c.state == State::Open)
    }
}
