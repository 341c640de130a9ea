//! Frames: the 8-byte header, the table of frame types, and a resumable
//! decoder that refuses an oversized length before buffering the payload.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-----------------------------------------------+---------------+
//! |              payload length (24)              |   type (8)    |
//! +-----------------------------------------------+---------------+
//! |                        channel id (32)                        |
//! +---------------------------------------------------------------+
//! |                     payload (length bytes)                  ...
//! ```
//!
//! Each frame type lives in the file named for what it holds; `frame_types!`
//! below is the one table of which channel a type may name, how long its
//! payload may be and in which phase it may appear.

mod channel;
mod control;
mod data;
mod decoder;
mod handshake;

#[cfg(test)]
mod tests;

use bytes::{BufMut, Bytes};

pub(crate) use self::Phase as FramePhase;
pub use channel::Open;
pub(crate) use data::encode_message;
pub use data::MESSAGE_OVERHEAD;
pub use decoder::{FrameDecoder, RawFrame};
pub use handshake::{Challenge, Hello, MAC_LEN, MAX_VERSIONS, MIN_FRAME_LIMIT, NONCE_LEN};

use crate::code::ErrorCode;
use crate::id::ChannelId;

/// Length of the frame header.
pub const HEADER_LEN: usize = 8;
/// The largest payload the 24-bit length field can describe.
pub const MAX_PAYLOAD_LEN: u32 = (1 << 24) - 1;
/// The longest reason text a CLOSE frame may carry.
pub const MAX_REASON_LEN: usize = 256;

/// Which channel id a frame type may carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ChannelRule {
    /// Always 0: the frame is about the session.
    Session,
    /// Never 0: the frame is about one channel.
    Channel,
    /// 0 for the session, or a channel.
    Either,
}

/// When a frame type may appear.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Only before the session is established.
    Handshake,
    /// Only once it is.
    Established,
    /// Any time.
    Any,
}

/// Which limit bounds a payload beyond its fixed bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Limit {
    /// Fixed by the table alone.
    Fixed,
    /// The receiver's handshake-size limit.
    Handshake,
    /// The receiver's frame-size limit.
    Frame,
}

