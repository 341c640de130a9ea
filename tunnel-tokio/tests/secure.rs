//! Modbus/TCP Security on 127.0.0.1: clients whose certificates carry a
//! role reach the device through the hub's secure gateway, the agent's
//! policy deciding for that role (exception 01 where it denies); clients
//! without exactly one usable role, from another CA, or revoked, are
//! refused in the TLS handshake; the standalone secure server asks its
//! authorization hook before the data model; stalled handshakes do not
//! keep clients out.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use common::deploy::*;
use common::pki::{der, utf8_role, Ca, Pki, HUB_NAME};
use outpost_modbus_core::access::Denial;
use outpost_modbus_core::{ExceptionCode, FunctionClass, Request, UnitId};
use outpost_tunnel_proto::AgentId;
use outpost_tunnel_tokio::hub::{Gateway, GatewayBuilder, Hub, Route};
use outpost_tunnel_tokio::modbus::{Client, ClientError, Requests};
use outpost_tunnel_tokio::security::{ClientIdentity, SecureClientTls, SecureServer, SecureServerTls};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The IT side's PKI: the hub's CA signs the gateway's certificate, a
/// client CA signs the IT clients'.
struct It {
    pki: Pki,
    clients: Ca,
}

impl It {
    fn new() -> It {
        It {
            pki: Pki::new(),
            clients: Ca::new("Outpost test IT client CA"),
        }
    }

    fn server_tls(&self, revoked: &[u64]) -> SecureServerTls {
        let (chain, key) = self.pki.hub_ca.leaf(HUB_NAME, false, 2);
        let crls = if revoked.is_empty() {
            Vec::new()
        } else {
            vec![self.clients.crl(revoked)]
        };
        SecureServerTls::new(chain, key, &[self.clients.der()], crls).unwrap()
    }

    /// A client of CA `ca` whose certificate carries `roles` (DER values).
    fn client_of(&self, ca: &Ca, name: &str, roles: &[Vec<u8>], serial: u64) -> SecureClientTls {
        let (chain, key) = ca.client_with_roles(name, roles, serial);
        SecureClientTls::new(chain, key, &[self.pki.hub_ca.der()], HUB_NAME).unwrap()
    }

    fn client(&self, name: &str, role: &str, serial: u64) -> SecureClientTls {
        self.client_of(&self.clients, name, &[utf8_role(role)], serial)
    }
}

async fn secure_gateway(hub: &Hub, builder: GatewayBuilder) -> Gateway {
    let plant = AgentId::new(AGENT).unwrap();
    hub.gateway(builder.route_all(Route::new(plant, "plc-1")))
        .await
        .unwrap()
}

fn modbus(addr: SocketAddr, tls: SecureClientTls) -> Client {
    Client::tcp(addr.to_string())
        .tls(tls)
        .timeout(Duration::from_secs(5))
        .build()
}

