//! The recommended deployment, built with Linux network namespaces and
//! proven closed: a plant (OT) namespace with a Modbus device and the
//! agent, an IT namespace with the hub and a Modbus client, and a firewall
//! namespace between them that forwards connections from OT to IT only.
//! The IT side has no route into the OT side, and the OT side's own
//! nftables ruleset drops every inbound connection. The client reads and
//! writes through the hub's gateway; every direct connection from IT into
//! the plant fails, even with a route added by hand.
//!
//! ```text
//!   ot (10.77.1.2)          fw (10.77.1.1 | 10.77.2.1)        it (10.77.2.2)
//!   device :5502  ◄──────── forwards OT→IT only, NAT ───────►  hub :7443
//!   agent ── dials out ──────────────────────────────────────► gateway :5020
//!   nft: input drops new                                        client
//! ```
//!
//! Needs root, `ip` (iproute2) and `nft` (nftables): `.ci/run` installs
//! them and runs this as root; elsewhere the test says why it is skipped.
//! The namespaces are the test's own (named after its process id) and are
//! removed when it ends.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::Program;

const CHILD: &str = "OUTPOST_TOPOLOGY_CHILD";
const OT: &str = "10.77.1.2";
const FW_OT: &str = "10.77.1.1";
const FW_IT: &str = "10.77.2.1";
const IT: &str = "10.77.2.2";

/// Runs a command; panics with its output if it fails.
fn run(args: &[&str]) {
    let out = Command::new(args[0]).args(&args[1..]).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs `script` (nft syntax) in namespace `ns`.
fn nft(ns: &str, script: &str) {
    let mut child = Command::new("ip")
        .args(["netns", "exec", ns, "nft", "-f", "-"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), script.as_bytes()).unwrap();
    drop(child.stdin.take());
    assert!(child.wait().unwrap().success(), "nft in {ns}:\n{script}");
}

/// The three namespaces, removed on drop.
struct Topology {
    ot: String,
    fw: String,
    it: String,
}

impl Topology {
    fn build() -> Topology {
        let id = std::process::id();
        let t = Topology {
            ot: format!("op-ot-{id}"),
            fw: format!("op-fw-{id}"),
            it: format!("op-it-{id}"),
        };
        for ns in [&t.ot, &t.fw, &t.it] {
            run(&["ip", "netns", "add", ns]);
            run(&["ip", "-n", ns, "link", "set", "lo", "up"]);
        }
        // OT <-> firewall, firewall <-> IT.
        let (ot_if, fw_ot_if, fw_it_if, it_if) = (
            format!("ot{id}"),
            format!("fo{id}"),
            format!("fi{id}"),
            format!("it{id}"),
        );
        run(&[
            "ip", "link", "add", &ot_if, "netns", &t.ot, "type", "veth", "peer", "name", &fw_ot_if, "netns", &t.fw,
        ]);
        run(&[
            "ip", "link", "add", &it_if, "netns", &t.it, "type", "veth", "peer", "name", &fw_it_if, "netns", &t.fw,
        ]);
        for (ns, ifname, addr) in [
            (&t.ot, &ot_if, OT),
            (&t.fw, &fw_ot_if, FW_OT),
            (&t.fw, &fw_it_if, FW_IT),
            (&t.it, &it_if, IT),
        ] {
            run(&["ip", "-n", ns, "addr", "add", &format!("{addr}/24"), "dev", ifname]);
            run(&["ip", "-n", ns, "link", "set", ifname, "up"]);
        }
        // OT reaches IT through the firewall; IT has no route to OT at all.
        run(&["ip", "-n", &t.ot, "route", "add", "default", "via", FW_OT]);
        run(&[
            "ip",
            "netns",
            "exec",
            &t.fw,
            "sysctl",
            "-q",
            "-w",
            "net.ipv4.ip_forward=1",
        ]);
        // The firewall forwards new connections from OT to IT only, and
        // hides OT's addresses behind its own.
        nft(
            &t.fw,
            &format!(
                "table inet outpost {{
                   chain forward {{ type filter hook forward priority 0; policy drop;
                     ct state established,related accept
                     iifname \"{fw_ot_if}\" oifname \"{fw_it_if}\" ct state new accept
                   }}
                   chain postrouting {{ type nat hook postrouting priority 100;
                     oifname \"{fw_it_if}\" masquerade
                   }}
                 }}"
            ),
        );
        // The plant's own firewall drops every inbound connection.
        nft(
            &t.ot,
            "table inet outpost {
               chain input { type filter hook input priority 0; policy drop;
                 iifname \"lo\" accept
                 ct state established,related accept
               }
             }",
        );
        t
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        for ns in [&self.ot, &self.fw, &self.it] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