macro_rules! frame_types {
    ($($(#[$doc:meta])* $name:ident = $value:literal, $rule:ident, $phase:ident, $min:literal..=$max:expr, $limit:ident;)*) => {
        /// The type byte of a frame.
        #[non_exhaustive]
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum FrameType {
            $($(#[$doc])* $name,)*
            /// A type this version does not define (a protocol error on receipt).
            Unknown(u8),
        }

        impl FrameType {
            /// The byte on the wire.
            pub const fn value(self) -> u8 {
                match self {
                    $(FrameType::$name => $value,)*
                    FrameType::Unknown(v) => v,
                }
            }

            /// The type for a wire byte.
            pub const fn from_u8(value: u8) -> Self {
                match value {
                    $($value => FrameType::$name,)*
                    other => FrameType::Unknown(other),
                }
            }

            /// Channel rule, phase, payload bounds and limit; `None` if unknown.
            pub(crate) const fn rule(self) -> Option<(ChannelRule, Phase, u32, u32, Limit)> {
                match self {
                    $(FrameType::$name => Some((ChannelRule::$rule, Phase::$phase, $min, $max, Limit::$limit)),)*
                    FrameType::Unknown(_) => None,
                }
            }
        }
    };
}

frame_types! {
    /// Agent's first frame: magic, versions, agent id, nonce, its limits.
    Hello = 0x01, Session, Handshake, 53..=MAX_PAYLOAD_LEN, Handshake;
    /// Hub's answer: chosen version, nonce, session id, its limits.
    Challenge = 0x02, Session, Handshake, 58..=58, Fixed;
    /// Agent's HMAC over the transcript and the channel binding.
    Proof = 0x03, Session, Handshake, 32..=32, Fixed;
    /// Hub's HMAC proving it holds the same secret.
    Confirm = 0x04, Session, Handshake, 32..=32, Fixed;
    /// Opens a channel: kind, receive window, target, metadata.
    Open = 0x10, Channel, Established, 6..=MAX_PAYLOAD_LEN, Frame;
    /// Accepts a channel, giving the acceptor's receive window.
    Accept = 0x11, Channel, Established, 4..=4, Fixed;
    /// Refuses a channel with a code.
    Refuse = 0x12, Channel, Established, 4..=4, Fixed;
    /// Bytes on a stream channel.
    Data = 0x13, Channel, Established, 1..=MAX_PAYLOAD_LEN, Frame;
    /// One message on a message channel: correlation id, payload.
    Message = 0x14, Channel, Established, 4..=MAX_PAYLOAD_LEN, Frame;
    /// The sender will send nothing more on the channel.
    Fin = 0x15, Channel, Established, 0..=0, Fixed;
    /// Abandons a channel in both directions, with a code.
    Reset = 0x16, Channel, Established, 4..=4, Fixed;
    /// Returns flow-control credit for a channel, or the session (channel 0).
    WindowUpdate = 0x17, Either, Established, 4..=4, Fixed;
    /// Liveness probe carrying an 8-byte sequence number.
    Ping = 0x20, Session, Established, 8..=8, Fixed;
    /// Answer to a PING, echoing its sequence number.
    Pong = 0x21, Session, Established, 8..=8, Fixed;
    /// No new channels; open ones drain within the given time.
    GoAway = 0x22, Session, Established, 8..=8, Fixed;
    /// The last frame of a session: a code and a short reason.
    Close = 0x23, Session, Any, 4..=260, Fixed;
}

/// A frame's fixed header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Payload length.
    pub len: u32,
    /// Frame type.
    pub frame_type: FrameType,
    /// Channel id; 0 for the session.
    pub channel: u32,
}

impl Header {
    /// Reads a header from its 8 bytes.
    pub fn parse(bytes: &[u8; HEADER_LEN]) -> Self {
        Header {
            len: u32::from_be_bytes([0, bytes[0], bytes[1], bytes[2]]),
            frame_type: FrameType::from_u8(bytes[3]),
            channel: u32::from_be_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]),
        }
    }

    /// The 8 bytes of this header.
    pub fn to_bytes(self) -> [u8; HEADER_LEN] {
        let l = self.len.to_be_bytes();
        let c = self.channel.to_be_bytes();
        [l[1], l[2], l[3], self.frame_type.value(), c[0], c[1], c[2], c[3]]
    }
}

/// Why received bytes are not a valid frame. Always the peer's fault; the
/// session answers with [`FrameError::code`] and closes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// The type byte is not one this version defines.
    #[error("unknown frame type {0:#04x}")]
    UnknownType(u8),
    /// The payload is longer than the receiver accepts.
    #[error("{frame_type:?} frame of {len} bytes exceeds the limit of {max}")]
    TooLarge {
        /// The frame type.
        frame_type: FrameType,
        /// The length in the header.
        len: u32,
        /// The receiver's limit.
        max: u32,
    },
    /// The payload length does not fit the frame type.
    #[error("{frame_type:?} frame cannot be {len} bytes long")]
    BadLength {
        /// The frame type.
        frame_type: FrameType,
        /// The length in the header.
        len: u32,
    },
    /// The channel id is 0 where a channel is needed, or not 0 where the
    /// frame is about the session.
    #[error("{frame_type:?} frame cannot name channel {channel}")]
    BadChannel {
        /// The frame type.
        frame_type: FrameType,
        /// The channel id in the header.
        channel: u32,
    },
    /// A field inside the payload is invalid.
    #[error("{frame_type:?} frame: {field}")]
    Malformed {
        /// The frame type.
        frame_type: FrameType,
        /// Which field.
        field: Malformed,
    },
}

impl FrameError {
    /// The code sent to the peer before closing.
    pub fn code(&self) -> ErrorCode {
        match self {
            FrameError::TooLarge { .. } => ErrorCode::FrameSizeError,
            _ => ErrorCode::ProtocolError,
        }
    }
}

/// The field of a payload found invalid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Malformed {
    /// HELLO does not start with the protocol magic.
    #[error("wrong magic")]
    Magic,
    /// HELLO's version list is empty, too long or not as long as its count says.
    #[error("bad version list")]
    Versions,
    /// HELLO's agent id is empty, too long or not printable ASCII.
    #[error("bad agent id")]
    AgentId,
    /// A frame-size limit below the protocol minimum.
    #[error("frame-size limit below the minimum")]
    FrameLimit,
    /// OPEN names an unknown channel kind.
    #[error("unknown channel kind")]
    ChannelKind,
    /// OPEN's target length runs past the payload.
    #[error("target runs past the payload")]
    Target,
    /// A WINDOW_UPDATE of zero.
    #[error("zero window increment")]
    ZeroIncrement,
    /// The payload is longer than its fields.
    #[error("trailing bytes")]
    Trailing,
}

