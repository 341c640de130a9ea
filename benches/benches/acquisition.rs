//! Data acquisition's cost, two ways.
//!
//! Sans-IO: one scan of 1,000 points (holding registers, a tenth of them
//! changing each scan) through the agent's scanner and publisher, the
//! messages' bytes, and the hub's subscriber, acknowledgements back: what
//! the pipeline can carry per core, device and network excluded. Printed
//! beside it: the read requests the plan needs for those points, against
//! one per point.
//!
//! End to end: an agent polls 1,000 registers of a device on loopback
//! every 3 ms, every one of them changed at every read, and reports them
//! over TLS to a hub, where a subscriber takes them: good values arriving
//! per second, device, tunnel and hub included, all in this process on
//! the machine's cores. The interval bounds the rate; the stale samples
//! printed after it (a scan due while the one before was still under way)
//! say whether the agent kept up.
//!
//! Cached reads: a Modbus TCP client reads 10 registers through a gateway
//! that answers from the values the agent's scan group (100 registers
//! every 100 ms) reported, beside one that passes every read through to
//! the device; printed after each, how many reads reached the device.
//!
//! `cargo bench -p outpost-benches --bench acquisition`

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use outpost_acquisition::message::Message;
use outpost_acquisition::{Answer, GroupSpec, PointSpec, Publisher, Scanner, Subscriber};
use outpost_modbus_core::access::Table;
use outpost_modbus_core::scan::{plan, Coalesce, Deadband, Encoding, Point, WordOrder};
use outpost_modbus_core::UnitId;

const POINTS: u16 = 1000;

/// 1,000 points: 800 u16 registers and 100 f32s (two registers each), in
/// runs with holes of two registers between blocks of 50.
fn group() -> GroupSpec {
    let mut group = GroupSpec::new("plant", UnitId(1), Duration::from_secs(1)).coalesce(Coalesce::default().max_gap(2));
    let mut address = 0u16;
    for i in 0..POINTS {
        if i > 0 && i.is_multiple_of(50) {
            address += 2;
        }
        let encoding = if i % 10 == 9 {
            Encoding::F32(WordOrder::HighFirst)
        } else {
            Encoding::U16
        };
        let point = Point::new(Table::HoldingRegisters, address, encoding).unwrap();
        address = point.last() + 1;
        group = group.point(PointSpec::new(format!("p{i}"), point).deadband(Deadband::new(0.5)));
    }
    group
}

fn pipeline(c: &mut Criterion) {
    let spec = group();
    let points: Vec<Point> = spec.points.iter().map(|p| p.point).collect();
    let reads = plan(&points, spec.coalesce).len();
    println!(
        "{POINTS} points: {reads} read requests with coalescing (gap 2), {} without ({:.0}x fewer)",
        points.len(),
        points.len() as f64 / reads as f64
    );
    let start = Instant::now();
    let mut scanner = Scanner::new(vec![spec.clone()], 4, start);
    let mut publisher = Publisher::new(1, &[spec], 1 << 24);
    let mut subscriber = Subscriber::new();
    publisher.connected();
    let mut registers = vec![0u16; 1200];
    let mut tick = 0u32;
    let mut bytes = Vec::new();
    let mut g = c.benchmark_group("acquisition");
    g.throughput(Throughput::Elements(u64::from(POINTS)));
    g.bench_function(
        "scan, publish, subscribe, acknowledge: 1,000 points, a tenth changing",
        |b| {
            b.iter(|| {
                tick += 1;
                let now = start + Duration::from_secs(u64::from(tick));
                let at = 1_700_000_000_000 + u64::from(tick) * 1000;
                // A tenth of the registers move by more than the deadband.
                for (i, r) in registers.iter_mut().enumerate() {
                    if (i as u32 + tick).is_multiple_of(10) {
                        *r = r.wrapping_add(7);
                    }
                }
                while let Some(read) = scanner.poll_read(now, at) {
                    let words = &registers[usize::from(read.start)..usize::from(read.start + read.quantity)];
                    scanner.handle_answer(at, read.token, Answer::Registers(words));
                }
                while let Some(sample) = scanner.poll_sample() {
                    publisher.push(sample);
                }
                while let Some(message) = publisher.poll_message(64 * 1024) {
                    bytes.clear();
                    message.encode(&mut bytes);
                    subscriber.handle(Message::decode(&bytes).unwrap());
                }
                while subscriber.poll_update().is_some() {}
                while let Some(message) = subscriber.poll_message() {
                    match message {
                        Message::Ack(ack) => publisher.handle_ack(ack),
                        Message::Rebirth(rebirth) => {
                            publisher.handle_rebirth(rebirth);
                            scanner.request_snapshot(usize::from(rebirth.group));
                        }
                        _ => {}
                    }
                }
            })
        },
    );
    g.finish();
    assert!(publisher.is_empty(), "every sample acknowledged");
}

/// A device whose every register read gives a new value: the number of
/// reads so far plus the address.
#[derive(Default)]
struct Changing(u16);

impl outpost_modbus_core::server::DataModel for Changing {
    fn read_holding_registers(
        &mut self,
        range: outpost_modbus_core::RegisterRange,
        out: &mut [u16],
    ) -> Result<(), outpost_modbus_core::ExceptionCode> {
        self.0 = self.0.wrapping_add(1);
        for (i, o) in out.iter_mut().enumerate() {
            *o = self.0.wrapping_add(range.start()).wrapping_add(i as u16);
        }
        Ok(())
    }
}

