//! A request message: unit, budget, attempt, PDU (section 12.2).

use std::time::Duration;

use outpost_modbus_core::{UnitId, MAX_PDU_LEN};

use super::BindingError;

/// Message type of a request.
const TYPE: u8 = 0x01;
/// Bytes before the PDU: type, unit, budget, attempt.
const HEADER_LEN: usize = 7;

/// The longest budget a request may carry: one hour.
pub const MAX_BUDGET: Duration = Duration::from_secs(3600);

/// One Modbus request on a tunnel channel, borrowing its PDU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TunnelRequest<'a> {
    unit: UnitId,
    budget: Duration,
    retry: bool,
    pdu: &'a [u8],
}

impl<'a> TunnelRequest<'a> {
    /// A first attempt at `pdu` for `unit`, to be answered within `budget`
    /// (whole milliseconds, 1 ms to [`MAX_BUDGET`]; sub-millisecond parts
    /// are dropped).
    pub fn new(unit: UnitId, budget: Duration, pdu: &'a [u8]) -> Result<Self, BindingError> {
        let ms = budget.as_millis();
        if ms == 0 || budget > MAX_BUDGET {
            return Err(BindingError::Budget(u64::try_from(ms).unwrap_or(u64::MAX)));
        }
        if pdu.is_empty() || pdu.len() > MAX_PDU_LEN {
            return Err(BindingError::PduLength(pdu.len()));
        }
        Ok(TunnelRequest {
            unit,
            budget: Duration::from_millis(ms as u64),
            retry: false,
            pdu,
        })
    }

    /// The same request marked as the one retry after a reconnect (reads only).
    pub fn retried(mut self) -> Self {
        self.retry = true;
        self
    }

    /// The unit addressed.
    pub fn unit(&self) -> UnitId {
        self.unit
    }

    /// How long the hub waits for the outcome, from when the agent receives it.
    pub fn budget(&self) -> Duration {
        self.budget
    }

    /// Whether this is a retry after a reconnect.
    pub fn is_retry(&self) -> bool {
        self.retry
    }

    /// The Modbus request PDU.
    pub fn pdu(&self) -> &'a [u8] {
        self.pdu
    }

    /// Bytes the message takes.
    pub fn encoded_len(&self) -> usize {
        HEADER_LEN + self.pdu.len()
    }

    /// Appends the message to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.reserve(self.encoded_len());
        out.push(TYPE);
        out.push(self.unit.0);
        out.extend_from_slice(&(self.budget.as_millis() as u32).to_be_bytes());
        out.push(u8::from(self.retry));
        out.extend_from_slice(self.pdu);
    }

    /// Reads a request message.
    pub fn decode(bytes: &'a [u8]) -> Result<Self, BindingError> {
        let Some((header, pdu)) = bytes.split_first_chunk::<HEADER_LEN>() else {
            return Err(BindingError::Truncated { what: "request" });
        };
        let [kind, unit, b0, b1, b2, b3, attempt] = *header;
        if kind != TYPE {
            return Err(BindingError::Type {
                expected: TYPE,
                found: kind,
            });
        }
        let retry = match attempt {
            0 => false,
            1 => true,
            // Only one retry exists.
            other => return Err(BindingError::Attempt(other)),
        };
        let budget = Duration::from_millis(u64::from(u32::from_be_bytes([b0, b1, b2, b3])));
        let request = TunnelRequest::new(UnitId(unit), budget, pdu)?;
        Ok(if retry { request.retried() } else { request })
    }
}
