//! The scanner with a fake clock: scheduling within the in-flight limit,
//! report by exception, qualities, snapshots, overruns.

use std::time::{Duration, Instant};

use outpost_acquisition::{Answer, GroupSpec, PointSpec, Quality, ReadOrder, Sample, Scanner};
use outpost_modbus_core::access::Table;
use outpost_modbus_core::scan::{Coalesce, Deadband, Encoding, Point, Value};
use outpost_modbus_core::{ExceptionCode, UnitId};

const SECOND: Duration = Duration::from_secs(1);
const T0: u64 = 1_700_000_000_000;

fn register(name: &str, address: u16) -> PointSpec {
    PointSpec::new(
        name,
        Point::new(Table::HoldingRegisters, address, Encoding::U16).unwrap(),
    )
}

fn coil(name: &str, address: u16) -> PointSpec {
    PointSpec::new(name, Point::new(Table::Coils, address, Encoding::Bit).unwrap())
}

/// Registers 0, 1 (one read) every second.
fn pair() -> GroupSpec {
    GroupSpec::new("pair", UnitId(3), SECOND)
        .point(register("a", 0))
        .point(register("b", 1).deadband(Deadband::new(5.0)))
}

fn samples(scanner: &mut Scanner) -> Vec<Sample> {
    std::iter::from_fn(|| scanner.poll_sample()).collect()
}

/// (point, seq, quality, value, snapshot) of each sample.
fn brief(samples: &[Sample]) -> Vec<(usize, u64, Quality, Option<Value>, bool)> {
    samples
        .iter()
        .map(|s| (s.point, s.seq, s.quality, s.value, s.snapshot))
        .collect()
}

fn scan(scanner: &mut Scanner, now: Instant, at: u64, answer: Answer<'_>) -> Vec<Sample> {
    let read = scanner.poll_read(now, at).expect("a read is due");
    scanner.handle_answer(at, read.token, answer);
    samples(scanner)
}

#[test]
fn a_group_is_due_at_once_then_every_interval() {
    let t = Instant::now();
    let mut scanner = Scanner::new(vec![pair()], 4, t);
    assert_eq!(scanner.poll_timeout(), Some(t));
    let read = scanner.poll_read(t, T0).unwrap();
    assert_eq!(
        (read.unit, read.table, read.start, read.quantity),
        (UnitId(3), Table::HoldingRegisters, 0, 2)
    );
    assert_eq!(scanner.poll_timeout(), Some(t + SECOND));
    scanner.handle_answer(T0, read.token, Answer::Registers(&[1, 2]));
    // Not before the interval; at it exactly.
    assert!(scanner.poll_read(t + SECOND - Duration::from_millis(1), T0).is_none());
    assert!(scanner.poll_read(t + SECOND, T0).is_some());
}

#[test]
fn scans_keep_their_rate_and_skip_what_was_missed() {
    let t = Instant::now();
    let mut scanner = Scanner::new(vec![pair()], 4, t);
    let answer = |scanner: &mut Scanner, at: Instant| {
        let read = scanner.poll_read(at, T0).unwrap();
        scanner.handle_answer(T0, read.token, Answer::Registers(&[1, 2]));
    };
    answer(&mut scanner, t);
    // Polled late by a little: the next is still due on the beat.
    answer(&mut scanner, t + SECOND + Duration::from_millis(300));
    assert_eq!(scanner.poll_timeout(), Some(t + 2 * SECOND));
    // Polled late by more than an interval: one interval from now.
    let late = t + 5 * SECOND + Duration::from_millis(500);
    answer(&mut scanner, late);
    assert_eq!(scanner.poll_timeout(), Some(late + SECOND));
    // Polled a whole interval late (the beat after next is now): one
    // interval from now, not due again at once.
    let mut scanner = Scanner::new(vec![pair()], 4, t);
    answer(&mut scanner, t);
    answer(&mut scanner, t + 2 * SECOND);
    assert_eq!(scanner.poll_timeout(), Some(t + 3 * SECOND));
}

