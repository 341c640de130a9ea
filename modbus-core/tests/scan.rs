//! Property tests of scan planning: the reads cover exactly the points,
//! within the quantity limits, and are as few as can be.

#![cfg(feature = "alloc")]

use outpost_modbus_core::access::Table;
use outpost_modbus_core::scan::{plan, Coalesce, Encoding, Point, Read, WordOrder};
use proptest::prelude::*;

const TABLES: [Table; 4] = [
    Table::Coils,
    Table::DiscreteInputs,
    Table::HoldingRegisters,
    Table::InputRegisters,
];

fn encoding(table: Table, kind: u8) -> Encoding {
    match table {
        Table::Coils | Table::DiscreteInputs => Encoding::Bit,
        _ => match kind % 5 {
            0 => Encoding::U16,
            1 => Encoding::I16,
            2 => Encoding::RegisterBit(kind % 16),
            3 => Encoding::U32(WordOrder::HighFirst),
            _ => Encoding::F32(WordOrder::LowFirst),
        },
    }
}

/// Points anywhere in a few hundred addresses (so they cluster and
/// overlap), of every table and encoding.
fn points() -> impl Strategy<Value = Vec<Point>> {
    prop::collection::vec((0usize..4, 0u16..300, any::<u8>()), 0..60).prop_map(|specs| {
        specs
            .into_iter()
            .filter_map(|(t, address, kind)| Point::new(TABLES[t], address, encoding(TABLES[t], kind)).ok())
            .collect()
    })
}

/// Points of one register table that do not overlap, in address order,
/// with holes of 0 to 6 between them.
fn apart() -> impl Strategy<Value = Vec<Point>> {
    prop::collection::vec((0u16..7, any::<u8>()), 0..40).prop_map(|specs| {
        let mut next = 0u16;
        let mut points = Vec::new();
        for (hole, kind) in specs {
            let point = Point::new(
                Table::HoldingRegisters,
                next + hole,
                encoding(Table::HoldingRegisters, kind),
            )
            .unwrap();
            next = point.last() + 1;
            points.push(point);
        }
        points
    })
}

fn rules() -> impl Strategy<Value = (u16, u16, u16)> {
    (0u16..8, 2u16..20, 1u16..40)
}

fn limit(table: Table, registers: u16, bits: u16) -> u16 {
    match table {
        Table::Coils | Table::DiscreteInputs => bits,
        _ => registers,
    }
}

/// The fewest reads for points of one table that do not overlap, by
/// dynamic programming over every way to cut them into runs.
fn fewest(points: &[Point], gap: u16, limit: u16) -> usize {
    let n = points.len();
    let mut best = vec![usize::MAX; n + 1];
    best[0] = 0;
    for end in 1..=n {
        for start in (0..end).rev() {
            let run = &points[start..end];
            let span = u32::from(run[run.len() - 1].last()) - u32::from(run[0].address()) + 1;
            let holes_fit = run
                .windows(2)
                .all(|w| u32::from(w[1].address()) - u32::from(w[0].last()) - 1 <= u32::from(gap));
            if span > u32::from(limit) {
                break;
            }
            if holes_fit && best[start] != usize::MAX {
                best[end] = best[end].min(best[start] + 1);
            }
        }
    }
    best[n]
}

