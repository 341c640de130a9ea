//! Round trips on loopback: reading 10 holding registers directly from a
//! Modbus TCP server, and through the tunnel (hub API, and a Modbus TCP
//! client through the hub's gateway), TLS 1.3 included. tokio-modbus's TCP
//! client against the same server is the reference a user would otherwise
//! pick for the direct case.
//!
//! Every row is measured inside the runtime, as an application's task sees
//! it: one task on the runtime's workers runs all of a sample's requests one
//! after the other and times them (`iter_custom`), so no row pays a thread
//! hand-off per request that the others do not.
//!
//! Beside the gateway path, its floor: the hops it is made of, measured
//! directly and added up in the same task (a Modbus TCP read from the client
//! to the hub, a TLS round trip between the hub's and the agent's settings
//! carrying the same bytes, a Modbus TCP read from the agent to the device).
//!
//! `cargo bench -p outpost-benches --bench e2e`; `-- paired` for the paired
//! comparisons alone (see `paired`); `OUTPOST_E2E_ONLY` for a fixed number
//! of reads to count instructions of (see `fixed_workload`).

mod common;

use std::future::Future;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use outpost_modbus_core::UnitId;
use outpost_tunnel_tokio::modbus::{Client, Requests};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::runtime::Runtime;

/// A Modbus TCP read of 10 registers: the request's and the answer's size.
const READ_REQUEST: usize = 12;
const READ_ANSWER: usize = 29;

/// The TLS leg of the floor: a client of the hub's settings talking to an
/// echo server of the agent's.
type Tls = tokio_rustls::client::TlsStream<tokio::net::TcpStream>;

/// One read along the gateway path's floor: its three hops, each measured
/// alone, one after the other.
async fn floor_read(client_hop: &Client, tls: &mut Tls, device_hop: &Client) {
    // The IT client's hop to the hub: a Modbus TCP read on loopback.
    client_hop.read_holding_registers(UnitId(1), 0, 10).await.unwrap();
    // The tunnel's hop: a TLS round trip of the same bytes.
    tls.write_all(&[0u8; READ_REQUEST]).await.unwrap();
    tls.flush().await.unwrap();
    let mut answer = [0u8; READ_ANSWER];
    tls.read_exact(&mut answer).await.unwrap();
    // The agent's hop to the device.
    device_hop.read_holding_registers(UnitId(1), 0, 10).await.unwrap();
}

/// `OUTPOST_E2E_ONLY=path` (or `floor`): runs `OUTPOST_E2E_READS` reads
/// (default 1000) through the gateway path (or along its floor) and
/// exits, measuring nothing: a fixed workload for an instruction counter.
/// The difference between two read counts, divided, is the count per
/// read, the setup (certificates, handshakes) taken out:
///
/// ```sh
/// OUTPOST_E2E_ONLY=path OUTPOST_E2E_READS=3000 valgrind --tool=callgrind target/release/deps/e2e-<hash> --bench
/// ```
///
/// Instructions do not drift with the machine's load as times do.
fn fixed_workload(rt: &Runtime, through_gateway: Client, client_hop: Client, mut tls: Tls, device_hop: Client) {
    let Ok(only) = std::env::var("OUTPOST_E2E_ONLY") else {
        return;
    };
    let reads: u32 = std::env::var("OUTPOST_E2E_READS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    rt.block_on(rt.spawn(async move {
        for _ in 0..reads {
            match only.as_str() {
                "path" => {
                    through_gateway.read_holding_registers(UnitId(1), 0, 10).await.unwrap();
                }
                "floor" => floor_read(&client_hop, &mut tls, &device_hop).await,
                other => panic!("OUTPOST_E2E_ONLY is path or floor, not {other}"),
            }
        }
    }))
    .expect("the reads ran");
    std::process::exit(0);
}

/// Runs `op` `iters` times, one after the other, in one task on `rt`'s
/// workers, threading `state` through; returns it with the time taken.
fn in_task<S, F, Fut>(rt: &Runtime, iters: u64, state: S, mut op: F) -> (S, Duration)
where
    S: Send + 'static,
    F: FnMut(S) -> Fut + Send + 'static,
    Fut: Future<Output = S> + Send,
{
    rt.block_on(rt.spawn(async move {
        let mut state = state;
        let start = Instant::now();
        for _ in 0..iters {
            state = op(state).await;
        }
        (state, start.elapsed())
    }))
    .expect("the measuring task ran")
}