/// A decoded frame.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Frame {
    /// HELLO.
    Hello(Hello),
    /// CHALLENGE.
    Challenge(Challenge),
    /// PROOF: the agent's MAC.
    Proof([u8; MAC_LEN]),
    /// CONFIRM: the hub's MAC.
    Confirm([u8; MAC_LEN]),
    /// OPEN.
    Open(Open),
    /// ACCEPT.
    Accept {
        /// The channel accepted.
        channel: ChannelId,
        /// The acceptor's receive window for it.
        window: u32,
    },
    /// REFUSE.
    Refuse {
        /// The channel refused.
        channel: ChannelId,
        /// Why.
        code: ErrorCode,
    },
    /// DATA.
    Data {
        /// The channel.
        channel: ChannelId,
        /// The bytes, in order.
        data: Bytes,
    },
    /// MESSAGE.
    Message {
        /// The channel.
        channel: ChannelId,
        /// Correlates a response with its request; chosen by the application.
        correlation: u32,
        /// The message.
        payload: Bytes,
    },
    /// FIN.
    Fin {
        /// The channel.
        channel: ChannelId,
    },
    /// RESET.
    Reset {
        /// The channel.
        channel: ChannelId,
        /// Why.
        code: ErrorCode,
    },
    /// WINDOW_UPDATE.
    WindowUpdate {
        /// The channel, or `None` for the session window.
        channel: Option<ChannelId>,
        /// Bytes of credit returned; never 0.
        increment: u32,
    },
    /// PING.
    Ping(u64),
    /// PONG.
    Pong(u64),
    /// GOAWAY.
    GoAway {
        /// Why.
        code: ErrorCode,
        /// How long the sender lets open channels drain, in milliseconds.
        drain_ms: u32,
    },
    /// CLOSE.
    Close {
        /// Why.
        code: ErrorCode,
        /// Diagnostic detail, at most [`MAX_REASON_LEN`] bytes; encoding sends only the first [`MAX_REASON_LEN`].
        reason: Bytes,
    },
}

impl Frame {
    /// The frame's type.
    pub fn frame_type(&self) -> FrameType {
        match self {
            Frame::Hello(_) => FrameType::Hello,
            Frame::Challenge(_) => FrameType::Challenge,
            Frame::Proof(_) => FrameType::Proof,
            Frame::Confirm(_) => FrameType::Confirm,
            Frame::Open(_) => FrameType::Open,
            Frame::Accept { .. } => FrameType::Accept,
            Frame::Refuse { .. } => FrameType::Refuse,
            Frame::Data { .. } => FrameType::Data,
            Frame::Message { .. } => FrameType::Message,
            Frame::Fin { .. } => FrameType::Fin,
            Frame::Reset { .. } => FrameType::Reset,
            Frame::WindowUpdate { .. } => FrameType::WindowUpdate,
            Frame::Ping(_) => FrameType::Ping,
            Frame::Pong(_) => FrameType::Pong,
            Frame::GoAway { .. } => FrameType::GoAway,
            Frame::Close { .. } => FrameType::Close,
        }
    }

    /// Decodes a frame whose header and length the [`FrameDecoder`] has checked.
    pub fn decode(raw: RawFrame) -> Result<Frame, FrameError> {
        let RawFrame { header, payload } = raw;
        let t = header.frame_type;
        let channel = ChannelId::new(header.channel);
        let ch = || {
            channel.ok_or(FrameError::BadChannel {
                frame_type: t,
                channel: 0,
            })
        };
        let p = &payload[..];
        Ok(match t {
            FrameType::Hello => Frame::Hello(Hello::decode(p)?),
            FrameType::Challenge => Frame::Challenge(Challenge::decode(p)?),
            FrameType::Proof => Frame::Proof(handshake::mac(p, t)?),
            FrameType::Confirm => Frame::Confirm(handshake::mac(p, t)?),
            FrameType::Open => Frame::Open(Open::decode(ch()?, payload)?),
            FrameType::Accept => Frame::Accept {
                channel: ch()?,
                window: u32_at(p, t)?,
            },
            FrameType::Refuse => Frame::Refuse {
                channel: ch()?,
                code: ErrorCode::from_u32(u32_at(p, t)?),
            },
            FrameType::Data => Frame::Data {
                channel: ch()?,
                data: payload,
            },
            FrameType::Message => data::decode_message(ch()?, payload)?,
            FrameType::Fin => Frame::Fin { channel: ch()? },
            FrameType::Reset => Frame::Reset {
                channel: ch()?,
                code: ErrorCode::from_u32(u32_at(p, t)?),
            },
            FrameType::WindowUpdate => control::decode_window_update(channel, p)?,
            FrameType::Ping => Frame::Ping(control::u64_at(p, t)?),
            FrameType::Pong => Frame::Pong(control::u64_at(p, t)?),
            FrameType::GoAway => control::decode_goaway(p)?,
            FrameType::Close => control::decode_close(payload)?,
            FrameType::Unknown(v) => return Err(FrameError::UnknownType(v)),
        })
    }

