//! A value to poll: where it is, and how its bits or registers encode it.

use crate::access::Table;

/// The order of the 16-bit registers of a 32-bit value. Modbus fixes the
/// byte order within a register (big-endian) but not the register order;
/// devices use both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WordOrder {
    /// The most significant register first (big-endian; "ABCD").
    HighFirst,
    /// The least significant register first (word-swapped; "CDAB").
    LowFirst,
}

/// How a point's bits or registers encode its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Encoding {
    /// A coil or a discrete input.
    Bit,
    /// Bit `0..=15` of a register (0 is the least significant).
    RegisterBit(u8),
    /// An unsigned 16-bit register.
    U16,
    /// A signed (two's complement) 16-bit register.
    I16,
    /// An unsigned 32-bit value in two registers.
    U32(WordOrder),
    /// A signed 32-bit value in two registers.
    I32(WordOrder),
    /// An IEEE 754 single-precision value in two registers.
    F32(WordOrder),
}

impl Encoding {
    /// How many bits or registers the value takes.
    pub const fn width(self) -> u16 {
        match self {
            Encoding::U32(_) | Encoding::I32(_) | Encoding::F32(_) => 2,
            _ => 1,
        }
    }

    /// Whether the value lives in a bit table (coils, discrete inputs)
    /// rather than in registers.
    pub const fn is_bit(self) -> bool {
        matches!(self, Encoding::Bit)
    }
}

/// Why a point cannot be polled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PointError {
    /// Bits are read from coils and discrete inputs, registers from
    /// holding and input registers.
    #[error("{encoding:?} cannot be read from {table:?}")]
    WrongTable {
        /// The table named.
        table: Table,
        /// The encoding asked for.
        encoding: Encoding,
    },
    /// A two-register value at the last address would run past 65535.
    #[error("a value of {width} at address {address} runs past the last address")]
    PastEnd {
        /// The point's first address.
        address: u16,
        /// Its width in registers.
        width: u16,
    },
    /// A register has bits 0 to 15.
    #[error("bit {0} is not a bit of a 16-bit register")]
    BitIndex(u8),
}

/// A value to poll from one unit: its table, its (first) address, and its
/// encoding. Validated when made: the encoding fits the table, and the
/// value ends at or before address 65535.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Point {
    table: Table,
    address: u16,
    encoding: Encoding,
}

/// A decoded value, with the type its encoding gives it.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum Value {
    /// A bit.
    Bool(bool),
    /// An unsigned 16-bit register.
    U16(u16),
    /// A signed 16-bit register.
    I16(i16),
    /// An unsigned 32-bit value.
    U32(u32),
    /// A signed 32-bit value.
    I32(i32),
    /// A single-precision value.
    F32(f32),
}

impl Value {
    /// The value as a number (a bit is 0 or 1).
    pub fn as_f64(self) -> f64 {
        match self {
            Value::Bool(b) => f64::from(u8::from(b)),
            Value::U16(v) => f64::from(v),
            Value::I16(v) => f64::from(v),
            Value::U32(v) => f64::from(v),
            Value::I32(v) => f64::from(v),
            Value::F32(v) => f64::from(v),
        }
    }
}

/// The value as written in text: `true`/`false` for a bit, the number
/// otherwise.
impl core::fmt::Display for Value {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Value::Bool(b) => b.fmt(f),
            Value::U16(v) => v.fmt(f),
            Value::I16(v) => v.fmt(f),
            Value::U32(v) => v.fmt(f),
            Value::I32(v) => v.fmt(f),
            Value::F32(v) => v.fmt(f),
        }
    }
}

impl Point {
    /// A point, if `encoding` can be read from `table` and fits below
    /// address 65536.
    pub fn new(table: Table, address: u16, encoding: Encoding) -> Result<Point, PointError> {
        let bits = matches!(table, Table::Coils | Table::DiscreteInputs);
        if bits != encoding.is_bit() {
            return Err(PointError::WrongTable { table, encoding });
        }
        if let Encoding::RegisterBit(bit) = encoding {
            if bit > 15 {
                return Err(PointError::BitIndex(bit));
            }
        }
        let width = encoding.width();
        if u32::from(address) + u32::from(width) > 0x1_0000 {
            return Err(PointError::PastEnd { address, width });
        }
        Ok(Point {
            table,
            address,
            encoding,
        })
    }

    /// The table it is read from.
    pub fn table(&self) -> Table {
        self.table
    }

    /// Its first address.
    pub fn address(&self) -> u16 {
        self.address
    }

    /// Its last address (the first, unless it takes two registers).
    pub fn last(&self) -> u16 {
        self.address + (self.encoding.width() - 1)
    }

    /// Its encoding.
    pub fn encoding(&self) -> Encoding {
        self.encoding
    }

    /// Its value in `registers`, read from address `start` on: `None` when
    /// the point is a bit table's or is not wholly among them.
    pub fn decode_registers(&self, start: u16, registers: &[u16]) -> Option<Value> {
        let offset = usize::from(self.address.checked_sub(start)?);
        let words = registers.get(offset..offset + usize::from(self.encoding.width()))?;
        let joined = |order: WordOrder| match order {
            WordOrder::HighFirst => (u32::from(words[0]) << 16) | u32::from(words[1]),
            WordOrder::LowFirst => (u32::from(words[1]) << 16) | u32::from(words[0]),
        };
        Some(match self.encoding {
            Encoding::Bit => return None,
            Encoding::RegisterBit(bit) => Value::Bool(words[0] >> bit & 1 == 1),
            Encoding::U16 => Value::U16(words[0]),
            Encoding::I16 => Value::I16(words[0] as i16),
            Encoding::U32(order) => Value::U32(joined(order)),
            Encoding::I32(order) => Value::I32(joined(order) as i32),
            Encoding::F32(order) => Value::F32(f32::from_bits(joined(order))),
        })
    }
    /// The registers that hold `value` (its width of them, the rest 0),
    /// when this point's encoding gives them whole: `None` for a bit
    /// point, a bit of a register (the register's other bits are not
    /// known) or a value of another type. The inverse of
    /// [`Point::decode_registers`].
    pub fn encode_registers(&self, value: Value) -> Option<[u16; 2]> {
        let split = |order: WordOrder, v: u32| {
            let (high, low) = ((v >> 16) as u16, v as u16);
            match order {
                WordOrder::HighFirst => [high, low],
                WordOrder::LowFirst => [low, high],
            }
        };
        Some(match (self.encoding, value) {
            (Encoding::U16, Value::U16(v)) => [v, 0],
            (Encoding::I16, Value::I16(v)) => [v as u16, 0],
            (Encoding::U32(order), Value::U32(v)) => split(order, v),
            (Encoding::I32(order), Value::I32(v)) => split(order, v as u32),
            (Encoding::F32(order), Value::F32(v)) => split(order, v.to_bits()),
            _ => return None,
        })
    }

    /// Its value in `bits`, read from address `start` on: `None` when the
    /// point is a register's or is not among them.
    pub fn decode_bits(&self, start: u16, bits: &[bool]) -> Option<Value> {
        if !self.encoding.is_bit() {
            return None;
        }
        let offset = usize::from(self.address.checked_sub(start)?);
        bits.get(offset).map(|&b| Value::Bool(b))
    }
}
