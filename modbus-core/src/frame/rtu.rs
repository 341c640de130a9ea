//! RTU framing (Modbus over Serial Line V1.02, 2.5.1), also used for
//! RTU-over-TCP.
//!
//! ```text
//! unit id (1) | PDU (1..=253) | CRC-16 (2, low byte first)
//! ```
//!
//! No header carries the length, so it is worked out from the function code
//! and, for some functions, a byte count, which differs between requests and
//! responses: a decoder is made for one [`Direction`]. After noise the decoder
//! resynchronises by trying the next byte as a frame start, up to a bound.
//!
//! The same decoder serves serial lines and RTU-over-TCP gateways: it reads
//! a byte stream, whatever delivered it. On a serial line the 3.5-character
//! silence between frames is the driver's business (it has the clock): a
//! driver that sees that silence in the middle of a partial frame drops the
//! buffered bytes.
//!
//! Custom function codes and MEI types other than 0x0E have no length rule
//! the decoder could know, so a frame of theirs reads as noise here; carry
//! them over Modbus TCP.
//!
//! ```
//! use outpost_modbus_core::frame::rtu::{self, Decoded, Direction, RtuDecoder};
//! use outpost_modbus_core::{Request, RegisterRange, UnitId};
//!
//! let request = Request::ReadHoldingRegisters(RegisterRange::new(0, 10)?);
//! let mut buf = [0u8; rtu::MAX_ADU_LEN];
//! let n = rtu::encode(UnitId(1), &request, &mut buf)?;
//! assert_eq!(&buf[..n], &[0x01, 0x03, 0x00, 0x00, 0x00, 0x0A, 0xC5, 0xCD]);
//!
//! let decoder = RtuDecoder::new(Direction::Request);
//! match decoder.decode(&buf[..n])? {
//!     Decoded::Frame { frame, skipped, consumed } => {
//!         assert_eq!((frame.unit, skipped, consumed), (UnitId(1), 0, n));
//!         assert_eq!(Request::decode(frame.pdu)?, request);
//!     }
//!     Decoded::NeedMore { .. } => unreachable!(),
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use crate::error::{EncodeError, FrameError};
use crate::frame::crc::crc16;
use crate::function::{FunctionCode, PduLen, MEI_READ_DEVICE_ID};
use crate::pdu::device_id::objects_len;
use crate::pdu::Encode;
use crate::types::UnitId;

/// The largest RTU frame: unit id, 253-byte PDU, CRC.
pub const MAX_ADU_LEN: usize = 256;
/// How many noise bytes a decoder skips before it reports them, by default.
pub const DEFAULT_MAX_NOISE: usize = MAX_ADU_LEN;

/// Which way the frames travel: the length rules differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Client to server.
    Request,
    /// Server to client.
    Response,
}

/// One RTU frame whose CRC matched, borrowing its PDU from the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtuFrame<'a> {
    /// The unit id (0 is broadcast).
    pub unit: UnitId,
    /// The PDU (function code and data), CRC removed.
    pub pdu: &'a [u8],
}

/// What [`RtuDecoder::decode`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decoded<'a> {
    /// A frame. Drop `consumed` bytes (noise and frame) from the buffer.
    Frame {
        /// The frame.
        frame: RtuFrame<'a>,
        /// Noise bytes skipped before it.
        skipped: usize,
        /// Bytes to drop from the buffer: `skipped` plus the frame.
        consumed: usize,
    },
    /// No complete frame yet. The first `skipped` bytes are noise and may be
    /// dropped now; keep the rest and call again with more bytes.
    NeedMore {
        /// Leading bytes known to be noise.
        skipped: usize,
    },
}

/// A stateless RTU decoder for one direction. It reads the caller's buffer
/// and says how many bytes to drop, so it resumes on any split of the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtuDecoder {
    direction: Direction,
    max_noise: usize,
}

enum Candidate {
    /// A frame of this many bytes, CRC included, starts here.
    Len(usize),
    /// More bytes are needed to tell.
    NeedMore,
    /// No frame starts here.
    Invalid,
}

impl RtuDecoder {
    /// A decoder for frames travelling in `direction`.
    pub const fn new(direction: Direction) -> Self {
        RtuDecoder {
            direction,
            max_noise: DEFAULT_MAX_NOISE,
        }
    }

    /// Report [`FrameError::Noise`] once more than `max_noise` bytes in a row
    /// failed to start a frame (at least 1).
    pub const fn with_max_noise(mut self, max_noise: usize) -> Self {
        self.max_noise = if max_noise == 0 { 1 } else { max_noise };
        self
    }

    /// The direction this decoder reads.
    pub const fn direction(&self) -> Direction {
        self.direction
    }

