//! The acquisition messages: what is encoded decodes to itself; bad bytes
//! get a typed error and never a panic.

use outpost_acquisition::message::{
    Ack, Birth, Message, MessageError, PointInfo, Rebirth, Samples, MAX_NAME_LEN, MAX_POINTS, MAX_SAMPLES,
};
use outpost_acquisition::{Quality, Sample};
use outpost_modbus_core::access::Table;
use outpost_modbus_core::scan::{Encoding, Point, Value, WordOrder};
use outpost_modbus_core::{ExceptionCode, UnitId};
use proptest::prelude::*;

fn bytes(message: &Message) -> Vec<u8> {
    let mut out = Vec::new();
    message.encode(&mut out);
    out
}

fn every_encoding() -> Vec<Point> {
    let r = |a, e| Point::new(Table::HoldingRegisters, a, e).unwrap();
    vec![
        Point::new(Table::Coils, 1, Encoding::Bit).unwrap(),
        Point::new(Table::DiscreteInputs, 2, Encoding::Bit).unwrap(),
        r(3, Encoding::RegisterBit(15)),
        Point::new(Table::InputRegisters, 4, Encoding::U16).unwrap(),
        r(5, Encoding::I16),
        r(6, Encoding::U32(WordOrder::HighFirst)),
        r(8, Encoding::U32(WordOrder::LowFirst)),
        r(10, Encoding::I32(WordOrder::HighFirst)),
        r(12, Encoding::I32(WordOrder::LowFirst)),
        r(14, Encoding::F32(WordOrder::HighFirst)),
        r(65534, Encoding::F32(WordOrder::LowFirst)),
    ]
}

fn birth() -> Birth {
    Birth {
        group: 7,
        epoch: 0x0102_0304_0506_0708,
        next_seq: 42,
        device: "plc-1".into(),
        unit: UnitId(17),
        interval_ms: 250,
        name: "boiler ✓".into(),
        points: every_encoding()
            .into_iter()
            .enumerate()
            .map(|(i, point)| PointInfo {
                name: format!("p{i}"),
                point,
                exact: i % 2 == 0,
            })
            .collect(),
    }
}

fn sample(seq: u64, quality: Quality, value: Option<Value>, snapshot: bool) -> Sample {
    Sample {
        group: 7,
        seq,
        point: 3,
        at_ms: 1_700_000_000_123,
        quality,
        value,
        snapshot,
    }
}

fn every_sample() -> Vec<Sample> {
    vec![
        sample(1, Quality::Good, Some(Value::Bool(true)), true),
        sample(2, Quality::Good, Some(Value::Bool(false)), false),
        sample(3, Quality::Stale, Some(Value::U16(0xBEEF)), false),
        sample(4, Quality::CommFailure, Some(Value::I16(-300)), false),
        sample(
            5,
            Quality::DeviceException(ExceptionCode::ServerDeviceBusy),
            Some(Value::U32(0xDEAD_BEEF)),
            false,
        ),
        sample(6, Quality::Good, Some(Value::I32(-70_000)), false),
        sample(7, Quality::Good, Some(Value::F32(-2.5)), true),
        sample(u64::MAX, Quality::CommFailure, None, true),
    ]
}

#[test]
fn every_message_decodes_to_itself() {
    let messages = [
        Message::Birth(birth()),
        Message::Samples(Samples {
            group: 7,
            epoch: 9,
            samples: every_sample(),
        }),
        Message::Samples(Samples {
            group: 7,
            epoch: 9,
            samples: vec![],
        }),
        Message::Ack(Ack {
            group: 65535,
            epoch: 9,
            upto: 1 << 40,
        }),
        Message::Rebirth(Rebirth { group: 3 }),
    ];
    for message in messages {
        assert_eq!(Message::decode(&bytes(&message)), Ok(message.clone()), "{message:?}");
    }
}

#[test]
fn the_wire_bytes_of_an_ack_and_a_rebirth() {
    let ack = bytes(&Message::Ack(Ack {
        group: 0x0102,
        epoch: 3,
        upto: 0x0405,
    }));
    assert_eq!(ack, [3, 1, 2, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 4, 5]);
    assert_eq!(bytes(&Message::Rebirth(Rebirth { group: 0x0A0B })), [4, 0x0A, 0x0B]);
}

#[test]
fn a_sample_on_the_wire() {
    let message = Message::Samples(Samples {
        group: 1,
        epoch: 2,
        samples: vec![sample(
            3,
            Quality::DeviceException(ExceptionCode::IllegalDataAddress),
            Some(Value::U16(0x0102)),
            true,
        )],
    });
    let mut expected = vec![2, 0, 1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 1];
    expected.extend_from_slice(&3u64.to_be_bytes());
    expected.extend_from_slice(&[0, 3]);
    expected.extend_from_slice(&1_700_000_000_123u64.to_be_bytes());
    expected.extend_from_slice(&[3, 2, 1, 2, 1, 2]);
    assert_eq!(bytes(&message), expected);
}

