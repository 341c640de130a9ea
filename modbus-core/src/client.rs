//! Client side, sans-IO: does a response fit its request, and which request
//! does a Modbus TCP response answer.
//!
//! [`Expectation`] keeps the few facts of a request needed to check its
//! response (function code, quantity, echoed address and value) in a small
//! `Copy` value, so the request's buffer need not outlive the send.
//! [`Transactions`] allocates MBAP transaction ids for many requests in flight,
//! matches responses to them, and expires them at deadlines computed from the
//! time the caller passes in. It never reads a clock and never allocates.
//!
//! ```
//! use core::time::Duration;
//! use outpost_modbus_core::frame::mbap;
//! use outpost_modbus_core::client::{Matched, Transactions};
//! use outpost_modbus_core::{RegisterRange, Request, Response, UnitId};
//!
//! // Any clock works: here, milliseconds since start.
//! #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
//! struct Ms(u64);
//! impl core::ops::Add<Duration> for Ms {
//!     type Output = Ms;
//!     fn add(self, d: Duration) -> Ms { Ms(self.0 + d.as_millis() as u64) }
//! }
//!
//! let mut tracker: Transactions<Ms, 16> = Transactions::new();
//! let request = Request::ReadHoldingRegisters(RegisterRange::new(0, 2)?);
//! let header = tracker.start(UnitId(1), &request, Ms(0), Duration::from_secs(1))?;
//! let mut wire = [0u8; mbap::MAX_ADU_LEN];
//! let _n = mbap::encode(header, &request, &mut wire)?;
//!
//! // The device answers.
//! let response = Response::ReadHoldingRegisters(outpost_modbus_core::Words::from_slice(&[7, 8]));
//! let n = mbap::encode(header, &response, &mut wire)?;
//! let frame = mbap::decode(&wire[..n])?.expect("whole frame");
//! match tracker.handle_frame(frame) {
//!     Matched::Response { transaction_id, result } => {
//!         assert_eq!(transaction_id, header.transaction_id);
//!         assert_eq!(result?, response);
//!     }
//!     other => panic!("{other:?}"),
//! }
//! // Nothing left to expire.
//! assert_eq!(tracker.poll_timeout(), None);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use core::time::Duration;

use crate::data::{Bits, Words};
use crate::error::DecodeError;
use crate::frame::mbap::{MbapFrame, MbapHeader};
use crate::pdu::device_id::ReadDeviceIdCode;
use crate::pdu::request::Request;
use crate::pdu::response::Response;
use crate::types::UnitId;

