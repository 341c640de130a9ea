use alloc::vec;
use alloc::vec::Vec;

use super::*;
use crate::access::Table;

const HR: Table = Table::HoldingRegisters;

fn p(table: Table, address: u16, encoding: Encoding) -> Point {
    Point::new(table, address, encoding).unwrap()
}

fn u16s(addresses: &[u16]) -> Vec<Point> {
    addresses.iter().map(|&a| p(HR, a, Encoding::U16)).collect()
}

fn spans(reads: &[Read]) -> Vec<(Table, u16, u16)> {
    reads.iter().map(|r| (r.table, r.start, r.quantity)).collect()
}

#[test]
fn bits_come_from_bit_tables_and_registers_from_register_tables() {
    for table in [Table::Coils, Table::DiscreteInputs] {
        assert!(Point::new(table, 0, Encoding::Bit).is_ok());
        let err = Point::new(table, 0, Encoding::U16).unwrap_err();
        assert_eq!(
            err,
            PointError::WrongTable {
                table,
                encoding: Encoding::U16
            }
        );
    }
    for table in [Table::HoldingRegisters, Table::InputRegisters] {
        assert!(Point::new(table, 0, Encoding::RegisterBit(3)).is_ok());
        assert!(Point::new(table, 0, Encoding::F32(WordOrder::LowFirst)).is_ok());
        let err = Point::new(table, 0, Encoding::Bit).unwrap_err();
        assert_eq!(
            err,
            PointError::WrongTable {
                table,
                encoding: Encoding::Bit
            }
        );
    }
}

#[test]
fn a_register_has_bits_0_to_15() {
    assert!(Point::new(HR, 0, Encoding::RegisterBit(15)).is_ok());
    assert_eq!(
        Point::new(HR, 0, Encoding::RegisterBit(16)).unwrap_err(),
        PointError::BitIndex(16)
    );
}

#[test]
fn a_value_ends_at_the_last_address_at_most() {
    let u32_at = |a| Point::new(HR, a, Encoding::U32(WordOrder::HighFirst));
    assert_eq!(u32_at(65534).unwrap().last(), 65535);
    assert_eq!(
        u32_at(65535).unwrap_err(),
        PointError::PastEnd {
            address: 65535,
            width: 2
        }
    );
    assert_eq!(p(HR, 65535, Encoding::U16).last(), 65535);
    assert_eq!(p(Table::Coils, 65535, Encoding::Bit).last(), 65535);
}

#[test]
fn widths_and_accessors() {
    for (encoding, width) in [
        (Encoding::Bit, 1),
        (Encoding::RegisterBit(0), 1),
        (Encoding::U16, 1),
        (Encoding::I16, 1),
        (Encoding::U32(WordOrder::HighFirst), 2),
        (Encoding::I32(WordOrder::LowFirst), 2),
        (Encoding::F32(WordOrder::HighFirst), 2),
    ] {
        assert_eq!(encoding.width(), width, "{encoding:?}");
        assert_eq!(encoding.is_bit(), encoding == Encoding::Bit, "{encoding:?}");
    }
    let point = p(Table::InputRegisters, 40, Encoding::I32(WordOrder::LowFirst));
    assert_eq!(point.table(), Table::InputRegisters);
    assert_eq!(point.address(), 40);
    assert_eq!(point.last(), 41);
    assert_eq!(point.encoding(), Encoding::I32(WordOrder::LowFirst));
}

#[test]
fn registers_decode_as_their_encoding_says() {
    // Read from address 100 on.
    let registers = [0xFFFE, 0x0001, 0x0002, 0x4049, 0x0FDB, 0x8001];
    let at = |address, encoding| p(HR, address, encoding).decode_registers(100, &registers);
    assert_eq!(at(100, Encoding::U16), Some(Value::U16(0xFFFE)));
    assert_eq!(at(100, Encoding::I16), Some(Value::I16(-2)));
    assert_eq!(
        at(101, Encoding::U32(WordOrder::HighFirst)),
        Some(Value::U32(0x0001_0002))
    );
    assert_eq!(
        at(101, Encoding::U32(WordOrder::LowFirst)),
        Some(Value::U32(0x0002_0001))
    );
    assert_eq!(at(100, Encoding::I32(WordOrder::HighFirst)), Some(Value::I32(-131_071)));
    assert_eq!(
        at(100, Encoding::I32(WordOrder::LowFirst)),
        Some(Value::I32(0x0001_FFFE))
    );
    assert_eq!(
        at(103, Encoding::F32(WordOrder::HighFirst)),
        Some(Value::F32(core::f32::consts::PI))
    );
    assert_eq!(
        at(103, Encoding::F32(WordOrder::LowFirst)),
        Some(Value::F32(f32::from_bits(0x0FDB_4049)))
    );
    // 0x8001: bits 0 and 15 set, the others clear.
    assert_eq!(at(105, Encoding::RegisterBit(0)), Some(Value::Bool(true)));
    assert_eq!(at(105, Encoding::RegisterBit(1)), Some(Value::Bool(false)));
    assert_eq!(at(105, Encoding::RegisterBit(15)), Some(Value::Bool(true)));
    assert_eq!(at(105, Encoding::RegisterBit(14)), Some(Value::Bool(false)));
    // Not wholly among them: before the first, past the last, half out.
    assert_eq!(at(99, Encoding::U16), None);
    assert_eq!(at(106, Encoding::U16), None);
    assert_eq!(at(105, Encoding::U32(WordOrder::HighFirst)), None);
    // A bit table's point has no registers.
    assert_eq!(
        p(Table::Coils, 100, Encoding::Bit).decode_registers(100, &registers),
        None
    );
}

