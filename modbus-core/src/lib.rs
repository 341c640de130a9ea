//! A sans-IO Modbus codec: every public function code, MBAP and RTU framing,
//! client transaction tracking, server dispatch and access rules.
//!
//! This crate never touches a socket, a clock or a task. It turns bytes into
//! typed values and back; the caller moves the bytes and passes the time in.
//! It is `no_std` (turn off the default `std` feature); the [`access`] policy
//! needs `alloc`.
//!
//! - **Strict and typed.** Requests are built from validated newtypes
//!   ([`RegisterRange`], [`CoilWrite`], ...), so an invalid request cannot be
//!   constructed. Decoding checks every length and limit of the specification
//!   and fails with a typed [`DecodeError`] that carries the offending value.
//! - **Allocation-free.** Decoding borrows from the input: [`Words`] and
//!   [`Bits`] read register and coil values straight from the received bytes.
//!   Encoding writes into a caller's buffer.
//! - **Never panics on input.** Every decoder is fuzzed and property-tested.
//!
//! # Example: a Modbus TCP round trip
//!
//! ```
//! use outpost_modbus_core::frame::mbap::{self, MbapHeader};
//! use outpost_modbus_core::server::{DataModel, Server};
//! use outpost_modbus_core::{
//!     ExceptionCode, Expectation, RegisterRange, Request, Response, Transport, UnitId,
//! };
//!
//! // A device with ten holding registers.
//! struct Device([u16; 10]);
//! impl DataModel for Device {
//!     fn read_holding_registers(&mut self, range: RegisterRange, out: &mut [u16]) -> Result<(), ExceptionCode> {
//!         let values = self.0.get(range.start() as usize..=range.last() as usize)
//!             .ok_or(ExceptionCode::IllegalDataAddress)?;
//!         out.copy_from_slice(values);
//!         Ok(())
//!     }
//! }
//!
//! // Client: encode a request.
//! let request = Request::ReadHoldingRegisters(RegisterRange::new(2, 3)?);
//! let header = MbapHeader { transaction_id: 1, unit: UnitId(1) };
//! let mut wire = [0u8; mbap::MAX_ADU_LEN];
//! let n = mbap::encode(header, &request, &mut wire)?;
//!
//! // Server: decode it, ask the data model, encode the response.
//! let mut server = Server::new(Transport::Tcp);
//! let mut device = Device([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
//! let frame = mbap::decode(&wire[..n])?.expect("whole frame");
//! let mut reply = [0u8; mbap::MAX_ADU_LEN];
//! let len = server
//!     .handle(&mut device, frame.header.unit, frame.pdu, &mut reply[mbap::HEADER_LEN..])?
//!     .expect("a response");
//! let n = mbap::encode(frame.header, &reply[mbap::HEADER_LEN..mbap::HEADER_LEN + len], &mut wire)?;
//!
//! // Client: check the response fits the request, then read the values.
//! let frame = mbap::decode(&wire[..n])?.expect("whole frame");
//! let response = Expectation::new(&request).check(frame.pdu)?;
//! let Response::ReadHoldingRegisters(values) = response else { panic!() };
//! assert_eq!(values.iter().collect::<Vec<u16>>(), [2, 3, 4]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Layout
//!
//! | module | holds |
//! |---|---|
//! | [`Request`], [`Response`] | PDUs of every public function code |
//! | [`frame::mbap`], [`frame::rtu`] | Modbus TCP and RTU framing, CRC-16 |
//! | [`client`] | [`Expectation`] (does this response fit that request?), the TCP [`Transactions`] tracker, and [`client::RtuExchange`] (which RTU frame answers the request in flight) |
//! | [`server`] | the [`server::DataModel`] trait and the [`server::Server`] dispatcher |
//! | [`access`] | deny-by-default access rules per role (feature `alloc`) |
//! | [`scan`] | points to poll, the fewest reads that fetch them, their values, deadbands (feature `alloc`) |

#![cfg_attr(not(feature = "std"), no_std)]
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(
    not(test),
    warn(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::print_stdout)
)]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "alloc")]
extern crate alloc;

#[cfg(feature = "alloc")]
pub mod access;
pub mod client;
mod codec;
mod data;
mod error;
mod exception;
pub mod frame;
mod function;
mod pdu;
#[cfg(feature = "alloc")]
pub mod scan;
pub mod server;
mod types;

pub use client::{Expectation, ResponseError, Transactions};
pub use codec::MAX_PDU_LEN;
pub use data::{Bits, BitsIter, Words, WordsIter};
pub use error::{DecodeError, EncodeError, FrameError, RangeError};
pub use exception::ExceptionCode;
pub use frame::crc16;
pub use function::{FunctionClass, FunctionCode, MEI_CANOPEN, MEI_READ_DEVICE_ID};
pub use pdu::device_id::{object_id, DeviceIdentification, DeviceObject, DeviceObjects, ReadDeviceIdCode};
pub use pdu::file::{
    FileReadResponse, FileReads, FileRecord, FileRecordRef, FileWrites, FILE_REFERENCE_TYPE, MAX_RECORD_NUMBER,
};
pub use pdu::raw::{CustomPdu, Diagnostic, DiagnosticCode, MeiPdu};
pub use pdu::request::Request;
pub use pdu::response::{CommEventLog, Response, MAX_COMM_EVENTS, MAX_FIFO_COUNT};
pub use pdu::Encode;
pub use types::{AddressRange, CoilRange, CoilWrite, ReadWriteRegisters, RegisterRange, RegisterWrite, UnitId};

/// Which framing a server or client speaks; decides broadcast handling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// Modbus TCP (MBAP). Unit 0 is an ordinary address.
    Tcp,
    /// Serial RTU or RTU-over-TCP. Unit 0 is broadcast: no response.
    Rtu,
}
