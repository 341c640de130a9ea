//! The deployment programs, run as a user runs them: certificates from
//! `outpost-certs`, a simulated device, `outpost-hub` and `outpost-agent`
//! with TOML files, and Modbus clients reading through the hub's gateways
//! (plain, and Modbus/TCP Security with a certificate carrying a role).

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::Program;

use outpost_modbus_core::{ExceptionCode, UnitId};
use outpost_tunnel_tokio::modbus::{Client, ClientError, Requests};
use outpost_tunnel_tokio::security::SecureClientTls;

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certs_sim_hub_and_agent_from_their_config_files() {
    let dir = std::env::temp_dir().join(format!("outpost-programs-{}", std::process::id()));
    let certs = dir.join("certs");
    std::fs::create_dir_all(&certs).unwrap();
    // A dotted agent id, as a site naming scheme has it.
    let id = "plant-7.site-a";
    let status = Command::new(env!("CARGO_BIN_EXE_outpost-certs"))
        .args([certs.to_str().unwrap(), "hub.example", id])
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    // An IT client certificate for the secure gateway, with a role.
    let status = Command::new(env!("CARGO_BIN_EXE_outpost-certs"))
        .args(["client", certs.to_str().unwrap(), "historian", "--role", "viewer"])
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    // Secrets at rest: keys, the secret and the credentials are the owner's only.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |name: &str| std::fs::metadata(certs.join(name)).unwrap().permissions().mode() & 0o777;
        for name in [
            "hub-ca.key",
            "agent-ca.key",
            "hub.key",
            "plant-7.site-a.key",
            "plant-7.site-a.secret",
            "credentials.toml",
            "client-ca.key",
            "clients/historian.key",
        ] {
            assert_eq!(mode(name), 0o600, "{name}");
        }
        assert_eq!(mode("hub.pem") & 0o077, 0o044, "certificates stay readable");
    }

    let sim = Program::start(env!("CARGO_BIN_EXE_modbus-sim"), &["127.0.0.1:0"]);
    let device = sim.wait_for("modbus-sim listening on");

    // The sample configurations, on ephemeral ports.
    let sample =
        |name: &str| std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("config").join(name)).unwrap();
    write(
        &dir,
        "hub.toml",
        &sample("hub.toml")
            .replace("127.0.0.1:7443", "127.0.0.1:0")
            .replace("127.0.0.1:5020", "127.0.0.1:0")
            .replace("127.0.0.1:8020", "127.0.0.1:0")
            .replace("plant-7", id),
    );
    let hub_toml = dir.join("hub.toml");
    let hub = Program::start(env!("CARGO_BIN_EXE_outpost-hub"), &[hub_toml.to_str().unwrap()]);
    let hub_addr = hub.wait_for("outpost-hub listening for agents on");
    let gateway = hub.wait_for("outpost-hub gateway for role scada on");
    let secure_gateway = hub.wait_for("outpost-hub modbus/tcp security gateway on");
    let secure_gateway = secure_gateway.split(' ').next().unwrap().to_owned();

    write(
        &dir,
        "agent.toml",
        &sample("agent.toml")
            .replace("127.0.0.1:7443", &hub_addr)
            .replace("127.0.0.1:5502", &device)
            .replace("plant-7", id),
    );
    let agent_toml = dir.join("agent.toml");
    let agent = Program::start(env!("CARGO_BIN_EXE_outpost-agent"), &[agent_toml.to_str().unwrap()]);
    agent.wait_for("outpost-agent connected");
    hub.wait_for("outpost-hub event: Connected");

    let scada = Client::tcp(gateway).timeout(Duration::from_secs(3)).build();
    assert_eq!(
        scada.read_holding_registers(UnitId(1), 10, 3).await.unwrap(),
        [10, 11, 12]
    );
    scada.write_single_register(UnitId(1), 12, 1200).await.unwrap();
    assert_eq!(scada.read_holding_registers(UnitId(1), 12, 1).await.unwrap(), [1200]);
    // The sample policy lets scada write registers 10..19 only.
    let err = scada.write_single_register(UnitId(1), 30, 1).await.unwrap_err();
    assert!(matches!(err, ClientError::Exception(_)), "{err}");

    // The secure gateway: the historian's certificate says "viewer", and
    // the agent's sample policy lets viewers read only (exception 01 else).
    let tls = SecureClientTls::from_pem_files(
        &certs.join("clients/historian.pem"),
        &certs.join("clients/historian.key"),
        &certs.join("hub-ca.pem"),
        "hub.example",
    )
    .unwrap();
    let historian = Client::tcp(secure_gateway)
        .tls(tls)
        .timeout(Duration::from_secs(3))
        .build();
    assert_eq!(
        historian.read_holding_registers(UnitId(1), 10, 3).await.unwrap(),
        [10, 11, 1200]
    );
    let err = historian.write_single_register(UnitId(1), 12, 1).await.unwrap_err();
    assert!(
        matches!(err, ClientError::Exception(ExceptionCode::IllegalFunction)),
        "{err}"
    );

    // Revoking the agent writes a CRL naming its certificate and marks it
    // revoked in the credentials; SIGHUP makes the running hub reload them:
    // the live session closes at once and the agent stays out.
    let status = Command::new(env!("CARGO_BIN_EXE_outpost-certs"))
        .args(["revoke", certs.to_str().unwrap(), id])
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let credentials = std::fs::read_to_string(certs.join("credentials.toml")).unwrap();
    assert!(credentials.contains("revoked = true"), "{credentials}");
    // The historian's certificate too, in the IT client CA's CRL: the same
    // reload closes its connection to the secure gateway.
    let status = Command::new(env!("CARGO_BIN_EXE_outpost-certs"))
        .args(["revoke-client", certs.to_str().unwrap(), "historian"])
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let status = Command::new("kill")
        .args(["-HUP", &hub.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let closed = hub.wait_for("outpost-hub reloaded; sessions closed:");
    assert!(closed.contains(id), "{closed}");
    let secure_closed = hub.wait_for("outpost-hub secure gateway");
    assert!(secure_closed.contains("clients closed: [127.0.0.1:"), "{secure_closed}");
    assert!(historian.read_holding_registers(UnitId(1), 10, 1).await.is_err());
    let revoked = hub.wait_for("outpost-hub event: Revoked");
    assert!(revoked.contains(id), "{revoked}");
    let rejected = hub.wait_for("outpost-hub event: Rejected");
    assert!(rejected.to_lowercase().contains("revoked"), "{rejected}");
    drop((agent, hub, sim));
    let _ = std::fs::remove_dir_all(&dir);
}
