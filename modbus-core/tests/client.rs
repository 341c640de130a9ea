//! The client's transaction tracker and response checks, with a fake clock.

use core::time::Duration;

use outpost_modbus_core::client::{Full, Matched, Transactions};
use outpost_modbus_core::frame::mbap::{self, MbapFrame, MbapHeader};
use outpost_modbus_core::{
    Bits, CoilRange, CoilWrite, ExceptionCode, Expectation, FunctionCode, RegisterRange, RegisterWrite, Request,
    Response, ResponseError, UnitId, Words,
};

/// A fake clock: milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Ms(u64);

impl core::ops::Add<Duration> for Ms {
    type Output = Ms;
    fn add(self, d: Duration) -> Ms {
        Ms(self.0 + d.as_millis() as u64)
    }
}

fn read(start: u16, quantity: u16) -> Request<'static> {
    Request::ReadHoldingRegisters(RegisterRange::new(start, quantity).unwrap())
}

/// Encode `response` as the answer in `header`, into `buf`.
fn answer<'b>(header: MbapHeader, response: &Response<'_>, buf: &'b mut [u8]) -> MbapFrame<'b> {
    let n = mbap::encode(header, response, buf).unwrap();
    mbap::decode(&buf[..n]).unwrap().unwrap()
}

#[test]
fn many_in_flight_answered_out_of_order() {
    let mut t: Transactions<Ms, 8> = Transactions::new();
    let mut headers = Vec::new();
    for i in 0..8 {
        headers.push(
            t.start(UnitId(1), &read(i, 1), Ms(0), Duration::from_millis(100))
                .unwrap(),
        );
    }
    assert_eq!(t.in_flight(), 8);
    assert_eq!(
        t.start(UnitId(1), &read(0, 1), Ms(0), Duration::from_millis(100)),
        Err(Full { capacity: 8 })
    );
    // Ids are distinct.
    let mut ids: Vec<u16> = headers.iter().map(|h| h.transaction_id).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 8);
    // Answer in reverse; each value tells which request it answers.
    let mut buf = [0u8; mbap::MAX_ADU_LEN];
    for (i, h) in headers.iter().enumerate().rev() {
        let values = [i as u16];
        let frame = answer(
            *h,
            &Response::ReadHoldingRegisters(Words::from_slice(&values)),
            &mut buf,
        );
        match t.handle_frame(frame) {
            Matched::Response { transaction_id, result } => {
                assert_eq!(transaction_id, h.transaction_id);
                assert_eq!(
                    result.unwrap(),
                    Response::ReadHoldingRegisters(Words::from_slice(&values))
                );
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(t.in_flight(), 0);
    assert_eq!(t.stats().completed, 8);
}

#[test]
fn expiry_late_and_stray() {
    let mut t: Transactions<Ms, 4> = Transactions::new();
    let a = t
        .start(UnitId(1), &read(0, 2), Ms(0), Duration::from_millis(100))
        .unwrap();
    let b = t
        .start(UnitId(1), &read(0, 2), Ms(50), Duration::from_millis(100))
        .unwrap();
    assert_eq!(t.poll_timeout(), Some(Ms(100)));
    assert_eq!(t.poll_expired(Ms(99)), None);
    assert_eq!(t.poll_expired(Ms(100)), Some(a.transaction_id));
    assert_eq!(t.poll_expired(Ms(100)), None);
    assert_eq!(t.poll_timeout(), Some(Ms(150)));

    let mut buf = [0u8; mbap::MAX_ADU_LEN];
    let response = Response::ReadHoldingRegisters(Words::from_slice(&[1, 2]));
    // The expired one's answer arrives: late, dropped.
    let frame = answer(a, &response, &mut buf);
    assert_eq!(
        t.handle_frame(frame),
        Matched::Late {
            transaction_id: a.transaction_id
        }
    );
    // A second copy of it is stray.
    let frame = answer(a, &response, &mut buf);
    assert!(matches!(t.handle_frame(frame), Matched::Stray { .. }));
    // An id never used: stray.
    let unknown = MbapHeader {
        transaction_id: 0xBEEF,
        unit: UnitId(1),
    };
    let frame = answer(unknown, &response, &mut buf);
    assert_eq!(t.handle_frame(frame), Matched::Stray { transaction_id: 0xBEEF });
    // The right id from another unit is not matched to b.
    let other_unit = MbapHeader {
        transaction_id: b.transaction_id,
        unit: UnitId(2),
    };
    let frame = answer(other_unit, &response, &mut buf);
    assert!(matches!(t.handle_frame(frame), Matched::Stray { .. }));
    assert_eq!(t.in_flight(), 1);
    // b is still answered correctly.
    let frame = answer(b, &response, &mut buf);
    assert!(matches!(t.handle_frame(frame), Matched::Response { result: Ok(_), .. }));
    let stats = t.stats();
    assert_eq!(
        (stats.started, stats.completed, stats.expired, stats.late, stats.stray),
        (2, 1, 1, 1, 3)
    );
}

#[test]
fn cancel_and_fail_all() {
    let mut t: Transactions<Ms, 4> = Transactions::new();
    let a = t.start(UnitId(1), &read(0, 1), Ms(0), Duration::from_secs(1)).unwrap();
    assert!(t.cancel(a.transaction_id));
    assert!(!t.cancel(a.transaction_id));
    let b = t.start(UnitId(1), &read(0, 1), Ms(0), Duration::from_secs(1)).unwrap();
    let c = t.start(UnitId(1), &read(0, 1), Ms(0), Duration::from_secs(1)).unwrap();
    let mut failed = Vec::new();
    t.fail_all(|id| failed.push(id));
    failed.sort_unstable();
    assert_eq!(failed, vec![b.transaction_id, c.transaction_id]);
    assert_eq!(t.in_flight(), 0);
    assert_eq!(t.poll_timeout(), None);
}

#[test]
fn ids_wrap_and_skip_those_in_flight() {
    let mut t: Transactions<Ms, 2> = Transactions::new();
    let held = t.start(UnitId(1), &read(0, 1), Ms(0), Duration::from_secs(1)).unwrap();
    assert_eq!(held.transaction_id, 1);
    // Cycle the other slot through the whole id space: id 1 is never reused.
    for _ in 0..70_000u32 {
        let h = t.start(UnitId(1), &read(0, 1), Ms(0), Duration::from_secs(1)).unwrap();
        assert_ne!(h.transaction_id, held.transaction_id);
        assert!(t.cancel(h.transaction_id));
    }
}

#[test]
fn responses_must_fit_their_request() {
    let request = read(10, 3);
    let e = Expectation::new(&request);
    // Wrong count.
    assert_eq!(
        e.check(&[0x03, 0x04, 0, 1, 0, 2]),
        Err(ResponseError::Quantity {
            function: 3,
            expected: 3,
            found: 2
        })
    );
    // Wrong function.
    assert_eq!(
        e.check(&[0x04, 0x06, 0, 1, 0, 2, 0, 3]),
        Err(ResponseError::Function { expected: 3, found: 4 })
    );
    // Byte count disagreeing with the data: malformed.
    assert!(matches!(
        e.check(&[0x03, 0x06, 0, 1, 0, 2]),
        Err(ResponseError::Decode(_))
    ));
    // An exception to the same function is an answer.
    assert_eq!(
        e.check(&[0x83, 0x02]),
        Ok(Response::Exception {
            function: FunctionCode::ReadHoldingRegisters,
            code: ExceptionCode::IllegalDataAddress
        })
    );
    // An exception to another function is not.
    assert!(e.check(&[0x81, 0x02]).is_err());

    // Writes must echo what was written.
    let w = Request::WriteSingleRegister { address: 7, value: 42 };
    let e = Expectation::new(&w);
    assert!(e.check(&[0x06, 0, 7, 0, 42]).is_ok());
    assert_eq!(e.check(&[0x06, 0, 7, 0, 43]), Err(ResponseError::Echo { function: 6 }));
    let values = [true; 10];
    let w = Request::WriteMultipleCoils(CoilWrite::new(19, Bits::from_bools(&values)).unwrap());
    let e = Expectation::new(&w);
    assert!(e.check(&[0x0F, 0, 19, 0, 10]).is_ok());
    assert!(e.check(&[0x0F, 0, 19, 0, 9]).is_err());

    // Coils are trimmed to the quantity asked for; a byte too many is refused.
    let r = Request::ReadCoils(CoilRange::new(0, 3).unwrap());
    let e = Expectation::new(&r);
    let Ok(Response::ReadCoils(bits)) = e.check(&[0x01, 0x01, 0xFF]) else {
        panic!()
    };
    assert_eq!(bits, Bits::from_bools(&[true, true, true]));
    assert!(e.check(&[0x01, 0x02, 0xFF, 0x00]).is_err());
}

#[test]
fn an_expectation_names_its_request_function() {
    assert_eq!(Expectation::new(&read(0, 1)).function(), 0x03);
    let coils = Request::ReadCoils(CoilRange::new(0, 8).unwrap());
    assert_eq!(Expectation::new(&coils).function(), 0x01);
    let w = Request::WriteSingleRegister { address: 1, value: 2 };
    assert_eq!(Expectation::new(&w).function(), 0x06);
}

/// A write's answer must echo every field of the request: any one field
/// different alone makes it an echo fault.
#[test]
fn write_echoes_must_match_in_every_field() {
    let echo = |f| Err(ResponseError::Echo { function: f });

    let coil = Request::WriteSingleCoil {
        address: 0x0102,
        value: true,
    };
    let e = Expectation::new(&coil);
    assert!(e.check(&[0x05, 0x01, 0x02, 0xFF, 0x00]).is_ok());
    assert_eq!(e.check(&[0x05, 0x01, 0x03, 0xFF, 0x00]), echo(5), "address");
    assert_eq!(e.check(&[0x05, 0x01, 0x02, 0x00, 0x00]), echo(5), "value");

    let register = Request::WriteSingleRegister {
        address: 9,
        value: 0x1234,
    };
    let e = Expectation::new(&register);
    assert!(e.check(&[0x06, 0, 9, 0x12, 0x34]).is_ok());
    assert_eq!(e.check(&[0x06, 0, 8, 0x12, 0x34]), echo(6), "address");
    assert_eq!(e.check(&[0x06, 0, 9, 0x12, 0x35]), echo(6), "value");

    let values = [1u16, 2, 3];
    let registers = Request::WriteMultipleRegisters(RegisterWrite::new(100, Words::from_slice(&values)).unwrap());
    let e = Expectation::new(&registers);
    assert!(e.check(&[0x10, 0, 100, 0, 3]).is_ok());
    assert_eq!(e.check(&[0x10, 0, 101, 0, 3]), echo(0x10), "start");
    assert_eq!(e.check(&[0x10, 0, 100, 0, 2]), echo(0x10), "quantity");

    let mask = Request::MaskWriteRegister {
        address: 4,
        and_mask: 0x00F2,
        or_mask: 0x0025,
    };
    let e = Expectation::new(&mask);
    assert!(e.check(&[0x16, 0, 4, 0x00, 0xF2, 0x00, 0x25]).is_ok());
    assert_eq!(e.check(&[0x16, 0, 5, 0x00, 0xF2, 0x00, 0x25]), echo(0x16), "address");
    assert_eq!(e.check(&[0x16, 0, 4, 0x00, 0xF3, 0x00, 0x25]), echo(0x16), "and mask");
    assert_eq!(e.check(&[0x16, 0, 4, 0x00, 0xF2, 0x00, 0x24]), echo(0x16), "or mask");
}

#[test]
fn a_tracker_holds_as_many_transactions_as_its_capacity() {
    let mut t: Transactions<Ms, 3> = Transactions::new();
    assert_eq!(t.capacity(), 3);
    for _ in 0..3 {
        t.start(UnitId(1), &read(0, 1), Ms(0), Duration::from_secs(1)).unwrap();
    }
    assert_eq!(t.in_flight(), t.capacity());
    assert_eq!(
        t.start(UnitId(1), &read(0, 1), Ms(0), Duration::from_secs(1)),
        Err(Full { capacity: 3 })
    );
    assert_eq!(Transactions::<Ms, 64>::new().capacity(), 64);
}

/// Every way a transaction ends is counted under its own name, and the
/// answers of every transaction given up recently are recognised as late.
#[test]
fn each_ending_is_counted_and_recent_give_ups_are_late() {
    let mut t: Transactions<Ms, 16> = Transactions::new();
    let start = |t: &mut Transactions<Ms, 16>| t.start(UnitId(1), &read(0, 1), Ms(0), Duration::from_secs(1)).unwrap();
    let one = Response::ReadHoldingRegisters(Words::from_slice(&[7]));
    let two = Response::ReadHoldingRegisters(Words::from_slice(&[7, 8]));
    let mut buf = [0u8; mbap::MAX_ADU_LEN];

    let answered: Vec<_> = (0..3).map(|_| start(&mut t)).collect();
    for h in &answered {
        assert!(matches!(
            t.handle_frame(answer(*h, &one, &mut buf)),
            Matched::Response { result: Ok(_), .. }
        ));
    }
    let invalid: Vec<_> = (0..2).map(|_| start(&mut t)).collect();
    for h in &invalid {
        assert!(matches!(
            t.handle_frame(answer(*h, &two, &mut buf)),
            Matched::Response { result: Err(_), .. }
        ));
    }
    // Four given up one after the other: each answer comes late, once.
    let cancelled: Vec<_> = (0..4).map(|_| start(&mut t)).collect();
    for h in &cancelled {
        assert!(t.cancel(h.transaction_id));
        assert!(!t.cancel(h.transaction_id));
    }
    for h in &cancelled {
        let late = t.handle_frame(answer(*h, &one, &mut buf));
        assert_eq!(
            late,
            Matched::Late {
                transaction_id: h.transaction_id
            }
        );
    }
    // A second answer to the same id is not expected: stray.
    let again = t.handle_frame(answer(cancelled[0], &one, &mut buf));
    assert_eq!(
        again,
        Matched::Stray {
            transaction_id: cancelled[0].transaction_id
        }
    );
    let broken: Vec<_> = (0..5).map(|_| start(&mut t)).collect();
    let mut failed = Vec::new();
    t.fail_all(|id| failed.push(id));
    failed.sort_unstable();
    let mut expected: Vec<u16> = broken.iter().map(|h| h.transaction_id).collect();
    expected.sort_unstable();
    assert_eq!(failed, expected);
    assert_eq!(t.in_flight(), 0);

    let s = t.stats();
    assert_eq!(
        (
            s.started,
            s.completed,
            s.invalid,
            s.cancelled,
            s.late,
            s.stray,
            s.expired
        ),
        (14, 3, 2, 9, 4, 1, 0)
    );
}

/// The tracker remembers the last 32 transactions given up, no more: the
/// answer to the 33rd most recent is stray.
#[test]
fn the_tracker_remembers_the_last_32_given_up() {
    let mut t: Transactions<Ms, 64> = Transactions::new();
    let headers: Vec<_> = (0..33)
        .map(|_| t.start(UnitId(1), &read(0, 1), Ms(0), Duration::from_secs(1)).unwrap())
        .collect();
    for h in &headers {
        assert!(t.cancel(h.transaction_id));
    }
    let one = Response::ReadHoldingRegisters(Words::from_slice(&[7]));
    let mut buf = [0u8; mbap::MAX_ADU_LEN];
    let first = t.handle_frame(answer(headers[0], &one, &mut buf));
    assert_eq!(
        first,
        Matched::Stray {
            transaction_id: headers[0].transaction_id
        }
    );
    for h in &headers[1..] {
        let late = t.handle_frame(answer(*h, &one, &mut buf));
        assert_eq!(
            late,
            Matched::Late {
                transaction_id: h.transaction_id
            }
        );
    }
}

/// A read answer with no values, or whose byte count disagrees with the
/// values it carries, answers no read.
#[test]
fn an_empty_or_miscounted_register_answer_is_refused() {
    for asked in [1, 2, 3, 10, 125] {
        let e = Expectation::new(&read(0, asked));
        assert!(e.check(&[0x03, 0x00]).is_err(), "empty answer to {asked}");
        let n = 2 * asked as usize;
        let mut miscounted = vec![0x03, (n + 2) as u8];
        miscounted.extend(std::iter::repeat_n(0x42, n));
        assert!(e.check(&miscounted).is_err(), "miscounted answer to {asked}");
    }
}
