//! End to end on loopback with certificates made here: our Modbus server as
//! the device, an agent dialing a hub, and the hub's Rust API as the client.

mod common;

use std::time::Duration;

use common::deploy::*;
use common::pki::{Pki, HUB_NAME};
use outpost_modbus_core::{ExceptionCode, UnitId};
use outpost_tunnel_proto::{AgentId, Secret};
use outpost_tunnel_tokio::agent::Agent;
use outpost_tunnel_tokio::binding::Role;
use outpost_tunnel_tokio::hub::HubEvent;
use outpost_tunnel_tokio::modbus::{ClientError, Requests, Sent};
use outpost_tunnel_tokio::tls::AgentTls;

/// The reason of the next rejection the hub reports after this call.
fn next_rejection(events: &tokio::sync::broadcast::Receiver<HubEvent>) -> impl std::future::Future<Output = String> {
    let mut events = events.resubscribe();
    async move {
        loop {
            match tokio::time::timeout(Duration::from_secs(10), events.recv()).await {
                Ok(Ok(HubEvent::Rejected { reason, .. })) => return reason,
                Ok(Ok(HubEvent::Connected { agent, .. })) => panic!("{agent} was let in"),
                Ok(_) => {}
                Err(_) => panic!("no rejection"),
            }
        }
    }
}

/// An agent with `tls`, claiming to be `id`, and no devices.
fn bare_agent(
    hub: &outpost_tunnel_tokio::hub::Hub,
    tls: AgentTls,
    id: &str,
) -> outpost_tunnel_tokio::agent::RunningAgent {
    Agent::builder()
        .hub(hub.local_addr().to_string())
        .tls(tls)
        .identity(AgentId::new(id).unwrap(), Secret::new(SECRET).unwrap())
        .build()
        .unwrap()
        .spawn()
}

