//! The agent's end of its data acquisition channel: opened once a session
//! is up, carrying samples once the hub accepts it, reset when the hub
//! sends what is not a message, closed when either side stops (a session
//! that drains ends only once every channel is closed).

use outpost_tunnel_proto::{ChannelId, ErrorCode};

/// Where the channel is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// No session, or a session that has not asked yet.
    Idle,
    /// Asked to open; the session has not named the channel yet.
    Opening,
    /// Named; the hub has not accepted it yet.
    Opened(ChannelId),
    /// Accepted: samples go on it.
    Up(ChannelId),
    /// Refused, reset or stopped: nothing more this session.
    Closed,
}

/// What the link asks of the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkAction {
    /// Open a message channel to the acquisition target.
    Open,
    /// Reset the channel with this code.
    Reset(ChannelId, ErrorCode),
}

/// What an event of the session meant to the link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkEvent {
    /// Not the link's channel: the event is someone else's.
    NotOurs,
    /// The link's, and nothing changes for the samples.
    Taken,
    /// The hub accepted the channel: samples start on it (births first).
    Connected(ChannelId),
    /// Samples may go now (a message from the hub was taken).
    Send(ChannelId),
    /// Samples stop: the channel is gone (those not acknowledged wait).
    Stopped,
}

/// The agent's data acquisition channel in one session (see the module).
#[derive(Debug, Clone)]
pub struct AcquisitionLink {
    state: State,
    stopping: bool,
}

impl Default for AcquisitionLink {
    fn default() -> Self {
        AcquisitionLink::new()
    }
}

impl AcquisitionLink {
    /// A link of a session that is not established yet.
    pub fn new() -> Self {
        AcquisitionLink {
            state: State::Idle,
            stopping: false,
        }
    }

    /// The channel samples go on, while it is up.
    pub fn carrying(&self) -> Option<ChannelId> {
        match self.state {
            State::Up(channel) => Some(channel),
            _ => None,
        }
    }

    fn is_ours(&self, channel: ChannelId) -> bool {
        matches!(self.state, State::Opened(c) | State::Up(c) if c == channel)
    }

    /// The session is established: open the channel (unless stopping).
    pub fn established(&mut self) -> Option<LinkAction> {
        if self.stopping || self.state != State::Idle {
            return None;
        }
        self.state = State::Opening;
        Some(LinkAction::Open)
    }

    /// The session's answer to the open: a channel opened as a stop began
    /// is reset at once.
    pub fn opened(&mut self, result: Result<ChannelId, ()>) -> Option<LinkAction> {
        if self.state != State::Opening {
            return None;
        }
        match result {
            Ok(channel) if self.stopping => {
                self.state = State::Closed;
                Some(LinkAction::Reset(channel, ErrorCode::Cancel))
            }
            Ok(channel) => {
                self.state = State::Opened(channel);
                None
            }
            Err(()) => {
                self.state = State::Closed;
                None
            }
        }
    }

    /// The hub accepted a channel.
    pub fn accepted(&mut self, channel: ChannelId) -> LinkEvent {
        if self.state != State::Opened(channel) {
            return LinkEvent::NotOurs;
        }
        self.state = State::Up(channel);
        LinkEvent::Connected(channel)
    }

    /// The hub refused a channel.
    pub fn refused(&mut self, channel: ChannelId) -> LinkEvent {
        if self.state != State::Opened(channel) {
            return LinkEvent::NotOurs;
        }
        self.state = State::Closed;
        LinkEvent::Taken
    }

    /// A channel is gone.
    pub fn gone(&mut self, channel: ChannelId) -> LinkEvent {
        if !self.is_ours(channel) {
            return LinkEvent::NotOurs;
        }
        let was_up = matches!(self.state, State::Up(_));
        self.state = State::Closed;
        if was_up {
            LinkEvent::Stopped
        } else {
            LinkEvent::Taken
        }
    }

    /// A message arrived on `channel`; `valid` says whether it decoded
    /// as one of the hub's. An invalid one resets the channel.
    pub fn message(&mut self, channel: ChannelId, valid: bool) -> (LinkEvent, Option<LinkAction>) {
        let State::Up(up) = self.state else {
            return if self.is_ours(channel) {
                (LinkEvent::Taken, None)
            } else {
                (LinkEvent::NotOurs, None)
            };
        };
        if up != channel {
            return (LinkEvent::NotOurs, None);
        }
        if valid {
            return (LinkEvent::Send(channel), None);
        }
        self.state = State::Closed;
        (
            LinkEvent::Stopped,
            Some(LinkAction::Reset(channel, ErrorCode::ProtocolError)),
        )
    }

