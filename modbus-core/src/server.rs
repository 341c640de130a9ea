//! Server side, sans-IO: decode a request, ask the user's [`DataModel`],
//! encode the response.
//!
//! The [`Server`] applies the specification's exception rules: a function the
//! model does not implement answers 01 (Illegal Function), a request whose
//! quantity or value is out of range answers 03 (Illegal Data Value) before
//! the model is asked, and the model answers 02 (Illegal Data Address) for
//! addresses it does not have. On a serial line a broadcast (unit 0) is
//! executed and gets no response. It also keeps the serial-line diagnostic
//! counters and the comm event log (functions 08, 0B, 0C).

use crate::data::{Bits, Words};
use crate::error::EncodeError;
use crate::exception::ExceptionCode;
use crate::function::FunctionCode;
use crate::pdu::device_id::{DeviceIdentification, DeviceObject, DeviceObjects, ReadDeviceIdCode};
use crate::pdu::file::FileReadResponse;
use crate::pdu::raw::{CustomPdu, Diagnostic, DiagnosticCode, MeiPdu};
use crate::pdu::request::Request;
use crate::pdu::response::{CommEventLog, Response, MAX_COMM_EVENTS, MAX_FIFO_COUNT};
use crate::types::{CoilRange, RegisterRange, UnitId};
use crate::Transport;

/// The data a server exposes. Implement the functions the device supports;
/// every default answers [`ExceptionCode::IllegalFunction`].
///
/// Ranges passed in are already validated against the specification's limits,
/// and `out` has exactly the room the request asks for.
pub trait DataModel {
    /// 01: fill `out` with `range.quantity()` coil values.
    fn read_coils(&mut self, range: CoilRange, out: &mut [bool]) -> Result<(), ExceptionCode> {
        let _ = (range, out);
        Err(ExceptionCode::IllegalFunction)
    }

    /// 02: fill `out` with `range.quantity()` discrete input values.
    fn read_discrete_inputs(&mut self, range: CoilRange, out: &mut [bool]) -> Result<(), ExceptionCode> {
        let _ = (range, out);
        Err(ExceptionCode::IllegalFunction)
    }

    /// 03: fill `out` with `range.quantity()` holding register values.
    fn read_holding_registers(&mut self, range: RegisterRange, out: &mut [u16]) -> Result<(), ExceptionCode> {
        let _ = (range, out);
        Err(ExceptionCode::IllegalFunction)
    }

    /// 04: fill `out` with `range.quantity()` input register values.
    fn read_input_registers(&mut self, range: RegisterRange, out: &mut [u16]) -> Result<(), ExceptionCode> {
        let _ = (range, out);
        Err(ExceptionCode::IllegalFunction)
    }

    /// 05: set one coil.
    fn write_single_coil(&mut self, address: u16, value: bool) -> Result<(), ExceptionCode> {
        let _ = (address, value);
        Err(ExceptionCode::IllegalFunction)
    }

    /// 06: set one holding register.
    fn write_single_register(&mut self, address: u16, value: u16) -> Result<(), ExceptionCode> {
        let _ = (address, value);
        Err(ExceptionCode::IllegalFunction)
    }

    /// 0F: set consecutive coils starting at `start`.
    fn write_multiple_coils(&mut self, start: u16, values: Bits<'_>) -> Result<(), ExceptionCode> {
        let _ = (start, values);
        Err(ExceptionCode::IllegalFunction)
    }

    /// 10: set consecutive holding registers starting at `start`.
    fn write_multiple_registers(&mut self, start: u16, values: Words<'_>) -> Result<(), ExceptionCode> {
        let _ = (start, values);
        Err(ExceptionCode::IllegalFunction)
    }

    /// 16: `value = (value AND and_mask) OR (or_mask AND NOT and_mask)`.
    /// The default reads the register with function 03 and writes it with 06.
    fn mask_write_register(&mut self, address: u16, and_mask: u16, or_mask: u16) -> Result<(), ExceptionCode> {
        let range = RegisterRange::new(address, 1).map_err(|_| ExceptionCode::IllegalDataAddress)?;
        let mut current = [0u16; 1];
        self.read_holding_registers(range, &mut current)?;
        self.write_single_register(address, (current[0] & and_mask) | (or_mask & !and_mask))
    }

    /// 17: write, then read. The default calls functions 10 and 03.
    fn read_write_multiple_registers(
        &mut self,
        read: RegisterRange,
        write_start: u16,
        values: Words<'_>,
        out: &mut [u16],
    ) -> Result<(), ExceptionCode> {
        self.write_multiple_registers(write_start, values)?;
        self.read_holding_registers(read, out)
    }

