//! Data acquisition end to end on loopback: an agent polls a device's scan
//! groups and reports by exception to the hub, whose subscribers see the
//! values; samples taken while the hub is away arrive when it is back.

mod common;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::deploy::{self, AGENT, SECRET, UNIT};
use common::pki::Pki;
use outpost_modbus_core::access::Table;
use outpost_modbus_core::scan::{Encoding, Point, Value, WordOrder};
use outpost_modbus_core::server::DataModel;
use outpost_modbus_core::{ExceptionCode, RegisterRange};
use outpost_tunnel_proto::{AgentId, Secret};
use outpost_tunnel_tokio::agent::{Agent, Device, GroupSpec, PointSpec, RunningAgent};
#[cfg(feature = "spool")]
use outpost_tunnel_tokio::agent::{AgentBuilder, AgentError};
use outpost_tunnel_tokio::binding::Role;
use outpost_tunnel_tokio::hub::{Filter, GatewayBuilder, Hub, PointValue, Route, Subscription};
use outpost_tunnel_tokio::modbus::{Client, Requests, Server};
use tokio::net::TcpListener;

/// The test device: a plain one, and a counter at holding register 90
/// that counts its reads (every scan then takes a new value).
#[derive(Debug, Default)]
struct Counting {
    plain: common::Device,
    reads: u16,
    /// Reads of holding registers the device answered.
    holding_reads: u64,
}

impl DataModel for Counting {
    fn read_coils(&mut self, range: outpost_modbus_core::CoilRange, out: &mut [bool]) -> Result<(), ExceptionCode> {
        self.plain.read_coils(range, out)
    }
    fn read_holding_registers(&mut self, range: RegisterRange, out: &mut [u16]) -> Result<(), ExceptionCode> {
        self.holding_reads += 1;
        if range.start() == 90 {
            self.reads += 1;
            out.fill(self.reads);
            return Ok(());
        }
        self.plain.read_holding_registers(range, out)
    }
    fn read_input_registers(&mut self, range: RegisterRange, out: &mut [u16]) -> Result<(), ExceptionCode> {
        self.plain.read_input_registers(range, out)
    }
    fn write_single_register(&mut self, address: u16, value: u16) -> Result<(), ExceptionCode> {
        self.plain.write_single_register(address, value)
    }
}

async fn device() -> (SocketAddr, Arc<Mutex<Counting>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let model = Arc::new(Mutex::new(Counting::default()));
    tokio::spawn(Server::builder().serve(listener, Arc::clone(&model)));
    (addr, model)
}

fn point(table: Table, address: u16, encoding: Encoding) -> Point {
    Point::new(table, address, encoding).unwrap()
}

/// A group of every kind of point, polled every `interval`.
fn values_group(interval: Duration) -> GroupSpec {
    GroupSpec::new("values", UNIT, interval)
        .device("plc-1")
        .point(PointSpec::new(
            "level",
            point(Table::HoldingRegisters, 0, Encoding::U16),
        ))
        .point(PointSpec::new(
            "total",
            point(Table::HoldingRegisters, 4, Encoding::U32(WordOrder::HighFirst)),
        ))
        .point(PointSpec::new("inlet", point(Table::InputRegisters, 1, Encoding::I16)))
        .point(PointSpec::new("pump", point(Table::Coils, 3, Encoding::Bit)))
}

/// A group of the counter alone.
fn counter_group(interval: Duration) -> GroupSpec {
    GroupSpec::new("counter", UNIT, interval)
        .device("plc-1")
        .point(PointSpec::new(
            "reads",
            point(Table::HoldingRegisters, 90, Encoding::U16),
        ))
}

fn agent(pki: &Pki, hub: SocketAddr, device: SocketAddr, groups: Vec<GroupSpec>, buffer: usize) -> RunningAgent {
    builder(pki, hub, device, groups, buffer).build().unwrap().spawn()
}

