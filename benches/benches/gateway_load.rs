//! Gateway throughput and latency under load: 1, 16 and 64 Modbus TCP
//! clients (tokio-modbus, one request at a time each, 10 registers per
//! read) talking to a device directly and, in the same run, through the
//! hub's gateway (client -> gateway -> TLS 1.3 -> agent -> device), all on
//! loopback in one process. Measured inside the runtime: no per-request
//! hand-off from outside it.
//!
//! The agent lets up to 64 requests reach the device at once, as 64
//! direct clients do with their own connections; with the default (one at
//! a time, what many devices need) the gateway rows measure the device's
//! queue instead.
//!
//! `cargo bench -p outpost-benches --bench gateway_load`
//! (`OUTPOST_LOAD_SECS`, default 3: how long each row runs;
//! `OUTPOST_LOAD_CLIENTS`, default `1,16,64`: the rows).

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio_modbus::client::Reader;

/// One row's figures.
struct Row {
    requests: usize,
    errors: usize,
    elapsed: Duration,
    p50: Duration,
    p99: Duration,
}

impl Row {
    fn per_second(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }
}

/// `clients` clients read from `target` for `duration`, one request at a time each.
async fn load(target: SocketAddr, clients: usize, duration: Duration) -> Row {
    let start = Instant::now() + Duration::from_millis(50);
    let end = start + duration;
    let tasks: Vec<_> = (0..clients)
        .map(|c| {
            tokio::spawn(async move {
                let mut ctx = tokio_modbus::client::tcp::connect_slave(target, tokio_modbus::Slave(1))
                    .await
                    .expect("connect");
                tokio::time::sleep_until(start.into()).await;
                let mut latencies = Vec::with_capacity(1 << 16);
                let mut errors = 0;
                let address = (c as u16 * 10) % 900;
                while Instant::now() < end {
                    let sent = Instant::now();
                    match ctx.read_holding_registers(address, 10).await {
                        Ok(Ok(values)) if values.len() == 10 => latencies.push(sent.elapsed()),
                        _ => errors += 1,
                    }
                }
                (latencies, errors)
            })
        })
        .collect();
    let mut all = Vec::new();
    let mut errors = 0;
    for task in tasks {
        let (latencies, e) = task.await.expect("client task");
        all.extend(latencies);
        errors += e;
    }
    all.sort_unstable();
    let at = |q: f64| {
        all.get(((all.len() as f64 * q) as usize).min(all.len().saturating_sub(1)))
            .copied()
    };
    Row {
        requests: all.len(),
        errors,
        elapsed: duration,
        p50: at(0.50).unwrap_or_default(),
        p99: at(0.99).unwrap_or_default(),
    }
}

fn main() {
    // `cargo test --benches` runs this with --bench absent: do nothing then.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let seconds: u64 = std::env::var("OUTPOST_LOAD_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let duration = Duration::from_secs(seconds);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let s = common::setup(64).await;
        println!("reads of 10 holding registers, one at a time per client, {seconds} s per row, loopback");
        println!(
            "{:>7} | {:>12} {:>9} {:>9} | {:>12} {:>9} {:>9} | {:>10} {:>9} {:>9} | {:>6}",
            "clients",
            "direct/s",
            "p50 us",
            "p99 us",
            "gateway/s",
            "p50 us",
            "p99 us",
            "throughput",
            "p50",
            "p99",
            "errors"
        );
        let rows: Vec<usize> = std::env::var("OUTPOST_LOAD_CLIENTS")
            .ok()
            .map(|s| s.split(',').filter_map(|n| n.trim().parse().ok()).collect())
            .unwrap_or_else(|| vec![1, 16, 64]);
        for clients in rows {
            let direct = load(s.device, clients, duration).await;
            let gateway = load(s.gateway.local_addr(), clients, duration).await;
            println!(
                "{:>7} | {:>12.0} {:>9} {:>9} | {:>12.0} {:>9} {:>9} | {:>9.2}x {:>8.1}x {:>8.1}x | {:>6}",
                clients,
                direct.per_second(),
                direct.p50.as_micros(),
                direct.p99.as_micros(),
                gateway.per_second(),
                gateway.p50.as_micros(),
                gateway.p99.as_micros(),
                gateway.per_second() / direct.per_second(),
                gateway.p50.as_secs_f64() / direct.p50.as_secs_f64(),
                gateway.p99.as_secs_f64() / direct.p99.as_secs_f64(),
                direct.errors + gateway.errors,
            );
        }
        println!(
            "ratios: gateway over direct (throughput: higher is better; latency: lower is better). \
             hub channels held: {}, agent requests: {}",
            s.hub.stats().channels,
            s.agent.stats().requests
        );
    });
}
