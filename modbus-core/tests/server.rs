//! The server dispatcher: exception rules, broadcast, serial diagnostics,
//! device identification streaming.

use outpost_modbus_core::server::{DataModel, Server};
use outpost_modbus_core::{
    CoilRange, Diagnostic, DiagnosticCode, ExceptionCode, FunctionCode, ReadDeviceIdCode, RegisterRange, Request,
    Response, Transport, UnitId, Words,
};

/// Ten holding registers, nothing else.
#[derive(Default)]
struct Ten {
    registers: [u16; 10],
    writes: usize,
}

impl DataModel for Ten {
    fn read_holding_registers(&mut self, range: RegisterRange, out: &mut [u16]) -> Result<(), ExceptionCode> {
        let values = self
            .registers
            .get(range.start() as usize..=range.last() as usize)
            .ok_or(ExceptionCode::IllegalDataAddress)?;
        out.copy_from_slice(values);
        Ok(())
    }

    fn write_single_register(&mut self, address: u16, value: u16) -> Result<(), ExceptionCode> {
        *self
            .registers
            .get_mut(address as usize)
            .ok_or(ExceptionCode::IllegalDataAddress)? = value;
        self.writes += 1;
        Ok(())
    }

    fn device_object(&self, id: u8) -> Option<&[u8]> {
        const BIG: &[u8] = &[b'#'; 100];
        match id {
            0 => Some(b"Vendor"),
            1 => Some(b"P-1"),
            2 => Some(b"1.2"),
            3..=5 => Some(BIG),
            _ => None,
        }
    }
}

fn run(server: &mut Server, model: &mut Ten, unit: u8, request: &Request<'_>) -> Option<Vec<u8>> {
    let mut pdu = [0u8; 253];
    let n = request.encode(&mut pdu).unwrap();
    run_raw(server, model, unit, &pdu[..n])
}

fn run_raw(server: &mut Server, model: &mut Ten, unit: u8, pdu: &[u8]) -> Option<Vec<u8>> {
    let mut out = [0u8; 253];
    server
        .handle(model, UnitId(unit), pdu, &mut out)
        .unwrap()
        .map(|n| out[..n].to_vec())
}

fn exception(function: FunctionCode, code: ExceptionCode) -> Vec<u8> {
    vec![function.value() | 0x80, code.value()]
}

#[test]
fn exception_rules() {
    let mut s = Server::new(Transport::Tcp);
    let mut m = Ten::default();
    // 01: not implemented by the model.
    let coils = Request::ReadCoils(CoilRange::new(0, 1).unwrap());
    assert_eq!(
        run(&mut s, &mut m, 1, &coils).unwrap(),
        exception(FunctionCode::ReadCoils, ExceptionCode::IllegalFunction)
    );
    // 01: a code nobody knows.
    assert_eq!(run_raw(&mut s, &mut m, 1, &[0x41, 1, 2]).unwrap(), vec![0xC1, 0x01]);
    // 02: beyond the model's registers.
    let far = Request::ReadHoldingRegisters(RegisterRange::new(8, 3).unwrap());
    assert_eq!(
        run(&mut s, &mut m, 1, &far).unwrap(),
        exception(FunctionCode::ReadHoldingRegisters, ExceptionCode::IllegalDataAddress)
    );
    // 03: quantity over 125, before the model is asked.
    assert_eq!(
        run_raw(&mut s, &mut m, 1, &[0x03, 0x00, 0x00, 0x00, 0x7E]).unwrap(),
        vec![0x83, 0x03]
    );
    // 03: FC 0F whose quantity and byte count disagree.
    assert_eq!(
        run_raw(&mut s, &mut m, 1, &[0x0F, 0x00, 0x00, 0x00, 0x10, 0x01, 0xFF]).unwrap(),
        vec![0x8F, 0x03]
    );
    // A good read.
    m.registers[2] = 0x1234;
    let r = Request::ReadHoldingRegisters(RegisterRange::new(2, 1).unwrap());
    assert_eq!(run(&mut s, &mut m, 1, &r).unwrap(), vec![0x03, 0x02, 0x12, 0x34]);
    // Mask write through the default read-modify-write: (0x12 AND F2) OR (25 AND NOT F2).
    m.registers[4] = 0x0012;
    let mask = Request::MaskWriteRegister {
        address: 4,
        and_mask: 0x00F2,
        or_mask: 0x0025,
    };
    assert_eq!(
        run(&mut s, &mut m, 1, &mask).unwrap(),
        vec![0x16, 0x00, 0x04, 0x00, 0xF2, 0x00, 0x25]
    );
    assert_eq!(m.registers[4], 0x0017);
    // Silence for function 0 and exception-bit codes; nothing for an empty PDU.
    assert_eq!(run_raw(&mut s, &mut m, 1, &[0x00]), None);
    assert_eq!(run_raw(&mut s, &mut m, 1, &[0x83, 0x01]), None);
    assert_eq!(run_raw(&mut s, &mut m, 1, &[]), None);
}