#[test]
fn bad_bytes_get_a_typed_error() {
    let decode = |b: &[u8]| Message::decode(b).unwrap_err();
    assert_eq!(decode(&[]), MessageError::Truncated("kind"));
    assert_eq!(decode(&[9]), MessageError::UnknownKind(9));
    assert_eq!(decode(&[4, 0]), MessageError::Truncated("group"));
    assert_eq!(decode(&[4, 0, 1, 0]), MessageError::Trailing(1));
    assert_eq!(decode(&[3, 0, 1, 0, 0, 0]), MessageError::Truncated("epoch"));
    // A count the bytes left cannot hold is refused before allocating.
    let mut samples = vec![2, 0, 1];
    samples.extend_from_slice(&9u64.to_be_bytes());
    samples.extend_from_slice(&1000u16.to_be_bytes());
    assert_eq!(decode(&samples), MessageError::Truncated("samples"));
    // Two samples announced, one sample's bytes there.
    let mut short = samples[..11].to_vec();
    short.extend_from_slice(&2u16.to_be_bytes());
    short.extend_from_slice(&one_sample(&[0, 0, 0])[13..]);
    assert_eq!(decode(&short), MessageError::Truncated("samples"));
    // And one byte short of two.
    let mut two = short.clone();
    two.extend_from_slice(&one_sample(&[0, 0, 0])[13..33]);
    assert_eq!(decode(&two), MessageError::Truncated("samples"));
    two.push(0);
    assert!(Message::decode(&two).is_ok());
    let mut too_many = samples[..11].to_vec();
    too_many.extend_from_slice(&((MAX_SAMPLES + 1) as u16).to_be_bytes());
    assert_eq!(
        decode(&too_many),
        MessageError::TooLong {
            what: "samples",
            len: MAX_SAMPLES + 1,
            max: MAX_SAMPLES
        }
    );
}

/// The bytes of a one-sample message with its quality, flags and value
/// bytes replaced.
fn one_sample(tail: &[u8]) -> Vec<u8> {
    let mut b = vec![2, 0, 1];
    b.extend_from_slice(&9u64.to_be_bytes());
    b.extend_from_slice(&1u16.to_be_bytes());
    b.extend_from_slice(&5u64.to_be_bytes());
    b.extend_from_slice(&0u16.to_be_bytes());
    b.extend_from_slice(&7u64.to_be_bytes());
    b.extend_from_slice(tail);
    b
}

#[test]
fn bad_sample_fields_are_refused() {
    let decode = |tail: &[u8]| Message::decode(&one_sample(tail));
    assert!(decode(&[0, 0, 0]).is_ok());
    assert_eq!(decode(&[4, 0, 0]), Err(MessageError::Invalid("quality")));
    assert_eq!(decode(&[0, 2, 0]), Err(MessageError::Invalid("flags")));
    assert_eq!(decode(&[0, 0, 7]), Err(MessageError::Invalid("value")));
    assert_eq!(decode(&[0, 0, 1, 2]), Err(MessageError::Invalid("bit")));
    assert_eq!(decode(&[0, 0, 4, 1, 2]), Err(MessageError::Truncated("value")));
    // An exception's code takes the place of the flags: the value is short.
    assert_eq!(decode(&[3, 5, 0]), Err(MessageError::Truncated("value")));
    assert_eq!(
        decode(&[0, 0, 6, 0x3F, 0xC0, 0, 0]).map(|m| match m {
            Message::Samples(s) => s.samples[0].value,
            _ => None,
        }),
        Ok(Some(Value::F32(1.5)))
    );
}

/// A birth of one point with its name, table and encoding bytes replaced.
fn one_point(name: &[u8], table: u8, address: u16, encoding: [u8; 2]) -> Vec<u8> {
    let mut b = vec![1, 0, 1];
    b.extend_from_slice(&9u64.to_be_bytes());
    b.extend_from_slice(&0u64.to_be_bytes());
    b.extend_from_slice(&[1, b'd']);
    b.push(1);
    b.extend_from_slice(&1000u32.to_be_bytes());
    b.extend_from_slice(&[1, b'g']);
    b.extend_from_slice(&1u16.to_be_bytes());
    b.push(name.len() as u8);
    b.extend_from_slice(name);
    b.push(table);
    b.extend_from_slice(&address.to_be_bytes());
    b.extend_from_slice(&encoding);
    b.push(1);
    b
}

