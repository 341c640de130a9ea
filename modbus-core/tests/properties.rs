//! Property tests: encode→decode is the identity for every request and
//! response type; arbitrary bytes never panic any decoder, the client check or
//! the server; any split of a byte stream into chunks yields the same frames.

use outpost_modbus_core::frame::mbap::{self, MbapHeader};
use outpost_modbus_core::frame::rtu::{self, Decoded, Direction, RtuDecoder};
use outpost_modbus_core::server::{DataModel, Server};
use outpost_modbus_core::{
    Bits, CoilRange, CoilWrite, CommEventLog, CustomPdu, DeviceIdentification, DeviceObject, DeviceObjects, Diagnostic,
    DiagnosticCode, ExceptionCode, Expectation, FileReadResponse, FileReads, FileRecord, FileRecordRef, FileWrites,
    FunctionCode, MeiPdu, ReadDeviceIdCode, ReadWriteRegisters, RegisterRange, RegisterWrite, Request, Response,
    ResponseError, Transport, UnitId, Words,
};
use proptest::collection::vec;
use proptest::prelude::*;

/// An owned description of a request, from which a borrowed `Request` is built.
#[derive(Debug, Clone)]
enum Req {
    Read(u8, u16, u16),
    WriteCoil(u16, bool),
    WriteRegister(u16, u16),
    NoData(u8),
    Diag(u16, Vec<u16>),
    WriteCoils(u16, Vec<bool>),
    WriteRegisters(u16, Vec<u16>),
    FileRead(Vec<(u16, u16, u16)>),
    FileWrite(Vec<(u16, u16, Vec<u16>)>),
    Mask(u16, u16, u16),
    ReadWrite(u16, u16, u16, Vec<u16>),
    Fifo(u16),
    DeviceId(u8, u8),
    Mei(u8, Vec<u8>),
    Custom(u8, Vec<u8>),
}

/// A start address such that `start + quantity <= 65536`.
fn fit(start: u16, quantity: u16) -> u16 {
    (start as u32 % (0x1_0000 - quantity as u32 + 1)) as u16
}

fn req_strategy() -> impl Strategy<Value = Req> {
    prop_oneof![
        (prop_oneof![Just(1u8), Just(2u8)], 1u16..=2000, any::<u16>()).prop_map(|(f, q, s)| Req::Read(f, fit(s, q), q)),
        (prop_oneof![Just(3u8), Just(4u8)], 1u16..=125, any::<u16>()).prop_map(|(f, q, s)| Req::Read(f, fit(s, q), q)),
        (any::<u16>(), any::<bool>()).prop_map(|(a, v)| Req::WriteCoil(a, v)),
        (any::<u16>(), any::<u16>()).prop_map(|(a, v)| Req::WriteRegister(a, v)),
        prop_oneof![Just(0x07u8), Just(0x0B), Just(0x0C), Just(0x11)].prop_map(Req::NoData),
        (any::<u16>(), vec(any::<u16>(), 0..=125)).prop_map(|(s, d)| Req::Diag(s, d)),
        (any::<u16>(), vec(any::<bool>(), 1..=1968)).prop_map(|(s, v)| Req::WriteCoils(fit(s, v.len() as u16), v)),
        (any::<u16>(), vec(any::<u16>(), 1..=123)).prop_map(|(s, v)| Req::WriteRegisters(fit(s, v.len() as u16), v)),
        vec((1u16.., 0u16..=9999, 1u16..=10), 1..=12).prop_map(Req::FileRead),
        vec((1u16.., 0u16..=9999, vec(any::<u16>(), 1..=10)), 1..=8).prop_map(Req::FileWrite),
        (any::<u16>(), any::<u16>(), any::<u16>()).prop_map(|(a, b, c)| Req::Mask(a, b, c)),
        (1u16..=125, any::<u16>(), any::<u16>(), vec(any::<u16>(), 1..=121)).prop_map(|(q, s, ws, v)| Req::ReadWrite(
            fit(s, q),
            q,
            fit(ws, v.len() as u16),
            v
        )),
        any::<u16>().prop_map(Req::Fifo),
        (1u8..=4, any::<u8>()).prop_map(|(c, o)| Req::DeviceId(c, o)),
        (
            any::<u8>().prop_filter("not 0E", |m| *m != 0x0E),
            vec(any::<u8>(), 0..=251)
        )
            .prop_map(|(m, d)| Req::Mei(m, d)),
        (
            prop_oneof![0x41u8..=0x48, 0x64u8..=0x6E, Just(0x09u8), Just(0x7F)],
            vec(any::<u8>(), 0..=252)
        )
            .prop_map(|(f, d)| Req::Custom(f, d)),
    ]
}

