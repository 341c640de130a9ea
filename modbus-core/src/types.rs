//! Validated newtypes: a value of these types is always valid on the wire.

use crate::data::{Bits, Words};
use crate::error::RangeError;

/// A Modbus unit identifier (the "slave address" on serial lines).
///
/// On a serial line 0 is broadcast, 1..=247 address devices and 248..=255
/// are reserved. On Modbus TCP the unit id addresses a device behind a gateway;
/// 0xFF (or 0) addresses the server itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(transparent))]
pub struct UnitId(pub u8);

impl UnitId {
    /// The broadcast address of a serial line.
    pub const BROADCAST: UnitId = UnitId(0);
    /// The conventional unit id of a Modbus TCP server addressed directly.
    pub const TCP_DEFAULT: UnitId = UnitId(0xFF);

    /// Whether this is the serial-line broadcast address (0).
    pub const fn is_broadcast(self) -> bool {
        self.0 == 0
    }

    /// The raw byte.
    pub const fn value(self) -> u8 {
        self.0
    }
}

impl From<u8> for UnitId {
    fn from(value: u8) -> Self {
        UnitId(value)
    }
}

impl core::fmt::Display for UnitId {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A start address and a quantity of 1..=`MAX` items that stays inside the
/// 16-bit address space (`start + quantity <= 65536`).
///
/// The aliases carry the limits of the specification: [`CoilRange`] for
/// reading coils and discrete inputs, [`RegisterRange`] for reading registers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AddressRange<const MAX: u16> {
    start: u16,
    quantity: u16,
}

/// Read Coils and Read Discrete Inputs: 1..=2000 bits.
pub type CoilRange = AddressRange<2000>;
/// Read Holding/Input Registers and the read half of function 17: 1..=125 registers.
pub type RegisterRange = AddressRange<125>;

impl<const MAX: u16> AddressRange<MAX> {
    /// The largest quantity this range type allows.
    pub const MAX_QUANTITY: u16 = MAX;

    /// A checked range.
    pub const fn new(start: u16, quantity: u16) -> Result<Self, RangeError> {
        if quantity == 0 || quantity > MAX {
            return Err(RangeError::Quantity {
                quantity,
                min: 1,
                max: MAX,
            });
        }
        if start as u32 + quantity as u32 > 0x1_0000 {
            return Err(RangeError::Overflow { start, quantity });
        }
        Ok(AddressRange { start, quantity })
    }

    /// First address.
    pub const fn start(self) -> u16 {
        self.start
    }

    /// Number of items.
    pub const fn quantity(self) -> u16 {
        self.quantity
    }

    /// Last address in the range (inclusive).
    pub const fn last(self) -> u16 {
        // Cannot overflow: start + quantity <= 65536 and quantity >= 1.
        self.start + (self.quantity - 1)
    }

    /// Whether `address` lies in the range.
    pub const fn contains(self, address: u16) -> bool {
        address >= self.start && address <= self.last()
    }
}

pub(crate) const fn check_span(start: u16, len: usize, min: usize, max: usize) -> Result<(), RangeError> {
    if len < min || len > max {
        return Err(RangeError::Length { len, min, max });
    }
    if start as usize + len > 0x1_0000 {
        return Err(RangeError::Overflow {
            start,
            quantity: len as u16,
        });
    }
    Ok(())
}

/// The payload of Write Multiple Coils (0F): a start address and 1..=1968 values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CoilWrite<'a> {
    start: u16,
    values: Bits<'a>,
}

impl<'a> CoilWrite<'a> {
    /// The largest number of coils one request may write.
    pub const MAX_QUANTITY: u16 = 1968;

    /// A checked write.
    pub fn new(start: u16, values: Bits<'a>) -> Result<Self, RangeError> {
        check_span(start, values.len(), 1, Self::MAX_QUANTITY as usize)?;
        Ok(CoilWrite { start, values })
    }

    /// First coil address.
    pub fn start(&self) -> u16 {
        self.start
    }

    /// The values, first address first.
    pub fn values(&self) -> Bits<'a> {
        self.values
    }

    /// Number of coils (1..=1968).
    pub fn quantity(&self) -> u16 {
        self.values.len() as u16
    }
}

/// A start address and 1..=`MAX` register values: the payload of Write
/// Multiple Registers (`MAX` = 123) and the write half of Read/Write Multiple
/// Registers (`MAX` = 121).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegisterWrite<'a, const MAX: u16 = 123> {
    start: u16,
    values: Words<'a>,
}

impl<'a, const MAX: u16> RegisterWrite<'a, MAX> {
    /// The largest number of registers this write allows.
    pub const MAX_QUANTITY: u16 = MAX;

    /// A checked write.
    pub fn new(start: u16, values: Words<'a>) -> Result<Self, RangeError> {
        check_span(start, values.len(), 1, MAX as usize)?;
        Ok(RegisterWrite { start, values })
    }

    /// First register address.
    pub fn start(&self) -> u16 {
        self.start
    }

    /// The values, first address first.
    pub fn values(&self) -> Words<'a> {
        self.values
    }

    /// Number of registers.
    pub fn quantity(&self) -> u16 {
        self.values.len() as u16
    }
}

/// The payload of Read/Write Multiple Registers (17): read 1..=125 registers
/// and write 1..=121, the write performed first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadWriteRegisters<'a> {
    /// The registers to read.
    pub read: RegisterRange,
    /// The registers to write.
    pub write: RegisterWrite<'a, 121>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_limits() {
        assert!(CoilRange::new(0, 2000).is_ok());
        assert_eq!(
            CoilRange::new(0, 2001),
            Err(RangeError::Quantity {
                quantity: 2001,
                min: 1,
                max: 2000
            })
        );
        assert!(RegisterRange::new(0, 0).is_err());
        assert!(RegisterRange::new(65535, 1).is_ok());
        assert_eq!(
            RegisterRange::new(65535, 2),
            Err(RangeError::Overflow {
                start: 65535,
                quantity: 2
            })
        );
        assert_eq!(RegisterRange::new(65411, 125).map(|r| r.last()), Ok(65535));
        let r = RegisterRange::new(10, 3).unwrap();
        assert!(r.contains(12) && !r.contains(13) && !r.contains(9));
    }

    #[test]
    fn write_limits() {
        let bools = [true; 1969];
        assert!(CoilWrite::new(0, Bits::from_bools(&bools[..1968])).is_ok());
        assert!(CoilWrite::new(0, Bits::from_bools(&bools)).is_err());
        assert!(CoilWrite::new(0, Bits::from_bools(&[])).is_err());
        let words = [0u16; 124];
        assert!(RegisterWrite::<123>::new(0, Words::from_slice(&words[..123])).is_ok());
        assert!(RegisterWrite::<123>::new(0, Words::from_slice(&words)).is_err());
        assert!(RegisterWrite::<121>::new(0, Words::from_slice(&words[..122])).is_err());
        assert!(RegisterWrite::<123>::new(65535, Words::from_slice(&words[..2])).is_err());
    }
}