/// Times `op` with a state that is kept between samples (a connection).
fn bench_in_task<S, F, Fut>(
    g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    rt: &Runtime,
    state: S,
    op: F,
) where
    S: Send + 'static,
    F: FnMut(S) -> Fut + Send + Clone + 'static,
    Fut: Future<Output = S> + Send,
{
    let mut slot = Some(state);
    g.bench_function(name, |b| {
        b.iter_custom(|iters| {
            let (state, took) = in_task(rt, iters, slot.take().expect("state returned"), op.clone());
            slot = Some(state);
            took
        })
    });
}

fn round_trips(c: &mut Criterion) {
    let rt = Runtime::new().unwrap();
    let s = rt.block_on(common::setup(1));
    let direct = rt.block_on(async { Client::tcp(s.device.to_string()).build() });
    let agent_side = rt.block_on(async { Client::tcp(s.device.to_string()).build() });
    let through_gateway = rt.block_on(async { Client::tcp(s.gateway.local_addr().to_string()).build() });
    let tokio_modbus = rt.block_on(async {
        tokio_modbus::client::tcp::connect_slave(s.device, tokio_modbus::Slave(1))
            .await
            .unwrap()
    });
    let tls = rt.block_on(common::tls_echo(&s, READ_REQUEST, READ_ANSWER));
    if std::env::var_os("OUTPOST_E2E_ONLY").is_some() {
        let client_hop = rt.block_on(async { Client::tcp(s.device.to_string()).build() });
        fixed_workload(&rt, through_gateway, client_hop, tls, agent_side);
        return;
    }

    let mut g = c.benchmark_group("read 10 registers, one at a time, loopback");
    bench_in_task(
        &mut g,
        "direct: outpost client -> server",
        &rt,
        direct,
        |c| async move {
            c.read_holding_registers(UnitId(1), 0, 10).await.unwrap();
            c
        },
    );
    bench_in_task(
        &mut g,
        "direct: tokio-modbus client -> same server",
        &rt,
        tokio_modbus,
        |mut c| async move {
            use tokio_modbus::client::Reader;
            c.read_holding_registers(0, 10).await.unwrap().unwrap();
            c
        },
    );
    bench_in_task(
        &mut g,
        "tunnel: hub API -> TLS -> agent -> server",
        &rt,
        s.remote.clone(),
        |c| async move {
            c.read_holding_registers(UnitId(1), 0, 10).await.unwrap();
            c
        },
    );
    bench_in_task(
        &mut g,
        "tunnel: client -> gateway -> TLS -> agent -> server",
        &rt,
        through_gateway,
        |c| async move {
            c.read_holding_registers(UnitId(1), 0, 10).await.unwrap();
            c
        },
    );
    // The IT client's hop ends at the hub, the agent's at the device: both
    // are Modbus TCP reads on loopback, measured here against the device.
    let client_hop = rt.block_on(async { Client::tcp(s.device.to_string()).build() });
    let hops = (client_hop, agent_side, tls);
    bench_in_task(
        &mut g,
        "floor of the gateway path: its three hops, each measured alone",
        &rt,
        hops,
        |(client_hop, device_hop, mut tls)| async move {
            floor_read(&client_hop, &mut tls, &device_hop).await;
            (client_hop, device_hop, tls)
        },
    );
    g.finish();

    paired_ratios(&rt, &s);

    // Sixteen reads on one connection: outpost's client pipelines them
    // (transaction ids, up to 16 in flight); tokio-modbus's client takes
    // `&mut self` and sends one after the other.
    let pipelined = rt.block_on(async { Client::tcp(s.device.to_string()).max_in_flight(16).build() });
    let one_after_the_other = rt.block_on(async {
        tokio_modbus::client::tcp::connect_slave(s.device, tokio_modbus::Slave(1))
            .await
            .unwrap()
    });
    let mut g = c.benchmark_group("16 reads of 10 registers on one connection, loopback");
    bench_in_task(&mut g, "outpost client, pipelined", &rt, pipelined, |c| async move {
        let reads: Vec<_> = (0..16u16)
            .map(|i| {
                let c = c.clone();
                tokio::spawn(async move { c.read_holding_registers(UnitId(1), i, 10).await })
            })
            .collect();
        for r in reads {
            r.await.unwrap().unwrap();
        }
        c
    });
    bench_in_task(
        &mut g,
        "tokio-modbus client, one after the other",
        &rt,
        one_after_the_other,
        |mut c| async move {
            use tokio_modbus::client::Reader;
            for i in 0..16u16 {
                c.read_holding_registers(i, 10).await.unwrap().unwrap();
            }
            c
        },
    );
    g.finish();
}

