//! Access rules: a deny-by-default policy that says, per role, which unit
//! ids, function classes and address ranges a request may touch.
//!
//! A [`Policy`] maps role names to [`RoleRules`]. [`Policy::check`] returns
//! `Ok(())` only when the role exists, the unit is listed, every function
//! class the request needs is allowed, and every address it touches lies in
//! an allowed span of its data table for that kind of access. Anything else
//! is a [`Denial`] that says which rule failed and maps to the Modbus
//! exception to answer with.
//!
//! With the `serde` feature a policy reads from TOML (or any serde format):
//!
//! ```toml
//! [roles.operator]
//! units = [1, 2]
//! functions = ["read", "write"]
//! holding_registers = { read = [[0, 99]], write = [[10, 19]] }
//! coils = { read = [[0, 15]] }
//! input_registers = { read = [[0, 9]] }
//!
//! [roles.maintenance]
//! units = "all"                 # 1..=255; the broadcast address 0 only when listed: [0, "all"]
//! functions = ["read", "diagnostics", "device_identification"]
//! fifo_queues = [1246]          # Read FIFO Queue (18), by pointer address
//! custom_functions = [65]       # user function codes, each listed
//! mei_types = [13]              # encapsulated interface types besides 0E
//! ```
//!
//! The function classes: `read`, `write`, `diagnostics` (counters and
//! status that change nothing, 08 with sub-functions 00, 02, 0B-12),
//! `device_control` (08 sub-functions that change the device: restart,
//! listen-only, clear counters and overrun), `device_identification`
//! (2B/0E). User function codes and other MEI types have no class: each is
//! listed.
//!
//! ```
//! use outpost_modbus_core::access::{Denial, Policy, RoleRules, Span, TableRule, Access, Table};
//! use outpost_modbus_core::{FunctionClass, RegisterRange, Request, UnitId};
//!
//! let mut operator = RoleRules::default();
//! operator.units.insert(UnitId(1));
//! operator.functions.insert(FunctionClass::Read);
//! operator.holding_registers.read.push(Span::new(0, 99)?);
//! let policy = Policy::new().with_role("operator", operator);
//!
//! let read = Request::ReadHoldingRegisters(RegisterRange::new(10, 5)?);
//! assert_eq!(policy.check("operator", UnitId(1), &read), Ok(()));
//! assert!(matches!(policy.check("operator", UnitId(2), &read), Err(Denial::Unit { .. })));
//! assert!(matches!(policy.check("guest", UnitId(1), &read), Err(Denial::UnknownRole { .. })));
//!
//! let far = Request::ReadHoldingRegisters(RegisterRange::new(95, 10)?);
//! assert_eq!(
//!     policy.check("operator", UnitId(1), &far),
//!     Err(Denial::Address { table: Table::HoldingRegisters, access: Access::Read, start: 95, quantity: 10 })
//! );
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;

use crate::error::RangeError;
use crate::exception::ExceptionCode;
use crate::function::{FunctionClass, FunctionCode};
use crate::pdu::request::Request;
use crate::types::UnitId;

/// A data table of the Modbus data model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Table {
    /// Coils (read-write bits).
    Coils,
    /// Discrete inputs (read-only bits).
    DiscreteInputs,
    /// Holding registers (read-write words).
    HoldingRegisters,
    /// Input registers (read-only words).
    InputRegisters,
}

/// Whether a request reads or writes a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Access {
    /// Reads values.
    Read,
    /// Changes values.
    Write,
}

/// Why a request was denied. The first rule that failed, with the values
/// that failed it.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, Hash, thiserror::Error)]
pub enum Denial {
    /// The policy has no such role.
    #[error("role {role:?} is not in the policy")]
    UnknownRole {
        /// The role asked for.
        role: String,
    },
    /// The role may not address this unit.
    #[error("unit {unit} is not allowed")]
    Unit {
        /// The unit addressed.
        unit: UnitId,
    },
    /// The role may not use this class of function.
    #[error("function {function} ({class:?}) is not allowed")]
    Function {
        /// The function of the request.
        function: FunctionCode,
        /// The class that is not allowed.
        class: FunctionClass,
    },
    /// The request touches addresses outside the role's spans.
    #[error("{access:?} of {quantity} from {start} in {table:?} is not allowed")]
    Address {
        /// The table.
        table: Table,
        /// Read or write.
        access: Access,
        /// First address touched.
        start: u16,
        /// Number of addresses touched.
        quantity: u16,
    },
    /// The request touches a file the role may not use.
    #[error("file {file} is not allowed")]
    File {
        /// The file number.
        file: u16,
    },
    /// A Read FIFO Queue at a pointer address the role may not read.
    #[error("the FIFO queue at {address} is not allowed")]
    Fifo {
        /// The queue's pointer address.
        address: u16,
    },
}

