//! Attackers before authentication cannot keep agents out: stalled TLS
//! handshakes from many addresses, and clients that keep failing from the
//! agent's own address (a shared NAT). Source addresses come from
//! 127.0.0.0/8; every loop is bounded.

mod common;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::deploy::*;
use common::pki::{Pki, HUB_NAME};
use outpost_tunnel_proto::{AgentId, Secret};
use outpost_tunnel_tokio::agent::{Agent, RunningAgent};
use outpost_tunnel_tokio::hub::{Hub, HubEvent};
use outpost_tunnel_tokio::tls::AgentTls;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// A TCP connection to `hub` from `source`.
async fn connect_from(source: IpAddr, hub: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(source, 0))?;
    socket.connect(hub).await
}

/// A real ClientHello, as an agent would start.
fn client_hello(pki: &Pki) -> Vec<u8> {
    let tls = pki.agent_tls(AGENT, 99);
    let name = rustls::pki_types::ServerName::try_from(HUB_NAME).unwrap();
    let mut conn = rustls::ClientConnection::new(tls.config(), name).unwrap();
    let mut hello = Vec::new();
    conn.write_tls(&mut hello).unwrap();
    hello
}

/// Connections from `sources` that send a ClientHello and never go on.
async fn stall(pki: &Pki, hub: SocketAddr, sources: &[IpAddr], per_source: usize) -> Vec<TcpStream> {
    let hello = client_hello(pki);
    let mut stalled = Vec::new();
    for source in sources {
        for _ in 0..per_source {
            let mut stream = connect_from(*source, hub).await.unwrap();
            stream.write_all(&hello).await.unwrap();
            stalled.push(stream);
        }
    }
    stalled
}

