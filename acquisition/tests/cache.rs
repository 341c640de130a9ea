//! Reads answered from the hub's latest samples: only what exact, good
//! samples cover, and only once the hub's view of a group is whole.

use std::time::{Duration, Instant};

use outpost_acquisition::cache::{bits, registers};
use outpost_acquisition::message::Message;
use outpost_acquisition::{Answer, GroupSpec, PointSpec, Publisher, Scanner, Subscriber};
use outpost_modbus_core::access::Table;
use outpost_modbus_core::scan::{Deadband, Encoding, Point, WordOrder};
use outpost_modbus_core::UnitId;

const SECOND: Duration = Duration::from_secs(1);

fn p(name: &str, table: Table, address: u16, encoding: Encoding) -> PointSpec {
    PointSpec::new(name, Point::new(table, address, encoding).unwrap())
}

fn registers_group() -> GroupSpec {
    GroupSpec::new("regs", UnitId(1), SECOND)
        .device("plc")
        .point(p("a", Table::HoldingRegisters, 0, Encoding::U16))
        .point(p("b", Table::HoldingRegisters, 1, Encoding::I16))
        .point(p("c", Table::HoldingRegisters, 2, Encoding::U32(WordOrder::LowFirst)))
        .point(p("d", Table::HoldingRegisters, 4, Encoding::F32(WordOrder::HighFirst)))
        .point(p("flag", Table::HoldingRegisters, 6, Encoding::RegisterBit(2)))
        .point(p("rough", Table::HoldingRegisters, 7, Encoding::U16).deadband(Deadband::new(5.0)))
        .point(p("in", Table::InputRegisters, 0, Encoding::U16))
}

fn coils_group() -> GroupSpec {
    GroupSpec::new("coils", UnitId(1), SECOND)
        .device("plc")
        .point(p("c0", Table::Coils, 0, Encoding::Bit))
        .point(p("c1", Table::Coils, 1, Encoding::Bit))
}

/// The hub's subscriber after the agent scanned `groups` once, answered
/// by `answer`, and the hub asked for and got its snapshot when `whole`.
struct Flow {
    scanner: Scanner,
    publisher: Publisher,
    subscriber: Subscriber,
    now: Instant,
}

impl Flow {
    fn new(groups: Vec<GroupSpec>) -> Flow {
        let now = Instant::now();
        let mut publisher = Publisher::new(1, &groups, 1 << 20);
        publisher.connected();
        Flow {
            scanner: Scanner::new(groups, 4, now),
            publisher,
            subscriber: Subscriber::new(),
            now,
        }
    }

    /// One scan, answered from `holding`, `input` and `coils`, and every
    /// message moved.
    fn scan(&mut self, holding: &[u16], input: &[u16], coils: &[bool], fail_input: bool) {
        while let Some(read) = self.scanner.poll_read(self.now, 1000) {
            let answer = match read.table {
                Table::HoldingRegisters => {
                    Answer::Registers(&holding[usize::from(read.start)..][..usize::from(read.quantity)])
                }
                Table::InputRegisters if fail_input => Answer::Failed,
                Table::InputRegisters => {
                    Answer::Registers(&input[usize::from(read.start)..][..usize::from(read.quantity)])
                }
                _ => Answer::Bits(&coils[usize::from(read.start)..][..usize::from(read.quantity)]),
            };
            self.scanner.handle_answer(1000, read.token, answer);
        }
        while let Some(sample) = self.scanner.poll_sample() {
            self.publisher.push(sample);
        }
        self.exchange();
        self.now += SECOND;
    }

    fn exchange(&mut self) {
        for _ in 0..10 {
            while let Some(m) = self.publisher.poll_message(4096) {
                self.subscriber.handle(m);
            }
            while let Some(m) = self.subscriber.poll_message() {
                match m {
                    Message::Ack(a) => self.publisher.handle_ack(a),
                    Message::Rebirth(r) => {
                        self.publisher.handle_rebirth(r);
                        self.scanner.request_snapshot(usize::from(r.group));
                    }
                    _ => unreachable!(),
                }
            }
        }
        while self.subscriber.poll_update().is_some() {}
    }

    fn registers(&self, group: &str, table: Table, start: u16, quantity: u16) -> Option<Vec<u16>> {
        let known = self.subscriber.group_latest(group)?;
        registers([known], table, start, quantity)
    }
}

