//! Round trips on loopback: reading 10 holding registers directly from a
//! Modbus TCP server, and through the tunnel (hub API, and a Modbus TCP
//! client through the hub's gateway), TLS 1.3 included. tokio-modbus's TCP
//! client against the same server is the reference a user would otherwise
//! pick for the direct case.
//!
//! `cargo bench -p outpost-benches --bench e2e`

mod common;

use criterion::{criterion_group, criterion_main, Criterion};
use outpost_modbus_core::UnitId;
use outpost_tunnel_tokio::modbus::{Client, Requests};
use tokio::runtime::Runtime;

fn round_trips(c: &mut Criterion) {
    let rt = Runtime::new().unwrap();
    let s = rt.block_on(common::setup(1));
    let direct = rt.block_on(async { Client::tcp(s.device.to_string()).build() });
    let through_gateway = rt.block_on(async { Client::tcp(s.gateway.local_addr().to_string()).build() });
    let mut tokio_modbus = rt.block_on(async {
        tokio_modbus::client::tcp::connect_slave(s.device, tokio_modbus::Slave(1))
            .await
            .unwrap()
    });

    let mut g = c.benchmark_group("read 10 registers, one at a time, loopback");
    g.bench_function("direct: outpost client -> server", |b| {
        b.iter(|| rt.block_on(direct.read_holding_registers(UnitId(1), 0, 10)).unwrap())
    });
    g.bench_function("direct: tokio-modbus client -> same server", |b| {
        use tokio_modbus::client::Reader;
        b.iter(|| {
            rt.block_on(tokio_modbus.read_holding_registers(0, 10))
                .unwrap()
                .unwrap()
        })
    });
    g.bench_function("tunnel: hub API -> TLS -> agent -> server", |b| {
        b.iter(|| rt.block_on(s.remote.read_holding_registers(UnitId(1), 0, 10)).unwrap())
    });
    g.bench_function("tunnel: client -> gateway -> TLS -> agent -> server", |b| {
        b.iter(|| {
            rt.block_on(through_gateway.read_holding_registers(UnitId(1), 0, 10))
                .unwrap()
        })
    });
    g.finish();

    // Sixteen reads on one connection: outpost's client pipelines them
    // (transaction ids, up to 16 in flight); tokio-modbus's client takes
    // `&mut self` and sends one after the other.
    let pipelined = rt.block_on(async { Client::tcp(s.device.to_string()).max_in_flight(16).build() });
    let mut g = c.benchmark_group("16 reads of 10 registers on one connection, loopback");
    g.bench_function("outpost client, pipelined", |b| {
        b.iter(|| {
            rt.block_on(async {
                let reads: Vec<_> = (0..16u16)
                    .map(|i| {
                        let c = pipelined.clone();
                        tokio::spawn(async move { c.read_holding_registers(UnitId(1), i, 10).await })
                    })
                    .collect();
                for r in reads {
                    r.await.unwrap().unwrap();
                }
            })
        })
    });
    g.bench_function("tokio-modbus client, one after the other", |b| {
        use tokio_modbus::client::Reader;
        b.iter(|| {
            rt.block_on(async {
                for i in 0..16u16 {
                    tokio_modbus.read_holding_registers(i, 10).await.unwrap().unwrap();
                }
            })
        })
    });
    g.finish();
}

criterion_group!(benches, round_trips);
criterion_main!(benches);
