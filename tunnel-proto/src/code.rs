//! Error codes carried by RESET, REFUSE, GOAWAY and CLOSE frames.
//!
//! One table ([`error_codes!`] below) lists every code with its wire value;
//! the enum and both conversions are generated from it.

macro_rules! error_codes {
    ($($(#[$doc:meta])* $name:ident = $value:literal,)*) => {
        /// Why a channel was reset or refused, or why a session ends.
        ///
        /// Codes this version does not define (application profiles may use
        /// `0x1_0000..=0xFFFF_FFFF`) are kept as [`ErrorCode::Other`].
        #[non_exhaustive]
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum ErrorCode {
            $($(#[$doc])* $name,)*
            /// A code this version does not define.
            Other(u32),
        }

        impl ErrorCode {
            /// The value on the wire.
            pub const fn value(self) -> u32 {
                match self {
                    $(ErrorCode::$name => $value,)*
                    ErrorCode::Other(v) => v,
                }
            }

            /// The code for a wire value; values this version does not define
            /// become [`ErrorCode::Other`].
            pub const fn from_u32(value: u32) -> Self {
                match value {
                    $($value => ErrorCode::$name,)*
                    other => ErrorCode::Other(other),
                }
            }
        }
    };
}

error_codes! {
    /// 0: no error; a graceful end.
    NoError = 0x0,
    /// 1: the peer broke the protocol (malformed or unexpected frame).
    ProtocolError = 0x1,
    /// 2: the sender hit a fault of its own.
    InternalError = 0x2,
    /// 3: the peer sent more than its flow-control window allowed.
    FlowControlError = 0x3,
    /// 4: a frame was larger than the receiver's limit.
    FrameSizeError = 0x4,
    /// 5: the peer was silent for longer than the liveness timeout.
    Timeout = 0x5,
    /// 6: authentication failed. Deliberately says nothing more on the wire.
    AuthFailed = 0x6,
    /// 7: no protocol version is supported by both sides.
    UnsupportedVersion = 0x7,
    /// 8: a limit was reached (too many channels, pending opens, queued output).
    LimitExceeded = 0x8,
    /// 9: the channel was refused by the receiver's application.
    Refused = 0x9,
    /// 10: the application no longer wants the channel.
    Cancel = 0xA,
    /// 11: the target named in an open is not known to the receiver.
    UnknownTarget = 0xB,
    /// 12: the session is shutting down; no new channels.
    Shutdown = 0xC,
    /// 13: the session was idle for longer than its idle timeout.
    Idle = 0xD,
    /// 14: a newer session of the same agent replaced this one.
    Superseded = 0xE,
    /// 15: the handshake did not finish within its deadline.
    HandshakeTimeout = 0xF,
}

impl From<u32> for ErrorCode {
    fn from(value: u32) -> Self {
        Self::from_u32(value)
    }
}

impl From<ErrorCode> for u32 {
    fn from(code: ErrorCode) -> Self {
        code.value()
    }
}

impl core::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            ErrorCode::Other(v) => write!(f, "code {v:#x}"),
            known => write!(f, "{known:?} ({:#x})", known.value()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ErrorCode;

    #[test]
    fn every_value_round_trips() {
        for v in (0..64).chain([0x1_0000, u32::MAX]) {
            assert_eq!(ErrorCode::from_u32(v).value(), v);
            assert_eq!(u32::from(ErrorCode::from(v)), v);
        }
        assert_eq!(ErrorCode::from_u32(0x6), ErrorCode::AuthFailed);
        assert_eq!(ErrorCode::from_u32(0x40), ErrorCode::Other(0x40));
    }
}
