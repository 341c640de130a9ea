//! Samples from the agent's publisher to the hub's subscriber, in memory
//! with a fake clock: births, acknowledgements, reconnects, a full buffer,
//! gaps and rebirths, a restarted hub.

use std::time::{Duration, Instant};

use outpost_acquisition::message::{Ack, Message, Rebirth};
use outpost_acquisition::{Answer, GroupSpec, PointSpec, Publisher, Quality, Sample, Scanner, Subscriber, Update};
use outpost_modbus_core::access::Table;
use outpost_modbus_core::scan::{Encoding, Point, Value};
use outpost_modbus_core::UnitId;

const SECOND: Duration = Duration::from_secs(1);
const EPOCH: u64 = 77;

fn group(name: &str) -> GroupSpec {
    GroupSpec::new(name, UnitId(1), SECOND)
        .point(PointSpec::new(
            "level",
            Point::new(Table::HoldingRegisters, 0, Encoding::U16).unwrap(),
        ))
        .point(PointSpec::new(
            "flow",
            Point::new(Table::HoldingRegisters, 1, Encoding::U16).unwrap(),
        ))
}

fn sample(group: usize, seq: u64, point: usize, value: u16) -> Sample {
    Sample {
        group,
        seq,
        point,
        at_ms: 1000 + seq,
        quality: Quality::Good,
        value: Some(Value::U16(value)),
        snapshot: false,
    }
}

/// Moves every message each way, through their bytes, until both sides
/// are quiet. Returns the rebirths the agent was asked for.
fn exchange(publisher: &mut Publisher, subscriber: &mut Subscriber) -> Vec<u16> {
    let mut rebirths = Vec::new();
    for _ in 0..100 {
        let mut moved = false;
        while let Some(message) = publisher.poll_message(4096) {
            let mut bytes = Vec::new();
            message.encode(&mut bytes);
            subscriber.handle(Message::decode(&bytes).unwrap());
            moved = true;
        }
        while let Some(message) = subscriber.poll_message() {
            let mut bytes = Vec::new();
            message.encode(&mut bytes);
            match Message::decode(&bytes).unwrap() {
                Message::Ack(ack) => publisher.handle_ack(ack),
                Message::Rebirth(rebirth) => {
                    rebirths.push(rebirth.group);
                    assert!(publisher.handle_rebirth(rebirth));
                }
                other => panic!("the hub sent {other:?}"),
            }
            moved = true;
        }
        if !moved {
            return rebirths;
        }
    }
    panic!("the two sides never went quiet");
}

fn updates(subscriber: &mut Subscriber) -> Vec<Update> {
    std::iter::from_fn(|| subscriber.poll_update()).collect()
}

#[test]
fn births_go_first_and_acknowledged_samples_are_forgotten() {
    let mut publisher = Publisher::new(EPOCH, &[group("tank")], 1 << 20);
    assert_eq!(publisher.epoch(), EPOCH);
    publisher.push(sample(0, 0, 0, 10));
    publisher.push(sample(0, 1, 1, 20));
    assert_eq!((publisher.len(), publisher.is_empty()), (2, false));
    assert!(publisher.bytes() > 0);
    // Nothing goes out before a channel is open.
    assert_eq!(publisher.poll_message(4096), None);
    publisher.connected();
    let Some(Message::Birth(birth)) = publisher.poll_message(4096) else {
        panic!("birth first")
    };
    assert_eq!(
        (birth.group, birth.epoch, birth.next_seq, birth.unit),
        (0, EPOCH, 0, UnitId(1))
    );
    assert_eq!(birth.name, "tank");
    assert_eq!(
        birth.points.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(),
        ["level", "flow"]
    );
    let Some(Message::Samples(samples)) = publisher.poll_message(4096) else {
        panic!("then samples")
    };
    assert_eq!(samples.samples, [sample(0, 0, 0, 10), sample(0, 1, 1, 20)]);
    assert_eq!(publisher.poll_message(4096), None, "sent once");
    // The hub has them.
    publisher.handle_ack(Ack {
        group: 0,
        epoch: EPOCH,
        upto: 1,
    });
    assert_eq!((publisher.len(), publisher.bytes(), publisher.is_empty()), (0, 0, true));
}

