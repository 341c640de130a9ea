//! Encode and decode, side by side with the crates a user would otherwise
//! pick, in one run:
//!
//! - `outpost`: this project's `outpost-modbus-core`;
//! - `floor`: a plain hand-written loop that checks only what it must, the
//!   lower bound for any codec;
//! - `tokio-modbus` 0.17: its lowest public layer (`Response::try_from(Bytes)`,
//!   PDU only: its MBAP and RTU codecs and its request encoder are private);
//! - `slowtec-modbus-core` 0.2 (the `modbus-core` crate on crates.io);
//! - `rmodbus` 0.13.
//!
//! Every decoder reads all 125 register values and adds them up (wrapping
//! `u32`), so no one can skip the work. Compare the ratios to `floor` in one run: absolute times
//! on a shared machine are noise.

use std::hint::black_box;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use outpost_modbus_core::frame::mbap::{self, MbapHeader};
use outpost_modbus_core::frame::rtu::{self, Decoded, Direction, RtuDecoder};
use outpost_modbus_core::{Expectation, RegisterRange, Request, Response, UnitId, Words};

const QUANTITY: u16 = 125;

fn values() -> Vec<u16> {
    (0..QUANTITY).map(|i| i.wrapping_mul(0x0101)).collect()
}

fn mbap_response() -> Vec<u8> {
    let values = values();
    let header = MbapHeader {
        transaction_id: 1,
        unit: UnitId(1),
    };
    let mut buf = [0u8; mbap::MAX_ADU_LEN];
    let n = mbap::encode(
        header,
        &Response::ReadHoldingRegisters(Words::from_slice(&values)),
        &mut buf,
    )
    .unwrap();
    buf[..n].to_vec()
}

fn rtu_response() -> Vec<u8> {
    let values = values();
    let mut buf = [0u8; rtu::MAX_ADU_LEN];
    let n = rtu::encode(
        UnitId(1),
        &Response::ReadHoldingRegisters(Words::from_slice(&values)),
        &mut buf,
    )
    .unwrap();
    buf[..n].to_vec()
}

/// The floor: a hand-written MBAP response parse that checks the header,
/// function and byte count, then sums the values.
#[inline(never)]
fn floor_mbap(buf: &[u8]) -> Option<u32> {
    if buf.len() < 9 || buf[2] != 0 || buf[3] != 0 {
        return None;
    }
    let len = u16::from_be_bytes([buf[4], buf[5]]) as usize;
    if buf.len() != 6 + len || buf[7] != 0x03 || buf[8] as usize != len - 3 {
        return None;
    }
    Some(
        buf[9..]
            .as_chunks::<2>()
            .0
            .iter()
            .fold(0u32, |a, p| a.wrapping_add(u16::from_be_bytes(*p) as u32)),
    )
}

/// A 16-way (slice-by-16) CRC-16/MODBUS: the fastest portable table method.
struct Crc16Tables([[u16; 256]; 16]);

impl Crc16Tables {
    fn new() -> Self {
        let mut t = [[0u16; 256]; 16];
        for (i, slot) in t[0].iter_mut().enumerate() {
            let mut crc = i as u16;
            for _ in 0..8 {
                crc = if crc & 1 != 0 { (crc >> 1) ^ 0xA001 } else { crc >> 1 };
            }
            *slot = crc;
        }
        let first = t[0];
        for k in 1..16 {
            let prev = t[k - 1];
            for (slot, p) in t[k].iter_mut().zip(prev) {
                *slot = (p >> 8) ^ first[(p & 0xFF) as usize];
            }
        }
        Crc16Tables(t)
    }

    #[inline]
    fn crc(&self, data: &[u8]) -> u16 {
        let t = &self.0;
        let mut crc = 0xFFFFu16;
        let mut chunks = data.chunks_exact(16);
        for c in &mut chunks {
            let mut x = t[15][(c[0] ^ crc as u8) as usize] ^ t[14][(c[1] ^ (crc >> 8) as u8) as usize];
            for (j, &b) in c[2..].iter().enumerate() {
                x ^= t[13 - j][b as usize];
            }
            crc = x;
        }
        for &b in chunks.remainder() {
            crc = (crc >> 8) ^ t[0][((crc ^ b as u16) & 0xFF) as usize];
        }
        crc
    }
}