#[test]
fn reads_wait_for_room_on_the_device() {
    let t = Instant::now();
    let apart = GroupSpec::new("apart", UnitId(1), SECOND)
        .point(register("x", 0))
        .point(register("y", 100))
        .point(coil("z", 7));
    let mut scanner = Scanner::new(vec![apart], 2, t);
    assert_eq!(scanner.reads(0).len(), 3);
    let first = scanner.poll_read(t, T0).unwrap();
    let second = scanner.poll_read(t, T0).unwrap();
    assert_ne!(first.token, second.token);
    assert!(scanner.poll_read(t, T0).is_none(), "two in flight at most");
    scanner.handle_answer(T0, first.token, Answer::Bits(&[true]));
    let third = scanner.poll_read(t, T0).unwrap();
    assert_ne!(third.token, first.token);
    assert_ne!(third.token, second.token);
    assert!(scanner.poll_read(t, T0).is_none());
    // At least one in flight, whatever was asked.
    let mut scanner = Scanner::new(vec![pair()], 0, t);
    assert!(scanner.poll_read(t, T0).is_some());
}

#[test]
fn the_first_scan_reports_every_point_then_only_changes() {
    let t = Instant::now();
    let mut scanner = Scanner::new(vec![pair()], 1, t);
    let first = scan(&mut scanner, t, T0, Answer::Registers(&[10, 20]));
    assert_eq!(
        brief(&first),
        [
            (0, 0, Quality::Good, Some(Value::U16(10)), true),
            (1, 1, Quality::Good, Some(Value::U16(20)), true)
        ]
    );
    assert!(first.iter().all(|s| s.at_ms == T0 && s.group == 0));
    // Unchanged: nothing.
    assert!(scan(&mut scanner, t + SECOND, T0 + 1000, Answer::Registers(&[10, 20])).is_empty());
    // a changed; b moved by its deadband exactly: only a.
    let changed = scan(&mut scanner, t + 2 * SECOND, T0 + 2000, Answer::Registers(&[11, 25]));
    assert_eq!(brief(&changed), [(0, 2, Quality::Good, Some(Value::U16(11)), false)]);
    assert_eq!(changed[0].at_ms, T0 + 2000);
    // b past its deadband, from the value last reported (20), not 25.
    let changed = scan(&mut scanner, t + 3 * SECOND, T0 + 3000, Answer::Registers(&[11, 26]));
    assert_eq!(brief(&changed), [(1, 3, Quality::Good, Some(Value::U16(26)), false)]);
}

#[test]
fn failures_change_the_quality_and_keep_the_last_value() {
    let t = Instant::now();
    let mut scanner = Scanner::new(vec![pair()], 1, t);
    scan(&mut scanner, t, T0, Answer::Registers(&[10, 20]));
    let busy = ExceptionCode::ServerDeviceBusy;
    let failed = scan(&mut scanner, t + SECOND, T0, Answer::Exception(busy));
    assert_eq!(
        brief(&failed),
        [
            (0, 2, Quality::DeviceException(busy), Some(Value::U16(10)), false),
            (1, 3, Quality::DeviceException(busy), Some(Value::U16(20)), false)
        ]
    );
    // The same again: nothing new.
    assert!(scan(&mut scanner, t + 2 * SECOND, T0, Answer::Exception(busy)).is_empty());
    // Another exception is another quality.
    let other = ExceptionCode::GatewayTargetFailedToRespond;
    assert_eq!(
        scan(&mut scanner, t + 3 * SECOND, T0, Answer::Exception(other)).len(),
        2
    );
    let lost = scan(&mut scanner, t + 4 * SECOND, T0, Answer::Failed);
    assert!(lost.iter().all(|s| s.quality == Quality::CommFailure));
    assert!(scan(&mut scanner, t + 5 * SECOND, T0, Answer::Failed).is_empty());
    // Back: good again, reported even though the values did not move.
    let back = scan(&mut scanner, t + 6 * SECOND, T0, Answer::Registers(&[10, 20]));
    assert_eq!(
        brief(&back),
        [
            (0, 8, Quality::Good, Some(Value::U16(10)), false),
            (1, 9, Quality::Good, Some(Value::U16(20)), false)
        ]
    );
}

