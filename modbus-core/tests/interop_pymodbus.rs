//! Interoperability with pymodbus, an independent implementation: frames it
//! builds decode to our values and encode back byte-identically, and frames
//! we build parse in pymodbus and rebuild byte-identically.
//!
//! Needs python3 with pymodbus (`pip install -r modbus-core/tests/interop/requirements.txt`);
//! run with `cargo test -p outpost-modbus-core --test interop_pymodbus -- --ignored`.
//! CI installs it and runs it.

use std::io::Write;
use std::process::{Command, Stdio};

use outpost_modbus_core::frame::mbap::{self, MbapHeader};
use outpost_modbus_core::frame::rtu::{self, Decoded, Direction, RtuDecoder};
use outpost_modbus_core::{
    Bits, CoilRange, CoilWrite, DeviceIdentification, DeviceObject, DeviceObjects, Diagnostic, DiagnosticCode, Encode,
    ExceptionCode, FileReads, FileRecord, FileRecordRef, FileWrites, FunctionCode, ReadDeviceIdCode,
    ReadWriteRegisters, RegisterRange, RegisterWrite, Request, Response, UnitId, Words,
};

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop/pymodbus_frames.py");
const HEADER: MbapHeader = MbapHeader {
    transaction_id: 7,
    unit: UnitId(1),
};