#[test]
fn a_hub_follows_births_and_samples() {
    let mut publisher = Publisher::new(EPOCH, &[group("tank")], 1 << 20);
    let mut subscriber = Subscriber::new();
    publisher.connected();
    publisher.push(sample(0, 0, 0, 10));
    publisher.push(sample(0, 1, 1, 20));
    // The hub did not ask for that birth: it asks for a snapshot.
    assert_eq!(exchange(&mut publisher, &mut subscriber), [0]);
    let got = updates(&mut subscriber);
    assert_eq!(
        got.iter()
            .map(|u| (u.group.as_str(), u.point.as_str(), u.sample))
            .collect::<Vec<_>>(),
        [
            ("tank", "level", sample(0, 0, 0, 10)),
            ("tank", "flow", sample(0, 1, 1, 20))
        ]
    );
    assert_eq!(subscriber.latest("tank", "flow"), Some(&sample(0, 1, 1, 20)));
    assert_eq!(subscriber.latest("tank", "none"), None);
    assert_eq!(subscriber.latest("none", "flow"), None);
    assert_eq!(subscriber.birth("tank").map(|b| b.points.len()), Some(2));
    assert!(subscriber.birth("none").is_none());
    assert!(publisher.is_empty());
    // The birth it asked for comes; it does not ask again.
    assert_eq!(exchange(&mut publisher, &mut subscriber), Vec::<u16>::new());
    publisher.push(sample(0, 2, 0, 11));
    assert!(exchange(&mut publisher, &mut subscriber).is_empty());
    assert_eq!(updates(&mut subscriber).len(), 1);
    assert_eq!((subscriber.gaps(), subscriber.duplicates()), (0, 0));
}

#[test]
fn after_a_reconnect_what_was_not_acknowledged_comes_again_and_once() {
    let mut publisher = Publisher::new(EPOCH, &[group("tank")], 1 << 20);
    let mut subscriber = Subscriber::new();
    publisher.connected();
    publisher.push(sample(0, 0, 0, 10));
    exchange(&mut publisher, &mut subscriber);
    exchange(&mut publisher, &mut subscriber);
    updates(&mut subscriber);
    // Sent, and the link breaks before the acknowledgement comes back.
    publisher.push(sample(0, 1, 0, 11));
    let Some(Message::Samples(lost_ack)) = publisher.poll_message(4096) else {
        panic!()
    };
    subscriber.handle(Message::Samples(lost_ack));
    while subscriber.poll_message().is_some() {}
    publisher.disconnected();
    assert_eq!(publisher.poll_message(4096), None);
    publisher.push(sample(0, 2, 0, 12));
    publisher.connected();
    exchange(&mut publisher, &mut subscriber);
    let got: Vec<u64> = updates(&mut subscriber).iter().map(|u| u.sample.seq).collect();
    assert_eq!(got, [1, 2]);
    assert_eq!(subscriber.duplicates(), 1);
    assert_eq!(subscriber.gaps(), 0);
    assert!(publisher.is_empty());
}

#[test]
fn a_full_buffer_drops_the_oldest_and_the_hub_asks_for_a_snapshot() {
    let one = {
        let mut p = Publisher::new(EPOCH, &[group("tank")], usize::MAX);
        p.push(sample(0, 0, 0, 1));
        p.bytes()
    };
    let mut publisher = Publisher::new(EPOCH, &[group("tank")], 3 * one);
    let mut subscriber = Subscriber::new();
    publisher.connected();
    publisher.push(sample(0, 0, 0, 1));
    exchange(&mut publisher, &mut subscriber);
    exchange(&mut publisher, &mut subscriber);
    publisher.disconnected();
    for seq in 1..=5 {
        publisher.push(sample(0, seq, 0, seq as u16));
    }
    assert_eq!(publisher.dropped(), 2);
    assert_eq!((publisher.len(), publisher.bytes()), (3, 3 * one));
    updates(&mut subscriber);
    publisher.connected();
    // Samples 1 and 2 are gone: the hub sees 3, 4, 5 after 0, and asks
    // for a snapshot.
    let asked = exchange(&mut publisher, &mut subscriber);
    assert!(asked.contains(&0));
    assert_eq!(subscriber.gaps(), 1);
    let got: Vec<u64> = updates(&mut subscriber).iter().map(|u| u.sample.seq).collect();
    assert_eq!(got, [3, 4, 5]);
}

#[test]
fn a_restarted_hub_goes_on_where_the_old_one_acknowledged() {
    let mut publisher = Publisher::new(EPOCH, &[group("tank")], 1 << 20);
    let mut old = Subscriber::new();
    publisher.connected();
    publisher.push(sample(0, 0, 0, 1));
    publisher.push(sample(0, 1, 0, 2));
    exchange(&mut publisher, &mut old);
    publisher.disconnected();
    publisher.push(sample(0, 2, 0, 3));
    let mut new = Subscriber::new();
    publisher.connected();
    let Some(Message::Birth(birth)) = publisher.poll_message(4096) else {
        panic!()
    };
    assert_eq!(birth.next_seq, 2);
    new.handle(Message::Birth(birth));
    exchange(&mut publisher, &mut new);
    let got: Vec<u64> = updates(&mut new).iter().map(|u| u.sample.seq).collect();
    assert_eq!(got, [2]);
    assert_eq!(new.gaps(), 0);
}

