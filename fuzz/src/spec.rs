//! Structured Modbus values built from fuzz input with `arbitrary`, through
//! the crate's validating constructors (a spec the constructors refuse is
//! skipped), and answers that fit a given request.

use arbitrary::Arbitrary;
use outpost_modbus_core::{
    Bits, CoilRange, CoilWrite, CommEventLog, CustomPdu, DeviceIdentification, DeviceObject, DeviceObjects, Diagnostic,
    DiagnosticCode, ExceptionCode, FileReadResponse, FileReads, FileRecord, FileRecordRef, FileWrites, MeiPdu,
    ReadDeviceIdCode, ReadWriteRegisters, RegisterRange, RegisterWrite, Request, Response, Words, MAX_FIFO_COUNT,
};

/// A request, as plain data.
#[derive(Debug, Clone, Arbitrary)]
pub(crate) enum RequestSpec {
    ReadCoils(u16, u16),
    ReadDiscreteInputs(u16, u16),
    ReadHoldingRegisters(u16, u16),
    ReadInputRegisters(u16, u16),
    WriteSingleCoil(u16, bool),
    WriteSingleRegister(u16, u16),
    ReadExceptionStatus,
    Diagnostics(u16, Vec<u16>),
    GetCommEventCounter,
    GetCommEventLog,
    WriteMultipleCoils(u16, Vec<bool>),
    WriteMultipleRegisters(u16, Vec<u16>),
    ReportServerId,
    ReadFileRecord(Vec<(u16, u16, u16)>),
    WriteFileRecord(Vec<(u16, u16, Vec<u16>)>),
    MaskWriteRegister(u16, u16, u16),
    ReadWriteMultipleRegisters(u16, u16, u16, Vec<u16>),
    ReadFifoQueue(u16),
    ReadDeviceIdentification(u8, u8),
    EncapsulatedInterface(u8, Vec<u8>),
    Custom(u8, Vec<u8>),
}

/// Borrowed pieces a request built from a spec points into.
#[derive(Debug, Default)]
pub(crate) struct RequestParts<'a> {
    refs: Vec<FileRecordRef>,
    records: Vec<FileRecord<'a>>,
}

