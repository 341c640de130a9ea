//! Function codes and the table of facts about each one.
//!
//! One table ([`function_codes!`] below) names every public function code with
//! its wire value, its access class and how long its PDU is on an RTU line in
//! each direction. The enum, both conversions and the RTU length rules are all
//! generated from it, so there is no second list that must agree.

/// The access class of a function, used by access rules ([`crate::access`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
#[non_exhaustive]
pub enum FunctionClass {
    /// Reads data (coils, inputs, registers, file records, FIFO queues).
    Read,
    /// Changes data in the device.
    Write,
    /// Reads of diagnostic counters, registers and status that change
    /// nothing: 07, 0B, 0C, 11, and 08 with sub-functions 00, 02 and 0B to
    /// 12.
    Diagnostics,
    /// Read Device Identification (2B / 0E).
    DeviceIdentification,
    /// User-defined function codes and other encapsulated interfaces. In an
    /// access policy this class grants nothing by itself: each code and MEI
    /// type is allowed by an explicit list.
    Custom,
    /// Diagnostics (08) sub-functions that change the device's state:
    /// restart communications (01), change the ASCII delimiter (03), force
    /// listen-only mode (04), clear counters (0A) and the overrun counter
    /// (14), and any sub-function the specification does not define.
    DeviceControl,
}

impl FunctionClass {
    /// Every class, in a fixed order.
    pub const ALL: [FunctionClass; 6] = [
        FunctionClass::Read,
        FunctionClass::Write,
        FunctionClass::Diagnostics,
        FunctionClass::DeviceIdentification,
        FunctionClass::Custom,
        FunctionClass::DeviceControl,
    ];
}

/// How the length of a PDU is found on an RTU line, where no header carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PduLen {
    /// Always this many bytes, function code included.
    Fixed(u8),
    /// A one-byte count at this offset gives the number of bytes that follow it.
    Count8(u8),
    /// A two-byte count at this offset gives the number of bytes that follow it.
    Count16(u8),
    /// Encapsulated interface request: depends on the MEI type.
    MeiRequest,
    /// Encapsulated interface response: Read Device Identification walks its objects.
    MeiResponse,
}