/// Build the borrowed request and hand it to `f`.
fn with_request<R>(r: &Req, f: impl FnOnce(Request<'_>) -> R) -> R {
    match r {
        Req::Read(1, s, q) => f(Request::ReadCoils(CoilRange::new(*s, *q).unwrap())),
        Req::Read(2, s, q) => f(Request::ReadDiscreteInputs(CoilRange::new(*s, *q).unwrap())),
        Req::Read(3, s, q) => f(Request::ReadHoldingRegisters(RegisterRange::new(*s, *q).unwrap())),
        Req::Read(_, s, q) => f(Request::ReadInputRegisters(RegisterRange::new(*s, *q).unwrap())),
        Req::WriteCoil(a, v) => f(Request::WriteSingleCoil { address: *a, value: *v }),
        Req::WriteRegister(a, v) => f(Request::WriteSingleRegister { address: *a, value: *v }),
        Req::NoData(0x07) => f(Request::ReadExceptionStatus),
        Req::NoData(0x0B) => f(Request::GetCommEventCounter),
        Req::NoData(0x0C) => f(Request::GetCommEventLog),
        Req::NoData(_) => f(Request::ReportServerId),
        Req::Diag(s, d) => f(Request::Diagnostics(
            Diagnostic::new(DiagnosticCode(*s), Words::from_slice(d)).unwrap(),
        )),
        Req::WriteCoils(s, v) => f(Request::WriteMultipleCoils(
            CoilWrite::new(*s, Bits::from_bools(v)).unwrap(),
        )),
        Req::WriteRegisters(s, v) => f(Request::WriteMultipleRegisters(
            RegisterWrite::new(*s, Words::from_slice(v)).unwrap(),
        )),
        Req::FileRead(refs) => {
            let refs: Vec<FileRecordRef> = refs
                .iter()
                .map(|&(file, record, length)| FileRecordRef { file, record, length })
                .collect();
            f(Request::ReadFileRecord(FileReads::new(&refs).unwrap()))
        }
        Req::FileWrite(groups) => {
            let groups: Vec<FileRecord<'_>> = groups
                .iter()
                .map(|(file, record, v)| FileRecord {
                    file: *file,
                    record: *record,
                    values: Words::from_slice(v),
                })
                .collect();
            f(Request::WriteFileRecord(FileWrites::new(&groups).unwrap()))
        }
        Req::Mask(a, n, o) => f(Request::MaskWriteRegister {
            address: *a,
            and_mask: *n,
            or_mask: *o,
        }),
        Req::ReadWrite(s, q, ws, v) => f(Request::ReadWriteMultipleRegisters(ReadWriteRegisters {
            read: RegisterRange::new(*s, *q).unwrap(),
            write: RegisterWrite::new(*ws, Words::from_slice(v)).unwrap(),
        })),
        Req::Fifo(a) => f(Request::ReadFifoQueue { address: *a }),
        Req::DeviceId(c, o) => f(Request::ReadDeviceIdentification {
            code: ReadDeviceIdCode::from_u8(*c).unwrap(),
            object_id: *o,
        }),
        Req::Mei(m, d) => f(Request::EncapsulatedInterface(MeiPdu::new(*m, d).unwrap())),
        Req::Custom(c, d) => f(Request::Custom(CustomPdu::new(*c, d).unwrap())),
    }
}

/// An owned description of a response, paired with a request it answers.
#[derive(Debug, Clone)]
enum Rsp {
    Coils(bool, Vec<bool>),
    Registers(u8, Vec<u16>),
    EchoCoil(u16, bool),
    EchoRegister(u16, u16),
    Status(u8),
    Diag(u16, Vec<u16>),
    Counter(u16, u16),
    Log(u16, u16, u16, Vec<u8>),
    Written(bool, u16, u16),
    ServerId(Vec<u8>),
    FileRead(Vec<Vec<u16>>),
    FileWrite(Vec<(u16, u16, Vec<u16>)>),
    Mask(u16, u16, u16),
    Fifo(Vec<u16>),
    DeviceId(u8, u8, bool, u8, Vec<(u8, Vec<u8>)>),
    Mei(u8, Vec<u8>),
    Exception(u8, u8),
    Custom(u8, Vec<u8>),
}

fn rsp_strategy() -> impl Strategy<Value = Rsp> {
    prop_oneof![
        (any::<bool>(), vec(any::<bool>(), 1..=2000)).prop_map(|(c, v)| Rsp::Coils(c, v)),
        (prop_oneof![Just(3u8), Just(4), Just(0x17)], vec(any::<u16>(), 1..=125))
            .prop_map(|(f, v)| Rsp::Registers(f, v)),
        (any::<u16>(), any::<bool>()).prop_map(|(a, v)| Rsp::EchoCoil(a, v)),
        (any::<u16>(), any::<u16>()).prop_map(|(a, v)| Rsp::EchoRegister(a, v)),
        any::<u8>().prop_map(Rsp::Status),
        (any::<u16>(), vec(any::<u16>(), 0..=125)).prop_map(|(s, d)| Rsp::Diag(s, d)),
        (any::<u16>(), any::<u16>()).prop_map(|(a, b)| Rsp::Counter(a, b)),
        (any::<u16>(), any::<u16>(), any::<u16>(), vec(any::<u8>(), 0..=64))
            .prop_map(|(a, b, c, e)| Rsp::Log(a, b, c, e)),
        (any::<bool>(), any::<u16>(), any::<u16>()).prop_map(|(c, s, q)| Rsp::Written(c, s, q)),
        vec(any::<u8>(), 0..=251).prop_map(Rsp::ServerId),
        vec(vec(any::<u16>(), 1..=10), 1..=10).prop_map(Rsp::FileRead),
        vec((1u16.., 0u16..=9999, vec(any::<u16>(), 1..=10)), 1..=8).prop_map(Rsp::FileWrite),
        (any::<u16>(), any::<u16>(), any::<u16>()).prop_map(|(a, b, c)| Rsp::Mask(a, b, c)),
        vec(any::<u16>(), 0..=31).prop_map(Rsp::Fifo),
        (
            1u8..=4,
            any::<u8>(),
            any::<bool>(),
            any::<u8>(),
            vec((any::<u8>(), vec(any::<u8>(), 0..=20)), 0..=10)
        )
            .prop_map(|(c, conf, m, n, o)| Rsp::DeviceId(c, conf, m, n, o)),
        (
            any::<u8>().prop_filter("not 0E", |m| *m != 0x0E),
            vec(any::<u8>(), 0..=251)
        )
            .prop_map(|(m, d)| Rsp::Mei(m, d)),
        (1u8..=0x7F, any::<u8>()).prop_map(|(f, c)| Rsp::Exception(f, c)),
        (prop_oneof![0x41u8..=0x48, 0x64u8..=0x6E], vec(any::<u8>(), 0..=252)).prop_map(|(f, d)| Rsp::Custom(f, d)),
    ]
}

/// Build the borrowed response and a request it answers, and hand both to `f`.
fn with_response<R>(r: &Rsp, f: impl FnOnce(Request<'_>, Response<'_>) -> R) -> R {
    let dummy = [0u16; 125];
    match r {
        Rsp::Coils(coils, v) => {
            let range = CoilRange::new(0, v.len() as u16).unwrap();
            let bits = Bits::from_bools(v);
            if *coils {
                f(Request::ReadCoils(range), Response::ReadCoils(bits))
            } else {
                f(Request::ReadDiscreteInputs(range), Response::ReadDiscreteInputs(bits))
            }
        }
        Rsp::Registers(func, v) => {
            let range = RegisterRange::new(0, v.len() as u16).unwrap();
            let words = Words::from_slice(v);
            match func {
                3 => f(
                    Request::ReadHoldingRegisters(range),
                    Response::ReadHoldingRegisters(words),
                ),
                4 => f(Request::ReadInputRegisters(range), Response::ReadInputRegisters(words)),
                _ => f(
                    Request::ReadWriteMultipleRegisters(ReadWriteRegisters {
                        read: range,
                        write: RegisterWrite::new(0, Words::from_slice(&dummy[..1])).unwrap(),
                    }),
                    Response::ReadWriteMultipleRegisters(words),
                ),
            }
        }
        Rsp::EchoCoil(a, v) => f(
            Request::WriteSingleCoil { address: *a, value: *v },
            Response::WriteSingleCoil { address: *a, value: *v },
        ),
        Rsp::EchoRegister(a, v) => f(
            Request::WriteSingleRegister { address: *a, value: *v },
            Response::WriteSingleRegister { address: *a, value: *v },
        ),
        Rsp::Status(s) => f(Request::ReadExceptionStatus, Response::ReadExceptionStatus(*s)),
        Rsp::Diag(s, d) => {
            let diag = Diagnostic::new(DiagnosticCode(*s), Words::from_slice(d)).unwrap();
            f(Request::Diagnostics(diag), Response::Diagnostics(diag))
        }
        Rsp::Counter(status, event_count) => f(
            Request::GetCommEventCounter,
            Response::GetCommEventCounter {
                status: *status,
                event_count: *event_count,
            },
        ),
        Rsp::Log(status, event_count, message_count, events) => f(
            Request::GetCommEventLog,
            Response::GetCommEventLog(CommEventLog {
                status: *status,
                event_count: *event_count,
                message_count: *message_count,
                events,
            }),
        ),
        Rsp::Written(coils, start, quantity) => {
            let response = if *coils {
                Response::WriteMultipleCoils {
                    start: *start,
                    quantity: *quantity,
                }
            } else {
                Response::WriteMultipleRegisters {
                    start: *start,
                    quantity: *quantity,
                }
            };
            // The request is only needed for its function: Custom-free Any check.
            f(Request::ReportServerId, response)
        }
        Rsp::ServerId(d) => f(Request::ReportServerId, Response::ReportServerId(d)),
        Rsp::FileRead(groups) => {
            let refs: Vec<FileRecordRef> = groups
                .iter()
                .map(|g| FileRecordRef {
                    file: 1,
                    record: 0,
                    length: g.len() as u16,
                })
                .collect();
            let words: Vec<Words<'_>> = groups.iter().map(|g| Words::from_slice(g)).collect();
            f(
                Request::ReadFileRecord(FileReads::new(&refs).unwrap()),
                Response::ReadFileRecord(FileReadResponse::new(&words).unwrap()),
            )
        }
        Rsp::FileWrite(groups) => {
            let groups: Vec<FileRecord<'_>> = groups
                .iter()
                .map(|(file, record, v)| FileRecord {
                    file: *file,
                    record: *record,
                    values: Words::from_slice(v),
                })
                .collect();
            let writes = FileWrites::new(&groups).unwrap();
            f(Request::WriteFileRecord(writes), Response::WriteFileRecord(writes))
        }
        Rsp::Mask(a, n, o) => f(
            Request::MaskWriteRegister {
                address: *a,
                and_mask: *n,
                or_mask: *o,
            },
            Response::MaskWriteRegister {
                address: *a,
                and_mask: *n,
                or_mask: *o,
            },
        ),
        Rsp::Fifo(v) => f(
            Request::ReadFifoQueue { address: 0 },
            Response::ReadFifoQueue(Words::from_slice(v)),
        ),
        Rsp::DeviceId(code, conformity, more, next, objects) => {
            let objects: Vec<DeviceObject<'_>> = objects
                .iter()
                .map(|(id, v)| DeviceObject { id: *id, value: v })
                .collect();
            let code = ReadDeviceIdCode::from_u8(*code).unwrap();
            f(
                Request::ReadDeviceIdentification { code, object_id: 0 },
                Response::ReadDeviceIdentification(DeviceIdentification {
                    read_code: code,
                    conformity: *conformity,
                    more_follows: *more,
                    next_object_id: *next,
                    objects: DeviceObjects::from_slice(&objects),
                }),
            )
        }
        Rsp::Mei(m, d) => {
            let pdu = MeiPdu::new(*m, d).unwrap();
            f(
                Request::EncapsulatedInterface(pdu),
                Response::EncapsulatedInterface(pdu),
            )
        }
        Rsp::Exception(func, code) => {
            let function = FunctionCode::from_u8(*func);
            let response = Response::Exception {
                function,
                code: ExceptionCode::from_u8(*code),
            };
            match CustomPdu::new(*func, &[]) {
                Ok(c) => f(Request::Custom(c), response),
                Err(_) => f(Request::ReportServerId, response),
            }
        }
        Rsp::Custom(c, d) => {
            let pdu = CustomPdu::new(*c, d).unwrap();
            f(Request::Custom(pdu), Response::Custom(pdu))
        }
    }
}

/// A data model that answers every function, for server fuzzing.
struct Everything;

impl DataModel for Everything {
    fn read_coils(&mut self, range: CoilRange, out: &mut [bool]) -> Result<(), ExceptionCode> {
        if range.start() > 60000 {
            return Err(ExceptionCode::IllegalDataAddress);
        }
        out.iter_mut().enumerate().for_each(|(i, v)| *v = i % 3 == 0);
        Ok(())
    }
    fn read_discrete_inputs(&mut self, range: CoilRange, out: &mut [bool]) -> Result<(), ExceptionCode> {
        self.read_coils(range, out)
    }
    fn read_holding_registers(&mut self, range: RegisterRange, out: &mut [u16]) -> Result<(), ExceptionCode> {
        out.iter_mut()
            .enumerate()
            .for_each(|(i, v)| *v = range.start().wrapping_add(i as u16));
        Ok(())
    }
    fn read_input_registers(&mut self, range: RegisterRange, out: &mut [u16]) -> Result<(), ExceptionCode> {
        self.read_holding_registers(range, out)
    }
    fn write_single_coil(&mut self, _: u16, _: bool) -> Result<(), ExceptionCode> {
        Ok(())
    }
    fn write_single_register(&mut self, _: u16, _: u16) -> Result<(), ExceptionCode> {
        Ok(())
    }
    fn write_multiple_coils(&mut self, _: u16, _: Bits<'_>) -> Result<(), ExceptionCode> {
        Ok(())
    }
    fn write_multiple_registers(&mut self, _: u16, _: Words<'_>) -> Result<(), ExceptionCode> {
        Ok(())
    }
    fn read_exception_status(&mut self) -> Result<u8, ExceptionCode> {
        Ok(0x55)
    }
    fn diagnostic_register(&mut self) -> Result<u16, ExceptionCode> {
        Ok(7)
    }
    fn report_server_id(&mut self, out: &mut [u8]) -> Result<usize, ExceptionCode> {
        out[..3].copy_from_slice(&[1, 0xFF, 2]);
        Ok(3)
    }
    fn read_file_record(&mut self, _: u16, record: u16, out: &mut [u16]) -> Result<(), ExceptionCode> {
        out.fill(record);
        Ok(())
    }
    fn write_file_record(&mut self, _: u16, _: u16, _: Words<'_>) -> Result<(), ExceptionCode> {
        Ok(())
    }
    fn read_fifo_queue(&mut self, address: u16, out: &mut [u16; 31]) -> Result<usize, ExceptionCode> {
        let n = (address % 40) as usize;
        if n > 31 {
            return Err(ExceptionCode::IllegalDataValue);
        }
        out[..n].fill(address);
        Ok(n)
    }
    fn device_object(&self, id: u8) -> Option<&[u8]> {
        const LONG: &[u8] = &[b'x'; 100];
        match id {
            0..=2 => Some(b"basic"),
            3..=6 => Some(LONG),
            0x80..=0x82 => Some(LONG),
            _ => None,
        }
    }
    fn encapsulated_interface(&mut self, _: u8, data: &[u8], out: &mut [u8]) -> Result<usize, ExceptionCode> {
        let n = data.len().min(out.len());
        out[..n].copy_from_slice(&data[..n]);
        Ok(n)
    }
    fn custom(&mut self, _: u8, data: &[u8], out: &mut [u8]) -> Result<usize, ExceptionCode> {
        let n = data.len().min(out.len());
        out[..n].copy_from_slice(&data[..n]);
        Ok(n)
    }
}

/// Decode every RTU frame of `stream`, delivered in chunks split at `cuts`.
fn rtu_frames(direction: Direction, stream: &[u8], cuts: &[usize]) -> Vec<(u8, Vec<u8>)> {
    let decoder = RtuDecoder::new(direction).with_max_noise(64);
    let mut buf: Vec<u8> = Vec::new();
    let mut frames = Vec::new();
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (stream.len() + 1)).collect();
    points.push(stream.len());
    points.sort_unstable();
    let mut at = 0;
    for p in points {
        buf.extend_from_slice(&stream[at..p]);
        at = p;
        // Each pass drops at least one byte or stops: bounded by the buffer length.
        for _ in 0..=buf.len() {
            match decoder.decode(&buf) {
                Ok(Decoded::Frame { frame, consumed, .. }) => {
                    frames.push((frame.unit.0, frame.pdu.to_vec()));
                    buf.drain(..consumed);
                }
                Ok(Decoded::NeedMore { skipped }) => {
                    buf.drain(..skipped);
                    break;
                }
                Err(outpost_modbus_core::FrameError::Noise { discarded }) => {
                    buf.drain(..discarded);
                }
                Err(e) => panic!("{e}"),
            }
        }
    }
    frames
}