fn python(mode: &str, input: &str) -> String {
    // CI points OUTPOST_PYTHON at the interpreter of its virtualenv.
    let interpreter = std::env::var("OUTPOST_PYTHON").unwrap_or_else(|_| "python3".into());
    let mut child = Command::new(interpreter)
        .arg(SCRIPT)
        .arg(mode)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("python3 runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write to python");
    let out = child.wait_with_output().expect("python finishes");
    assert!(
        out.status.success(),
        "pymodbus script failed: is pymodbus installed? (pip install -r modbus-core/tests/interop/requirements.txt)"
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

fn frames<P: Encode + ?Sized>(pdu: &P) -> (Vec<u8>, Vec<u8>) {
    let mut m = [0u8; mbap::MAX_ADU_LEN];
    let n = mbap::encode(HEADER, pdu, &mut m).expect("mbap");
    let mut r = [0u8; rtu::MAX_ADU_LEN];
    let k = rtu::encode(HEADER.unit, pdu, &mut r).expect("rtu");
    (m[..n].to_vec(), r[..k].to_vec())
}

const COILS_19: [bool; 19] = [
    true, false, true, true, false, false, true, true, true, true, false, true, false, true, true, false, true, false,
    true,
];
const COILS_10: [bool; 10] = [true, false, true, true, false, false, true, true, true, false];

/// Our encoding of the message pymodbus names `name`.
fn ours(name: &str, direction: &str) -> (Vec<u8>, Vec<u8>) {
    let request = |r: Request<'_>| frames(&r);
    let response = |r: Response<'_>| frames(&r);
    match (name, direction) {
        ("read_coils", "request") => request(Request::ReadCoils(CoilRange::new(19, 19).unwrap())),
        ("read_coils", "response") => response(Response::ReadCoils(Bits::from_bools(&COILS_19))),
        ("read_discrete_inputs", "request") => request(Request::ReadDiscreteInputs(CoilRange::new(196, 22).unwrap())),
        ("read_holding_registers", "request") => {
            request(Request::ReadHoldingRegisters(RegisterRange::new(107, 3).unwrap()))
        }
        ("read_holding_registers", "response") => {
            response(Response::ReadHoldingRegisters(Words::from_slice(&[555, 0, 100])))
        }
        ("read_input_registers", "request") => request(Request::ReadInputRegisters(RegisterRange::new(8, 1).unwrap())),
        ("read_input_registers", "response") => response(Response::ReadInputRegisters(Words::from_slice(&[10]))),
        ("write_single_coil", "request") => request(Request::WriteSingleCoil {
            address: 172,
            value: true,
        }),
        ("write_single_coil", "response") => response(Response::WriteSingleCoil {
            address: 172,
            value: true,
        }),
        ("write_single_register", "request") => request(Request::WriteSingleRegister { address: 1, value: 3 }),
        ("write_multiple_coils", "request") => request(Request::WriteMultipleCoils(
            CoilWrite::new(19, Bits::from_bools(&COILS_10)).unwrap(),
        )),
        ("write_multiple_coils", "response") => response(Response::WriteMultipleCoils {
            start: 19,
            quantity: 10,
        }),
        ("write_multiple_registers", "request") => request(Request::WriteMultipleRegisters(
            RegisterWrite::new(1, Words::from_slice(&[10, 258])).unwrap(),
        )),
        ("write_multiple_registers", "response") => {
            response(Response::WriteMultipleRegisters { start: 1, quantity: 2 })
        }
        ("mask_write_register", "request") => request(Request::MaskWriteRegister {
            address: 4,
            and_mask: 0xF2,
            or_mask: 0x25,
        }),
        ("read_write_multiple_registers", "request") => {
            request(Request::ReadWriteMultipleRegisters(ReadWriteRegisters {
                read: RegisterRange::new(3, 6).unwrap(),
                write: RegisterWrite::new(14, Words::from_slice(&[0xFF, 0xFF, 0xFF])).unwrap(),
            }))
        }
        ("read_write_multiple_registers", "response") => {
            response(Response::ReadWriteMultipleRegisters(Words::from_slice(&[
                0xFE, 0xACD, 1, 3, 0xD, 0xFF,
            ])))
        }
        ("read_exception_status", "request") => request(Request::ReadExceptionStatus),
        ("read_exception_status", "response") => response(Response::ReadExceptionStatus(0x6D)),
        ("diagnostics_echo", "request") => request(Request::Diagnostics(
            Diagnostic::new(DiagnosticCode::RETURN_QUERY_DATA, Words::from_slice(&[0xA537])).unwrap(),
        )),
        ("diagnostics_bus_messages", "request") => request(Request::Diagnostics(
            Diagnostic::new(DiagnosticCode::BUS_MESSAGE_COUNT, Words::from_slice(&[0])).unwrap(),
        )),
        ("get_comm_event_counter", "request") => request(Request::GetCommEventCounter),
        ("get_comm_event_log", "request") => request(Request::GetCommEventLog),
        ("report_server_id", "request") => request(Request::ReportServerId),
        ("read_fifo_queue", "request") => request(Request::ReadFifoQueue { address: 0x4DE }),
        ("read_fifo_queue", "response") => response(Response::ReadFifoQueue(Words::from_slice(&[0x1B8, 0x1284]))),
        ("read_file_record", "request") => {
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
            request(Request::ReadFileRecord(FileReads::new(&refs).unwrap()))
        }
        ("write_file_record", "request") => {
            let groups = [FileRecord {
                file: 4,
                record: 7,
                values: Words::from_slice(&[0x06AF, 0x04BE, 0x100D]),
            }];
            request(Request::WriteFileRecord(FileWrites::new(&groups).unwrap()))
        }
        ("read_device_identification", "request") => request(Request::ReadDeviceIdentification {
            code: ReadDeviceIdCode::Basic,
            object_id: 0,
        }),
        ("read_device_identification", "response") => {
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
            response(Response::ReadDeviceIdentification(DeviceIdentification {
                read_code: ReadDeviceIdCode::Basic,
                conformity: 0x83,
                more_follows: false,
                next_object_id: 0,
                objects: DeviceObjects::from_slice(&objects),
            }))
        }
        ("exception", "response") => response(Response::Exception {
            function: FunctionCode::ReadCoils,
            code: ExceptionCode::IllegalDataAddress,
        }),
        other => panic!("no counterpart for {other:?}"),
    }
}

/// Decode a frame of theirs with our decoders and encode it again.
fn decode_and_reencode(direction: &str, mbap_frame: &[u8], rtu_frame: &[u8]) {
    let f = mbap::decode(mbap_frame).expect("mbap").expect("complete");
    assert_eq!(f.header, HEADER);
    assert_eq!(f.len(), mbap_frame.len());
    let dir = if direction == "request" {
        Direction::Request
    } else {
        Direction::Response
    };
    let Ok(Decoded::Frame { frame, consumed, .. }) = RtuDecoder::new(dir).decode(rtu_frame) else {
        panic!("RTU frame {} not decoded", hex(rtu_frame));
    };
    assert_eq!(consumed, rtu_frame.len());
    assert_eq!(frame.pdu, f.pdu);
    let again = if direction == "request" {
        frames(&Request::decode(f.pdu).expect("request decodes"))
    } else {
        frames(&Response::decode(f.pdu).expect("response decodes"))
    };
    assert_eq!(again, (mbap_frame.to_vec(), rtu_frame.to_vec()));
}

#[test]
#[ignore = "needs python3 with pymodbus: pip install -r modbus-core/tests/interop/requirements.txt"]
fn pymodbus_frames_match_ours() {
    let out = python("generate", "");
    let mut count = 0;
    for line in out.lines() {
        let parts: Vec<&str> = line.split_whitespace().collect();
        let [name, direction, theirs_mbap, theirs_rtu] = parts[..] else {
            panic!("bad line {line:?}")
        };
        let (theirs_mbap, theirs_rtu) = (unhex(theirs_mbap), unhex(theirs_rtu));
        let (mbap_frame, rtu_frame) = ours(name, direction);
        assert_eq!(hex(&mbap_frame), hex(&theirs_mbap), "{name} {direction} (MBAP)");
        assert_eq!(hex(&rtu_frame), hex(&theirs_rtu), "{name} {direction} (RTU)");
        decode_and_reencode(direction, &theirs_mbap, &theirs_rtu);
        count += 1;
    }
    assert_eq!(count, 31, "every message of the script was compared");
}

/// A deterministic generator (xorshift) for varied frames.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u16 {
        (self.next() % n) as u16
    }
}