impl RequestSpec {
    /// The pieces [`RequestSpec::request`] borrows.
    pub(crate) fn parts(&self) -> RequestParts<'_> {
        let mut parts = RequestParts::default();
        match self {
            RequestSpec::ReadFileRecord(refs) => {
                parts.refs = refs
                    .iter()
                    .map(|&(file, record, length)| FileRecordRef { file, record, length })
                    .collect();
            }
            RequestSpec::WriteFileRecord(groups) => {
                parts.records = groups
                    .iter()
                    .map(|(file, record, values)| FileRecord {
                        file: *file,
                        record: *record,
                        values: Words::from_slice(values),
                    })
                    .collect();
            }
            _ => {}
        }
        parts
    }

    /// The request, or `None` if a constructor refuses the spec.
    pub(crate) fn request<'a>(&'a self, parts: &'a RequestParts<'a>) -> Option<Request<'a>> {
        Some(match self {
            RequestSpec::ReadCoils(s, q) => Request::ReadCoils(CoilRange::new(*s, *q).ok()?),
            RequestSpec::ReadDiscreteInputs(s, q) => Request::ReadDiscreteInputs(CoilRange::new(*s, *q).ok()?),
            RequestSpec::ReadHoldingRegisters(s, q) => Request::ReadHoldingRegisters(RegisterRange::new(*s, *q).ok()?),
            RequestSpec::ReadInputRegisters(s, q) => Request::ReadInputRegisters(RegisterRange::new(*s, *q).ok()?),
            RequestSpec::WriteSingleCoil(address, value) => Request::WriteSingleCoil {
                address: *address,
                value: *value,
            },
            RequestSpec::WriteSingleRegister(address, value) => Request::WriteSingleRegister {
                address: *address,
                value: *value,
            },
            RequestSpec::ReadExceptionStatus => Request::ReadExceptionStatus,
            RequestSpec::Diagnostics(sub, data) => {
                Request::Diagnostics(Diagnostic::new(DiagnosticCode(*sub), Words::from_slice(data)).ok()?)
            }
            RequestSpec::GetCommEventCounter => Request::GetCommEventCounter,
            RequestSpec::GetCommEventLog => Request::GetCommEventLog,
            RequestSpec::WriteMultipleCoils(start, values) => {
                Request::WriteMultipleCoils(CoilWrite::new(*start, Bits::from_bools(values)).ok()?)
            }
            RequestSpec::WriteMultipleRegisters(start, values) => {
                Request::WriteMultipleRegisters(RegisterWrite::new(*start, Words::from_slice(values)).ok()?)
            }
            RequestSpec::ReportServerId => Request::ReportServerId,
            RequestSpec::ReadFileRecord(_) => Request::ReadFileRecord(FileReads::new(&parts.refs).ok()?),
            RequestSpec::WriteFileRecord(_) => Request::WriteFileRecord(FileWrites::new(&parts.records).ok()?),
            RequestSpec::MaskWriteRegister(address, and_mask, or_mask) => Request::MaskWriteRegister {
                address: *address,
                and_mask: *and_mask,
                or_mask: *or_mask,
            },
            RequestSpec::ReadWriteMultipleRegisters(rs, rq, ws, values) => {
                Request::ReadWriteMultipleRegisters(ReadWriteRegisters {
                    read: RegisterRange::new(*rs, *rq).ok()?,
                    write: RegisterWrite::new(*ws, Words::from_slice(values)).ok()?,
                })
            }
            RequestSpec::ReadFifoQueue(address) => Request::ReadFifoQueue { address: *address },
            RequestSpec::ReadDeviceIdentification(code, object_id) => Request::ReadDeviceIdentification {
                code: ReadDeviceIdCode::from_u8(*code)?,
                object_id: *object_id,
            },
            RequestSpec::EncapsulatedInterface(mei, data) => {
                Request::EncapsulatedInterface(MeiPdu::new(*mei, data).ok()?)
            }
            RequestSpec::Custom(function, data) => Request::Custom(CustomPdu::new(*function, data).ok()?),
        })
    }
}

/// How a device answers: an exception, or a normal response whose
/// free values (register contents, identification objects, ...) come from
/// `seed` and `extra`.
#[derive(Debug, Clone, Arbitrary)]
pub(crate) struct AnswerSpec {
    pub(crate) exception: Option<u8>,
    pub(crate) seed: u16,
    pub(crate) extra: Vec<u8>,
    pub(crate) more_follows: bool,
}

/// Owned values an answer borrows.
#[derive(Debug, Default)]
pub(crate) struct AnswerStore {
    bools: Vec<bool>,
    words: Vec<u16>,
    groups: Vec<Vec<u16>>,
}

fn word(seed: u16, i: usize) -> u16 {
    seed.wrapping_mul(31).wrapping_add(i as u16).rotate_left(3)
}

impl AnswerSpec {
    /// The values the answer to `request` carries.
    pub(crate) fn store(&self, request: &Request<'_>) -> AnswerStore {
        let mut store = AnswerStore::default();
        let words = |n: usize| (0..n).map(|i| word(self.seed, i)).collect::<Vec<u16>>();
        match request {
            Request::ReadCoils(r) | Request::ReadDiscreteInputs(r) => {
                store.bools = (0..r.quantity() as usize)
                    .map(|i| word(self.seed, i) & 1 == 1)
                    .collect();
            }
            Request::ReadHoldingRegisters(r) | Request::ReadInputRegisters(r) => {
                store.words = words(r.quantity() as usize);
            }
            Request::ReadWriteMultipleRegisters(rw) => store.words = words(rw.read.quantity() as usize),
            Request::ReadFifoQueue { .. } => store.words = words(usize::from(self.seed) % (MAX_FIFO_COUNT + 1)),
            Request::ReadFileRecord(reads) => {
                store.groups = reads.iter().map(|r| words(usize::from(r.length))).collect();
            }
            _ => {}
        }
        store
    }

