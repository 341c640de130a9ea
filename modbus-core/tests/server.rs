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

/// A model that implements nothing.
struct Nothing;

impl DataModel for Nothing {}

/// Every function a model leaves alone answers 01, and nothing reaches a
/// table the model did not offer.
#[test]
fn a_model_that_implements_nothing_answers_illegal_function() {
    let requests: &[&[u8]] = &[
        &[0x01, 0, 0, 0, 1],
        &[0x02, 0, 0, 0, 1],
        &[0x03, 0, 0, 0, 1],
        &[0x04, 0, 0, 0, 1],
        &[0x05, 0, 0, 0xFF, 0],
        &[0x06, 0, 0, 0, 1],
        &[0x07],
        &[0x08, 0, 0x02, 0, 0],
        &[0x0F, 0, 0, 0, 1, 1, 1],
        &[0x10, 0, 0, 0, 1, 2, 0, 1],
        &[0x11],
        &[0x14, 7, 6, 0, 1, 0, 0, 0, 1],
        &[0x15, 9, 6, 0, 1, 0, 0, 0, 1, 0, 5],
        &[0x16, 0, 0, 0, 0xF2, 0, 0x25],
        &[0x17, 0, 0, 0, 1, 0, 0, 0, 1, 2, 0, 1],
        &[0x18, 0, 0],
        &[0x2B, 0x0E, 1, 0],
        &[0x2B, 0x0D, 1, 2],
    ];
    let mut server = Server::new(Transport::Rtu);
    for pdu in requests {
        let mut out = [0u8; 253];
        let n = server
            .handle(&mut Nothing, UnitId(1), pdu, &mut out)
            .unwrap()
            .unwrap_or_else(|| panic!("no answer to {pdu:02x?}"));
        assert_eq!(&out[..n], [pdu[0] | 0x80, 0x01], "answer to {pdu:02x?}");
    }
    assert_eq!(server.counters().bus_exceptions, requests.len() as u16);
}

/// Holding register n answers exception n (1 to 11); 0 is a register.
#[derive(Default)]
struct Faulty;

impl DataModel for Faulty {
    fn read_holding_registers(&mut self, range: RegisterRange, out: &mut [u16]) -> Result<(), ExceptionCode> {
        match range.start() {
            0 => {
                out.fill(0);
                Ok(())
            }
            n => Err(ExceptionCode::from_u8(n as u8)),
        }
    }
}

fn read_at(server: &mut Server, unit: u8, address: u8) -> Option<Vec<u8>> {
    let mut out = [0u8; 253];
    server
        .handle(&mut Faulty, UnitId(unit), &[0x03, 0, address, 0, 1], &mut out)
        .unwrap()
        .map(|n| out[..n].to_vec())
}

fn diagnostic(server: &mut Server, sub: u8, data: u16) -> Option<Vec<u8>> {
    let [hi, lo] = data.to_be_bytes();
    let mut out = [0u8; 253];
    server
        .handle(&mut Faulty, UnitId(1), &[0x08, 0, sub, hi, lo], &mut out)
        .unwrap()
        .map(|n| out[..n].to_vec())
}

/// Each serial-line counter is counted by its own rule and reported under
/// its own sub-function (every counter holds a value of its own here).
#[test]
fn each_diagnostic_counter_is_reported_under_its_own_sub_function() {
    let mut s = Server::new(Transport::Rtu);
    assert!(read_at(&mut s, 1, 0).is_some()); // 1 answered
    for address in [2, 3, 2] {
        read_at(&mut s, 1, address).unwrap(); // 3 exceptions 01-03
    }
    read_at(&mut s, 1, 4).unwrap(); // device failure
    for _ in 0..2 {
        read_at(&mut s, 1, 6).unwrap(); // busy, twice
    }
    read_at(&mut s, 1, 5).unwrap(); // acknowledge: busy as well
    for _ in 0..4 {
        read_at(&mut s, 1, 7).unwrap(); // negative acknowledge, four times
    }
    for _ in 0..5 {
        assert_eq!(read_at(&mut s, 0, 0), None); // broadcasts: no answer
    }
    for _ in 0..6 {
        s.record_communication_error();
    }
    for _ in 0..7 {
        s.record_character_overrun();
    }
    let c = s.counters();
    assert_eq!(c.bus_messages, 17);
    assert_eq!(c.server_messages, 17);
    assert_eq!(c.bus_exceptions, 11);
    assert_eq!(c.server_no_responses, 5);
    assert_eq!(c.server_naks, 4);
    assert_eq!(c.server_busy, 3);
    assert_eq!(c.bus_communication_errors, 6);
    assert_eq!(c.bus_character_overruns, 7);
    // Each query is a message itself: counted before it is answered.
    let expected = [
        (0x0B, 18),
        (0x0C, 6),
        (0x0D, 11),
        (0x0E, 21),
        (0x0F, 5),
        (0x10, 4),
        (0x11, 3),
        (0x12, 7),
    ];
    for (sub, value) in expected {
        let [hi, lo] = u16::to_be_bytes(value);
        assert_eq!(
            diagnostic(&mut s, sub, 0),
            Some(vec![0x08, 0, sub, hi, lo]),
            "sub-function {sub:#04x}"
        );
    }
    // 0x14 clears the overrun counter alone.
    assert_eq!(diagnostic(&mut s, 0x14, 0), Some(vec![0x08, 0, 0x14, 0, 0]));
    assert_eq!(s.counters().bus_character_overruns, 0);
    assert_eq!(s.counters().bus_communication_errors, 6);
    // Restart with 0000 keeps the log; with FF00 clears it; anything else is 03.
    assert_eq!(diagnostic(&mut s, 0x01, 0x1234), Some(vec![0x88, 0x03]));
    assert_eq!(diagnostic(&mut s, 0x01, 0xFF00), Some(vec![0x08, 0, 0x01, 0xFF, 0x00]));
    assert_eq!(s.counters().bus_communication_errors, 0);
    let log = comm_event_log(&mut s);
    // The restart, then this request's receive event: the rest was cleared.
    assert_eq!(log, [0x80, 0x40, 0x00]);
}