    /// Find the next frame in `buf`.
    ///
    /// Fails with [`FrameError::Noise`] after `max_noise` bytes that start no
    /// frame; the error says how many bytes to drop before calling again.
    pub fn decode<'a>(&self, buf: &'a [u8]) -> Result<Decoded<'a>, FrameError> {
        let mut skipped = 0;
        loop {
            if skipped >= self.max_noise {
                return Err(FrameError::Noise { discarded: skipped });
            }
            let Some(rest) = buf.get(skipped..) else {
                return Ok(Decoded::NeedMore { skipped });
            };
            match candidate(self.direction, rest) {
                Candidate::NeedMore => return Ok(Decoded::NeedMore { skipped }),
                Candidate::Invalid => skipped += 1,
                Candidate::Len(len) => {
                    let Some(frame) = rest.get(..len) else {
                        return Ok(Decoded::NeedMore { skipped });
                    };
                    let (body, crc) = frame.split_at(len - 2);
                    if crc16(body).to_le_bytes() == [crc[0], crc[1]] {
                        return Ok(Decoded::Frame {
                            frame: RtuFrame {
                                unit: UnitId(body[0]),
                                pdu: &body[1..],
                            },
                            skipped,
                            consumed: skipped + len,
                        });
                    }
                    skipped += 1;
                }
            }
        }
    }
}

/// Work out the length of a frame starting at `buf[0]`.
fn candidate(direction: Direction, buf: &[u8]) -> Candidate {
    let Some(&function) = buf.get(1) else {
        return Candidate::NeedMore;
    };
    // A broadcast (unit 0) is never answered: no response starts with it.
    if direction == Direction::Response && buf[0] == 0 {
        return Candidate::Invalid;
    }
    let pdu = &buf[1..];
    let rule = match (direction, function) {
        (_, 0) | (Direction::Request, 0x80..=0xFF) => return Candidate::Invalid,
        (Direction::Response, 0x81..=0xFF) => Some(PduLen::Fixed(2)),
        (Direction::Response, 0x80) => return Candidate::Invalid,
        (Direction::Request, f) => FunctionCode::from_u8(f).rtu_request_len(),
        (Direction::Response, f) => FunctionCode::from_u8(f).rtu_response_len(),
    };
    let Some(rule) = rule else {
        return Candidate::Invalid;
    };
    let pdu_len = match pdu_len(rule, pdu) {
        Some(Ok(n)) => n,
        Some(Err(())) => return Candidate::Invalid,
        None => return Candidate::NeedMore,
    };
    let total = 1 + pdu_len + 2;
    if total > MAX_ADU_LEN {
        return Candidate::Invalid;
    }
    Candidate::Len(total)
}

/// `None`: more bytes needed; `Some(Err)`: no valid length.
fn pdu_len(rule: PduLen, pdu: &[u8]) -> Option<Result<usize, ()>> {
    Some(Ok(match rule {
        PduLen::Fixed(n) => n as usize,
        PduLen::Count8(at) => at as usize + 1 + *pdu.get(at as usize)? as usize,
        PduLen::Count16(at) => {
            let at = at as usize;
            let count = u16::from_be_bytes([*pdu.get(at)?, *pdu.get(at + 1)?]) as usize;
            at + 2 + count
        }
        PduLen::MeiRequest => match *pdu.get(1)? {
            MEI_READ_DEVICE_ID => 4,
            _ => return Some(Err(())),
        },
        PduLen::MeiResponse => match *pdu.get(1)? {
            MEI_READ_DEVICE_ID => {
                // fc, mei, read code, conformity, more follows, next id, count.
                let count = *pdu.get(6)?;
                let objects = pdu.get(7..)?;
                match objects_len(objects, count) {
                    Some(n) => 7 + n,
                    // Objects not all here yet: more bytes, unless the frame
                    // already cannot fit.
                    None if pdu.len() >= crate::codec::MAX_PDU_LEN => return Some(Err(())),
                    None => return None,
                }
            }
            _ => return Some(Err(())),
        },
    }))
}