#[tokio::test]
async fn reads_and_writes_of_every_table_through_the_tunnel() {
    let pki = Pki::new();
    let hub = hub(&pki, &[]).await;
    let device = device().await;
    let mut agent = agent(&pki, &hub, device, AGENT, SECRET);
    tokio::time::timeout(Duration::from_secs(10), agent.connected())
        .await
        .unwrap();
    let plc = hub
        .wait_for_agent(AGENT, Duration::from_secs(5))
        .await
        .unwrap()
        .modbus("plc-1", Role::new("operator").unwrap());

    assert_eq!(plc.read_holding_registers(UNIT, 10, 3).await.unwrap(), [10, 11, 12]);
    assert_eq!(plc.read_input_registers(UNIT, 0, 2).await.unwrap(), [1000, 1001]);
    assert_eq!(
        plc.read_discrete_inputs(UNIT, 0, 4).await.unwrap(),
        [true, false, false, true]
    );
    plc.write_single_coil(UNIT, 5, true).await.unwrap();
    plc.write_multiple_coils(UNIT, 6, &[true, false, true]).await.unwrap();
    assert_eq!(
        plc.read_coils(UNIT, 4, 5).await.unwrap(),
        [false, true, true, false, true]
    );
    plc.write_single_register(UNIT, 0, 0xBEEF).await.unwrap();
    plc.write_multiple_registers(UNIT, 1, &[7, 8, 9]).await.unwrap();
    plc.mask_write_register(UNIT, 3, 0xFF00, 0x0012).await.unwrap();
    assert_eq!(
        plc.read_holding_registers(UNIT, 0, 4).await.unwrap(),
        [0xBEEF, 7, 8, 0x0012]
    );
    assert_eq!(
        plc.read_write_multiple_registers(UNIT, 40, 2, 40, &[4, 5])
            .await
            .unwrap(),
        [4, 5]
    );

    // The device's own exception comes back as it is.
    let err = plc.read_holding_registers(UNIT, 99, 2).await.unwrap_err();
    assert!(
        matches!(err, ClientError::Exception(ExceptionCode::IllegalDataAddress)),
        "{err}"
    );

    // The agent's policy: writes past the operator's span, anything for a
    // viewer but its reads, another unit, an unknown role.
    let err = plc.write_single_register(UNIT, 60, 1).await.unwrap_err();
    assert!(
        matches!(err, ClientError::Denied(ExceptionCode::IllegalDataAddress)),
        "{err}"
    );
    assert_eq!(err.delivery(), Sent::No);
    let viewer = hub.agent(AGENT).unwrap().modbus("plc-1", Role::new("viewer").unwrap());
    assert_eq!(viewer.read_holding_registers(UNIT, 0, 2).await.unwrap(), [0xBEEF, 7]);
    let err = viewer.write_single_register(UNIT, 0, 1).await.unwrap_err();
    assert!(
        matches!(err, ClientError::Denied(ExceptionCode::IllegalFunction)),
        "{err}"
    );
    let err = viewer.read_holding_registers(UNIT, 5, 10).await.unwrap_err();
    assert!(
        matches!(err, ClientError::Denied(ExceptionCode::IllegalDataAddress)),
        "{err}"
    );
    let err = plc.read_holding_registers(UnitId(2), 0, 1).await.unwrap_err();
    assert!(
        matches!(err, ClientError::Denied(ExceptionCode::GatewayPathUnavailable)),
        "{err}"
    );
    let stranger = hub.agent(AGENT).unwrap().modbus("plc-1", Role::new("admin").unwrap());
    let err = stranger.read_holding_registers(UNIT, 0, 1).await.unwrap_err();
    assert!(matches!(err, ClientError::Denied(_)), "{err}");
    // A device the agent does not have.
    let ghost = hub
        .agent(AGENT)
        .unwrap()
        .modbus("plc-9", Role::new("operator").unwrap());
    let err = ghost.read_holding_registers(UNIT, 0, 1).await.unwrap_err();
    assert!(matches!(err, ClientError::Refused(_)), "{err}");
    // The denied write never reached the device.
    assert_eq!(plc.read_holding_registers(UNIT, 0, 1).await.unwrap(), [0xBEEF]);

    let stats = agent.stats();
    assert_eq!(stats.denials, 5);
    assert!(stats.answered >= 12);
    assert_eq!(hub.stats().agents, 1);
    assert!(hub.stats().bytes_in > 0 && hub.stats().bytes_out > 0);
    assert!(
        stats.bytes_out >= hub.stats().bytes_in,
        "the hub read more than the agent wrote"
    );
}