    /// 07: the eight exception status outputs.
    fn read_exception_status(&mut self) -> Result<u8, ExceptionCode> {
        Err(ExceptionCode::IllegalFunction)
    }

    /// 08 / 02: the device's diagnostic register.
    fn diagnostic_register(&mut self) -> Result<u16, ExceptionCode> {
        Err(ExceptionCode::IllegalFunction)
    }

    /// 11: write the server id, run indicator (0x00 off, 0xFF on) and any
    /// device-specific data into `out` (251 bytes); return the length.
    fn report_server_id(&mut self, out: &mut [u8]) -> Result<usize, ExceptionCode> {
        let _ = out;
        Err(ExceptionCode::IllegalFunction)
    }

    /// 14: fill `out` with records of `file` starting at `record`.
    fn read_file_record(&mut self, file: u16, record: u16, out: &mut [u16]) -> Result<(), ExceptionCode> {
        let _ = (file, record, out);
        Err(ExceptionCode::IllegalFunction)
    }

    /// 15: write records of `file` starting at `record`.
    fn write_file_record(&mut self, file: u16, record: u16, values: Words<'_>) -> Result<(), ExceptionCode> {
        let _ = (file, record, values);
        Err(ExceptionCode::IllegalFunction)
    }

    /// 18: fill `out` with the queue at `address` (at most 31 values); return
    /// how many. A queue of more than 31 values answers 03.
    fn read_fifo_queue(&mut self, address: u16, out: &mut [u16; MAX_FIFO_COUNT]) -> Result<usize, ExceptionCode> {
        let _ = (address, out);
        Err(ExceptionCode::IllegalFunction)
    }

    /// 2B / 0E: the value of device identification object `id`, if the
    /// device has it. A device with no object 0 does not support the function.
    fn device_object(&self, id: u8) -> Option<&[u8]> {
        let _ = id;
        None
    }

    /// 2B / 0E: the conformity level (0x01..=0x03, plus 0x80 when single
    /// objects may be read). The default is worked out from the objects present.
    fn device_conformity(&self) -> u8 {
        if (0x80..=0xFF).any(|id| self.device_object(id).is_some()) {
            0x83
        } else if (0x03..=0x7F).any(|id| self.device_object(id).is_some()) {
            0x82
        } else {
            0x81
        }
    }

    /// 2B with another MEI type: write the response data (after the MEI type)
    /// into `out`; return its length.
    fn encapsulated_interface(&mut self, mei_type: u8, data: &[u8], out: &mut [u8]) -> Result<usize, ExceptionCode> {
        let _ = (mei_type, data, out);
        Err(ExceptionCode::IllegalFunction)
    }

    /// A user-defined function code: write the response data (after the
    /// function code) into `out` (252 bytes); return its length.
    fn custom(&mut self, function: u8, data: &[u8], out: &mut [u8]) -> Result<usize, ExceptionCode> {
        let _ = (function, data, out);
        Err(ExceptionCode::IllegalFunction)
    }
}

/// Serial-line diagnostic counters (function 08, sub-functions 0B..=12).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Counters {
    /// Messages seen on the bus (any unit).
    pub bus_messages: u16,
    /// Frames with a CRC error, reported by the transport.
    pub bus_communication_errors: u16,
    /// Exception responses sent.
    pub bus_exceptions: u16,
    /// Messages addressed to this server (broadcasts included).
    pub server_messages: u16,
    /// Messages for which no response was sent (broadcasts, listen-only mode).
    pub server_no_responses: u16,
    /// Negative acknowledge responses sent.
    pub server_naks: u16,
    /// Server device busy responses sent.
    pub server_busy: u16,
    /// Character overruns, reported by the transport.
    pub bus_character_overruns: u16,
}

/// A sans-IO Modbus server: the dispatcher between request bytes, a
/// [`DataModel`] and response bytes.
#[derive(Debug, Clone)]
pub struct Server {
    transport: Transport,
    listen_only: bool,
    counters: Counters,
    event_count: u16,
    events: [u8; MAX_COMM_EVENTS],
    events_len: usize,
}