#[test]
fn rtu_broadcast_is_executed_and_silent() {
    let mut s = Server::new(Transport::Rtu);
    let mut m = Ten::default();
    let w = Request::WriteSingleRegister { address: 3, value: 9 };
    assert_eq!(run(&mut s, &mut m, 0, &w), None);
    assert_eq!(m.registers[3], 9);
    assert_eq!(s.counters().server_no_responses, 1);
    // On TCP unit 0 is an ordinary address.
    let mut s = Server::new(Transport::Tcp);
    assert!(run(&mut s, &mut m, 0, &w).is_some());
}

#[test]
fn diagnostics_counters_and_listen_only() {
    let mut s = Server::new(Transport::Rtu);
    let mut m = Ten::default();
    let r = Request::ReadHoldingRegisters(RegisterRange::new(0, 1).unwrap());
    run(&mut s, &mut m, 1, &r).unwrap();
    run_raw(&mut s, &mut m, 1, &[0x03, 0x00, 0x00, 0x00, 0x00]).unwrap(); // exception
    s.record_communication_error();

    let diag = |code: DiagnosticCode, data: u16| {
        let d = [data];
        let pdu: Vec<u8> = {
            let req = Request::Diagnostics(Diagnostic::new(code, Words::from_slice(&d)).unwrap());
            let mut b = [0u8; 16];
            let n = req.encode(&mut b).unwrap();
            b[..n].to_vec()
        };
        pdu
    };
    let value = |reply: Vec<u8>| u16::from_be_bytes([reply[3], reply[4]]);
    // Messages so far: two requests, then this one.
    let reply = run_raw(&mut s, &mut m, 1, &diag(DiagnosticCode::BUS_MESSAGE_COUNT, 0)).unwrap();
    assert_eq!(value(reply), 3);
    let reply = run_raw(&mut s, &mut m, 1, &diag(DiagnosticCode::BUS_EXCEPTION_ERROR_COUNT, 0)).unwrap();
    assert_eq!(value(reply), 1);
    let reply = run_raw(
        &mut s,
        &mut m,
        1,
        &diag(DiagnosticCode::BUS_COMMUNICATION_ERROR_COUNT, 0),
    )
    .unwrap();
    assert_eq!(value(reply), 1);
    // Counter requests take data 0000 only.
    assert_eq!(
        run_raw(&mut s, &mut m, 1, &diag(DiagnosticCode::BUS_MESSAGE_COUNT, 1)).unwrap(),
        vec![0x88, 0x03]
    );
    // Echo.
    let echo = diag(DiagnosticCode::RETURN_QUERY_DATA, 0xA537);
    assert_eq!(run_raw(&mut s, &mut m, 1, &echo).unwrap(), echo);
    // Comm event counter counts successful messages only.
    let reply = run(&mut s, &mut m, 1, &Request::GetCommEventCounter).unwrap();
    assert_eq!(
        Response::decode(&reply).unwrap().function(),
        FunctionCode::GetCommEventCounter
    );
    let log = run(&mut s, &mut m, 1, &Request::GetCommEventLog).unwrap();
    let Response::GetCommEventLog(log) = Response::decode(&log).unwrap() else {
        panic!()
    };
    assert!(!log.events.is_empty() && log.events.len() <= 64);
    assert_eq!(
        log.events[0] & 0x80,
        0x80,
        "most recent first: this request's receive event"
    );

    // Listen-only: no answers, not even to a read; restart brings it back.
    assert_eq!(
        run_raw(&mut s, &mut m, 1, &diag(DiagnosticCode::FORCE_LISTEN_ONLY_MODE, 0)),
        None
    );
    assert!(s.is_listen_only());
    assert_eq!(run(&mut s, &mut m, 1, &r), None);
    assert_eq!(
        run_raw(&mut s, &mut m, 1, &diag(DiagnosticCode::RESTART_COMMUNICATIONS, 0)),
        None
    );
    assert!(!s.is_listen_only());
    assert!(run(&mut s, &mut m, 1, &r).is_some());
    // Clear counters.
    assert!(run_raw(&mut s, &mut m, 1, &diag(DiagnosticCode::CLEAR_COUNTERS, 0)).is_some());
    let reply = run_raw(&mut s, &mut m, 1, &diag(DiagnosticCode::BUS_EXCEPTION_ERROR_COUNT, 0)).unwrap();
    assert_eq!(value(reply), 0);
}

