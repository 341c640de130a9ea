//! Errors of the async Modbus client.

use std::io;

use outpost_modbus_core::{DecodeError, EncodeError, ExceptionCode, ResponseError};

/// Why a Modbus request did not get a normal response.
///
/// [`ClientError::delivery`] says whether the request reached the device,
/// which decides whether it may be retried and whether a write happened.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The device answered with an exception.
    #[error("the device answered with exception {0}")]
    Exception(ExceptionCode),
    /// The device's answer does not fit the request (the device's fault).
    #[error("the response does not answer the request: {0}")]
    InvalidResponse(#[from] ResponseError),
    /// The request could not be encoded (the caller's fault).
    #[error("the request cannot be encoded: {0}")]
    Encode(#[from] EncodeError),
    /// The request PDU does not decode as a Modbus request (the caller's fault).
    #[error("the request PDU is not valid: {0}")]
    InvalidRequest(DecodeError),
    /// No connection to the device could be made; nothing was sent.
    #[error("cannot connect to the device: {0}")]
    Connect(io::Error),
    /// The request was sent and no answer came in time.
    #[error("the device did not answer in time")]
    Timeout,
    /// The request timed out before it could be sent (the connection was
    /// busy or being made); nothing was sent.
    #[error("the request expired before it was sent")]
    Expired,
    /// The connection broke after the request was sent, before its answer.
    #[error("the connection to the device broke: {0}")]
    ConnectionLost(io::Error),
    /// The device sent bytes that are not Modbus framing; the connection was dropped.
    #[error("the device broke the framing: {0}")]
    Framing(outpost_modbus_core::FrameError),
    /// The agent's policy refused the request for this role (exception 01,
    /// 02, or 0A for a unit the device does not serve); nothing was sent.
    #[error("denied by the agent's policy (exception {0})")]
    Denied(ExceptionCode),
    /// The agent could not reach the device; nothing was sent.
    #[error("the agent cannot reach the device")]
    Unreachable,
    /// The device's queue at the agent is full; nothing was sent.
    #[error("the device is busy at the agent")]
    Busy,
    /// The tunnel broke, or gave no outcome in time, after a request that
    /// changes the device left: whether it took effect is unknown. Such a
    /// request is never re-sent on its own.
    #[error("the outcome is unknown: the tunnel broke after the request left")]
    OutcomeUnknown,
    /// No session with the agent is up.
    #[error("agent {0} is not connected")]
    NoAgent(String),
    /// The agent refused the channel (an unknown device, or a profile it
    /// does not speak).
    #[error("the agent refused the channel: {0}")]
    Refused(outpost_tunnel_proto::ErrorCode),
    /// Unit 0 on RTU is a broadcast, which no device answers; this client
    /// does not send broadcasts.
    #[error("unit 0 is a broadcast on RTU and gets no answer")]
    Broadcast,
    /// The client was shut down.
    #[error("the client is closed")]
    Closed,
    /// The device answered with a transaction id no request in flight or
    /// recently expired carries: its answers cannot be trusted to match
    /// their requests, so every request waiting on the connection failed
    /// at once and the connection was dropped.
    #[error("the device answered a request it was not asked (unknown transaction id)")]
    DeviceFault,
    /// The tunnel session has no room for another channel; nothing was sent.
    #[error("the tunnel session has no room for another channel")]
    ChannelLimit,
    /// Too many requests wait for this agent at the hub; nothing was sent.
    #[error("too many requests wait for this agent at the hub")]
    Overloaded,
}

/// Whether a failed request reached the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Sent {
    /// It reached the device (and was answered).
    Yes,
    /// It never left: retrying is safe.
    No,
    /// It may have reached the device: a write's effect is unknown.
    Maybe,
}

impl ClientError {
    /// Whether the request reached the device.
    pub fn delivery(&self) -> Sent {
        match self {
            ClientError::Exception(_) | ClientError::InvalidResponse(_) => Sent::Yes,
            ClientError::Timeout
            | ClientError::ConnectionLost(_)
            | ClientError::Framing(_)
            | ClientError::DeviceFault
            | ClientError::OutcomeUnknown => Sent::Maybe,
            ClientError::Encode(_)
            | ClientError::InvalidRequest(_)
            | ClientError::Connect(_)
            | ClientError::Expired
            | ClientError::Broadcast
            | ClientError::Denied(_)
            | ClientError::Unreachable
            | ClientError::Busy
            | ClientError::NoAgent(_)
            | ClientError::Refused(_)
            | ClientError::ChannelLimit
            | ClientError::Overloaded
            | ClientError::Closed => Sent::No,
        }
    }
}