#[test]
fn acknowledgements_of_others_change_nothing() {
    let mut publisher = Publisher::new(EPOCH, &[group("a"), group("b")], 1 << 20);
    // A hub that acknowledges what was never pushed changes nothing.
    publisher.handle_ack(Ack {
        group: 0,
        epoch: EPOCH,
        upto: 3,
    });
    assert_eq!(publisher.acked(0), None);
    for seq in 0..6 {
        publisher.push(sample(0, seq, 0, 1));
    }
    publisher.push(sample(1, 0, 0, 1));
    publisher.push(sample(1, 1, 0, 2));
    publisher.push(sample(9, 0, 0, 1)); // no such group: ignored
    assert_eq!(publisher.len(), 8);
    publisher.handle_ack(Ack {
        group: 0,
        epoch: EPOCH + 1,
        upto: 9,
    });
    publisher.handle_ack(Ack {
        group: 5,
        epoch: EPOCH,
        upto: 9,
    });
    assert_eq!(publisher.len(), 8);
    // Group 1 up to 0: its first only.
    publisher.handle_ack(Ack {
        group: 1,
        epoch: EPOCH,
        upto: 0,
    });
    assert_eq!(publisher.len(), 7);
    // An older acknowledgement after a newer one keeps the newer.
    publisher.handle_ack(Ack {
        group: 0,
        epoch: EPOCH,
        upto: 5,
    });
    publisher.handle_ack(Ack {
        group: 0,
        epoch: EPOCH,
        upto: 3,
    });
    assert_eq!(publisher.len(), 1);
    // Past what was pushed: up to what was pushed (the birth's next
    // sequence number cannot run past the last).
    publisher.handle_ack(Ack {
        group: 1,
        epoch: EPOCH,
        upto: u64::MAX,
    });
    assert_eq!((publisher.acked(1), publisher.len()), (Some(1), 0));
    publisher.connected();
    let Some(Message::Birth(birth)) = publisher.poll_message(4096) else {
        panic!()
    };
    assert_eq!((birth.group, birth.next_seq), (0, 6));
    let Some(Message::Birth(birth)) = publisher.poll_message(4096) else {
        panic!()
    };
    assert_eq!((birth.group, birth.next_seq), (1, 2));
    assert!(!publisher.handle_rebirth(Rebirth { group: 2 }));
}

#[test]
fn messages_carry_one_group_within_the_size_asked() {
    let mut publisher = Publisher::new(EPOCH, &[group("a"), group("b")], 1 << 20);
    publisher.connected();
    while publisher.poll_message(4096).is_some() {}
    for seq in 0..4 {
        publisher.push(sample(0, seq, 0, 1));
    }
    publisher.push(sample(1, 0, 0, 1));
    publisher.push(sample(0, 4, 0, 1));
    let one = {
        let mut p = Publisher::new(EPOCH, &[group("a")], usize::MAX);
        p.push(sample(0, 0, 0, 1));
        p.bytes()
    };
    let sizes = |p: &mut Publisher, max| {
        let mut runs = Vec::new();
        while let Some(Message::Samples(s)) = p.poll_message(max) {
            runs.push((s.group, s.samples.len()));
        }
        runs
    };
    // Two samples' worth at a time; one at least, even when asked for less.
    assert_eq!(sizes(&mut publisher, 2 * one), [(0, 2), (0, 2), (1, 1), (0, 1)]);
    publisher.disconnected();
    publisher.connected();
    while let Some(Message::Birth(_)) = publisher.poll_message(0) {}
    assert_eq!(sizes(&mut publisher, 0), [(0, 1), (0, 1), (0, 1), (1, 1), (0, 1)]);
    // A rebirth queues its group's birth once.
    assert!(publisher.handle_rebirth(Rebirth { group: 1 }));
    assert!(publisher.handle_rebirth(Rebirth { group: 1 }));
    assert!(matches!(publisher.poll_message(4096), Some(Message::Birth(b)) if b.group == 1));
    assert_eq!(publisher.poll_message(4096), None);
}

