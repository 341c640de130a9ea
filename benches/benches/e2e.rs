//! Round trips on loopback: reading 10 holding registers directly from a
//! Modbus TCP server, and through the tunnel (hub API, and a Modbus TCP
//! client through the hub's gateway), TLS 1.3 included. tokio-modbus's TCP
//! client against the same server is the reference a user would otherwise
//! pick for the direct case.
//!
//! `cargo bench -p outpost-benches --bench e2e`

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use outpost_modbus_core::access::Policy;
use outpost_modbus_core::server::DataModel;
use outpost_modbus_core::{ExceptionCode, RegisterRange, UnitId};
use outpost_tunnel_proto::{AgentId, MemoryCredentials, Secret};
use outpost_tunnel_tokio::agent::{Agent, Device, RunningAgent};
use outpost_tunnel_tokio::binding::Role;
use outpost_tunnel_tokio::hub::{Gateway, GatewayBuilder, Hub, RemoteClient, Route};
use outpost_tunnel_tokio::modbus::{Client, Requests, Server};
use outpost_tunnel_tokio::tls::{AgentTls, HubTls};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, ExtendedKeyUsagePurpose, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::runtime::Runtime;

struct Registers;

impl DataModel for Registers {
    fn read_holding_registers(&mut self, range: RegisterRange, out: &mut [u16]) -> Result<(), ExceptionCode> {
        for (i, o) in out.iter_mut().enumerate() {
            *o = range.start().wrapping_add(i as u16);
        }
        Ok(())
    }
}

fn ca() -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
}

fn leaf(
    ca: &CertifiedIssuer<'static, KeyPair>,
    name: &str,
    client: bool,
) -> (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec![name.to_owned()]).unwrap();
    params.extended_key_usages = vec![if client {
        ExtendedKeyUsagePurpose::ClientAuth
    } else {
        ExtendedKeyUsagePurpose::ServerAuth
    }];
    let cert = params.signed_by(&key, ca).unwrap();
    (
        vec![cert.der().clone()],
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
    )
}

struct Setup {
    device: SocketAddr,
    _hub: Hub,
    _agent: RunningAgent,
    remote: RemoteClient,
    gateway: Gateway,
}

async fn setup() -> Setup {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let device = listener.local_addr().unwrap();
    tokio::spawn(Server::builder().serve(listener, Arc::new(Mutex::new(Registers))));
    let (hub_ca, agent_ca) = (ca(), ca());
    let (hub_chain, hub_key) = leaf(&hub_ca, "hub.bench", false);
    let (agent_chain, agent_key) = leaf(&agent_ca, "plant-7", true);
    let secret = Secret::new(b"0123456789abcdef0123456789abcdef").unwrap();
    let mut credentials = MemoryCredentials::new();
    credentials.insert(AgentId::new("plant-7").unwrap(), secret.clone());
    let hub = Hub::builder()
        .tls(HubTls::new(hub_chain, hub_key, &[agent_ca.der().clone()], Vec::new()).unwrap())
        .credentials(Arc::new(credentials))
        .start()
        .await
        .unwrap();
    let policy: Policy = toml::from_str(
        "[roles.bench]\nunits = [1]\nfunctions = [\"read\"]\nholding_registers = { read = [[0, 999]] }\n",
    )
    .unwrap();
    let mut agent = Agent::builder()
        .hub(hub.local_addr().to_string())
        .tls(AgentTls::new(agent_chain, agent_key, &[hub_ca.der().clone()], "hub.bench").unwrap())
        .identity(AgentId::new("plant-7").unwrap(), secret)
        .policy(policy)
        .device(Device::tcp("plc", &device.to_string()).units([UnitId(1)]))
        .build()
        .unwrap()
        .spawn();
    agent.connected().await;
    let remote = hub
        .wait_for_agent("plant-7", Duration::from_secs(5))
        .await
        .unwrap()
        .modbus("plc", Role::new("bench").unwrap());
    let gateway = hub
        .gateway(
            GatewayBuilder::new("127.0.0.1:0".parse().unwrap(), Role::new("bench").unwrap())
                .route_all(Route::new(AgentId::new("plant-7").unwrap(), "plc")),
        )
        .await
        .unwrap();
    Setup {
        device,
        _hub: hub,
        _agent: agent,
        remote,
        gateway,
    }
}

fn round_trips(c: &mut Criterion) {
    let rt = Runtime::new().unwrap();
    let s = rt.block_on(setup());
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
