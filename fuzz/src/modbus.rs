//! Modbus targets: framing, PDUs, the server dispatcher and the client
//! tracker.

use std::collections::HashMap;
use std::time::Duration;

use arbitrary::{Arbitrary, Unstructured};
use outpost_modbus_core::client::Matched;
use outpost_modbus_core::frame::mbap::{self, MbapFrame, MbapHeader};
use outpost_modbus_core::frame::rtu::{self, Decoded, Direction, RtuDecoder};
use outpost_modbus_core::server::Server;
use outpost_modbus_core::{
    Expectation, FrameError, Request, Response, ResponseError, Transactions, Transport, UnitId, MAX_PDU_LEN,
};

use crate::device::Device;
use crate::records::Records;
use crate::spec::{AnswerSpec, RequestSpec};

/// A decoded request re-encodes to exactly the bytes it came from.
fn request_is_canonical(pdu: &[u8]) -> Option<Request<'_>> {
    let request = Request::decode(pdu).ok()?;
    assert_eq!(request.encoded_len(), pdu.len(), "encoded_len of {request:?}");
    let mut buf = [0u8; MAX_PDU_LEN];
    let n = request.encode(&mut buf).expect("a decoded request encodes");
    assert_eq!(Request::decode(&buf[..n]).ok(), Some(request));
    same_but_padding(&buf[..n], pdu, pdu[0] == 0x0F, &request);
    // Building the client's expectation never fails.
    let expect = Expectation::new(&request);
    assert_eq!(expect.function(), pdu[0]);
    Some(request)
}

/// A decoded response re-encodes to exactly the bytes it came from.
fn response_is_canonical(pdu: &[u8]) -> Option<Response<'_>> {
    let response = Response::decode(pdu).ok()?;
    assert_eq!(response.encoded_len(), pdu.len(), "encoded_len of {response:?}");
    let mut buf = [0u8; MAX_PDU_LEN];
    let n = response.encode(&mut buf).expect("a decoded response encodes");
    assert_eq!(Response::decode(&buf[..n]).ok(), Some(response));
    same_but_padding(&buf[..n], pdu, matches!(pdu[0], 0x01 | 0x02), &response);
    assert_eq!(response.exception().is_some(), pdu[0] & 0x80 != 0);
    Some(response)
}

/// Re-encoded bytes equal the received ones, except for the unused high
/// bits of the last byte of packed coils, which decoding ignores (the
/// specification asks senders to zero them; receivers need not check).
fn same_but_padding(encoded: &[u8], received: &[u8], packed: bool, value: &dyn core::fmt::Debug) {
    if packed && encoded.len() == received.len() && encoded.len() > 1 {
        let last = encoded.len() - 1;
        assert_eq!(&encoded[..last], &received[..last], "{value:?} re-encodes differently");
        assert_eq!(encoded[last] & !received[last], 0, "{value:?}: padding bits appeared");
    } else {
        assert_eq!(encoded, received, "{value:?} re-encodes differently");
    }
}

/// Target `request_pdu`: any bytes as a request PDU.
pub fn request_pdu(data: &[u8]) {
    request_is_canonical(data);
}

/// Target `response_pdu`: any bytes as a response PDU.
pub fn response_pdu(data: &[u8]) {
    response_is_canonical(data);
}

