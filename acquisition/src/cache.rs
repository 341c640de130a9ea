//! Reads answered from what the hub knows: the registers or bits a read
//! asks for, rebuilt from the latest samples of the points that cover
//! them, when every address is covered by a point reported on every
//! change whose latest sample is good.

use outpost_modbus_core::access::Table;
use outpost_modbus_core::scan::Value;

use crate::message::Birth;
use crate::sample::{Quality, Sample};

/// A group as the cache sees it: its birth and the latest sample of each
/// of its points (in the birth's order).
pub type Known<'a> = (&'a Birth, &'a [Option<Sample>]);

/// The `quantity` registers of `table` from `start` on, if `groups`
/// cover every one of them (see the module's docs).
pub fn registers<'a>(
    groups: impl IntoIterator<Item = Known<'a>>,
    table: Table,
    start: u16,
    quantity: u16,
) -> Option<Vec<u16>> {
    let mut words: Vec<Option<u16>> = vec![None; usize::from(quantity)];
    for (birth, latest) in groups {
        for (info, sample) in birth.points.iter().zip(latest) {
            let point = info.point;
            if point.table() != table || !info.exact || point.last() < start {
                continue;
            }
            let Some(value) = good(sample) else { continue };
            let Some(encoded) = point.encode_registers(value) else {
                continue;
            };
            for (i, word) in encoded.iter().take(usize::from(point.encoding().width())).enumerate() {
                let address = usize::from(point.address()) + i;
                if let Some(slot) = address.checked_sub(usize::from(start)).and_then(|o| words.get_mut(o)) {
                    *slot = Some(*word);
                }
            }
        }
    }
    words.into_iter().collect()
}

/// The `quantity` bits of `table` from `start` on, if `groups` cover
/// every one of them.
pub fn bits<'a>(
    groups: impl IntoIterator<Item = Known<'a>>,
    table: Table,
    start: u16,
    quantity: u16,
) -> Option<Vec<bool>> {
    let mut bits: Vec<Option<bool>> = vec![None; usize::from(quantity)];
    for (birth, latest) in groups {
        for (info, sample) in birth.points.iter().zip(latest) {
            let point = info.point;
            if point.table() != table || !info.exact || !point.encoding().is_bit() {
                continue;
            }
            let Some(Value::Bool(bit)) = good(sample) else { continue };
            let slot = usize::from(point.address())
                .checked_sub(usize::from(start))
                .and_then(|o| bits.get_mut(o));
            if let Some(slot) = slot {
                *slot = Some(bit);
            }
        }
    }
    bits.into_iter().collect()
}

/// The value of a sample read well.
fn good(sample: &Option<Sample>) -> Option<Value> {
    sample.filter(|s| s.quality == Quality::Good).and_then(|s| s.value)
}
