//! Each byte count and size rule of the answers, at its boundary, decoding
//! and encoding.

use outpost_modbus_core::{Bits, CommEventLog, DecodeError, EncodeError, Response, Words};

fn answer(function: u8, n: usize) -> Vec<u8> {
    let mut pdu = vec![function, n as u8];
    pdu.extend(std::iter::repeat_n(0x5A, n));
    pdu
}

fn byte_count(pdu: &[u8]) -> Option<(usize, usize)> {
    match Response::decode(pdu) {
        Err(DecodeError::ByteCount {
            byte_count, expected, ..
        }) => Some((byte_count, expected)),
        _ => None,
    }
}

#[test]
fn coil_answers_carry_1_to_250_bytes() {
    for function in [0x01, 0x02] {
        for n in 1..=250 {
            let pdu = answer(function, n);
            let Ok(r) = Response::decode(&pdu) else {
                panic!("{function}: {n} bytes refused");
            };
            assert_eq!(r.bits().map(|b| b.len()), Some(8 * n));
        }
        assert_eq!(byte_count(&answer(function, 0)), Some((0, 1)));
        assert_eq!(byte_count(&answer(function, 251)), Some((251, 250)));
    }
}

#[test]
fn register_answers_carry_2_to_250_bytes_in_pairs() {
    for function in [0x03, 0x04, 0x17] {
        for n in 0..=251usize {
            let pdu = answer(function, n);
            let decoded = Response::decode(&pdu);
            if (2..=250).contains(&n) && n.is_multiple_of(2) {
                assert_eq!(decoded.ok().and_then(|r| r.registers()).map(|w| w.len()), Some(n / 2));
            } else {
                let expected = (n & !1).clamp(2, 250);
                assert_eq!(byte_count(&answer(function, n)), Some((n, expected)), "{function}: {n}");
            }
        }
    }
}

fn event_log(n: usize) -> Vec<u8> {
    let mut pdu = vec![0x0C, n as u8, 0x00, 0x00, 0x01, 0x08, 0x01, 0x21];
    pdu.extend(std::iter::repeat_n(0x80, n.saturating_sub(6)));
    pdu
}

#[test]
fn an_event_log_holds_0_to_64_events() {
    for n in 6..=70 {
        let pdu = event_log(n);
        let Ok(Response::GetCommEventLog(log)) = Response::decode(&pdu) else {
            panic!("{n} refused");
        };
        assert_eq!(log.events.len(), n - 6);
    }
    assert_eq!(byte_count(&event_log(71)), Some((71, 6)));
    assert_eq!(byte_count(&[0x0C, 5, 0, 0, 0, 0, 0]), Some((5, 6)));

    let events = [0x40u8; 65];
    let mut buf = [0u8; 253];
    let log = |n| {
        Response::GetCommEventLog(CommEventLog {
            status: 0,
            event_count: 1,
            message_count: 2,
            events: &events[..n],
        })
    };
    assert_eq!(log(64).encode(&mut buf), Ok(72));
    assert!(matches!(log(65).encode(&mut buf), Err(EncodeError::PduTooLarge { .. })));
}

fn fifo(byte_count: u16, count: u16, values: usize) -> Vec<u8> {
    let mut pdu = vec![0x18];
    pdu.extend(byte_count.to_be_bytes());
    pdu.extend(count.to_be_bytes());
    pdu.extend(std::iter::repeat_n(0x11, 2 * values));
    pdu
}

#[test]
fn a_fifo_answer_counts_its_values_twice_and_holds_at_most_31() {
    for count in 0..=31u16 {
        let pdu = fifo(2 + 2 * count, count, count as usize);
        let Ok(Response::ReadFifoQueue(v)) = Response::decode(&pdu) else {
            panic!("{count} refused");
        };
        assert_eq!(v.len(), count as usize);
    }
    assert_eq!(byte_count(&fifo(7, 3, 3)), Some((7, 8)));
    assert_eq!(byte_count(&fifo(9, 3, 3)), Some((9, 8)));
    assert!(Response::decode(&fifo(66, 32, 32)).is_err());

    let values = [7u16; 32];
    let mut buf = [0u8; 253];
    assert_eq!(
        Response::ReadFifoQueue(Words::from_slice(&values[..31])).encode(&mut buf),
        Ok(67)
    );
    assert!(matches!(
        Response::ReadFifoQueue(Words::from_slice(&values)).encode(&mut buf),
        Err(EncodeError::PduTooLarge { .. })
    ));
}

#[test]
fn register_answers_encode_up_to_125_values() {
    let values = [7u16; 126];
    let mut buf = [0u8; 253];
    assert_eq!(
        Response::ReadHoldingRegisters(Words::from_slice(&values[..125])).encode(&mut buf),
        Ok(252)
    );
    assert!(matches!(
        Response::ReadHoldingRegisters(Words::from_slice(&values)).encode(&mut buf),
        Err(EncodeError::PduTooLarge { .. })
    ));
    let bits = [true; 8];
    assert!(Response::ReadCoils(Bits::from_bools(&bits[..0]))
        .encode(&mut buf)
        .is_err());
}

#[test]
fn function_0_and_a_bare_exception_bit_are_no_answers() {
    assert_eq!(
        Response::decode(&[0x00, 0x01]),
        Err(DecodeError::InvalidFunction { function: 0x00 })
    );
    assert_eq!(
        Response::decode(&[0x80, 0x01]),
        Err(DecodeError::InvalidFunction { function: 0x80 })
    );
    assert!(Response::decode(&[0x81, 0x01]).is_ok());
}