#[test]
fn bad_birth_fields_are_refused() {
    let decode = |name: &[u8], table, address, encoding| Message::decode(&one_point(name, table, address, encoding));
    assert!(decode(b"p", 2, 0, [2, 0]).is_ok());
    assert!(decode(&[b'x'; MAX_NAME_LEN], 2, 0, [2, 0]).is_ok());
    assert!(decode(b"p", 2, 0, [4, 1]).is_ok());
    assert_eq!(decode(b"p", 4, 0, [2, 0]), Err(MessageError::Invalid("table")));
    assert_eq!(decode(b"p", 2, 0, [7, 0]), Err(MessageError::Invalid("encoding")));
    assert_eq!(decode(b"p", 2, 0, [2, 1]), Err(MessageError::Invalid("encoding")));
    assert_eq!(decode(b"p", 2, 0, [0, 1]), Err(MessageError::Invalid("encoding")));
    assert_eq!(decode(b"p", 2, 0, [3, 1]), Err(MessageError::Invalid("encoding")));
    assert_eq!(decode(b"p", 2, 0, [4, 2]), Err(MessageError::Invalid("encoding")));
    assert_eq!(decode(b"p", 2, 0, [5, 2]), Err(MessageError::Invalid("encoding")));
    assert_eq!(decode(b"p", 2, 0, [6, 2]), Err(MessageError::Invalid("encoding")));
    // A register encoding on a coil, a bit past 15, a value past 65535.
    assert_eq!(decode(b"p", 0, 0, [2, 0]), Err(MessageError::Invalid("point")));
    assert_eq!(decode(b"p", 2, 0, [1, 16]), Err(MessageError::Invalid("point")));
    assert_eq!(decode(b"p", 2, 65535, [4, 0]), Err(MessageError::Invalid("point")));
    assert_eq!(decode(&[0xFF], 2, 0, [2, 0]), Err(MessageError::Invalid("point name")));
    let mut flags = one_point(b"p", 2, 0, [2, 0]);
    let last = flags.len() - 1;
    flags[last] = 0;
    assert!(Message::decode(&flags).is_ok());
    flags[last] = 2;
    assert_eq!(Message::decode(&flags), Err(MessageError::Invalid("flags")));
    flags.pop();
    assert_eq!(Message::decode(&flags), Err(MessageError::Truncated("flags")));
    let long = vec![b'x'; MAX_NAME_LEN + 1];
    assert_eq!(
        decode(&long, 2, 0, [2, 0]),
        Err(MessageError::TooLong {
            what: "point name",
            len: MAX_NAME_LEN + 1,
            max: MAX_NAME_LEN
        })
    );
    let mut many = one_point(b"p", 2, 0, [2, 0]);
    many[28..30].copy_from_slice(&((MAX_POINTS + 1) as u16).to_be_bytes());
    assert!(matches!(
        Message::decode(&many),
        Err(MessageError::TooLong { what: "points", .. })
    ));
}

#[test]
fn long_names_and_lists_are_cut_to_what_decodes() {
    let mut b = birth();
    b.points.truncate(1);
    b.points[0].name = "x".repeat(300);
    let mut out = Vec::new();
    Message::Birth(b).encode(&mut out);
    // The name was cut to 255 bytes on the way: past the decoder's limit.
    assert!(matches!(
        Message::decode(&out),
        Err(MessageError::TooLong {
            what: "point name",
            len: 255,
            ..
        })
    ));
    let samples = Samples {
        group: 1,
        epoch: 1,
        samples: vec![sample(1, Quality::Good, None, false); MAX_SAMPLES + 5],
    };
    let mut out = Vec::new();
    Message::Samples(samples).encode(&mut out);
    let Ok(Message::Samples(decoded)) = Message::decode(&out) else {
        panic!()
    };
    assert_eq!(decoded.samples.len(), MAX_SAMPLES);
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = Message::decode(&b);
    }

    #[test]
    fn samples_decode_to_themselves(
        specs in proptest::collection::vec((any::<u64>(), any::<u16>(), any::<u64>(), 0u8..4, any::<u8>(), any::<bool>(), 0u8..7, any::<u32>()), 0..20)
    ) {
        let samples: Vec<Sample> = specs.into_iter().map(|(seq, point, at_ms, q, code, snapshot, tag, raw)| Sample {
            group: 5,
            seq,
            point: usize::from(point),
            at_ms,
            quality: match q {
                0 => Quality::Good,
                1 => Quality::Stale,
                2 => Quality::CommFailure,
                _ => Quality::DeviceException(ExceptionCode::from_u8(code)),
            },
            value: match tag {
                0 => None,
                1 => Some(Value::Bool(raw & 1 == 1)),
                2 => Some(Value::U16(raw as u16)),
                3 => Some(Value::I16(raw as i16)),
                4 => Some(Value::U32(raw)),
                5 => Some(Value::I32(raw as i32)),
                // Compared bit for bit below: NaN included.
                _ => Some(Value::F32(f32::from_bits(raw & 0x7F7F_FFFF))),
            },
            snapshot,
        }).collect();
        let message = Message::Samples(Samples { group: 5, epoch: 1, samples });
        prop_assert_eq!(Message::decode(&bytes(&message)), Ok(message));
    }
}