/// A response that does not answer its request.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum ResponseError {
    /// The response PDU is malformed.
    #[error("malformed response: {0}")]
    Decode(#[from] DecodeError),
    /// The response carries another function code than the request.
    #[error("response function {found:#04x} to a request of function {expected:#04x}")]
    Function {
        /// The request's function code.
        expected: u8,
        /// The response's function code.
        found: u8,
    },
    /// The response holds another number of values than the request asked for.
    #[error("function {function:#04x}: {found} values in the response, {expected} asked for")]
    Quantity {
        /// Function code.
        function: u8,
        /// Values (or bytes, for file records) asked for.
        expected: usize,
        /// Values (or bytes) received.
        found: usize,
    },
    /// A write's echo differs from what was written.
    #[error("function {function:#04x}: the echo differs from the request")]
    Echo {
        /// Function code.
        function: u8,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Expect {
    Bits { quantity: u16 },
    Words { quantity: u16 },
    Echo { a: u16, b: u16 },
    Mask { address: u16, and_mask: u16, or_mask: u16 },
    Diagnostic { sub_function: u16 },
    FileRead { data_len: u16 },
    FileWrite { fingerprint: u32 },
    DeviceId { code: ReadDeviceIdCode },
    Mei { mei_type: u8 },
    Any,
}

/// What a response to one request must look like.
///
/// Built from a request, kept while it is in flight, used to check its
/// response: function code, number of values, echoed address and value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Expectation {
    function: u8,
    expect: Expect,
}

impl Expectation {
    /// The expectation of `request`.
    pub fn new(request: &Request<'_>) -> Self {
        let expect = match request {
            Request::ReadCoils(r) | Request::ReadDiscreteInputs(r) => Expect::Bits { quantity: r.quantity() },
            Request::ReadHoldingRegisters(r) | Request::ReadInputRegisters(r) => {
                Expect::Words { quantity: r.quantity() }
            }
            Request::ReadWriteMultipleRegisters(rw) => Expect::Words {
                quantity: rw.read.quantity(),
            },
            Request::WriteSingleCoil { address, value } => Expect::Echo {
                a: *address,
                b: *value as u16,
            },
            Request::WriteSingleRegister { address, value } => Expect::Echo { a: *address, b: *value },
            Request::WriteMultipleCoils(w) => Expect::Echo {
                a: w.start(),
                b: w.quantity(),
            },
            Request::WriteMultipleRegisters(w) => Expect::Echo {
                a: w.start(),
                b: w.quantity(),
            },
            Request::MaskWriteRegister {
                address,
                and_mask,
                or_mask,
            } => Expect::Mask {
                address: *address,
                and_mask: *and_mask,
                or_mask: *or_mask,
            },
            Request::Diagnostics(d) => Expect::Diagnostic {
                sub_function: d.sub_function().0,
            },
            Request::ReadFileRecord(r) => Expect::FileRead {
                data_len: r.response_data_len() as u16,
            },
            Request::WriteFileRecord(w) => Expect::FileWrite {
                fingerprint: w.fingerprint(),
            },
            Request::ReadDeviceIdentification { code, .. } => Expect::DeviceId { code: *code },
            Request::EncapsulatedInterface(m) => Expect::Mei { mei_type: m.mei_type() },
            Request::ReadExceptionStatus
            | Request::GetCommEventCounter
            | Request::GetCommEventLog
            | Request::ReportServerId
            | Request::ReadFifoQueue { .. }
            | Request::Custom(_) => Expect::Any,
        };
        Expectation {
            function: request.function().value(),
            expect,
        }
    }

    /// The function code of the request.
    pub fn function(&self) -> u8 {
        self.function
    }

    /// Decode `pdu` as the response to the request, and check that it answers
    /// it. An exception response to the same function is a valid answer.
    /// Coil values are trimmed to the quantity asked for.
    #[inline]
    pub fn check<'a>(&self, pdu: &'a [u8]) -> Result<Response<'a>, ResponseError> {
        // Fast path for the common read answers: when the PDU is exactly what
        // the request asks for, build the view directly. Anything else takes
        // the general path below, which names the fault.
        if let Expect::Words { quantity } = self.expect {
            let n = 2 * quantity as usize;
            if let [function, byte_count, values @ ..] = pdu {
                if *function == self.function && *byte_count as usize == n && values.len() == n {
                    if let Some(words) = Words::from_be_bytes(values) {
                        return Ok(match self.function {
                            0x03 => Response::ReadHoldingRegisters(words),
                            0x04 => Response::ReadInputRegisters(words),
                            _ => Response::ReadWriteMultipleRegisters(words),
                        });
                    }
                }
            }
        }
        if let Expect::Bits { quantity } = self.expect {
            let n = (quantity as usize).div_ceil(8);
            if let [function, byte_count, values @ ..] = pdu {
                if *function == self.function && *byte_count as usize == n && values.len() == n {
                    if let Some(bits) = Bits::from_packed(values, quantity as usize) {
                        return Ok(match self.function {
                            0x01 => Response::ReadCoils(bits),
                            _ => Response::ReadDiscreteInputs(bits),
                        });
                    }
                }
            }
        }
        self.check_slow(pdu)
    }

    fn check_slow<'a>(&self, pdu: &'a [u8]) -> Result<Response<'a>, ResponseError> {
        let response = Response::decode(pdu)?;
        let found = response.function().value();
        if found != self.function {
            return Err(ResponseError::Function {
                expected: self.function,
                found,
            });
        }
        if response.exception().is_some() {
            return Ok(response);
        }
        let function = self.function;
        let quantity = |expected: usize, found: usize| {
            if expected == found {
                Ok(())
            } else {
                Err(ResponseError::Quantity {
                    function,
                    expected,
                    found,
                })
            }
        };
        let echo = |ok: bool| {
            if ok {
                Ok(())
            } else {
                Err(ResponseError::Echo { function })
            }
        };
        match (self.expect, response) {
            (Expect::Bits { quantity: q }, Response::ReadCoils(bits)) => {
                quantity((q as usize).div_ceil(8), bits.packed_len())?;
                Ok(Response::ReadCoils(bits.truncated(q as usize)))
            }
            (Expect::Bits { quantity: q }, Response::ReadDiscreteInputs(bits)) => {
                quantity((q as usize).div_ceil(8), bits.packed_len())?;
                Ok(Response::ReadDiscreteInputs(bits.truncated(q as usize)))
            }
            (
                Expect::Words { quantity: q },
                Response::ReadHoldingRegisters(w)
                | Response::ReadInputRegisters(w)
                | Response::ReadWriteMultipleRegisters(w),
            ) => {
                quantity(q as usize, w.len())?;
                Ok(response)
            }
            (Expect::Echo { a, b }, Response::WriteSingleCoil { address, value }) => {
                echo(a == address && b == value as u16)?;
                Ok(response)
            }
            (Expect::Echo { a, b }, Response::WriteSingleRegister { address, value }) => {
                echo(a == address && b == value)?;
                Ok(response)
            }
            (
                Expect::Echo { a, b },
                Response::WriteMultipleCoils { start, quantity } | Response::WriteMultipleRegisters { start, quantity },
            ) => {
                echo(a == start && b == quantity)?;
                Ok(response)
            }
            (
                Expect::Mask {
                    address,
                    and_mask,
                    or_mask,
                },
                Response::MaskWriteRegister {
                    address: a,
                    and_mask: n,
                    or_mask: o,
                },
            ) => {
                echo(address == a && and_mask == n && or_mask == o)?;
                Ok(response)
            }
            (Expect::Diagnostic { sub_function }, Response::Diagnostics(d)) => {
                echo(d.sub_function().0 == sub_function)?;
                Ok(response)
            }
            (Expect::FileRead { data_len }, Response::ReadFileRecord(r)) => {
                quantity(data_len as usize, r.data_len())?;
                Ok(response)
            }
            (Expect::FileWrite { fingerprint }, Response::WriteFileRecord(w)) => {
                echo(w.fingerprint() == fingerprint)?;
                Ok(response)
            }
            (Expect::DeviceId { code }, Response::ReadDeviceIdentification(d)) => {
                echo(d.read_code == code)?;
                Ok(response)
            }
            (Expect::Mei { mei_type }, Response::EncapsulatedInterface(m)) => {
                echo(m.mei_type() == mei_type)?;
                Ok(response)
            }
            (Expect::Any, _) => Ok(response),
            // Same function code but another shape (for example a device
            // identification answer to another MEI type).
            _ => Err(ResponseError::Echo { function }),
        }
    }
}

