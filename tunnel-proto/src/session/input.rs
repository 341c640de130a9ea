//! What arrives from the peer: bytes in, frames out of the decoder, each
//! frame checked against the phase and the channel it names.

use std::time::{Duration, Instant};

use bytes::Bytes;

use super::channels::{Channel, Incoming, State};
use super::handshake::{self, Handshake};
use super::timer::Timer;
use super::{Event, Phase, Role, Session, MAX_CONTROL_BACKLOG};
use crate::code::ErrorCode;
use crate::credentials::Credential;
use crate::error::{Rejection, SessionError, Violation};
use crate::frame::{Challenge, Frame, FramePhase, FrameType, Header, Hello, Open, RawFrame, HEADER_LEN};
use crate::id::ChannelId;

impl Session {
    /// Feeds bytes received from the peer. Any amount, split anywhere.
    ///
    /// Faults of the peer do not come back from here: the session closes
    /// and reports [`crate::Event::Closed`]. Poll events and transmits afterwards.
    pub fn handle_input(&mut self, now: Instant, data: &[u8]) {
        self.advance(now);
        if self.is_closed() || data.is_empty() {
            return;
        }
        self.stats.bytes_received += data.len() as u64;
        let rest = self.fast_path(data);
        if self.is_closed() {
            return;
        }
        self.decoder.push(rest);
        loop {
            let raw = match self.decoder.next_frame() {
                Ok(Some(raw)) => raw,
                Ok(None) => break,
                Err(e) => {
                    self.violation(e);
                    break;
                }
            };
            self.stats.frames_received += 1;
            self.on_frame(now, raw);
            if self.is_closed() {
                break;
            }
        }
        self.advance(now);
        if self.is_established() {
            self.timers.set_after(Timer::PeerTimeout, now, self.config.peer_timeout);
            self.timers
                .set_after(Timer::KeepAlive, now, self.config.keepalive_interval);
        }
    }

