//! The gateway as plants use it: pollers that reconnect every cycle,
//! bursts of clients, idle clients, a device that answers what it was not
//! asked, and a hub that is dropped with everything it started. All on
//! loopback, every loop bounded.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::deploy::*;
use common::pki::Pki;
use outpost_modbus_core::frame::mbap;
use outpost_tunnel_proto::AgentId;
use outpost_tunnel_tokio::binding::Role;
use outpost_tunnel_tokio::hub::{Gateway, GatewayBuilder, Hub, Route};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A read of one holding register at `address`, as transaction `tid`.
fn read_frame(tid: u16, address: u16) -> [u8; 12] {
    let [th, tl] = tid.to_be_bytes();
    let [ah, al] = address.to_be_bytes();
    [th, tl, 0, 0, 0, 6, UNIT.0, 0x03, ah, al, 0, 1]
}

/// Sends a read and returns the answer's function code (0x83 for an
/// exception) and its first data byte (byte count or exception code).
async fn read(stream: &mut TcpStream, tid: u16, address: u16) -> (u8, u8) {
    stream.write_all(&read_frame(tid, address)).await.unwrap();
    let mut header = [0u8; mbap::HEADER_LEN];
    stream.read_exact(&mut header).await.unwrap();
    assert_eq!(u16::from_be_bytes([header[0], header[1]]), tid, "transaction id kept");
    let len = usize::from(u16::from_be_bytes([header[4], header[5]])) - 1;
    let mut pdu = vec![0u8; len];
    stream.read_exact(&mut pdu).await.unwrap();
    (pdu[0], pdu[1])
}