/// The tracker has as many transactions in flight as it can hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[error("{capacity} transactions already in flight")]
pub struct Full {
    /// How many transactions the tracker holds.
    pub capacity: usize,
}

/// What a response frame turned out to be.
#[must_use]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Matched<'a> {
    /// The response to a transaction in flight, which is now complete.
    /// `result` is an error if the response does not answer the request.
    Response {
        /// The transaction answered.
        transaction_id: u16,
        /// The checked response.
        result: Result<Response<'a>, ResponseError>,
    },
    /// The answer to a transaction that already expired or was cancelled: dropped.
    Late {
        /// Its transaction id.
        transaction_id: u16,
    },
    /// A response to no transaction of ours (unknown id, or another unit): dropped.
    Stray {
        /// Its transaction id.
        transaction_id: u16,
    },
}

/// Counts of what the tracker has seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Stats {
    /// Transactions started.
    pub started: u64,
    /// Transactions answered by a valid response (exceptions included).
    pub completed: u64,
    /// Transactions answered by a response that did not fit the request.
    pub invalid: u64,
    /// Transactions that reached their deadline.
    pub expired: u64,
    /// Transactions cancelled by the caller.
    pub cancelled: u64,
    /// Responses to transactions that had expired or been cancelled.
    pub late: u64,
    /// Responses that matched no transaction.
    pub stray: u64,
}

#[derive(Debug, Clone, Copy)]
struct Pending<I> {
    id: u16,
    unit: UnitId,
    expect: Expectation,
    deadline: I,
}

/// How many expired or cancelled ids are remembered to tell late from stray.
const RECENT: usize = 32;

/// Tracks Modbus TCP transactions in flight: up to `N` at once.
///
/// `I` is the caller's clock type (`std::time::Instant`, or anything ordered
/// that adds a [`Duration`]); the tracker never reads a clock itself.
#[derive(Debug, Clone)]
pub struct Transactions<I, const N: usize = 64> {
    slots: [Option<Pending<I>>; N],
    in_flight: usize,
    next_id: u16,
    recent: [Option<(u16, UnitId)>; RECENT],
    recent_pos: usize,
    stats: Stats,
}

impl<I: Copy + Ord, const N: usize> Default for Transactions<I, N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<I: Copy + Ord, const N: usize> Transactions<I, N> {
    /// An empty tracker. Transaction ids start at 1.
    pub fn new() -> Self {
        Transactions {
            slots: [None; N],
            in_flight: 0,
            next_id: 1,
            recent: [None; RECENT],
            recent_pos: 0,
            stats: Stats::default(),
        }
    }

