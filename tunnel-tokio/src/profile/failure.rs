//! One table from every failure of a tunnelled Modbus request to what each
//! layer reports: the outcome the agent sends, the error the hub's API
//! returns, and the exception a gateway answers with.
//!
//! The agent turns a device failure into an [`Outcome`]
//! ([`outcome_of_device_error`]); the hub turns an outcome into a
//! [`Failure`] ([`Failure::from_outcome`]), and a failure into the API's
//! [`ClientError`] (`From`); a gateway answers every [`ClientError`] with
//! [`gateway_exception`]. The tests of this module check that the three
//! agree with [`Outcome::gateway_exception`] for every outcome.

use outpost_modbus_core::{ExceptionCode, ResponseError};
use outpost_tunnel_proto::ErrorCode;

use crate::binding::Outcome;
use crate::modbus::error::ClientError;

/// Why a request through the tunnel got no answer from its device, as the
/// hub's side of the profile decides it.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The device's answer does not fit the request.
    InvalidResponse(ResponseError),
    /// The agent's policy refused the request.
    Denied(ExceptionCode),
    /// The agent found the request malformed (or a retried write).
    Malformed(ExceptionCode),
    /// A read was sent, or may have been, and no answer came in time.
    Timeout,
    /// A request that changes the device may have reached it; nobody knows.
    OutcomeUnknown,
    /// The agent cannot reach the device; nothing was sent.
    Unreachable,
    /// The device's queue at the agent is full; nothing was sent.
    Busy,
    /// The budget ran out before the request could be sent.
    Expired,
    /// No session with the agent is up.
    NoAgent,
    /// The agent refused the channel.
    Refused(ErrorCode),
    /// The session has no room for another channel.
    ChannelLimit,
    /// Too many requests wait for this agent at the hub.
    Overloaded,
}

impl Failure {
    /// The failure an outcome stands for. `changes` says whether the
    /// request changes the device: a write with no answer has an unknown
    /// outcome; a read merely timed out.
    pub fn from_outcome(outcome: &Outcome<'_>, changes: bool) -> Option<Failure> {
        Some(match *outcome {
            Outcome::Answered(_) => return None,
            Outcome::Denied(code) => Failure::Denied(code),
            Outcome::Malformed(code) => Failure::Malformed(code),
            Outcome::NoAnswer => Failure::no_answer(changes),
            Outcome::Unreachable => Failure::Unreachable,
            Outcome::Busy => Failure::Busy,
            Outcome::Expired => Failure::Expired,
        })
    }

    /// No answer after the request may have left.
    pub fn no_answer(changes: bool) -> Failure {
        if changes {
            Failure::OutcomeUnknown
        } else {
            Failure::Timeout
        }
    }
}

impl From<Failure> for ClientError {
    fn from(failure: Failure) -> ClientError {
        match failure {
            Failure::InvalidResponse(e) => ClientError::InvalidResponse(e),
            Failure::Denied(code) => ClientError::Denied(code),
            Failure::Malformed(code) => ClientError::Exception(code),
            Failure::Timeout => ClientError::Timeout,
            Failure::OutcomeUnknown => ClientError::OutcomeUnknown,
            Failure::Unreachable => ClientError::Unreachable,
            Failure::Busy => ClientError::Busy,
            Failure::Expired => ClientError::Expired,
            Failure::NoAgent => ClientError::NoAgent(String::new()),
            Failure::Refused(code) => ClientError::Refused(code),
            Failure::ChannelLimit => ClientError::ChannelLimit,
            Failure::Overloaded => ClientError::Overloaded,
        }
    }
}

/// The exception a Modbus gateway answers with when a request fails.
pub fn gateway_exception(error: &ClientError) -> ExceptionCode {
    match error {
        ClientError::Exception(code) | ClientError::Denied(code) => *code,
        ClientError::InvalidRequest(e) => e.exception_code(),
        ClientError::Busy | ClientError::Overloaded => ExceptionCode::ServerDeviceBusy,
        ClientError::Unreachable
        | ClientError::NoAgent(_)
        | ClientError::Refused(_)
        | ClientError::ChannelLimit
        | ClientError::Connect(_)
        | ClientError::Broadcast
        | ClientError::Closed => ExceptionCode::GatewayPathUnavailable,
        // Sent, maybe, and no valid answer: the target failed to respond.
        ClientError::Timeout
        | ClientError::Expired
        | ClientError::OutcomeUnknown
        | ClientError::ConnectionLost(_)
        | ClientError::Framing(_)
        | ClientError::DeviceFault
        | ClientError::InvalidResponse(_)
        | ClientError::Encode(_) => ExceptionCode::GatewayTargetFailedToRespond,
    }
}