fn agent_loop(c: &mut Criterion) {
    use outpost_acquisition::Quality;
    use outpost_tunnel_tokio::hub::Filter;

    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut spec = GroupSpec::new("all", UnitId(1), Duration::from_millis(3)).device("plc");
    for i in 0..POINTS {
        let point = Point::new(Table::HoldingRegisters, i, Encoding::U16).unwrap();
        spec = spec.point(PointSpec::new(format!("r{i}"), point));
    }
    let s = rt.block_on(common::setup_with(
        Changing::default(),
        1,
        |hub| hub.subscription_capacity(1 << 20),
        |agent| agent.scan(spec),
    ));
    let mut values = s.hub.subscribe(Filter::all());
    let mut stale = 0u64;
    let mut g = c.benchmark_group("acquisition");
    g.throughput(Throughput::Elements(u64::from(POINTS)));
    g.bench_function(
        "agent on loopback: 1,000 registers scanned, all changed, reported to a hub subscriber",
        |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let start = Instant::now();
                    let mut good = 0;
                    while good < iters * u64::from(POINTS) {
                        match values.recv().await {
                            Some(Ok(v)) if v.quality == Quality::Good => good += 1,
                            Some(Ok(_)) => stale += 1,
                            Some(Err(lagged)) => panic!("{lagged}"),
                            None => panic!("the hub went away"),
                        }
                    }
                    start.elapsed()
                })
            })
        },
    );
    g.finish();
    println!(
        "agent loop: {} stale samples (a scan due while the last was under way), {} dropped",
        stale,
        s.agent.stats().samples_dropped
    );
}

criterion_group!(benches, pipeline, agent_loop);

/// Holding register n holds n; the reads the device answered are counted.
struct Counted(Arc<AtomicU64>);

impl outpost_modbus_core::server::DataModel for Counted {
    fn read_holding_registers(
        &mut self,
        range: outpost_modbus_core::RegisterRange,
        out: &mut [u16],
    ) -> Result<(), outpost_modbus_core::ExceptionCode> {
        self.0.fetch_add(1, Ordering::Relaxed);
        for (i, o) in out.iter_mut().enumerate() {
            *o = range.start().wrapping_add(i as u16);
        }
        Ok(())
    }
}

fn cached_reads(c: &mut Criterion) {
    use outpost_tunnel_tokio::binding::Role;
    use outpost_tunnel_tokio::hub::{GatewayBuilder, Route};
    use outpost_tunnel_tokio::modbus::{Client, Requests};
    use outpost_tunnel_tokio::AgentId;

    let rt = tokio::runtime::Runtime::new().unwrap();
    let reads = Arc::new(AtomicU64::new(0));
    // The first 100 holding registers, polled every 100 ms.
    let mut spec = GroupSpec::new("first", UnitId(1), Duration::from_millis(100)).device("plc");
    for i in 0..100 {
        let point = Point::new(Table::HoldingRegisters, i, Encoding::U16).unwrap();
        spec = spec.point(PointSpec::new(format!("r{i}"), point));
    }
    let s = rt.block_on(common::setup_with(
        Counted(Arc::clone(&reads)),
        1,
        |hub| hub,
        |agent| agent.scan(spec),
    ));
    let (cached, passed) = rt.block_on(async {
        let gateway = s
            .hub
            .gateway(
                GatewayBuilder::new("127.0.0.1:0".parse().unwrap(), Role::new("bench").unwrap())
                    .route_all(Route::new(AgentId::new("plant-7").unwrap(), "plc"))
                    .cache_reads(Duration::from_secs(1)),
            )
            .await
            .unwrap();
        let cached = Client::tcp(gateway.local_addr().to_string()).build();
        let passed = Client::tcp(s.gateway.local_addr().to_string()).build();
        // Until the hub has the group's snapshot.
        for _ in 0..1000 {
            cached.read_holding_registers(UnitId(1), 0, 10).await.unwrap();
            if s.hub.stats().cached_reads > 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(s.hub.stats().cached_reads > 0, "the cache answers");
        (Arc::new((gateway, cached)), passed)
    });
    let mut g = c.benchmark_group("read 10 registers through the gateway, one at a time");
    for (name, client) in [
        ("answered at the hub from scanned values", &cached.1),
        ("passed through to the device", &passed),
    ] {
        let (before, device_before) = (s.hub.stats().cached_reads, reads.load(Ordering::Relaxed));
        let mut asked = 0u64;
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                asked += iters;
                rt.block_on(async {
                    let start = Instant::now();
                    for _ in 0..iters {
                        client.read_holding_registers(UnitId(1), 0, 10).await.unwrap();
                    }
                    start.elapsed()
                })
            })
        });
        println!(
            "{name}: {asked} reads asked, {} answered at the hub, {} reads reached the device (the agent's scans included)",
            s.hub.stats().cached_reads - before,
            reads.load(Ordering::Relaxed) - device_before
        );
    }
    g.finish();
}

criterion_group!(cache, cached_reads);
criterion_main!(benches, cache);
