//! What a session reports to its application.

use std::time::Duration;

use bytes::Bytes;

use crate::code::ErrorCode;
use crate::error::SessionError;
use crate::id::{AgentId, ChannelId, ChannelKind, SessionId};

/// Something that happened in a session, pulled with [`crate::Session::poll_event`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// The handshake finished: both sides proved the agent's secret.
    Established {
        /// The authenticated agent.
        agent: AgentId,
        /// The session's id.
        session: SessionId,
        /// The protocol version in use.
        version: u16,
    },
    /// The peer asks to open a channel: answer with
    /// [`crate::Session::accept`] or [`crate::Session::refuse`].
    ChannelRequested {
        /// The new channel.
        channel: ChannelId,
        /// Message or stream.
        kind: ChannelKind,
        /// What the channel is for.
        target: Bytes,
        /// The opener's metadata, opaque to the tunnel.
        metadata: Bytes,
    },
    /// The peer accepted a channel this side opened.
    ChannelAccepted {
        /// The channel.
        channel: ChannelId,
    },
    /// The peer refused a channel this side opened.
    ChannelRefused {
        /// The channel.
        channel: ChannelId,
        /// The peer's reason.
        code: ErrorCode,
    },
    /// Data, a message, or the peer's FIN can be read from the channel.
    Readable {
        /// The channel.
        channel: ChannelId,
    },
    /// A send that returned [`crate::SendError::Blocked`] may now succeed.
    Writable {
        /// The channel.
        channel: ChannelId,
    },
    /// The channel was abandoned; unread data is gone.
    ChannelReset {
        /// The channel.
        channel: ChannelId,
        /// Why.
        code: ErrorCode,
        /// Whether the peer reset it (otherwise this side did, because the
        /// peer broke the channel's rules).
        by_peer: bool,
    },
    /// Both directions of the channel finished and were read; its id is retired.
    ChannelClosed {
        /// The channel.
        channel: ChannelId,
    },
    /// The peer sent GOAWAY: no new channels; open ones may finish.
    GoingAway {
        /// The peer's reason.
        code: ErrorCode,
        /// How long the peer lets open channels drain.
        drain: Duration,
    },
    /// The session ended. The last event.
    Closed(SessionError),
}

/// One message read from a message channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The correlation id the sender chose.
    pub correlation: u32,
    /// The message.
    pub payload: Bytes,
}

/// Counters of a session.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Bytes handed to `handle_input`.
    pub bytes_received: u64,
    /// Bytes returned by `poll_transmit`.
    pub bytes_sent: u64,
    /// Frames decoded.
    pub frames_received: u64,
    /// Payload bytes of DATA and MESSAGE frames received.
    pub data_received: u64,
    /// Payload bytes of DATA and MESSAGE frames sent.
    pub data_sent: u64,
    /// Channels this side opened.
    pub channels_opened: u64,
    /// Channels the peer opened.
    pub channels_requested: u64,
    /// Channels reset, by either side.
    pub channels_reset: u64,
    /// Latest round-trip time measured by PING, if any.
    pub rtt: Option<Duration>,
}