#[tokio::test]
async fn wrong_ca_wrong_secret_mismatched_id_and_revoked_certificates_are_refused() {
    let pki = Pki::new();
    let hub = hub(&pki, &[66]).await;
    let device = device().await;
    let events = hub.events();
    // A certificate from another CA.
    let other = Pki::new();
    let wait = next_rejection(&events);
    let (chain, key) = other.agent_ca.leaf(AGENT, true, 7);
    let a = bare_agent(
        &hub,
        AgentTls::new(chain, key, &[pki.hub_ca.der()], HUB_NAME).unwrap(),
        AGENT,
    );
    let reason = wait.await;
    assert!(reason.contains("TLS"), "{reason}");
    drop(a);

    // The wrong secret.
    let wait = next_rejection(&events);
    let a = agent(&pki, &hub, device, AGENT, b"not the secret, but as long as one");
    let reason = wait.await;
    assert!(reason.contains("authentication failed"), "{reason}");
    drop(a);

    // A certificate for plant-7, claiming to be plant-8.
    let wait = next_rejection(&events);
    let a = bare_agent(&hub, pki.agent_tls(AGENT, 8), "plant-8");
    let reason = wait.await;
    assert!(reason.contains("authentication failed"), "{reason}");
    drop(a);

    // A revoked certificate (serial 66 is on the CRL).
    let wait = next_rejection(&events);
    let (chain, key) = pki.agent_ca.leaf(AGENT, true, 66);
    let a = bare_agent(
        &hub,
        AgentTls::new(chain, key, &[pki.hub_ca.der()], HUB_NAME).unwrap(),
        AGENT,
    );
    let reason = wait.await;
    assert!(reason.contains("TLS"), "{reason}");
    drop(a);

    assert!(hub.agents().is_empty());
    assert!(hub.stats().rejected >= 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newer_session_of_the_same_agent_supersedes_the_old_one() {
    let pki = Pki::new();
    let hub = hub(&pki, &[]).await;
    let device = device().await;
    let mut events = hub.events();
    let mut first = agent(&pki, &hub, device, AGENT, SECRET);
    first.connected().await;
    let old_peer = loop {
        match tokio::time::timeout(Duration::from_secs(5), events.recv())
            .await
            .unwrap()
            .unwrap()
        {
            HubEvent::Connected { peer, .. } => break peer,
            _ => continue,
        }
    };
    // The same agent again (say, after a restart the hub has not noticed).
    let mut second = agent(&pki, &hub, device, AGENT, SECRET);
    second.connected().await;
    let superseded = loop {
        match tokio::time::timeout(Duration::from_secs(5), events.recv())
            .await
            .unwrap()
            .unwrap()
        {
            HubEvent::Superseded { old_peer, .. } => break old_peer,
            _ => continue,
        }
    };
    assert_eq!(superseded, old_peer);
    assert_eq!(hub.agents().len(), 1);
    // Two live agents with one identity would take turns: stop the first.
    first.shutdown();
    second.connected().await;
    let plc = hub
        .wait_for_agent(AGENT, Duration::from_secs(5))
        .await
        .unwrap()
        .modbus("plc-1", Role::new("operator").unwrap());
    assert_eq!(plc.read_holding_registers(UNIT, 0, 1).await.unwrap(), [0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_refuses_a_hub_its_pinned_ca_did_not_sign() {
    let pki = Pki::new();
    let impostor = Pki::new();
    // A hub whose certificate comes from another CA (it trusts our agents).
    let (chain, key) = impostor.hub_ca.leaf(common::pki::HUB_NAME, false, 1);
    let hub = outpost_tunnel_tokio::hub::Hub::builder()
        .tls(outpost_tunnel_tokio::tls::HubTls::new(chain, key, &[pki.agent_ca.der()], Vec::new()).unwrap())
        .credentials(std::sync::Arc::new(credentials()))
        .start()
        .await
        .unwrap();
    let device = device().await;
    let agent = agent(&pki, &hub, device, AGENT, SECRET);
    for _ in 0..200 {
        if agent.stats().connects >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let stats = agent.stats();
    assert!(stats.connects >= 2, "the agent keeps trying: {stats:?}");
    assert_eq!(stats.sessions, 0);
    assert!(!agent.is_connected());
    assert!(hub.agents().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_agent_leaves_no_session_behind() {
    let pki = Pki::new();
    let hub = hub(&pki, &[]).await;
    let device = device().await;
    let mut events = hub.events();
    let mut agent = agent(&pki, &hub, device, AGENT, SECRET);
    agent.connected().await;
    hub.wait_for_agent(AGENT, Duration::from_secs(5)).await.unwrap();
    agent.shutdown();
    loop {
        match tokio::time::timeout(Duration::from_secs(5), events.recv())
            .await
            .unwrap()
            .unwrap()
        {
            HubEvent::Disconnected { agent, .. } => {
                assert_eq!(agent.as_str(), AGENT);
                break;
            }
            _ => continue,
        }
    }
    assert!(hub.agents().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_ids_from_certificates_compare_as_dns_names() {
    let pki = Pki::new();
    let hub = hub(&pki, &[]).await;
    let events = hub.events();
    // A certificate naming PLANT-7 certifies plant-7: DNS names have no case.
    let mut agent = bare_agent(&hub, pki.agent_tls("PLANT-7", 31), AGENT);
    tokio::time::timeout(Duration::from_secs(10), agent.connected())
        .await
        .expect("the agent got in");
    // The hub registers the session a moment after the agent sees it up.
    hub.wait_for_agent(AGENT, Duration::from_secs(5)).await.unwrap();
    assert_eq!(hub.agents(), [AgentId::new(AGENT).unwrap()]);
    drop(agent);
    // An agent that says its id in another case than the certificate's
    // lowercase form is refused.
    let wait = next_rejection(&events);
    let _shouting = bare_agent(&hub, pki.agent_tls("PLANT-7", 32), "PLANT-7");
    let reason = wait.await;
    assert!(reason.contains("authentication failed"), "{reason}");
}

/// Waits until `agent` has no session at the hub (at most 5 s).
async fn until_gone(hub: &outpost_tunnel_tokio::hub::Hub) {
    for _ in 0..250 {
        if hub.agents().is_empty() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the session stayed up");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_an_agent_in_the_credentials_closes_its_live_session() {
    use outpost_tunnel_tokio::hub::{FileCredentials, Hub, HubEvent};
    let pki = Pki::new();
    let dir = std::env::temp_dir().join(format!("outpost-revoke-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("credentials.toml");
    let secret: String = SECRET.iter().map(|b| format!("{b:02x}")).collect();
    let write = |text: &str| {
        std::fs::write(&path, text).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
    };
    write(&format!("[agents.{AGENT}]\nsecret = \"{secret}\"\n"));
    let credentials = std::sync::Arc::new(FileCredentials::load(&path).unwrap());
    let hub = Hub::builder()
        .tls(pki.hub_tls(&[]))
        .credentials(credentials.clone())
        .start()
        .await
        .unwrap();
    let mut events = hub.events();
    let device = device().await;
    let mut agent = agent(&pki, &hub, device, AGENT, SECRET);
    tokio::time::timeout(Duration::from_secs(10), agent.connected())
        .await
        .unwrap();
    hub.wait_for_agent(AGENT, Duration::from_secs(5)).await.unwrap();
    // Nothing changed: a reload closes nothing.
    assert!(hub.reload(None).is_empty());
    assert_eq!(hub.agents().len(), 1);
    // A file that does not parse keeps the old credentials.
    write("[agents");
    assert!(credentials.reload().is_err());
    assert!(hub.reload(None).is_empty());
    // Revoked: its live session is closed at once and it stays out.
    write(&format!("[agents.{AGENT}]\nrevoked = true\n"));
    credentials.reload().unwrap();
    assert_eq!(hub.reload(None), [AgentId::new(AGENT).unwrap()]);
    until_gone(&hub).await;
    let revoked = loop {
        match tokio::time::timeout(Duration::from_secs(5), events.recv())
            .await
            .unwrap()
        {
            Ok(HubEvent::Revoked { reason, .. }) => break reason,
            _ => continue,
        }
    };
    assert!(revoked.contains("revoked"), "{revoked}");
    let reason = next_rejection(&events).await;
    assert!(reason.contains("authentication failed"), "{reason}");
    assert!(hub.agents().is_empty());
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reloaded_crl_closes_the_session_of_the_certificate_it_revokes() {
    let pki = Pki::new();
    let hub = hub(&pki, &[]).await;
    let events = hub.events();
    let device = device().await;
    // The agents of these tests present serial 7.
    let mut agent = agent(&pki, &hub, device, AGENT, SECRET);
    tokio::time::timeout(Duration::from_secs(10), agent.connected())
        .await
        .unwrap();
    hub.wait_for_agent(AGENT, Duration::from_secs(5)).await.unwrap();
    assert!(hub.reload(Some(pki.hub_tls(&[99]))).is_empty(), "another serial");
    let wait = next_rejection(&events);
    assert_eq!(hub.reload(Some(pki.hub_tls(&[7]))), [AgentId::new(AGENT).unwrap()]);
    until_gone(&hub).await;
    let reason = wait.await;
    assert!(reason.to_lowercase().contains("revoked"), "{reason}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_crl_is_refused_unless_allowed() {
    use outpost_tunnel_tokio::tls::{ExpiredCrl, HubTls};
    let pki = Pki::new();
    let tls = |policy| {
        let (chain, key) = pki.hub_ca.leaf(common::pki::HUB_NAME, false, 1);
        HubTls::with_crl_policy(
            chain,
            key,
            &[pki.agent_ca.der()],
            vec![pki.agent_ca.crl_until(&[], 2025)],
            policy,
        )
        .unwrap()
    };
    let hub = outpost_tunnel_tokio::hub::Hub::builder()
        .tls(tls(ExpiredCrl::Refuse))
        .credentials(std::sync::Arc::new(credentials()))
        .start()
        .await
        .unwrap();
    let events = hub.events();
    let device = device().await;
    let wait = next_rejection(&events);
    let mut agent = agent(&pki, &hub, device, AGENT, SECRET);
    let reason = wait.await;
    assert!(reason.to_lowercase().contains("expired"), "{reason}");
    // Allowed explicitly, the same CRL lets the agent in.
    hub.reload(Some(tls(ExpiredCrl::Allow)));
    tokio::time::timeout(Duration::from_secs(10), agent.connected())
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_policy_decides_the_next_requests_without_a_reconnect() {
    let pki = Pki::new();
    let (hub, agent) = connected(&pki).await;
    let plc = hub
        .agent(AGENT)
        .unwrap()
        .modbus("plc-1", Role::new("operator").unwrap());
    plc.write_single_register(UNIT, 5, 55).await.unwrap();
    // The operator may now only read; a "maintenance" role appears.
    let stricter: outpost_modbus_core::access::Policy = toml::from_str(
        r#"
        [roles.operator]
        units = [1]
        functions = ["read"]
        holding_registers = { read = [[0, 99]] }

        [roles.viewer]
        units = [1]
        functions = ["read"]
        holding_registers = { read = [[0, 9]] }

        [roles.maintenance]
        units = [1]
        functions = ["read", "write"]
        holding_registers = { read = [[0, 99]], write = [[0, 99]] }
        "#,
    )
    .unwrap();
    let change = agent.set_policy(stricter);
    assert_eq!(change.added, ["maintenance"]);
    assert_eq!(change.changed, ["operator"]);
    assert!(change.removed.is_empty());
    let err = plc.write_single_register(UNIT, 5, 1).await.unwrap_err();
    assert!(matches!(err, ClientError::Denied(_)), "{err}");
    assert_eq!(plc.read_holding_registers(UNIT, 5, 1).await.unwrap(), [55]);
    assert_eq!(agent.stats().sessions, 1, "the same session");
}

/// A poller asking one request after the other as fast as answers come
/// back, from a task on a multi-threaded runtime: none of thousands may
/// stall. (Each answer's TLS records must be flushed: a record kept back
/// once held a request until its deadline.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_of_reads_one_after_the_other_never_stall() {
    let pki = Pki::new();
    let (hub, _agent) = connected(&pki).await;
    let plc = hub
        .wait_for_agent(AGENT, Duration::from_secs(5))
        .await
        .unwrap()
        .modbus("plc-1", Role::new("operator").unwrap());
    let poller = tokio::spawn(async move {
        for n in 0..5_000u32 {
            let started = std::time::Instant::now();
            if let Err(e) = plc.read_holding_registers(UNIT, 0, 10).await {
                panic!("read {n} failed after {:?}: {e}", started.elapsed());
            }
        }
    });
    tokio::time::timeout(Duration::from_secs(60), poller)
        .await
        .expect("5 000 reads within a minute")
        .unwrap();
}
