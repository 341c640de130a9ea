//! Payloads kept close to the wire: diagnostics, other MEI types, custom codes.

use crate::codec::MAX_PDU_LEN;
use crate::data::Words;
use crate::error::RangeError;
use crate::function::{FunctionCode, MEI_READ_DEVICE_ID};

/// A Diagnostics (08) sub-function code. Unknown codes are kept as they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DiagnosticCode(pub u16);

impl DiagnosticCode {
    /// 00: echo the request data.
    pub const RETURN_QUERY_DATA: Self = Self(0x00);
    /// 01: restart the serial port, clear counters, leave listen-only mode.
    pub const RESTART_COMMUNICATIONS: Self = Self(0x01);
    /// 02: return the 16-bit diagnostic register.
    pub const RETURN_DIAGNOSTIC_REGISTER: Self = Self(0x02);
    /// 03: change the ASCII input delimiter.
    pub const CHANGE_ASCII_DELIMITER: Self = Self(0x03);
    /// 04: force listen-only mode (no response is sent).
    pub const FORCE_LISTEN_ONLY_MODE: Self = Self(0x04);
    /// 0A: clear counters and the diagnostic register.
    pub const CLEAR_COUNTERS: Self = Self(0x0A);
    /// 0B: bus message count.
    pub const BUS_MESSAGE_COUNT: Self = Self(0x0B);
    /// 0C: bus communication error (CRC) count.
    pub const BUS_COMMUNICATION_ERROR_COUNT: Self = Self(0x0C);
    /// 0D: bus exception error count.
    pub const BUS_EXCEPTION_ERROR_COUNT: Self = Self(0x0D);
    /// 0E: server message count.
    pub const SERVER_MESSAGE_COUNT: Self = Self(0x0E);
    /// 0F: server no-response count.
    pub const SERVER_NO_RESPONSE_COUNT: Self = Self(0x0F);
    /// 10: server NAK count.
    pub const SERVER_NAK_COUNT: Self = Self(0x10);
    /// 11: server busy count.
    pub const SERVER_BUSY_COUNT: Self = Self(0x11);
    /// 12: bus character overrun count.
    pub const BUS_CHARACTER_OVERRUN_COUNT: Self = Self(0x12);
    /// 14: clear the overrun counter and flag.
    pub const CLEAR_OVERRUN_COUNTER: Self = Self(0x14);
}

/// A Diagnostics (08) request or response: a sub-function and its data words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Diagnostic<'a> {
    sub_function: DiagnosticCode,
    data: Words<'a>,
}

impl<'a> Diagnostic<'a> {
    /// The most data words one diagnostics PDU carries.
    pub const MAX_WORDS: usize = (MAX_PDU_LEN - 3) / 2;

    /// A checked diagnostics payload (at most 125 data words).
    pub fn new(sub_function: DiagnosticCode, data: Words<'a>) -> Result<Self, RangeError> {
        if data.len() > Self::MAX_WORDS {
            return Err(RangeError::Length {
                len: data.len(),
                min: 0,
                max: Self::MAX_WORDS,
            });
        }
        Ok(Diagnostic { sub_function, data })
    }

    /// The sub-function.
    pub fn sub_function(&self) -> DiagnosticCode {
        self.sub_function
    }

    /// The data words (usually one).
    pub fn data(&self) -> Words<'a> {
        self.data
    }
}

/// A PDU of a user-defined or unknown function code, kept as raw bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CustomPdu<'a> {
    function: u8,
    data: &'a [u8],
}

impl<'a> CustomPdu<'a> {
    /// A checked custom PDU: the function code is 1..=127 and not one of the
    /// public codes (those have their own variants), and data fits a PDU.
    pub fn new(function: u8, data: &'a [u8]) -> Result<Self, RangeError> {
        if function == 0 || function >= 0x80 || !matches!(FunctionCode::from_u8(function), FunctionCode::Custom(_)) {
            return Err(RangeError::Value {
                field: "custom function code",
                value: function as u16,
            });
        }
        if data.len() > MAX_PDU_LEN - 1 {
            return Err(RangeError::Length {
                len: data.len(),
                min: 0,
                max: MAX_PDU_LEN - 1,
            });
        }
        Ok(CustomPdu { function, data })
    }

    /// The function code byte.
    pub fn function(&self) -> u8 {
        self.function
    }

    /// Everything after the function code.
    pub fn data(&self) -> &'a [u8] {
        self.data
    }
}

/// An Encapsulated Interface Transport (2B) PDU of an MEI type other than
/// Read Device Identification (for example 0x0D, CANopen General Reference).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MeiPdu<'a> {
    mei_type: u8,
    data: &'a [u8],
}

impl<'a> MeiPdu<'a> {
    /// A checked MEI PDU: not type 0x0E (which has its own variants), and
    /// data fits a PDU.
    pub fn new(mei_type: u8, data: &'a [u8]) -> Result<Self, RangeError> {
        if mei_type == MEI_READ_DEVICE_ID {
            return Err(RangeError::Value {
                field: "MEI type",
                value: mei_type as u16,
            });
        }
        if data.len() > MAX_PDU_LEN - 2 {
            return Err(RangeError::Length {
                len: data.len(),
                min: 0,
                max: MAX_PDU_LEN - 2,
            });
        }
        Ok(MeiPdu { mei_type, data })
    }

    /// The MEI type byte.
    pub fn mei_type(&self) -> u8 {
        self.mei_type
    }

    /// Everything after the MEI type.
    pub fn data(&self) -> &'a [u8] {
        self.data
    }
}
