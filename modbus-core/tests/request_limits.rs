//! Each quantity and address rule of the write requests, at its boundary,
//! as decoded from the wire.

use outpost_modbus_core::{DecodeError, RangeError, Request};

fn coils(start: u16, quantity: u16) -> Vec<u8> {
    let bytes = (quantity as usize).div_ceil(8);
    let mut pdu = vec![0x0F];
    pdu.extend(start.to_be_bytes());
    pdu.extend(quantity.to_be_bytes());
    pdu.push(bytes as u8);
    pdu.extend(std::iter::repeat_n(0x55, bytes));
    pdu
}

fn registers(start: u16, quantity: u16) -> Vec<u8> {
    let mut pdu = vec![0x10];
    pdu.extend(start.to_be_bytes());
    pdu.extend(quantity.to_be_bytes());
    pdu.push((2 * quantity) as u8);
    pdu.extend(std::iter::repeat_n(0x12, 2 * quantity as usize));
    pdu
}

fn read_write(write_start: u16, quantity: u16) -> Vec<u8> {
    let mut pdu = vec![0x17, 0, 0, 0, 1];
    pdu.extend(write_start.to_be_bytes());
    pdu.extend(quantity.to_be_bytes());
    pdu.push((2 * quantity) as u8);
    pdu.extend(std::iter::repeat_n(0x34, 2 * quantity as usize));
    pdu
}

fn quantity_error(pdu: &[u8]) -> Option<(u16, u16)> {
    match Request::decode(pdu) {
        Err(DecodeError::Range {
            error: RangeError::Quantity { quantity, max, .. },
            ..
        }) => Some((quantity, max)),
        _ => None,
    }
}

fn overflows(pdu: &[u8]) -> bool {
    matches!(
        Request::decode(pdu),
        Err(DecodeError::Range {
            error: RangeError::Overflow { .. },
            ..
        })
    )
}

#[test]
fn write_quantities_are_one_to_their_maximum() {
    // The request for a start and quantity, and the quantity's maximum.
    type Make = fn(u16, u16) -> Vec<u8>;
    let cases: [(Make, u16); 3] = [(coils, 1968), (registers, 123), (read_write, 121)];
    for (make, max) in cases {
        assert!(Request::decode(&make(0, 1)).is_ok());
        assert!(Request::decode(&make(0, max)).is_ok(), "{max}");
        assert_eq!(quantity_error(&make(0, 0)), Some((0, max)));
        if let Some(pdu) = Some(make(0, max + 1)).filter(|p| p.len() <= 253) {
            assert_eq!(quantity_error(&pdu), Some((max + 1, max)));
        }
    }
}

#[test]
fn writes_may_reach_the_last_address_and_not_past_it() {
    for make in [coils, registers, read_write] {
        assert!(Request::decode(&make(65535, 1)).is_ok());
        assert!(Request::decode(&make(65534, 2)).is_ok());
        assert!(overflows(&make(65535, 2)));
        assert!(overflows(&make(65534, 3)));
    }
}

#[test]
fn diagnostics_data_is_whole_words() {
    assert!(Request::decode(&[0x08, 0x00, 0x00, 0x12, 0x34]).is_ok());
    assert_eq!(
        Request::decode(&[0x08, 0x00, 0x00, 0x12, 0x34, 0x56]),
        Err(DecodeError::ByteCount {
            function: 0x08,
            byte_count: 3,
            expected: 4
        })
    );
}