#[test]
fn bits_decode_from_their_offset() {
    let bits = [false, false, true, false];
    let coil = |address| p(Table::Coils, address, Encoding::Bit);
    assert_eq!(coil(12).decode_bits(10, &bits), Some(Value::Bool(true)));
    assert_eq!(coil(13).decode_bits(10, &bits), Some(Value::Bool(false)));
    assert_eq!(coil(10).decode_bits(10, &bits), Some(Value::Bool(false)));
    assert_eq!(coil(9).decode_bits(10, &bits), None);
    assert_eq!(coil(14).decode_bits(10, &bits), None);
    assert_eq!(p(HR, 12, Encoding::RegisterBit(0)).decode_bits(10, &bits), None);
}

#[test]
fn values_as_numbers() {
    assert_eq!(Value::Bool(true).as_f64(), 1.0);
    assert_eq!(Value::Bool(false).as_f64(), 0.0);
    assert_eq!(Value::U16(65535).as_f64(), 65535.0);
    assert_eq!(Value::I16(-2).as_f64(), -2.0);
    assert_eq!(Value::U32(4_000_000_000).as_f64(), 4_000_000_000.0);
    assert_eq!(Value::I32(-5).as_f64(), -5.0);
    assert_eq!(Value::F32(1.5).as_f64(), 1.5);
}

#[test]
fn adjacent_and_overlapping_points_share_a_read() {
    let points = [
        p(HR, 10, Encoding::U32(WordOrder::HighFirst)),
        p(HR, 11, Encoding::U16),
        p(HR, 12, Encoding::I16),
        p(HR, 12, Encoding::RegisterBit(4)),
    ];
    let reads = plan(&points, Coalesce::default());
    assert_eq!(spans(&reads), [(HR, 10, 3)]);
    assert_eq!(reads[0].points, [0, 1, 2, 3]);
    assert_eq!(reads[0].last(), 12);
    // A point inside the read does not grow it.
    let points = [p(HR, 10, Encoding::U32(WordOrder::HighFirst)), p(HR, 10, Encoding::U16)];
    assert_eq!(spans(&plan(&points, Coalesce::default())), [(HR, 10, 2)]);
}

#[test]
fn holes_are_read_through_up_to_the_gap() {
    let points = u16s(&[10, 13]);
    // Hole of 2 (11, 12).
    assert_eq!(spans(&plan(&points, Coalesce::default())), [(HR, 10, 1), (HR, 13, 1)]);
    assert_eq!(
        spans(&plan(&points, Coalesce::default().max_gap(1))),
        [(HR, 10, 1), (HR, 13, 1)]
    );
    assert_eq!(spans(&plan(&points, Coalesce::default().max_gap(2))), [(HR, 10, 4)]);
    assert_eq!(spans(&plan(&points, Coalesce::default().max_gap(3))), [(HR, 10, 4)]);
}

#[test]
fn reads_stay_within_the_quantity_limit() {
    let rules = Coalesce::default().max_registers(3);
    assert_eq!(spans(&plan(&u16s(&[0, 1, 2]), rules)), [(HR, 0, 3)]);
    assert_eq!(spans(&plan(&u16s(&[0, 1, 2, 3]), rules)), [(HR, 0, 3), (HR, 3, 1)]);
    // A two-register value that would cross the limit starts the next read.
    let points = [
        p(HR, 0, Encoding::U16),
        p(HR, 1, Encoding::U16),
        p(HR, 2, Encoding::F32(WordOrder::HighFirst)),
    ];
    assert_eq!(spans(&plan(&points, rules)), [(HR, 0, 2), (HR, 2, 2)]);
    // The specification's limits by default: 125 registers, 2000 bits.
    let addresses: Vec<u16> = (0..126).collect();
    assert_eq!(
        spans(&plan(&u16s(&addresses[..125]), Coalesce::default())),
        [(HR, 0, 125)]
    );
    assert_eq!(
        spans(&plan(&u16s(&addresses), Coalesce::default())),
        [(HR, 0, 125), (HR, 125, 1)]
    );
    let coils: Vec<Point> = (0..2001).map(|a| p(Table::Coils, a, Encoding::Bit)).collect();
    assert_eq!(
        spans(&plan(&coils[..2000], Coalesce::default())),
        [(Table::Coils, 0, 2000)]
    );
    assert_eq!(
        spans(&plan(&coils, Coalesce::default())),
        [(Table::Coils, 0, 2000), (Table::Coils, 2000, 1)]
    );
    assert_eq!(
        spans(&plan(&coils[..4], Coalesce::default().max_bits(3))),
        [(Table::Coils, 0, 3), (Table::Coils, 3, 1)]
    );
}

