//! Byte-exact checks against the worked examples of the Modbus Application
//! Protocol Specification V1.1b3 (section 6, one per function code), the
//! exception example of section 7, and the CRC example of Modbus over Serial
//! Line V1.02.

use outpost_modbus_core::frame::rtu::{self, Decoded, Direction, RtuDecoder};
use outpost_modbus_core::{
    crc16, Bits, CoilRange, CoilWrite, CommEventLog, DeviceIdentification, DeviceObject, DeviceObjects, Diagnostic,
    DiagnosticCode, ExceptionCode, Expectation, FileReadResponse, FileReads, FileRecord, FileRecordRef, FileWrites,
    FunctionCode, ReadDeviceIdCode, ReadWriteRegisters, RegisterRange, RegisterWrite, Request, Response, UnitId, Words,
};

/// The request encodes to `bytes` and `bytes` decode to the request.
fn request_vector(request: Request<'_>, bytes: &[u8]) {
    let mut buf = [0u8; 256];
    let n = request.encode(&mut buf).expect("encodes");
    assert_eq!(&buf[..n], bytes, "encoding of {request:?}");
    assert_eq!(request.encoded_len(), bytes.len());
    assert_eq!(Request::decode(bytes).expect("decodes"), request);
}

/// The response encodes to `bytes`, and `bytes` decode and check against the
/// request to the response.
fn response_vector(request: &Request<'_>, response: Response<'_>, bytes: &[u8]) {
    let mut buf = [0u8; 256];
    let n = response.encode(&mut buf).expect("encodes");
    assert_eq!(&buf[..n], bytes, "encoding of {response:?}");
    assert_eq!(response.encoded_len(), bytes.len());
    assert_eq!(
        Expectation::new(request).check(bytes).expect("fits the request"),
        response
    );
}

#[test]
fn fc01_read_coils() {
    let request = Request::ReadCoils(CoilRange::new(19, 19).unwrap());
    request_vector(request, &[0x01, 0x00, 0x13, 0x00, 0x13]);
    // Coils 20..38: CD 6B 05 (status of 27..20, 35..28, then 38..36 padded).
    let bits = [
        true, false, true, true, false, false, true, true, true, true, false, true, false, true, true, false, true,
        false, true,
    ];
    response_vector(
        &request,
        Response::ReadCoils(Bits::from_bools(&bits)),
        &[0x01, 0x03, 0xCD, 0x6B, 0x05],
    );
}

#[test]
fn fc02_read_discrete_inputs() {
    let request = Request::ReadDiscreteInputs(CoilRange::new(196, 22).unwrap());
    request_vector(request, &[0x02, 0x00, 0xC4, 0x00, 0x16]);
    let packed = [0xAC, 0xDB, 0x35];
    let bits = Bits::from_packed(&packed, 22).unwrap();
    response_vector(
        &request,
        Response::ReadDiscreteInputs(bits),
        &[0x02, 0x03, 0xAC, 0xDB, 0x35],
    );
    // Inputs 218..213 of the last byte: 11 0101, two padding zeros.
    let Response::ReadDiscreteInputs(decoded) = Expectation::new(&request)
        .check(&[0x02, 0x03, 0xAC, 0xDB, 0x35])
        .unwrap()
    else {
        panic!()
    };
    assert_eq!(decoded.len(), 22);
    assert_eq!(decoded.get(16), Some(true));
    assert_eq!(decoded.get(17), Some(false));
}

#[test]
fn fc03_read_holding_registers() {
    let request = Request::ReadHoldingRegisters(RegisterRange::new(107, 3).unwrap());
    request_vector(request, &[0x03, 0x00, 0x6B, 0x00, 0x03]);
    response_vector(
        &request,
        Response::ReadHoldingRegisters(Words::from_slice(&[555, 0, 100])),
        &[0x03, 0x06, 0x02, 0x2B, 0x00, 0x00, 0x00, 0x64],
    );
}

