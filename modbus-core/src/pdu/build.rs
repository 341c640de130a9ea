//! Checked shorthands for the common requests, and accessors for the common
//! responses.

use crate::data::{Bits, Words};
use crate::error::RangeError;
use crate::pdu::request::Request;
use crate::pdu::response::Response;
use crate::types::{CoilRange, CoilWrite, ReadWriteRegisters, RegisterRange, RegisterWrite};

impl<'a> Request<'a> {
    /// 01: read `quantity` (1..=2000) coils from `start`.
    pub const fn read_coils(start: u16, quantity: u16) -> Result<Self, RangeError> {
        match CoilRange::new(start, quantity) {
            Ok(r) => Ok(Request::ReadCoils(r)),
            Err(e) => Err(e),
        }
    }

    /// 02: read `quantity` (1..=2000) discrete inputs from `start`.
    pub const fn read_discrete_inputs(start: u16, quantity: u16) -> Result<Self, RangeError> {
        match CoilRange::new(start, quantity) {
            Ok(r) => Ok(Request::ReadDiscreteInputs(r)),
            Err(e) => Err(e),
        }
    }

    /// 03: read `quantity` (1..=125) holding registers from `start`.
    pub const fn read_holding_registers(start: u16, quantity: u16) -> Result<Self, RangeError> {
        match RegisterRange::new(start, quantity) {
            Ok(r) => Ok(Request::ReadHoldingRegisters(r)),
            Err(e) => Err(e),
        }
    }

    /// 04: read `quantity` (1..=125) input registers from `start`.
    pub const fn read_input_registers(start: u16, quantity: u16) -> Result<Self, RangeError> {
        match RegisterRange::new(start, quantity) {
            Ok(r) => Ok(Request::ReadInputRegisters(r)),
            Err(e) => Err(e),
        }
    }

    /// 05: switch one coil on or off.
    pub const fn write_single_coil(address: u16, value: bool) -> Self {
        Request::WriteSingleCoil { address, value }
    }

    /// 06: write one holding register.
    pub const fn write_single_register(address: u16, value: u16) -> Self {
        Request::WriteSingleRegister { address, value }
    }

    /// 0F: write 1..=1968 coils from `start`.
    pub fn write_multiple_coils(start: u16, values: &'a [bool]) -> Result<Self, RangeError> {
        CoilWrite::new(start, Bits::from_bools(values)).map(Request::WriteMultipleCoils)
    }

    /// 10: write 1..=123 holding registers from `start`.
    pub fn write_multiple_registers(start: u16, values: &'a [u16]) -> Result<Self, RangeError> {
        RegisterWrite::new(start, Words::from_slice(values)).map(Request::WriteMultipleRegisters)
    }

    /// 17: write 1..=121 registers from `write_start`, then read 1..=125 from `read_start`.
    pub fn read_write_multiple_registers(
        read_start: u16,
        read_quantity: u16,
        write_start: u16,
        values: &'a [u16],
    ) -> Result<Self, RangeError> {
        Ok(Request::ReadWriteMultipleRegisters(ReadWriteRegisters {
            read: RegisterRange::new(read_start, read_quantity)?,
            write: RegisterWrite::new(write_start, Words::from_slice(values))?,
        }))
    }
}

impl<'a> Response<'a> {
    /// The register values of a read (03, 04, 17) or FIFO (18) response.
    pub fn registers(&self) -> Option<Words<'a>> {
        match *self {
            Response::ReadHoldingRegisters(w)
            | Response::ReadInputRegisters(w)
            | Response::ReadWriteMultipleRegisters(w)
            | Response::ReadFifoQueue(w) => Some(w),
            _ => None,
        }
    }

    /// The bit values of a read coils (01) or discrete inputs (02) response.
    pub fn bits(&self) -> Option<Bits<'a>> {
        match *self {
            Response::ReadCoils(b) | Response::ReadDiscreteInputs(b) => Some(b),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shorthands_check_limits() {
        assert!(Request::read_holding_registers(0, 126).is_err());
        assert!(Request::read_coils(65535, 2).is_err());
        assert!(Request::write_multiple_registers(0, &[]).is_err());
        assert!(Request::read_write_multiple_registers(0, 1, 0, &[0; 122]).is_err());
        assert_eq!(
            Request::read_input_registers(8, 1),
            Ok(Request::ReadInputRegisters(RegisterRange::new(8, 1).unwrap()))
        );
        let r = Response::ReadInputRegisters(Words::from_slice(&[1, 2]));
        assert_eq!(r.registers().map(|w| w.len()), Some(2));
        assert!(r.bits().is_none());
    }
}

#[cfg(test)]
mod write_tests {
    use crate::pdu::raw::{CustomPdu, Diagnostic, DiagnosticCode};
    use crate::{Request, Words};

    #[test]
    fn what_counts_as_a_write() {
        // Never re-sent when the outcome is unknown: anything that may change the device.
        assert!(Request::write_single_coil(1, true).is_write());
        assert!(Request::write_multiple_registers(0, &[1]).unwrap().is_write());
        assert!(Request::read_write_multiple_registers(0, 1, 0, &[1])
            .unwrap()
            .is_write());
        assert!(Request::Custom(CustomPdu::new(0x41, &[]).unwrap()).is_write());
        let restart = Diagnostic::new(DiagnosticCode::RESTART_COMMUNICATIONS, Words::from_slice(&[0])).unwrap();
        assert!(Request::Diagnostics(restart).is_write());
        // Reads and counters may be retried.
        assert!(!Request::read_holding_registers(0, 1).unwrap().is_write());
        assert!(!Request::ReadFifoQueue { address: 0 }.is_write());
        let count = Diagnostic::new(DiagnosticCode::BUS_MESSAGE_COUNT, Words::from_slice(&[0])).unwrap();
        assert!(!Request::Diagnostics(count).is_write());
        let echo = Diagnostic::new(DiagnosticCode::RETURN_QUERY_DATA, Words::from_slice(&[7])).unwrap();
        assert!(!Request::Diagnostics(echo).is_write());
    }
}