/// Comm event log bytes (Application Protocol V1.1b3, 6.9).
mod event {
    pub(super) const RECEIVE: u8 = 0x80;
    pub(super) const RECEIVE_LISTEN_ONLY: u8 = 0x20;
    pub(super) const RECEIVE_BROADCAST: u8 = 0x40;
    pub(super) const SEND: u8 = 0x40;
    pub(super) const SEND_READ_EXCEPTION: u8 = 0x01;
    pub(super) const SEND_ABORT_EXCEPTION: u8 = 0x02;
    pub(super) const SEND_BUSY_EXCEPTION: u8 = 0x04;
    pub(super) const SEND_NAK_EXCEPTION: u8 = 0x08;
    pub(super) const LISTEN_ONLY_ENTERED: u8 = 0x04;
    pub(super) const RESTART: u8 = 0x00;
}

impl Server {
    /// A server for `transport`.
    pub const fn new(transport: Transport) -> Self {
        Server {
            transport,
            listen_only: false,
            counters: Counters {
                bus_messages: 0,
                bus_communication_errors: 0,
                bus_exceptions: 0,
                server_messages: 0,
                server_no_responses: 0,
                server_naks: 0,
                server_busy: 0,
                bus_character_overruns: 0,
            },
            event_count: 0,
            events: [0; MAX_COMM_EVENTS],
            events_len: 0,
        }
    }

    /// The diagnostic counters.
    pub fn counters(&self) -> Counters {
        self.counters
    }

    /// Whether the server is in listen-only mode (08 / 04): it answers
    /// nothing until Restart Communications (08 / 01).
    pub fn is_listen_only(&self) -> bool {
        self.listen_only
    }

    /// The transport reports a frame dropped for a CRC error.
    pub fn record_communication_error(&mut self) {
        self.counters.bus_communication_errors = self.counters.bus_communication_errors.wrapping_add(1);
        self.log_event(event::RECEIVE | 0x02);
    }

    /// The transport reports a character overrun.
    pub fn record_character_overrun(&mut self) {
        self.counters.bus_character_overruns = self.counters.bus_character_overruns.wrapping_add(1);
        self.log_event(event::RECEIVE | 0x10);
    }

    fn log_event(&mut self, byte: u8) {
        // Most recent first.
        let n = self.events_len.min(MAX_COMM_EVENTS - 1);
        self.events.copy_within(0..n, 1);
        self.events[0] = byte;
        self.events_len = (n + 1).min(MAX_COMM_EVENTS);
    }

    fn clear_counters(&mut self) {
        self.counters = Counters::default();
    }

    /// Handle one request PDU addressed to `unit`, writing the response PDU
    /// into `out`, which must hold [`crate::MAX_PDU_LEN`] bytes (any response
    /// fits; a shorter buffer is refused before the request is looked at).
    /// Returns the length of the response, or `None` when none is to be sent
    /// (a serial broadcast, listen-only mode, or a PDU too broken to answer).
    pub fn handle<M: DataModel + ?Sized>(
        &mut self,
        model: &mut M,
        unit: UnitId,
        request: &[u8],
        out: &mut [u8],
    ) -> Result<Option<usize>, EncodeError> {
        // With room for any PDU, a failure to encode below is the model's
        // (values that do not fit), answered as a device failure.
        if out.len() < crate::MAX_PDU_LEN {
            return Err(EncodeError::BufferTooSmall {
                needed: crate::MAX_PDU_LEN,
                available: out.len(),
            });
        }
        let broadcast = self.transport == Transport::Rtu && unit.is_broadcast();
        self.counters.bus_messages = self.counters.bus_messages.wrapping_add(1);
        self.counters.server_messages = self.counters.server_messages.wrapping_add(1);
        let mut receive = event::RECEIVE;
        if self.listen_only {
            receive |= event::RECEIVE_LISTEN_ONLY;
        }
        if broadcast {
            receive |= event::RECEIVE_BROADCAST;
        }
        self.log_event(receive);

        let Some(&function) = request.first() else {
            return Ok(self.no_response());
        };
        let decoded = Request::decode(request);
        if self.listen_only {
            if let Ok(Request::Diagnostics(d)) = decoded {
                if d.sub_function() == DiagnosticCode::RESTART_COMMUNICATIONS {
                    self.restart(d.data().get(0) == Some(0xFF00));
                }
            }
            return Ok(self.no_response());
        }
        let result = match decoded {
            Ok(req) => self.dispatch(model, &req, out),
            Err(e) => {
                // Function 0 and codes with the exception bit cannot be
                // answered with a meaningful exception: stay silent.
                if function == 0 || function >= 0x80 {
                    return Ok(self.no_response());
                }
                Err(e.exception_code())
            }
        };
        if broadcast {
            return Ok(self.no_response());
        }
        match result {
            Ok(Reply::Len(n)) => {
                if !matches!(
                    FunctionCode::from_u8(function),
                    FunctionCode::GetCommEventCounter | FunctionCode::GetCommEventLog
                ) {
                    self.event_count = self.event_count.wrapping_add(1);
                }
                self.log_event(event::SEND);
                Ok(Some(n))
            }
            Ok(Reply::None) => Ok(self.no_response()),
            Err(code) => {
                self.counters.bus_exceptions = self.counters.bus_exceptions.wrapping_add(1);
                let kind = match code {
                    ExceptionCode::IllegalFunction
                    | ExceptionCode::IllegalDataAddress
                    | ExceptionCode::IllegalDataValue => event::SEND_READ_EXCEPTION,
                    ExceptionCode::ServerDeviceFailure => event::SEND_ABORT_EXCEPTION,
                    ExceptionCode::Acknowledge | ExceptionCode::ServerDeviceBusy => {
                        self.counters.server_busy = self.counters.server_busy.wrapping_add(1);
                        event::SEND_BUSY_EXCEPTION
                    }
                    _ => {
                        self.counters.server_naks = self.counters.server_naks.wrapping_add(1);
                        event::SEND_NAK_EXCEPTION
                    }
                };
                self.log_event(event::SEND | kind);
                let exception = Response::Exception {
                    function: FunctionCode::from_u8(function & 0x7F),
                    code,
                };
                exception.encode(out).map(Some)
            }
        }
    }