const HOLDING: [u16; 8] = [11, 0xFFFE, 0x0304, 0x0102, 0x3FC0, 0x0000, 0b100, 9];

#[test]
fn registers_come_back_from_exact_good_samples() {
    let mut flow = Flow::new(vec![registers_group()]);
    flow.scan(&HOLDING, &[5], &[], false);
    // The first scan's snapshot came before the birth the hub asked for:
    // its own snapshot is still to come.
    assert!(!flow.subscriber.is_complete("regs"));
    flow.scan(&HOLDING, &[5], &[], false);
    assert!(flow.subscriber.is_complete("regs"));
    assert!(!flow.subscriber.is_complete("none"));
    assert_eq!(
        flow.registers("regs", Table::HoldingRegisters, 0, 6),
        Some(HOLDING[..6].to_vec())
    );
    assert_eq!(
        flow.registers("regs", Table::HoldingRegisters, 3, 2),
        Some(vec![0x0102, 0x3FC0])
    );
    assert_eq!(flow.registers("regs", Table::InputRegisters, 0, 1), Some(vec![5]));
    // A bit of a register does not give the register; a point with a
    // deadband is not the device's value; nothing covers register 8.
    assert_eq!(flow.registers("regs", Table::HoldingRegisters, 6, 1), None);
    assert_eq!(flow.registers("regs", Table::HoldingRegisters, 7, 1), None);
    assert_eq!(flow.registers("regs", Table::HoldingRegisters, 5, 4), None);
    assert_eq!(flow.registers("regs", Table::InputRegisters, 0, 2), None);
    assert_eq!(flow.registers("regs", Table::Coils, 0, 1), None);
    // A point whose last read failed is not answered from.
    flow.scan(&HOLDING, &[5], &[], true);
    assert_eq!(flow.registers("regs", Table::InputRegisters, 0, 1), None);
    assert_eq!(flow.registers("regs", Table::HoldingRegisters, 0, 1), Some(vec![11]));
}

#[test]
fn bits_come_back_across_groups() {
    let mut flow = Flow::new(vec![registers_group(), coils_group()]);
    flow.scan(&HOLDING, &[5], &[true, false], false);
    flow.scan(&HOLDING, &[5], &[true, false], false);
    let mut names: Vec<&str> = flow.subscriber.births().map(|b| b.name.as_str()).collect();
    names.sort_unstable();
    assert_eq!(names, ["coils", "regs"]);
    let known = [
        flow.subscriber.group_latest("regs").unwrap(),
        flow.subscriber.group_latest("coils").unwrap(),
    ];
    assert_eq!(bits(known, Table::Coils, 0, 2), Some(vec![true, false]));
    assert_eq!(bits(known, Table::Coils, 1, 1), Some(vec![false]));
    assert_eq!(bits(known, Table::Coils, 1, 2), None);
    assert_eq!(bits(known, Table::DiscreteInputs, 0, 1), None);
    assert_eq!(bits(known, Table::HoldingRegisters, 6, 1), None);
    assert_eq!(registers(known, Table::HoldingRegisters, 0, 1), Some(vec![11]));
}

#[test]
fn a_gap_leaves_the_view_incomplete_until_its_snapshot() {
    let mut flow = Flow::new(vec![registers_group()]);
    flow.scan(&HOLDING, &[5], &[], false);
    flow.scan(&HOLDING, &[5], &[], false);
    assert!(flow.subscriber.is_complete("regs"));
    // Samples lost on the way: the hub sees the sequence skip.
    let mut changed = HOLDING;
    changed[0] = 12;
    flow.publisher.disconnected();
    flow.scan(&changed, &[5], &[], false);
    changed[0] = 13;
    let mut lost = Publisher::new(1, &[registers_group()], 1 << 20);
    std::mem::swap(&mut flow.publisher, &mut lost);
    flow.publisher.connected();
    flow.scan(&changed, &[5], &[], false);
    assert!(flow.subscriber.gaps() > 0);
    assert!(!flow.subscriber.is_complete("regs"));
    flow.scan(&changed, &[5], &[], false);
    assert!(flow.subscriber.is_complete("regs"));
    assert_eq!(flow.registers("regs", Table::HoldingRegisters, 0, 1), Some(vec![13]));
}
