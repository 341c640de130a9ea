//! The audit trail as an auditor reads it: allowed writes and denials with
//! their fields on target `outpost::audit`, and a source sending junk
//! summarised instead of flooding the trail.

mod common;

use std::collections::BTreeMap;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use common::deploy::*;
use common::pki::{utf8_role, Ca, Pki, HUB_NAME};
use outpost_tunnel_proto::AgentId;
use outpost_tunnel_tokio::binding::{Principal, Role};
use outpost_tunnel_tokio::hub::{GatewayBuilder, Route};
use outpost_tunnel_tokio::modbus::Client;
use outpost_tunnel_tokio::modbus::{ClientError, Requests};
use outpost_tunnel_tokio::security::{SecureClientTls, SecureServerTls};
use tokio::io::AsyncWriteExt;
use tracing::field::{Field, Visit};
use tracing::span;

type Fields = BTreeMap<String, String>;

/// Every audit event seen by this test binary.
fn trail() -> &'static Mutex<Vec<Fields>> {
    static TRAIL: OnceLock<Mutex<Vec<Fields>>> = OnceLock::new();
    TRAIL.get_or_init(|| {
        let _ = tracing::subscriber::set_global_default(Capture);
        Mutex::new(Vec::new())
    })
}

struct Capture;

struct Record(Fields);

impl Visit for Record {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
}

