//! MESSAGE: a correlation id and one message. (DATA is its payload alone.)

use bytes::{BufMut, Bytes};

use super::{put_header, Frame, FrameError, FrameType};
use crate::id::ChannelId;

/// Bytes of a MESSAGE payload taken by the correlation id.
pub const MESSAGE_OVERHEAD: usize = 4;

pub(super) fn decode_message(channel: ChannelId, payload: Bytes) -> Result<Frame, FrameError> {
    let Some(id) = payload.first_chunk::<4>() else {
        return Err(FrameError::BadLength {
            frame_type: FrameType::Message,
            len: payload.len() as u32,
        });
    };
    Ok(Frame::Message {
        channel,
        correlation: u32::from_be_bytes(*id),
        payload: payload.slice(4..),
    })
}

pub(crate) fn encode_message(out: &mut impl BufMut, channel: ChannelId, correlation: u32, payload: &[u8]) {
    put_header(
        out,
        FrameType::Message,
        channel.value(),
        MESSAGE_OVERHEAD + payload.len(),
    );
    out.put_u32(correlation);
    out.put_slice(payload);
}