#[test]
fn at_most_the_limit_of_samples_per_message() {
    let mut publisher = Publisher::new(EPOCH, &[group("a")], usize::MAX);
    publisher.connected();
    publisher.poll_message(usize::MAX);
    for seq in 0..(outpost_acquisition::message::MAX_SAMPLES as u64 + 3) {
        publisher.push(sample(0, seq, 0, 1));
    }
    let Some(Message::Samples(first)) = publisher.poll_message(usize::MAX) else {
        panic!()
    };
    let Some(Message::Samples(rest)) = publisher.poll_message(usize::MAX) else {
        panic!()
    };
    assert_eq!(
        (first.samples.len(), rest.samples.len()),
        (outpost_acquisition::message::MAX_SAMPLES, 3)
    );
}

#[test]
fn a_hub_asks_about_what_no_birth_described() {
    let mut subscriber = Subscriber::new();
    let samples = |group, epoch| {
        Message::Samples(outpost_acquisition::message::Samples {
            group,
            epoch,
            samples: vec![sample(usize::from(group), 0, 0, 1)],
        })
    };
    subscriber.handle(samples(4, EPOCH));
    assert_eq!(subscriber.poll_message(), Some(Message::Rebirth(Rebirth { group: 4 })));
    assert!(subscriber.poll_update().is_none());
    // Asked once: more of them wait for the birth.
    subscriber.handle(samples(4, EPOCH));
    assert_eq!(subscriber.poll_message(), None);
    // A group it knows, of another epoch: asked once, until its birth.
    let mut publisher = Publisher::new(EPOCH, &[group("a")], 1 << 20);
    publisher.connected();
    exchange(&mut publisher, &mut subscriber);
    subscriber.handle(samples(0, EPOCH + 1));
    subscriber.handle(samples(0, EPOCH + 1));
    assert_eq!(subscriber.poll_message(), Some(Message::Rebirth(Rebirth { group: 0 })));
    assert_eq!(subscriber.poll_message(), None);
    // Messages that are the hub's to send, from the agent: ignored.
    subscriber.handle(Message::Ack(Ack {
        group: 0,
        epoch: EPOCH,
        upto: 0,
    }));
    subscriber.handle(Message::Rebirth(Rebirth { group: 0 }));
    assert_eq!(subscriber.poll_message(), None);
}

#[test]
fn samples_of_points_a_birth_did_not_name_are_skipped() {
    let mut publisher = Publisher::new(EPOCH, &[group("a")], 1 << 20);
    let mut subscriber = Subscriber::new();
    publisher.connected();
    exchange(&mut publisher, &mut subscriber);
    publisher.push(sample(0, 0, 9, 1));
    publisher.push(sample(0, 1, 1, 2));
    exchange(&mut publisher, &mut subscriber);
    let got: Vec<(u64, String)> = updates(&mut subscriber)
        .into_iter()
        .map(|u| (u.sample.seq, u.point))
        .collect();
    assert_eq!(got, [(1, "flow".to_string())]);
    // Both acknowledged all the same.
    assert!(publisher.is_empty());
}

/// The whole path: a device's values change every second; the hub is away
/// for a while; every sample taken meanwhile arrives once, in order, with
/// its original timestamp, or was counted as dropped.
#[test]
fn an_outage_loses_nothing_silently() {
    for capacity in [1 << 20, 600] {
        let start = Instant::now();
        let spec = group("tank");
        let mut scanner = Scanner::new(vec![spec.clone()], 1, start);
        let mut publisher = Publisher::new(EPOCH, &[spec], capacity);
        let mut subscriber = Subscriber::new();
        publisher.connected();
        let mut taken = Vec::new();
        for tick in 0..120u64 {
            let now = start + SECOND * tick as u32;
            let at = 1_700_000_000_000 + tick * 1000;
            // Down from tick 30 to tick 90.
            if tick == 30 {
                publisher.disconnected();
            }
            if tick == 90 {
                publisher.connected();
            }
            let read = scanner.poll_read(now, at).unwrap();
            let level = (tick / 2) as u16;
            scanner.handle_answer(at, read.token, Answer::Registers(&[level, 7]));
            while let Some(sample) = scanner.poll_sample() {
                taken.push(sample);
                publisher.push(sample);
            }
            for group in exchange(&mut publisher, &mut subscriber) {
                scanner.request_snapshot(usize::from(group));
            }
        }
        let got: Vec<Sample> = updates(&mut subscriber).into_iter().map(|u| u.sample).collect();
        // In order, each once, timestamps as taken.
        assert!(got.windows(2).all(|w| w[0].seq < w[1].seq));
        for sample in &got {
            assert_eq!(taken.iter().find(|t| t.seq == sample.seq), Some(sample));
        }
        // Taken = arrived + dropped.
        assert_eq!(
            taken.len() as u64,
            got.len() as u64 + publisher.dropped(),
            "capacity {capacity}"
        );
        assert!(publisher.is_empty());
        if capacity < 1000 {
            assert!(publisher.dropped() > 0);
            assert_eq!(subscriber.gaps(), 1);
        } else {
            assert_eq!(publisher.dropped(), 0);
        }
        // The hub's picture is whole and current.
        assert_eq!(
            subscriber.latest("tank", "level").and_then(|s| s.value),
            Some(Value::U16(59))
        );
        assert_eq!(
            subscriber.latest("tank", "flow").and_then(|s| s.value),
            Some(Value::U16(7))
        );
    }
}

