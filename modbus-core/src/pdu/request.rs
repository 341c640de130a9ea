//! Request PDUs: every public function code, both directions.

use crate::codec::{Reader, Writer, MAX_PDU_LEN};
use crate::data::{Bits, Words};
use crate::error::{DecodeError, EncodeError, RangeError};
use crate::function::{FunctionCode, MEI_READ_DEVICE_ID};
use crate::pdu::device_id::ReadDeviceIdCode;
use crate::pdu::file::{FileReads, FileWrites};
use crate::pdu::raw::{CustomPdu, Diagnostic, DiagnosticCode, MeiPdu};
use crate::types::{AddressRange, CoilRange, CoilWrite, ReadWriteRegisters, RegisterRange, RegisterWrite};

/// The wire value of a coil switched on (function 05).
pub(crate) const COIL_ON: u16 = 0xFF00;
/// The wire value of a coil switched off (function 05).
pub(crate) const COIL_OFF: u16 = 0x0000;

/// A Modbus request PDU.
///
/// Values are validated: a `Request` can always be encoded, and decoding
/// borrows from the input without copying values.
///
/// ```
/// use outpost_modbus_core::{Request, RegisterRange};
///
/// let request = Request::ReadHoldingRegisters(RegisterRange::new(0x006B, 3)?);
/// let mut buf = [0u8; 253];
/// let n = request.encode(&mut buf)?;
/// assert_eq!(&buf[..n], &[0x03, 0x00, 0x6B, 0x00, 0x03]);
/// assert_eq!(Request::decode(&buf[..n])?, request);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request<'a> {
    /// 01 Read Coils.
    ReadCoils(CoilRange),
    /// 02 Read Discrete Inputs.
    ReadDiscreteInputs(CoilRange),
    /// 03 Read Holding Registers.
    ReadHoldingRegisters(RegisterRange),
    /// 04 Read Input Registers.
    ReadInputRegisters(RegisterRange),
    /// 05 Write Single Coil.
    WriteSingleCoil {
        /// Coil address.
        address: u16,
        /// New state.
        value: bool,
    },
    /// 06 Write Single Register.
    WriteSingleRegister {
        /// Register address.
        address: u16,
        /// New value.
        value: u16,
    },
    /// 07 Read Exception Status.
    ReadExceptionStatus,
    /// 08 Diagnostics.
    Diagnostics(Diagnostic<'a>),
    /// 0B Get Comm Event Counter.
    GetCommEventCounter,
    /// 0C Get Comm Event Log.
    GetCommEventLog,
    /// 0F Write Multiple Coils.
    WriteMultipleCoils(CoilWrite<'a>),
    /// 10 Write Multiple Registers.
    WriteMultipleRegisters(RegisterWrite<'a>),
    /// 11 Report Server ID.
    ReportServerId,
    /// 14 Read File Record.
    ReadFileRecord(FileReads<'a>),
    /// 15 Write File Record.
    WriteFileRecord(FileWrites<'a>),
    /// 16 Mask Write Register: `(current AND and_mask) OR (or_mask AND NOT and_mask)`.
    MaskWriteRegister {
        /// Register address.
        address: u16,
        /// AND mask.
        and_mask: u16,
        /// OR mask.
        or_mask: u16,
    },
    /// 17 Read/Write Multiple Registers.
    ReadWriteMultipleRegisters(ReadWriteRegisters<'a>),
    /// 18 Read FIFO Queue.
    ReadFifoQueue {
        /// FIFO pointer address (the count register).
        address: u16,
    },
    /// 2B / 0E Read Device Identification.
    ReadDeviceIdentification {
        /// Which objects to read.
        code: ReadDeviceIdCode,
        /// First object (stream access) or the one object (specific access).
        object_id: u8,
    },
    /// 2B with another MEI type.
    EncapsulatedInterface(MeiPdu<'a>),
    /// A user-defined or unknown function code.
    Custom(CustomPdu<'a>),
}

impl<'a> Request<'a> {
    /// The function code of the request.
    #[inline]
    pub fn function(&self) -> FunctionCode {
        match self {
            Request::ReadCoils(_) => FunctionCode::ReadCoils,
            Request::ReadDiscreteInputs(_) => FunctionCode::ReadDiscreteInputs,
            Request::ReadHoldingRegisters(_) => FunctionCode::ReadHoldingRegisters,
            Request::ReadInputRegisters(_) => FunctionCode::ReadInputRegisters,
            Request::WriteSingleCoil { .. } => FunctionCode::WriteSingleCoil,
            Request::WriteSingleRegister { .. } => FunctionCode::WriteSingleRegister,
            Request::ReadExceptionStatus => FunctionCode::ReadExceptionStatus,
            Request::Diagnostics(_) => FunctionCode::Diagnostics,
            Request::GetCommEventCounter => FunctionCode::GetCommEventCounter,
            Request::GetCommEventLog => FunctionCode::GetCommEventLog,
            Request::WriteMultipleCoils(_) => FunctionCode::WriteMultipleCoils,
            Request::WriteMultipleRegisters(_) => FunctionCode::WriteMultipleRegisters,
            Request::ReportServerId => FunctionCode::ReportServerId,
            Request::ReadFileRecord(_) => FunctionCode::ReadFileRecord,
            Request::WriteFileRecord(_) => FunctionCode::WriteFileRecord,
            Request::MaskWriteRegister { .. } => FunctionCode::MaskWriteRegister,
            Request::ReadWriteMultipleRegisters(_) => FunctionCode::ReadWriteMultipleRegisters,
            Request::ReadFifoQueue { .. } => FunctionCode::ReadFifoQueue,
            Request::ReadDeviceIdentification { .. } | Request::EncapsulatedInterface(_) => {
                FunctionCode::EncapsulatedInterfaceTransport
            }
            Request::Custom(c) => FunctionCode::Custom(c.function()),
        }
    }

    /// Whether the request changes state in the device (the part of a
    /// transaction that must never be re-sent when its outcome is unknown).
    pub fn is_write(&self) -> bool {
        matches!(self.function().class(), crate::FunctionClass::Write)
            || matches!(self, Request::Custom(_) | Request::EncapsulatedInterface(_))
            || matches!(self, Request::Diagnostics(d) if !matches!(d.sub_function().0, 0x00 | 0x02 | 0x0B..=0x12))
    }

    /// Length of the encoded PDU in bytes, function code included.
    #[inline]
    pub fn encoded_len(&self) -> usize {
        match self {
            Request::ReadCoils(_)
            | Request::ReadDiscreteInputs(_)
            | Request::ReadHoldingRegisters(_)
            | Request::ReadInputRegisters(_)
            | Request::WriteSingleCoil { .. }
            | Request::WriteSingleRegister { .. } => 5,
            Request::ReadExceptionStatus
            | Request::GetCommEventCounter
            | Request::GetCommEventLog
            | Request::ReportServerId => 1,
            Request::Diagnostics(d) => 3 + 2 * d.data().len(),
            Request::WriteMultipleCoils(w) => 6 + w.values().packed_len(),
            Request::WriteMultipleRegisters(w) => 6 + 2 * w.values().len(),
            Request::ReadFileRecord(r) => r.encoded_len(),
            Request::WriteFileRecord(w) => w.encoded_len(),
            Request::MaskWriteRegister { .. } => 7,
            Request::ReadWriteMultipleRegisters(rw) => 10 + 2 * rw.write.values().len(),
            Request::ReadFifoQueue { .. } => 3,
            Request::ReadDeviceIdentification { .. } => 4,
            Request::EncapsulatedInterface(m) => 2 + m.data().len(),
            Request::Custom(c) => 1 + c.data().len(),
        }
    }

    /// Encode the PDU into `buf`; returns the number of bytes written.
    #[inline]
    pub fn encode(&self, buf: &mut [u8]) -> Result<usize, EncodeError> {
        let mut w = Writer::new(buf, self.encoded_len(), MAX_PDU_LEN)?;
        w.u8(self.function().value())?;
        match self {
            Request::ReadCoils(r) | Request::ReadDiscreteInputs(r) => encode_range(&mut w, *r)?,
            Request::ReadHoldingRegisters(r) | Request::ReadInputRegisters(r) => encode_range(&mut w, *r)?,
            Request::WriteSingleCoil { address, value } => {
                w.u16(*address)?;
                w.u16(if *value { COIL_ON } else { COIL_OFF })?;
            }
            Request::WriteSingleRegister { address, value } => {
                w.u16(*address)?;
                w.u16(*value)?;
            }
            Request::ReadExceptionStatus
            | Request::GetCommEventCounter
            | Request::GetCommEventLog
            | Request::ReportServerId => {}
            Request::Diagnostics(d) => {
                w.u16(d.sub_function().0)?;
                d.data().write_be(w.reserve(2 * d.data().len())?);
            }
            Request::WriteMultipleCoils(c) => {
                w.u16(c.start())?;
                w.u16(c.quantity())?;
                let n = c.values().packed_len();
                w.u8(n as u8)?;
                c.values().write_packed(w.reserve(n)?);
            }
            Request::WriteMultipleRegisters(r) => {
                w.u16(r.start())?;
                w.u16(r.quantity())?;
                let n = 2 * r.values().len();
                w.u8(n as u8)?;
                r.values().write_be(w.reserve(n)?);
            }
            Request::ReadFileRecord(r) => r.encode(&mut w)?,
            Request::WriteFileRecord(f) => f.encode(&mut w)?,
            Request::MaskWriteRegister {
                address,
                and_mask,
                or_mask,
            } => {
                w.u16(*address)?;
                w.u16(*and_mask)?;
                w.u16(*or_mask)?;
            }
            Request::ReadWriteMultipleRegisters(rw) => {
                encode_range(&mut w, rw.read)?;
                w.u16(rw.write.start())?;
                w.u16(rw.write.quantity())?;
                let n = 2 * rw.write.values().len();
                w.u8(n as u8)?;
                rw.write.values().write_be(w.reserve(n)?);
            }
            Request::ReadFifoQueue { address } => w.u16(*address)?,
            Request::ReadDeviceIdentification { code, object_id } => {
                w.u8(MEI_READ_DEVICE_ID)?;
                w.u8(code.value())?;
                w.u8(*object_id)?;
            }
            Request::EncapsulatedInterface(m) => {
                w.u8(m.mei_type())?;
                w.bytes(m.data())?;
            }
            Request::Custom(c) => w.bytes(c.data())?,
        }
        Ok(w.position())
    }

    /// Decode a request PDU. The whole slice must be one PDU.
    pub fn decode(pdu: &'a [u8]) -> Result<Self, DecodeError> {
        let (function, mut r) = Reader::new(pdu)?;
        if function == 0 || function >= 0x80 {
            return Err(DecodeError::InvalidFunction { function });
        }
        let request = match FunctionCode::from_u8(function) {
            FunctionCode::ReadCoils => Request::ReadCoils(decode_range(&mut r)?),
            FunctionCode::ReadDiscreteInputs => Request::ReadDiscreteInputs(decode_range(&mut r)?),
            FunctionCode::ReadHoldingRegisters => Request::ReadHoldingRegisters(decode_range(&mut r)?),
            FunctionCode::ReadInputRegisters => Request::ReadInputRegisters(decode_range(&mut r)?),
            FunctionCode::WriteSingleCoil => {
                let address = r.u16()?;
                let value = decode_coil_value(&mut r)?;
                Request::WriteSingleCoil { address, value }
            }
            FunctionCode::WriteSingleRegister => Request::WriteSingleRegister {
                address: r.u16()?,
                value: r.u16()?,
            },
            FunctionCode::ReadExceptionStatus => Request::ReadExceptionStatus,
            FunctionCode::Diagnostics => Request::Diagnostics(decode_diagnostic(&mut r)?),
            FunctionCode::GetCommEventCounter => Request::GetCommEventCounter,
            FunctionCode::GetCommEventLog => Request::GetCommEventLog,
            FunctionCode::WriteMultipleCoils => {
                let start = r.u16()?;
                let quantity = r.u16()?;
                check_quantity(&r, start, quantity, CoilWrite::MAX_QUANTITY)?;
                let n = r.u8()? as usize;
                let expected = (quantity as usize).div_ceil(8);
                if n != expected {
                    return Err(r.byte_count(n, expected));
                }
                let bytes = r.take(n)?;
                let bits = Bits::from_packed(bytes, quantity as usize).ok_or_else(|| r.byte_count(n, expected))?;
                Request::WriteMultipleCoils(CoilWrite::new(start, bits).map_err(|e| r.range(e))?)
            }
            FunctionCode::WriteMultipleRegisters => {
                let start = r.u16()?;
                let values = decode_register_values(&mut r, start, 123)?;
                Request::WriteMultipleRegisters(RegisterWrite::new(start, values).map_err(|e| r.range(e))?)
            }
            FunctionCode::ReportServerId => Request::ReportServerId,
            FunctionCode::ReadFileRecord => Request::ReadFileRecord(FileReads::decode(&mut r)?),
            FunctionCode::WriteFileRecord => Request::WriteFileRecord(FileWrites::decode(&mut r)?),
            FunctionCode::MaskWriteRegister => Request::MaskWriteRegister {
                address: r.u16()?,
                and_mask: r.u16()?,
                or_mask: r.u16()?,
            },
            FunctionCode::ReadWriteMultipleRegisters => {
                let read = decode_range(&mut r)?;
                let start = r.u16()?;
                let values = decode_register_values(&mut r, start, 121)?;
                let write = RegisterWrite::new(start, values).map_err(|e| r.range(e))?;
                Request::ReadWriteMultipleRegisters(ReadWriteRegisters { read, write })
            }
            FunctionCode::ReadFifoQueue => Request::ReadFifoQueue { address: r.u16()? },
            FunctionCode::EncapsulatedInterfaceTransport => {
                let mei_type = r.u8()?;
                if mei_type == MEI_READ_DEVICE_ID {
                    let code = ReadDeviceIdCode::decode(&mut r)?;
                    Request::ReadDeviceIdentification {
                        code,
                        object_id: r.u8()?,
                    }
                } else {
                    Request::EncapsulatedInterface(MeiPdu::new(mei_type, r.rest()).map_err(|e| r.range(e))?)
                }
            }
            FunctionCode::Custom(_) => Request::Custom(CustomPdu::new(function, r.rest()).map_err(|e| r.range(e))?),
        };
        r.finish()?;
        Ok(request)
    }
}

fn encode_range<const MAX: u16>(w: &mut Writer<'_>, r: AddressRange<MAX>) -> Result<(), EncodeError> {
    w.u16(r.start())?;
    w.u16(r.quantity())
}

fn check_quantity(r: &Reader<'_>, start: u16, quantity: u16, max: u16) -> Result<(), DecodeError> {
    if quantity == 0 || quantity > max {
        return Err(r.range(RangeError::Quantity { quantity, min: 1, max }));
    }
    if start as u32 + quantity as u32 > 0x1_0000 {
        return Err(r.range(RangeError::Overflow { start, quantity }));
    }
    Ok(())
}

fn decode_range<const MAX: u16>(r: &mut Reader<'_>) -> Result<AddressRange<MAX>, DecodeError> {
    let start = r.u16()?;
    let quantity = r.u16()?;
    AddressRange::new(start, quantity).map_err(|e| r.range(e))
}

pub(crate) fn decode_coil_value(r: &mut Reader<'_>) -> Result<bool, DecodeError> {
    match r.u16()? {
        COIL_ON => Ok(true),
        COIL_OFF => Ok(false),
        other => Err(r.range(RangeError::Value {
            field: "coil value",
            value: other,
        })),
    }
}

pub(crate) fn decode_diagnostic<'a>(r: &mut Reader<'a>) -> Result<Diagnostic<'a>, DecodeError> {
    let sub_function = DiagnosticCode(r.u16()?);
    let rest = r.rest();
    let data = Words::from_be_bytes(rest).ok_or_else(|| r.byte_count(rest.len(), rest.len() + 1))?;
    Diagnostic::new(sub_function, data).map_err(|e| r.range(e))
}

/// Quantity, byte count and values of functions 10 and 17 (write half).
fn decode_register_values<'a>(r: &mut Reader<'a>, start: u16, max: u16) -> Result<Words<'a>, DecodeError> {
    let quantity = r.u16()?;
    check_quantity(r, start, quantity, max)?;
    let n = r.u8()? as usize;
    let expected = 2 * quantity as usize;
    if n != expected {
        return Err(r.byte_count(n, expected));
    }
    let bytes = r.take(n)?;
    Words::from_be_bytes(bytes).ok_or_else(|| r.byte_count(n, expected))
}