#[test]
fn a_point_never_read_is_reported_once_without_a_value() {
    let t = Instant::now();
    let mut scanner = Scanner::new(vec![pair()], 1, t);
    let failed = scan(&mut scanner, t, T0, Answer::Failed);
    assert_eq!(
        brief(&failed),
        [
            (0, 0, Quality::CommFailure, None, true),
            (1, 1, Quality::CommFailure, None, true)
        ]
    );
    assert!(scan(&mut scanner, t + SECOND, T0, Answer::Failed).is_empty());
    let read = scan(&mut scanner, t + 2 * SECOND, T0, Answer::Registers(&[3, 4]));
    assert_eq!(read.len(), 2);
}

#[test]
fn answers_that_do_not_fit_are_failures() {
    let t = Instant::now();
    let mixed = GroupSpec::new("mixed", UnitId(1), SECOND)
        .point(register("r", 0))
        .point(coil("c", 0));
    let mut scanner = Scanner::new(vec![mixed], 1, t);
    // The coil read (coils come first) answered with registers, the
    // register read with too few.
    let coils = scan(&mut scanner, t, T0, Answer::Registers(&[1]));
    assert_eq!(brief(&coils), [(1, 0, Quality::CommFailure, None, true)]);
    let registers = scan(&mut scanner, t, T0, Answer::Registers(&[]));
    assert_eq!(brief(&registers), [(0, 1, Quality::CommFailure, None, true)]);
    // Bits decode for coils; not for registers.
    let coils = scan(&mut scanner, t + SECOND, T0, Answer::Bits(&[true]));
    assert_eq!(brief(&coils), [(1, 2, Quality::Good, Some(Value::Bool(true)), false)]);
    let registers = scan(&mut scanner, t + SECOND, T0, Answer::Bits(&[true]));
    assert_eq!(
        brief(&registers),
        [(0, 3, Quality::CommFailure, None, false)]
            .map(|b| b)
            .to_vec()
            .iter()
            .filter(|_| false)
            .cloned()
            .collect::<Vec<_>>()
    );
}

#[test]
fn every_point_is_reported_once_per_integrity_interval() {
    let t = Instant::now();
    let group = pair().integrity(3 * SECOND);
    let mut scanner = Scanner::new(vec![group], 1, t);
    scan(&mut scanner, t, T0, Answer::Registers(&[10, 20]));
    assert!(scan(&mut scanner, t + SECOND, T0, Answer::Registers(&[10, 20])).is_empty());
    assert!(scan(&mut scanner, t + 2 * SECOND, T0, Answer::Registers(&[10, 20])).is_empty());
    let snapshot = scan(&mut scanner, t + 3 * SECOND, T0, Answer::Registers(&[10, 20]));
    assert_eq!(
        brief(&snapshot),
        [
            (0, 2, Quality::Good, Some(Value::U16(10)), true),
            (1, 3, Quality::Good, Some(Value::U16(20)), true)
        ]
    );
    assert!(scan(&mut scanner, t + 4 * SECOND, T0, Answer::Registers(&[10, 20])).is_empty());
}

#[test]
fn a_snapshot_asked_for_comes_with_the_next_scan() {
    let t = Instant::now();
    let mut scanner = Scanner::new(vec![pair(), pair()], 1, t);
    for at in [t, t] {
        scan(&mut scanner, at, T0, Answer::Registers(&[10, 20]));
    }
    scanner.request_snapshot(1);
    scanner.request_snapshot(7); // no such group: nothing happens
    let first = scan(&mut scanner, t + SECOND, T0, Answer::Registers(&[10, 20]));
    assert!(first.is_empty(), "group 0 did not ask");
    let second = scan(&mut scanner, t + SECOND, T0, Answer::Registers(&[10, 20]));
    // Group 1's own sequence: its first scan had 0 and 1.
    assert_eq!(
        second.iter().map(|s| (s.group, s.seq, s.snapshot)).collect::<Vec<_>>(),
        [(1, 2, true), (1, 3, true)]
    );
}