/// `bin` with `args` and `envs`, started in namespace `ns`.
fn start_in(ns: &str, bin: &str, args: &[&str], envs: &[(&str, &str)]) -> Program {
    let mut command = Command::new("ip");
    command
        .args(["netns", "exec", ns, bin])
        .args(args)
        .envs(envs.iter().copied());
    Program::spawn(command)
}

/// Why this machine cannot build the topology, if it cannot.
fn unavailable() -> Option<String> {
    let euid = Command::new("id").arg("-u").output().ok()?;
    if String::from_utf8_lossy(&euid.stdout).trim() != "0" {
        return Some("not root".into());
    }
    for tool in [["ip", "-V"], ["nft", "--version"]] {
        if Command::new(tool[0])
            .arg(tool[1])
            .output()
            .map(|o| !o.status.success())
            .unwrap_or(true)
        {
            return Some(format!("{} is not installed", tool[0]));
        }
    }
    let probe = format!("op-probe-{}", std::process::id());
    let made = Command::new("ip")
        .args(["netns", "add", &probe])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    let _ = Command::new("ip").args(["netns", "del", &probe]).status();
    if !made {
        return Some("network namespaces cannot be created here".into());
    }
    None
}

/// Listening TCP ports in namespace `ns` (from its /proc/net/tcp{,6}).
fn listening_ports(ns: &str) -> Vec<u16> {
    let mut ports = Vec::new();
    for file in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let out = Command::new("ip")
            .args(["netns", "exec", ns, "cat", file])
            .output()
            .unwrap();
        for line in String::from_utf8_lossy(&out.stdout).lines().skip(1) {
            let cols: Vec<&str> = line.split_whitespace().collect();
            // State 0A is LISTEN; the local address ends with the hex port.
            if cols.get(3) == Some(&"0A") {
                if let Some(port) = cols.get(1).and_then(|a| a.rsplit(':').next()) {
                    ports.push(u16::from_str_radix(port, 16).unwrap());
                }
            }
        }
    }
    ports.sort_unstable();
    ports.dedup();
    ports
}

/// In the IT namespace: reads and writes through the gateway, then tries
/// every given address of the plant directly. Prints what happened.
#[test]
fn it_side_client() {
    let Ok(spec) = std::env::var(CHILD) else {
        return;
    };
    let (gateway, targets) = spec.split_once(';').unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        use outpost_modbus_core::UnitId;
        use outpost_tunnel_tokio::modbus::{Client, Requests};
        let scada = Client::tcp(gateway.to_owned()).timeout(Duration::from_secs(5)).build();
        let values = scada.read_holding_registers(UnitId(1), 10, 3).await.unwrap();
        println!("read {values:?}");
        scada.write_single_register(UnitId(1), 12, 1200).await.unwrap();
        let values = scada.read_holding_registers(UnitId(1), 12, 1).await.unwrap();
        println!("wrote and read back {values:?}");
        for target in targets.split(',').filter(|t| !t.is_empty()) {
            let result = tokio::time::timeout(Duration::from_secs(2), tokio::net::TcpStream::connect(target)).await;
            let verdict = match result {
                Ok(Ok(_)) => "OPEN".to_owned(),
                Ok(Err(e)) => format!("failed ({e})"),
                Err(_) => "failed (no answer: dropped)".to_owned(),
            };
            println!("direct {target}: {verdict}");
        }
        println!("done");
    });
}