    /// Handles whole DATA and MESSAGE frames straight from the caller's
    /// bytes, copying each payload once, into its channel's buffer. Returns
    /// what is left for the decoder, from the first frame that is not one of
    /// those or not whole.
    fn fast_path<'a>(&mut self, mut data: &'a [u8]) -> &'a [u8] {
        while self.decoder.buffered() == 0 && self.is_established() {
            let Some(bytes) = data.first_chunk::<HEADER_LEN>() else {
                break;
            };
            let header = Header::parse(bytes);
            if !matches!(header.frame_type, FrameType::Data | FrameType::Message) {
                break;
            }
            let Some(frame) = data.get(HEADER_LEN..HEADER_LEN + header.len as usize) else {
                break;
            };
            if self.decoder.check(header).is_err() {
                break;
            }
            let Some(channel) = ChannelId::new(header.channel) else {
                break;
            };
            data = &data[HEADER_LEN + frame.len()..];
            self.stats.frames_received += 1;
            let chunk = match (header.frame_type, frame) {
                (FrameType::Message, [a, b, c, d, payload @ ..]) => {
                    Incoming::Message(u32::from_be_bytes([*a, *b, *c, *d]), payload)
                }
                _ => Incoming::Data(frame),
            };
            self.on_data(channel, chunk);
        }
        data
    }

    fn on_frame(&mut self, now: Instant, raw: RawFrame) {
        let frame_type = raw.header.frame_type;
        let allowed = matches!(
            (frame_type.phase(), &self.phase),
            (Some(FramePhase::Any), _)
                | (Some(FramePhase::Handshake), Phase::Handshake)
                | (Some(FramePhase::Established), Phase::Established)
        );
        if !allowed {
            return self.violation(Violation::Unexpected(frame_type));
        }
        let header = raw.header.to_bytes();
        let frame = match Frame::decode(raw.clone()) {
            Ok(f) => f,
            Err(e) => return self.violation(e),
        };
        match frame {
            Frame::Close { code, reason } => self.on_close(code, reason),
            Frame::Hello(hello) => self.on_hello(&header, &raw.payload, hello),
            Frame::Challenge(c) => self.on_challenge(&header, &raw.payload, c),
            Frame::Proof(proof) => self.on_proof(now, proof),
            Frame::Confirm(confirm) => self.on_confirm(now, confirm),
            other => self.on_session_frame(now, other),
        }
    }

    fn on_close(&mut self, code: ErrorCode, reason: Bytes) {
        let error = match (&self.handshake, code) {
            (Some(Handshake::AgentHello { hello, .. }), ErrorCode::UnsupportedVersion) => {
                SessionError::VersionMismatch {
                    offered: hello.versions.clone(),
                    supported: reason
                        .chunks_exact(2)
                        .map(|v| u16::from_be_bytes([v[0], v[1]]))
                        .collect(),
                }
            }
            _ => SessionError::Remote { code, reason },
        };
        // Nothing is sent after the peer's CLOSE.
        self.control.clear();
        self.pending_pong = None;
        self.enter_closed(error);
    }

    // ---- Handshake ----

    fn on_hello(&mut self, header: &[u8; HEADER_LEN], payload: &[u8], hello: Hello) {
        let Some(Handshake::HubHello { store, random }) = self.handshake.take() else {
            return self.violation(Violation::Unexpected(FrameType::Hello));
        };
        let Some(version) = handshake::choose_version(&self.config.versions, &hello.versions) else {
            tracing::debug!(agent = %hello.agent, offered = ?hello.versions, "no common version");
            let supported = self.config.versions.clone();
            return self.close_with(
                SessionError::VersionMismatch {
                    offered: hello.versions,
                    supported,
                },
                b"",
            );
        };
        let (nonce, session) = handshake::hub_nonce_and_session(&random);
        let challenge = Challenge {
            version,
            max_frame: self.config.max_frame_size,
            session_window: self.config.session_window,
            nonce,
            session,
        };
        let start = self.control.len();
        challenge.encode(&mut self.control);
        let transcript = handshake::finish(handshake::transcript(&[header, payload, &self.control[start..]]));
        self.learn_peer_limits(hello.max_frame, hello.session_window);
        self.session_id = Some(session);
        self.handshake = Some(Handshake::HubProof {
            store,
            agent: hello.agent,
            transcript,
            session,
            version,
        });
    }

    fn on_challenge(&mut self, header: &[u8; HEADER_LEN], payload: &[u8], c: Challenge) {
        let Some(Handshake::AgentHello {
            identity,
            hello,
            mut transcript,
        }) = self.handshake.take()
        else {
            return self.violation(Violation::Unexpected(FrameType::Challenge));
        };
        if !hello.versions.contains(&c.version) {
            let error = SessionError::VersionMismatch {
                offered: hello.versions,
                supported: vec![c.version],
            };
            return self.close_with(error, b"");
        }
        sha2::Digest::update(&mut transcript, header);
        sha2::Digest::update(&mut transcript, payload);
        let transcript = handshake::finish(transcript);
        let proof = handshake::agent_proof(&identity.secret, &self.binding, &transcript);
        Frame::Proof(proof).encode(&mut self.control);
        self.learn_peer_limits(c.max_frame, c.session_window);
        self.session_id = Some(c.session);
        self.handshake = Some(Handshake::AgentProof {
            identity,
            transcript,
            proof,
            session: c.session,
            version: c.version,
        });
    }

    fn on_proof(&mut self, now: Instant, proof: [u8; 32]) {
        let Some(Handshake::HubProof {
            store,
            agent,
            transcript,
            session,
            version,
        }) = self.handshake.take()
        else {
            return self.violation(Violation::Unexpected(FrameType::Proof));
        };
        let credential = store.lookup(&agent);
        let secret = match &credential {
            Credential::Active(secret) => Some(secret),
            _ => None,
        };
        let verified = handshake::verify_agent_proof(secret, &self.binding, &transcript, &proof);
        let rejection = match (&credential, &self.certified_agent) {
            (_, Some(certified)) if *certified != agent => Some(Rejection::IdentityMismatch {
                certified: certified.clone(),
                claimed: agent.clone(),
            }),
            (Credential::Revoked, _) => Some(Rejection::Revoked(agent.clone())),
            (Credential::Active(_), _) if verified => None,
            (Credential::Active(_), _) => Some(Rejection::BadProof(agent.clone())),
            _ => Some(Rejection::UnknownAgent(agent.clone())),
        };
        if let Some(rejection) = rejection {
            tracing::debug!(%rejection, "agent rejected");
            return self.close_with(SessionError::Rejected(rejection), b"authentication failed");
        }
        let Some(secret) = secret else { return };
        let confirm = handshake::hub_confirm(secret, &self.binding, &transcript, &proof);
        Frame::Confirm(confirm).encode(&mut self.control);
        self.establish(now, agent, session, version);
    }

    fn on_confirm(&mut self, now: Instant, confirm: [u8; 32]) {
        let Some(Handshake::AgentProof {
            identity,
            transcript,
            proof,
            session,
            version,
        }) = self.handshake.take()
        else {
            return self.violation(Violation::Unexpected(FrameType::Confirm));
        };
        if !handshake::verify_hub_confirm(&identity.secret, &self.binding, &transcript, &proof, &confirm) {
            tracing::debug!("hub confirmation does not verify");
            return self.close_with(SessionError::HubNotAuthenticated, b"authentication failed");
        }
        self.establish(now, identity.id, session, version);
    }

    fn learn_peer_limits(&mut self, max_frame: u32, session_window: u32) {
        self.peer_max_frame = max_frame;
        self.send_window.reset(session_window);
    }

    fn establish(&mut self, now: Instant, agent: crate::id::AgentId, session: crate::id::SessionId, version: u16) {
        tracing::debug!(role = ?self.role, %agent, %session, "session established");
        self.phase = Phase::Established;
        self.version = version;
        self.agent = Some(agent.clone());
        self.timers.clear(Timer::Handshake);
        self.timers.set_after(Timer::PeerTimeout, now, self.config.peer_timeout);
        self.timers
            .set_after(Timer::KeepAlive, now, self.config.keepalive_interval);
        if let Some(idle) = self.config.idle_timeout {
            self.timers.set_after(Timer::Idle, now, idle);
        }
        self.events.push_back(Event::Established {
            agent,
            session,
            version,
        });
    }

    // ---- Established ----

    fn on_session_frame(&mut self, now: Instant, frame: Frame) {
        match frame {
            Frame::Open(open) => self.on_open(open),
            Frame::Accept { channel, window } => self.on_accept(channel, window),
            Frame::Refuse { channel, code } => {
                if self.local_channel(channel, FrameType::Refuse) {
                    self.remove_channel(channel);
                    self.events.push_back(Event::ChannelRefused { channel, code });
                    self.after_channel_removed();
                }
            }
            Frame::Data { channel, data } => self.on_data(channel, Incoming::Data(&data)),
            Frame::Message {
                channel,
                correlation,
                payload,
            } => self.on_data(channel, Incoming::Message(correlation, &payload)),
            Frame::Fin { channel } => self.on_fin(channel),
            Frame::Reset { channel, code } => {
                if self.known_channel(channel) {
                    self.remove_channel(channel);
                    self.stats.channels_reset += 1;
                    self.events.push_back(Event::ChannelReset {
                        channel,
                        code,
                        by_peer: true,
                    });
                    self.after_channel_removed();
                }
            }
            Frame::WindowUpdate {
                channel: None,
                increment,
            } => {
                if self.send_window.grant(increment).is_err() {
                    return self.violation(Violation::WindowOverflow);
                }
                self.wake_blocked();
            }
            Frame::WindowUpdate {
                channel: Some(channel),
                increment,
            } => {
                if !self.known_channel(channel) {
                    return;
                }
                let overflow = self
                    .channels
                    .get_mut(&channel)
                    .is_some_and(|ch| ch.send.grant(increment).is_err());
                if overflow {
                    self.reset_by_us(channel, ErrorCode::FlowControlError);
                } else {
                    self.wake(channel);
                }
            }
            Frame::Ping(seq) => self.pending_pong = Some(seq),
            Frame::Pong(seq) => {
                if let Some((outstanding, sent)) = self.ping_outstanding {
                    if outstanding == seq {
                        self.ping_outstanding = None;
                        self.stats.rtt = Some(now.saturating_duration_since(sent));
                    }
                }
            }
            Frame::GoAway { code, drain_ms } => {
                if !self.goaway_received {
                    self.goaway_received = true;
                    let drain = Duration::from_millis(drain_ms.into());
                    self.events.push_back(Event::GoingAway { code, drain });
                }
            }
            other => self.violation(Violation::Unexpected(other.frame_type())),
        }
    }

    /// Whether `id` is a channel this side may hear about: `true` if it is
    /// open; `false` (frame ignored) if it was open once and is gone; a
    /// violation if it was never opened.
    fn known_channel(&mut self, id: ChannelId) -> bool {
        if self.channels.contains_key(&id) {
            return true;
        }
        let ours = id.opened_by_agent() == (self.role == Role::Agent);
        let opened_once = if ours {
            u64::from(id.value()) < self.next_local_id
        } else {
            id.value() <= self.highest_peer_id
        };
        if !opened_once {
            self.violation(Violation::NotOpened(id));
        }
        false
    }

    /// Like [`Session::known_channel`], for ACCEPT and REFUSE, which only
    /// answer this side's OPEN.
    fn local_channel(&mut self, id: ChannelId, frame_type: FrameType) -> bool {
        if !self.known_channel(id) {
            return false;
        }
        if self.channels.get(&id).is_some_and(|c| c.state != State::Opening) {
            self.violation(Violation::Unexpected(frame_type));
            return false;
        }
        true
    }

    fn on_open(&mut self, open: Open) {
        let id = open.channel;
        let theirs = id.opened_by_agent() == (self.role == Role::Hub);
        if !theirs || id.value() <= self.highest_peer_id {
            return self.violation(Violation::BadOpenId(id));
        }
        self.highest_peer_id = id.value();
        self.stats.channels_requested += 1;
        let refusal = if self.goaway_sent {
            Some(ErrorCode::Shutdown)
        } else if self.channels.len() >= self.config.max_channels as usize
            || self.pending_opens >= self.config.max_pending_opens
        {
            Some(ErrorCode::LimitExceeded)
        } else {
            None
        };
        if let Some(code) = refusal {
            if self.control.len() > MAX_CONTROL_BACKLOG {
                return self.violation(Violation::Backlog);
            }
            Frame::Refuse { channel: id, code }.encode(&mut self.control);
            return;
        }
        self.channels.insert(
            id,
            Channel::new(open.kind, State::Pending, self.config.channel_window, open.window),
        );
        self.pending_opens += 1;
        self.timers.clear(Timer::Idle);
        self.events.push_back(Event::ChannelRequested {
            channel: id,
            kind: open.kind,
            target: open.target,
            metadata: open.metadata,
        });
    }

    fn on_accept(&mut self, channel: ChannelId, window: u32) {
        if !self.local_channel(channel, FrameType::Accept) {
            return;
        }
        if let Some(ch) = self.channels.get_mut(&channel) {
            ch.state = State::Open;
            ch.send.reset(window);
        }
        self.events.push_back(Event::ChannelAccepted { channel });
        self.wake(channel);
        self.schedule(channel);
    }

    fn on_data(&mut self, channel: ChannelId, chunk: Incoming<'_>) {
        let cost = chunk.cost();
        let kind = chunk.kind();
        self.stats.data_received += cost;
        if let Err(allowed) = self.recv_window.receive(cost) {
            return self.violation(Violation::SessionWindow {
                received: cost,
                allowed,
            });
        }
        if !self.known_channel(channel) {
            // A channel already gone: the bytes are dropped, their credit returned.
            if !self.is_closed() {
                self.return_session_credit(cost);
            }
            return;
        }
        let Some(ch) = self.channels.get_mut(&channel) else {
            return;
        };
        let fault = if ch.kind != kind || ch.fin_received {
            Some(ErrorCode::ProtocolError)
        } else if ch.state != State::Open || ch.recv.receive(cost).is_err() {
            Some(ErrorCode::FlowControlError)
        } else {
            None
        };
        if let Some(code) = fault {
            self.return_session_credit(cost);
            return self.reset_by_us(channel, code);
        }
        ch.push_incoming(chunk);
        self.signal_readable(channel);
    }

    fn on_fin(&mut self, channel: ChannelId) {
        if !self.known_channel(channel) {
            return;
        }
        let Some(ch) = self.channels.get_mut(&channel) else {
            return;
        };
        if ch.state != State::Open || ch.fin_received {
            return self.reset_by_us(channel, ErrorCode::ProtocolError);
        }
        ch.fin_received = true;
        self.signal_readable(channel);
    }

    fn signal_readable(&mut self, channel: ChannelId) {
        if let Some(ch) = self.channels.get_mut(&channel) {
            if !ch.readable_signalled {
                ch.readable_signalled = true;
                self.events.push_back(Event::Readable { channel });
            }
        }
    }

    /// Resets a channel whose peer broke its rules; the session lives on.
    fn reset_by_us(&mut self, channel: ChannelId, code: ErrorCode) {
        tracing::debug!(role = ?self.role, %channel, %code, "resetting channel after a peer fault");
        if self.control.len() > MAX_CONTROL_BACKLOG {
            return self.violation(Violation::Backlog);
        }
        self.remove_channel(channel);
        self.stats.channels_reset += 1;
        Frame::Reset { channel, code }.encode(&mut self.control);
        self.events.push_back(Event::ChannelReset {
            channel,
            code,
            by_peer: false,
        });
        self.after_channel_removed();
    }
}
