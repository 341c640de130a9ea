//! Scanning a device: which values to poll ([`Point`]s with their
//! [`Encoding`]), the fewest read requests that fetch them within the
//! Modbus quantity limits ([`plan`]), the engineering values in the answers
//! ([`Point::decode_registers`], [`Point::decode_bits`]), and whether a
//! new sample is worth reporting ([`Deadband`]). Feature `alloc`.
//!
//! ```
//! use outpost_modbus_core::access::Table;
//! use outpost_modbus_core::scan::{plan, Coalesce, Encoding, Point, Value, WordOrder};
//!
//! let points = [
//!     Point::new(Table::HoldingRegisters, 100, Encoding::U16)?,
//!     Point::new(Table::HoldingRegisters, 101, Encoding::F32(WordOrder::HighFirst))?,
//!     Point::new(Table::HoldingRegisters, 200, Encoding::I16)?,
//!     Point::new(Table::Coils, 0, Encoding::Bit)?,
//! ];
//! // Adjacent registers share a request; holes of up to 8 are read through.
//! // Reads come in table order (coils first), then address order.
//! let reads = plan(&points, Coalesce::default().max_gap(8));
//! assert_eq!(reads.len(), 3); // coil 0, registers 100..=102, register 200
//! let block = &reads[1];
//! assert_eq!((block.start, block.quantity, &block.points[..]), (100, 3, &[0, 1][..]));
//!
//! // The device answered 100..=102 with these registers:
//! let registers = [7, 0x4049, 0x0FDB];
//! assert_eq!(points[0].decode_registers(block.start, &registers), Some(Value::U16(7)));
//! let Some(Value::F32(pi)) = points[1].decode_registers(block.start, &registers) else { panic!() };
//! assert!((pi - std::f32::consts::PI).abs() < 1e-6);
//! # Ok::<(), outpost_modbus_core::scan::PointError>(())
//! ```

mod deadband;
mod plan;
mod point;

pub use deadband::Deadband;
pub use plan::{plan, Coalesce, Read};
pub use point::{Encoding, Point, PointError, Value, WordOrder};

#[cfg(test)]
mod tests;