    fn no_response(&mut self) -> Option<usize> {
        self.counters.server_no_responses = self.counters.server_no_responses.wrapping_add(1);
        None
    }

    fn restart(&mut self, clear_log: bool) {
        self.listen_only = false;
        self.clear_counters();
        if clear_log {
            self.events_len = 0;
        }
        self.log_event(event::RESTART);
    }

    fn dispatch<M: DataModel + ?Sized>(
        &mut self,
        model: &mut M,
        request: &Request<'_>,
        out: &mut [u8],
    ) -> Result<Reply, ExceptionCode> {
        let reply = |response: Response<'_>, out: &mut [u8]| {
            response
                .encode(out)
                .map(Reply::Len)
                .map_err(|_| ExceptionCode::ServerDeviceFailure)
        };
        match *request {
            Request::ReadCoils(range) | Request::ReadDiscreteInputs(range) => {
                let mut values = [false; 2000];
                let values = &mut values[..range.quantity() as usize];
                let coils = matches!(request, Request::ReadCoils(_));
                if coils {
                    model.read_coils(range, values)?;
                } else {
                    model.read_discrete_inputs(range, values)?;
                }
                let bits = Bits::from_bools(values);
                let response = if coils {
                    Response::ReadCoils(bits)
                } else {
                    Response::ReadDiscreteInputs(bits)
                };
                reply(response, out)
            }
            Request::ReadHoldingRegisters(range) | Request::ReadInputRegisters(range) => {
                let mut values = [0u16; 125];
                let values = &mut values[..range.quantity() as usize];
                let holding = matches!(request, Request::ReadHoldingRegisters(_));
                if holding {
                    model.read_holding_registers(range, values)?;
                } else {
                    model.read_input_registers(range, values)?;
                }
                let words = Words::from_slice(values);
                let response = if holding {
                    Response::ReadHoldingRegisters(words)
                } else {
                    Response::ReadInputRegisters(words)
                };
                reply(response, out)
            }
            Request::WriteSingleCoil { address, value } => {
                model.write_single_coil(address, value)?;
                reply(Response::WriteSingleCoil { address, value }, out)
            }
            Request::WriteSingleRegister { address, value } => {
                model.write_single_register(address, value)?;
                reply(Response::WriteSingleRegister { address, value }, out)
            }
            Request::WriteMultipleCoils(w) => {
                model.write_multiple_coils(w.start(), w.values())?;
                reply(
                    Response::WriteMultipleCoils {
                        start: w.start(),
                        quantity: w.quantity(),
                    },
                    out,
                )
            }
            Request::WriteMultipleRegisters(w) => {
                model.write_multiple_registers(w.start(), w.values())?;
                reply(
                    Response::WriteMultipleRegisters {
                        start: w.start(),
                        quantity: w.quantity(),
                    },
                    out,
                )
            }
            Request::MaskWriteRegister {
                address,
                and_mask,
                or_mask,
            } => {
                model.mask_write_register(address, and_mask, or_mask)?;
                reply(
                    Response::MaskWriteRegister {
                        address,
                        and_mask,
                        or_mask,
                    },
                    out,
                )
            }
            Request::ReadWriteMultipleRegisters(rw) => {
                let mut values = [0u16; 125];
                let values = &mut values[..rw.read.quantity() as usize];
                model.read_write_multiple_registers(rw.read, rw.write.start(), rw.write.values(), values)?;
                reply(Response::ReadWriteMultipleRegisters(Words::from_slice(values)), out)
            }
            Request::ReadExceptionStatus => {
                let status = model.read_exception_status()?;
                reply(Response::ReadExceptionStatus(status), out)
            }
            Request::Diagnostics(d) => self.diagnostics(model, d, out),
            Request::GetCommEventCounter => reply(
                Response::GetCommEventCounter {
                    status: 0,
                    event_count: self.event_count,
                },
                out,
            ),
            Request::GetCommEventLog => {
                let events = self.events;
                let log = CommEventLog {
                    status: 0,
                    event_count: self.event_count,
                    message_count: self.counters.bus_messages,
                    events: &events[..self.events_len],
                };
                reply(Response::GetCommEventLog(log), out)
            }
            Request::ReportServerId => {
                let mut data = [0u8; 251];
                let n = model.report_server_id(&mut data)?;
                let data = data.get(..n).ok_or(ExceptionCode::ServerDeviceFailure)?;
                reply(Response::ReportServerId(data), out)
            }
            Request::ReadFileRecord(reads) => {
                // The request was checked to ask for at most 251 bytes of
                // data, so every group fits `storage` one after another.
                let mut storage = [0u16; 125];
                let mut offset = 0;
                for sub in reads.iter() {
                    let chunk = storage
                        .get_mut(offset..offset + sub.length as usize)
                        .ok_or(ExceptionCode::IllegalDataValue)?;
                    model.read_file_record(sub.file, sub.record, chunk)?;
                    offset += chunk.len();
                }
                let mut groups = [Words::from_slice(&[]); crate::pdu::file::FileReads::MAX_SUB_REQUESTS];
                let mut rest: &[u16] = &storage;
                for (group, sub) in groups.iter_mut().zip(reads.iter()) {
                    let (head, tail) = rest
                        .split_at_checked(sub.length as usize)
                        .ok_or(ExceptionCode::ServerDeviceFailure)?;
                    *group = Words::from_slice(head);
                    rest = tail;
                }
                let n = reads.len();
                let response = FileReadResponse::new(&groups[..n]).map_err(|_| ExceptionCode::IllegalDataValue)?;
                reply(Response::ReadFileRecord(response), out)
            }
            Request::WriteFileRecord(writes) => {
                for group in writes.iter() {
                    model.write_file_record(group.file, group.record, group.values)?;
                }
                reply(Response::WriteFileRecord(writes), out)
            }
            Request::ReadFifoQueue { address } => {
                let mut values = [0u16; MAX_FIFO_COUNT];
                let n = model.read_fifo_queue(address, &mut values)?;
                let values = values.get(..n).ok_or(ExceptionCode::IllegalDataValue)?;
                reply(Response::ReadFifoQueue(Words::from_slice(values)), out)
            }
            Request::ReadDeviceIdentification { code, object_id } => {
                self.device_identification(model, code, object_id, out)
            }
            Request::EncapsulatedInterface(m) => {
                let mut data = [0u8; crate::MAX_PDU_LEN - 2];
                let n = model.encapsulated_interface(m.mei_type(), m.data(), &mut data)?;
                let data = data.get(..n).ok_or(ExceptionCode::ServerDeviceFailure)?;
                let pdu = MeiPdu::new(m.mei_type(), data).map_err(|_| ExceptionCode::ServerDeviceFailure)?;
                reply(Response::EncapsulatedInterface(pdu), out)
            }
            Request::Custom(c) => {
                let mut data = [0u8; crate::MAX_PDU_LEN - 1];
                let n = model.custom(c.function(), c.data(), &mut data)?;
                let data = data.get(..n).ok_or(ExceptionCode::ServerDeviceFailure)?;
                let pdu = CustomPdu::new(c.function(), data).map_err(|_| ExceptionCode::ServerDeviceFailure)?;
                reply(Response::Custom(pdu), out)
            }
        }
    }

    fn diagnostics<M: DataModel + ?Sized>(
        &mut self,
        model: &mut M,
        d: Diagnostic<'_>,
        out: &mut [u8],
    ) -> Result<Reply, ExceptionCode> {
        let sub = d.sub_function();
        let echo = |out: &mut [u8]| {
            Response::Diagnostics(d)
                .encode(out)
                .map(Reply::Len)
                .map_err(|_| ExceptionCode::ServerDeviceFailure)
        };
        if sub == DiagnosticCode::RETURN_QUERY_DATA {
            return echo(out);
        }
        // Every other sub-function carries exactly one data word.
        let data = match (d.data().len(), d.data().get(0)) {
            (1, Some(v)) => v,
            _ => return Err(ExceptionCode::IllegalDataValue),
        };
        let counter = |value: u16, out: &mut [u8]| {
            let words = [value];
            let response =
                Diagnostic::new(sub, Words::from_slice(&words)).map_err(|_| ExceptionCode::ServerDeviceFailure)?;
            Response::Diagnostics(response)
                .encode(out)
                .map(Reply::Len)
                .map_err(|_| ExceptionCode::ServerDeviceFailure)
        };
        let c = self.counters;
        match sub.0 {
            0x01 => {
                if data != 0x0000 && data != 0xFF00 {
                    return Err(ExceptionCode::IllegalDataValue);
                }
                self.restart(data == 0xFF00);
                echo(out)
            }
            0x04 => {
                if data != 0 {
                    return Err(ExceptionCode::IllegalDataValue);
                }
                self.listen_only = true;
                self.log_event(event::LISTEN_ONLY_ENTERED);
                Ok(Reply::None)
            }
            0x0A | 0x14 => {
                if data != 0 {
                    return Err(ExceptionCode::IllegalDataValue);
                }
                if sub.0 == 0x0A {
                    self.clear_counters();
                } else {
                    self.counters.bus_character_overruns = 0;
                }
                echo(out)
            }
            0x02 | 0x0B..=0x12 if data != 0 => Err(ExceptionCode::IllegalDataValue),
            0x02 => counter(model.diagnostic_register()?, out),
            0x0B => counter(c.bus_messages, out),
            0x0C => counter(c.bus_communication_errors, out),
            0x0D => counter(c.bus_exceptions, out),
            0x0E => counter(c.server_messages, out),
            0x0F => counter(c.server_no_responses, out),
            0x10 => counter(c.server_naks, out),
            0x11 => counter(c.server_busy, out),
            0x12 => counter(c.bus_character_overruns, out),
            _ => Err(ExceptionCode::IllegalFunction),
        }
    }

    fn device_identification<M: DataModel + ?Sized>(
        &mut self,
        model: &M,
        code: ReadDeviceIdCode,
        object_id: u8,
        out: &mut [u8],
    ) -> Result<Reply, ExceptionCode> {
        if model.device_object(0).is_none() {
            return Err(ExceptionCode::IllegalFunction);
        }
        let conformity = model.device_conformity();
        let mut objects = [DeviceObject { id: 0, value: &[] }; 123];
        let mut count = 0;
        let mut more_follows = false;
        let mut next_object_id = 0;
        if code == ReadDeviceIdCode::Specific {
            // An object too large for one answer fails to encode below,
            // which answers 04 like any value that does not fit.
            let value = model
                .device_object(object_id)
                .ok_or(ExceptionCode::IllegalDataAddress)?;
            objects[0] = DeviceObject { id: object_id, value };
            count = 1;
        } else {
            let last = code.last_object();
            // An unknown start object restarts the stream at 0.
            let start = if object_id <= last && model.device_object(object_id).is_some() {
                object_id
            } else {
                0
            };
            // Bytes left after fc, MEI, read code, conformity, more, next, count.
            let mut room = crate::MAX_PDU_LEN - 7;
            for id in start..=last {
                let Some(value) = model.device_object(id) else {
                    continue;
                };
                let need = 2 + value.len();
                if need > room || count == objects.len() {
                    more_follows = true;
                    next_object_id = id;
                    break;
                }
                room -= need;
                objects[count] = DeviceObject { id, value };
                count += 1;
            }
            if count == 0 {
                return Err(ExceptionCode::ServerDeviceFailure);
            }
        }
        let response = Response::ReadDeviceIdentification(DeviceIdentification {
            read_code: code,
            conformity,
            more_follows,
            next_object_id,
            objects: DeviceObjects::from_slice(&objects[..count]),
        });
        response
            .encode(out)
            .map(Reply::Len)
            .map_err(|_| ExceptionCode::ServerDeviceFailure)
    }
}

enum Reply {
    Len(usize),
    None,
}
