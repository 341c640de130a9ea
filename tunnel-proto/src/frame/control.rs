//! WINDOW_UPDATE, PING/PONG, GOAWAY and CLOSE payloads.

use bytes::Bytes;

use super::{Frame, FrameError, FrameType, Malformed};
use crate::code::ErrorCode;
use crate::id::ChannelId;

pub(super) fn decode_window_update(channel: Option<ChannelId>, p: &[u8]) -> Result<Frame, FrameError> {
    let increment = super::u32_at(p, FrameType::WindowUpdate)?;
    if increment == 0 {
        return Err(FrameError::Malformed {
            frame_type: FrameType::WindowUpdate,
            field: Malformed::ZeroIncrement,
        });
    }
    Ok(Frame::WindowUpdate { channel, increment })
}

pub(super) fn u64_at(p: &[u8], frame_type: FrameType) -> Result<u64, FrameError> {
    <[u8; 8]>::try_from(p)
        .map(u64::from_be_bytes)
        .map_err(|_| FrameError::BadLength {
            frame_type,
            len: p.len() as u32,
        })
}

pub(super) fn decode_goaway(p: &[u8]) -> Result<Frame, FrameError> {
    let v = u64_at(p, FrameType::GoAway)?;
    Ok(Frame::GoAway {
        code: ErrorCode::from_u32((v >> 32) as u32),
        drain_ms: v as u32,
    })
}

pub(super) fn decode_close(payload: Bytes) -> Result<Frame, FrameError> {
    let Some(code) = payload.first_chunk::<4>() else {
        return Err(FrameError::BadLength {
            frame_type: FrameType::Close,
            len: payload.len() as u32,
        });
    };
    Ok(Frame::Close {
        code: ErrorCode::from_u32(u32::from_be_bytes(*code)),
        reason: payload.slice(4..),
    })
}