async fn gateway(hub: &Hub, configure: impl FnOnce(GatewayBuilder) -> GatewayBuilder) -> Gateway {
    let builder = GatewayBuilder::new("127.0.0.1:0".parse().unwrap(), Role::new("operator").unwrap())
        .route_all(Route::new(AgentId::new(AGENT).unwrap(), "plc-1"));
    hub.gateway(configure(builder)).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_short_connections_share_one_channel() {
    let pki = Pki::new();
    let (hub, agent) = connected(&pki).await;
    let gateway = gateway(&hub, |g| g).await;
    let mut most_channels = 0;
    for i in 0..10_000u16 {
        let mut client = TcpStream::connect(gateway.local_addr()).await.unwrap();
        let (function, count) = read(&mut client, i, i % 100).await;
        assert_eq!((function, count), (0x03, 2), "connection {i}");
        drop(client);
        most_channels = most_channels.max(hub.stats().channels);
    }
    assert_eq!(agent.stats().sessions, 1, "one agent session throughout");
    assert_eq!(most_channels, 1, "every connection shared one channel");
    assert_eq!(agent.stats().answered, 10_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_64_clients_at_default_settings_sees_no_exception() {
    let pki = Pki::new();
    let (hub, agent) = connected(&pki).await;
    let gateway = gateway(&hub, |g| g).await;
    let address = gateway.local_addr();
    let start = std::sync::Arc::new(tokio::sync::Barrier::new(64));
    let clients: Vec<_> = (0..64u16)
        .map(|c| {
            let start = std::sync::Arc::clone(&start);
            tokio::spawn(async move {
                let mut stream = TcpStream::connect(address).await.unwrap();
                start.wait().await;
                let mut exceptions = 0;
                for i in 0..200u16 {
                    let (function, _) = read(&mut stream, i, c).await;
                    if function != 0x03 {
                        exceptions += 1;
                    }
                }
                exceptions
            })
        })
        .collect();
    let mut exceptions = 0;
    for client in clients {
        exceptions += client.await.unwrap();
    }
    assert_eq!(exceptions, 0);
    assert_eq!(agent.stats().answered, 64 * 200);
    assert!(hub.stats().channels <= 1);
}

/// A Modbus TCP device that answers each request twice: once with a
/// transaction id it was never sent, then (never reached) correctly.
async fn confused_device() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut request = [0u8; 12];
                while stream.read_exact(&mut request).await.is_ok() {
                    let tid = u16::from_be_bytes([request[0], request[1]]).wrapping_add(1000);
                    let [th, tl] = tid.to_be_bytes();
                    let answer = [th, tl, 0, 0, 0, 5, request[6], 0x03, 2, 0, 42];
                    if stream.write_all(&answer).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    address
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_answering_the_wrong_transaction_gets_0b_at_once() {
    let pki = Pki::new();
    let hub = hub(&pki, &[]).await;
    let device = confused_device().await;
    // The device's timeout (1 s by default) is what the old behaviour waited for.
    let mut agent = agent(&pki, &hub, device, AGENT, SECRET);
    agent.connected().await;
    hub.wait_for_agent(AGENT, Duration::from_secs(5)).await.unwrap();
    let gateway = gateway(&hub, |g| g).await;
    let mut client = TcpStream::connect(gateway.local_addr()).await.unwrap();
    // The first read also opens the channel and connects to the device.
    let (function, code) = read(&mut client, 1, 0).await;
    assert_eq!((function, code), (0x83, 0x0B));
    let mut slowest = Duration::ZERO;
    for tid in 2..12 {
        let started = Instant::now();
        let (function, code) = read(&mut client, tid, 0).await;
        slowest = slowest.max(started.elapsed());
        assert_eq!((function, code), (0x83, 0x0B));
    }
    eprintln!("exception 0B for a wrong transaction id: slowest of 10 took {slowest:?}");
    assert!(
        slowest < Duration::from_millis(300),
        "0B took {slowest:?}, not a device timeout"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_clients_do_not_keep_a_new_one_out() {
    let pki = Pki::new();
    let (hub, _agent) = connected(&pki).await;
    let gateway = gateway(&hub, |g| g).await;
    let mut idle = Vec::new();
    for i in 0..64u16 {
        let mut stream = TcpStream::connect(gateway.local_addr()).await.unwrap();
        assert_eq!(read(&mut stream, i, 0).await.0, 0x03);
        idle.push(stream);
    }
    let mut late = TcpStream::connect(gateway.local_addr()).await.unwrap();
    assert_eq!(read(&mut late, 1, 0).await.0, 0x03, "the 65th is served");
    // The client idle longest made room: its stream ends.
    let mut buf = [0u8; 1];
    let n = tokio::time::timeout(Duration::from_secs(5), idle[0].read(&mut buf))
        .await
        .unwrap()
        .unwrap_or(0);
    assert_eq!(n, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_client_is_closed_after_the_idle_time() {
    let pki = Pki::new();
    let (hub, _agent) = connected(&pki).await;
    let gateway = gateway(&hub, |g| g.idle_timeout(Duration::from_millis(200))).await;
    let mut stream = TcpStream::connect(gateway.local_addr()).await.unwrap();
    assert_eq!(read(&mut stream, 1, 0).await.0, 0x03);
    let started = Instant::now();
    let mut buf = [0u8; 1];
    let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
        .await
        .unwrap()
        .unwrap_or(0);
    assert_eq!(n, 0);
    assert!(started.elapsed() >= Duration::from_millis(150));
}

#[test]
fn dropping_the_hub_ends_every_task_it_started() {
    // The plant side (device and agent) runs on a runtime of its own, so
    // the hub's runtime counts only the hub's tasks.
    let plant = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let it = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let pki = Pki::new();
    let baseline = it.metrics().num_alive_tasks();
    let (hub, gateway) = it.block_on(async {
        let hub = hub(&pki, &[]).await;
        let gateway = gateway(&hub, |g| g).await;
        (hub, gateway)
    });
    let device = plant.block_on(device());
    let mut agent = {
        let _plant = plant.enter();
        agent(&pki, &hub, device, AGENT, SECRET)
    };
    plant.block_on(agent.connected());
    let clients = it.block_on(async {
        hub.wait_for_agent(AGENT, Duration::from_secs(5)).await.unwrap();
        let mut clients = Vec::new();
        for i in 0..8u16 {
            let mut stream = TcpStream::connect(gateway.local_addr()).await.unwrap();
            assert_eq!(read(&mut stream, i, 0).await.0, 0x03);
            clients.push(stream);
        }
        clients
    });
    let running = it.metrics().num_alive_tasks();
    assert!(running >= baseline + 8, "the hub runs tasks: {running} over {baseline}");
    drop(gateway);
    drop(hub);
    let mut alive = running;
    for _ in 0..200 {
        it.block_on(async { tokio::time::sleep(Duration::from_millis(10)).await });
        alive = it.metrics().num_alive_tasks();
        if alive == baseline {
            break;
        }
    }
    assert_eq!(alive, baseline, "tasks of a dropped hub still alive");
    drop(clients);
    drop(agent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unused_channel_closes_and_reopens_on_demand() {
    let pki = Pki::new();
    let hub = Hub::builder()
        .tls(pki.hub_tls(&[]))
        .credentials(std::sync::Arc::new(credentials()))
        .channel_idle_timeout(Duration::from_millis(200))
        .start()
        .await
        .unwrap();
    let device = device().await;
    let mut agent = agent(&pki, &hub, device, AGENT, SECRET);
    agent.connected().await;
    hub.wait_for_agent(AGENT, Duration::from_secs(5)).await.unwrap();
    let gateway = gateway(&hub, |g| g).await;
    let mut client = TcpStream::connect(gateway.local_addr()).await.unwrap();
    assert_eq!(read(&mut client, 1, 0).await.0, 0x03);
    assert_eq!(hub.stats().channels, 1);
    let mut closed = false;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        if hub.stats().channels == 0 {
            closed = true;
            break;
        }
    }
    assert!(closed, "the unused channel was not closed");
    // The same client goes on: the channel opens again.
    assert_eq!(read(&mut client, 2, 0).await.0, 0x03);
    assert_eq!(hub.stats().channels, 1);
    assert_eq!(agent.stats().sessions, 1);
}

#[test]
fn a_runtime_shut_down_while_clients_connect_does_not_hang() {
    common::shut_down_while_dialed(|rt| {
        let pki = Pki::new();
        rt.block_on(async {
            let hub = hub(&pki, &[]).await;
            let gateway = gateway(&hub, |g| g).await;
            (vec![hub.local_addr(), gateway.local_addr()], (hub, gateway))
        })
    });
}