impl tracing::Subscriber for Capture {
    fn enabled(&self, metadata: &tracing::Metadata<'_>) -> bool {
        metadata.target() == "outpost::audit"
    }
    fn new_span(&self, _: &span::Attributes<'_>) -> span::Id {
        span::Id::from_u64(1)
    }
    fn record(&self, _: &span::Id, _: &span::Record<'_>) {}
    fn record_follows_from(&self, _: &span::Id, _: &span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        let mut record = Record(Fields::new());
        event.record(&mut record);
        trail().lock().unwrap().push(record.0);
    }
    fn enter(&self, _: &span::Id) {}
    fn exit(&self, _: &span::Id) {}
}

fn events(event: &str, field: &str, value: &str) -> Vec<Fields> {
    trail()
        .lock()
        .unwrap()
        .iter()
        .filter(|f| {
            f.get("event").map(String::as_str) == Some(event) && f.get(field).map(String::as_str) == Some(value)
        })
        .cloned()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_and_denials_are_audited_and_junk_is_summarised() {
    let _ = trail();
    let pki = Pki::new();
    let hub = hub(&pki, &[]).await;
    let device = device().await;
    let mut agent = agent(&pki, &hub, device, AGENT, SECRET);
    agent.connected().await;
    let plc = hub
        .wait_for_agent(AGENT, Duration::from_secs(5))
        .await
        .unwrap()
        .modbus_as(
            "plc-1",
            Role::new("operator").unwrap(),
            Principal::new("historian-3").unwrap(),
        );

    // An allowed write is an audit event with what it changed.
    plc.write_single_register(UNIT, 3, 33).await.unwrap();
    let allowed = events("request.allowed", "principal", "historian-3");
    assert_eq!(allowed.len(), 1, "{allowed:?}");
    let w = &allowed[0];
    for (field, value) in [
        ("role", "operator"),
        ("device", "plc-1"),
        ("unit", "1"),
        ("function", "6"),
        ("start", "3"),
        ("quantity", "1"),
        ("kind", "write"),
        ("agent", AGENT),
    ] {
        assert_eq!(w.get(field).map(String::as_str), Some(value), "{field} in {w:?}");
    }
    // Reads that are allowed are not.
    plc.read_holding_registers(UNIT, 0, 2).await.unwrap();
    assert_eq!(events("request.allowed", "principal", "historian-3").len(), 1);

    // A hundred denials from one source: the first few logged with the
    // rule that refused them, the rest counted for a summary.
    for _ in 0..100 {
        let e = plc.write_single_register(UNIT, 60, 1).await.unwrap_err();
        assert!(matches!(e, ClientError::Denied(_)), "{e}");
    }
    let denied = events("request.denied", "principal", "historian-3");
    assert_eq!(denied.len(), outpost_tunnel_tokio::audit::BURST as usize);
    assert!(
        denied[0].get("rule").is_some_and(|r| r.contains("60")),
        "{:?}",
        denied[0]
    );
    assert_eq!(denied[0].get("start").map(String::as_str), Some("60"));
    assert_eq!(denied[0].get("quantity").map(String::as_str), Some("1"));
    assert_eq!(agent.stats().denials, 100, "every denial is counted");

    // Junk from one address: a few lines, not one per connection.
    let before = events("agent.rejected", "event", "agent.rejected").len();
    for _ in 0..40 {
        let mut junk = tokio::net::TcpStream::connect(hub.local_addr()).await.unwrap();
        let _ = junk.write_all(b"GET / HTTP/1.1\r\n\r\n").await;
        let _ = junk.shutdown().await;
    }
    let mut rejected = 0;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        rejected = hub.stats().rejected;
        if rejected >= 40 {
            break;
        }
    }
    assert!(rejected >= 40, "{rejected}");
    let logged = events("agent.rejected", "event", "agent.rejected").len() - before;
    assert!(
        logged <= outpost_tunnel_tokio::audit::BURST as usize,
        "{logged} lines for 40 rejections"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secure_gateways_clients_are_named_by_their_certificates() {
    let _ = trail();
    let pki = Pki::new();
    let (hub, _agent) = connected(&pki).await;
    let clients = Ca::new("Outpost test IT client CA");
    let (chain, key) = pki.hub_ca.leaf(HUB_NAME, false, 2);
    let tls = SecureServerTls::new(chain, key, &[clients.der()], Vec::new()).unwrap();
    let gateway = hub
        .gateway(
            GatewayBuilder::secure("127.0.0.1:0".parse().unwrap(), tls)
                .route_all(Route::new(AgentId::new(AGENT).unwrap(), "plc-1")),
        )
        .await
        .unwrap();
    let client = |name: &str, roles: &[Vec<u8>], serial: u64| {
        let (chain, key) = clients.client_with_roles(name, roles, serial);
        let tls = SecureClientTls::new(chain, key, &[pki.hub_ca.der()], HUB_NAME).unwrap();
        Client::tcp(gateway.local_addr().to_string()).tls(tls).build()
    };

    let viewer = client("auditor", &[utf8_role("viewer")], 5);
    let e = viewer.write_single_register(UNIT, 7, 1).await.unwrap_err();
    assert!(matches!(e, ClientError::Exception(c) if c.value() == 1), "{e}");
    let accepted = events("gateway.accepted", "subject", "CN=auditor");
    assert_eq!(accepted.len(), 1, "{accepted:?}");
    assert_eq!(accepted[0].get("role").map(String::as_str), Some("viewer"));
    // The agent's decision names the certificate's role and subject, and
    // what the request asked for.
    let denied = events("request.denied", "principal", "CN=auditor");
    assert_eq!(denied.len(), 1, "{denied:?}");
    for (field, value) in [
        ("role", "viewer"),
        ("unit", "1"),
        ("function", "6"),
        ("start", "7"),
        ("quantity", "1"),
    ] {
        assert_eq!(
            denied[0].get(field).map(String::as_str),
            Some(value),
            "{field} in {:?}",
            denied[0]
        );
    }
    assert!(denied[0].contains_key("rule"));

    // A certificate without a role: refused in TLS, and the trail says why.
    let before = events("gateway.rejected", "event", "gateway.rejected").len();
    assert!(client("no-role", &[], 6)
        .read_holding_registers(UNIT, 0, 1)
        .await
        .is_err());
    // The client may see its handshake fail before the gateway's task has
    // written the line: wait for it, a bounded while.
    let mut rejected = Vec::new();
    for _ in 0..200 {
        rejected = events("gateway.rejected", "event", "gateway.rejected");
        if rejected.len() > before {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(rejected.len(), before + 1, "{rejected:?}");
    let reason = rejected
        .last()
        .and_then(|r| r.get("reason"))
        .cloned()
        .unwrap_or_default();
    assert!(reason.contains("role"), "{reason}");
}