/// The floor for RTU: slice-by-16 CRC, function and byte count, sum.
#[inline(never)]
fn floor_rtu(tables: &Crc16Tables, buf: &[u8]) -> Option<u32> {
    let n = buf.len();
    if n < 5 || buf[1] != 0x03 || buf[2] as usize != n - 5 {
        return None;
    }
    if tables.crc(&buf[..n - 2]).to_le_bytes() != [buf[n - 2], buf[n - 1]] {
        return None;
    }
    Some(
        buf[3..n - 2]
            .as_chunks::<2>()
            .0
            .iter()
            .fold(0u32, |a, p| a.wrapping_add(u16::from_be_bytes(*p) as u32)),
    )
}

/// rmodbus reading every value of `frame` into a reused buffer.
fn bench_rmodbus(
    g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    proto: rmodbus::ModbusProto,
    frame: &[u8],
    expected: u32,
) {
    g.bench_function("rmodbus", |b| {
        let mut req = rmodbus::client::ModbusRequest::new(1, proto);
        let mut scratch: Vec<u8> = Vec::new();
        req.generate_get_holdings(0, QUANTITY, &mut scratch).unwrap();
        let mut out: Vec<u16> = Vec::with_capacity(QUANTITY as usize);
        b.iter(|| {
            out.clear();
            req.parse_u16(black_box(frame), &mut out).unwrap();
            let sum = out.iter().fold(0u32, |a, &v| a.wrapping_add(v as u32));
            assert_eq!(sum, expected);
        })
    });
}

fn mbap_request_encode(c: &mut Criterion) {
    let mut g = c.benchmark_group("mbap_request_encode");
    g.throughput(Throughput::Elements(1));
    g.bench_function("floor", |b| {
        let mut buf = [0u8; 260];
        b.iter(|| {
            let (start, quantity) = black_box((0u16, QUANTITY));
            buf[..7].copy_from_slice(&[0, 1, 0, 0, 0, 6, 1]);
            buf[7] = 0x03;
            buf[8..10].copy_from_slice(&start.to_be_bytes());
            buf[10..12].copy_from_slice(&quantity.to_be_bytes());
            black_box(&buf[..12]);
        })
    });
    g.bench_function("outpost", |b| {
        let mut buf = [0u8; mbap::MAX_ADU_LEN];
        b.iter(|| {
            let (start, quantity) = black_box((0u16, QUANTITY));
            let request = Request::ReadHoldingRegisters(RegisterRange::new(start, quantity).unwrap());
            let header = MbapHeader {
                transaction_id: 1,
                unit: UnitId(1),
            };
            let n = mbap::encode(header, &request, &mut buf).unwrap();
            black_box(&buf[..n]);
        })
    });
    g.bench_function("slowtec-modbus-core", |b| {
        use slowtec_modbus_core::tcp::{client::encode_request, Header, RequestAdu};
        use slowtec_modbus_core::{Request as SRequest, RequestPdu};
        let mut buf = [0u8; 260];
        b.iter(|| {
            let (start, quantity) = black_box((0u16, QUANTITY));
            let adu = RequestAdu {
                hdr: Header {
                    transaction_id: 1,
                    unit_id: 1,
                },
                pdu: RequestPdu(SRequest::ReadHoldingRegisters(start, quantity)),
            };
            let n = encode_request(adu, &mut buf).unwrap();
            black_box(&buf[..n]);
        })
    });
    g.bench_function("rmodbus", |b| {
        use rmodbus::client::ModbusRequest;
        use rmodbus::ModbusProto;
        let mut req = ModbusRequest::new(1, ModbusProto::TcpUdp);
        let mut out: Vec<u8> = Vec::with_capacity(260);
        b.iter(|| {
            let (start, quantity) = black_box((0u16, QUANTITY));
            out.clear();
            req.generate_get_holdings(start, quantity, &mut out).unwrap();
            black_box(&out);
        })
    });
    g.finish();
}

