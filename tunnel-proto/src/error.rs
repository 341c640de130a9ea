//! Why a session ended, what the peer did wrong, and the errors of each
//! command. A peer's fault never comes back from a command: the session
//! closes and reports [`crate::Event::Closed`] with a [`SessionError`].

use bytes::Bytes;

use crate::code::ErrorCode;
use crate::frame::{FrameError, FrameType};
use crate::id::{AgentId, ChannelId};

/// Why a session ended. Once ended, [`crate::Session::error`] keeps returning it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// This side ended the session (an explicit close, a completed shutdown,
    /// the idle timeout) with this code.
    #[error("closed locally: {code}")]
    Local {
        /// The code sent to the peer.
        code: ErrorCode,
    },
    /// The peer ended the session with a CLOSE frame.
    #[error("closed by the peer: {code}")]
    Remote {
        /// The peer's code.
        code: ErrorCode,
        /// The peer's diagnostic text, as sent (at most 256 bytes; not trusted).
        reason: Bytes,
    },
    /// The peer broke the protocol; the session sent [`Violation::code`] and closed.
    #[error("peer violated the protocol: {0}")]
    Violation(#[from] Violation),
    /// Nothing was received from the peer for the peer timeout.
    #[error("peer silent for longer than the peer timeout")]
    TimedOut,
    /// The handshake did not finish within its deadline.
    #[error("handshake did not finish in time")]
    HandshakeTimedOut,
    /// (Hub) the agent failed authentication. The wire only says `AuthFailed`.
    #[error("agent rejected: {0}")]
    Rejected(Rejection),
    /// (Agent) the hub's confirmation did not prove the shared secret: it is
    /// not the hub the agent was configured for, or the connection was relayed.
    #[error("hub failed to prove the shared secret")]
    HubNotAuthenticated,
    /// No version is spoken by both sides.
    #[error("no common protocol version (offered {offered:?}, supported {supported:?})")]
    VersionMismatch {
        /// The agent's versions.
        offered: Vec<u16>,
        /// The hub's versions.
        supported: Vec<u16>,
    },
}

impl SessionError {
    /// The code this side sent, or received, in the CLOSE frame.
    pub fn code(&self) -> ErrorCode {
        match self {
            SessionError::Local { code } | SessionError::Remote { code, .. } => *code,
            SessionError::Violation(v) => v.code(),
            SessionError::TimedOut => ErrorCode::Timeout,
            SessionError::HandshakeTimedOut => ErrorCode::HandshakeTimeout,
            SessionError::Rejected(_) | SessionError::HubNotAuthenticated => ErrorCode::AuthFailed,
            SessionError::VersionMismatch { .. } => ErrorCode::UnsupportedVersion,
        }
    }

    /// Whether the session ended cleanly (code `NoError` from either side).
    pub fn is_clean(&self) -> bool {
        matches!(
            self,
            SessionError::Local {
                code: ErrorCode::NoError
            } | SessionError::Remote {
                code: ErrorCode::NoError,
                ..
            }
        )
    }
}

/// What the peer did wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Violation {
    /// A frame could not be decoded.
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// A valid frame arrived where the protocol does not allow it (a
    /// handshake frame after the handshake, a channel frame before it,
    /// HELLO sent to an agent).
    #[error("unexpected {0:?} frame")]
    Unexpected(FrameType),
    /// A frame named a channel that was never opened.
    #[error("frame for channel {0} that was never opened")]
    NotOpened(ChannelId),
    /// OPEN with an id of the wrong parity, or not above the previous one.
    #[error("OPEN with invalid channel id {0}")]
    BadOpenId(ChannelId),
    /// The peer sent more than the session window allowed.
    #[error("session window exceeded ({received} bytes with {allowed} allowed)")]
    SessionWindow {
        /// Bytes in the offending frame.
        received: u64,
        /// Credit the peer had left.
        allowed: u64,
    },
    /// A WINDOW_UPDATE raised a window past 2^32 − 1.
    #[error("window raised past 2^32 - 1")]
    WindowOverflow,
    /// The peer kept making this side queue control frames without reading them.
    #[error("peer does not read the control frames it causes")]
    Backlog,
}