fn builder(
    pki: &Pki,
    hub: SocketAddr,
    device: SocketAddr,
    groups: Vec<GroupSpec>,
    buffer: usize,
) -> outpost_tunnel_tokio::agent::AgentBuilder {
    let mut builder = Agent::builder()
        .hub(hub.to_string())
        .tls(pki.agent_tls(AGENT, 7))
        .identity(AgentId::new(AGENT).unwrap(), Secret::new(SECRET).unwrap())
        .policy(deploy::policy())
        .device(Device::tcp("plc-1", &device.to_string()).units([UNIT]))
        .backoff(Duration::from_millis(20), Duration::from_millis(100))
        .acquisition_buffer(buffer);
    for g in groups {
        builder = builder.scan(g);
    }
    builder
}

/// The next value, within `within`.
async fn next(values: &mut Subscription, within: Duration) -> Option<PointValue> {
    match tokio::time::timeout(within, values.recv()).await {
        Ok(Some(Ok(value))) => Some(value),
        Ok(Some(Err(lagged))) => panic!("{lagged}"),
        Ok(None) | Err(_) => None,
    }
}

fn wall_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64
}

#[tokio::test]
async fn a_changed_value_reaches_a_subscriber_within_two_scan_intervals() {
    let pki = Pki::new();
    let hub = deploy::hub(&pki, &[]).await;
    let (device, model) = device().await;
    let interval = Duration::from_millis(300);
    let mut values = hub.subscribe(Filter::all().agent(AGENT).group("values"));
    let mut agent = agent(&pki, hub.local_addr(), device, vec![values_group(interval)], 1 << 20);
    agent.connected().await;

    // The first scan reports every point, each decoded.
    let mut first = std::collections::HashMap::new();
    while first.len() < 4 {
        let v = next(&mut values, Duration::from_secs(5)).await.expect("the first scan");
        assert_eq!((v.device.as_str(), v.group.as_str()), ("plc-1", "values"));
        assert_eq!(v.quality, outpost_tunnel_tokio::hub::Quality::Good);
        first.insert(v.point.clone(), v.value);
    }
    assert_eq!(first["level"], Some(Value::U16(0)));
    // Holding registers hold their addresses: 4 and 5.
    assert_eq!(first["total"], Some(Value::U32(4 << 16 | 5)));
    assert_eq!(first["inlet"], Some(Value::I16(1001)));
    assert_eq!(first["pump"], Some(Value::Bool(false)));
    // The hub keeps the latest of each.
    let now = hub.values(&Filter::all().point("total"));
    assert_eq!(now.len(), 1);
    assert_eq!(now[0].value, Some(Value::U32(4 << 16 | 5)));

    // A value changes on the device; nothing else does.
    for round in 1..=3u16 {
        model.lock().unwrap().plain.holding[0] = 1000 + round;
        let changed = Instant::now();
        loop {
            let v = next(&mut values, 2 * interval)
                .await
                .expect("the change within two scan intervals");
            if (v.point.as_str(), v.value) == ("level", Some(Value::U16(1000 + round))) {
                break;
            }
            // Only a snapshot the hub asked for on connecting may come
            // first, and it says what the device holds.
            assert!(v.snapshot, "{v:?}");
        }
        assert!(changed.elapsed() < 2 * interval, "{:?}", changed.elapsed());
    }
    // Nothing changed: nothing is reported.
    while let Some(v) = next(&mut values, 2 * interval).await {
        assert!(v.snapshot, "{v:?}");
    }
    assert_eq!(agent.stats().samples_dropped, 0);
}

/// Checks the counter's samples one hub saw: each sequence number once,
/// in order, one after the other, timestamps in order. Returns the first
/// and last sequence numbers.
fn in_order(seen: &[PointValue]) -> (u64, u64) {
    for pair in seen.windows(2) {
        assert_eq!(pair[1].seq, pair[0].seq + 1, "{:?} then {:?}", pair[0], pair[1]);
        assert!(pair[1].at_ms >= pair[0].at_ms);
    }
    (seen[0].seq, seen[seen.len() - 1].seq)
}

/// Collects the counter's samples until one taken after `until_ms` came.
async fn collect_until(values: &mut Subscription, until_ms: u64, seen: &mut Vec<PointValue>) {
    loop {
        let v = next(values, Duration::from_secs(10))
            .await
            .expect("samples keep coming");
        let done = v.at_ms > until_ms;
        seen.push(v);
        if done {
            return;
        }
    }
}