#[test]
fn fc04_read_input_registers() {
    let request = Request::ReadInputRegisters(RegisterRange::new(8, 1).unwrap());
    request_vector(request, &[0x04, 0x00, 0x08, 0x00, 0x01]);
    response_vector(
        &request,
        Response::ReadInputRegisters(Words::from_slice(&[10])),
        &[0x04, 0x02, 0x00, 0x0A],
    );
}

#[test]
fn fc05_write_single_coil() {
    let request = Request::WriteSingleCoil {
        address: 172,
        value: true,
    };
    request_vector(request, &[0x05, 0x00, 0xAC, 0xFF, 0x00]);
    response_vector(
        &request,
        Response::WriteSingleCoil {
            address: 172,
            value: true,
        },
        &[0x05, 0x00, 0xAC, 0xFF, 0x00],
    );
}

#[test]
fn fc06_write_single_register() {
    let request = Request::WriteSingleRegister { address: 1, value: 3 };
    request_vector(request, &[0x06, 0x00, 0x01, 0x00, 0x03]);
    response_vector(
        &request,
        Response::WriteSingleRegister { address: 1, value: 3 },
        &[0x06, 0x00, 0x01, 0x00, 0x03],
    );
}

#[test]
fn fc07_read_exception_status() {
    request_vector(Request::ReadExceptionStatus, &[0x07]);
    response_vector(
        &Request::ReadExceptionStatus,
        Response::ReadExceptionStatus(0x6D),
        &[0x07, 0x6D],
    );
}

#[test]
fn fc08_diagnostics_return_query_data() {
    let data = [0xA537];
    let d = Diagnostic::new(DiagnosticCode::RETURN_QUERY_DATA, Words::from_slice(&data)).unwrap();
    request_vector(Request::Diagnostics(d), &[0x08, 0x00, 0x00, 0xA5, 0x37]);
    response_vector(
        &Request::Diagnostics(d),
        Response::Diagnostics(d),
        &[0x08, 0x00, 0x00, 0xA5, 0x37],
    );
}

#[test]
fn fc0b_get_comm_event_counter() {
    request_vector(Request::GetCommEventCounter, &[0x0B]);
    response_vector(
        &Request::GetCommEventCounter,
        Response::GetCommEventCounter {
            status: 0xFFFF,
            event_count: 0x0108,
        },
        &[0x0B, 0xFF, 0xFF, 0x01, 0x08],
    );
}

#[test]
fn fc0c_get_comm_event_log() {
    request_vector(Request::GetCommEventLog, &[0x0C]);
    response_vector(
        &Request::GetCommEventLog,
        Response::GetCommEventLog(CommEventLog {
            status: 0,
            event_count: 0x0108,
            message_count: 0x0121,
            events: &[0x20, 0x00],
        }),
        &[0x0C, 0x08, 0x00, 0x00, 0x01, 0x08, 0x01, 0x21, 0x20, 0x00],
    );
}

#[test]
fn fc0f_write_multiple_coils() {
    // Coils 20..29: CD 01 (1100 1101, then 01).
    let values = [true, false, true, true, false, false, true, true, true, false];
    let request = Request::WriteMultipleCoils(CoilWrite::new(19, Bits::from_bools(&values)).unwrap());
    request_vector(request, &[0x0F, 0x00, 0x13, 0x00, 0x0A, 0x02, 0xCD, 0x01]);
    response_vector(
        &request,
        Response::WriteMultipleCoils {
            start: 19,
            quantity: 10,
        },
        &[0x0F, 0x00, 0x13, 0x00, 0x0A],
    );
}

#[test]
fn fc10_write_multiple_registers() {
    let values = [0x000A, 0x0102];
    let request = Request::WriteMultipleRegisters(RegisterWrite::new(1, Words::from_slice(&values)).unwrap());
    request_vector(request, &[0x10, 0x00, 0x01, 0x00, 0x02, 0x04, 0x00, 0x0A, 0x01, 0x02]);
    response_vector(
        &request,
        Response::WriteMultipleRegisters { start: 1, quantity: 2 },
        &[0x10, 0x00, 0x01, 0x00, 0x02],
    );
}