impl Violation {
    /// The code sent to the peer before closing.
    pub fn code(&self) -> ErrorCode {
        match self {
            Violation::Frame(e) => e.code(),
            Violation::SessionWindow { .. } | Violation::WindowOverflow => ErrorCode::FlowControlError,
            Violation::Backlog => ErrorCode::LimitExceeded,
            _ => ErrorCode::ProtocolError,
        }
    }
}

/// Why the hub rejected an agent. Logged by the hub; the agent is only told
/// `AuthFailed`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Rejection {
    /// The credential store does not know the agent.
    #[error("unknown agent {0}")]
    UnknownAgent(AgentId),
    /// The agent's credential is revoked.
    #[error("agent {0} is revoked")]
    Revoked(AgentId),
    /// The proof did not verify: wrong secret, or a proof made on another
    /// TLS connection (replayed or relayed).
    #[error("agent {0} sent a proof that does not verify")]
    BadProof(AgentId),
    /// The agent claimed an id other than the one its certificate names.
    #[error("agent claims {claimed} but its certificate names {certified}")]
    IdentityMismatch {
        /// The id from the certificate.
        certified: AgentId,
        /// The id in HELLO.
        claimed: AgentId,
    },
}

/// Why a channel could not be opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The handshake has not finished.
    #[error("session not established")]
    NotEstablished,
    /// The session has ended.
    #[error("session closed")]
    Closed,
    /// One side sent GOAWAY: no new channels.
    #[error("session is going away")]
    GoingAway,
    /// [`crate::Config::max_channels`] channels are open.
    #[error("too many channels")]
    TooManyChannels,
    /// Every channel id of this side has been used (2^31 per session).
    #[error("channel ids exhausted")]
    IdsExhausted,
    /// The target is longer than 255 bytes.
    #[error("target longer than 255 bytes")]
    TargetTooLong,
    /// Target and metadata do not fit in one frame of the peer's size limit.
    #[error("OPEN of {len} bytes exceeds the peer's frame limit of {max}")]
    TooLarge {
        /// Payload length needed.
        len: usize,
        /// The peer's limit.
        max: u32,
    },
}

/// Why data could not be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// No credit or buffer space now (or the channel is not yet accepted);
    /// [`crate::Event::Writable`] follows when there is.
    #[error("blocked by flow control")]
    Blocked,
    /// No such open channel.
    #[error("unknown channel {0}")]
    UnknownChannel(ChannelId),
    /// `send` on a message channel or `send_message` on a stream channel.
    #[error("wrong channel kind for this call")]
    WrongKind,
    /// This side already finished the channel.
    #[error("channel already finished")]
    Finished,
    /// The message can never fit: larger than the peer's frame limit or its
    /// window for the channel.
    #[error("message of {len} bytes exceeds the limit of {max}")]
    TooLarge {
        /// Message length.
        len: usize,
        /// The largest message the channel can carry.
        max: usize,
    },
    /// The session has ended.
    #[error("session closed")]
    Closed,
}

/// Why data could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    /// Nothing buffered yet; [`crate::Event::Readable`] follows when there is.
    #[error("nothing to read yet")]
    Blocked,
    /// No such open channel.
    #[error("unknown channel {0}")]
    UnknownChannel(ChannelId),
    /// `read` on a message channel or `recv_message` on a stream channel.
    #[error("wrong channel kind for this call")]
    WrongKind,
    /// The session has ended.
    #[error("session closed")]
    Closed,
}

/// Why a call about one channel (accept, refuse, finish, reset) failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChannelError {
    /// No such channel, or not in a state the call applies to (accepting a
    /// channel that is not waiting to be accepted).
    #[error("no such channel in that state: {0}")]
    UnknownChannel(ChannelId),
    /// The session has ended.
    #[error("session closed")]
    Closed,
}