/// Whether the hub closes `stream` within `limit` (what it sends meanwhile
/// is read and dropped).
async fn closed_within(stream: &mut TcpStream, limit: Duration) -> bool {
    let mut buf = vec![0u8; 16 * 1024];
    tokio::time::timeout(limit, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .is_ok()
}

/// How long the agent takes to get a session, at most `limit`.
async fn time_to_connect(hub: &Hub, agent: &mut RunningAgent, limit: Duration) -> Duration {
    let started = Instant::now();
    tokio::time::timeout(limit, agent.connected())
        .await
        .unwrap_or_else(|_| panic!("the agent was kept out for {limit:?}: {:?}", hub.stats()));
    started.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_stalled_handshakes_from_a_hundred_addresses_do_not_keep_an_agent_out() {
    let pki = Pki::new();
    let hub = hub(&pki, &[]).await;
    let device = device().await;
    let sources: Vec<IpAddr> = (2..102u8).map(|n| IpAddr::from([127, 0, 0, n])).collect();
    let stalled = stall(&pki, hub.local_addr(), &sources, 2).await;
    assert_eq!(stalled.len(), 200);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut agent = agent(&pki, &hub, device, AGENT, SECRET);
    let took = time_to_connect(&hub, &mut agent, Duration::from_secs(2)).await;
    assert!(hub.stats().handshakes <= 64, "{:?}", hub.stats());
    eprintln!("agent connected {took:?} after 200 stalled handshakes from 100 addresses");
    drop(stalled);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_handshakes_from_the_agents_own_address_do_not_keep_it_out() {
    let pki = Pki::new();
    let hub = hub(&pki, &[]).await;
    let device = device().await;
    let stalled = stall(&pki, hub.local_addr(), &[IpAddr::from([127, 0, 0, 1])], 20).await;
    let mut agent = agent(&pki, &hub, device, AGENT, SECRET);
    time_to_connect(&hub, &mut agent, Duration::from_secs(2)).await;
    drop(stalled);
}

/// Agents that keep failing: each dials with `tls`, claims `id` with a
/// secret the hub does not know, and retries within 20-200 ms.
fn failing_agents(hub: SocketAddr, tls: impl Fn(u64) -> AgentTls) -> Vec<RunningAgent> {
    (0..10u64)
        .map(|i| {
            Agent::builder()
                .hub(hub.to_string())
                .tls(tls(i))
                .identity(
                    AgentId::new(AGENT).unwrap(),
                    Secret::new(b"not the secret, not the secret!!").unwrap(),
                )
                .backoff(Duration::from_millis(20), Duration::from_millis(200))
                .build()
                .unwrap()
                .spawn()
        })
        .collect()
}

/// Waits for `n` rejections (at most 10 s).
async fn rejections(events: &mut tokio::sync::broadcast::Receiver<HubEvent>, n: usize) {
    let mut seen = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while seen < n {
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Ok(Ok(HubEvent::Rejected { .. })) => seen += 1,
            Ok(Ok(_)) | Ok(Err(tokio::sync::broadcast::error::RecvError::Lagged(_))) => {}
            Ok(Err(_)) | Err(_) => panic!("only {seen} rejections"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_clients_failing_tls_on_the_agents_address_do_not_keep_it_out() {
    let pki = Pki::new();
    let foreign = Pki::new();
    let hub = hub(&pki, &[]).await;
    let device = device().await;
    let mut events = hub.events();
    // Certificates from a CA the hub does not trust: refused in TLS, so
    // their failures count against their (and the agent's) address.
    let failing = failing_agents(hub.local_addr(), |i| {
        let (chain, key) = foreign.agent_ca.leaf(AGENT, true, 100 + i);
        AgentTls::new(chain, key, &[pki.hub_ca.der()], HUB_NAME).unwrap()
    });
    // Past the address's failure limit (10) first.
    rejections(&mut events, 20).await;
    let mut agent = agent(&pki, &hub, device, AGENT, SECRET);
    let took = time_to_connect(&hub, &mut agent, Duration::from_secs(2)).await;
    eprintln!("agent connected {took:?} beside 10 clients failing TLS on its address");
    drop(failing);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_clients_failing_authentication_on_the_agents_address_do_not_keep_it_out() {
    let pki = Pki::new();
    let hub = hub(&pki, &[]).await;
    let device = device().await;
    let mut events = hub.events();
    // Certificates the hub trusts, naming another agent whose secret they
    // do not have: their failures count against that identity.
    let failing = failing_agents(hub.local_addr(), |i| pki.agent_tls("plant-8", 200 + i));
    rejections(&mut events, 20).await;
    let mut agent = agent(&pki, &hub, device, AGENT, SECRET);
    let took = time_to_connect(&hub, &mut agent, Duration::from_secs(2)).await;
    eprintln!("agent connected {took:?} beside 10 clients failing authentication on its address");
    drop(failing);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_tls_handshake_is_closed_at_the_tls_deadline() {
    let pki = Pki::new();
    let hub = Hub::builder()
        .tls(pki.hub_tls(&[]))
        .credentials(Arc::new(credentials()))
        .tls_timeout(Duration::from_millis(200))
        .start()
        .await
        .unwrap();
    let mut stalled = stall(&pki, hub.local_addr(), &[IpAddr::from([127, 0, 0, 3])], 1).await;
    let started = Instant::now();
    // The hub answers the hello, then closes when the deadline passes.
    assert!(
        closed_within(&mut stalled[0], Duration::from_secs(5)).await,
        "never closed"
    );
    assert!(started.elapsed() >= Duration::from_millis(150));
    assert_eq!(hub.stats().handshakes, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_table_closes_the_oldest_unfinished_handshake() {
    let pki = Pki::new();
    let hub = Hub::builder()
        .tls(pki.hub_tls(&[]))
        .credentials(Arc::new(credentials()))
        .max_handshakes(2)
        .start()
        .await
        .unwrap();
    let sources = [IpAddr::from([127, 0, 0, 4]), IpAddr::from([127, 0, 0, 5])];
    let mut stalled = stall(&pki, hub.local_addr(), &sources, 1).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let _third = stall(&pki, hub.local_addr(), &[IpAddr::from([127, 0, 0, 6])], 1).await;
    // The oldest (from .4) is closed; the second is not.
    assert!(
        closed_within(&mut stalled[0], Duration::from_secs(2)).await,
        "the oldest was not closed"
    );
    assert!(
        !closed_within(&mut stalled[1], Duration::from_millis(300)).await,
        "the second was closed too"
    );
    assert!(hub.stats().handshakes <= 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_honest_agents_is_queued_not_cut_short() {
    // 40 agents from 40 addresses start at once against a table of 4: the
    // hub takes them four at a time and lets each finish; none is cut
    // short to make room for the next, so each gets in on its first try.
    let pki = Pki::new();
    let mut secrets = outpost_tunnel_proto::MemoryCredentials::new();
    let names: Vec<String> = (0..40).map(|n| format!("burst-{n}")).collect();
    for name in &names {
        secrets.insert(AgentId::new(name).unwrap(), Secret::new(SECRET).unwrap());
    }
    let hub = Hub::builder()
        .tls(pki.hub_tls(&[]))
        .credentials(Arc::new(secrets))
        .max_handshakes(4)
        // Generous, so a slow machine's handshakes are never old enough
        // to be cut: what is checked is that young ones are not.
        .handshake_grace(Duration::from_secs(5))
        .start()
        .await
        .unwrap();
    let mut agents: Vec<RunningAgent> = names
        .iter()
        .enumerate()
        .map(|(n, name)| {
            Agent::builder()
                .hub(hub.local_addr().to_string())
                .tls(pki.agent_tls(name, 300 + n as u64))
                .identity(AgentId::new(name).unwrap(), Secret::new(SECRET).unwrap())
                .local_address(IpAddr::from([127, 0, 1, n as u8 + 1]))
                .build()
                .unwrap()
                .spawn()
        })
        .collect();
    for agent in &mut agents {
        time_to_connect(&hub, agent, Duration::from_secs(30)).await;
    }
    let attempts: u64 = agents.iter().map(|a| a.stats().connects).sum();
    assert_eq!(attempts, 40, "every agent got in on its first attempt");
    assert_eq!(hub.stats().rejected, 0);
    assert!(hub.stats().connections <= 40);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_dials_from_its_local_address() {
    let pki = Pki::new();
    let hub = hub(&pki, &[]).await;
    let mut events = hub.events();
    let local = IpAddr::from([127, 0, 0, 9]);
    let _agent = Agent::builder()
        .hub(hub.local_addr().to_string())
        .tls(pki.agent_tls(AGENT, 7))
        .identity(AgentId::new(AGENT).unwrap(), Secret::new(SECRET).unwrap())
        .local_address(local)
        .build()
        .unwrap()
        .spawn();
    let peer = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Ok(HubEvent::Connected { peer, .. }) = events.recv().await {
                return peer;
            }
        }
    })
    .await
    .expect("the agent connected");
    assert_eq!(peer.ip(), local);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_whose_local_address_cannot_reach_the_hub_keeps_trying() {
    // An IPv6 local address and an IPv4-only hub: no address to dial; the
    // agent says so and tries again, it does not dial from elsewhere.
    let pki = Pki::new();
    let hub = hub(&pki, &[]).await;
    let agent = Agent::builder()
        .hub(hub.local_addr().to_string())
        .tls(pki.agent_tls(AGENT, 7))
        .identity(AgentId::new(AGENT).unwrap(), Secret::new(SECRET).unwrap())
        .local_address(IpAddr::from(std::net::Ipv6Addr::LOCALHOST))
        .backoff(Duration::from_millis(10), Duration::from_millis(20))
        .build()
        .unwrap()
        .spawn();
    let deadline = Instant::now() + Duration::from_secs(10);
    while agent.stats().connects < 3 {
        assert!(Instant::now() < deadline, "the agent stopped trying");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(!agent.is_connected());
    assert_eq!(hub.stats().connections, 0);
}