    /// This side or the hub is stopping: the channel closes (a session
    /// drains only once every channel is closed), and none opens again.
    pub fn stop(&mut self) -> (LinkEvent, Option<LinkAction>) {
        self.stopping = true;
        match self.state {
            State::Opened(channel) => {
                self.state = State::Closed;
                (LinkEvent::Taken, Some(LinkAction::Reset(channel, ErrorCode::Cancel)))
            }
            State::Up(channel) => {
                self.state = State::Closed;
                (LinkEvent::Stopped, Some(LinkAction::Reset(channel, ErrorCode::Cancel)))
            }
            _ => (LinkEvent::Taken, None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ch(n: u32) -> ChannelId {
        ChannelId::new(n).unwrap()
    }

    /// A link whose channel 3 is up.
    fn up() -> AcquisitionLink {
        let mut link = AcquisitionLink::default();
        assert_eq!(link.established(), Some(LinkAction::Open));
        assert_eq!(link.opened(Ok(ch(3))), None);
        assert_eq!(link.accepted(ch(3)), LinkEvent::Connected(ch(3)));
        link
    }

    #[test]
    fn a_session_opens_one_channel_that_carries_samples_once_accepted() {
        let mut link = AcquisitionLink::new();
        assert_eq!(link.carrying(), None);
        assert_eq!(link.established(), Some(LinkAction::Open));
        // Asked once per session.
        assert_eq!(link.established(), None);
        assert_eq!(link.carrying(), None);
        assert_eq!(link.opened(Ok(ch(3))), None);
        // An answer to nothing it asked is ignored.
        assert_eq!(link.opened(Ok(ch(5))), None);
        assert_eq!(link.carrying(), None);
        assert_eq!(link.accepted(ch(5)), LinkEvent::NotOurs);
        assert_eq!(link.accepted(ch(3)), LinkEvent::Connected(ch(3)));
        assert_eq!(link.carrying(), Some(ch(3)));
        assert_eq!(link.accepted(ch(3)), LinkEvent::NotOurs);
        assert_eq!(link.message(ch(3), true), (LinkEvent::Send(ch(3)), None));
        assert_eq!(link.message(ch(5), true), (LinkEvent::NotOurs, None));
        assert_eq!(link.message(ch(5), false), (LinkEvent::NotOurs, None));
        assert_eq!(link.carrying(), Some(ch(3)));
    }

    #[test]
    fn a_refused_or_failed_open_leaves_the_session_without_one() {
        let mut link = AcquisitionLink::new();
        link.established();
        link.opened(Ok(ch(3)));
        assert_eq!(link.refused(ch(5)), LinkEvent::NotOurs);
        assert_eq!(link.message(ch(3), true), (LinkEvent::Taken, None));
        assert_eq!(link.refused(ch(3)), LinkEvent::Taken);
        assert_eq!(link.refused(ch(3)), LinkEvent::NotOurs);
        assert_eq!(link.established(), None);
        assert_eq!(link.carrying(), None);
        let mut link = AcquisitionLink::new();
        link.established();
        assert_eq!(link.opened(Err(())), None);
        assert_eq!(link.opened(Ok(ch(3))), None);
        assert_eq!(link.accepted(ch(3)), LinkEvent::NotOurs);
        assert_eq!(link.established(), None);
        // Before it was asked, an open's answer is not its own.
        let mut link = AcquisitionLink::new();
        assert_eq!(link.opened(Ok(ch(3))), None);
        assert_eq!(link.accepted(ch(3)), LinkEvent::NotOurs);
    }

    #[test]
    fn a_broken_message_resets_the_channel() {
        let mut link = up();
        assert_eq!(
            link.message(ch(3), false),
            (
                LinkEvent::Stopped,
                Some(LinkAction::Reset(ch(3), ErrorCode::ProtocolError))
            )
        );
        assert_eq!(link.carrying(), None);
        assert_eq!(link.message(ch(3), true), (LinkEvent::NotOurs, None));
        assert_eq!(link.gone(ch(3)), LinkEvent::NotOurs);
    }

    #[test]
    fn a_channel_gone_stops_the_samples_when_it_carried_them() {
        let mut link = up();
        assert_eq!(link.gone(ch(5)), LinkEvent::NotOurs);
        assert_eq!(link.gone(ch(3)), LinkEvent::Stopped);
        assert_eq!(link.carrying(), None);
        let mut link = AcquisitionLink::new();
        link.established();
        link.opened(Ok(ch(3)));
        assert_eq!(link.gone(ch(3)), LinkEvent::Taken);
        assert_eq!(link.accepted(ch(3)), LinkEvent::NotOurs);
    }

    #[test]
    fn a_stop_closes_the_channel_wherever_it_is_and_none_opens_after() {
        let mut link = up();
        assert_eq!(
            link.stop(),
            (LinkEvent::Stopped, Some(LinkAction::Reset(ch(3), ErrorCode::Cancel)))
        );
        assert_eq!(link.carrying(), None);
        assert_eq!(link.stop(), (LinkEvent::Taken, None));
        // Named, not accepted yet.
        let mut link = AcquisitionLink::new();
        link.established();
        link.opened(Ok(ch(3)));
        assert_eq!(
            link.stop(),
            (LinkEvent::Taken, Some(LinkAction::Reset(ch(3), ErrorCode::Cancel)))
        );
        assert_eq!(link.accepted(ch(3)), LinkEvent::NotOurs);
        // Asked for, not named yet: reset when it is.
        let mut link = AcquisitionLink::new();
        link.established();
        assert_eq!(link.stop(), (LinkEvent::Taken, None));
        assert_eq!(
            link.opened(Ok(ch(3))),
            Some(LinkAction::Reset(ch(3), ErrorCode::Cancel))
        );
        assert_eq!(link.accepted(ch(3)), LinkEvent::NotOurs);
        // Stopping before the session was up: nothing is opened.
        let mut link = AcquisitionLink::new();
        assert_eq!(link.stop(), (LinkEvent::Taken, None));
        assert_eq!(link.established(), None);
    }
}
