//! A resumable frame decoder: checks each header against the frame table and
//! the receiver's limits as soon as its 8 bytes are in, before buffering the
//! payload.

use bytes::{Buf, Bytes, BytesMut};

use super::{ChannelRule, FrameError, FrameType, Header, Limit, HEADER_LEN};

/// A frame whose header has been checked, with its payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawFrame {
    /// The header.
    pub header: Header,
    /// Exactly `header.len` bytes.
    pub payload: Bytes,
}

/// Splits a byte stream into frames.
#[derive(Debug)]
pub struct FrameDecoder {
    buf: BytesMut,
    header: Option<Header>,
    max_frame: u32,
    max_handshake: u32,
}

impl FrameDecoder {
    /// A decoder refusing session frames with payloads over `max_frame`
    /// bytes and handshake frames over `max_handshake` bytes.
    pub fn new(max_frame: u32, max_handshake: u32) -> Self {
        FrameDecoder {
            buf: BytesMut::new(),
            header: None,
            max_frame,
            max_handshake,
        }
    }

    /// Appends received bytes.
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// Bytes held that do not yet make a whole frame.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Bytes of memory the buffer holds.
    pub fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// Drops everything buffered (after an error the stream cannot be resynchronised).
    pub fn clear(&mut self) {
        self.buf = BytesMut::new();
        self.header = None;
    }

    /// The next whole frame, `Ok(None)` if more bytes are needed, or the
    /// first fault found in the stream.
    pub fn next_frame(&mut self) -> Result<Option<RawFrame>, FrameError> {
        let header = match self.header {
            Some(h) => h,
            None => {
                let Some(bytes) = self.buf.first_chunk::<HEADER_LEN>() else {
                    return Ok(None);
                };
                let header = Header::parse(bytes);
                self.check(header)?;
                self.buf.advance(HEADER_LEN);
                self.header = Some(header);
                header
            }
        };
        let len = header.len as usize;
        if self.buf.len() < len {
            self.buf.reserve(len - self.buf.len());
            return Ok(None);
        }
        self.header = None;
        Ok(Some(RawFrame {
            header,
            payload: self.buf.split_to(len).freeze(),
        }))
    }

    /// Checks a header against the frame table and this decoder's limits.
    pub(crate) fn check(&self, h: Header) -> Result<(), FrameError> {
        let t = h.frame_type;
        let Some((rule, _, min, max, limit)) = t.rule() else {
            return Err(FrameError::UnknownType(t.value()));
        };
        let limit = match limit {
            Limit::Fixed => None,
            Limit::Handshake => Some(self.max_handshake),
            Limit::Frame => Some(self.max_frame),
        };
        if let Some(limit) = limit.filter(|&l| h.len > l) {
            return Err(FrameError::TooLarge {
                frame_type: t,
                len: h.len,
                max: limit,
            });
        }
        if h.len < min || h.len > max {
            return Err(FrameError::BadLength {
                frame_type: t,
                len: h.len,
            });
        }
        let channel_ok = match rule {
            ChannelRule::Session => h.channel == 0,
            ChannelRule::Channel => h.channel != 0,
            ChannelRule::Either => true,
        };
        if !channel_ok {
            return Err(FrameError::BadChannel {
                frame_type: t,
                channel: h.channel,
            });
        }
        Ok(())
    }
}

impl FrameType {
    /// Whether frames of this type belong to the handshake, the established
    /// session, or both.
    pub(crate) fn phase(self) -> Option<super::Phase> {
        self.rule().map(|(_, phase, ..)| phase)
    }
}