#[test]
fn a_new_epoch_or_new_points_start_afresh() {
    let mut subscriber = Subscriber::new();
    let mut before = Publisher::new(EPOCH, &[group("tank")], 1 << 20);
    before.connected();
    before.push(sample(0, 0, 0, 1));
    before.push(sample(0, 1, 0, 2));
    exchange(&mut before, &mut subscriber);
    exchange(&mut before, &mut subscriber);
    updates(&mut subscriber);
    // The agent restarted without a spool: a new epoch, from 0 again.
    let mut after = Publisher::new(EPOCH + 1, &[group("tank")], 1 << 20);
    after.connected();
    after.push(sample(0, 0, 0, 5));
    exchange(&mut after, &mut subscriber);
    let got: Vec<(u64, Option<Value>)> = updates(&mut subscriber)
        .iter()
        .map(|u| (u.sample.seq, u.sample.value))
        .collect();
    assert_eq!(got, [(0, Some(Value::U16(5)))]);
    assert_eq!(subscriber.duplicates(), 0);
    // The same epoch with other points: nothing of the old points stays.
    let changed = GroupSpec::new("tank", UnitId(1), SECOND).point(PointSpec::new(
        "level",
        Point::new(Table::HoldingRegisters, 5, Encoding::U16).unwrap(),
    ));
    let mut reconfigured = Publisher::new(EPOCH + 1, &[changed], 1 << 20);
    reconfigured.connected();
    exchange(&mut reconfigured, &mut subscriber);
    assert_eq!(subscriber.latest("tank", "level"), None);
    assert_eq!(subscriber.birth("tank").map(|b| b.points[0].point.address()), Some(5));
}

#[test]
fn a_gap_mid_session_asks_for_one_snapshot_and_nothing_unreceived_is_acknowledged() {
    let mut subscriber = Subscriber::new();
    let mut publisher = Publisher::new(EPOCH, &[group("tank")], 1 << 20);
    publisher.connected();
    // The birth, the rebirth asked for, its birth: settled.
    exchange(&mut publisher, &mut subscriber);
    assert_eq!(subscriber.poll_message(), None);
    // Samples with nothing in them acknowledge nothing.
    let samples = |seqs: &[u64]| {
        Message::Samples(outpost_acquisition::message::Samples {
            group: 0,
            epoch: EPOCH,
            samples: seqs.iter().map(|&seq| sample(0, seq, 0, 1)).collect(),
        })
    };
    subscriber.handle(samples(&[]));
    assert_eq!(subscriber.poll_message(), None);
    subscriber.handle(samples(&[0, 1]));
    assert_eq!(
        subscriber.poll_message(),
        Some(Message::Ack(Ack {
            group: 0,
            epoch: EPOCH,
            upto: 1
        }))
    );
    assert_eq!(subscriber.poll_message(), None);
    // 2 to 4 never came: acknowledged up to 5, and a snapshot asked for, once.
    subscriber.handle(samples(&[5]));
    assert_eq!(
        subscriber.poll_message(),
        Some(Message::Ack(Ack {
            group: 0,
            epoch: EPOCH,
            upto: 5
        }))
    );
    assert_eq!(subscriber.poll_message(), Some(Message::Rebirth(Rebirth { group: 0 })));
    subscriber.handle(samples(&[8]));
    assert_eq!(
        subscriber.poll_message(),
        Some(Message::Ack(Ack {
            group: 0,
            epoch: EPOCH,
            upto: 8
        }))
    );
    assert_eq!(subscriber.poll_message(), None);
    assert_eq!(subscriber.gaps(), 2);
}