fn is_exception(result: Result<impl std::fmt::Debug, ClientError>, code: ExceptionCode) -> bool {
    matches!(result, Err(ClientError::Exception(c)) if c == code)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn roles_from_certificates_are_decided_by_the_agents_policy() {
    let it = It::new();
    let (hub, agent) = connected(&it.pki).await;
    let gateway = secure_gateway(
        &hub,
        GatewayBuilder::secure("127.0.0.1:0".parse().unwrap(), it.server_tls(&[])),
    )
    .await;
    let addr = gateway.local_addr();

    // operator: writes where the agent's policy lets it (holding 0..=49).
    let operator = modbus(addr, it.client("scada-operator", "operator", 10));
    operator.write_single_register(UNIT, 5, 555).await.unwrap();
    assert_eq!(operator.read_holding_registers(UNIT, 4, 3).await.unwrap(), [4, 555, 6]);
    operator.write_single_coil(UNIT, 3, true).await.unwrap();
    // Elsewhere the agent denies it (an address rule: 02 on a plain
    // gateway) and Modbus/TCP Security answers 01.
    assert!(is_exception(
        operator.write_single_register(UNIT, 70, 1).await,
        ExceptionCode::IllegalFunction
    ));
    assert_eq!(
        operator.read_holding_registers(UNIT, 70, 1).await.unwrap(),
        [70],
        "not written"
    );

    // viewer: reads only (holding 0..=9), nothing else.
    let viewer = modbus(addr, it.client("historian", "viewer", 11));
    assert_eq!(viewer.read_holding_registers(UNIT, 4, 3).await.unwrap(), [4, 555, 6]);
    for denied in [
        viewer.write_single_register(UNIT, 5, 1).await.map(|_| ()),
        viewer.write_single_coil(UNIT, 3, false).await.map(|_| ()),
        viewer.read_holding_registers(UNIT, 20, 1).await.map(|_| ()),
        viewer.read_coils(UNIT, 0, 1).await.map(|_| ()),
    ] {
        assert!(is_exception(denied, ExceptionCode::IllegalFunction));
    }
    assert_eq!(operator.read_holding_registers(UNIT, 5, 1).await.unwrap(), [555]);
    assert_eq!(operator.read_coils(UNIT, 3, 1).await.unwrap(), [true]);

    // A role the agent's policy does not know may do nothing.
    let stranger = modbus(addr, it.client("intruder", "engineer", 12));
    assert!(is_exception(
        stranger.read_holding_registers(UNIT, 0, 1).await,
        ExceptionCode::IllegalFunction
    ));
    // Every denial above was the agent's decision.
    assert_eq!(agent.stats().denials, 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_hub_may_pre_filter_with_its_own_copy_of_the_policy() {
    let it = It::new();
    let (hub, agent) = connected(&it.pki).await;
    let builder = GatewayBuilder::secure("127.0.0.1:0".parse().unwrap(), it.server_tls(&[])).policy(policy());
    let gateway = secure_gateway(&hub, builder).await;
    let viewer = modbus(gateway.local_addr(), it.client("historian", "viewer", 11));
    assert_eq!(viewer.read_holding_registers(UNIT, 0, 2).await.unwrap(), [0, 1]);
    assert!(is_exception(
        viewer.write_single_register(UNIT, 5, 1).await,
        ExceptionCode::IllegalFunction
    ));
    let stats = agent.stats();
    assert_eq!(
        stats.denials, 0,
        "the hub answered; the request never crossed the tunnel"
    );
    assert_eq!(stats.requests, 1);
}

/// The handshake's outcome as the client sees it, after one request:
/// `Ok` if the server answered.
async fn try_request(addr: SocketAddr, tls: SecureClientTls) -> Result<Vec<u16>, ClientError> {
    modbus(addr, tls).read_holding_registers(UNIT, 0, 1).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn certificates_without_one_usable_role_or_trust_are_refused_in_tls() {
    let it = It::new();
    let (hub, agent) = connected(&it.pki).await;
    let gateway = secure_gateway(
        &hub,
        GatewayBuilder::secure("127.0.0.1:0".parse().unwrap(), it.server_tls(&[66])),
    )
    .await;
    let addr = gateway.local_addr();
    assert_eq!(try_request(addr, it.client("good", "operator", 10)).await.unwrap(), [0]);
    let before = agent.stats().requests;

    let other_ca = Ca::new("Somebody else's CA");
    let refused = [
        ("no role", it.client_of(&it.clients, "no-role", &[], 20)),
        (
            "two roles",
            it.client_of(
                &it.clients,
                "two-roles",
                &[utf8_role("operator"), utf8_role("viewer")],
                21,
            ),
        ),
        (
            "a PrintableString role",
            it.client_of(&it.clients, "printable", &[der(0x13, b"operator")], 22),
        ),
        (
            "an INTEGER role",
            it.client_of(&it.clients, "integer", &[der(0x02, &[1])], 23),
        ),
        (
            "a UTF8String with trailing bytes",
            it.client_of(
                &it.clients,
                "trailing",
                &[[utf8_role("operator"), vec![0]].concat()],
                24,
            ),
        ),
        (
            "a role with a space",
            it.client_of(&it.clients, "spaced", &[utf8_role("shift lead")], 25),
        ),
        (
            "another CA",
            it.client_of(&other_ca, "stranger", &[utf8_role("operator")], 10),
        ),
        ("a revoked certificate", it.client("revoked", "operator", 66)),
    ];
    for (what, tls) in refused {
        let result = try_request(addr, tls).await;
        assert!(
            matches!(result, Err(ClientError::Connect(_) | ClientError::ConnectionLost(_))),
            "{what}: {result:?}"
        );
    }
    assert_eq!(
        agent.stats().requests,
        before,
        "no refused client's request reached the agent"
    );
    // The gateway still serves good clients.
    assert_eq!(try_request(addr, it.client("good", "operator", 10)).await.unwrap(), [0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stalled_handshakes_make_room_and_idle_clients_are_closed() {
    let it = It::new();
    let (hub, _agent) = connected(&it.pki).await;
    let builder = GatewayBuilder::secure("127.0.0.1:0".parse().unwrap(), it.server_tls(&[]))
        .tls_timeout(Duration::from_secs(60))
        .max_handshakes(8, 4)
        .idle_timeout(Duration::from_millis(300));
    let gateway = secure_gateway(&hub, builder).await;
    let addr = gateway.local_addr();
    // Twenty connections that never start TLS, all from this address.
    let mut stalled = Vec::new();
    for _ in 0..20 {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(&[0x16, 0x03, 0x01]).await.unwrap();
        stalled.push(s);
    }
    // A real client still gets in at once (the oldest stalled one makes
    // room), long before the 60 s TLS deadline.
    let started = std::time::Instant::now();
    let result = tokio::time::timeout(
        Duration::from_secs(10),
        try_request(addr, it.client("good", "operator", 10)),
    )
    .await
    .expect("not kept out by stalled handshakes");
    assert_eq!(result.unwrap(), [0]);
    assert!(started.elapsed() < Duration::from_secs(5));
    // The evicted stalled connections were closed.
    let mut closed = 0;
    for mut s in stalled {
        let mut byte = [0u8; 1];
        if let Ok(Ok(0) | Err(_)) = tokio::time::timeout(Duration::from_millis(50), s.read(&mut byte)).await {
            closed += 1;
        }
    }
    assert!(closed >= 16, "only {closed} stalled handshakes were closed");

    // An idle authenticated client is closed after the idle time.
    let tls = it.client("idle", "operator", 13);
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut stream = tokio_rustls::TlsConnector::from(tls.config())
        .connect(tls.server_name().clone(), tcp)
        .await
        .unwrap();
    let mut byte = [0u8; 1];
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut byte)).await;
    assert!(matches!(read, Ok(Ok(0) | Err(_))), "idle client not closed: {read:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_secure_server_asks_its_hook_before_the_data_model() {
    let it = It::new();
    let model = common::shared();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(SecureServer::builder(it.server_tls(&[]), policy()).serve(listener, Arc::clone(&model)));

    let operator = modbus(addr, it.client("scada-operator", "operator", 10));
    operator.write_single_register(UNIT, 5, 555).await.unwrap();
    assert!(is_exception(
        operator.write_single_register(UNIT, 70, 1).await,
        ExceptionCode::IllegalFunction
    ));
    let viewer = modbus(addr, it.client("historian", "viewer", 11));
    assert_eq!(viewer.read_holding_registers(UNIT, 5, 1).await.unwrap(), [555]);
    assert!(is_exception(
        viewer.write_single_register(UNIT, 5, 1).await,
        ExceptionCode::IllegalFunction
    ));
    // Unit 2 is not the viewer's: refused before the model.
    assert!(is_exception(
        viewer.read_holding_registers(UnitId(2), 0, 1).await,
        ExceptionCode::IllegalFunction
    ));
    {
        let m = model.lock().unwrap();
        assert_eq!(
            (m.holding[5], m.holding[70]),
            (555, 70),
            "denied writes never reached the model"
        );
    }
    assert!(try_request(addr, it.client_of(&it.clients, "no-role", &[], 20))
        .await
        .is_err());
    server.abort();

    // Any closure can decide: here, by certificate subject.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let only_alice = |client: &ClientIdentity, _: UnitId, request: &Request<'_>| {
        if client.subject.as_str() == "CN=alice" {
            Ok(())
        } else {
            Err(Denial::Function {
                function: request.function(),
                class: FunctionClass::Read,
            })
        }
    };
    let server = tokio::spawn(SecureServer::builder(it.server_tls(&[]), only_alice).serve(listener, common::shared()));
    assert_eq!(try_request(addr, it.client("alice", "viewer", 30)).await.unwrap(), [0]);
    assert!(is_exception(
        try_request(addr, it.client("bob", "viewer", 31)).await,
        ExceptionCode::IllegalFunction
    ));
    server.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_reload_closes_revoked_clients_and_keeps_the_others() {
    let it = It::new();
    let (hub, _agent) = connected(&it.pki).await;
    let gateway = secure_gateway(
        &hub,
        GatewayBuilder::secure("127.0.0.1:0".parse().unwrap(), it.server_tls(&[])),
    )
    .await;
    let addr = gateway.local_addr();
    let keeper = modbus(addr, it.client("keeper", "operator", 10));
    let leaver = modbus(addr, it.client("leaver", "operator", 11));
    assert_eq!(keeper.read_holding_registers(UNIT, 1, 1).await.unwrap(), [1]);
    assert_eq!(leaver.read_holding_registers(UNIT, 1, 1).await.unwrap(), [1]);

    // The client CA's new CRL revokes serial 11.
    let closed = gateway.reload(it.server_tls(&[11]));
    assert_eq!(closed.len(), 1, "{closed:?}");
    assert_eq!(keeper.read_holding_registers(UNIT, 2, 1).await.unwrap(), [2]);
    assert!(
        leaver.read_holding_registers(UNIT, 2, 1).await.is_err(),
        "closed, and refused on reconnect"
    );
    assert!(try_request(addr, it.client("leaver", "operator", 11)).await.is_err());
    // A plain gateway has nothing to reload.
    let plain = hub
        .gateway(GatewayBuilder::new(
            "127.0.0.1:0".parse().unwrap(),
            outpost_tunnel_tokio::binding::Role::new("operator").unwrap(),
        ))
        .await
        .unwrap();
    assert!(plain.reload(it.server_tls(&[])).is_empty());
}

#[test]
fn a_runtime_shut_down_while_secure_clients_connect_does_not_hang() {
    common::shut_down_while_dialed(|rt| {
        let it = It::new();
        rt.block_on(async {
            let hub = hub(&it.pki, &[]).await;
            let gateway = secure_gateway(
                &hub,
                GatewayBuilder::secure("127.0.0.1:0".parse().unwrap(), it.server_tls(&[])),
            )
            .await;
            (vec![gateway.local_addr()], (hub, gateway))
        })
    });
}
