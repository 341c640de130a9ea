//! An outcome message: what became of a request (section 12.3).

use outpost_modbus_core::{ExceptionCode, MAX_PDU_LEN};

use super::BindingError;

/// Message type of an outcome.
const TYPE: u8 = 0x02;

/// Whether a request reached the device: what decides if it may be retried
/// and whether a write's effect is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Delivery {
    /// It was sent and answered.
    Answered,
    /// It was never sent: safe to retry, nothing happened at the device.
    NotSent,
    /// It was sent, or may have been, with no answer: a write's effect is unknown.
    Unknown,
}

/// What became of a request, as the agent reports it.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome<'a> {
    /// The device's response PDU: a normal response or the device's own exception.
    Answered(&'a [u8]),
    /// The agent's policy refused it: exception 01 (function), 02 (address) or 0A (unit).
    Denied(ExceptionCode),
    /// Sent, or maybe sent, and no valid answer came in time.
    NoAnswer,
    /// The device could not be reached; nothing was sent.
    Unreachable,
    /// The device's queue at the agent is full; nothing was sent.
    Busy,
    /// The budget ran out before the request could be sent.
    Expired,
    /// The PDU is not a valid request (exception 01, 02 or 03, as a device
    /// would answer it), or a write was marked as a retry; nothing was sent.
    Malformed(ExceptionCode),
}

/// Outcome codes (section 12.3), used by both encode and decode.
mod code {
    pub(super) const ANSWERED: u8 = 0x00;
    pub(super) const DENIED: u8 = 0x01;
    pub(super) const NO_ANSWER: u8 = 0x02;
    pub(super) const UNREACHABLE: u8 = 0x03;
    pub(super) const BUSY: u8 = 0x04;
    pub(super) const EXPIRED: u8 = 0x05;
    pub(super) const MALFORMED: u8 = 0x06;
}

impl<'a> Outcome<'a> {
    /// The outcome's code on the wire.
    pub fn code(&self) -> u8 {
        match self {
            Outcome::Answered(_) => code::ANSWERED,
            Outcome::Denied(_) => code::DENIED,
            Outcome::NoAnswer => code::NO_ANSWER,
            Outcome::Unreachable => code::UNREACHABLE,
            Outcome::Busy => code::BUSY,
            Outcome::Expired => code::EXPIRED,
            Outcome::Malformed(_) => code::MALFORMED,
        }
    }

    /// The outcome's name in the specification, for logs.
    pub fn name(&self) -> &'static str {
        match self {
            Outcome::Answered(_) => "ANSWERED",
            Outcome::Denied(_) => "DENIED",
            Outcome::NoAnswer => "NO_ANSWER",
            Outcome::Unreachable => "UNREACHABLE",
            Outcome::Busy => "BUSY",
            Outcome::Expired => "EXPIRED",
            Outcome::Malformed(_) => "MALFORMED",
        }
    }

    /// Whether the request reached the device.
    pub fn delivery(&self) -> Delivery {
        match self {
            Outcome::Answered(_) => Delivery::Answered,
            Outcome::NoAnswer => Delivery::Unknown,
            _ => Delivery::NotSent,
        }
    }

    /// The exception a Modbus gateway answers with, or `None` for
    /// [`Outcome::Answered`], whose PDU is passed on as it is.
    pub fn gateway_exception(&self) -> Option<ExceptionCode> {
        match *self {
            Outcome::Answered(_) => None,
            Outcome::Denied(code) | Outcome::Malformed(code) => Some(code),
            Outcome::NoAnswer | Outcome::Expired => Some(ExceptionCode::GatewayTargetFailedToRespond),
            Outcome::Unreachable => Some(ExceptionCode::GatewayPathUnavailable),
            Outcome::Busy => Some(ExceptionCode::ServerDeviceBusy),
        }
    }

    /// Bytes the message takes.
    pub fn encoded_len(&self) -> usize {
        2 + match self {
            Outcome::Answered(pdu) => pdu.len(),
            Outcome::Denied(_) | Outcome::Malformed(_) => 1,
            _ => 0,
        }
    }

    /// Appends the message to `out`. The values were checked when the
    /// outcome was built or decoded, except an `Answered` PDU, whose length
    /// the encoder does not police: the agent only forwards PDUs it decoded.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.reserve(self.encoded_len());
        out.push(TYPE);
        out.push(self.code());
        match self {
            Outcome::Answered(pdu) => out.extend_from_slice(pdu),
            Outcome::Denied(code) | Outcome::Malformed(code) => out.push(code.value()),
            _ => {}
        }
    }

    /// Reads an outcome message. An outcome code this side does not know
    /// reads as [`Outcome::NoAnswer`]: whether the request was sent is unknown.
    pub fn decode(bytes: &'a [u8]) -> Result<Self, BindingError> {
        let [kind, outcome, detail @ ..] = bytes else {
            return Err(BindingError::Truncated { what: "outcome" });
        };
        if *kind != TYPE {
            return Err(BindingError::Type {
                expected: TYPE,
                found: *kind,
            });
        }
        let exception = |allowed: &[u8]| match detail {
            [e] if allowed.contains(e) => Ok(ExceptionCode::from_u8(*e)),
            [e] => Err(BindingError::Detail {
                outcome: *outcome,
                exception: *e,
            }),
            [] => Err(BindingError::Truncated { what: "outcome detail" }),
            [_, rest @ ..] => Err(BindingError::Trailing {
                what: "outcome",
                extra: rest.len(),
            }),
        };
        let empty = |outcome| {
            if detail.is_empty() {
                Ok(outcome)
            } else {
                Err(BindingError::Trailing {
                    what: "outcome",
                    extra: detail.len(),
                })
            }
        };
        match *outcome {
            code::ANSWERED => {
                if detail.is_empty() || detail.len() > MAX_PDU_LEN {
                    return Err(BindingError::PduLength(detail.len()));
                }
                Ok(Outcome::Answered(detail))
            }
            code::DENIED => exception(&[0x01, 0x02, 0x0A]).map(Outcome::Denied),
            code::NO_ANSWER => empty(Outcome::NoAnswer),
            code::UNREACHABLE => empty(Outcome::Unreachable),
            code::BUSY => empty(Outcome::Busy),
            code::EXPIRED => empty(Outcome::Expired),
            code::MALFORMED => exception(&[0x01, 0x02, 0x03]).map(Outcome::Malformed),
            // A future outcome: treat as "no answer", never as "not sent".
            _ => Ok(Outcome::NoAnswer),
        }
    }
}