#[test]
fn device_identification_streams_with_more_follows() {
    let mut s = Server::new(Transport::Tcp);
    let mut m = Ten::default();
    let ask = |code, object_id| Request::ReadDeviceIdentification { code, object_id };
    // Basic: objects 0..=2 in one answer.
    let reply = run(&mut s, &mut m, 1, &ask(ReadDeviceIdCode::Basic, 0)).unwrap();
    let Response::ReadDeviceIdentification(d) = Response::decode(&reply).unwrap() else {
        panic!()
    };
    assert_eq!(d.objects.len(), 3);
    assert!(!d.more_follows);
    assert_eq!(d.conformity, 0x82);
    // Regular: 3 objects of 100 bytes do not fit one PDU: more follows.
    let mut seen = Vec::new();
    let mut next = 0;
    for _ in 0..5 {
        let reply = run(&mut s, &mut m, 1, &ask(ReadDeviceIdCode::Regular, next)).unwrap();
        let Response::ReadDeviceIdentification(d) = Response::decode(&reply).unwrap() else {
            panic!()
        };
        seen.extend(d.objects.iter().map(|o| o.id));
        if !d.more_follows {
            break;
        }
        next = d.next_object_id;
    }
    assert_eq!(seen, vec![0, 1, 2, 3, 4, 5]);
    // Specific: one object; a missing one is 02.
    let reply = run(&mut s, &mut m, 1, &ask(ReadDeviceIdCode::Specific, 1)).unwrap();
    let Response::ReadDeviceIdentification(d) = Response::decode(&reply).unwrap() else {
        panic!()
    };
    assert_eq!(d.objects.get(1), Some(&b"P-1"[..]));
    assert_eq!(
        run(&mut s, &mut m, 1, &ask(ReadDeviceIdCode::Specific, 0x90)).unwrap(),
        vec![0xAB, 0x02]
    );
    // A stream starting at an unknown object restarts at 0.
    let reply = run(&mut s, &mut m, 1, &ask(ReadDeviceIdCode::Basic, 0x42)).unwrap();
    let Response::ReadDeviceIdentification(d) = Response::decode(&reply).unwrap() else {
        panic!()
    };
    assert_eq!(d.objects.iter().next().map(|o| o.id), Some(0));
    // Bad read code: 03.
    assert_eq!(
        run_raw(&mut s, &mut m, 1, &[0x2B, 0x0E, 0x05, 0x00]).unwrap(),
        vec![0xAB, 0x03]
    );
}

/// Files whose records hold `file * 1000 + record`.
struct Files;

impl DataModel for Files {
    fn read_file_record(&mut self, file: u16, record: u16, out: &mut [u16]) -> Result<(), ExceptionCode> {
        if file > 10 {
            return Err(ExceptionCode::IllegalDataAddress);
        }
        for (i, v) in out.iter_mut().enumerate() {
            *v = file * 1000 + record + i as u16;
        }
        Ok(())
    }
}

