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

/// File sub-requests name files 1 to 65535 and records 0 to 9999, both in
/// what is built and in what is decoded.
#[test]
fn file_references_stay_within_the_specifications_ranges() {
    use outpost_modbus_core::{FileReads, FileRecord, FileRecordRef, FileWrites, Words};
    let read = |file, record| FileRecordRef {
        file,
        record,
        length: 1,
    };
    assert!(FileReads::new(&[read(1, 0)]).is_ok());
    assert!(FileReads::new(&[read(65535, 9999)]).is_ok());
    assert_eq!(
        FileReads::new(&[read(0, 0)]).err(),
        Some(RangeError::Value {
            field: "file number",
            value: 0
        })
    );
    assert_eq!(
        FileReads::new(&[read(1, 10_000)]).err(),
        Some(RangeError::Value {
            field: "record number",
            value: 10_000
        })
    );
    let reads = [read(4, 1), read(3, 9)];
    let reads = FileReads::new(&reads).unwrap();
    assert_eq!((reads.len(), reads.is_empty()), (2, false));

    let values = [0x06AFu16];
    let write = |file, record| FileRecord {
        file,
        record,
        values: Words::from_slice(&values),
    };
    assert!(FileWrites::new(&[write(65535, 9999)]).is_ok());
    assert!(FileWrites::new(&[write(0, 1)]).is_err());
    assert!(FileWrites::new(&[write(1, 10_000)]).is_err());
    // On the wire: file 0 and record 10 000 are refused.
    let file_zero = [0x14, 0x07, 0x06, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01];
    assert!(Request::decode(&file_zero).is_err());
    let record_over = [0x14, 0x07, 0x06, 0x00, 0x01, 0x27, 0x10, 0x00, 0x01];
    assert!(Request::decode(&record_over).is_err());
    let record_last = [0x14, 0x07, 0x06, 0x00, 0x01, 0x27, 0x0F, 0x00, 0x01];
    assert!(Request::decode(&record_last).is_ok());
}

/// A diagnostics PDU carries at most 125 data words (253 bytes less the
/// function code and sub-function).
#[test]
fn diagnostics_carry_at_most_125_words() {
    use outpost_modbus_core::{Diagnostic, DiagnosticCode, Words};
    assert_eq!(Diagnostic::MAX_WORDS, 125);
    let words = [0u16; 126];
    assert!(Diagnostic::new(DiagnosticCode::RETURN_QUERY_DATA, Words::from_slice(&words[..125])).is_ok());
    assert!(Diagnostic::new(DiagnosticCode::RETURN_QUERY_DATA, Words::from_slice(&words)).is_err());
}

/// A coil answer holds up to 2000 coils (250 bytes); one more does not fit.
#[test]
fn coil_answers_hold_up_to_2000_coils() {
    use outpost_modbus_core::{Bits, EncodeError};
    let values = [true; 2001];
    let mut buf = [0u8; 253];
    let fits = Response::ReadCoils(Bits::from_bools(&values[..2000]));
    assert_eq!(fits.encode(&mut buf), Ok(252));
    let over = Response::ReadCoils(Bits::from_bools(&values));
    assert!(matches!(over.encode(&mut buf), Err(EncodeError::PduTooLarge { .. })));
}
