//! OPEN: the one variable-length channel frame. (ACCEPT, REFUSE, FIN and
//! RESET are a fixed field or none, coded inline in the frame table's module.)

use bytes::{BufMut, Bytes};

use super::{put_header, FrameError, FrameType, Malformed};
use crate::id::{ChannelId, ChannelKind};

/// OPEN: asks the receiver for a new channel.
///
/// `kind(1) window(4) target_len(1) target metadata`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Open {
    /// The new channel's id (odd from the agent, even from the hub).
    pub channel: ChannelId,
    /// Message or stream.
    pub kind: ChannelKind,
    /// The opener's receive window for the channel.
    pub window: u32,
    /// What the channel is for, as the receiver names it (a device, a
    /// service): at most [`Open::MAX_TARGET_LEN`] bytes; encoding sends only
    /// the first [`Open::MAX_TARGET_LEN`].
    pub target: Bytes,
    /// Opaque to the tunnel; application profiles define it (the hub passes
    /// the IT principal and role here).
    pub metadata: Bytes,
}

impl Open {
    /// The longest target, in bytes.
    pub const MAX_TARGET_LEN: usize = 255;

    pub(super) fn decode(channel: ChannelId, payload: Bytes) -> Result<Self, FrameError> {
        let bad = |field| FrameError::Malformed {
            frame_type: FrameType::Open,
            field,
        };
        let [kind, w0, w1, w2, w3, target_len, ..] = payload[..] else {
            return Err(FrameError::BadLength {
                frame_type: FrameType::Open,
                len: payload.len() as u32,
            });
        };
        let kind = ChannelKind::from_u8(kind).ok_or(bad(Malformed::ChannelKind))?;
        let end = 6 + usize::from(target_len);
        if payload.len() < end {
            return Err(bad(Malformed::Target));
        }
        Ok(Open {
            channel,
            kind,
            window: u32::from_be_bytes([w0, w1, w2, w3]),
            target: payload.slice(6..end),
            metadata: payload.slice(end..),
        })
    }

    pub(super) fn encode(&self, out: &mut impl BufMut) {
        let target = &self.target[..self.target.len().min(Self::MAX_TARGET_LEN)];
        put_header(
            out,
            FrameType::Open,
            self.channel.value(),
            6 + target.len() + self.metadata.len(),
        );
        out.put_u8(self.kind.value());
        out.put_u32(self.window);
        out.put_u8(target.len() as u8);
        out.put_slice(target);
        out.put_slice(&self.metadata);
    }
}