/// Rounds of the paired comparison, and reads per path in each.
const ROUNDS: usize = 41;
const READS_PER_ROUND: u32 = 400;

/// Two ways of doing the same thing, paired: rounds alternate the two in
/// one task, and each round's ratio compares times taken within a few
/// milliseconds of each other. Criterion's rows are minutes apart, and this
/// machine's speed drifts by a quarter between minutes; the median of the
/// paired ratios is the figure that holds still. Printed, not a criterion
/// row (criterion measures one thing at a time). Runs when no filter is
/// given or the filter is part of `label`.
fn paired<S, F, Fut>(rt: &Runtime, label: &str, state: S, mut round: F)
where
    S: Send + 'static,
    F: FnMut(S) -> Fut + Send + 'static,
    Fut: Future<Output = (S, Duration, Duration)> + Send,
{
    let wanted = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .all(|f| label.contains(f.as_str()));
    if !wanted {
        return;
    }
    let rounds = rt
        .block_on(rt.spawn(async move {
            let mut state = state;
            let mut rounds = Vec::with_capacity(ROUNDS);
            // One round unmeasured: connections made, caches warm.
            for r in 0..=ROUNDS {
                let (next, a, b) = round(state).await;
                state = next;
                if r > 0 {
                    rounds.push((a.as_secs_f64(), b.as_secs_f64()));
                }
            }
            rounds
        }))
        .expect("the measuring task ran");
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        let at = |q: usize| v[(v.len() - 1) * q / 4];
        (at(2), at(1), at(3))
    };
    let (ratio, low, high) = median(rounds.iter().map(|(a, b)| a / b).collect());
    // Each side's own median, per read, for scale: these drift with the
    // machine, the ratio much less.
    let per_read = |t: f64| t * 1e6 / f64::from(READS_PER_ROUND);
    let (a, _, _) = median(rounds.iter().map(|(a, _)| per_read(*a)).collect());
    let (b, _, _) = median(rounds.iter().map(|(_, b)| per_read(*b)).collect());
    println!(
        "{label} ({ROUNDS} rounds of {READS_PER_ROUND} reads each): median {ratio:.2}x \
         (quartiles {low:.2}x-{high:.2}x; {a:.1} us against {b:.1} us per read)"
    );
}

/// The paired comparisons: the gateway path against its floor, and
/// outpost's client against tokio-modbus's, one read at a time.
fn paired_ratios(rt: &Runtime, s: &common::Setup) {
    let device = s.device.to_string();
    let gateway = s.gateway.local_addr().to_string();
    let tls = rt.block_on(common::tls_echo(s, READ_REQUEST, READ_ANSWER));
    let state = rt.block_on(async {
        (
            Client::tcp(gateway).build(),
            Client::tcp(device.clone()).build(),
            Client::tcp(device.clone()).build(),
            tls,
        )
    });
    paired(
        rt,
        "gateway path / floor, paired",
        state,
        |(through_gateway, client_hop, device_hop, mut tls)| async move {
            let start = Instant::now();
            for _ in 0..READS_PER_ROUND {
                through_gateway.read_holding_registers(UnitId(1), 0, 10).await.unwrap();
            }
            let path = start.elapsed();
            let start = Instant::now();
            for _ in 0..READS_PER_ROUND {
                floor_read(&client_hop, &mut tls, &device_hop).await;
            }
            let floor = start.elapsed();
            ((through_gateway, client_hop, device_hop, tls), path, floor)
        },
    );
    let state = rt.block_on(async {
        let outpost = Client::tcp(device.clone()).build();
        let tokio_modbus = tokio_modbus::client::tcp::connect_slave(s.device, tokio_modbus::Slave(1))
            .await
            .unwrap();
        (outpost, tokio_modbus)
    });
    paired(
        rt,
        "outpost client / tokio-modbus client, paired",
        state,
        |(outpost, mut tokio_modbus)| async move {
            use tokio_modbus::client::Reader;
            let start = Instant::now();
            for _ in 0..READS_PER_ROUND {
                outpost.read_holding_registers(UnitId(1), 0, 10).await.unwrap();
            }
            let ours = start.elapsed();
            let start = Instant::now();
            for _ in 0..READS_PER_ROUND {
                tokio_modbus.read_holding_registers(0, 10).await.unwrap().unwrap();
            }
            let theirs = start.elapsed();
            ((outpost, tokio_modbus), ours, theirs)
        },
    );
}

criterion_group!(benches, round_trips);
criterion_main!(benches);