#[test]
fn fc11_report_server_id() {
    request_vector(Request::ReportServerId, &[0x11]);
    // Device specific: server id 0x42, run indicator ON, then "v1".
    response_vector(
        &Request::ReportServerId,
        Response::ReportServerId(&[0x42, 0xFF, b'v', b'1']),
        &[0x11, 0x04, 0x42, 0xFF, b'v', b'1'],
    );
}

#[test]
fn fc14_read_file_record() {
    let refs = [
        FileRecordRef {
            file: 4,
            record: 1,
            length: 2,
        },
        FileRecordRef {
            file: 3,
            record: 9,
            length: 2,
        },
    ];
    let request = Request::ReadFileRecord(FileReads::new(&refs).unwrap());
    request_vector(
        request,
        &[
            0x14, 0x0E, 0x06, 0x00, 0x04, 0x00, 0x01, 0x00, 0x02, 0x06, 0x00, 0x03, 0x00, 0x09, 0x00, 0x02,
        ],
    );
    let g1 = [0x0DFE, 0x0020];
    let g2 = [0x33CD, 0x0040];
    let groups = [Words::from_slice(&g1), Words::from_slice(&g2)];
    response_vector(
        &request,
        Response::ReadFileRecord(FileReadResponse::new(&groups).unwrap()),
        &[
            0x14, 0x0C, 0x05, 0x06, 0x0D, 0xFE, 0x00, 0x20, 0x05, 0x06, 0x33, 0xCD, 0x00, 0x40,
        ],
    );
}

#[test]
fn fc15_write_file_record() {
    let values = [0x06AF, 0x04BE, 0x100D];
    let groups = [FileRecord {
        file: 4,
        record: 7,
        values: Words::from_slice(&values),
    }];
    let writes = FileWrites::new(&groups).unwrap();
    let bytes = [
        0x15, 0x0D, 0x06, 0x00, 0x04, 0x00, 0x07, 0x00, 0x03, 0x06, 0xAF, 0x04, 0xBE, 0x10, 0x0D,
    ];
    request_vector(Request::WriteFileRecord(writes), &bytes);
    response_vector(
        &Request::WriteFileRecord(writes),
        Response::WriteFileRecord(writes),
        &bytes,
    );
}

#[test]
fn fc16_mask_write_register() {
    let request = Request::MaskWriteRegister {
        address: 4,
        and_mask: 0x00F2,
        or_mask: 0x0025,
    };
    request_vector(request, &[0x16, 0x00, 0x04, 0x00, 0xF2, 0x00, 0x25]);
    response_vector(
        &request,
        Response::MaskWriteRegister {
            address: 4,
            and_mask: 0x00F2,
            or_mask: 0x0025,
        },
        &[0x16, 0x00, 0x04, 0x00, 0xF2, 0x00, 0x25],
    );
}

#[test]
fn fc17_read_write_multiple_registers() {
    let values = [0x00FF, 0x00FF, 0x00FF];
    let request = Request::ReadWriteMultipleRegisters(ReadWriteRegisters {
        read: RegisterRange::new(3, 6).unwrap(),
        write: RegisterWrite::new(14, Words::from_slice(&values)).unwrap(),
    });
    request_vector(
        request,
        &[
            0x17, 0x00, 0x03, 0x00, 0x06, 0x00, 0x0E, 0x00, 0x03, 0x06, 0x00, 0xFF, 0x00, 0xFF, 0x00, 0xFF,
        ],
    );
    response_vector(
        &request,
        Response::ReadWriteMultipleRegisters(Words::from_slice(&[0x00FE, 0x0ACD, 0x0001, 0x0003, 0x000D, 0x00FF])),
        &[
            0x17, 0x0C, 0x00, 0xFE, 0x0A, 0xCD, 0x00, 0x01, 0x00, 0x03, 0x00, 0x0D, 0x00, 0xFF,
        ],
    );
}

#[test]
fn fc18_read_fifo_queue() {
    let request = Request::ReadFifoQueue { address: 0x04DE };
    request_vector(request, &[0x18, 0x04, 0xDE]);
    response_vector(
        &request,
        Response::ReadFifoQueue(Words::from_slice(&[0x01B8, 0x1284])),
        &[0x18, 0x00, 0x06, 0x00, 0x02, 0x01, 0xB8, 0x12, 0x84],
    );
}

