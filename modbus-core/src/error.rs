//! Typed errors. Each says whose fault it is: a [`DecodeError`] or a
//! [`FrameError`] is the peer's (bytes from the wire), an [`EncodeError`] or a
//! [`RangeError`] is the caller's.

use crate::exception::ExceptionCode;

/// A value that cannot form a valid request: the caller's fault.
///
/// Returned by the checked constructors ([`crate::AddressRange::new`],
/// [`crate::CoilWrite::new`], ...), and carried inside
/// [`DecodeError::Range`] when a peer sends such a value.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum RangeError {
    /// The quantity lies outside the limits the specification sets for the function.
    #[error("quantity {quantity} outside {min}..={max}")]
    Quantity {
        /// The quantity given.
        quantity: u16,
        /// The smallest quantity allowed.
        min: u16,
        /// The largest quantity allowed.
        max: u16,
    },
    /// `start + quantity` passes the end of the 16-bit address space (65536).
    #[error("start {start} + quantity {quantity} exceeds the address space")]
    Overflow {
        /// First address.
        start: u16,
        /// Number of items.
        quantity: u16,
    },
    /// A value list holds more or fewer items than the wire format allows.
    #[error("{len} values outside {min}..={max}")]
    Length {
        /// Number of values given.
        len: usize,
        /// The smallest number allowed.
        min: usize,
        /// The largest number allowed.
        max: usize,
    },
    /// A field value the specification does not allow (named by `field`).
    #[error("{field} value {value:#06x} is not allowed")]
    Value {
        /// Which field.
        field: &'static str,
        /// The offending value.
        value: u16,
    },
}

/// A PDU received from a peer that does not follow the specification.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum DecodeError {
    /// The PDU has no function code byte.
    #[error("empty PDU")]
    Empty,
    /// The PDU ends before a field the function needs.
    #[error("function {function:#04x}: PDU of {got} bytes is truncated, {needed} needed")]
    Truncated {
        /// Function code byte.
        function: u8,
        /// Bytes needed to go on.
        needed: usize,
        /// Bytes present.
        got: usize,
    },
    /// The PDU is longer than any Modbus PDU may be ([`crate::MAX_PDU_LEN`]
    /// bytes), whatever its function. Checked before anything else, so a
    /// PDU from a transport without Modbus's own length limits (a tunnel
    /// message, say) cannot carry more than a serial line or MBAP could.
    #[error("function {function:#04x}: PDU of {len} bytes is longer than 253")]
    TooLong {
        /// Function code byte.
        function: u8,
        /// Bytes received.
        len: usize,
    },
    /// Bytes follow the end of a complete PDU.
    #[error("function {function:#04x}: {extra} bytes after the end of the PDU")]
    TrailingBytes {
        /// Function code byte.
        function: u8,
        /// Number of unexpected bytes.
        extra: usize,
    },
    /// A byte count field disagrees with the data or with the quantity.
    #[error("function {function:#04x}: byte count {byte_count}, expected {expected}")]
    ByteCount {
        /// Function code byte.
        function: u8,
        /// The byte count received.
        byte_count: usize,
        /// What the rest of the PDU implies.
        expected: usize,
    },
    /// A quantity, address or value outside what the specification allows.
    #[error("function {function:#04x}: {error}")]
    Range {
        /// Function code byte.
        function: u8,
        /// What was wrong with it.
        error: RangeError,
    },
    /// The function code is not one this decoder knows how to parse
    /// (for example a custom code inside an RTU stream, whose length is unknown).
    #[error("function code {function:#04x} is not supported here")]
    UnsupportedFunction {
        /// Function code byte.
        function: u8,
    },
    /// A function code with the exception bit set where a request was expected,
    /// or a function code of 0.
    #[error("function code {function:#04x} is not valid")]
    InvalidFunction {
        /// Function code byte.
        function: u8,
    },
}

impl DecodeError {
    /// The exception a server answers with when it receives a request that fails
    /// to decode with this error, per the specification's state diagrams:
    /// 01 for an unsupported function, 03 for a malformed or out-of-range value.
    pub fn exception_code(&self) -> ExceptionCode {
        match self {
            DecodeError::UnsupportedFunction { .. } | DecodeError::InvalidFunction { .. } => {
                ExceptionCode::IllegalFunction
            }
            DecodeError::Range {
                error: RangeError::Overflow { .. },
                ..
            } => ExceptionCode::IllegalDataAddress,
            _ => ExceptionCode::IllegalDataValue,
        }
    }

    /// The function code byte of the offending PDU, when it had one.
    pub fn function(&self) -> Option<u8> {
        match *self {
            DecodeError::Empty => None,
            DecodeError::Truncated { function, .. }
            | DecodeError::TrailingBytes { function, .. }
            | DecodeError::TooLong { function, .. }
            | DecodeError::ByteCount { function, .. }
            | DecodeError::Range { function, .. }
            | DecodeError::UnsupportedFunction { function }
            | DecodeError::InvalidFunction { function } => Some(function),
        }
    }
}

/// Encoding failed: the caller's buffer or values do not fit.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum EncodeError {
    /// The output buffer is too small.
    #[error("output buffer of {available} bytes is too small, {needed} needed")]
    BufferTooSmall {
        /// Bytes needed for the whole encoding.
        needed: usize,
        /// Bytes available in the buffer.
        available: usize,
    },
    /// The PDU would exceed the 253 bytes a Modbus PDU may hold.
    #[error("PDU of {len} bytes exceeds the maximum of 253")]
    PduTooLarge {
        /// The length the PDU would have.
        len: usize,
    },
}

/// A framing error on an MBAP or RTU byte stream: the peer's fault.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum FrameError {
    /// MBAP protocol identifier other than 0 (Modbus).
    #[error("MBAP protocol identifier {found:#06x} is not Modbus (0)")]
    ProtocolId {
        /// The identifier received.
        found: u16,
    },
    /// MBAP length field outside 2..=254.
    #[error("MBAP length {found} outside 2..=254")]
    Length {
        /// The length received.
        found: u16,
    },
    /// RTU: no valid frame start found in `discarded` bytes; drop them.
    #[error("no RTU frame in {discarded} bytes of noise")]
    Noise {
        /// How many leading bytes the caller must discard.
        discarded: usize,
    },
}