#[test]
fn the_plant_network_is_closed_to_the_it_side() {
    if std::env::var(CHILD).is_ok() {
        return;
    }
    if let Some(why) = unavailable() {
        eprintln!("skipped: the namespace topology needs root, ip and nft ({why})");
        return;
    }
    let topology = Topology::build();
    let dir = std::env::temp_dir().join(format!("outpost-topology-{}", std::process::id()));
    let certs = dir.join("certs");
    std::fs::create_dir_all(&certs).unwrap();
    for args in [
        vec!["certs", "init", certs.to_str().unwrap(), "--hub-name", "hub.example"],
        vec!["certs", "agent", "plant-7", "--dir", certs.to_str().unwrap()],
    ] {
        let status = Command::new(env!("CARGO_BIN_EXE_outpost"))
            .args(&args)
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "{args:?}");
    }
    let sample =
        |name: &str| std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("config").join(name)).unwrap();
    let write = |name: &str, text: String| {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    };

    // The plant: a device, and the agent dialling the hub across the firewall.
    let device = start_in(
        &topology.ot,
        env!("CARGO_BIN_EXE_outpost"),
        &["sim", "--listen", &format!("{OT}:5502")],
        &[],
    );
    device.wait_for("outpost sim listening on");
    // IT: the hub and its gateway.
    let hub_toml = write(
        "hub.toml",
        sample("hub.toml")
            .replace("127.0.0.1:7443", &format!("{IT}:7443"))
            .replace("127.0.0.1:5020", &format!("{IT}:5020"))
            .replace("127.0.0.1:8020", &format!("{IT}:8020")),
    );
    let hub = start_in(
        &topology.it,
        env!("CARGO_BIN_EXE_outpost"),
        &["hub", "--config", hub_toml.to_str().unwrap()],
        &[],
    );
    hub.wait_for("outpost hub listening for agents on");
    let gateway = hub.wait_for("outpost hub gateway for role scada on");
    let agent_toml = write(
        "agent.toml",
        sample("agent.toml")
            .replace("127.0.0.1:7443", &format!("{IT}:7443"))
            .replace("127.0.0.1:5502", &format!("{OT}:5502")),
    );
    let agent = start_in(
        &topology.ot,
        env!("CARGO_BIN_EXE_outpost"),
        &["agent", "--config", agent_toml.to_str().unwrap()],
        &[],
    );
    agent.wait_for("outpost agent connected");
    let connected = hub.wait_for("outpost hub event: Connected");
    // The hub sees the firewall's address, not the plant's.
    assert!(connected.contains(FW_IT), "{connected}");

    // Every TCP port listening anywhere in the plant namespace, and the
    // device's: none may be reached from IT.
    let mut targets: Vec<String> = listening_ports(&topology.ot)
        .iter()
        .map(|p| format!("{OT}:{p}"))
        .collect();
    assert!(
        targets.contains(&format!("{OT}:5502")),
        "the device listens: {targets:?}"
    );
    targets.push(format!("{OT}:7443"));
    let exe = std::env::current_exe().unwrap();
    let spec = format!("{gateway};{}", targets.join(","));
    let client = |label: &str| {
        let client = start_in(
            &topology.it,
            exe.to_str().unwrap(),
            &["--exact", "it_side_client", "--nocapture", "--test-threads", "1"],
            &[(CHILD, spec.as_str())],
        );
        let mut lines = Vec::new();
        loop {
            let line = client.wait_for("");
            if line == "done" {
                break;
            }
            lines.push(line);
        }
        eprintln!("{label}:\n  {}", lines.join("\n  "));
        lines
    };

    // Without a route into the plant: reads and writes through the gateway
    // work; every direct connection fails at once.
    let lines = client("IT with no route to the plant");
    assert!(lines.iter().any(|l| l.ends_with("read [10, 11, 12]")), "{lines:?}");
    assert!(
        lines.iter().any(|l| l.ends_with("wrote and read back [1200]")),
        "{lines:?}"
    );
    let direct: Vec<_> = lines.iter().filter(|l| l.starts_with("direct ")).collect();
    assert_eq!(direct.len(), targets.len());
    assert!(direct.iter().all(|l| l.contains("failed")), "{direct:?}");

    // An IT administrator adds a route through the firewall by hand: the
    // firewall and the plant's own ruleset still drop every connection.
    run(&["ip", "-n", &topology.it, "route", "add", "10.77.1.0/24", "via", FW_IT]);
    let lines = client("IT with a route added by hand");
    let direct: Vec<_> = lines.iter().filter(|l| l.starts_with("direct ")).collect();
    assert!(direct.iter().all(|l| l.contains("failed")), "{direct:?}");

    // Even from the firewall itself (no forwarding involved), the plant's
    // ruleset drops an inbound connection to the device.
    let probe = Command::new("ip")
        .args([
            "netns",
            "exec",
            &topology.fw,
            "timeout",
            "2",
            "bash",
            "-c",
            &format!("exec 3<>/dev/tcp/{OT}/5502"),
        ])
        .output()
        .unwrap();
    assert!(!probe.status.success(), "the plant accepted a connection from outside");

    drop((agent, hub, device));
    drop(topology);
    let _ = std::fs::remove_dir_all(PathBuf::from(&dir));
}