    /// How many transactions the tracker holds at most (at most 65536 are useful).
    pub const fn capacity(&self) -> usize {
        N
    }

    /// Transactions in flight.
    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// What the tracker has counted.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Start a transaction for `request` to `unit`, due by `now + timeout`.
    /// Returns the MBAP header to send it with.
    pub fn start(&mut self, unit: UnitId, request: &Request<'_>, now: I, timeout: Duration) -> Result<MbapHeader, Full>
    where
        I: core::ops::Add<Duration, Output = I>,
    {
        self.start_with_deadline(unit, Expectation::new(request), now + timeout)
    }

    /// Start a transaction from an [`Expectation`] with an absolute deadline.
    pub fn start_with_deadline(&mut self, unit: UnitId, expect: Expectation, deadline: I) -> Result<MbapHeader, Full> {
        if self.in_flight >= N.min(0x1_0000) {
            return Err(Full { capacity: N });
        }
        let Some(slot) = self.slots.iter().position(Option::is_none) else {
            return Err(Full { capacity: N });
        };
        // A free id exists: fewer than 65536 are in flight.
        let mut id = self.next_id;
        while self.find(id).is_some() {
            id = id.wrapping_add(1);
        }
        self.next_id = id.wrapping_add(1);
        self.slots[slot] = Some(Pending {
            id,
            unit,
            expect,
            deadline,
        });
        self.in_flight += 1;
        self.stats.started += 1;
        Ok(MbapHeader {
            transaction_id: id,
            unit,
        })
    }

    fn find(&self, id: u16) -> Option<usize> {
        self.slots.iter().position(|p| matches!(p, Some(p) if p.id == id))
    }

    fn remember(&mut self, id: u16, unit: UnitId) {
        self.recent[self.recent_pos] = Some((id, unit));
        self.recent_pos = (self.recent_pos + 1) % RECENT;
    }

    /// Match a received frame to its transaction and check it.
    pub fn handle_frame<'a>(&mut self, frame: MbapFrame<'a>) -> Matched<'a> {
        let id = frame.header.transaction_id;
        let pending = self
            .find(id)
            .filter(|&i| matches!(self.slots[i], Some(p) if p.unit == frame.header.unit))
            .and_then(|i| self.slots[i].take());
        let Some(pending) = pending else {
            let recent = self.recent.iter().position(|r| *r == Some((id, frame.header.unit)));
            return match recent {
                Some(i) => {
                    // Only one late answer per id is expected; a second is stray.
                    self.recent[i] = None;
                    self.stats.late += 1;
                    Matched::Late { transaction_id: id }
                }
                None => {
                    self.stats.stray += 1;
                    Matched::Stray { transaction_id: id }
                }
            };
        };
        self.in_flight -= 1;
        let result = pending.expect.check(frame.pdu);
        match result {
            Ok(_) => self.stats.completed += 1,
            Err(_) => self.stats.invalid += 1,
        }
        Matched::Response {
            transaction_id: id,
            result,
        }
    }

    /// The earliest deadline of a transaction in flight.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<I> {
        self.slots.iter().flatten().map(|p| p.deadline).min()
    }

    /// Expire one transaction whose deadline is at or before `now`, and
    /// return its id. Call until it returns `None`.
    #[must_use]
    pub fn poll_expired(&mut self, now: I) -> Option<u16> {
        let slot = self
            .slots
            .iter()
            .position(|p| matches!(p, Some(p) if p.deadline <= now))?;
        let pending = self.slots[slot].take()?;
        self.in_flight -= 1;
        self.stats.expired += 1;
        self.remember(pending.id, pending.unit);
        Some(pending.id)
    }

    /// Give up on a transaction; a response that arrives later is counted as
    /// late. Returns whether it was in flight.
    pub fn cancel(&mut self, transaction_id: u16) -> bool {
        let Some(slot) = self.find(transaction_id) else {
            return false;
        };
        let Some(pending) = self.slots[slot].take() else {
            return false;
        };
        self.in_flight -= 1;
        self.stats.cancelled += 1;
        self.remember(pending.id, pending.unit);
        true
    }

    /// Cancel every transaction in flight (the connection broke), calling
    /// `f` with each id.
    pub fn fail_all(&mut self, mut f: impl FnMut(u16)) {
        for slot in self.slots.iter_mut() {
            if let Some(p) = slot.take() {
                self.stats.cancelled += 1;
                f(p.id);
            }
        }
        self.in_flight = 0;
    }
}

mod rtu;
pub use rtu::{RtuExchange, RtuMatch};
