//! 0x01: a group's description.

use outpost_modbus_core::access::Table;
use outpost_modbus_core::scan::{Encoding, Point, WordOrder};
use outpost_modbus_core::UnitId;

use super::reader::put_name;
use super::{MessageError, Reader};

/// The longest group or point name, in bytes of UTF-8.
pub const MAX_NAME_LEN: usize = 64;
/// The most points one group has.
pub const MAX_POINTS: usize = 4096;

/// A point as a birth describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct PointInfo {
    /// Its name.
    pub name: String,
    /// Where it is and how it is encoded.
    pub point: Point,
    /// Reported on every change (no deadband): the latest sample is the
    /// device's value, not an approximation of it.
    pub exact: bool,
}

/// A group's description: sent when the agent's channel opens and before
/// every full snapshot the hub asks for. Point indices in samples are
/// indices into `points`.
#[derive(Debug, Clone, PartialEq)]
pub struct Birth {
    /// The group's index.
    pub group: u16,
    /// Names the run of sequence numbers: a new epoch starts them again.
    pub epoch: u64,
    /// The sequence number of the group's next sample.
    pub next_seq: u64,
    /// The device polled, by the agent's name for it.
    pub device: String,
    /// The unit polled.
    pub unit: UnitId,
    /// How often the group is polled, in milliseconds: a value not
    /// reported again is the same (within its deadband) at most this long
    /// ago while the agent's channel is up.
    pub interval_ms: u32,
    /// The group's name.
    pub name: String,
    /// Its points.
    pub points: Vec<PointInfo>,
}

/// Each table's byte: one table for encoding and decoding.
const TABLES: [(Table, u8); 4] = [
    (Table::Coils, 0),
    (Table::DiscreteInputs, 1),
    (Table::HoldingRegisters, 2),
    (Table::InputRegisters, 3),
];

/// An encoding as two bytes: its code and its parameter (a bit index or
/// a word order).
fn encoding_bytes(encoding: Encoding) -> [u8; 2] {
    let order = |o: WordOrder| u8::from(o == WordOrder::LowFirst);
    match encoding {
        Encoding::Bit => [0, 0],
        Encoding::RegisterBit(bit) => [1, bit],
        Encoding::U16 => [2, 0],
        Encoding::I16 => [3, 0],
        Encoding::U32(o) => [4, order(o)],
        Encoding::I32(o) => [5, order(o)],
        Encoding::F32(o) => [6, order(o)],
        // An encoding this version does not know: the hub refuses it.
        _ => [0xFF, 0],
    }
}

fn encoding_from(bytes: [u8; 2]) -> Option<Encoding> {
    let order = match bytes[1] {
        0 => WordOrder::HighFirst,
        _ => WordOrder::LowFirst,
    };
    let plain = |e: Encoding| (bytes[1] == 0).then_some(e);
    let ordered = |e: Encoding| (bytes[1] <= 1).then_some(e);
    match bytes[0] {
        0 => plain(Encoding::Bit),
        1 => Some(Encoding::RegisterBit(bytes[1])),
        2 => plain(Encoding::U16),
        3 => plain(Encoding::I16),
        4 => ordered(Encoding::U32(order)),
        5 => ordered(Encoding::I32(order)),
        6 => ordered(Encoding::F32(order)),
        _ => None,
    }
}

impl Birth {
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.group.to_be_bytes());
        out.extend_from_slice(&self.epoch.to_be_bytes());
        out.extend_from_slice(&self.next_seq.to_be_bytes());
        put_name(out, &self.device);
        out.push(self.unit.0);
        out.extend_from_slice(&self.interval_ms.to_be_bytes());
        put_name(out, &self.name);
        let count = self.points.len().min(MAX_POINTS);
        out.extend_from_slice(&(count as u16).to_be_bytes());
        for info in &self.points[..count] {
            put_name(out, &info.name);
            let table = TABLES
                .iter()
                .find(|(t, _)| *t == info.point.table())
                .map_or(0xFF, |(_, b)| *b);
            out.push(table);
            out.extend_from_slice(&info.point.address().to_be_bytes());
            out.extend_from_slice(&encoding_bytes(info.point.encoding()));
            out.push(u8::from(info.exact));
        }
    }

    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Birth, MessageError> {
        let group = r.u16("group")?;
        let epoch = r.u64("epoch")?;
        let next_seq = r.u64("sequence number")?;
        let device = r.name(MAX_NAME_LEN, "device name")?;
        let unit = UnitId(r.u8("unit")?);
        let interval_ms = r.u32("interval")?;
        let name = r.name(MAX_NAME_LEN, "group name")?;
        // Each point: a name's length byte, a table, an address, an
        // encoding, a flag.
        let count = r.count(MAX_POINTS, 7, "points")?;
        let mut points = Vec::with_capacity(count);
        for _ in 0..count {
            let name = r.name(MAX_NAME_LEN, "point name")?;
            let table = r.u8("table")?;
            let table = TABLES
                .iter()
                .find(|(_, b)| *b == table)
                .map(|(t, _)| *t)
                .ok_or(MessageError::Invalid("table"))?;
            let address = r.u16("address")?;
            let code = r.take(2, "encoding")?;
            let encoding = encoding_from([code[0], code[1]]).ok_or(MessageError::Invalid("encoding"))?;
            let point = Point::new(table, address, encoding).map_err(|_| MessageError::Invalid("point"))?;
            let exact = match r.u8("flags")? {
                0 => false,
                1 => true,
                _ => return Err(MessageError::Invalid("flags")),
            };
            points.push(PointInfo { name, point, exact });
        }
        Ok(Birth {
            group,
            epoch,
            next_seq,
            device,
            unit,
            interval_ms,
            name,
            points,
        })
    }
}
