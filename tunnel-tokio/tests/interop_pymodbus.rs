//! Interoperability with pymodbus, a Modbus stack nobody here wrote: as the
//! device behind the agent, and as a client of the hub's gateways (plain
//! Modbus TCP, and Modbus/TCP Security with a certificate carrying a role).
//!
//! Needs Python with pymodbus (`pip install -r tunnel-tokio/tests/interop/requirements.txt`;
//! CI does this in a virtualenv). `OUTPOST_PYTHON` names the interpreter
//! (default `python3`). Run with `--ignored`.

mod common;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::deploy::*;
use common::pki::{utf8_role, Ca, Pki};
use outpost_tunnel_proto::AgentId;
use outpost_tunnel_tokio::binding::Role;
use outpost_tunnel_tokio::hub::{GatewayBuilder, Route};
use outpost_tunnel_tokio::modbus::{ClientError, Requests};
use outpost_tunnel_tokio::security::SecureServerTls;

fn python() -> Command {
    let interpreter = std::env::var("OUTPOST_PYTHON").unwrap_or_else(|_| "python3".into());
    let mut cmd = Command::new(interpreter);
    cmd.arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/interop/pymodbus_peer.py"));
    cmd
}

struct Kill(Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs pymodbus: pip install -r tunnel-tokio/tests/interop/requirements.txt"]
async fn pymodbus_device_behind_the_agent() {
    let portfile = std::env::temp_dir().join(format!("outpost-pymodbus-port-{}", std::process::id()));
    let _ = std::fs::remove_file(&portfile);
    let _device = Kill(
        python()
            .args(["device", portfile.to_str().unwrap()])
            .stderr(Stdio::null())
            .spawn()
            .expect("python runs"),
    );
    let mut port = None;
    for _ in 0..300 {
        if let Ok(text) = std::fs::read_to_string(&portfile) {
            port = text.trim().parse::<u16>().ok();
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let port = port.expect("pymodbus device started");
    let _ = std::fs::remove_file(&portfile);

    let pki = Pki::new();
    let hub = hub(&pki, &[]).await;
    let mut agent = agent(&pki, &hub, ([127, 0, 0, 1], port).into(), AGENT, SECRET);
    agent.connected().await;
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
    plc.write_multiple_coils(UNIT, 5, &[true, false, true]).await.unwrap();
    plc.write_single_coil(UNIT, 9, true).await.unwrap();
    assert_eq!(
        plc.read_coils(UNIT, 4, 6).await.unwrap(),
        [false, true, false, true, false, true]
    );
    plc.write_multiple_registers(UNIT, 0, &[7, 8, 9]).await.unwrap();
    plc.write_single_register(UNIT, 3, 0xBEEF).await.unwrap();
    plc.mask_write_register(UNIT, 4, 0x00F0, 0x0005).await.unwrap();
    let values = plc.read_holding_registers(UNIT, 0, 5).await.unwrap();
    // Register 4 held 4: (4 AND 0x00F0) OR (0x0005 AND NOT 0x00F0) = 5.
    assert_eq!(values, [7, 8, 9, 0xBEEF, 5]);
    assert_eq!(
        plc.read_write_multiple_registers(UNIT, 20, 2, 20, &[1, 2])
            .await
            .unwrap(),
        [1, 2]
    );
    // pymodbus's own exception for an address past its table.
    let err = plc.read_holding_registers(UNIT, 150, 1).await.unwrap_err();
    assert!(matches!(err, ClientError::Exception(_)), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs pymodbus: pip install -r tunnel-tokio/tests/interop/requirements.txt"]
async fn pymodbus_client_through_the_gateway() {
    let pki = Pki::new();
    let hub = hub(&pki, &[]).await;
    let device = device().await;
    let mut agent = agent(&pki, &hub, device, AGENT, SECRET);
    agent.connected().await;
    hub.wait_for_agent(AGENT, Duration::from_secs(5)).await.unwrap();
    let gateway = hub
        .gateway(
            GatewayBuilder::new("127.0.0.1:0".parse().unwrap(), Role::new("operator").unwrap())
                .route_all(Route::new(AgentId::new(AGENT).unwrap(), "plc-1")),
        )
        .await
        .unwrap();
    let port = gateway.local_addr().port().to_string();
    let out = tokio::task::spawn_blocking(move || {
        python()
            .args(["client", &port])
            .stderr(Stdio::inherit())
            .output()
            .expect("python runs")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("OK"),
        "pymodbus client: {stdout}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs pymodbus: pip install -r tunnel-tokio/tests/interop/requirements.txt"]
async fn pymodbus_tls_client_through_the_secure_gateway() {
    let pki = Pki::new();
    let hub = hub(&pki, &[]).await;
    let device = device().await;
    let mut agent = agent(&pki, &hub, device, AGENT, SECRET);
    agent.connected().await;
    hub.wait_for_agent(AGENT, Duration::from_secs(5)).await.unwrap();
    // The gateway's certificate names 127.0.0.1 (pymodbus checks the
    // address it dials); IT clients have a CA of their own.
    let clients = Ca::new("Outpost test IT client CA");
    let (chain, key) = pki.hub_ca.leaf("127.0.0.1", false, 3);
    let tls = SecureServerTls::new(chain, key, &[clients.der()], Vec::new()).unwrap();
    let gateway = hub
        .gateway(
            GatewayBuilder::secure("127.0.0.1:0".parse().unwrap(), tls)
                .route_all(Route::new(AgentId::new(AGENT).unwrap(), "plc-1")),
        )
        .await
        .unwrap();
    let dir = std::env::temp_dir().join(format!("outpost-pymodbus-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert, key) = clients.client_with_roles_pem("pymodbus-operator", &[utf8_role("operator")], 40);
    std::fs::write(dir.join("client.pem"), cert).unwrap();
    std::fs::write(dir.join("client.key"), key).unwrap();
    std::fs::write(dir.join("ca.pem"), pki.hub_ca.pem()).unwrap();
    let port = gateway.local_addr().port().to_string();
    let files = dir.clone();
    let out = tokio::task::spawn_blocking(move || {
        let path = |name: &str| files.join(name).to_str().unwrap().to_owned();
        python()
            .args([
                "tls-client",
                &port,
                &path("client.pem"),
                &path("client.key"),
                &path("ca.pem"),
            ])
            .stderr(Stdio::inherit())
            .output()
            .expect("python runs")
    })
    .await
    .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("OK"),
        "pymodbus TLS client: {stdout}"
    );
    assert_eq!(agent.stats().denials, 1, "the agent's policy made the decision");
}