#[test]
fn fc2b_0e_read_device_identification() {
    let request = Request::ReadDeviceIdentification {
        code: ReadDeviceIdCode::Basic,
        object_id: 0,
    };
    request_vector(request, &[0x2B, 0x0E, 0x01, 0x00]);
    let objects = [
        DeviceObject {
            id: 0,
            value: b"Company identification",
        },
        DeviceObject {
            id: 1,
            value: b"Product code XX",
        },
        DeviceObject { id: 2, value: b"V2.11" },
    ];
    let response = Response::ReadDeviceIdentification(DeviceIdentification {
        read_code: ReadDeviceIdCode::Basic,
        conformity: 0x01,
        more_follows: false,
        next_object_id: 0,
        objects: DeviceObjects::from_slice(&objects),
    });
    let mut bytes = vec![0x2B, 0x0E, 0x01, 0x01, 0x00, 0x00, 0x03];
    for o in &objects {
        bytes.push(o.id);
        bytes.push(o.value.len() as u8);
        bytes.extend_from_slice(o.value);
    }
    response_vector(&request, response, &bytes);

    // The spec's "more follows" example: the first answer stops before
    // object 2 and says where to go on.
    let first = Response::ReadDeviceIdentification(DeviceIdentification {
        read_code: ReadDeviceIdCode::Basic,
        conformity: 0x01,
        more_follows: true,
        next_object_id: 2,
        objects: DeviceObjects::from_slice(&objects[..2]),
    });
    let mut bytes = vec![0x2B, 0x0E, 0x01, 0x01, 0xFF, 0x02, 0x02];
    for o in &objects[..2] {
        bytes.push(o.id);
        bytes.push(o.value.len() as u8);
        bytes.extend_from_slice(o.value);
    }
    response_vector(&request, first, &bytes);
    let Response::ReadDeviceIdentification(d) = Response::decode(&bytes).unwrap() else {
        panic!()
    };
    assert_eq!(d.objects.get(1), Some(&b"Product code XX"[..]));
    let again = Request::ReadDeviceIdentification {
        code: ReadDeviceIdCode::Basic,
        object_id: d.next_object_id,
    };
    request_vector(again, &[0x2B, 0x0E, 0x01, 0x02]);
}

#[test]
fn exception_response() {
    // Section 7: Read Coils of a nonexistent output address answers 81 02.
    let request = Request::ReadCoils(CoilRange::new(0x04A1, 1).unwrap());
    request_vector(request, &[0x01, 0x04, 0xA1, 0x00, 0x01]);
    response_vector(
        &request,
        Response::Exception {
            function: FunctionCode::ReadCoils,
            code: ExceptionCode::IllegalDataAddress,
        },
        &[0x81, 0x02],
    );
}

#[test]
fn rtu_crc_vectors() {
    // Modbus over Serial Line V1.02, 6.2.2: CRC of "02 07" is 0x1241, sent 41 12.
    assert_eq!(crc16(&[0x02, 0x07]), 0x1241);
    let mut buf = [0u8; 8];
    let n = rtu::encode(UnitId(0x02), &[0x07u8][..], &mut buf).unwrap();
    assert_eq!(&buf[..n], &[0x02, 0x07, 0x41, 0x12]);
    // A read of ten holding registers from unit 1: CRC C5 CD.
    let frame = [0x01, 0x03, 0x00, 0x00, 0x00, 0x0A, 0xC5, 0xCD];
    match RtuDecoder::new(Direction::Request).decode(&frame).unwrap() {
        Decoded::Frame { frame: f, consumed, .. } => {
            assert_eq!(consumed, 8);
            assert_eq!(
                Request::decode(f.pdu).unwrap(),
                Request::ReadHoldingRegisters(RegisterRange::new(0, 10).unwrap())
            );
        }
        other => panic!("{other:?}"),
    }
    // One bit flipped in the CRC: no frame, the decoder resynchronises.
    let mut bad = frame;
    bad[7] ^= 1;
    assert!(matches!(
        RtuDecoder::new(Direction::Request).decode(&bad),
        Ok(Decoded::NeedMore { .. }) | Err(_)
    ));
}

