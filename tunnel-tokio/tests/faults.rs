//! Faults: the hub dies mid-request, the agent's session breaks under a
//! read and a write, a device dies or falls silent.

mod common;

use std::net::SocketAddr;
use std::sync::atomic::Ordering::SeqCst;
use std::time::Duration;

use common::deploy::*;
use common::pki::Pki;
use outpost_tunnel_tokio::binding::Role;
use outpost_tunnel_tokio::hub::Hub;
use outpost_tunnel_tokio::modbus::{ClientError, Requests, Sent};

fn operator() -> Role {
    Role::new("operator").unwrap()
}

/// Binds a hub on the address of one just dropped (its port may take a
/// moment to be released).
async fn hub_again(pki: &Pki, addr: SocketAddr) -> Hub {
    for _ in 0..100 {
        let hub = Hub::builder()
            .listen(addr)
            .tls(pki.hub_tls(&[]))
            .credentials(std::sync::Arc::new(credentials()))
            .start()
            .await;
        if let Ok(hub) = hub {
            return hub;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("could not listen on {addr} again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_hub_dies_mid_request_and_the_agent_comes_back() {
    let pki = Pki::new();
    let hub = hub(&pki, &[]).await;
    let addr = hub.local_addr();
    let (device, writes, _device_task) = common::slow_device(Duration::from_millis(400)).await;
    let mut agent = agent(&pki, &hub, device, AGENT, SECRET);
    agent.connected().await;
    let link = hub.wait_for_agent(AGENT, Duration::from_secs(5)).await.unwrap();
    let plc = link.modbus("plc-1", operator()).with_timeout(Duration::from_secs(2));

    let read = tokio::spawn({
        let plc = plc.clone();
        async move { plc.read_holding_registers(UNIT, 0, 2).await }
    });
    let write = tokio::spawn({
        let plc = plc.clone();
        async move { plc.write_single_register(UNIT, 3, 33).await }
    });
    taken(&agent, 2).await;
    drop(hub);

    // In flight when the hub went: the read fails (no agent to retry on
    // in time), the write's outcome is unknown.
    let err = read.await.unwrap().unwrap_err();
    assert!(matches!(err, ClientError::NoAgent(_)), "{err}");
    let err = write.await.unwrap().unwrap_err();
    assert!(matches!(err, ClientError::OutcomeUnknown), "{err}");
    assert_eq!(err.delivery(), Sent::Maybe);

    // The hub returns on its address; the agent reconnects by itself.
    let hub = hub_again(&pki, addr).await;
    let plc = hub
        .wait_for_agent(AGENT, Duration::from_secs(10))
        .await
        .unwrap()
        .modbus("plc-1", operator());
    assert_eq!(plc.read_holding_registers(UNIT, 0, 2).await.unwrap(), [0, 1]);
    assert!(agent.stats().sessions >= 2);
    // The write was sent at most once.
    assert!(writes.load(SeqCst) <= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_read_is_retried_once_after_reconnect_and_a_write_never() {
    let pki = Pki::new();
    let hub = hub(&pki, &[]).await;
    let (device, writes, _device_task) = common::slow_device(Duration::from_millis(300)).await;
    let mut first = agent(&pki, &hub, device, AGENT, SECRET);
    first.connected().await;
    let plc = hub
        .wait_for_agent(AGENT, Duration::from_secs(5))
        .await
        .unwrap()
        .modbus("plc-1", operator())
        .with_timeout(Duration::from_secs(5));

    let read = tokio::spawn({
        let plc = plc.clone();
        async move { plc.read_holding_registers(UNIT, 5, 2).await }
    });
    let write = tokio::spawn({
        let plc = plc.clone();
        async move { plc.write_single_register(UNIT, 4, 44).await }
    });
    taken(&first, 2).await;
    // The session breaks under both requests; a new one comes up.
    drop(first);
    let mut second = agent(&pki, &hub, device, AGENT, SECRET);
    second.connected().await;

    assert_eq!(read.await.unwrap().unwrap(), [5, 6]);
    let err = write.await.unwrap().unwrap_err();
    assert!(matches!(err, ClientError::OutcomeUnknown), "{err}");
    // Whatever happened to it, the write was never sent twice.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(writes.load(SeqCst) <= 1, "{} writes", writes.load(SeqCst));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_dead_or_silent_device_leaves_the_session_up() {
    let pki = Pki::new();
    let hub = hub(&pki, &[]).await;
    // A port nobody listens on: the device is down.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dead = closed.local_addr().unwrap();
    drop(closed);
    let mut agent = agent(&pki, &hub, dead, AGENT, SECRET);
    agent.connected().await;
    let plc = hub
        .wait_for_agent(AGENT, Duration::from_secs(5))
        .await
        .unwrap()
        .modbus("plc-1", operator());
    let err = plc.read_holding_registers(UNIT, 0, 1).await.unwrap_err();
    assert!(matches!(err, ClientError::Unreachable), "{err}");
    assert_eq!(err.delivery(), Sent::No);
    assert_eq!(hub.agents().len(), 1);

    // A device that accepts and never answers.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_addr = silent.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = silent.accept().await {
            held.push(s);
        }
    });
    drop(agent);
    let mut agent = agent_to(&pki, hub.local_addr(), silent_addr, AGENT, SECRET);
    agent.connected().await;
    let plc = hub
        .wait_for_agent(AGENT, Duration::from_secs(5))
        .await
        .unwrap()
        .modbus("plc-1", operator())
        .with_timeout(Duration::from_millis(1500));
    let err = plc.read_holding_registers(UNIT, 0, 1).await.unwrap_err();
    assert!(matches!(err, ClientError::Timeout), "{err}");
    let err = plc.write_single_register(UNIT, 0, 1).await.unwrap_err();
    assert!(matches!(err, ClientError::OutcomeUnknown), "{err}");
    assert_eq!(hub.agents().len(), 1);
    assert!(agent.is_connected());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_full_device_queue_answers_busy_and_sends_nothing() {
    use outpost_tunnel_proto::{AgentId, Secret};
    use outpost_tunnel_tokio::agent::{Agent, Device};
    let pki = Pki::new();
    let hub = hub(&pki, &[]).await;
    let (device, writes, _device_task) = common::slow_device(Duration::from_millis(300)).await;
    // One request at a time, none waiting.
    let mut agent = Agent::builder()
        .hub(hub.local_addr().to_string())
        .tls(pki.agent_tls(AGENT, 7))
        .identity(AgentId::new(AGENT).unwrap(), Secret::new(SECRET).unwrap())
        .policy(policy())
        .device(
            Device::tcp("plc-1", &device.to_string())
                .units([UNIT])
                .max_in_flight(1)
                .queue(0),
        )
        .build()
        .unwrap()
        .spawn();
    agent.connected().await;
    let plc = hub
        .wait_for_agent(AGENT, Duration::from_secs(5))
        .await
        .unwrap()
        .modbus("plc-1", operator());
    let first = tokio::spawn({
        let plc = plc.clone();
        async move { plc.read_holding_registers(UNIT, 0, 1).await }
    });
    taken(&agent, 1).await;
    let err = plc.write_single_register(UNIT, 1, 11).await.unwrap_err();
    assert!(matches!(err, ClientError::Busy), "{err}");
    assert_eq!(err.delivery(), Sent::No);
    assert_eq!(first.await.unwrap().unwrap(), [0]);
    assert_eq!(writes.load(SeqCst), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stopping_agent_finishes_what_is_in_service_and_says_why() {
    let pki = Pki::new();
    let hub = hub(&pki, &[]).await;
    let mut events = hub.events();
    let (device, writes, _device_task) = common::slow_device(Duration::from_millis(300)).await;
    let mut agent = agent(&pki, &hub, device, AGENT, SECRET);
    agent.connected().await;
    let plc = hub
        .wait_for_agent(AGENT, Duration::from_secs(5))
        .await
        .unwrap()
        .modbus("plc-1", operator());
    // A write in service when the stop comes.
    let write = tokio::spawn({
        let plc = plc.clone();
        async move { plc.write_single_register(UNIT, 3, 33).await }
    });
    taken(&agent, 1).await;
    let started = std::time::Instant::now();
    agent.stop(Duration::from_secs(5)).await;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "the stop waited only for the write"
    );
    write.await.unwrap().expect("the write in service got its answer");
    assert_eq!(writes.load(SeqCst), 1);
    // The hub saw a planned stop: GOAWAY, its channels closed as their
    // requests ended, then a clean close.
    let reason = loop {
        match tokio::time::timeout(Duration::from_secs(5), events.recv()).await {
            Ok(Ok(outpost_tunnel_tokio::hub::HubEvent::Disconnected { reason, .. })) => break reason,
            Ok(Ok(_)) => {}
            other => panic!("no disconnect: {other:?}"),
        }
    };
    assert!(reason.contains("NoError"), "{reason}");
    // And it does not come back.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(hub.agents().is_empty());
}