/// Target `mbap`: a byte stream cut into MBAP frames. `frame_len` and
/// `decode` agree, frames re-encode to their bytes, PDUs go to both decoders.
pub fn mbap(data: &[u8]) {
    let mut rest = data;
    // Each turn consumes a frame of at least 8 bytes or stops.
    for _ in 0..=data.len() / 8 {
        match (mbap::frame_len(rest), mbap::decode(rest)) {
            (Ok(Some(n)), Ok(Some(frame))) => {
                assert_eq!(frame.len(), n);
                assert!((mbap::HEADER_LEN + 1..=mbap::MAX_ADU_LEN).contains(&n));
                let mut buf = [0u8; mbap::MAX_ADU_LEN];
                let m = mbap::encode(frame.header, frame.pdu, &mut buf).expect("a decoded frame re-encodes");
                assert_eq!(&buf[..m], &rest[..n]);
                request_is_canonical(frame.pdu);
                response_is_canonical(frame.pdu);
                rest = &rest[n..];
            }
            (Ok(Some(n)), Ok(None)) => {
                assert!(n > rest.len(), "a whole frame of {n} bytes was not decoded");
                return;
            }
            (Ok(None), Ok(None)) => {
                assert!(rest.len() < 6);
                return;
            }
            (Err(a), Err(b)) => {
                assert_eq!(a, b);
                assert!(matches!(a, FrameError::ProtocolId { .. } | FrameError::Length { .. }));
                return;
            }
            other => panic!("frame_len and decode disagree: {other:?}"),
        }
    }
    assert!(rest.is_empty() || rest.len() < data.len(), "no progress");
}

/// Splits a stream into RTU frames: every frame's CRC holds, it re-encodes
/// to the bytes consumed, and the decoder always makes progress.
fn rtu_stream(data: &[u8], direction: Direction) {
    let Some((&max_noise, mut rest)) = data.split_first() else {
        return;
    };
    let decoder = RtuDecoder::new(direction).with_max_noise(usize::from(max_noise));
    for _ in 0..=data.len() {
        match decoder.decode(rest) {
            Ok(Decoded::Frame {
                frame,
                skipped,
                consumed,
            }) => {
                assert!(consumed > skipped && consumed <= rest.len());
                let bytes = &rest[skipped..consumed];
                assert!(bytes.len() <= rtu::MAX_ADU_LEN);
                assert_eq!(outpost_modbus_core::crc16(bytes), 0, "a frame with a bad CRC");
                let mut buf = [0u8; rtu::MAX_ADU_LEN];
                let n = rtu::encode(frame.unit, frame.pdu, &mut buf).expect("a decoded frame re-encodes");
                assert_eq!(&buf[..n], bytes);
                match direction {
                    Direction::Request => {
                        request_is_canonical(frame.pdu);
                    }
                    Direction::Response => {
                        response_is_canonical(frame.pdu);
                    }
                }
                rest = &rest[consumed..];
            }
            Ok(Decoded::NeedMore { skipped }) => {
                assert!(skipped <= rest.len());
                // What remains could still start a frame: no more noise than allowed.
                assert!(skipped <= usize::from(max_noise).max(1));
                if skipped == 0 {
                    return;
                }
                rest = &rest[skipped..];
            }
            Err(FrameError::Noise { discarded }) => {
                assert!(discarded > 0 && discarded <= rest.len());
                rest = &rest[discarded..];
            }
            Err(e) => panic!("RTU decoding failed with an MBAP error: {e:?}"),
        }
        if rest.is_empty() {
            return;
        }
    }
    panic!("the RTU decoder made no progress");
}

/// Target `rtu_request`: the first byte sets the noise limit, the rest is
/// a request stream.
pub fn rtu_request(data: &[u8]) {
    rtu_stream(data, Direction::Request);
}

/// Target `rtu_response`: as `rtu_request`, for responses.
pub fn rtu_response(data: &[u8]) {
    rtu_stream(data, Direction::Response);
}

/// Input of `response_check`: a request, and a response that is either
/// arbitrary bytes or a valid answer with some bytes flipped or cut.
#[derive(Debug, Arbitrary)]
struct CheckInput {
    request: RequestSpec,
    answer: AnswerSpec,
    flips: Vec<(u8, u8)>,
    cut: Option<u8>,
    raw: Option<Vec<u8>>,
}