#[test]
fn the_bytes_kept_are_the_bytes_sent() {
    use outpost_modbus_core::ExceptionCode;
    let kinds = [
        (Quality::Good, None),
        (Quality::Stale, Some(Value::Bool(true))),
        (Quality::CommFailure, Some(Value::U16(1))),
        (
            Quality::DeviceException(ExceptionCode::ServerDeviceBusy),
            Some(Value::I16(-1)),
        ),
        (Quality::Good, Some(Value::U32(1))),
        (Quality::Good, Some(Value::I32(-1))),
        (Quality::Good, Some(Value::F32(1.0))),
    ];
    for (seq, (quality, value)) in kinds.into_iter().enumerate() {
        let mut publisher = Publisher::new(EPOCH, &[group("a")], usize::MAX);
        publisher.connected();
        publisher.poll_message(usize::MAX);
        publisher.push(Sample {
            quality,
            value,
            ..sample(0, seq as u64, 0, 0)
        });
        let Some(message) = publisher.poll_message(usize::MAX) else {
            panic!()
        };
        let mut bytes = Vec::new();
        message.encode(&mut bytes);
        // Kind, group, epoch and count: 13 bytes of header.
        assert_eq!(publisher.bytes(), bytes.len() - 13, "{quality:?} {value:?}");
    }
}

#[test]
fn an_acknowledgement_may_cover_samples_not_sent_again_yet() {
    let mut publisher = Publisher::new(EPOCH, &[group("tank")], 1 << 20);
    publisher.connected();
    for seq in 0..4 {
        publisher.push(sample(0, seq, 0, seq as u16));
    }
    while publisher.poll_message(usize::MAX).is_some() {}
    // The link breaks; after the reconnect one sample has gone again when
    // the acknowledgement of the first three (sent before) arrives.
    publisher.disconnected();
    publisher.connected();
    assert!(matches!(publisher.poll_message(0), Some(Message::Birth(_))));
    let Some(Message::Samples(resent)) = publisher.poll_message(0) else {
        panic!()
    };
    assert_eq!(resent.samples.len(), 1);
    publisher.handle_ack(Ack {
        group: 0,
        epoch: EPOCH,
        upto: 2,
    });
    assert_eq!(publisher.len(), 1);
    // What is left goes next, once.
    let Some(Message::Samples(rest)) = publisher.poll_message(usize::MAX) else {
        panic!()
    };
    assert_eq!(rest.samples.iter().map(|s| s.seq).collect::<Vec<_>>(), [3]);
    assert_eq!(publisher.poll_message(usize::MAX), None);
}

/// Samples of `group` 0, one per message (a small size asked).
fn samples_sent(publisher: &mut Publisher) -> Vec<u64> {
    std::iter::from_fn(|| publisher.poll_message(1))
        .map(|m| match m {
            Message::Samples(s) => s.samples[0].seq,
            other => panic!("{other:?}"),
        })
        .collect()
}

#[test]
fn no_more_than_the_window_of_messages_waits_for_acknowledgements() {
    let mut publisher = Publisher::new(EPOCH, &[group("tank")], 1 << 20).window(3);
    for seq in 0..10 {
        publisher.push(sample(0, seq, 0, seq as u16));
    }
    publisher.connected();
    assert!(matches!(publisher.poll_message(1), Some(Message::Birth(_))));
    assert_eq!(samples_sent(&mut publisher), [0, 1, 2]);
    // Each acknowledgement lets one more go.
    publisher.handle_ack(Ack {
        group: 0,
        epoch: EPOCH,
        upto: 0,
    });
    assert_eq!(samples_sent(&mut publisher), [3]);
    // An acknowledgement of another epoch is no answer.
    publisher.handle_ack(Ack {
        group: 0,
        epoch: EPOCH + 1,
        upto: 9,
    });
    assert_eq!(samples_sent(&mut publisher), [] as [u64; 0]);
    // A rebirth asked instead of an acknowledgement is an answer; the
    // birth it asked for starts the window over.
    assert!(publisher.handle_rebirth(Rebirth { group: 0 }));
    assert!(matches!(publisher.poll_message(1), Some(Message::Birth(_))));
    assert_eq!(samples_sent(&mut publisher), [4, 5, 6]);
    // A new connection starts it over too, from what was not acknowledged.
    publisher.disconnected();
    assert!(publisher.poll_message(1).is_none());
    publisher.connected();
    assert!(matches!(publisher.poll_message(1), Some(Message::Birth(_))));
    assert_eq!(samples_sent(&mut publisher), [1, 2, 3]);
    assert_eq!(publisher.len(), 9);
}

#[test]
fn a_window_of_one_still_delivers_everything() {
    let mut publisher = Publisher::new(EPOCH, &[group("tank")], 1 << 20).window(0);
    let mut subscriber = Subscriber::new();
    publisher.connected();
    for seq in 0..50 {
        publisher.push(sample(0, seq, (seq % 2) as usize, seq as u16));
    }
    exchange(&mut publisher, &mut subscriber);
    assert!(publisher.is_empty());
    let seqs: Vec<u64> = updates(&mut subscriber).iter().map(|u| u.sample.seq).collect();
    assert_eq!(seqs, (0..50).collect::<Vec<_>>());
}