impl Denial {
    /// The exception to answer a denied request with: 01 (Illegal Function)
    /// for a role, unit or function denial, 02 (Illegal Data Address) for an
    /// address or file denial.
    pub fn exception_code(&self) -> ExceptionCode {
        match self {
            Denial::UnknownRole { .. } | Denial::Unit { .. } | Denial::Function { .. } => {
                ExceptionCode::IllegalFunction
            }
            Denial::Address { .. } | Denial::File { .. } | Denial::Fifo { .. } => ExceptionCode::IllegalDataAddress,
        }
    }
}

/// An inclusive span of addresses, `first..=last`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Span {
    first: u16,
    last: u16,
}

impl Span {
    /// A checked span (`first <= last`).
    pub const fn new(first: u16, last: u16) -> Result<Self, RangeError> {
        if first > last {
            return Err(RangeError::Value {
                field: "span end",
                value: last,
            });
        }
        Ok(Span { first, last })
    }

    /// The whole address space.
    pub const ALL: Span = Span { first: 0, last: 0xFFFF };

    /// First address.
    pub const fn first(self) -> u16 {
        self.first
    }

    /// Last address (inclusive).
    pub const fn last(self) -> u16 {
        self.last
    }

    fn covers(self, start: u16, quantity: u16) -> bool {
        let end = start as u32 + quantity.max(1) as u32 - 1;
        start >= self.first && end <= self.last as u32
    }
}

/// The spans of one table a role may read and write.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(default, deny_unknown_fields))]
pub struct TableRule {
    /// Spans that may be read.
    pub read: Vec<Span>,
    /// Spans that may be written (ignored for read-only tables).
    pub write: Vec<Span>,
}

impl TableRule {
    /// Whether the whole of `start..start+quantity` lies inside one span.
    pub fn allows(&self, access: Access, start: u16, quantity: u16) -> bool {
        let spans = match access {
            Access::Read => &self.read,
            Access::Write => &self.write,
        };
        spans.iter().any(|s| s.covers(start, quantity))
    }
}

/// A set of unit ids.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct UnitSet([u64; 4]);

impl UnitSet {
    /// No unit.
    pub const fn none() -> Self {
        UnitSet([0; 4])
    }

    /// Every unit id 0..=255, broadcast (0) included.
    pub const fn all() -> Self {
        UnitSet([u64::MAX; 4])
    }

    /// Every unit id 1..=255: all but the broadcast address 0, which a
    /// policy allows only when it lists it. What `units = "all"` means.
    pub const fn all_but_broadcast() -> Self {
        UnitSet([u64::MAX - 1, u64::MAX, u64::MAX, u64::MAX])
    }

    /// Add a unit.
    pub fn insert(&mut self, unit: UnitId) {
        self.0[unit.0 as usize / 64] |= 1 << (unit.0 % 64);
    }

    /// Whether the unit is in the set.
    pub fn contains(&self, unit: UnitId) -> bool {
        self.0[unit.0 as usize / 64] & (1 << (unit.0 % 64)) != 0
    }

    /// The units in the set, in order.
    pub fn iter(&self) -> impl Iterator<Item = UnitId> + '_ {
        (0..=255u8).map(UnitId).filter(|u| self.contains(*u))
    }
}

impl FromIterator<UnitId> for UnitSet {
    fn from_iter<T: IntoIterator<Item = UnitId>>(iter: T) -> Self {
        let mut set = UnitSet::none();
        for u in iter {
            set.insert(u);
        }
        set
    }
}

impl core::fmt::Debug for UnitSet {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_set().entries(self.iter().map(|u| u.0)).finish()
    }
}