fn comm_event_log(server: &mut Server) -> Vec<u8> {
    let mut out = [0u8; 253];
    let n = server
        .handle(&mut Faulty, UnitId(1), &[0x0C], &mut out)
        .unwrap()
        .unwrap();
    let Response::GetCommEventLog(log) = Response::decode(&out[..n]).unwrap() else {
        panic!("not an event log");
    };
    log.events.to_vec()
}

/// The communication event log holds one byte per event, most recent
/// first, with the bits the serial line specification gives each kind.
#[test]
fn the_event_log_records_each_kind_of_event_with_its_bits() {
    let mut s = Server::new(Transport::Rtu);
    read_at(&mut s, 1, 0).unwrap(); // receive 80, send 40
    read_at(&mut s, 1, 2).unwrap(); // receive 80, send 41 (read exception)
    read_at(&mut s, 1, 4).unwrap(); // send 42 (abort)
    read_at(&mut s, 1, 6).unwrap(); // send 44 (busy)
    read_at(&mut s, 1, 7).unwrap(); // send 48 (NAK)
    read_at(&mut s, 0, 0); // broadcast received: C0, nothing sent
    s.record_communication_error(); // 82
    s.record_character_overrun(); // 90
    assert_eq!(diagnostic(&mut s, 0x04, 0), None); // receive 80, entered listen-only 04
    read_at(&mut s, 1, 0); // received while listening only: A0
    diagnostic(&mut s, 0x01, 0); // A0, then restart 00
    let log = comm_event_log(&mut s);
    assert_eq!(
        log,
        [
            0x80, 0x00, 0xA0, 0xA0, 0x04, 0x80, 0x90, 0x82, 0xC0, 0x48, 0x80, 0x44, 0x80, 0x42, 0x80, 0x41, 0x80, 0x40,
            0x80
        ]
    );
}

/// The default mask write reads the register and writes
/// `(value AND and) OR (or AND NOT and)` back (the specification's example).
#[test]
fn the_default_mask_write_combines_the_masks() {
    let mut s = Server::new(Transport::Tcp);
    let mut m = Ten::default();
    m.registers[4] = 0x0012;
    let mask = Request::MaskWriteRegister {
        address: 4,
        and_mask: 0x00F2,
        or_mask: 0x0025,
    };
    run(&mut s, &mut m, 1, &mask).unwrap();
    assert_eq!(m.registers[4], 0x0017);
}

/// Identification objects of the given sizes (object n holds `n` repeated).
struct Objects(Vec<(u8, usize)>, Vec<Vec<u8>>);

impl Objects {
    fn new(sizes: &[(u8, usize)]) -> Self {
        Objects(sizes.to_vec(), sizes.iter().map(|&(id, len)| vec![id; len]).collect())
    }
}

impl DataModel for Objects {
    fn device_object(&self, id: u8) -> Option<&[u8]> {
        let i = self.0.iter().position(|(o, _)| *o == id)?;
        Some(&self.1[i])
    }
}

fn identify(model: &mut Objects, code: u8, object_id: u8) -> Vec<u8> {
    let mut s = Server::new(Transport::Tcp);
    let mut out = [0u8; 253];
    let n = s
        .handle(model, UnitId(1), &[0x2B, 0x0E, code, object_id], &mut out)
        .unwrap()
        .unwrap();
    out[..n].to_vec()
}

/// The ids of the objects in an answer, whether more follow, and the next id.
fn streamed(reply: &[u8]) -> (Vec<u8>, bool, u8) {
    let Response::ReadDeviceIdentification(d) = Response::decode(reply).unwrap() else {
        panic!("not an identification: {reply:02x?}")
    };
    (
        d.objects.iter().map(|o| o.id).collect(),
        d.more_follows,
        d.next_object_id,
    )
}

