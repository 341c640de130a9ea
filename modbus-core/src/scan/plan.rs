//! The fewest read requests that fetch a set of points.

use alloc::vec::Vec;

use crate::access::Table;
use crate::types::{CoilRange, RegisterRange};

use super::point::Point;

/// How reads may be joined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Coalesce {
    max_gap: u16,
    max_registers: u16,
    max_bits: u16,
}

impl Default for Coalesce {
    /// Only adjacent or overlapping points share a read; reads as large as
    /// Modbus allows (125 registers, 2000 bits).
    fn default() -> Self {
        Coalesce {
            max_gap: 0,
            max_registers: RegisterRange::MAX_QUANTITY,
            max_bits: CoilRange::MAX_QUANTITY,
        }
    }
}

impl Coalesce {
    /// Addresses no point needs that a read may span to join two points
    /// (0: none). Reading through a hole costs a few bytes and saves a
    /// request, but some devices answer exception 02 for addresses they
    /// do not map: keep 0 for those.
    pub fn max_gap(mut self, gap: u16) -> Self {
        self.max_gap = gap;
        self
    }

    /// The most registers one read may ask for, 2 to 125 (some devices
    /// take fewer than the specification allows; a two-register value is
    /// always read whole, in one request, so its halves cannot come from
    /// different moments).
    pub fn max_registers(mut self, n: u16) -> Self {
        self.max_registers = n.clamp(2, RegisterRange::MAX_QUANTITY);
        self
    }

    /// The most bits one read may ask for, 1 to 2000.
    pub fn max_bits(mut self, n: u16) -> Self {
        self.max_bits = n.clamp(1, CoilRange::MAX_QUANTITY);
        self
    }

    fn limit(&self, table: Table) -> u16 {
        match table {
            Table::Coils | Table::DiscreteInputs => self.max_bits,
            _ => self.max_registers,
        }
    }
}

/// One read request of a plan: a table, a span within its quantity limit,
/// and the points it fetches (indices into the planned slice).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Read {
    /// The table read.
    pub table: Table,
    /// The first address read.
    pub start: u16,
    /// How many bits or registers are read.
    pub quantity: u16,
    /// The points it fetches, in address order.
    pub points: Vec<usize>,
}

impl Read {
    /// The last address read.
    pub fn last(&self) -> u16 {
        self.start + (self.quantity - 1)
    }
}

/// The fewest reads that fetch every point: per table, points in address
/// order join the current read while the read stays within its limit and
/// the hole before them is at most `max_gap`; the next point starts a new
/// read. Every point is wholly inside exactly one read. Reads come in
/// table order, then address order.
pub fn plan(points: &[Point], rules: Coalesce) -> Vec<Read> {
    let mut order: Vec<usize> = (0..points.len()).collect();
    order.sort_by_key(|&i| (points[i].table(), points[i].address(), points[i].last()));
    let mut reads: Vec<Read> = Vec::new();
    for i in order {
        let point = &points[i];
        let limit = u32::from(rules.limit(point.table()));
        if let Some(read) = reads.last_mut().filter(|r| r.table == point.table()) {
            let end = u32::from(read.last());
            let joined_end = end.max(u32::from(point.last()));
            let hole = u32::from(point.address()).saturating_sub(end + 1);
            if hole <= u32::from(rules.max_gap) && joined_end - u32::from(read.start) < limit {
                read.quantity = (joined_end - u32::from(read.start) + 1) as u16;
                read.points.push(i);
                continue;
            }
        }
        reads.push(Read {
            table: point.table(),
            start: point.address(),
            quantity: point.last() - point.address() + 1,
            points: alloc::vec![i],
        });
    }
    reads
}