#[test]
fn file_records_come_back_in_request_order() {
    use outpost_modbus_core::{FileReads, FileRecordRef};
    let refs = [
        FileRecordRef {
            file: 4,
            record: 1,
            length: 2,
        },
        FileRecordRef {
            file: 3,
            record: 9,
            length: 3,
        },
    ];
    let request = Request::ReadFileRecord(FileReads::new(&refs).unwrap());
    let mut pdu = [0u8; 253];
    let n = request.encode(&mut pdu).unwrap();
    let mut out = [0u8; 253];
    let mut s = Server::new(Transport::Tcp);
    let len = s.handle(&mut Files, UnitId(1), &pdu[..n], &mut out).unwrap().unwrap();
    let Response::ReadFileRecord(groups) = outpost_modbus_core::Expectation::new(&request)
        .check(&out[..len])
        .unwrap()
    else {
        panic!()
    };
    let groups: Vec<Vec<u16>> = groups.iter().map(|g| g.iter().collect()).collect();
    assert_eq!(groups, vec![vec![4001, 4002], vec![3009, 3010, 3011]]);
    // The model's refusal of one group refuses the request.
    let refs = [FileRecordRef {
        file: 11,
        record: 0,
        length: 1,
    }];
    let request = Request::ReadFileRecord(FileReads::new(&refs).unwrap());
    let n = request.encode(&mut pdu).unwrap();
    let len = s.handle(&mut Files, UnitId(1), &pdu[..n], &mut out).unwrap().unwrap();
    assert_eq!(&out[..len], &[0x94, 0x02]);
}

#[test]
fn small_output_buffer_is_a_typed_error() {
    let mut s = Server::new(Transport::Tcp);
    let mut m = Ten::default();
    let r = Request::ReadHoldingRegisters(RegisterRange::new(0, 10).unwrap());
    let mut pdu = [0u8; 8];
    let n = r.encode(&mut pdu).unwrap();
    let mut out = [0u8; 252];
    assert_eq!(
        s.handle(&mut m, UnitId(1), &pdu[..n], &mut out),
        Err(outpost_modbus_core::EncodeError::BufferTooSmall {
            needed: 253,
            available: 252
        })
    );
    // Nothing was counted: the request was not looked at.
    assert_eq!(s.counters().bus_messages, 0);
}

#[test]
fn diagnostic_register_comes_from_the_model() {
    struct Reg;
    impl DataModel for Reg {
        fn diagnostic_register(&mut self) -> Result<u16, ExceptionCode> {
            Ok(0x1234)
        }
    }
    let mut s = Server::new(Transport::Rtu);
    let mut out = [0u8; 253];
    let n = s
        .handle(&mut Reg, UnitId(1), &[0x08, 0x00, 0x02, 0x00, 0x00], &mut out)
        .unwrap()
        .unwrap();
    assert_eq!(&out[..n], &[0x08, 0x00, 0x02, 0x12, 0x34]);
    // A sub-function nobody defined: 01.
    let n = s
        .handle(&mut Reg, UnitId(1), &[0x08, 0x00, 0x63, 0x00, 0x00], &mut out)
        .unwrap()
        .unwrap();
    assert_eq!(&out[..n], &[0x88, 0x01]);
}

/// Found by the `response_pdu` fuzz target: a 271-byte device identification
/// response decoded, although no Modbus PDU is longer than 253 bytes and it
/// could not be encoded again. Decoders now refuse any longer PDU first.
#[test]
fn pdus_longer_than_253_bytes_are_refused() {
    use outpost_modbus_core::{DecodeError, MAX_PDU_LEN};
    let mut long = vec![0x87u8; 271];
    long[..7].copy_from_slice(&[0x2B, 0x0E, 0x01, 0x09, 0x00, 0x00, 0x05]);
    assert_eq!(
        Response::decode(&long),
        Err(DecodeError::TooLong {
            function: 0x2B,
            len: 271
        })
    );
    // A custom request one byte too long, and one that fits.
    let mut custom = vec![0x41u8; MAX_PDU_LEN + 1];
    assert_eq!(
        Request::decode(&custom),
        Err(DecodeError::TooLong {
            function: 0x41,
            len: MAX_PDU_LEN + 1
        })
    );
    custom.pop();
    assert!(Request::decode(&custom).is_ok());
    // The server answers a too-long request with 03, whatever its function.
    let mut server = Server::new(Transport::Tcp);
    let mut model = Ten::default();
    let mut read = vec![0x03u8, 0x00, 0x00, 0x00, 0x01];
    read.resize(MAX_PDU_LEN + 1, 0);
    assert_eq!(
        run_raw(&mut server, &mut model, 1, &read),
        Some(exception(
            FunctionCode::ReadHoldingRegisters,
            ExceptionCode::IllegalDataValue
        ))
    );
}