#[test]
fn groups_that_a_birth_cannot_carry_are_refused() {
    use outpost_acquisition::message::{MAX_NAME_LEN, MAX_POINTS};
    use outpost_acquisition::GroupError;
    let point = || Point::new(Table::HoldingRegisters, 0, Encoding::U16).unwrap();
    assert_eq!(group("tank").check(), Ok(()));
    assert_eq!(
        group(&"x".repeat(MAX_NAME_LEN))
            .device("d".repeat(MAX_NAME_LEN))
            .check(),
        Ok(())
    );
    let name = |what, name: String| Err(GroupError::Name { what, name });
    assert_eq!(group("").check(), name("group name", String::new()));
    let long = "x".repeat(MAX_NAME_LEN + 1);
    assert_eq!(group(&long).check(), name("group name", long.clone()));
    assert_eq!(
        group("tank").device(long.clone()).check(),
        name("device name", long.clone())
    );
    assert_eq!(
        group("tank").point(PointSpec::new(long.clone(), point())).check(),
        name("point name", long.clone())
    );
    assert_eq!(
        group("tank").point(PointSpec::new("", point())).check(),
        name("point name", String::new())
    );
    assert_eq!(
        GroupSpec::new("empty", UnitId(1), SECOND).check(),
        Err(GroupError::Points {
            group: "empty".into(),
            count: 0
        })
    );
    let mut big = GroupSpec::new("big", UnitId(1), SECOND);
    for i in 0..MAX_POINTS {
        big = big.point(PointSpec::new(format!("p{i}"), point()));
    }
    assert_eq!(big.check(), Ok(()));
    assert_eq!(
        big.point(PointSpec::new("one more", point())).check(),
        Err(GroupError::Points {
            group: "big".into(),
            count: MAX_POINTS + 1
        })
    );
    assert_eq!(
        group("tank").point(PointSpec::new("flow", point())).check(),
        Err(GroupError::DuplicatePoint {
            group: "tank".into(),
            point: "flow".into()
        })
    );
}

#[test]
fn a_publisher_and_scanner_take_up_where_earlier_ones_stopped() {
    let start = Instant::now();
    // The first run: three samples, the hub acknowledged the first.
    let mut publisher = Publisher::new(EPOCH, &[group("tank")], 1 << 20);
    for seq in 0..3 {
        publisher.push(sample(0, seq, 0, seq as u16));
    }
    publisher.handle_ack(Ack {
        group: 0,
        epoch: EPOCH,
        upto: 0,
    });
    assert_eq!((publisher.acked(0), publisher.oldest(0)), (Some(0), Some(1)));
    assert_eq!((publisher.acked(1), publisher.oldest(1)), (None, None));
    assert_eq!(
        publisher.births().map(|b| b.name.as_str()).collect::<Vec<_>>(),
        ["tank"]
    );
    // The second run, from what was kept.
    let mut again = Publisher::new(EPOCH, &[group("tank")], 1 << 20);
    again.resume(0, 0);
    again.resume(0, 0);
    again.resume(7, 3);
    assert_eq!(again.acked(0), Some(0));
    for seq in 1..3 {
        again.push(sample(0, seq, 0, seq as u16));
    }
    let mut scanner = Scanner::new(vec![group("tank")], 1, start);
    assert_eq!(scanner.next_seq(0), Some(0));
    scanner.resume(0, 3);
    scanner.resume(0, 2);
    scanner.resume(5, 9);
    assert_eq!((scanner.next_seq(0), scanner.next_seq(5)), (Some(3), None));
    let read = scanner.poll_read(start, 5000).unwrap();
    scanner.handle_answer(5000, read.token, Answer::Registers(&[7, 8]));
    while let Some(s) = scanner.poll_sample() {
        again.push(s);
    }
    // The hub that had the first sample goes on from it: the kept ones,
    // then the new scan's, once each and in order.
    let mut subscriber = Subscriber::new();
    subscriber.handle(Message::Birth(outpost_acquisition::message::Birth {
        next_seq: 0,
        ..again.births().next().unwrap().clone()
    }));
    subscriber.handle(Message::Samples(outpost_acquisition::message::Samples {
        group: 0,
        epoch: EPOCH,
        samples: vec![sample(0, 0, 0, 0)],
    }));
    updates(&mut subscriber);
    while subscriber.poll_message().is_some() {}
    again.connected();
    exchange(&mut again, &mut subscriber);
    let seqs: Vec<u64> = updates(&mut subscriber).iter().map(|u| u.sample.seq).collect();
    assert_eq!(seqs, [1, 2, 3, 4]);
    assert_eq!(subscriber.gaps(), 0);
    assert!(again.is_empty());
}