const fn class_bit(class: FunctionClass) -> u8 {
    match class {
        FunctionClass::Read => 1,
        FunctionClass::Write => 2,
        FunctionClass::Diagnostics => 4,
        FunctionClass::DeviceIdentification => 8,
        FunctionClass::Custom => 16,
        FunctionClass::DeviceControl => 32,
    }
}

/// A set of function classes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct FunctionClasses(u8);

impl FunctionClasses {
    /// No class.
    pub const fn none() -> Self {
        FunctionClasses(0)
    }

    /// Add a class.
    pub fn insert(&mut self, class: FunctionClass) {
        self.0 |= class_bit(class);
    }

    /// Whether the class is in the set.
    pub fn contains(&self, class: FunctionClass) -> bool {
        self.0 & class_bit(class) != 0
    }

    /// The classes in the set.
    pub fn iter(&self) -> impl Iterator<Item = FunctionClass> + '_ {
        FunctionClass::ALL.into_iter().filter(|c| self.contains(*c))
    }
}

impl FromIterator<FunctionClass> for FunctionClasses {
    fn from_iter<T: IntoIterator<Item = FunctionClass>>(iter: T) -> Self {
        let mut set = FunctionClasses::none();
        for c in iter {
            set.insert(c);
        }
        set
    }
}

impl core::fmt::Debug for FunctionClasses {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

/// What one role may do. The default allows nothing.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(default, deny_unknown_fields))]
pub struct RoleRules {
    /// Units the role may address.
    pub units: UnitSet,
    /// Function classes the role may use.
    pub functions: FunctionClasses,
    /// Coil spans.
    pub coils: TableRule,
    /// Discrete input spans (read only).
    pub discrete_inputs: TableRule,
    /// Holding register spans.
    pub holding_registers: TableRule,
    /// Input register spans (read only).
    pub input_registers: TableRule,
    /// File numbers the role may read or write with functions 14 and 15.
    pub files: Vec<u16>,
    /// Pointer addresses of the FIFO queues the role may read (function
    /// 18). A FIFO read returns up to 31 registers from wherever the device
    /// keeps the queue, so it is allowed by its pointer address alone, not
    /// by the holding register spans.
    pub fifo_queues: Vec<u16>,
    /// User-defined function codes the role may send (each one listed; the
    /// `custom` class grants none).
    pub custom_functions: Vec<u8>,
    /// Encapsulated interface (2B) MEI types the role may send besides Read
    /// Device Identification (0E), which its own class governs.
    pub mei_types: Vec<u8>,
}

impl RoleRules {
    fn table(&self, table: Table) -> &TableRule {
        match table {
            Table::Coils => &self.coils,
            Table::DiscreteInputs => &self.discrete_inputs,
            Table::HoldingRegisters => &self.holding_registers,
            Table::InputRegisters => &self.input_registers,
        }
    }