/// A stream fills each answer up to the last byte of the PDU and no
/// further: objects that fit exactly go in one answer, one byte more moves
/// the last object to the next.
#[test]
fn identification_streams_fill_each_answer_exactly() {
    // 246 bytes after the header: three objects of 2 + 80 bytes fill it.
    let mut exact = Objects::new(&[(0, 80), (1, 80), (2, 80)]);
    let reply = identify(&mut exact, 0x01, 0);
    assert_eq!(reply.len(), 253);
    assert_eq!(streamed(&reply), (vec![0, 1, 2], false, 0));
    let mut over = Objects::new(&[(0, 80), (1, 80), (2, 81)]);
    assert_eq!(streamed(&identify(&mut over, 0x01, 0)), (vec![0, 1], true, 2));
    assert_eq!(streamed(&identify(&mut over, 0x01, 2)), (vec![2], false, 0));
    // One object as large as an answer holds is read alone; larger is 04.
    let mut largest = Objects::new(&[(0, 244)]);
    assert_eq!(streamed(&identify(&mut largest, 0x04, 0)), (vec![0], false, 0));
    assert_eq!(streamed(&identify(&mut largest, 0x01, 0)), (vec![0], false, 0));
    let mut too_large = Objects::new(&[(0, 245)]);
    assert_eq!(identify(&mut too_large, 0x04, 0), [0xAB, 0x04]);
    assert_eq!(identify(&mut too_large, 0x01, 0), [0xAB, 0x04]);
}

/// A stream starts at the asked object only when it is in the category
/// and present; otherwise it starts again at object 0.
#[test]
fn identification_streams_start_over_outside_their_category() {
    let mut m = Objects::new(&[(0, 3), (1, 3), (2, 3), (3, 3), (4, 3)]);
    // Object 3 exists but is not basic: the basic stream starts at 0.
    assert_eq!(streamed(&identify(&mut m, 0x01, 3)), (vec![0, 1, 2], false, 0));
    // Object 2 is basic: the stream starts there.
    assert_eq!(streamed(&identify(&mut m, 0x01, 2)), (vec![2], false, 0));
    assert_eq!(streamed(&identify(&mut m, 0x02, 3)), (vec![3, 4], false, 0));
    // A regular object that is missing: start over.
    let mut gaps = Objects::new(&[(0, 3), (1, 3), (2, 3), (4, 3)]);
    assert_eq!(streamed(&identify(&mut gaps, 0x02, 3)), (vec![0, 1, 2, 4], false, 0));
}

/// Fills whatever room it is given, and says so.
struct Filler;

impl DataModel for Filler {
    fn encapsulated_interface(&mut self, _: u8, _: &[u8], out: &mut [u8]) -> Result<usize, ExceptionCode> {
        out.fill(0x5A);
        Ok(out.len())
    }

    fn custom(&mut self, _: u8, _: &[u8], out: &mut [u8]) -> Result<usize, ExceptionCode> {
        out.fill(0x6B);
        Ok(out.len())
    }
}

/// A model's own functions get room for a whole PDU and no more: 251 bytes
/// after an MEI type, 252 after a user-defined function code.
#[test]
fn model_defined_answers_may_fill_a_whole_pdu() {
    let mut s = Server::new(Transport::Tcp);
    let mut out = [0u8; 253];
    let n = s
        .handle(&mut Filler, UnitId(1), &[0x2B, 0x0D, 1], &mut out)
        .unwrap()
        .unwrap();
    assert_eq!(n, 253);
    assert_eq!(&out[..2], [0x2B, 0x0D]);
    assert!(out[2..n].iter().all(|b| *b == 0x5A));
    let n = s
        .handle(&mut Filler, UnitId(1), &[0x41, 1, 2], &mut out)
        .unwrap()
        .unwrap();
    assert_eq!(n, 253);
    assert_eq!(out[0], 0x41);
    assert!(out[1..n].iter().all(|b| *b == 0x6B));
}

/// The communication event counter counts answered requests, except the
/// requests that read it and the event log.
#[test]
fn the_event_counter_counts_answers_but_not_its_own_reads() {
    let mut s = Server::new(Transport::Rtu);
    read_at(&mut s, 1, 0).unwrap();
    read_at(&mut s, 1, 0).unwrap();
    read_at(&mut s, 1, 2).unwrap(); // an exception is not counted
    let counter = |s: &mut Server| {
        let mut out = [0u8; 253];
        let n = s.handle(&mut Faulty, UnitId(1), &[0x0B], &mut out).unwrap().unwrap();
        out[..n].to_vec()
    };
    assert_eq!(counter(&mut s), [0x0B, 0, 0, 0, 2]);
    comm_event_log(&mut s);
    assert_eq!(counter(&mut s), [0x0B, 0, 0, 0, 2]);
    diagnostic(&mut s, 0x00, 0x1234).unwrap();
    assert_eq!(counter(&mut s), [0x0B, 0, 0, 0, 3]);
}
