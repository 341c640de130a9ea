//! Wire values of the small types, and what a decode error says.

use outpost_modbus_core::{
    CoilRange, DecodeError, ExceptionCode, FunctionCode, RangeError, RegisterRange, Request, Response, UnitId,
};

#[test]
fn every_byte_survives_the_trip_through_each_code_type() {
    for b in 0..=255u8 {
        assert_eq!(u8::from(ExceptionCode::from_u8(b)), b);
        assert_eq!(ExceptionCode::from(b).value(), b);
        assert_eq!(u8::from(FunctionCode::from_u8(b)), b);
        assert_eq!(UnitId::from(b).value(), b);
        assert_eq!(UnitId::from(b), UnitId(b));
    }
}

#[test]
fn ranges_may_end_at_the_last_address_and_not_past_it() {
    assert_eq!(RegisterRange::new(65535, 1).map(|r| r.last()), Ok(65535));
    assert_eq!(RegisterRange::new(65411, 125).map(|r| r.last()), Ok(65535));
    assert!(matches!(
        RegisterRange::new(65412, 125),
        Err(RangeError::Overflow { .. })
    ));
    assert_eq!(CoilRange::new(63536, 2000).map(|r| r.last()), Ok(65535));
    assert!(matches!(CoilRange::new(63537, 2000), Err(RangeError::Overflow { .. })));
}

#[test]
fn decode_errors_name_their_function_and_the_exception_to_answer() {
    let e = Request::decode(&[]).unwrap_err();
    assert_eq!(e.function(), None);
    for invalid in [0x00, 0x80, 0x83, 0xFF] {
        let e = Request::decode(&[invalid, 0, 0]).unwrap_err();
        assert_eq!(e, DecodeError::InvalidFunction { function: invalid });
        assert_eq!(e.function(), Some(invalid));
        assert_eq!(e.exception_code(), ExceptionCode::IllegalFunction);
    }
    let e = Request::decode(&[0x03, 0x00, 0x00]).unwrap_err();
    assert_eq!(e.function(), Some(0x03));
    assert_eq!(e.exception_code(), ExceptionCode::IllegalDataValue);
    let e = Request::decode(&[0x03, 0xFF, 0xFF, 0x00, 0x02]).unwrap_err();
    assert_eq!(e.function(), Some(0x03));
    assert_eq!(e.exception_code(), ExceptionCode::IllegalDataAddress);
    let e = Request::decode(&[0x10, 0x00, 0x01, 0x00, 0x01, 0x02, 0x00]).unwrap_err();
    assert_eq!(e.function(), Some(0x10));
    // A device identification answer with a byte after its last object.
    let e = Response::decode(&[0x2B, 0x0E, 0x01, 0x01, 0x00, 0x00, 0x01, 0x00, 0x01, b'V', 0xEE]).unwrap_err();
    assert_eq!(
        e,
        DecodeError::TrailingBytes {
            function: 0x2B,
            extra: 1
        }
    );
}