fn mbap_response_decode(c: &mut Criterion) {
    let frame = mbap_response();
    let expected = values().iter().fold(0u32, |a, &v| a.wrapping_add(v as u32));
    let mut g = c.benchmark_group("mbap_response_decode_125_registers");
    g.throughput(Throughput::Elements(1));
    g.bench_function("floor", |b| {
        b.iter(|| {
            let sum = floor_mbap(black_box(&frame)).unwrap();
            assert_eq!(sum, expected);
        })
    });
    g.bench_function("outpost", |b| {
        let request = Request::ReadHoldingRegisters(RegisterRange::new(0, QUANTITY).unwrap());
        let expect = Expectation::new(&request);
        b.iter(|| {
            let f = mbap::decode(black_box(&frame)).unwrap().unwrap();
            let Ok(Response::ReadHoldingRegisters(words)) = expect.check(f.pdu) else {
                panic!()
            };
            let sum = words.iter().fold(0u32, |a, v| a.wrapping_add(v as u32));
            assert_eq!(sum, expected);
        })
    });
    g.bench_function("tokio-modbus", |b| {
        // Zero-copy `Bytes` over the PDU, as its codec would hand over; the
        // MBAP header is parsed by hand, since its codec is private.
        let pdu: &'static [u8] = Box::leak(frame[7..].to_vec().into_boxed_slice());
        b.iter(|| {
            let frame = black_box(&frame);
            assert_eq!(&frame[2..4], &[0, 0]);
            let len = u16::from_be_bytes([frame[4], frame[5]]) as usize;
            assert_eq!(len, frame.len() - 6);
            let response = tokio_modbus::Response::try_from(Bytes::from_static(black_box(pdu))).unwrap();
            let tokio_modbus::Response::ReadHoldingRegisters(words) = response else {
                panic!()
            };
            let sum = words.iter().fold(0u32, |a, &v| a.wrapping_add(v as u32));
            assert_eq!(sum, expected);
        })
    });
    g.bench_function("slowtec-modbus-core", |b| {
        use slowtec_modbus_core::{tcp::client::decode_response, Response as SResponse};
        b.iter(|| {
            let adu = decode_response(black_box(&frame)).unwrap().unwrap();
            let Ok(SResponse::ReadHoldingRegisters(data)) = adu.pdu.0 else {
                panic!()
            };
            let sum = data.into_iter().fold(0u32, |a, v| a.wrapping_add(v as u32));
            assert_eq!(sum, expected);
        })
    });
    bench_rmodbus(&mut g, rmodbus::ModbusProto::TcpUdp, &frame, expected);
    g.finish();
}

fn rtu_response_decode(c: &mut Criterion) {
    let frame = rtu_response();
    let expected = values().iter().fold(0u32, |a, &v| a.wrapping_add(v as u32));
    let mut g = c.benchmark_group("rtu_response_decode_125_registers_crc");
    g.throughput(Throughput::Elements(1));
    g.bench_function("floor", |b| {
        let tables = Crc16Tables::new();
        b.iter(|| {
            let sum = floor_rtu(&tables, black_box(&frame)).unwrap();
            assert_eq!(sum, expected);
        })
    });
    g.bench_function("outpost", |b| {
        let request = Request::ReadHoldingRegisters(RegisterRange::new(0, QUANTITY).unwrap());
        let expect = Expectation::new(&request);
        let decoder = RtuDecoder::new(Direction::Response);
        b.iter(|| {
            let Ok(Decoded::Frame { frame, .. }) = decoder.decode(black_box(&frame)) else {
                panic!()
            };
            let Ok(Response::ReadHoldingRegisters(words)) = expect.check(frame.pdu) else {
                panic!()
            };
            let sum = words.iter().fold(0u32, |a, v| a.wrapping_add(v as u32));
            assert_eq!(sum, expected);
        })
    });
    g.bench_function("slowtec-modbus-core", |b| {
        use slowtec_modbus_core::{rtu::client::decode_response, Response as SResponse};
        b.iter(|| {
            let adu = decode_response(black_box(&frame)).unwrap().unwrap();
            let Ok(SResponse::ReadHoldingRegisters(data)) = adu.pdu.0 else {
                panic!()
            };
            let sum = data.into_iter().fold(0u32, |a, v| a.wrapping_add(v as u32));
            assert_eq!(sum, expected);
        })
    });
    bench_rmodbus(&mut g, rmodbus::ModbusProto::Rtu, &frame, expected);
    g.finish();
}

fn crc(c: &mut Criterion) {
    let frame = rtu_response();
    let body = &frame[..frame.len() - 2];
    let mut g = c.benchmark_group("crc16_253_bytes");
    g.throughput(Throughput::Bytes(body.len() as u64));
    let tables = Crc16Tables::new();
    g.bench_function("floor", |b| b.iter(|| black_box(tables.crc(black_box(body)))));
    g.bench_function("outpost", |b| {
        b.iter(|| black_box(outpost_modbus_core::crc16(black_box(body))))
    });
    g.bench_function("slowtec-modbus-core", |b| {
        b.iter(|| black_box(slowtec_modbus_core::rtu::crc16(black_box(body))))
    });
    g.finish();
}

criterion_group!(
    benches,
    mbap_request_encode,
    mbap_response_decode,
    rtu_response_decode,
    crc
);
criterion_main!(benches);
