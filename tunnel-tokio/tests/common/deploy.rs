//! A deployment on loopback: a device, a hub, an agent.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use outpost_modbus_core::access::Policy;
use outpost_modbus_core::UnitId;
use outpost_tunnel_proto::{AgentId, MemoryCredentials, Secret};
use outpost_tunnel_tokio::agent::{Agent, Device, RunningAgent};
use outpost_tunnel_tokio::hub::Hub;
use outpost_tunnel_tokio::modbus::Server;
use tokio::net::TcpListener;

use super::pki::Pki;

pub(crate) const AGENT: &str = "plant-7";
pub(crate) const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";
pub(crate) const UNIT: UnitId = UnitId(1);

pub(crate) fn policy() -> Policy {
    toml::from_str(
        r#"
        [roles.operator]
        units = [1]
        functions = ["read", "write"]
        coils = { read = [[0, 99]], write = [[0, 99]] }
        discrete_inputs = { read = [[0, 99]] }
        holding_registers = { read = [[0, 199]], write = [[0, 49]] }
        input_registers = { read = [[0, 99]] }

        [roles.viewer]
        units = [1]
        functions = ["read"]
        holding_registers = { read = [[0, 9]] }
        "#,
    )
    .unwrap()
}

pub(crate) fn credentials() -> MemoryCredentials {
    let mut store = MemoryCredentials::new();
    store.insert(AgentId::new(AGENT).unwrap(), Secret::new(SECRET).unwrap());
    store
}

pub(crate) async fn device() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(Server::builder().serve(listener, super::shared()));
    addr
}

pub(crate) fn agent(pki: &Pki, hub: &Hub, device: SocketAddr, name: &str, secret: &[u8]) -> RunningAgent {
    agent_to(pki, hub.local_addr(), device, name, secret)
}

/// An agent dialing `hub`.
pub(crate) fn agent_to(pki: &Pki, hub: SocketAddr, device: SocketAddr, name: &str, secret: &[u8]) -> RunningAgent {
    Agent::builder()
        .hub(hub.to_string())
        .tls(pki.agent_tls(name, 7))
        .identity(AgentId::new(name).unwrap(), Secret::new(secret).unwrap())
        .policy(policy())
        .device(Device::tcp("plc-1", &device.to_string()).units([UNIT]))
        .backoff(Duration::from_millis(20), Duration::from_millis(200))
        .build()
        .unwrap()
        .spawn()
}

pub(crate) async fn hub(pki: &Pki, revoked: &[u64]) -> Hub {
    hub_on(pki, revoked, SocketAddr::from(([127, 0, 0, 1], 0))).await
}

/// A hub listening on `listen`.
pub(crate) async fn hub_on(pki: &Pki, revoked: &[u64], listen: SocketAddr) -> Hub {
    Hub::builder()
        .listen(listen)
        .tls(pki.hub_tls(revoked))
        .credentials(Arc::new(credentials()))
        .start()
        .await
        .unwrap()
}

/// A hub with a connected agent serving a device (the tests' usual start).
pub(crate) async fn connected(pki: &Pki) -> (Hub, RunningAgent) {
    let hub = hub(pki, &[]).await;
    let device = device().await;
    let mut agent = agent(pki, &hub, device, AGENT, SECRET);
    agent.connected().await;
    hub.wait_for_agent(AGENT, Duration::from_secs(5)).await.unwrap();
    (hub, agent)
}

/// Waits until `agent` has taken `n` requests from the hub in all: they
/// are in its hands (sent, as the hub sees them), not on the way.
pub(crate) async fn taken(agent: &RunningAgent, n: u64) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while agent.stats().requests < n {
        assert!(
            std::time::Instant::now() < deadline,
            "the agent took {} requests of {n}",
            agent.stats().requests
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}
