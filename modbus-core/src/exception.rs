//! Exception codes (Modbus Application Protocol V1.1b3, section 7).

macro_rules! exception_codes {
    ($($(#[$doc:meta])* $name:ident = $value:literal,)*) => {
        /// An exception code a server returns instead of a normal response.
        ///
        /// Codes the specification does not define are kept as
        /// [`ExceptionCode::Unknown`], never dropped.
        #[non_exhaustive]
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum ExceptionCode {
            $($(#[$doc])* $name,)*
            /// A code the specification does not define.
            Unknown(u8),
        }

        impl ExceptionCode {
            /// The byte on the wire.
            pub const fn value(self) -> u8 {
                match self {
                    $(ExceptionCode::$name => $value,)*
                    ExceptionCode::Unknown(v) => v,
                }
            }

            /// The code for a wire byte; unknown bytes become [`ExceptionCode::Unknown`].
            pub const fn from_u8(value: u8) -> Self {
                match value {
                    $($value => ExceptionCode::$name,)*
                    other => ExceptionCode::Unknown(other),
                }
            }
        }
    };
}

exception_codes! {
    /// 01: the function code is not allowed or not supported by the server.
    IllegalFunction = 0x01,
    /// 02: the data address is not allowed.
    IllegalDataAddress = 0x02,
    /// 03: a value in the request is not allowed.
    IllegalDataValue = 0x03,
    /// 04: an unrecoverable error occurred while the server acted on the request.
    ServerDeviceFailure = 0x04,
    /// 05: accepted, processing takes long; poll later.
    Acknowledge = 0x05,
    /// 06: the server is busy with a long-duration command; retry later.
    ServerDeviceBusy = 0x06,
    /// 08: memory parity error in a file record.
    MemoryParityError = 0x08,
    /// 0A: the gateway could not allocate a path to the target.
    GatewayPathUnavailable = 0x0A,
    /// 0B: no response from the target device behind the gateway.
    GatewayTargetFailedToRespond = 0x0B,
}

impl From<u8> for ExceptionCode {
    fn from(value: u8) -> Self {
        Self::from_u8(value)
    }
}

impl From<ExceptionCode> for u8 {
    fn from(code: ExceptionCode) -> Self {
        code.value()
    }
}

impl core::fmt::Display for ExceptionCode {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let text = match self {
            ExceptionCode::IllegalFunction => "illegal function",
            ExceptionCode::IllegalDataAddress => "illegal data address",
            ExceptionCode::IllegalDataValue => "illegal data value",
            ExceptionCode::ServerDeviceFailure => "server device failure",
            ExceptionCode::Acknowledge => "acknowledge",
            ExceptionCode::ServerDeviceBusy => "server device busy",
            ExceptionCode::MemoryParityError => "memory parity error",
            ExceptionCode::GatewayPathUnavailable => "gateway path unavailable",
            ExceptionCode::GatewayTargetFailedToRespond => "gateway target device failed to respond",
            ExceptionCode::Unknown(_) => "unknown exception",
        };
        write!(f, "{text} ({:#04x})", self.value())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_byte_round_trips() {
        for b in 0..=255u8 {
            assert_eq!(ExceptionCode::from_u8(b).value(), b);
        }
        assert_eq!(
            ExceptionCode::from_u8(0x0B),
            ExceptionCode::GatewayTargetFailedToRespond
        );
        assert_eq!(ExceptionCode::from_u8(0x07), ExceptionCode::Unknown(0x07));
    }
}