/// The outcome an agent reports when its device client fails.
pub fn outcome_of_device_error(error: &ClientError) -> Outcome<'static> {
    match error {
        ClientError::Connect(_) | ClientError::Closed => Outcome::Unreachable,
        ClientError::Expired => Outcome::Expired,
        ClientError::Busy | ClientError::Overloaded => Outcome::Busy,
        ClientError::Broadcast => Outcome::Denied(ExceptionCode::GatewayPathUnavailable),
        ClientError::InvalidRequest(_) | ClientError::Encode(_) => Outcome::Malformed(ExceptionCode::IllegalDataValue),
        // Sent, or maybe sent, without a valid answer.
        _ => Outcome::NoAnswer,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcomes() -> Vec<Outcome<'static>> {
        let mut all = vec![Outcome::NoAnswer, Outcome::Unreachable, Outcome::Busy, Outcome::Expired];
        for code in [0x01, 0x02, 0x0A] {
            all.push(Outcome::Denied(ExceptionCode::from_u8(code)));
        }
        for code in [0x01, 0x02, 0x03] {
            all.push(Outcome::Malformed(ExceptionCode::from_u8(code)));
        }
        all
    }

    #[test]
    fn every_outcome_reaches_the_gateway_as_the_profile_says() {
        for outcome in outcomes() {
            for changes in [false, true] {
                let failure = Failure::from_outcome(&outcome, changes).expect("a failure");
                let error = ClientError::from(failure);
                assert_eq!(
                    Some(gateway_exception(&error)),
                    outcome.gateway_exception(),
                    "{outcome:?}"
                );
            }
        }
        assert_eq!(Failure::from_outcome(&Outcome::Answered(&[3, 0]), true), None);
    }

    #[test]
    fn a_write_with_no_answer_has_an_unknown_outcome() {
        assert_eq!(
            Failure::from_outcome(&Outcome::NoAnswer, true),
            Some(Failure::OutcomeUnknown)
        );
        assert_eq!(Failure::from_outcome(&Outcome::NoAnswer, false), Some(Failure::Timeout));
    }

    #[test]
    fn a_device_error_travels_back_to_the_same_exception() {
        use std::io;
        let errors = [
            ClientError::Connect(io::Error::other("refused")),
            ClientError::Closed,
            ClientError::Expired,
            ClientError::Busy,
            ClientError::Timeout,
            ClientError::DeviceFault,
            ClientError::ConnectionLost(io::Error::other("reset")),
        ];
        for error in errors {
            let outcome = outcome_of_device_error(&error);
            assert_eq!(
                outcome.gateway_exception(),
                Some(gateway_exception(&error)),
                "{error:?} -> {outcome:?}"
            );
        }
    }

    #[test]
    fn each_device_error_has_its_outcome() {
        use std::io;
        let cases = [
            (ClientError::Connect(io::Error::other("refused")), Outcome::Unreachable),
            (ClientError::Closed, Outcome::Unreachable),
            (ClientError::Expired, Outcome::Expired),
            (ClientError::Busy, Outcome::Busy),
            (ClientError::Overloaded, Outcome::Busy),
            (
                ClientError::Broadcast,
                Outcome::Denied(ExceptionCode::GatewayPathUnavailable),
            ),
            (
                ClientError::InvalidRequest(outpost_modbus_core::DecodeError::Empty),
                Outcome::Malformed(ExceptionCode::IllegalDataValue),
            ),
            (ClientError::Timeout, Outcome::NoAnswer),
            (ClientError::DeviceFault, Outcome::NoAnswer),
        ];
        for (error, outcome) in cases {
            assert_eq!(outcome_of_device_error(&error), outcome, "{error:?}");
        }
    }

    #[test]
    fn hub_side_failures_have_gateway_exceptions() {
        use ExceptionCode::*;
        let cases = [
            (Failure::NoAgent, GatewayPathUnavailable),
            (Failure::Refused(ErrorCode::Refused), GatewayPathUnavailable),
            (Failure::ChannelLimit, GatewayPathUnavailable),
            (Failure::Overloaded, ServerDeviceBusy),
            (Failure::OutcomeUnknown, GatewayTargetFailedToRespond),
        ];
        for (failure, code) in cases {
            assert_eq!(gateway_exception(&ClientError::from(failure)), code, "{failure:?}");
        }
    }
}