/// Target `response_check`: a response checked against a request. What the
/// check accepts answers that request and agrees with the plain decoder.
pub fn response_check(data: &[u8]) {
    let Ok(input) = CheckInput::arbitrary_take_rest(Unstructured::new(data)) else {
        return;
    };
    let parts = input.request.parts();
    let Some(request) = input.request.request(&parts) else {
        return;
    };
    let mut pdu = [0u8; MAX_PDU_LEN];
    let len = match &input.raw {
        Some(raw) => {
            let n = raw.len().min(MAX_PDU_LEN);
            pdu[..n].copy_from_slice(&raw[..n]);
            n
        }
        None => {
            let store = input.answer.store(&request);
            let groups = store.groups();
            let objects = input.answer.objects();
            let Some(response) = input.answer.response(&request, &store, &groups, &objects) else {
                return;
            };
            let Ok(mut n) = response.encode(&mut pdu) else {
                return;
            };
            for &(at, xor) in &input.flips {
                pdu[usize::from(at) % n] ^= xor;
            }
            if let Some(cut) = input.cut {
                n = n.min(usize::from(cut));
            }
            n
        }
    };
    let pdu = &pdu[..len];
    let expect = Expectation::new(&request);
    match expect.check(pdu) {
        Ok(response) => {
            assert_eq!(response.function(), request.function());
            let plain = Response::decode(pdu).expect("checked but not decodable");
            match (response, plain) {
                (Response::ReadCoils(a), Response::ReadCoils(b))
                | (Response::ReadDiscreteInputs(a), Response::ReadDiscreteInputs(b)) => {
                    assert!(a.iter().eq(b.iter().take(a.len())));
                }
                (a, b) => assert_eq!(a, b),
            }
        }
        Err(ResponseError::Function { expected, found }) => {
            assert_eq!(expected, request.function().value());
            assert_ne!(found, expected);
        }
        Err(_) => {}
    }
    rtu_exchange(
        expect,
        pdu,
        input.raw.is_none() && input.flips.is_empty() && input.cut.is_none(),
    );
}

/// The RTU exchange over a line holding a noise byte, another unit's frame
/// with the same PDU, then the answer: what it reports as an answer fits
/// the request, it never asks to drop more than it has, and an untouched
/// valid answer that RTU can frame is found.
fn rtu_exchange(expect: Expectation, pdu: &[u8], untouched: bool) {
    use outpost_modbus_core::client::{RtuExchange, RtuMatch};
    let mut line = vec![0xFF];
    let mut frame = [0u8; rtu::MAX_ADU_LEN];
    let mut framable = false;
    for unit in [18, 17] {
        let Ok(n) = rtu::encode(UnitId(unit), pdu, &mut frame) else {
            return;
        };
        // RTU knows a frame's end from its function only: some PDUs
        // (custom codes, multi-word diagnostics) cannot be framed alone.
        // Framed from its first byte: the tail of a frame that cannot be
        // framed may pass for another (a CRC matches once in 65,536).
        framable = matches!(
            RtuDecoder::new(Direction::Response).decode(&frame[..n]),
            Ok(Decoded::Frame { skipped: 0, consumed, .. }) if consumed == n
        );
        line.extend_from_slice(&frame[..n]);
    }
    let exchange = RtuExchange::new(UnitId(17), expect);
    let mut at = 0;
    for _ in 0..line.len() + 1 {
        match exchange.poll(&line[at..]) {
            Ok(RtuMatch::Answer { result, consumed }) => {
                assert!(consumed <= line.len() - at);
                if let Ok(answer) = result {
                    assert!(expect.check(answer).is_ok(), "an answer that does not fit");
                }
                return;
            }
            Ok(RtuMatch::NeedMore { discard }) => {
                assert!(discard <= line.len() - at);
                if discard == 0 {
                    // The line fell silent: drop a byte, as the client does.
                    at += exchange.on_silence(line.len() - at);
                } else {
                    at += discard;
                }
                if at >= line.len() {
                    break;
                }
            }
            Ok(_) => return,
            Err(_) => return,
        }
    }
    assert!(
        !(untouched && framable && expect.check(pdu).is_ok()),
        "a valid answer was not found"
    );
}

