//! The agent listens on nothing: run it in a child process (loading its
//! certificates from PEM files) and check, from /proc, that none of its
//! sockets is listening, while it serves requests through the hub.

mod common;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;

use common::deploy::*;
use common::pki::Pki;
use outpost_modbus_core::UnitId;
use outpost_tunnel_proto::{AgentId, Secret};
use outpost_tunnel_tokio::agent::{Agent, Device};
use outpost_tunnel_tokio::binding::Role;
use outpost_tunnel_tokio::modbus::Requests;
use outpost_tunnel_tokio::tls::AgentTls;

const CHILD: &str = "OUTPOST_TEST_CHILD_AGENT";

/// The child's entry point: runs only when the parent test starts this
/// binary with `CHILD` naming a directory of settings.
#[test]
fn child_agent() {
    let Ok(dir) = std::env::var(CHILD) else {
        return;
    };
    let dir = PathBuf::from(dir);
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let tls = AgentTls::from_pem_files(
            &dir.join("agent.pem"),
            &dir.join("agent.key"),
            &dir.join("hub-ca.pem"),
            common::pki::HUB_NAME,
        )
        .unwrap();
        let _agent = Agent::builder()
            .hub(read("hub").trim())
            .tls(tls)
            .identity(AgentId::new(AGENT).unwrap(), Secret::new(SECRET).unwrap())
            .policy(policy())
            .device(Device::tcp("plc-1", read("device").trim()).units([UNIT]))
            .build()
            .unwrap()
            .spawn();
        // The parent kills this process; never outlive it by much.
        tokio::time::sleep(Duration::from_secs(60)).await;
    });
}

/// Socket inodes among a process's open files.
fn socket_inodes(pid: u32) -> HashSet<u64> {
    let mut inodes = HashSet::new();
    for entry in std::fs::read_dir(format!("/proc/{pid}/fd")).unwrap().flatten() {
        if let Ok(target) = std::fs::read_link(entry.path()) {
            let target = target.to_string_lossy().into_owned();
            if let Some(inode) = target.strip_prefix("socket:[").and_then(|s| s.strip_suffix(']')) {
                inodes.insert(inode.parse().unwrap());
            }
        }
    }
    inodes
}

/// Inodes of sockets in a /proc/net table, with their state (TCP: 0A is LISTEN).
fn table(path: &Path) -> Vec<(u64, String)> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            Some((fields.get(9)?.parse().ok()?, (*fields.get(3)?).to_owned()))
        })
        .collect()
}

/// The child's sockets that listen (TCP) or are bound to receive (UDP).
fn listening(pid: u32) -> (usize, Vec<String>) {
    let mine = socket_inodes(pid);
    let mut found = Vec::new();
    for proto in ["tcp", "tcp6"] {
        for (inode, state) in table(Path::new(&format!("/proc/{pid}/net/{proto}"))) {
            if mine.contains(&inode) && state == "0A" {
                found.push(format!("{proto} inode {inode} LISTEN"));
            }
        }
    }
    for proto in ["udp", "udp6"] {
        for (inode, _) in table(Path::new(&format!("/proc/{pid}/net/{proto}"))) {
            if mine.contains(&inode) {
                found.push(format!("{proto} inode {inode}"));
            }
        }
    }
    (mine.len(), found)
}

struct Kill(Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_listens_on_nothing() {
    let pki = Pki::new();
    let hub = hub(&pki, &[]).await;
    let device = device().await;
    let dir = std::env::temp_dir().join(format!("outpost-child-agent-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert, key) = pki.agent_ca.leaf_pem(AGENT, true, 7);
    std::fs::write(dir.join("agent.pem"), cert).unwrap();
    std::fs::write(dir.join("agent.key"), key).unwrap();
    // A key others may read is refused: the owner's only.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.join("agent.key"), std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    std::fs::write(dir.join("hub-ca.pem"), pki.hub_ca.pem()).unwrap();
    std::fs::write(dir.join("hub"), hub.local_addr().to_string()).unwrap();
    std::fs::write(dir.join("device"), device.to_string()).unwrap();

    let child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_agent", "--nocapture", "--test-threads=1"])
        .env(CHILD, &dir)
        .spawn()
        .unwrap();
    let child = Kill(child);
    let pid = child.0.id();

    // The child agent dials the hub and serves requests.
    let plc = hub
        .wait_for_agent(AGENT, Duration::from_secs(20))
        .await
        .unwrap()
        .modbus("plc-1", Role::new("operator").unwrap());
    assert_eq!(plc.read_holding_registers(UnitId(1), 0, 2).await.unwrap(), [0, 1]);

    let (sockets, listening_sockets) = listening(pid);
    assert!(
        sockets >= 2,
        "the child holds {sockets} sockets: the check sees nothing"
    );
    assert!(listening_sockets.is_empty(), "the agent listens: {listening_sockets:?}");
    // The same check finds this process's listeners (the hub's and the device's).
    let (_, ours) = listening(std::process::id());
    assert!(ours.len() >= 2, "the check misses listeners: {ours:?}");
    println!("agent pid {pid}: {sockets} sockets, none listening");
    drop(child);
    let _ = std::fs::remove_dir_all(&dir);
}