#[test]
#[ignore = "needs python3 with pymodbus: pip install -r modbus-core/tests/interop/requirements.txt"]
fn pymodbus_parses_our_frames() {
    let mut rng = Rng(0x0DDC0FFEE);
    let mut input = String::new();
    let mut lines = 0;
    for i in 0..300 {
        let start = rng.below(1000);
        let (mbap_frame, rtu_frame, direction) = match i % 10 {
            0 => {
                let (a, b) = frames(&Request::ReadCoils(CoilRange::new(start, 1 + rng.below(2000)).unwrap()));
                (a, b, "request")
            }
            1 => {
                let (a, b) = frames(&Request::ReadHoldingRegisters(
                    RegisterRange::new(start, 1 + rng.below(125)).unwrap(),
                ));
                (a, b, "request")
            }
            2 => {
                let values: Vec<u16> = (0..1 + rng.below(123)).map(|_| rng.next() as u16).collect();
                let (a, b) = frames(&Request::WriteMultipleRegisters(
                    RegisterWrite::new(start, Words::from_slice(&values)).unwrap(),
                ));
                (a, b, "request")
            }
            3 => {
                let values: Vec<bool> = (0..1 + rng.below(1968)).map(|_| rng.next() & 1 == 1).collect();
                let (a, b) = frames(&Request::WriteMultipleCoils(
                    CoilWrite::new(start, Bits::from_bools(&values)).unwrap(),
                ));
                (a, b, "request")
            }
            4 => {
                let (a, b) = frames(&Request::WriteSingleCoil {
                    address: start,
                    value: rng.next() & 1 == 1,
                });
                (a, b, "request")
            }
            5 => {
                let values: Vec<u16> = (0..1 + rng.below(125)).map(|_| rng.next() as u16).collect();
                let (a, b) = frames(&Response::ReadHoldingRegisters(Words::from_slice(&values)));
                (a, b, "response")
            }
            6 => {
                let values: Vec<bool> = (0..8 * (1 + rng.below(250))).map(|_| rng.next() & 1 == 1).collect();
                let (a, b) = frames(&Response::ReadCoils(Bits::from_bools(&values)));
                (a, b, "response")
            }
            7 => {
                let values: Vec<u16> = (0..1 + rng.below(121)).map(|_| rng.next() as u16).collect();
                let (a, b) = frames(&Request::ReadWriteMultipleRegisters(ReadWriteRegisters {
                    read: RegisterRange::new(start, 1 + rng.below(125)).unwrap(),
                    write: RegisterWrite::new(start, Words::from_slice(&values)).unwrap(),
                }));
                (a, b, "request")
            }
            8 => {
                let (a, b) = frames(&Request::MaskWriteRegister {
                    address: start,
                    and_mask: rng.next() as u16,
                    or_mask: rng.next() as u16,
                });
                (a, b, "request")
            }
            _ => {
                let (a, b) = frames(&Response::Exception {
                    function: FunctionCode::from_u8(1 + rng.below(6) as u8),
                    code: ExceptionCode::from_u8(1 + rng.below(4) as u8),
                });
                (a, b, "response")
            }
        };
        input.push_str(&format!("{direction} {} {}\n", hex(&mbap_frame), hex(&rtu_frame)));
        lines += 1;
    }
    let out = python("check", &input);
    let verdicts: Vec<&str> = out.lines().collect();
    assert_eq!(verdicts.len(), lines);
    for (line, verdict) in input.lines().zip(&verdicts) {
        assert_eq!(*verdict, "ok", "pymodbus disagrees on {line}");
    }
}