#[tokio::test]
async fn samples_taken_while_the_hub_is_away_arrive_once_in_order() {
    let pki = Pki::new();
    let hub = deploy::hub(&pki, &[]).await;
    let address = hub.local_addr();
    let (device, _model) = device().await;
    let interval = Duration::from_millis(40);
    let mut values = hub.subscribe(Filter::all().group("counter"));
    let agent = agent(&pki, address, device, vec![counter_group(interval)], 1 << 20);
    let mut before = Vec::new();
    collect_until(&mut values, wall_ms() + 500, &mut before).await;

    // The hub goes away for a second and a half, and comes back on its port.
    drop(values);
    drop(hub);
    let away = wall_ms();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let back = wall_ms();
    let hub = deploy::hub_on(&pki, &[], address).await;
    let mut values = hub.subscribe(Filter::all().group("counter"));
    let mut after = Vec::new();
    collect_until(&mut values, back + 500, &mut after).await;

    let (first, last_before) = in_order(&before);
    let (resumed, last) = in_order(&after);
    assert_eq!(first, 0);
    // The new hub goes on where the old one acknowledged: no sample is
    // missing, and none but those the old hub had not acknowledged yet
    // comes again.
    assert!(resumed <= last_before + 1, "{resumed} after {last_before}");
    assert!(last > last_before);
    // Samples were taken while the hub was away, and arrived with the
    // time they were taken.
    let meanwhile = after.iter().filter(|v| v.at_ms > away + 100 && v.at_ms < back).count();
    assert!(meanwhile >= 10, "{meanwhile} samples taken while the hub was away");
    // Every read of the counter made one good sample with the next value,
    // stale ones aside.
    let good: Vec<u16> = after
        .iter()
        .filter(|v| v.quality == outpost_tunnel_tokio::hub::Quality::Good)
        .filter_map(|v| match v.value {
            Some(Value::U16(n)) => Some(n),
            _ => None,
        })
        .collect();
    assert!(good.windows(2).all(|w| w[1] == w[0] + 1), "{good:?}");
    assert_eq!(agent.stats().samples_dropped, 0);
}

#[tokio::test]
async fn a_full_buffer_drops_the_oldest_counts_them_and_the_hub_catches_up() {
    let pki = Pki::new();
    let hub = deploy::hub(&pki, &[]).await;
    let address = hub.local_addr();
    let (device, _model) = device().await;
    let interval = Duration::from_millis(20);
    // Room for about twenty samples.
    let agent = agent(&pki, address, device, vec![counter_group(interval)], 600);
    let mut values = hub.subscribe(Filter::all().group("counter"));
    let mut before = Vec::new();
    collect_until(&mut values, wall_ms() + 200, &mut before).await;
    drop(values);
    drop(hub);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let hub = deploy::hub_on(&pki, &[], address).await;
    let mut values = hub.subscribe(Filter::all().group("counter"));
    let mut after = Vec::new();
    collect_until(&mut values, wall_ms() + 300, &mut after).await;
    let dropped = agent.stats().samples_dropped;
    assert!(dropped > 0);
    // What was kept arrived in order, and what did not arrive was
    // dropped from the front of the buffer: one run of sequence numbers
    // is missing, and the count covers it (it may also count samples
    // the old hub had and had not acknowledged yet).
    in_order(&before);
    let (resumed, last) = in_order(&after);
    let seen: std::collections::HashSet<u64> = before.iter().chain(&after).map(|v| v.seq).collect();
    let missing: Vec<u64> = (0..=last).filter(|s| !seen.contains(s)).collect();
    assert!(!missing.is_empty());
    assert_eq!(
        missing[missing.len() - 1] - missing[0] + 1,
        missing.len() as u64,
        "{missing:?}"
    );
    assert_eq!(missing[missing.len() - 1] + 1, resumed);
    let missing = missing.len() as u64;
    assert!(
        missing <= dropped && dropped <= missing + 64,
        "{missing} missing, {dropped} dropped"
    );
}