macro_rules! function_codes {
    ($($(#[$doc:meta])* $name:ident = $value:literal, $class:ident, req: $req:expr, rsp: $rsp:expr;)*) => {
        /// A Modbus function code.
        ///
        /// Every public function code of the specification has a variant; any
        /// other value is kept as [`FunctionCode::Custom`].
        #[non_exhaustive]
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum FunctionCode {
            $($(#[$doc])* $name,)*
            /// A code the specification leaves to users or does not define
            /// (65-72 and 100-110 are the user-defined ranges).
            Custom(u8),
        }

        impl FunctionCode {
            /// The byte on the wire.
            pub const fn value(self) -> u8 {
                match self {
                    $(FunctionCode::$name => $value,)*
                    FunctionCode::Custom(v) => v,
                }
            }

            /// The function code for a wire byte. Exception responses carry the
            /// code with bit 7 set: clear it first.
            pub const fn from_u8(value: u8) -> Self {
                match value {
                    $($value => FunctionCode::$name,)*
                    other => FunctionCode::Custom(other),
                }
            }

            /// The access class the function belongs to.
            pub const fn class(self) -> FunctionClass {
                match self {
                    $(FunctionCode::$name => FunctionClass::$class,)*
                    FunctionCode::Custom(_) => FunctionClass::Custom,
                }
            }

            /// The specification's name of the function.
            pub const fn name(self) -> &'static str {
                match self {
                    $(FunctionCode::$name => stringify!($name),)*
                    FunctionCode::Custom(_) => "Custom",
                }
            }

            /// RTU request length rule; `None` for codes whose length is unknown.
            pub(crate) const fn rtu_request_len(self) -> Option<PduLen> {
                match self {
                    $(FunctionCode::$name => Some($req),)*
                    FunctionCode::Custom(_) => None,
                }
            }

            /// RTU response length rule; `None` for codes whose length is unknown.
            pub(crate) const fn rtu_response_len(self) -> Option<PduLen> {
                match self {
                    $(FunctionCode::$name => Some($rsp),)*
                    FunctionCode::Custom(_) => None,
                }
            }
        }

        #[cfg(test)]
        pub(crate) const ALL_PUBLIC: &[FunctionCode] = &[$(FunctionCode::$name,)*];
    };
}

use PduLen::{Count16, Count8, Fixed, MeiRequest, MeiResponse};

function_codes! {
    /// 01 Read Coils.
    ReadCoils = 0x01, Read, req: Fixed(5), rsp: Count8(1);
    /// 02 Read Discrete Inputs.
    ReadDiscreteInputs = 0x02, Read, req: Fixed(5), rsp: Count8(1);
    /// 03 Read Holding Registers.
    ReadHoldingRegisters = 0x03, Read, req: Fixed(5), rsp: Count8(1);
    /// 04 Read Input Registers.
    ReadInputRegisters = 0x04, Read, req: Fixed(5), rsp: Count8(1);
    /// 05 Write Single Coil.
    WriteSingleCoil = 0x05, Write, req: Fixed(5), rsp: Fixed(5);
    /// 06 Write Single Register.
    WriteSingleRegister = 0x06, Write, req: Fixed(5), rsp: Fixed(5);
    /// 07 Read Exception Status (serial line only).
    ReadExceptionStatus = 0x07, Diagnostics, req: Fixed(1), rsp: Fixed(2);
    /// 08 Diagnostics (serial line only).
    Diagnostics = 0x08, Diagnostics, req: Fixed(5), rsp: Fixed(5);
    /// 0B Get Comm Event Counter (serial line only).
    GetCommEventCounter = 0x0B, Diagnostics, req: Fixed(1), rsp: Fixed(5);
    /// 0C Get Comm Event Log (serial line only).
    GetCommEventLog = 0x0C, Diagnostics, req: Fixed(1), rsp: Count8(1);
    /// 0F Write Multiple Coils.
    WriteMultipleCoils = 0x0F, Write, req: Count8(5), rsp: Fixed(5);
    /// 10 Write Multiple Registers.
    WriteMultipleRegisters = 0x10, Write, req: Count8(5), rsp: Fixed(5);
    /// 11 Report Server ID (serial line only).
    ReportServerId = 0x11, Diagnostics, req: Fixed(1), rsp: Count8(1);
    /// 14 Read File Record.
    ReadFileRecord = 0x14, Read, req: Count8(1), rsp: Count8(1);
    /// 15 Write File Record.
    WriteFileRecord = 0x15, Write, req: Count8(1), rsp: Count8(1);
    /// 16 Mask Write Register.
    MaskWriteRegister = 0x16, Write, req: Fixed(7), rsp: Fixed(7);
    /// 17 Read/Write Multiple Registers.
    ReadWriteMultipleRegisters = 0x17, Write, req: Count8(9), rsp: Count8(1);
    /// 18 Read FIFO Queue.
    ReadFifoQueue = 0x18, Read, req: Fixed(3), rsp: Count16(1);
    /// 2B Encapsulated Interface Transport (MEI); 0E is Read Device Identification.
    EncapsulatedInterfaceTransport = 0x2B, DeviceIdentification, req: MeiRequest, rsp: MeiResponse;
}

impl From<u8> for FunctionCode {
    fn from(value: u8) -> Self {
        Self::from_u8(value)
    }
}

impl From<FunctionCode> for u8 {
    fn from(code: FunctionCode) -> Self {
        code.value()
    }
}

impl core::fmt::Display for FunctionCode {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{} ({:#04x})", self.name(), self.value())
    }
}

/// MEI type of Read Device Identification inside function 2B.
pub const MEI_READ_DEVICE_ID: u8 = 0x0E;

/// MEI type of CANopen General Reference inside function 2B.
pub const MEI_CANOPEN: u8 = 0x0D;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_byte_round_trips() {
        for b in 0..=255u8 {
            assert_eq!(FunctionCode::from_u8(b).value(), b);
        }
    }

    #[test]
    fn public_codes_are_not_custom() {
        assert_eq!(ALL_PUBLIC.len(), 19);
        for code in ALL_PUBLIC {
            assert!(!matches!(FunctionCode::from_u8(code.value()), FunctionCode::Custom(_)));
            assert!(code.rtu_request_len().is_some());
            assert!(code.rtu_response_len().is_some());
        }
        assert_eq!(FunctionCode::from_u8(0x41), FunctionCode::Custom(0x41));
    }
}
