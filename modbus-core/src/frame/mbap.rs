//! Modbus TCP framing: the MBAP header (Modbus Messaging on TCP/IP
//! Implementation Guide V1.0b, 3.1.3).
//!
//! ```text
//! transaction id (2) | protocol id (2) = 0 | length (2) | unit id (1) | PDU
//! ```
//!
//! The length counts the unit id and the PDU, so it lies in 2..=254.
//!
//! ```
//! use outpost_modbus_core::frame::mbap::{self, MbapHeader};
//! use outpost_modbus_core::{Request, RegisterRange, UnitId};
//!
//! let header = MbapHeader { transaction_id: 1, unit: UnitId(0x11) };
//! let request = Request::ReadHoldingRegisters(RegisterRange::new(0x006B, 3)?);
//! let mut buf = [0u8; mbap::MAX_ADU_LEN];
//! let n = mbap::encode(header, &request, &mut buf)?;
//! assert_eq!(&buf[..n], &[0, 1, 0, 0, 0, 6, 0x11, 0x03, 0x00, 0x6B, 0x00, 0x03]);
//!
//! // A partial frame asks for more bytes; the whole one borrows from the buffer.
//! assert_eq!(mbap::decode(&buf[..5])?, None);
//! let frame = mbap::decode(&buf[..n])?.expect("complete");
//! assert_eq!(frame.header, header);
//! assert_eq!(Request::decode(frame.pdu)?, request);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use crate::error::{EncodeError, FrameError};
use crate::pdu::Encode;
use crate::types::UnitId;

/// Bytes in the MBAP header, unit id included.
pub const HEADER_LEN: usize = 7;
/// The largest MBAP frame: header and a 253-byte PDU.
pub const MAX_ADU_LEN: usize = HEADER_LEN + crate::codec::MAX_PDU_LEN;
/// The smallest valid length field (unit id and function code).
pub const MIN_LENGTH_FIELD: u16 = 2;
/// The largest valid length field (unit id and a 253-byte PDU).
pub const MAX_LENGTH_FIELD: u16 = 254;

/// The fields of an MBAP header a user chooses (the protocol id is always 0
/// and the length follows from the PDU).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MbapHeader {
    /// Pairs a response with its request.
    pub transaction_id: u16,
    /// The unit (device) addressed.
    pub unit: UnitId,
}

/// One MBAP frame, borrowing its PDU from the input buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MbapFrame<'a> {
    /// The header.
    pub header: MbapHeader,
    /// The PDU (function code and data).
    pub pdu: &'a [u8],
}

impl MbapFrame<'_> {
    /// Bytes the whole frame took in the input; drop these from the buffer.
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> usize {
        HEADER_LEN + self.pdu.len()
    }
}

/// Check as much of the header as `buf` holds. Returns the length of the
/// whole frame once the length field has arrived, `None` before.
///
/// A bad protocol id fails as soon as its two bytes are in, a bad length as
/// soon as its two bytes are in: nothing of a bad frame need be buffered.
#[inline]
pub fn frame_len(buf: &[u8]) -> Result<Option<usize>, FrameError> {
    if let Some(&[hi, lo]) = buf.get(2..4) {
        let protocol = u16::from_be_bytes([hi, lo]);
        if protocol != 0 {
            return Err(FrameError::ProtocolId { found: protocol });
        }
    }
    match buf.get(4..6) {
        Some(&[hi, lo]) => {
            let length = u16::from_be_bytes([hi, lo]);
            if !(MIN_LENGTH_FIELD..=MAX_LENGTH_FIELD).contains(&length) {
                return Err(FrameError::Length { found: length });
            }
            Ok(Some(6 + length as usize))
        }
        _ => Ok(None),
    }
}

/// Decode one frame from the start of `buf`: `Ok(None)` if more bytes are
/// needed, the frame if it is complete. The PDU itself is not checked here:
/// decode it with [`crate::Request::decode`] or [`crate::Response::decode`].
#[inline]
pub fn decode(buf: &[u8]) -> Result<Option<MbapFrame<'_>>, FrameError> {
    let Some(len) = frame_len(buf)? else {
        return Ok(None);
    };
    let Some(frame) = buf.get(..len) else {
        return Ok(None);
    };
    Ok(Some(MbapFrame {
        header: MbapHeader {
            transaction_id: u16::from_be_bytes([frame[0], frame[1]]),
            unit: UnitId(frame[6]),
        },
        pdu: &frame[HEADER_LEN..],
    }))
}

/// Encode a frame carrying `pdu` into `buf`; returns the bytes written.
#[inline]
pub fn encode<P: Encode + ?Sized>(header: MbapHeader, pdu: &P, buf: &mut [u8]) -> Result<usize, EncodeError> {
    let pdu_len = pdu.encoded_len();
    let needed = HEADER_LEN + pdu_len;
    if buf.len() < needed {
        return Err(EncodeError::BufferTooSmall {
            needed,
            available: buf.len(),
        });
    }
    let (head, body) = buf.split_at_mut(HEADER_LEN);
    let written = pdu.encode(body)?;
    head[0..2].copy_from_slice(&header.transaction_id.to_be_bytes());
    head[2..4].copy_from_slice(&[0, 0]);
    head[4..6].copy_from_slice(&(written as u16 + 1).to_be_bytes());
    head[6] = header.unit.0;
    Ok(HEADER_LEN + written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_bad_header_early() {
        assert_eq!(frame_len(&[0, 1, 0, 1]), Err(FrameError::ProtocolId { found: 1 }));
        assert_eq!(frame_len(&[0, 1, 0, 0, 0, 1]), Err(FrameError::Length { found: 1 }));
        assert_eq!(frame_len(&[0, 1, 0, 0, 0, 255]), Err(FrameError::Length { found: 255 }));
        assert_eq!(
            frame_len(&[0, 1, 0, 0, 0xFF, 0xFF]),
            Err(FrameError::Length { found: 0xFFFF })
        );
        assert_eq!(frame_len(&[0, 1, 0, 0, 0, 254]), Ok(Some(260)));
        assert_eq!(frame_len(&[0, 1, 0]), Ok(None));
        assert_eq!(frame_len(&[]), Ok(None));
    }

    #[test]
    fn decodes_minimal_frame() {
        let f = decode(&[0x12, 0x34, 0, 0, 0, 2, 9, 0x07, 0xAA]).unwrap().unwrap();
        assert_eq!(f.header.transaction_id, 0x1234);
        assert_eq!(f.header.unit, UnitId(9));
        assert_eq!(f.pdu, &[0x07]);
        assert_eq!(f.len(), 8);
    }

    #[test]
    fn raw_pdu_encodes() {
        let mut buf = [0u8; 16];
        let header = MbapHeader {
            transaction_id: 7,
            unit: UnitId(1),
        };
        let n = encode(header, &[0x07u8][..], &mut buf).unwrap();
        assert_eq!(&buf[..n], &[0, 7, 0, 0, 0, 2, 1, 7]);
        assert!(matches!(
            encode(header, &[0x07u8][..], &mut buf[..7]),
            Err(EncodeError::BufferTooSmall {
                needed: 8,
                available: 7
            })
        ));
    }
}