#[test]
fn an_agent_cannot_make_the_hub_follow_more_than_its_limits() {
    use outpost_acquisition::{DEFAULT_MAX_GROUPS, DEFAULT_MAX_POINTS};
    let birth = |group: u16, points: usize| {
        let mut spec = GroupSpec::new(format!("g{group}"), UnitId(1), SECOND);
        for i in 0..points {
            spec = spec.point(PointSpec::new(
                format!("p{i}"),
                Point::new(Table::HoldingRegisters, i as u16, Encoding::U16).unwrap(),
            ));
        }
        let mut b = Publisher::new(EPOCH, &[spec], 0).births().next().unwrap().clone();
        b.group = group;
        Message::Birth(b)
    };
    // By default: 1,024 groups, 65,536 points.
    let mut default = Subscriber::new();
    for group in 0..=DEFAULT_MAX_GROUPS as u16 {
        default.handle(birth(group, 1));
    }
    assert_eq!(default.refused(), 1);
    let mut default = Subscriber::new();
    for group in 0..=(DEFAULT_MAX_POINTS / 4096) as u16 {
        default.handle(birth(group, 4096));
    }
    assert_eq!(default.refused(), 1);
    // Two groups, five points in all.
    let mut subscriber = Subscriber::new().limits(2, 5);
    subscriber.handle(birth(0, 2));
    subscriber.handle(birth(1, 3));
    assert_eq!(subscriber.refused(), 0);
    // A third group, or a fourth point, is refused.
    subscriber.handle(birth(2, 1));
    assert_eq!(subscriber.refused(), 1);
    assert!(subscriber.birth("g2").is_none());
    subscriber.handle(birth(0, 3));
    assert_eq!(subscriber.refused(), 2);
    assert_eq!(subscriber.birth("g0").map(|b| b.points.len()), Some(2));
    // A group described again with fewer points makes room.
    subscriber.handle(birth(1, 1));
    subscriber.handle(birth(0, 4));
    assert_eq!(subscriber.refused(), 2);
    assert_eq!(subscriber.birth("g0").map(|b| b.points.len()), Some(4));
    subscriber.handle(birth(1, 2));
    assert_eq!(subscriber.refused(), 3);
    // Samples of a refused group are asked about once, and dropped.
    while subscriber.poll_message().is_some() {}
    for _ in 0..3 {
        subscriber.handle(Message::Samples(outpost_acquisition::message::Samples {
            group: 2,
            epoch: EPOCH,
            samples: vec![sample(2, 0, 0, 1)],
        }));
    }
    assert_eq!(subscriber.poll_message(), Some(Message::Rebirth(Rebirth { group: 2 })));
    assert_eq!(subscriber.poll_message(), None);
    assert!(subscriber.poll_update().is_none());
}

#[test]
fn sequence_numbers_at_the_end_of_their_range_do_not_overflow() {
    // An agent's samples numbered up to the last u64: the hub takes them
    // and acknowledges without overflowing.
    let mut publisher = Publisher::new(EPOCH, &[group("tank")], 1 << 20);
    publisher.resume(0, u64::MAX - 2);
    publisher.connected();
    let Some(Message::Birth(birth)) = publisher.poll_message(4096) else {
        panic!("a birth first")
    };
    assert_eq!(birth.next_seq, u64::MAX - 1);
    for (seq, point) in [(u64::MAX - 1, 0), (u64::MAX, 1)] {
        publisher.push(Sample {
            seq,
            ..sample(0, 0, point, 1)
        });
    }
    let mut subscriber = Subscriber::new();
    subscriber.handle(Message::Birth(birth));
    exchange(&mut publisher, &mut subscriber);
    let seqs: Vec<u64> = updates(&mut subscriber).iter().map(|u| u.sample.seq).collect();
    assert_eq!(seqs, [u64::MAX - 1, u64::MAX]);
    assert_eq!(subscriber.gaps(), 0);
    // A scanner resumed at the end stays there.
    let start = Instant::now();
    let mut scanner = Scanner::new(vec![group("tank")], 1, start);
    scanner.resume(0, u64::MAX);
    let read = scanner.poll_read(start, 1).unwrap();
    scanner.handle_answer(1, read.token, Answer::Registers(&[1, 2]));
    assert_eq!(scanner.next_seq(0), Some(u64::MAX));
}
