//! The Modbus binding (`modbus/1`): how a Modbus transaction travels on a
//! tunnel message channel, as pure encode and decode functions.
//!
//! Specified in `tunnel-proto/PROTOCOL.md`, section 12:
//!
//! - the channel's OPEN metadata names the IT role whose rules apply and the
//!   principal behind the requests ([`ChannelMetadata`]);
//! - each request is one message: unit, time budget, attempt, PDU
//!   ([`TunnelRequest`]);
//! - each answer is one message with the request's correlation id: an
//!   [`Outcome`] that says what happened and whether the request reached
//!   the device.
//!
//! ```
//! use std::time::Duration;
//! use outpost_modbus_core::{ExceptionCode, UnitId};
//! use outpost_tunnel_tokio::binding::{Outcome, Role, TunnelRequest};
//!
//! let request = TunnelRequest::new(UnitId(1), Duration::from_secs(2), &[0x03, 0x00, 0x6B, 0x00, 0x03])?;
//! let mut wire = Vec::new();
//! request.encode(&mut wire);
//! assert_eq!(TunnelRequest::decode(&wire)?, request);
//!
//! let mut wire = Vec::new();
//! Outcome::Denied(ExceptionCode::IllegalDataAddress).encode(&mut wire);
//! let outcome = Outcome::decode(&wire)?;
//! assert_eq!(outcome.gateway_exception(), Some(ExceptionCode::IllegalDataAddress));
//! assert!(Role::new("operator").is_ok());
//! # Ok::<(), outpost_tunnel_tokio::binding::BindingError>(())
//! ```

mod metadata;
mod outcome;
mod request;

pub use metadata::{ChannelMetadata, Principal, Role};
pub use outcome::{Delivery, Outcome};
pub use request::{TunnelRequest, MAX_BUDGET};

use outpost_tunnel_proto::ErrorCode;

/// The profile version this crate speaks.
pub const PROFILE_VERSION: u8 = 1;

/// REFUSE code: the OPEN metadata does not follow the profile.
pub const CODE_BAD_METADATA: ErrorCode = ErrorCode::from_u32(0x1_0001);
/// REFUSE code: a profile version the agent does not speak.
pub const CODE_UNSUPPORTED: ErrorCode = ErrorCode::from_u32(0x1_0002);

/// A binding message or value that does not follow the profile. Always the
/// sender's fault; the receiver resets the channel (or refuses it).
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BindingError {
    /// The message ends before a field it needs.
    #[error("{what} is truncated")]
    Truncated {
        /// The field that is missing.
        what: &'static str,
    },
    /// Bytes follow the end of the message.
    #[error("{extra} bytes after the end of the {what}")]
    Trailing {
        /// The message.
        what: &'static str,
        /// How many bytes follow it.
        extra: usize,
    },
    /// A profile version this side does not speak.
    #[error("profile version {0} is not supported")]
    Version(u8),
    /// A message type other than the one expected here.
    #[error("message type {found:#04x} where {expected:#04x} was expected")]
    Type {
        /// The type expected.
        expected: u8,
        /// The type received.
        found: u8,
    },
    /// A role that is empty, too long or not printable ASCII.
    #[error("a role is 1 to 64 printable ASCII characters")]
    Role,
    /// A principal that is too long or not UTF-8.
    #[error("a principal is at most 255 bytes of UTF-8")]
    Principal,
    /// A PDU of a length no Modbus PDU has.
    #[error("a Modbus PDU is 1 to 253 bytes, not {0}")]
    PduLength(usize),
    /// A budget of zero or above [`MAX_BUDGET`].
    #[error("a budget is 1 ms to 1 hour, not {0} ms")]
    Budget(u64),
    /// An attempt number other than 0 (first) or 1 (the one retry).
    #[error("attempt {0}: only 0 (first) and 1 (retry) exist")]
    Attempt(u8),
    /// An outcome whose detail byte is not an exception it may carry.
    #[error("outcome {outcome:#04x} cannot carry exception {exception:#04x}")]
    Detail {
        /// The outcome.
        outcome: u8,
        /// The exception code received.
        exception: u8,
    },
}

impl BindingError {
    /// The code a receiver resets the channel (or refuses it) with.
    pub fn code(&self) -> ErrorCode {
        match self {
            BindingError::Version(_) => CODE_UNSUPPORTED,
            BindingError::Role | BindingError::Principal => CODE_BAD_METADATA,
            _ => ErrorCode::ProtocolError,
        }
    }
}

#[cfg(test)]
mod tests;