    /// Appends the frame, header included, to `out`.
    pub fn encode(&self, out: &mut impl BufMut) {
        match self {
            Frame::Hello(h) => h.encode(out),
            Frame::Challenge(c) => c.encode(out),
            Frame::Proof(mac) => encode_fixed(out, FrameType::Proof, 0, mac),
            Frame::Confirm(mac) => encode_fixed(out, FrameType::Confirm, 0, mac),
            Frame::Open(o) => o.encode(out),
            Frame::Accept { channel, window } => {
                encode_fixed(out, FrameType::Accept, channel.value(), &window.to_be_bytes())
            }
            Frame::Refuse { channel, code } => {
                encode_fixed(out, FrameType::Refuse, channel.value(), &code.value().to_be_bytes())
            }
            Frame::Data { channel, data } => {
                put_header(out, FrameType::Data, channel.value(), data.len());
                out.put_slice(data);
            }
            Frame::Message {
                channel,
                correlation,
                payload,
            } => data::encode_message(out, *channel, *correlation, payload),
            Frame::Fin { channel } => encode_fixed(out, FrameType::Fin, channel.value(), &[]),
            Frame::Reset { channel, code } => {
                encode_fixed(out, FrameType::Reset, channel.value(), &code.value().to_be_bytes())
            }
            Frame::WindowUpdate { channel, increment } => encode_fixed(
                out,
                FrameType::WindowUpdate,
                channel.map_or(0, ChannelId::value),
                &increment.to_be_bytes(),
            ),
            Frame::Ping(seq) => encode_fixed(out, FrameType::Ping, 0, &seq.to_be_bytes()),
            Frame::Pong(seq) => encode_fixed(out, FrameType::Pong, 0, &seq.to_be_bytes()),
            Frame::GoAway { code, drain_ms } => {
                let mut p = [0; 8];
                p[..4].copy_from_slice(&code.value().to_be_bytes());
                p[4..].copy_from_slice(&drain_ms.to_be_bytes());
                encode_fixed(out, FrameType::GoAway, 0, &p)
            }
            Frame::Close { code, reason } => {
                let reason = &reason[..reason.len().min(MAX_REASON_LEN)];
                put_header(out, FrameType::Close, 0, 4 + reason.len());
                out.put_u32(code.value());
                out.put_slice(reason);
            }
        }
    }

    /// The encoded frame as a new vector.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut v = Vec::new();
        self.encode(&mut v);
        v
    }
}

/// Writes a header. `len` must fit the 24-bit field; callers bound it first.
pub(crate) fn put_header(out: &mut impl BufMut, frame_type: FrameType, channel: u32, len: usize) {
    debug_assert!(len <= MAX_PAYLOAD_LEN as usize);
    let header = Header {
        len: len as u32,
        frame_type,
        channel,
    };
    out.put_slice(&header.to_bytes());
}

fn encode_fixed(out: &mut impl BufMut, frame_type: FrameType, channel: u32, payload: &[u8]) {
    put_header(out, frame_type, channel, payload.len());
    out.put_slice(payload);
}

fn u32_at(p: &[u8], frame_type: FrameType) -> Result<u32, FrameError> {
    match p {
        [a, b, c, d] => Ok(u32::from_be_bytes([*a, *b, *c, *d])),
        _ => Err(FrameError::BadLength {
            frame_type,
            len: p.len() as u32,
        }),
    }
}
