//! Response PDUs: every public function code and exception responses.

use crate::codec::{Reader, Writer, MAX_PDU_LEN};
use crate::data::{Bits, Words};
use crate::error::{DecodeError, EncodeError, RangeError};
use crate::exception::ExceptionCode;
use crate::function::{FunctionCode, MEI_READ_DEVICE_ID};
use crate::pdu::device_id::DeviceIdentification;
use crate::pdu::file::{FileReadResponse, FileWrites};
use crate::pdu::raw::{CustomPdu, Diagnostic, MeiPdu};
use crate::pdu::request::{decode_coil_value, decode_diagnostic, COIL_OFF, COIL_ON};

/// The most events a Get Comm Event Log response carries.
pub const MAX_COMM_EVENTS: usize = 64;
/// The most values a Read FIFO Queue response carries.
pub const MAX_FIFO_COUNT: usize = 31;

/// A Get Comm Event Log (0C) response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CommEventLog<'a> {
    /// Status word: 0xFFFF while a previous command is still being processed.
    pub status: u16,
    /// The comm event counter.
    pub event_count: u16,
    /// The bus message count.
    pub message_count: u16,
    /// Up to 64 event bytes, most recent first.
    pub events: &'a [u8],
}

/// A Modbus response PDU: a normal response or an exception.
///
/// Decoding without the request cannot know how many coils were asked for,
/// so [`Response::decode`] returns every bit of the last byte; the client's
/// [`crate::Expectation`] checks a response against its request and trims
/// coil values to the quantity asked.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Response<'a> {
    /// 01 Read Coils.
    ReadCoils(Bits<'a>),
    /// 02 Read Discrete Inputs.
    ReadDiscreteInputs(Bits<'a>),
    /// 03 Read Holding Registers.
    ReadHoldingRegisters(Words<'a>),
    /// 04 Read Input Registers.
    ReadInputRegisters(Words<'a>),
    /// 05 Write Single Coil (echo).
    WriteSingleCoil {
        /// Coil address.
        address: u16,
        /// New state.
        value: bool,
    },
    /// 06 Write Single Register (echo).
    WriteSingleRegister {
        /// Register address.
        address: u16,
        /// New value.
        value: u16,
    },
    /// 07 Read Exception Status: eight exception status outputs.
    ReadExceptionStatus(u8),
    /// 08 Diagnostics.
    Diagnostics(Diagnostic<'a>),
    /// 0B Get Comm Event Counter.
    GetCommEventCounter {
        /// Status word: 0xFFFF while a previous command is still being processed.
        status: u16,
        /// The comm event counter.
        event_count: u16,
    },
    /// 0C Get Comm Event Log.
    GetCommEventLog(CommEventLog<'a>),
    /// 0F Write Multiple Coils.
    WriteMultipleCoils {
        /// First coil written.
        start: u16,
        /// Number of coils written.
        quantity: u16,
    },
    /// 10 Write Multiple Registers.
    WriteMultipleRegisters {
        /// First register written.
        start: u16,
        /// Number of registers written.
        quantity: u16,
    },
    /// 11 Report Server ID: server id, run indicator and device-specific data.
    ReportServerId(&'a [u8]),
    /// 14 Read File Record.
    ReadFileRecord(FileReadResponse<'a>),
    /// 15 Write File Record (echo).
    WriteFileRecord(FileWrites<'a>),
    /// 16 Mask Write Register (echo).
    MaskWriteRegister {
        /// Register address.
        address: u16,
        /// AND mask.
        and_mask: u16,
        /// OR mask.
        or_mask: u16,
    },
    /// 17 Read/Write Multiple Registers: the registers read.
    ReadWriteMultipleRegisters(Words<'a>),
    /// 18 Read FIFO Queue: up to 31 queued values.
    ReadFifoQueue(Words<'a>),
    /// 2B / 0E Read Device Identification.
    ReadDeviceIdentification(DeviceIdentification<'a>),
    /// 2B with another MEI type.
    EncapsulatedInterface(MeiPdu<'a>),
    /// An exception response to `function`.
    Exception {
        /// The function of the request.
        function: FunctionCode,
        /// Why it failed.
        code: ExceptionCode,
    },
    /// A user-defined or unknown function code.
    Custom(CustomPdu<'a>),
}

impl<'a> Response<'a> {
    /// The function code of the response (for an exception, the request's).
    pub fn function(&self) -> FunctionCode {
        match self {
            Response::ReadCoils(_) => FunctionCode::ReadCoils,
            Response::ReadDiscreteInputs(_) => FunctionCode::ReadDiscreteInputs,
            Response::ReadHoldingRegisters(_) => FunctionCode::ReadHoldingRegisters,
            Response::ReadInputRegisters(_) => FunctionCode::ReadInputRegisters,
            Response::WriteSingleCoil { .. } => FunctionCode::WriteSingleCoil,
            Response::WriteSingleRegister { .. } => FunctionCode::WriteSingleRegister,
            Response::ReadExceptionStatus(_) => FunctionCode::ReadExceptionStatus,
            Response::Diagnostics(_) => FunctionCode::Diagnostics,
            Response::GetCommEventCounter { .. } => FunctionCode::GetCommEventCounter,
            Response::GetCommEventLog(_) => FunctionCode::GetCommEventLog,
            Response::WriteMultipleCoils { .. } => FunctionCode::WriteMultipleCoils,
            Response::WriteMultipleRegisters { .. } => FunctionCode::WriteMultipleRegisters,
            Response::ReportServerId(_) => FunctionCode::ReportServerId,
            Response::ReadFileRecord(_) => FunctionCode::ReadFileRecord,
            Response::WriteFileRecord(_) => FunctionCode::WriteFileRecord,
            Response::MaskWriteRegister { .. } => FunctionCode::MaskWriteRegister,
            Response::ReadWriteMultipleRegisters(_) => FunctionCode::ReadWriteMultipleRegisters,
            Response::ReadFifoQueue(_) => FunctionCode::ReadFifoQueue,
            Response::ReadDeviceIdentification(_) | Response::EncapsulatedInterface(_) => {
                FunctionCode::EncapsulatedInterfaceTransport
            }
            Response::Exception { function, .. } => *function,
            Response::Custom(c) => FunctionCode::Custom(c.function()),
        }
    }

    /// The exception code, if this is an exception response.
    pub fn exception(&self) -> Option<ExceptionCode> {
        match self {
            Response::Exception { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// Length of the encoded PDU in bytes, function code included.
    pub fn encoded_len(&self) -> usize {
        match self {
            Response::ReadCoils(b) | Response::ReadDiscreteInputs(b) => 2 + b.packed_len(),
            Response::ReadHoldingRegisters(w)
            | Response::ReadInputRegisters(w)
            | Response::ReadWriteMultipleRegisters(w) => 2 + 2 * w.len(),
            Response::WriteSingleCoil { .. }
            | Response::WriteSingleRegister { .. }
            | Response::GetCommEventCounter { .. }
            | Response::WriteMultipleCoils { .. }
            | Response::WriteMultipleRegisters { .. } => 5,
            Response::ReadExceptionStatus(_) | Response::Exception { .. } => 2,
            Response::Diagnostics(d) => 3 + 2 * d.data().len(),
            Response::GetCommEventLog(log) => 8 + log.events.len(),
            Response::ReportServerId(data) => 2 + data.len(),
            Response::ReadFileRecord(r) => r.encoded_len(),
            Response::WriteFileRecord(w) => w.encoded_len(),
            Response::MaskWriteRegister { .. } => 7,
            Response::ReadFifoQueue(w) => 5 + 2 * w.len(),
            Response::ReadDeviceIdentification(d) => d.encoded_len(),
            Response::EncapsulatedInterface(m) => 2 + m.data().len(),
            Response::Custom(c) => 1 + c.data().len(),
        }
    }

    /// Encode the PDU into `buf`; returns the number of bytes written.
    ///
    /// Fails with [`EncodeError::PduTooLarge`] when the values do not fit one
    /// PDU (for example more than 125 registers).
    pub fn encode(&self, buf: &mut [u8]) -> Result<usize, EncodeError> {
        let len = self.encoded_len();
        let too_large = EncodeError::PduTooLarge { len };
        let mut w = Writer::new(buf, len, MAX_PDU_LEN)?;
        match self {
            Response::Exception { function, code } => {
                w.u8(function.value() | 0x80)?;
                w.u8(code.value())?;
                return Ok(w.position());
            }
            _ => w.u8(self.function().value())?,
        }
        match self {
            Response::ReadCoils(b) | Response::ReadDiscreteInputs(b) => {
                let n = b.packed_len();
                if n == 0 || n > 250 {
                    return Err(too_large);
                }
                w.u8(n as u8)?;
                b.write_packed(w.reserve(n)?);
            }
            Response::ReadHoldingRegisters(v)
            | Response::ReadInputRegisters(v)
            | Response::ReadWriteMultipleRegisters(v) => {
                if v.len() > 125 {
                    return Err(too_large);
                }
                let n = 2 * v.len();
                w.u8(n as u8)?;
                v.write_be(w.reserve(n)?);
            }
            Response::WriteSingleCoil { address, value } => {
                w.u16(*address)?;
                w.u16(if *value { COIL_ON } else { COIL_OFF })?;
            }
            Response::WriteSingleRegister { address, value } => {
                w.u16(*address)?;
                w.u16(*value)?;
            }
            Response::ReadExceptionStatus(status) => w.u8(*status)?,
            Response::Diagnostics(d) => {
                w.u16(d.sub_function().0)?;
                d.data().write_be(w.reserve(2 * d.data().len())?);
            }
            Response::GetCommEventCounter { status, event_count } => {
                w.u16(*status)?;
                w.u16(*event_count)?;
            }
            Response::GetCommEventLog(log) => {
                if log.events.len() > MAX_COMM_EVENTS {
                    return Err(too_large);
                }
                w.u8((6 + log.events.len()) as u8)?;
                w.u16(log.status)?;
                w.u16(log.event_count)?;
                w.u16(log.message_count)?;
                w.bytes(log.events)?;
            }
            Response::WriteMultipleCoils { start, quantity } | Response::WriteMultipleRegisters { start, quantity } => {
                w.u16(*start)?;
                w.u16(*quantity)?;
            }
            Response::ReportServerId(data) => {
                w.u8(data.len() as u8)?;
                w.bytes(data)?;
            }
            Response::ReadFileRecord(r) => r.encode(&mut w)?,
            Response::WriteFileRecord(f) => f.encode(&mut w)?,
            Response::MaskWriteRegister {
                address,
                and_mask,
                or_mask,
            } => {
                w.u16(*address)?;
                w.u16(*and_mask)?;
                w.u16(*or_mask)?;
            }
            Response::ReadFifoQueue(v) => {
                if v.len() > MAX_FIFO_COUNT {
                    return Err(too_large);
                }
                w.u16((2 + 2 * v.len()) as u16)?;
                w.u16(v.len() as u16)?;
                v.write_be(w.reserve(2 * v.len())?);
            }
            Response::ReadDeviceIdentification(d) => d.encode(&mut w)?,
            Response::EncapsulatedInterface(m) => {
                w.u8(m.mei_type())?;
                w.bytes(m.data())?;
            }
            Response::Custom(c) => w.bytes(c.data())?,
            Response::Exception { .. } => {}
        }
        Ok(w.position())
    }

    /// Decode a response PDU. The whole slice must be one PDU.
    pub fn decode(pdu: &'a [u8]) -> Result<Self, DecodeError> {
        let (function, mut r) = Reader::new(pdu)?;
        if function == 0 || function == 0x80 {
            return Err(DecodeError::InvalidFunction { function });
        }
        if function & 0x80 != 0 {
            let code = ExceptionCode::from_u8(r.u8()?);
            r.finish()?;
            return Ok(Response::Exception {
                function: FunctionCode::from_u8(function & 0x7F),
                code,
            });
        }
        let response = match FunctionCode::from_u8(function) {
            FunctionCode::ReadCoils => Response::ReadCoils(decode_bits(&mut r)?),
            FunctionCode::ReadDiscreteInputs => Response::ReadDiscreteInputs(decode_bits(&mut r)?),
            FunctionCode::ReadHoldingRegisters => Response::ReadHoldingRegisters(decode_words(&mut r)?),
            FunctionCode::ReadInputRegisters => Response::ReadInputRegisters(decode_words(&mut r)?),
            FunctionCode::WriteSingleCoil => {
                let address = r.u16()?;
                Response::WriteSingleCoil {
                    address,
                    value: decode_coil_value(&mut r)?,
                }
            }
            FunctionCode::WriteSingleRegister => Response::WriteSingleRegister {
                address: r.u16()?,
                value: r.u16()?,
            },
            FunctionCode::ReadExceptionStatus => Response::ReadExceptionStatus(r.u8()?),
            FunctionCode::Diagnostics => Response::Diagnostics(decode_diagnostic(&mut r)?),
            FunctionCode::GetCommEventCounter => Response::GetCommEventCounter {
                status: r.u16()?,
                event_count: r.u16()?,
            },
            FunctionCode::GetCommEventLog => {
                let n = r.u8()? as usize;
                if !(6..=6 + MAX_COMM_EVENTS).contains(&n) {
                    return Err(r.byte_count(n, 6));
                }
                let status = r.u16()?;
                let event_count = r.u16()?;
                let message_count = r.u16()?;
                Response::GetCommEventLog(CommEventLog {
                    status,
                    event_count,
                    message_count,
                    events: r.take(n - 6)?,
                })
            }
            FunctionCode::WriteMultipleCoils => Response::WriteMultipleCoils {
                start: r.u16()?,
                quantity: r.u16()?,
            },
            FunctionCode::WriteMultipleRegisters => Response::WriteMultipleRegisters {
                start: r.u16()?,
                quantity: r.u16()?,
            },
            FunctionCode::ReportServerId => {
                let n = r.u8()? as usize;
                Response::ReportServerId(r.take(n)?)
            }
            FunctionCode::ReadFileRecord => Response::ReadFileRecord(FileReadResponse::decode(&mut r)?),
            FunctionCode::WriteFileRecord => Response::WriteFileRecord(FileWrites::decode(&mut r)?),
            FunctionCode::MaskWriteRegister => Response::MaskWriteRegister {
                address: r.u16()?,
                and_mask: r.u16()?,
                or_mask: r.u16()?,
            },
            FunctionCode::ReadWriteMultipleRegisters => Response::ReadWriteMultipleRegisters(decode_words(&mut r)?),
            FunctionCode::ReadFifoQueue => {
                let byte_count = r.u16()? as usize;
                let count = r.u16()? as usize;
                if count > MAX_FIFO_COUNT {
                    return Err(r.range(RangeError::Quantity {
                        quantity: count as u16,
                        min: 0,
                        max: MAX_FIFO_COUNT as u16,
                    }));
                }
                if byte_count != 2 + 2 * count {
                    return Err(r.byte_count(byte_count, 2 + 2 * count));
                }
                let bytes = r.take(2 * count)?;
                Response::ReadFifoQueue(Words::from_be_bytes(bytes).ok_or_else(|| r.truncated(0))?)
            }
            FunctionCode::EncapsulatedInterfaceTransport => {
                let mei_type = r.u8()?;
                if mei_type == MEI_READ_DEVICE_ID {
                    Response::ReadDeviceIdentification(DeviceIdentification::decode(&mut r)?)
                } else {
                    Response::EncapsulatedInterface(MeiPdu::new(mei_type, r.rest()).map_err(|e| r.range(e))?)
                }
            }
            FunctionCode::Custom(_) => Response::Custom(CustomPdu::new(function, r.rest()).map_err(|e| r.range(e))?),
        };
        r.finish()?;
        Ok(response)
    }
}

fn decode_bits<'a>(r: &mut Reader<'a>) -> Result<Bits<'a>, DecodeError> {
    let n = r.u8()? as usize;
    if n == 0 || n > 250 {
        return Err(r.byte_count(n, n.clamp(1, 250)));
    }
    let bytes = r.take(n)?;
    Bits::from_packed(bytes, 8 * n).ok_or_else(|| r.truncated(n))
}

fn decode_words<'a>(r: &mut Reader<'a>) -> Result<Words<'a>, DecodeError> {
    let n = r.u8()? as usize;
    if n == 0 || !n.is_multiple_of(2) || n > 250 {
        return Err(r.byte_count(n, (n & !1).clamp(2, 250)));
    }
    let bytes = r.take(n)?;
    Words::from_be_bytes(bytes).ok_or_else(|| r.truncated(n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_that_do_not_fit_one_pdu_are_refused() {
        let mut buf = [0u8; 512];
        let too_large = |r: Response<'_>, buf: &mut [u8]| matches!(r.encode(buf), Err(EncodeError::PduTooLarge { .. }));
        let words = [0u16; 126];
        assert!(too_large(
            Response::ReadHoldingRegisters(Words::from_slice(&words)),
            &mut buf
        ));
        assert!(Response::ReadHoldingRegisters(Words::from_slice(&words[..125]))
            .encode(&mut buf)
            .is_ok());
        assert!(too_large(
            Response::ReadFifoQueue(Words::from_slice(&words[..32])),
            &mut buf
        ));
        let bits = [true; 2001];
        assert!(too_large(Response::ReadCoils(Bits::from_bools(&bits)), &mut buf));
        assert!(too_large(Response::ReadCoils(Bits::from_bools(&[])), &mut buf));
        let events = [0u8; 65];
        let log = CommEventLog {
            status: 0,
            event_count: 0,
            message_count: 0,
            events: &events,
        };
        assert!(too_large(Response::GetCommEventLog(log), &mut buf));
        assert!(too_large(Response::ReportServerId(&[0u8; 252]), &mut buf));
    }
}