#[test]
fn a_full_report_spans_every_read_of_its_scan() {
    let t = Instant::now();
    let apart = GroupSpec::new("apart", UnitId(1), SECOND)
        .point(register("x", 0))
        .point(register("y", 100));
    let mut scanner = Scanner::new(vec![apart], 1, t);
    let x = scan(&mut scanner, t, T0, Answer::Registers(&[1]));
    let y = scan(&mut scanner, t, T0, Answer::Registers(&[2]));
    assert!(x[0].snapshot && y[0].snapshot);
    // The next scan reports changes only.
    let x = scan(&mut scanner, t + SECOND, T0, Answer::Registers(&[5]));
    assert_eq!(brief(&x), [(0, 2, Quality::Good, Some(Value::U16(5)), false)]);
}

#[test]
fn a_scan_still_under_way_when_the_next_is_due_turns_its_points_stale() {
    let t = Instant::now();
    let mut scanner = Scanner::new(vec![pair()], 1, t);
    scan(&mut scanner, t, T0, Answer::Registers(&[10, 20]));
    let slow: ReadOrder = scanner.poll_read(t + SECOND, T0 + 1000).unwrap();
    // Due again while unanswered.
    assert!(scanner.poll_read(t + 2 * SECOND, T0 + 2000).is_none());
    assert_eq!(scanner.overruns(0), 1);
    let stale = samples(&mut scanner);
    assert_eq!(
        brief(&stale),
        [
            (0, 2, Quality::Stale, Some(Value::U16(10)), false),
            (1, 3, Quality::Stale, Some(Value::U16(20)), false)
        ]
    );
    assert!(stale.iter().all(|s| s.at_ms == T0 + 2000));
    // Still stale a beat later: not again.
    assert!(scanner.poll_read(t + 3 * SECOND, T0 + 3000).is_none());
    assert_eq!(scanner.overruns(0), 2);
    assert!(samples(&mut scanner).is_empty());
    // The answer comes: good again.
    scanner.handle_answer(T0 + 3100, slow.token, Answer::Registers(&[10, 20]));
    assert!(samples(&mut scanner).iter().all(|s| s.quality == Quality::Good));
    assert_eq!(scanner.overruns(9), 0);
}

#[test]
fn points_never_read_do_not_turn_stale() {
    let t = Instant::now();
    let mut scanner = Scanner::new(vec![pair()], 1, t);
    let _slow = scanner.poll_read(t, T0).unwrap();
    assert!(scanner.poll_read(t + SECOND, T0).is_none());
    assert!(samples(&mut scanner).is_empty());
}

#[test]
fn unknown_answers_and_groups_are_ignored() {
    let t = Instant::now();
    let mut scanner = Scanner::new(vec![pair()], 1, t);
    let read = scanner.poll_read(t, T0).unwrap();
    scanner.handle_answer(T0, read.token, Answer::Registers(&[1, 2]));
    assert_eq!(samples(&mut scanner).len(), 2);
    // The same token again, after it was answered.
    scanner.handle_answer(T0, read.token, Answer::Registers(&[9, 9]));
    assert!(samples(&mut scanner).is_empty());
    assert!(scanner.reads(5).is_empty());
    assert_eq!(Scanner::new(vec![], 1, t).poll_timeout(), None);
}

#[test]
fn coalescing_follows_the_groups_rules() {
    let t = Instant::now();
    let spread = GroupSpec::new("spread", UnitId(1), SECOND)
        .point(register("x", 0))
        .point(register("y", 4));
    let scanner = Scanner::new(
        vec![spread.clone(), spread.coalesce(Coalesce::default().max_gap(3))],
        1,
        t,
    );
    assert_eq!(scanner.reads(0).len(), 2);
    assert_eq!(scanner.reads(1).len(), 1);
}

#[test]
fn specs_build_as_asked() {
    let spec = GroupSpec::new("g", UnitId(9), Duration::ZERO).integrity(SECOND);
    assert_eq!(spec.interval, Duration::from_millis(1));
    assert_eq!(spec.integrity, SECOND);
    assert_eq!(spec.name, "g");
    assert_eq!(
        GroupSpec::new("g", UnitId(9), SECOND).integrity,
        Duration::from_secs(600)
    );
    let point = register("p", 3).deadband(Deadband::new(0.5));
    assert_eq!(point.name, "p");
    assert_eq!(point.deadband, Deadband::new(0.5));
}
