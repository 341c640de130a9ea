//! Framing: how PDUs travel on a byte stream.
//!
//! - [`mbap`]: Modbus TCP (MBAP header, length-delimited).
//! - [`rtu`]: serial RTU (unit id, PDU, CRC-16), also used for RTU-over-TCP.
//!
//! Both decoders work on the caller's buffer and never copy: they return a
//! frame that borrows from it, or say that more bytes are needed, and they
//! refuse a bad header as soon as it can be seen, before the body arrives.

mod crc;
pub mod mbap;
pub mod rtu;

pub use crc::crc16;