/// Encode a frame carrying `pdu` into `buf`; returns the bytes written.
pub fn encode<P: Encode + ?Sized>(unit: UnitId, pdu: &P, buf: &mut [u8]) -> Result<usize, EncodeError> {
    let len = pdu.encoded_len();
    let needed = len + 3;
    let available = buf.len();
    let frame = buf
        .get_mut(..needed)
        .ok_or(EncodeError::BufferTooSmall { needed, available })?;
    let (body, crc) = frame.split_at_mut(1 + len);
    body[0] = unit.0;
    pdu.encode(&mut body[1..])?;
    crc.copy_from_slice(&crc16(body).to_le_bytes());
    Ok(needed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(bytes: &[u8]) -> [u8; 64] {
        let mut out = [0u8; 64];
        out[..bytes.len()].copy_from_slice(bytes);
        let crc = crc16(bytes);
        out[bytes.len()..bytes.len() + 2].copy_from_slice(&crc.to_le_bytes());
        out
    }

    #[test]
    fn skips_noise_and_finds_frame() {
        let f = frame(&[0x01, 0x03, 0x00, 0x00, 0x00, 0x0A]);
        let mut stream = [0u8; 11];
        stream[..3].copy_from_slice(&[0xFF, 0x00, 0x42]);
        stream[3..].copy_from_slice(&f[..8]);
        let d = RtuDecoder::new(Direction::Request).decode(&stream).unwrap();
        match d {
            Decoded::Frame {
                frame,
                skipped,
                consumed,
            } => {
                assert_eq!(skipped, 3);
                assert_eq!(consumed, 11);
                assert_eq!(frame.unit, UnitId(1));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn response_exception_length() {
        let f = frame(&[0x0A, 0x81, 0x02]);
        let d = RtuDecoder::new(Direction::Response).decode(&f[..5]).unwrap();
        assert!(matches!(d, Decoded::Frame { consumed: 5, .. }));
    }

    #[test]
    fn noise_is_bounded() {
        let noise = [0u8; 40];
        let d = RtuDecoder::new(Direction::Request).with_max_noise(16);
        assert_eq!(d.decode(&noise), Err(FrameError::Noise { discarded: 16 }));
    }

    #[test]
    fn needs_more() {
        let f = frame(&[0x01, 0x03, 0x00, 0x00, 0x00, 0x0A]);
        let d = RtuDecoder::new(Direction::Request);
        for n in 0..8 {
            assert_eq!(d.decode(&f[..n]), Ok(Decoded::NeedMore { skipped: 0 }), "{n}");
        }
    }

    /// A frame with CRC made from `unit` and `pdu`.
    fn with_crc(unit: u8, pdu: &[u8]) -> std::vec::Vec<u8> {
        let mut bytes = std::vec![unit];
        bytes.extend_from_slice(pdu);
        let crc = crc16(&bytes);
        bytes.extend_from_slice(&crc.to_le_bytes());
        bytes
    }

    /// The largest frame (a 253-byte PDU, 256 bytes in all) decodes; a
    /// length byte claiming one more byte starts no frame.
    #[test]
    fn the_largest_frame_decodes_and_a_larger_one_is_noise() {
        let mut pdu = std::vec![0x11, 251];
        pdu.extend(core::iter::repeat_n(0x5A, 251));
        let largest = with_crc(7, &pdu);
        assert_eq!(largest.len(), MAX_ADU_LEN);
        let d = RtuDecoder::new(Direction::Response);
        let Ok(Decoded::Frame { frame, consumed, .. }) = d.decode(&largest) else {
            panic!("the largest frame did not decode");
        };
        assert_eq!((frame.unit, frame.pdu.len(), consumed), (UnitId(7), 253, 256));

        let mut pdu = std::vec![0x11, 252];
        pdu.extend(core::iter::repeat_n(0x5A, 252));
        let larger = with_crc(7, &pdu);
        let one = RtuDecoder::new(Direction::Response).with_max_noise(1);
        assert_eq!(one.decode(&larger), Err(FrameError::Noise { discarded: 1 }));
    }

    /// A device identification answer whose objects are not all here yet
    /// waits for more, unless it already fills a whole PDU.
    #[test]
    fn a_partial_identification_waits_unless_it_cannot_fit() {
        let d = RtuDecoder::new(Direction::Response).with_max_noise(1);
        // Two objects announced, the first (5 bytes) here, the second not.
        let partial = [
            7, 0x2B, 0x0E, 0x01, 0x01, 0x00, 0x00, 0x02, 0x00, 0x05, b'V', b'e', b'n',
        ];
        assert_eq!(d.decode(&partial), Ok(Decoded::NeedMore { skipped: 0 }));
        // 253 PDU bytes and the objects still run on: no frame starts here.
        let mut endless = std::vec![7, 0x2B, 0x0E, 0x01, 0x01, 0x00, 0x00, 0x02, 0x00, 0xF4];
        endless.extend(core::iter::repeat_n(b'x', 254 - endless.len()));
        assert_eq!(d.decode(&endless), Err(FrameError::Noise { discarded: 1 }));
    }

    /// A frame is written into a buffer of exactly its size; a buffer too
    /// small by any amount is refused with the size it needs.
    #[test]
    fn encoding_needs_exactly_the_frame_size() {
        let pdu = [0x03, 0x00, 0x6B, 0x00, 0x03];
        let mut buf = [0u8; 8];
        assert_eq!(encode(UnitId(17), &pdu[..], &mut buf), Ok(8));
        assert_eq!(buf, [0x11, 0x03, 0x00, 0x6B, 0x00, 0x03, 0x76, 0x87]);
        for short in 0..8 {
            assert_eq!(
                encode(UnitId(17), &pdu[..], &mut buf[..short]),
                Err(EncodeError::BufferTooSmall {
                    needed: 8,
                    available: short
                }),
                "{short} bytes"
            );
        }
        let mut large = [0xEEu8; 12];
        assert_eq!(encode(UnitId(17), &pdu[..], &mut large), Ok(8));
        assert_eq!(&large[8..], [0xEE; 4], "nothing written past the frame");
    }
}
