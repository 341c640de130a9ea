//! Every decode path, the client check, the tracker and the server run
//! without a single heap allocation (counted by a counting allocator).

use std::time::{Duration, Instant};

use outpost_modbus_core::client::Transactions;
use outpost_modbus_core::frame::mbap::{self, MbapHeader};
use outpost_modbus_core::frame::rtu::{Direction, RtuDecoder};
use outpost_modbus_core::server::{DataModel, Server};
use outpost_modbus_core::{ExceptionCode, Expectation, RegisterRange, Request, Response, Transport, UnitId, Words};

struct Registers;

impl DataModel for Registers {
    fn read_holding_registers(&mut self, range: RegisterRange, out: &mut [u16]) -> Result<(), ExceptionCode> {
        for (i, v) in out.iter_mut().enumerate() {
            *v = range.start().wrapping_add(i as u16);
        }
        Ok(())
    }
}

/// A fixed pseudo-random byte stream (xorshift), so the test is deterministic.
fn noise(seed: u64, out: &mut [u8]) {
    let mut x = seed | 1;
    for b in out {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
}

const VECTORS: &[&[u8]] = &[
    &[0x01, 0x03, 0xCD, 0x6B, 0x05],
    &[0x03, 0x06, 0x02, 0x2B, 0x00, 0x00, 0x00, 0x64],
    &[0x0C, 0x08, 0x00, 0x00, 0x01, 0x08, 0x01, 0x21, 0x20, 0x00],
    &[
        0x14, 0x0C, 0x05, 0x06, 0x0D, 0xFE, 0x00, 0x20, 0x05, 0x06, 0x33, 0xCD, 0x00, 0x40,
    ],
    &[
        0x15, 0x0D, 0x06, 0x00, 0x04, 0x00, 0x07, 0x00, 0x03, 0x06, 0xAF, 0x04, 0xBE, 0x10, 0x0D,
    ],
    &[
        0x17, 0x0C, 0x00, 0xFE, 0x0A, 0xCD, 0x00, 0x01, 0x00, 0x03, 0x00, 0x0D, 0x00, 0xFF,
    ],
    &[0x18, 0x00, 0x06, 0x00, 0x02, 0x01, 0xB8, 0x12, 0x84],
    &[0x2B, 0x0E, 0x01, 0x01, 0x00, 0x00, 0x01, 0x00, 0x02, b'a', b'b'],
    &[0x0F, 0x00, 0x13, 0x00, 0x0A, 0x02, 0xCD, 0x01],
    &[0x10, 0x00, 0x01, 0x00, 0x02, 0x04, 0x00, 0x0A, 0x01, 0x02],
    &[0x81, 0x02],
];

#[test]
fn the_counter_counts() {
    let info = allocation_counter::measure(|| {
        std::hint::black_box(vec![0u8; 300]);
    });
    assert_eq!(info.count_total, 1);
}

#[test]
fn decoding_does_not_allocate() {
    // A 125-register response in an MBAP frame, prepared outside the count.
    let values: Vec<u16> = (0..125).collect();
    let response = Response::ReadHoldingRegisters(Words::from_slice(&values));
    let header = MbapHeader {
        transaction_id: 1,
        unit: UnitId(1),
    };
    let mut frame = [0u8; mbap::MAX_ADU_LEN];
    let frame_len = mbap::encode(header, &response, &mut frame).unwrap();
    let request = Request::ReadHoldingRegisters(RegisterRange::new(0, 125).unwrap());
    let mut random = vec![0u8; 4096];
    noise(0x5EED, &mut random);

    let info = allocation_counter::measure(|| {
        let mut sum = 0u64;
        for v in VECTORS {
            let _ = std::hint::black_box(Request::decode(v));
            if let Ok(r) = Response::decode(v) {
                sum += std::hint::black_box(r.encoded_len()) as u64;
            }
        }
        let f = mbap::decode(&frame[..frame_len]).unwrap().unwrap();
        if let Ok(Response::ReadHoldingRegisters(words)) = Expectation::new(&request).check(f.pdu) {
            sum += words.iter().map(u64::from).sum::<u64>();
        }
        for chunk in random.chunks(97) {
            let _ = std::hint::black_box(Request::decode(chunk));
            let _ = std::hint::black_box(Response::decode(chunk));
            let _ = std::hint::black_box(mbap::decode(chunk));
            let _ = std::hint::black_box(Expectation::new(&request).check(chunk));
            for d in [Direction::Request, Direction::Response] {
                let _ = std::hint::black_box(RtuDecoder::new(d).decode(chunk));
            }
        }
        std::hint::black_box(sum);
    });
    assert_eq!(info.count_total, 0, "{info:?}");
}

#[test]
fn server_and_tracker_do_not_allocate() {
    let request = Request::ReadHoldingRegisters(RegisterRange::new(0, 125).unwrap());
    let mut pdu = [0u8; 253];
    let n = request.encode(&mut pdu).unwrap();
    let mut server = Server::new(Transport::Tcp);
    let mut tracker: Transactions<Instant, 32> = Transactions::new();
    let now = Instant::now();
    let mut random = vec![0u8; 2048];
    noise(42, &mut random);

    let info = allocation_counter::measure(|| {
        let mut out = [0u8; 253];
        let mut wire = [0u8; mbap::MAX_ADU_LEN];
        for _ in 0..10 {
            let header = tracker.start(UnitId(1), &request, now, Duration::from_secs(1)).unwrap();
            let len = server
                .handle(&mut Registers, UnitId(1), &pdu[..n], &mut out)
                .unwrap()
                .unwrap();
            let w = mbap::encode(header, &out[..len], &mut wire).unwrap();
            let frame = mbap::decode(&wire[..w]).unwrap().unwrap();
            let _ = std::hint::black_box(tracker.handle_frame(frame));
        }
        for chunk in random.chunks(61) {
            let _ = std::hint::black_box(server.handle(&mut Registers, UnitId(1), chunk, &mut out));
        }
    });
    assert_eq!(info.count_total, 0, "{info:?}");
    assert_eq!(tracker.stats().completed, 10);
}