/// Decode every MBAP frame of `stream`, delivered in chunks split at `cuts`.
fn mbap_frames(stream: &[u8], cuts: &[usize]) -> Vec<(MbapHeader, Vec<u8>)> {
    let mut buf: Vec<u8> = Vec::new();
    let mut frames = Vec::new();
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (stream.len() + 1)).collect();
    points.push(stream.len());
    points.sort_unstable();
    let mut at = 0;
    for p in points {
        buf.extend_from_slice(&stream[at..p]);
        at = p;
        while let Some(frame) = mbap::decode(&buf).unwrap() {
            frames.push((frame.header, frame.pdu.to_vec()));
            let n = frame.len();
            buf.drain(..n);
        }
    }
    assert!(buf.is_empty());
    frames
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn request_round_trip(r in req_strategy()) {
        with_request(&r, |request| {
            let mut buf = [0u8; 256];
            let n = request.encode(&mut buf).unwrap();
            prop_assert_eq!(n, request.encoded_len());
            prop_assert_eq!(n, outpost_modbus_core::Encode::encoded_len(&request));
            prop_assert_eq!(n, outpost_modbus_core::Encode::encoded_len(&buf[..n]));
            prop_assert!(n <= outpost_modbus_core::MAX_PDU_LEN);
            let decoded = Request::decode(&buf[..n]).unwrap();
            prop_assert_eq!(decoded, request);
            let mut again = [0u8; 256];
            let m = decoded.encode(&mut again).unwrap();
            prop_assert_eq!(&again[..m], &buf[..n]);
            // Any smaller buffer is refused, not overrun.
            prop_assert!(request.encode(&mut buf[..n - 1]).is_err());
            Ok(())
        })?;
    }

    #[test]
    fn response_round_trip(r in rsp_strategy()) {
        with_response(&r, |request, response| {
            let mut buf = [0u8; 256];
            let n = match response.encode(&mut buf) {
                Ok(n) => n,
                // Device identification objects may not fit one PDU: refused, typed.
                Err(outpost_modbus_core::EncodeError::PduTooLarge { .. }) => return Ok(()),
                Err(e) => return Err(TestCaseError::fail(e.to_string())),
            };
            prop_assert_eq!(n, response.encoded_len());
            prop_assert_eq!(n, outpost_modbus_core::Encode::encoded_len(&response));
            let checked = Expectation::new(&request).check(&buf[..n]);
            match (&r, checked) {
                (Rsp::Written(..), Err(_)) => {}
                (Rsp::Exception(..), _) => prop_assert_eq!(Response::decode(&buf[..n]).unwrap(), response),
                (_, checked) => prop_assert_eq!(checked.unwrap(), response),
            }
            let decoded = Response::decode(&buf[..n]).unwrap();
            let mut again = [0u8; 256];
            let m = decoded.encode(&mut again).unwrap();
            prop_assert_eq!(&again[..m], &buf[..n]);
            Ok(())
        })?;
    }

    #[test]
    fn frames_round_trip(r in req_strategy(), tid in any::<u16>(), unit in any::<u8>()) {
        with_request(&r, |request| {
            let header = MbapHeader { transaction_id: tid, unit: UnitId(unit) };
            let mut buf = [0u8; mbap::MAX_ADU_LEN];
            let n = mbap::encode(header, &request, &mut buf).unwrap();
            let frame = mbap::decode(&buf[..n]).unwrap().unwrap();
            prop_assert_eq!(frame.header, header);
            prop_assert_eq!(Request::decode(frame.pdu).unwrap(), request);
            for k in 0..n {
                prop_assert_eq!(mbap::decode(&buf[..k]).unwrap(), None);
            }
            // RTU, except for custom and other-MEI requests, whose length an
            // RTU receiver cannot know.
            if !matches!(request, Request::Custom(_) | Request::EncapsulatedInterface(_))
                && !matches!(request, Request::Diagnostics(d) if d.data().len() != 1)
            {
                let mut buf = [0u8; rtu::MAX_ADU_LEN];
                let n = rtu::encode(UnitId(unit), &request, &mut buf).unwrap();
                match RtuDecoder::new(Direction::Request).decode(&buf[..n]).unwrap() {
                    Decoded::Frame { frame, skipped, consumed } => {
                        prop_assert_eq!((skipped, consumed, frame.unit), (0, n, UnitId(unit)));
                        prop_assert_eq!(Request::decode(frame.pdu).unwrap(), request);
                    }
                    other => return Err(TestCaseError::fail(format!("{other:?}"))),
                }
            }
            Ok(())
        })?;
    }

    #[test]
    fn rtu_response_frames_round_trip(r in rsp_strategy(), unit in 1u8..) {
        with_response(&r, |_, response| {
            if matches!(response, Response::Custom(_) | Response::EncapsulatedInterface(_))
                || matches!(response, Response::Diagnostics(d) if d.data().len() != 1)
            {
                return Ok(());
            }
            let mut buf = [0u8; rtu::MAX_ADU_LEN];
            let Ok(n) = rtu::encode(UnitId(unit), &response, &mut buf) else { return Ok(()) };
            match RtuDecoder::new(Direction::Response).decode(&buf[..n]).unwrap() {
                Decoded::Frame { frame, consumed, .. } => {
                    prop_assert_eq!(consumed, n);
                    prop_assert_eq!(frame.pdu.len(), n - 3);
                }
                other => return Err(TestCaseError::fail(format!("{other:?}"))),
            }
            Ok(())
        })?;
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in vec(any::<u8>(), 0..300), r in req_strategy()) {
        let _ = Request::decode(&bytes);
        let _ = Response::decode(&bytes);
        let _ = mbap::decode(&bytes);
        for direction in [Direction::Request, Direction::Response] {
            let _ = rtu_frames(direction, &bytes, &[]);
        }
        with_request(&r, |request| {
            let _ = Expectation::new(&request).check(&bytes);
        });
        let mut out = [0u8; 253];
        for transport in [Transport::Tcp, Transport::Rtu] {
            let mut server = Server::new(transport);
            if let Some(n) = server.handle(&mut Everything, UnitId(1), &bytes, &mut out).unwrap() {
                // Whatever the server says decodes, and answers the same function.
                let response = Response::decode(&out[..n]).unwrap();
                prop_assert_eq!(response.function().value(), bytes[0] & 0x7F);
            }
        }
    }

    #[test]
    fn server_answers_every_valid_request(r in req_strategy()) {
        with_request(&r, |request| {
            let mut pdu = [0u8; 256];
            let n = request.encode(&mut pdu).unwrap();
            let mut out = [0u8; 253];
            let mut server = Server::new(Transport::Tcp);
            let reply = server.handle(&mut Everything, UnitId(1), &pdu[..n], &mut out).unwrap();
            let is_listen_only = matches!(request, Request::Diagnostics(d) if d.sub_function() == DiagnosticCode::FORCE_LISTEN_ONLY_MODE && d.data().len() == 1 && d.data().get(0) == Some(0));
            if is_listen_only {
                prop_assert_eq!(reply, None);
                prop_assert!(server.is_listen_only());
                return Ok(());
            }
            let len = reply.expect("a reply");
            // The response fits the request (or is an exception to it).
            Expectation::new(&request).check(&out[..len]).unwrap();
            // On RTU, a broadcast gets no reply.
            let mut server = Server::new(Transport::Rtu);
            prop_assert_eq!(server.handle(&mut Everything, UnitId::BROADCAST, &pdu[..n], &mut out).unwrap(), None);
            Ok(())
        })?;
    }

    #[test]
    fn mbap_chunking_is_invisible(
        reqs in vec((req_strategy(), any::<u16>(), any::<u8>()), 1..8),
        cuts in vec(any::<usize>(), 0..20),
    ) {
        let mut stream = Vec::new();
        for (r, tid, unit) in &reqs {
            with_request(r, |request| {
                let mut buf = [0u8; mbap::MAX_ADU_LEN];
                let header = MbapHeader { transaction_id: *tid, unit: UnitId(*unit) };
                let n = mbap::encode(header, &request, &mut buf).unwrap();
                stream.extend_from_slice(&buf[..n]);
            });
        }
        let whole = mbap_frames(&stream, &[]);
        prop_assert_eq!(whole.len(), reqs.len());
        prop_assert_eq!(mbap_frames(&stream, &cuts), whole);
        // Byte by byte.
        let every: Vec<usize> = (0..stream.len()).collect();
        prop_assert_eq!(mbap_frames(&stream, &every), mbap_frames(&stream, &[]));
    }

    #[test]
    fn rtu_chunking_is_invisible(
        reqs in vec((req_strategy(), any::<u8>(), vec(any::<u8>(), 0..12)), 1..6),
        cuts in vec(any::<usize>(), 0..20),
    ) {
        let mut stream = Vec::new();
        for (r, unit, noise) in &reqs {
            stream.extend_from_slice(noise);
            with_request(r, |request| {
                let mut buf = [0u8; rtu::MAX_ADU_LEN];
                let n = rtu::encode(UnitId(*unit), &request, &mut buf).unwrap();
                stream.extend_from_slice(&buf[..n]);
            });
        }
        let whole = rtu_frames(Direction::Request, &stream, &[]);
        prop_assert_eq!(rtu_frames(Direction::Request, &stream, &cuts), whole.clone());
        let every: Vec<usize> = (0..stream.len()).collect();
        prop_assert_eq!(rtu_frames(Direction::Request, &stream, &every), whole);
    }
}