/// Target `server`: PDUs through the dispatcher and a device. Every answer
/// to a request that decodes passes the client's check for that request;
/// a PDU that does not decode is answered, if at all, with an exception.
///
/// Input: one byte (odd: RTU, even: TCP), then records `[unit][len][PDU]`.
pub fn server(data: &[u8]) {
    let Some((&transport, data)) = data.split_first() else {
        return;
    };
    let transport = if transport & 1 == 1 {
        Transport::Rtu
    } else {
        Transport::Tcp
    };
    let mut server = Server::new(transport);
    let mut device = Device::default();
    let mut out = [0u8; MAX_PDU_LEN];
    for (unit, pdu) in Records::new(data).take(64) {
        let unit = UnitId(unit);
        let answer = server
            .handle(&mut device, unit, pdu, &mut out)
            .expect("a full-size buffer is never refused");
        let Some(n) = answer else {
            continue;
        };
        assert!((1..=MAX_PDU_LEN).contains(&n), "answer of {n} bytes");
        assert!(
            !(transport == Transport::Rtu && unit.is_broadcast()),
            "answered a broadcast"
        );
        let answer = &out[..n];
        match Request::decode(pdu) {
            Ok(request) => {
                if let Err(e) = Expectation::new(&request).check(answer) {
                    panic!("the answer {answer:02X?} to {request:?} fails the client's check: {e}");
                }
            }
            Err(_) => {
                assert!(answer[0] & 0x80 != 0, "a PDU that does not decode got a normal answer");
                assert_eq!(answer.len(), 2);
            }
        }
    }
}

/// One step of the `client` target.
#[derive(Debug, Arbitrary)]
enum ClientOp {
    /// Start a transaction.
    Start {
        unit: u8,
        request: RequestSpec,
        timeout_ms: u16,
    },
    /// A valid answer to the `n`th transaction in flight, maybe from another unit.
    Answer {
        n: u8,
        answer: AnswerSpec,
        other_unit: bool,
    },
    /// Any bytes as a frame.
    Frame(Vec<u8>),
    /// A frame with a chosen id and an arbitrary PDU.
    Forged { id: u16, unit: u8, pdu: Vec<u8> },
    /// Time passes; expired transactions are collected.
    Advance(u16),
    /// Cancel the `n`th transaction in flight.
    Cancel(u8),
    /// The connection broke.
    FailAll,
}

/// What the target remembers of a transaction in flight.
struct Pending {
    unit: UnitId,
    deadline: Duration,
    request: RequestSpec,
}