#[cfg(feature = "spool")]
/// A fresh directory for a spool.
fn spool_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("outpost-spool-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[cfg(feature = "spool")]
/// The agent `builder` makes, spawned once its spool is free. An agent of
/// this process dropped a moment ago lets go of it when its last write has
/// ended on its blocking thread (a killed process lets go at once).
async fn spawn_when_spool_free(builder: impl Fn() -> AgentBuilder) -> RunningAgent {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match builder().build() {
            Ok(agent) => return agent.spawn(),
            Err(AgentError::Spool(e)) if e.is_in_use() && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            Err(e) => panic!("{e}"),
        }
    }
}

#[cfg(feature = "spool")]
#[tokio::test]
async fn an_agent_restarted_during_an_outage_sends_what_it_spooled() {
    let pki = Pki::new();
    let hub = deploy::hub(&pki, &[]).await;
    let address = hub.local_addr();
    let (device, _model) = device().await;
    let interval = Duration::from_millis(40);
    let dir = spool_dir("restart");
    let spool = dir.join("samples.redb");
    let (pki, spool) = (&pki, &spool);
    let start = |groups: Vec<GroupSpec>| {
        spawn_when_spool_free(move || builder(pki, address, device, groups.clone(), 1 << 20).spool(spool))
    };
    let mut values = hub.subscribe(Filter::all().group("counter"));
    let agent = start(vec![counter_group(interval)]).await;
    let mut before = Vec::new();
    collect_until(&mut values, wall_ms() + 300, &mut before).await;

    // The hub goes away; the agent scans on, then stops without a word
    // (its tasks end where they are) and starts again from its spool.
    drop(values);
    drop(hub);
    let away = wall_ms();
    tokio::time::sleep(Duration::from_millis(700)).await;
    drop(agent);
    let restarted = wall_ms();
    let agent = start(vec![counter_group(interval)]).await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    let back = wall_ms();
    let hub = deploy::hub_on(pki, &[], address).await;
    let mut values = hub.subscribe(Filter::all().group("counter"));
    let mut after = Vec::new();
    collect_until(&mut values, back + 300, &mut after).await;

    let (first, last_before) = in_order(&before);
    let (resumed, _) = in_order(&after);
    assert_eq!(first, 0);
    // One run of sequence numbers across both runs of the agent: nothing
    // missing, and only what the old hub had not acknowledged comes again.
    assert!(resumed <= last_before + 1, "{resumed} after {last_before}");
    let taken = |from: u64, to: u64| after.iter().filter(|v| v.at_ms > from && v.at_ms < to).count();
    assert!(
        taken(away + 100, restarted) >= 5,
        "samples of the first run, taken while the hub was away"
    );
    assert!(
        taken(restarted + 100, back) >= 5,
        "samples of the second run, taken while the hub was away"
    );
    assert_eq!(agent.stats().samples_dropped, 0);
    drop(agent);

    // Other scan groups: the spool starts over (a new epoch) and the old
    // samples are not sent as if they were the new groups'.
    let renamed = GroupSpec::new("renamed", UNIT, interval)
        .device("plc-1")
        .point(PointSpec::new(
            "reads",
            point(Table::HoldingRegisters, 90, Encoding::U16),
        ));
    let mut values = hub.subscribe(Filter::all().group("renamed"));
    let _agent = start(vec![renamed]).await;
    let v = next(&mut values, Duration::from_secs(10))
        .await
        .expect("the new group reports");
    assert_eq!(v.seq, 0);
    assert!(v.at_ms >= back, "no old sample: {v:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[cfg(feature = "spool")]
#[tokio::test]
async fn a_stopped_agent_lets_go_of_its_spool_before_stop_returns() {
    let pki = Pki::new();
    let hub = deploy::hub(&pki, &[]).await;
    let (device, _model) = device().await;
    let dir = spool_dir("stop");
    let spool = dir.join("samples.redb");
    let make = || {
        builder(
            &pki,
            hub.local_addr(),
            device,
            vec![counter_group(Duration::from_millis(2))],
            1 << 20,
        )
        .spool(&spool)
    };
    // Scans every 2 ms write to the spool all the time: a stop catches
    // writes under way. A metrics endpoint may keep the counters longer.
    let mut stats = Vec::new();
    for round in 0..40 {
        let agent = make().build().unwrap().spawn();
        stats.push(agent.stats_handle());
        tokio::time::sleep(Duration::from_millis(5 + round % 10)).await;
        agent.stop(Duration::ZERO).await;
        // Opened again at once: no retry.
        let again = make().build();
        assert!(again.is_ok(), "round {round}: {:?}", again.err());
    }
    // A second agent on the same spool is refused with a typed error.
    let running = make().build().unwrap().spawn();
    match make().build() {
        Err(AgentError::Spool(e)) => assert!(e.is_in_use(), "{e}"),
        other => panic!("a spool in use opened twice: {other:?}"),
    }
    // A dropped agent lets go of it too, once its last write has ended,
    // though its counters are still held.
    let _held = running.stats_handle();
    drop(running);
    drop(spawn_when_spool_free(make).await);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn an_agent_that_acquires_data_still_stops_cleanly() {
    let pki = Pki::new();
    let hub = deploy::hub(&pki, &[]).await;
    let (device, _model) = device().await;
    let mut events = hub.events();
    let mut values = hub.subscribe(Filter::all());
    let mut agent = agent(
        &pki,
        hub.local_addr(),
        device,
        vec![counter_group(Duration::from_millis(20))],
        1 << 20,
    );
    agent.connected().await;
    next(&mut values, Duration::from_secs(5)).await.expect("samples flow");
    let stopped = Instant::now();
    agent.stop(Duration::from_secs(5)).await;
    // Its data acquisition channel closed with the rest: the stop did not
    // wait for the grace period, and the hub saw a planned stop.
    assert!(stopped.elapsed() < Duration::from_secs(2), "{:?}", stopped.elapsed());
    loop {
        match tokio::time::timeout(Duration::from_secs(5), events.recv()).await {
            Ok(Ok(outpost_tunnel_tokio::hub::HubEvent::Disconnected { reason, .. })) => {
                assert!(reason.contains("NoError"), "{reason}");
                break;
            }
            Ok(Ok(_)) => {}
            other => panic!("{other:?}"),
        }
    }
}

/// A gateway to the agent's plc-1 for role operator, reading from the
/// scanned values when `cache` says how old they may be, and a client of it.
async fn gateway(hub: &Hub, cache: Option<Duration>) -> (outpost_tunnel_tokio::hub::Gateway, Client) {
    let mut builder = GatewayBuilder::new("127.0.0.1:0".parse().unwrap(), Role::new("operator").unwrap())
        .route_all(Route::new(AgentId::new(AGENT).unwrap(), "plc-1"));
    if let Some(age) = cache {
        builder = builder.cache_reads(age);
    }
    let gateway = hub.gateway(builder).await.unwrap();
    let client = Client::tcp(gateway.local_addr().to_string()).build();
    (gateway, client)
}

#[tokio::test]
async fn a_gateway_answers_covered_reads_from_scanned_values() {
    let pki = Pki::new();
    let hub = deploy::hub(&pki, &[]).await;
    let (device, model) = device().await;
    let interval = Duration::from_millis(100);
    let mut agent = agent(&pki, hub.local_addr(), device, vec![values_group(interval)], 1 << 20);
    agent.connected().await;
    let (_cached, cached) = gateway(&hub, Some(Duration::from_millis(500))).await;
    let (_plain, plain) = gateway(&hub, None).await;

    // Once the hub holds the group's snapshot, covered reads are answered
    // at the hub.
    let mut tries = 0;
    while hub.stats().cached_reads == 0 {
        tries += 1;
        assert!(tries < 500, "the cache never answered");
        assert_eq!(cached.read_holding_registers(UNIT, 4, 2).await.unwrap(), [4, 5]);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let device_reads = || model.lock().unwrap().holding_reads;
    let (reads, answered) = (device_reads(), hub.stats().cached_reads);
    for _ in 0..100 {
        assert_eq!(cached.read_holding_registers(UNIT, 4, 2).await.unwrap(), [4, 5]);
        assert_eq!(cached.read_holding_registers(UNIT, 0, 1).await.unwrap(), [0]);
        assert_eq!(cached.read_coils(UNIT, 3, 1).await.unwrap(), [false]);
        assert_eq!(cached.read_input_registers(UNIT, 1, 1).await.unwrap(), [1001]);
    }
    assert_eq!(hub.stats().cached_reads - answered, 400);
    // The device saw the agent's scans alone (one read of holding
    // registers per scan), not the clients' 200.
    let scans = device_reads() - reads;
    assert!(scans < 50, "{scans} reads reached the device");

    // What no point covers, and what another gateway asks, passes through.
    let answered = hub.stats().cached_reads;
    assert_eq!(cached.read_holding_registers(UNIT, 1, 2).await.unwrap(), [1, 2]);
    assert_eq!(cached.read_holding_registers(UNIT, 0, 2).await.unwrap(), [0, 1]);
    assert_eq!(plain.read_holding_registers(UNIT, 4, 2).await.unwrap(), [4, 5]);
    assert_eq!(hub.stats().cached_reads, answered);

    // A client reads back what it wrote: the device's reads pass through
    // until scans after the write reported it.
    cached.write_single_register(UNIT, 0, 777).await.unwrap();
    assert_eq!(cached.read_holding_registers(UNIT, 0, 1).await.unwrap(), [777]);
    assert_eq!(hub.stats().cached_reads, answered);
    // Later the value comes from the cache again, as written.
    let mut tries = 0;
    while hub.stats().cached_reads == answered {
        tries += 1;
        assert!(tries < 500, "the cache never answered again");
        assert_eq!(cached.read_holding_registers(UNIT, 0, 1).await.unwrap(), [777]);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // The agent away: nothing is answered from what it reported.
    agent.shutdown();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let answered = hub.stats().cached_reads;
    assert!(cached.read_holding_registers(UNIT, 4, 2).await.is_err());
    assert_eq!(hub.stats().cached_reads, answered);
}

#[tokio::test]
async fn a_cache_older_than_its_groups_interval_answers_nothing() {
    let pki = Pki::new();
    let hub = deploy::hub(&pki, &[]).await;
    let (device, _model) = device().await;
    // Polled every 200 ms; the gateway wants values at most 100 ms old.
    let mut agent = agent(
        &pki,
        hub.local_addr(),
        device,
        vec![values_group(Duration::from_millis(200))],
        1 << 20,
    );
    agent.connected().await;
    let mut values = hub.subscribe(Filter::all());
    for _ in 0..8 {
        next(&mut values, Duration::from_secs(5)).await.expect("both snapshots");
    }
    let (_gateway, client) = gateway(&hub, Some(Duration::from_millis(100))).await;
    for _ in 0..20 {
        assert_eq!(client.read_holding_registers(UNIT, 4, 2).await.unwrap(), [4, 5]);
    }
    assert_eq!(hub.stats().cached_reads, 0);
}

#[cfg(feature = "spool")]
#[tokio::test]
async fn a_spool_that_cannot_be_opened_is_a_typed_error_at_build() {
    let pki = Pki::new();
    let address: SocketAddr = "127.0.0.1:9".parse().unwrap();
    let missing = std::env::temp_dir().join(format!("outpost-no-such-dir-{}", std::process::id()));
    let built = builder(
        &pki,
        address,
        address,
        vec![counter_group(Duration::from_secs(1))],
        1 << 20,
    )
    .spool(missing.join("samples.redb"))
    .build();
    let error = built.unwrap_err();
    assert!(error.to_string().contains("samples.redb"), "{error}");
    match &error {
        AgentError::Spool(e) => assert!(!e.is_in_use(), "{e}"),
        other => panic!("{other}"),
    }
}

#[tokio::test]
async fn scan_groups_of_no_device_or_named_twice_are_refused_at_build() {
    let pki = Pki::new();
    let address: SocketAddr = "127.0.0.1:9".parse().unwrap();
    let stray = GroupSpec::new("stray", UNIT, Duration::from_secs(1))
        .device("plc-9")
        .point(PointSpec::new("p", point(Table::Coils, 0, Encoding::Bit)));
    let error = builder(&pki, address, address, vec![stray], 1 << 20)
        .build()
        .unwrap_err();
    assert!(error.to_string().contains("plc-9"), "{error}");
    let twice = vec![
        counter_group(Duration::from_secs(1)),
        counter_group(Duration::from_secs(2)),
    ];
    let error = builder(&pki, address, address, twice, 1 << 20).build().unwrap_err();
    assert!(error.to_string().contains("twice"), "{error}");
}