/// The answer a device might give to a read of `asked` values: `given`
/// values (registers, or bytes of coils), a byte count off by `count_off`,
/// `trailing` bytes after the data, under `function`.
fn read_answer(function: u8, given: usize, count_off: i8, trailing: usize, coils: bool) -> Vec<u8> {
    let data_len = if coils { given } else { 2 * given };
    let count = (data_len as i64 + count_off as i64).clamp(0, 255) as u8;
    let mut pdu = vec![function, count];
    pdu.extend((0..data_len).map(|i| (i as u8).wrapping_mul(37).wrapping_add(11)));
    pdu.extend(std::iter::repeat_n(0xA5, trailing));
    pdu
}

proptest! {
    /// A register read's answer is accepted exactly when it is well formed,
    /// under the request's function, and holds as many registers as asked;
    /// each fault is named for what it is.
    #[test]
    fn register_answers_hold_what_was_asked(
        which in 0usize..3,
        asked in 1u16..=125,
        // Most answers hold what was asked: the faults below then stand alone.
        given in prop_oneof![2 => Just(None), 1 => (0usize..=125).prop_map(Some)],
        count_off in prop_oneof![4 => Just(0i8), 1 => -2i8..=2],
        trailing in prop_oneof![4 => Just(0usize), 1 => 1usize..=3],
        other_function in prop::bool::weighted(0.2),
    ) {
        let range = RegisterRange::new(0, asked).unwrap();
        let written = [7u16];
        let request = match which {
            0 => Request::ReadHoldingRegisters(range),
            1 => Request::ReadInputRegisters(range),
            _ => Request::ReadWriteMultipleRegisters(ReadWriteRegisters {
                read: range,
                write: RegisterWrite::new(0, Words::from_slice(&written)).unwrap(),
            }),
        };
        let function = request.function().value();
        let sent = if other_function { if function == 0x03 { 0x04 } else { 0x03 } } else { function };
        let given = given.unwrap_or(asked as usize);
        let pdu = read_answer(sent, given, count_off, trailing, false);
        // What the frame says, whatever was meant: its byte count agrees
        // with its length, and holds whole registers, 1 to 125.
        let bytes = pdu.len() - 2;
        let well_formed = pdu[1] as usize == bytes && bytes.is_multiple_of(2) && (2..=250).contains(&bytes);
        let given = bytes / 2;
        let checked = Expectation::new(&request).check(&pdu);
        match checked {
            Ok(response) => {
                prop_assert!(well_formed && !other_function && given == asked as usize, "accepted {pdu:02x?}");
                let words = match response {
                    Response::ReadHoldingRegisters(w) | Response::ReadInputRegisters(w) | Response::ReadWriteMultipleRegisters(w) => w,
                    other => return Err(TestCaseError::fail(format!("{other:?}"))),
                };
                prop_assert_eq!(response.function().value(), function);
                prop_assert_eq!(words.len(), asked as usize);
                let values: Vec<u16> = words.iter().collect();
                let expected: Vec<u16> = pdu[2..].chunks(2).map(|c| u16::from_be_bytes([c[0], c[1]])).collect();
                prop_assert_eq!(values, expected);
            }
            Err(ResponseError::Decode(_)) => prop_assert!(!well_formed),
            Err(ResponseError::Function { expected, found }) => {
                prop_assert!(well_formed && other_function);
                prop_assert_eq!((expected, found), (function, sent));
            }
            Err(ResponseError::Quantity { function: f, expected, found }) => {
                prop_assert!(well_formed && !other_function && given != asked as usize);
                prop_assert_eq!((f, expected, found), (function, asked as usize, given));
            }
            Err(e) => return Err(TestCaseError::fail(format!("{e:?} for {pdu:02x?}"))),
        }
    }

    /// A coil or discrete input read's answer is accepted exactly when it is
    /// well formed, under the request's function, and holds the bytes the
    /// quantity asked for needs; the values are cut to that quantity.
    #[test]
    fn bit_answers_hold_what_was_asked(
        inputs in any::<bool>(),
        asked in 1u16..=2000,
        given in prop_oneof![3 => Just(None), 1 => (0usize..=250).prop_map(Some)],
        count_off in prop_oneof![4 => Just(0i8), 1 => -2i8..=2],
        trailing in prop_oneof![4 => Just(0usize), 1 => 1usize..=3],
        other_function in prop::bool::weighted(0.2),
    ) {
        let range = CoilRange::new(0, asked).unwrap();
        let request = if inputs { Request::ReadDiscreteInputs(range) } else { Request::ReadCoils(range) };
        let function = request.function().value();
        let sent = if other_function { function ^ 0x03 } else { function };
        let needed = (asked as usize).div_ceil(8);
        let given = given.unwrap_or(needed);
        let pdu = read_answer(sent, given, count_off, trailing, true);
        let bytes = pdu.len() - 2;
        let well_formed = pdu[1] as usize == bytes && (1..=250).contains(&bytes);
        let given = bytes;
        match Expectation::new(&request).check(&pdu) {
            Ok(response) => {
                prop_assert!(well_formed && !other_function && given == needed, "accepted {pdu:02x?}");
                let bits = match response {
                    Response::ReadCoils(b) if !inputs => b,
                    Response::ReadDiscreteInputs(b) if inputs => b,
                    other => return Err(TestCaseError::fail(format!("{other:?}"))),
                };
                prop_assert_eq!(bits.len(), asked as usize);
                for i in 0..asked as usize {
                    prop_assert_eq!(bits.get(i), Some(pdu[2 + i / 8] & (1 << (i % 8)) != 0));
                }
            }
            Err(ResponseError::Decode(_)) => prop_assert!(!well_formed),
            Err(ResponseError::Function { expected, found }) => {
                prop_assert!(well_formed && other_function);
                prop_assert_eq!((expected, found), (function, sent));
            }
            Err(ResponseError::Quantity { function: f, expected, found }) => {
                prop_assert!(well_formed && !other_function && given != needed);
                prop_assert_eq!((f, expected, found), (function, needed, given));
            }
            Err(e) => return Err(TestCaseError::fail(format!("{e:?} for {pdu:02x?}"))),
        }
    }
}
