//! Matching the answer to one RTU request. A serial line carries one
//! request at a time and no transaction ids: the answer is the next frame
//! from the addressed unit; frames from other units (another master's
//! traffic, a late answer to an abandoned request) and noise are skipped.

use super::{Expectation, ResponseError};
use crate::error::FrameError;
use crate::frame::rtu::{Decoded, Direction, RtuDecoder, RtuFrame};
use crate::types::UnitId;

/// What the bytes read so far hold for the request in flight.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RtuMatch<'a> {
    /// The answer: its PDU checked against the request (a device exception
    /// is a valid answer). Drop `consumed` bytes from the buffer.
    Answer {
        /// The response PDU, or why it does not answer the request.
        result: Result<&'a [u8], ResponseError>,
        /// Bytes to drop: skipped bytes and frames, and the answer.
        consumed: usize,
    },
    /// No answer yet: drop `discard` bytes (noise, or frames from other
    /// units) and read more.
    NeedMore {
        /// Leading bytes to drop.
        discard: usize,
    },
}

/// The exchange of one RTU request: which answer ends it.
///
/// Time stays with the caller: it reads until the request's deadline, and
/// when the line falls silent for 3.5 characters with bytes that start no
/// frame, it drops [`RtuExchange::on_silence`] of them (a frame never
/// spans a silence) and polls again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtuExchange {
    unit: UnitId,
    expect: Expectation,
    decoder: RtuDecoder,
}

impl RtuExchange {
    /// The exchange of a request to `unit` that `expect` answers.
    pub fn new(unit: UnitId, expect: Expectation) -> Self {
        RtuExchange {
            unit,
            expect,
            decoder: RtuDecoder::new(Direction::Response),
        }
    }

    /// Looks for the answer in `buf` (everything read since the request,
    /// less what earlier polls said to drop). A [`FrameError`] other than
    /// noise means the line is not RTU framing at all.
    pub fn poll<'a>(&self, buf: &'a [u8]) -> Result<RtuMatch<'a>, FrameError> {
        let mut offset = 0;
        loop {
            let rest = &buf[offset..];
            match self.decoder.decode(rest) {
                Ok(Decoded::Frame {
                    frame: RtuFrame { unit, pdu },
                    consumed,
                    ..
                }) => {
                    if unit == self.unit {
                        return Ok(RtuMatch::Answer {
                            result: self.expect.check(pdu).map(|_| pdu),
                            consumed: offset + consumed,
                        });
                    }
                    // Another unit's frame: not ours.
                    offset += consumed;
                }
                Ok(Decoded::NeedMore { skipped }) => {
                    return Ok(RtuMatch::NeedMore {
                        discard: offset + skipped,
                    })
                }
                Err(FrameError::Noise { discarded }) => offset += discarded,
                Err(e) => return Err(e),
            }
        }
    }

    /// The line fell silent with `buffered` bytes that start no frame: how
    /// many of them to drop as noise before polling again (the first; the
    /// rest may still start a frame).
    pub fn on_silence(&self, buffered: usize) -> usize {
        buffered.min(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::rtu;
    use crate::pdu::request::Request;

    fn exchange() -> RtuExchange {
        let request = Request::decode(&[0x03, 0x00, 0x6B, 0x00, 0x03]).unwrap();
        RtuExchange::new(UnitId(17), Expectation::new(&request))
    }

    fn frame(unit: u8, pdu: &[u8]) -> std::vec::Vec<u8> {
        let mut out = [0u8; rtu::MAX_ADU_LEN];
        let n = rtu::encode(UnitId(unit), pdu, &mut out).unwrap();
        out[..n].to_vec()
    }

    const ANSWER: [u8; 8] = [0x03, 0x06, 0x02, 0x2B, 0x00, 0x00, 0x00, 0x64];

    #[test]
    fn the_answer_of_the_addressed_unit_ends_the_exchange() {
        let bytes = frame(17, &ANSWER);
        assert_eq!(
            exchange().poll(&bytes),
            Ok(RtuMatch::Answer {
                result: Ok(&ANSWER[..]),
                consumed: bytes.len()
            })
        );
    }

    #[test]
    fn frames_of_other_units_are_skipped() {
        let mut bytes = frame(3, &ANSWER);
        let other = bytes.len();
        bytes.extend(frame(17, &ANSWER));
        let Ok(RtuMatch::Answer { result, consumed }) = exchange().poll(&bytes) else {
            panic!("no answer");
        };
        assert_eq!((result, consumed), (Ok(&ANSWER[..]), bytes.len()));
        // Only the other unit's frame so far: dropped, read more.
        assert_eq!(
            exchange().poll(&bytes[..other]),
            Ok(RtuMatch::NeedMore { discard: other })
        );
    }

    #[test]
    fn a_partial_answer_waits_for_more() {
        let bytes = frame(17, &ANSWER);
        assert_eq!(exchange().poll(&bytes[..5]), Ok(RtuMatch::NeedMore { discard: 0 }));
    }

    #[test]
    fn an_exception_answers_and_a_wrong_function_does_not_fit() {
        let bytes = frame(17, &[0x83, 0x02]);
        let Ok(RtuMatch::Answer { result, .. }) = exchange().poll(&bytes) else {
            panic!("no answer");
        };
        assert_eq!(result, Ok(&[0x83, 0x02][..]));
        let bytes = frame(17, &[0x04, 0x02, 0x00, 0x01]);
        let Ok(RtuMatch::Answer { result, .. }) = exchange().poll(&bytes) else {
            panic!("no answer");
        };
        assert!(result.is_err());
    }

    /// Noise before the answer is passed over and counted in what the
    /// answer consumed, however long it is; noise before a partial answer
    /// is discarded with the frames before it.
    #[test]
    fn noise_is_passed_over_and_counted() {
        // Zeros start no answer (no device answers from unit 0).
        let answer = frame(17, &ANSWER);
        // Past 256 bytes the decoder reports the noise and starts over.
        for noise in [3, 20, 300, 600] {
            let mut bytes = vec![0u8; noise];
            bytes.extend(&answer);
            let polled = exchange().poll(&bytes);
            let Ok(RtuMatch::Answer { result, consumed }) = polled else {
                panic!("no answer after {noise} bytes of noise: {polled:?}");
            };
            assert_eq!((result, consumed), (Ok(&ANSWER[..]), bytes.len()));
        }

        let other = frame(3, &ANSWER);
        let mut bytes = other.clone();
        bytes.extend([0u8; 3]);
        bytes.extend(&answer[..5]);
        // The other unit's frame and the noise go; the partial answer stays.
        assert_eq!(
            exchange().poll(&bytes),
            Ok(RtuMatch::NeedMore {
                discard: other.len() + 3
            })
        );
    }

    #[test]
    fn silence_drops_one_byte_of_what_starts_no_frame() {
        assert_eq!(exchange().on_silence(0), 0);
        assert_eq!(exchange().on_silence(7), 1);
    }
}