#[test]
fn limits_are_clamped_to_what_modbus_allows() {
    let addresses: Vec<u16> = (0..130).collect();
    assert_eq!(plan(&u16s(&addresses), Coalesce::default().max_registers(200)).len(), 2);
    // A two-register value is read whole: the limit is 2 at least.
    assert_eq!(plan(&u16s(&[0, 1]), Coalesce::default().max_registers(0)).len(), 1);
    assert_eq!(plan(&u16s(&[0, 1, 2]), Coalesce::default().max_registers(1)).len(), 2);
    let coils: Vec<Point> = (0..2001).map(|a| p(Table::Coils, a, Encoding::Bit)).collect();
    assert_eq!(plan(&coils, Coalesce::default().max_bits(5000)).len(), 2);
    assert_eq!(plan(&coils[..2], Coalesce::default().max_bits(0)).len(), 2);
}

#[test]
fn tables_are_read_apart_in_table_then_address_order() {
    let points = [
        p(Table::InputRegisters, 5, Encoding::U16),
        p(HR, 6, Encoding::U16),
        p(Table::Coils, 5, Encoding::Bit),
        p(HR, 5, Encoding::U16),
        p(Table::DiscreteInputs, 5, Encoding::Bit),
    ];
    let reads = plan(&points, Coalesce::default().max_gap(100));
    assert_eq!(
        spans(&reads),
        [
            (Table::Coils, 5, 1),
            (Table::DiscreteInputs, 5, 1),
            (HR, 5, 2),
            (Table::InputRegisters, 5, 1)
        ]
    );
    assert_eq!(reads[2].points, [3, 1]);
}

#[test]
fn the_last_addresses_plan_without_overflow() {
    let points = [
        p(HR, 65535, Encoding::U16),
        p(HR, 65534, Encoding::U16),
        p(HR, 0, Encoding::U16),
    ];
    let reads = plan(&points, Coalesce::default().max_gap(u16::MAX));
    assert_eq!(spans(&reads), [(HR, 0, 1), (HR, 65534, 2)]);
    assert_eq!(reads[1].last(), 65535);
}

#[test]
fn no_points_no_reads() {
    assert_eq!(plan(&[], Coalesce::default()), vec![]);
}

#[test]
fn deadbands_report_what_moved_far_enough() {
    let band = Deadband::new(1.0);
    assert_eq!(band.width(), 1.0);
    assert!(!band.exceeded(Value::U16(10), Value::U16(11)));
    assert!(!band.exceeded(Value::U16(11), Value::U16(10)));
    assert!(band.exceeded(Value::U16(10), Value::U16(12)));
    assert!(band.exceeded(Value::U16(12), Value::U16(10)));
    assert!(band.exceeded(Value::F32(10.0), Value::F32(11.5)));
    assert!(band.exceeded(Value::F32(10.0), Value::F32(8.9)));
    assert!(!band.exceeded(Value::F32(10.0), Value::F32(10.9)));
    // Bits on every change, whatever the band.
    let wide = Deadband::new(100.0);
    assert!(wide.exceeded(Value::Bool(false), Value::Bool(true)));
    assert!(!wide.exceeded(Value::Bool(true), Value::Bool(true)));
    // A change of type is a change.
    assert!(wide.exceeded(Value::Bool(true), Value::U16(1)));
    assert!(wide.exceeded(Value::U16(1), Value::I16(1)));
    // Not a number: reported when it appears and when it goes.
    let nan = Value::F32(f32::NAN);
    assert!(!wide.exceeded(nan, nan));
    assert!(wide.exceeded(nan, Value::F32(1.0)));
    assert!(wide.exceeded(Value::F32(1.0), nan));
}

#[test]
fn a_zero_deadband_reports_every_change() {
    let band = Deadband::default();
    assert_eq!(band.width(), 0.0);
    assert!(!band.exceeded(Value::I32(-7), Value::I32(-7)));
    assert!(band.exceeded(Value::I32(-7), Value::I32(-6)));
    assert!(band.exceeded(Value::F32(0.5), Value::F32(0.500_001)));
}

#[test]
fn a_deadband_is_a_magnitude() {
    assert_eq!(Deadband::new(-2.5).width(), 2.5);
    assert_eq!(Deadband::new(f64::NAN).width(), 0.0);
    assert_eq!(Deadband::new(0.0).width(), 0.0);
}