#[test]
fn malformed_requests_are_typed_errors() {
    use outpost_modbus_core::{DecodeError, RangeError};
    // FC 0F: 16 coils, one data byte (the inconsistency that panics other servers).
    assert_eq!(
        Request::decode(&[0x0F, 0x00, 0x00, 0x00, 0x10, 0x01, 0xFF]),
        Err(DecodeError::ByteCount {
            function: 0x0F,
            byte_count: 1,
            expected: 2
        })
    );
    // FC 03: 126 registers.
    assert_eq!(
        Request::decode(&[0x03, 0x00, 0x00, 0x00, 0x7E]),
        Err(DecodeError::Range {
            function: 0x03,
            error: RangeError::Quantity {
                quantity: 126,
                min: 1,
                max: 125
            }
        })
    );
    // FC 01 past the end of the address space.
    assert_eq!(
        Request::decode(&[0x01, 0xFF, 0xFF, 0x00, 0x02])
            .unwrap_err()
            .exception_code(),
        ExceptionCode::IllegalDataAddress
    );
    // FC 05 with a value other than 0000/FF00.
    assert_eq!(
        Request::decode(&[0x05, 0x00, 0x01, 0x12, 0x34])
            .unwrap_err()
            .exception_code(),
        ExceptionCode::IllegalDataValue
    );
    // Truncated and trailing.
    assert!(matches!(
        Request::decode(&[0x03, 0x00]),
        Err(DecodeError::Truncated { function: 0x03, .. })
    ));
    assert_eq!(
        Request::decode(&[0x07, 0x00]),
        Err(DecodeError::TrailingBytes {
            function: 0x07,
            extra: 1
        })
    );
    assert_eq!(Request::decode(&[]), Err(DecodeError::Empty));
    assert_eq!(
        Request::decode(&[0x83, 0x02]),
        Err(DecodeError::InvalidFunction { function: 0x83 })
    );
    // FC 16 (partial) and a response claiming more bytes than it carries.
    assert!(Response::decode(&[0x10, 0x00]).is_err());
    assert!(Response::decode(&[0x03, 0xFA, 0x00]).is_err());
}

/// No device answers a broadcast, so no response frame starts with unit 0:
/// a 0x00 of line noise before an answer must not hold the decoder waiting
/// for a frame that never comes (found by the async RTU client's tests).
#[test]
fn rtu_responses_never_start_at_unit_0() {
    let mut buf = [0u8; 256];
    let n = rtu::encode(UnitId(0x11), &[0x06u8, 0x00, 0x09, 0x00, 0x63][..], &mut buf).unwrap();
    let mut line = vec![0x00];
    line.extend_from_slice(&buf[..n]);
    // Read as unit 0, function 0x11, byte count 6, it would need 11 bytes.
    match RtuDecoder::new(Direction::Response).decode(&line).unwrap() {
        Decoded::Frame {
            frame,
            skipped,
            consumed,
        } => {
            assert_eq!((skipped, consumed), (1, line.len()));
            assert_eq!(frame.unit, UnitId(0x11));
        }
        other => panic!("{other:?}"),
    }
    // Requests to unit 0 are broadcasts and still frame.
    let n = rtu::encode(UnitId(0), &[0x06u8, 0x00, 0x09, 0x00, 0x63][..], &mut buf).unwrap();
    assert!(matches!(
        RtuDecoder::new(Direction::Request).decode(&buf[..n]),
        Ok(Decoded::Frame { .. })
    ));
}

/// The largest application data units: 260 bytes on TCP (MBAP header and a
/// 253-byte PDU), 256 on a serial line (address, PDU, CRC).
#[test]
fn the_largest_adus_are_the_specifications() {
    assert_eq!(outpost_modbus_core::frame::mbap::MAX_ADU_LEN, 260);
    assert_eq!(outpost_modbus_core::frame::rtu::MAX_ADU_LEN, 256);
    assert_eq!(outpost_modbus_core::MAX_PDU_LEN, 253);
}