    fn check(&self, unit: UnitId, request: &Request<'_>) -> Result<(), Denial> {
        if !self.units.contains(unit) {
            return Err(Denial::Unit { unit });
        }
        let function = request.function();
        let class = |class: FunctionClass| {
            if self.functions.contains(class) {
                Ok(())
            } else {
                Err(Denial::Function { function, class })
            }
        };
        let span = |table: Table, access: Access, start: u16, quantity: u16| {
            if self.table(table).allows(access, start, quantity) {
                Ok(())
            } else {
                Err(Denial::Address {
                    table,
                    access,
                    start,
                    quantity,
                })
            }
        };
        let file = |file: u16| {
            if self.files.contains(&file) {
                Ok(())
            } else {
                Err(Denial::File { file })
            }
        };
        use Access::{Read, Write};
        use Table::{Coils, DiscreteInputs, HoldingRegisters, InputRegisters};
        match request {
            Request::ReadCoils(r) => class(FunctionClass::Read).and(span(Coils, Read, r.start(), r.quantity())),
            Request::ReadDiscreteInputs(r) => {
                class(FunctionClass::Read).and(span(DiscreteInputs, Read, r.start(), r.quantity()))
            }
            Request::ReadHoldingRegisters(r) => {
                class(FunctionClass::Read).and(span(HoldingRegisters, Read, r.start(), r.quantity()))
            }
            Request::ReadInputRegisters(r) => {
                class(FunctionClass::Read).and(span(InputRegisters, Read, r.start(), r.quantity()))
            }
            Request::WriteSingleCoil { address, .. } => {
                class(FunctionClass::Write).and(span(Coils, Write, *address, 1))
            }
            Request::WriteSingleRegister { address, .. } | Request::MaskWriteRegister { address, .. } => {
                class(FunctionClass::Write).and(span(HoldingRegisters, Write, *address, 1))
            }
            Request::WriteMultipleCoils(w) => {
                class(FunctionClass::Write).and(span(Coils, Write, w.start(), w.quantity()))
            }
            Request::WriteMultipleRegisters(w) => {
                class(FunctionClass::Write).and(span(HoldingRegisters, Write, w.start(), w.quantity()))
            }
            Request::ReadWriteMultipleRegisters(rw) => {
                class(FunctionClass::Write)?;
                class(FunctionClass::Read)?;
                span(HoldingRegisters, Write, rw.write.start(), rw.write.quantity())?;
                span(HoldingRegisters, Read, rw.read.start(), rw.read.quantity())
            }
            Request::ReadFifoQueue { address } => {
                class(FunctionClass::Read)?;
                if self.fifo_queues.contains(address) {
                    Ok(())
                } else {
                    Err(Denial::Fifo { address: *address })
                }
            }
            Request::ReadFileRecord(reads) => {
                class(FunctionClass::Read)?;
                reads.iter().try_for_each(|r| file(r.file))
            }
            Request::WriteFileRecord(writes) => {
                class(FunctionClass::Write)?;
                writes.iter().try_for_each(|w| file(w.file))
            }
            Request::Diagnostics(d) => match d.sub_function().0 {
                // Reads of the diagnostic register and counters.
                0x00 | 0x02 | 0x0B..=0x12 => class(FunctionClass::Diagnostics),
                // Restart, listen-only, clears, and anything undefined.
                _ => class(FunctionClass::DeviceControl),
            },
            Request::ReadExceptionStatus
            | Request::GetCommEventCounter
            | Request::GetCommEventLog
            | Request::ReportServerId => class(FunctionClass::Diagnostics),
            Request::ReadDeviceIdentification { .. } => class(FunctionClass::DeviceIdentification),
            Request::EncapsulatedInterface(mei) if self.mei_types.contains(&mei.mei_type()) => Ok(()),
            Request::Custom(custom) if self.custom_functions.contains(&custom.function()) => Ok(()),
            Request::EncapsulatedInterface(_) | Request::Custom(_) => Err(Denial::Function {
                function,
                class: FunctionClass::Custom,
            }),
        }
    }
}

/// A deny-by-default access policy: role name to [`RoleRules`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(default, deny_unknown_fields))]
pub struct Policy {
    roles: BTreeMap<String, RoleRules>,
}

impl Policy {
    /// A policy with no roles: it denies everything.
    pub fn new() -> Self {
        Policy::default()
    }

    /// Add or replace a role (builder style).
    pub fn with_role(mut self, name: impl Into<String>, rules: RoleRules) -> Self {
        self.insert(name, rules);
        self
    }

    /// Add or replace a role.
    pub fn insert(&mut self, name: impl Into<String>, rules: RoleRules) {
        self.roles.insert(name.into(), rules);
    }

    /// Remove a role.
    pub fn remove(&mut self, name: &str) -> Option<RoleRules> {
        self.roles.remove(name)
    }

    /// The rules of a role.
    pub fn role(&self, name: &str) -> Option<&RoleRules> {
        self.roles.get(name)
    }

    /// The role names, in order.
    pub fn roles(&self) -> impl Iterator<Item = &str> {
        self.roles.keys().map(String::as_str)
    }

    /// May `role` send `request` to `unit`?
    pub fn check(&self, role: &str, unit: UnitId, request: &Request<'_>) -> Result<(), Denial> {
        let rules = self
            .roles
            .get(role)
            .ok_or_else(|| Denial::UnknownRole { role: role.into() })?;
        rules.check(unit, request)
    }
}

#[cfg(feature = "serde")]
mod serde_impls;

#[cfg(test)]
mod tests;