/// Target `client`: the transaction tracker against a model of itself.
pub fn client(data: &[u8]) {
    let Ok(ops) = Vec::<ClientOp>::arbitrary_take_rest(Unstructured::new(data)) else {
        return;
    };
    let mut tracker: Transactions<Duration, 4> = Transactions::new();
    let mut model: HashMap<u16, Pending> = HashMap::new();
    let mut now = Duration::ZERO;
    let mut started = 0u64;
    for op in ops.into_iter().take(256) {
        match op {
            ClientOp::Start {
                unit,
                request,
                timeout_ms,
            } => {
                let parts = request.parts();
                let Some(r) = request.request(&parts) else {
                    continue;
                };
                let timeout = Duration::from_millis(u64::from(timeout_ms));
                match tracker.start(UnitId(unit), &r, now, timeout) {
                    Ok(header) => {
                        assert!(model.len() < 4);
                        assert_eq!(header.unit, UnitId(unit));
                        started += 1;
                        drop(parts);
                        let previous = model.insert(
                            header.transaction_id,
                            Pending {
                                unit: UnitId(unit),
                                deadline: now + timeout,
                                request,
                            },
                        );
                        assert!(previous.is_none(), "id {} given twice", header.transaction_id);
                    }
                    Err(full) => {
                        assert_eq!(model.len(), 4);
                        assert_eq!(full.capacity, 4);
                    }
                }
            }
            ClientOp::Answer { n, answer, other_unit } => {
                let mut ids: Vec<u16> = model.keys().copied().collect();
                ids.sort_unstable();
                let Some(&id) = ids.get(usize::from(n) % ids.len().max(1)) else {
                    continue;
                };
                let pending = &model[&id];
                let parts = pending.request.parts();
                let Some(request) = pending.request.request(&parts) else {
                    unreachable!("started from this spec");
                };
                let store = answer.store(&request);
                let groups = store.groups();
                let objects = answer.objects();
                let Some(response) = answer.response(&request, &store, &groups, &objects) else {
                    continue;
                };
                let mut pdu = [0u8; MAX_PDU_LEN];
                let Ok(len) = response.encode(&mut pdu) else {
                    continue;
                };
                let unit = if other_unit {
                    UnitId(pending.unit.0.wrapping_add(1))
                } else {
                    pending.unit
                };
                let frame = MbapFrame {
                    header: MbapHeader {
                        transaction_id: id,
                        unit,
                    },
                    pdu: &pdu[..len],
                };
                match tracker.handle_frame(frame) {
                    Matched::Response { transaction_id, result } => {
                        assert!(!other_unit, "matched an answer from another unit");
                        assert_eq!(transaction_id, id);
                        if let Err(e) = result {
                            panic!("a valid answer {response:?} to {request:?} was refused: {e}");
                        }
                        drop(parts);
                        model.remove(&id);
                    }
                    other => assert!(other_unit, "an answer in flight was {other:?}"),
                }
            }
            ClientOp::Frame(bytes) => {
                if let Ok(Some(frame)) = mbap::decode(&bytes) {
                    handle_any(&mut tracker, &mut model, frame);
                }
            }
            ClientOp::Forged { id, unit, pdu } => {
                if (1..=MAX_PDU_LEN).contains(&pdu.len()) {
                    let frame = MbapFrame {
                        header: MbapHeader {
                            transaction_id: id,
                            unit: UnitId(unit),
                        },
                        pdu: &pdu,
                    };
                    handle_any(&mut tracker, &mut model, frame);
                }
            }
            ClientOp::Advance(ms) => {
                now += Duration::from_millis(u64::from(ms));
                for _ in 0..=4 {
                    let Some(id) = tracker.poll_expired(now) else {
                        break;
                    };
                    let pending = model.remove(&id).expect("expired an id not in flight");
                    assert!(pending.deadline <= now);
                }
                assert!(model.values().all(|p| p.deadline > now), "a due transaction was kept");
            }
            ClientOp::Cancel(n) => {
                let mut ids: Vec<u16> = model.keys().copied().collect();
                ids.sort_unstable();
                let id = ids
                    .get(usize::from(n) % ids.len().max(1))
                    .copied()
                    .unwrap_or(u16::from(n));
                assert_eq!(tracker.cancel(id), model.remove(&id).is_some());
            }
            ClientOp::FailAll => {
                let mut failed = Vec::new();
                tracker.fail_all(|id| failed.push(id));
                let mut expected: Vec<u16> = model.drain().map(|(id, _)| id).collect();
                failed.sort_unstable();
                expected.sort_unstable();
                assert_eq!(failed, expected);
            }
        }
        assert_eq!(tracker.in_flight(), model.len());
        assert_eq!(tracker.poll_timeout(), model.values().map(|p| p.deadline).min());
        assert_eq!(tracker.stats().started, started);
    }
}

fn handle_any(tracker: &mut Transactions<Duration, 4>, model: &mut HashMap<u16, Pending>, frame: MbapFrame<'_>) {
    let id = frame.header.transaction_id;
    let ours = model.get(&id).is_some_and(|p| p.unit == frame.header.unit);
    match tracker.handle_frame(frame) {
        Matched::Response { transaction_id, .. } => {
            assert!(ours, "a frame for no transaction in flight matched");
            assert_eq!(transaction_id, id);
            model.remove(&id);
        }
        Matched::Late { transaction_id } | Matched::Stray { transaction_id } => {
            assert!(!ours, "a frame for a transaction in flight was dropped");
            assert_eq!(transaction_id, id);
        }
    }
}

/// Input of `roundtrip_modbus`.
#[derive(Debug, Arbitrary)]
struct RoundTripInput {
    request: RequestSpec,
    answer: AnswerSpec,
    transaction_id: u16,
    unit: u8,
}