    /// A response that fits `request`, or `None` where the free values do
    /// not make a valid one (then nothing is checked).
    pub(crate) fn response<'a>(
        &'a self,
        request: &Request<'a>,
        store: &'a AnswerStore,
        groups: &'a [Words<'a>],
        objects: &'a [DeviceObject<'a>],
    ) -> Option<Response<'a>> {
        if let Some(code) = self.exception {
            return Some(Response::Exception {
                function: request.function(),
                code: ExceptionCode::from_u8(code),
            });
        }
        Some(match *request {
            Request::ReadCoils(_) => Response::ReadCoils(Bits::from_bools(&store.bools)),
            Request::ReadDiscreteInputs(_) => Response::ReadDiscreteInputs(Bits::from_bools(&store.bools)),
            Request::ReadHoldingRegisters(_) => Response::ReadHoldingRegisters(Words::from_slice(&store.words)),
            Request::ReadInputRegisters(_) => Response::ReadInputRegisters(Words::from_slice(&store.words)),
            Request::WriteSingleCoil { address, value } => Response::WriteSingleCoil { address, value },
            Request::WriteSingleRegister { address, value } => Response::WriteSingleRegister { address, value },
            Request::ReadExceptionStatus => Response::ReadExceptionStatus(self.seed as u8),
            Request::Diagnostics(d) => Response::Diagnostics(d),
            Request::GetCommEventCounter => Response::GetCommEventCounter {
                status: if self.more_follows { 0xFFFF } else { 0 },
                event_count: self.seed,
            },
            Request::GetCommEventLog => Response::GetCommEventLog(CommEventLog {
                status: if self.more_follows { 0xFFFF } else { 0 },
                event_count: self.seed,
                message_count: self.seed.wrapping_add(1),
                events: self.extra.get(..self.extra.len().min(64))?,
            }),
            Request::WriteMultipleCoils(w) => Response::WriteMultipleCoils {
                start: w.start(),
                quantity: w.quantity(),
            },
            Request::WriteMultipleRegisters(w) => Response::WriteMultipleRegisters {
                start: w.start(),
                quantity: w.quantity(),
            },
            Request::ReportServerId => Response::ReportServerId(
                self.extra
                    .get(..self.extra.len().clamp(1, outpost_modbus_core::MAX_PDU_LEN - 2))?,
            ),
            Request::ReadFileRecord(_) => Response::ReadFileRecord(FileReadResponse::new(groups).ok()?),
            Request::WriteFileRecord(w) => Response::WriteFileRecord(w),
            Request::MaskWriteRegister {
                address,
                and_mask,
                or_mask,
            } => Response::MaskWriteRegister {
                address,
                and_mask,
                or_mask,
            },
            Request::ReadWriteMultipleRegisters(_) => {
                Response::ReadWriteMultipleRegisters(Words::from_slice(&store.words))
            }
            Request::ReadFifoQueue { .. } => Response::ReadFifoQueue(Words::from_slice(&store.words)),
            Request::ReadDeviceIdentification { code, .. } => {
                Response::ReadDeviceIdentification(DeviceIdentification {
                    read_code: code,
                    conformity: 0x80 | (self.seed as u8 % 3 + 1),
                    more_follows: self.more_follows,
                    next_object_id: if self.more_follows { (self.seed >> 8) as u8 } else { 0 },
                    objects: DeviceObjects::from_slice(objects),
                })
            }
            Request::EncapsulatedInterface(m) => {
                Response::EncapsulatedInterface(MeiPdu::new(m.mei_type(), &self.extra).ok()?)
            }
            Request::Custom(c) => Response::Custom(CustomPdu::new(c.function(), &self.extra).ok()?),
            _ => return None,
        })
    }

    /// Identification objects cut from `extra`: each byte run up to a 0xFF.
    pub(crate) fn objects(&self) -> Vec<DeviceObject<'_>> {
        self.extra
            .split(|b| *b == 0xFF)
            .enumerate()
            .map(|(i, value)| DeviceObject { id: i as u8, value })
            .take(255)
            .collect()
    }
}

impl AnswerStore {
    /// The file record groups as views.
    pub(crate) fn groups(&self) -> Vec<Words<'_>> {
        self.groups.iter().map(|g| Words::from_slice(g)).collect()
    }
}