fn check(points: &[Point], reads: &[Read], gap: u16, registers: u16, bits: u16) -> Result<(), TestCaseError> {
    // Every point in exactly one read, wholly inside, of its table.
    let mut seen = vec![0; points.len()];
    for read in reads {
        prop_assert!(read.quantity >= 1);
        prop_assert!(read.quantity <= limit(read.table, registers, bits), "{read:?}");
        prop_assert!(u32::from(read.start) + u32::from(read.quantity) <= 0x1_0000);
        prop_assert!(!read.points.is_empty());
        let mut covered = vec![false; usize::from(read.quantity)];
        for &i in &read.points {
            seen[i] += 1;
            let p = &points[i];
            prop_assert_eq!(p.table(), read.table);
            prop_assert!(
                read.start <= p.address() && p.last() <= read.last(),
                "{p:?} outside {read:?}"
            );
            for a in p.address()..=p.last() {
                covered[usize::from(a - read.start)] = true;
            }
        }
        // Exactly the points' addresses, and holes of at most the gap:
        // the first and last addresses are a point's, and no run of
        // addresses no point needs is longer than the gap.
        prop_assert!(
            covered[0] && covered[covered.len() - 1],
            "{read:?} reads past its points"
        );
        let mut hole = 0u32;
        for c in covered {
            hole = if c { 0 } else { hole + 1 };
            prop_assert!(hole <= u32::from(gap), "{read:?}: a hole longer than {gap}");
        }
    }
    prop_assert!(seen.iter().all(|&n| n == 1), "points read {seen:?} times");
    // Reads in table order, then address order, and never two that one
    // read could replace.
    for w in reads.windows(2) {
        prop_assert!((w[0].table, w[0].start) < (w[1].table, w[1].start));
        if w[0].table == w[1].table {
            let hole = u32::from(w[1].start).saturating_sub(u32::from(w[0].last()) + 1);
            let span = u32::from(w[1].last().max(w[0].last())) - u32::from(w[0].start) + 1;
            prop_assert!(
                hole > u32::from(gap) || span > u32::from(limit(w[0].table, registers, bits)),
                "{:?} and {:?} fit in one read",
                w[0],
                w[1]
            );
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn reads_cover_exactly_the_points_within_the_limits(points in points(), (gap, registers, bits) in rules()) {
        let rules = Coalesce::default().max_gap(gap).max_registers(registers).max_bits(bits);
        let reads = plan(&points, rules);
        check(&points, &reads, gap, registers, bits)?;
    }

    #[test]
    fn reads_are_as_few_as_can_be(points in apart(), (gap, registers, _) in rules()) {
        let rules = Coalesce::default().max_gap(gap).max_registers(registers);
        let reads = plan(&points, rules);
        check(&points, &reads, gap, registers, 2000)?;
        prop_assert_eq!(reads.len(), fewest(&points, gap, registers));
    }
}

/// Every register encoding, either word order.
fn register_encoding(kind: u8) -> Encoding {
    let order = if kind & 8 == 0 {
        WordOrder::HighFirst
    } else {
        WordOrder::LowFirst
    };
    match kind % 5 {
        0 => Encoding::U16,
        1 => Encoding::I16,
        2 => Encoding::U32(order),
        3 => Encoding::I32(order),
        _ => Encoding::F32(order),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn registers_encoded_decode_to_the_same_value(kind in any::<u8>(), words in any::<[u16; 2]>(), address in 0u16..65534) {
        let point = Point::new(Table::HoldingRegisters, address, register_encoding(kind)).unwrap();
        let value = point.decode_registers(address, &words).unwrap();
        let encoded = point.encode_registers(value).unwrap();
        let width = usize::from(point.encoding().width());
        // The same registers (a NaN's bits too), and 0 past the width.
        prop_assert_eq!(&encoded[..width], &words[..width]);
        prop_assert!(encoded[width..].iter().all(|&w| w == 0));
    }
}

#[test]
fn only_whole_registers_of_the_same_type_encode() {
    use outpost_modbus_core::scan::Value;
    let at = |e| Point::new(Table::HoldingRegisters, 0, e).unwrap();
    assert_eq!(at(Encoding::U16).encode_registers(Value::I16(1)), None);
    assert_eq!(at(Encoding::RegisterBit(3)).encode_registers(Value::Bool(true)), None);
    let coil = Point::new(Table::Coils, 0, Encoding::Bit).unwrap();
    assert_eq!(coil.encode_registers(Value::Bool(true)), None);
    assert_eq!(
        at(Encoding::U32(WordOrder::LowFirst)).encode_registers(Value::U32(0x0102_0304)),
        Some([0x0304, 0x0102])
    );
    assert_eq!(at(Encoding::I16).encode_registers(Value::I16(-2)), Some([0xFFFE, 0]));
    assert_eq!(Value::F32(1.5).to_string(), "1.5");
    assert_eq!(Value::Bool(true).to_string(), "true");
    assert_eq!(Value::I32(-7).to_string(), "-7");
}
