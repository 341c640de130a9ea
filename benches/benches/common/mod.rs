//! What the end-to-end benchmarks share: a device, a hub with a gateway
//! and an agent on loopback, with certificates made in memory.

// Each benchmark uses part of what is shared.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use outpost_modbus_core::access::Policy;
use outpost_modbus_core::server::DataModel;
use outpost_modbus_core::{ExceptionCode, RegisterRange, UnitId};
use outpost_tunnel_proto::{AgentId, MemoryCredentials, Secret};
use outpost_tunnel_tokio::agent::{Agent, AgentBuilder, Device, RunningAgent};
use outpost_tunnel_tokio::binding::Role;
use outpost_tunnel_tokio::hub::{Gateway, GatewayBuilder, Hub, HubBuilder, RemoteClient, Route};
use outpost_tunnel_tokio::modbus::Server;
use outpost_tunnel_tokio::tls::{AgentTls, HubTls};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, ExtendedKeyUsagePurpose, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// Holding register n holds n.
pub(crate) struct Registers;

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

/// What the benchmarks talk to.
pub(crate) struct Setup {
    /// The Modbus TCP device.
    pub(crate) device: SocketAddr,
    /// The hub.
    pub(crate) hub: Hub,
    /// The agent.
    pub(crate) agent: RunningAgent,
    /// A hub API client of the device.
    pub(crate) remote: RemoteClient,
    /// The hub's Modbus TCP gateway to the device.
    pub(crate) gateway: Gateway,
    /// The hub's TLS settings (for measuring a TLS hop alone).
    pub(crate) hub_tls: HubTls,
    /// The agent's TLS settings.
    pub(crate) agent_tls: AgentTls,
}

/// A device, a hub with a gateway, and an agent serving the device with
/// up to `device_in_flight` requests at once.
pub(crate) async fn setup(device_in_flight: usize) -> Setup {
    setup_with(Registers, device_in_flight, |h| h, |a| a).await
}

/// A setup whose device is `model`, with the hub's and the agent's
/// settings changed by `hub` and `agent`.
pub(crate) async fn setup_with<M: DataModel + Send + 'static>(
    model: M,
    device_in_flight: usize,
    hub: impl FnOnce(HubBuilder) -> HubBuilder,
    agent: impl FnOnce(AgentBuilder) -> AgentBuilder,
) -> Setup {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let device = listener.local_addr().unwrap();
    tokio::spawn(
        Server::builder()
            .max_connections(256)
            .serve(listener, Arc::new(Mutex::new(model))),
    );
    let (hub_ca, agent_ca) = (ca(), ca());
    let (hub_chain, hub_key) = leaf(&hub_ca, "hub.bench", false);
    let (agent_chain, agent_key) = leaf(&agent_ca, "plant-7", true);
    let secret = Secret::new(b"0123456789abcdef0123456789abcdef").unwrap();
    let mut credentials = MemoryCredentials::new();
    credentials.insert(AgentId::new("plant-7").unwrap(), secret.clone());
    let hub_tls = HubTls::new(hub_chain, hub_key, &[agent_ca.der().clone()], Vec::new()).unwrap();
    let agent_tls = AgentTls::new(agent_chain, agent_key, &[hub_ca.der().clone()], "hub.bench").unwrap();
    let hub = hub(Hub::builder().tls(hub_tls.clone()).credentials(Arc::new(credentials)))
        .start()
        .await
        .unwrap();
    let policy: Policy = toml::from_str(
        "[roles.bench]\nunits = [1]\nfunctions = [\"read\"]\nholding_registers = { read = [[0, 999]] }\n",
    )
    .unwrap();
    let mut agent = agent(Agent::builder())
        .hub(hub.local_addr().to_string())
        .tls(agent_tls.clone())
        .identity(AgentId::new("plant-7").unwrap(), secret)
        .policy(policy)
        .device(
            Device::tcp("plc", &device.to_string())
                .units([UnitId(1)])
                .max_in_flight(device_in_flight),
        )
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
        hub,
        agent,
        remote,
        gateway,
        hub_tls,
        agent_tls,
    }
}

/// A TLS connection on loopback, made with the hub's and the agent's
/// settings, to a peer that answers every `request` bytes with `answer`
/// bytes: the tunnel's hop without the tunnel.
pub(crate) async fn tls_echo(
    s: &Setup,
    request: usize,
    answer: usize,
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(s.hub_tls.config());
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        tcp.set_nodelay(true).unwrap();
        let mut tls = acceptor.accept(tcp).await.unwrap();
        let (mut asked, reply) = (vec![0u8; request], vec![0u8; answer]);
        while tls.read_exact(&mut asked).await.is_ok() {
            if tls.write_all(&reply).await.is_err() || tls.flush().await.is_err() {
                break;
            }
        }
    });
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    tcp.set_nodelay(true).unwrap();
    let connector = tokio_rustls::TlsConnector::from(s.agent_tls.config());
    connector.connect(s.agent_tls.hub_name().clone(), tcp).await.unwrap()
}