/// Target `roundtrip_modbus`: a structured request and a fitting response
/// are encoded, framed as MBAP and RTU, and decoded back to themselves; the
/// client's check accepts the response.
pub fn roundtrip_modbus(data: &[u8]) {
    let Ok(input) = RoundTripInput::arbitrary_take_rest(Unstructured::new(data)) else {
        return;
    };
    let parts = input.request.parts();
    let Some(request) = input.request.request(&parts) else {
        return;
    };
    let header = MbapHeader {
        transaction_id: input.transaction_id,
        unit: UnitId(input.unit),
    };
    let mut wire = [0u8; mbap::MAX_ADU_LEN];
    let Ok(n) = mbap::encode(header, &request, &mut wire) else {
        // Only a request too large for one PDU fails to encode.
        assert!(request.encoded_len() > MAX_PDU_LEN, "{request:?} failed to encode");
        return;
    };
    let frame = mbap::decode(&wire[..n]).expect("valid").expect("whole");
    assert_eq!(frame.header, header);
    assert_eq!(Request::decode(frame.pdu), Ok(request));
    rtu_round_trip(UnitId(input.unit), &request, Direction::Request);

    let store = input.answer.store(&request);
    let groups = store.groups();
    let objects = input.answer.objects();
    let Some(response) = input.answer.response(&request, &store, &groups, &objects) else {
        return;
    };
    let Ok(n) = mbap::encode(header, &response, &mut wire) else {
        assert!(response.encoded_len() > MAX_PDU_LEN, "{response:?} failed to encode");
        return;
    };
    let frame = mbap::decode(&wire[..n]).expect("valid").expect("whole");
    match Expectation::new(&request).check(frame.pdu) {
        Ok(checked) => assert_eq!(checked, response),
        Err(e) => panic!("{response:?} does not answer {request:?}: {e}"),
    }
    rtu_round_trip(UnitId(input.unit), &response, Direction::Response);
}

fn rtu_round_trip<P: outpost_modbus_core::Encode + core::fmt::Debug>(unit: UnitId, pdu: &P, direction: Direction) {
    let mut wire = [0u8; rtu::MAX_ADU_LEN];
    let n = rtu::encode(unit, pdu, &mut wire).expect("fits RTU when it fits MBAP");
    let mut pdu_bytes = [0u8; MAX_PDU_LEN];
    let len = pdu.encode(&mut pdu_bytes).expect("encodes");
    let decoded = RtuDecoder::new(direction).decode(&wire[..n]);
    // RTU has no length field: codes without a length rule, and multi-word
    // diagnostics, are not framed (see frame::rtu); for those, whatever the
    // decoder makes of the bytes (even a shorter frame whose CRC happens to
    // match) is all it can know.
    if !rtu_framable(unit, &pdu_bytes[..len], direction) {
        return;
    }
    match decoded {
        Ok(Decoded::Frame {
            frame,
            skipped: 0,
            consumed,
        }) => {
            assert_eq!(consumed, n);
            assert_eq!(frame.unit, unit);
            assert_eq!(frame.pdu, &pdu_bytes[..len]);
        }
        other => panic!("{pdu:?} as RTU decoded to {other:?}"),
    }
}

/// Whether the RTU decoder is meant to frame this PDU on its own.
fn rtu_framable(unit: UnitId, pdu: &[u8], direction: Direction) -> bool {
    // No response comes from unit 0 (a broadcast is never answered).
    if direction == Direction::Response && unit.is_broadcast() {
        return false;
    }
    match pdu[0] & 0x7F {
        // Diagnostics: one data word on RTU.
        0x08 => pdu.len() == 5 || pdu[0] & 0x80 != 0,
        // Encapsulated interface: only Read Device Identification.
        0x2B => pdu[0] & 0x80 != 0 || pdu.get(1) == Some(&0x0E),
        0x01..=0x07 | 0x0B | 0x0C | 0x0F..=0x11 | 0x14..=0x18 => true,
        _ => pdu[0] & 0x80 != 0 && direction == Direction::Response,
    }
}
