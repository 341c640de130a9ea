//! The `outpost` command run as a user runs it, in a temporary folder with
//! ports from port 0: `certs`, `check` on good and broken configurations,
//! `sim`, `hub`, `agent`, `read`/`write` through the plain and the
//! Modbus/TCP Security gateways, SIGHUP after revoking, SIGTERM.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::Program;

const OUTPOST: &str = env!("CARGO_BIN_EXE_outpost");

fn outpost(args: &[&str]) -> Output {
    Command::new(OUTPOST).args(args).output().unwrap()
}

fn ok(args: &[&str]) -> String {
    let out = outpost(args);
    assert!(
        out.status.success(),
        "{args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Runs `args`, which must fail with `code`; its standard error.
fn fails(args: &[&str], code: i32) -> String {
    let out = outpost(args);
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(code), "{args:?}: {stderr}");
    assert!(
        !stderr.contains("panicked") && !stderr.contains("RUST_BACKTRACE"),
        "{stderr}"
    );
    stderr
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn sample(name: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("config").join(name)).unwrap()
}

/// A fresh directory with a PKI and agent plant-7's files under `certs/`,
/// and a simulated device: the directory, the simulator and its address.
fn plant(name: &str) -> (PathBuf, Program, String) {
    let dir = std::env::temp_dir().join(format!("outpost-command-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let certs = dir.join("certs");
    let certs_dir = certs.to_str().unwrap();
    ok(&["certs", "init", certs_dir]);
    ok(&["certs", "agent", "plant-7", "--dir", certs_dir]);
    let sim = Program::start(OUTPOST, &["sim", "--listen", "127.0.0.1:0"]);
    let device = sim.wait_for("outpost sim listening on");
    (dir, sim, device)
}

fn signal(program: &Program, name: &str) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), &program.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn help_and_version_and_usage_errors() {
    assert!(ok(&["--help"]).contains("Exit codes"));
    assert!(ok(&["--version"]).starts_with("outpost "));
    for sub in ["hub", "agent", "check", "certs", "sim", "read", "write"] {
        assert!(ok(&[sub, "--help"]).contains("Usage: outpost"), "{sub}");
    }
    // `--help` is help, never a folder name; a typo is a usage error.
    fails(&["certs", "init"], 2);
    fails(&["hub"], 2);
    fails(&["reed"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deployment_from_the_command_line() {
    let dir = std::env::temp_dir().join(format!("outpost-command-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let certs = dir.join("certs");
    let certs_dir = certs.to_str().unwrap();
    // A dotted agent id, as a site naming scheme has it.
    let id = "plant-7.site-a";
    ok(&["certs", "init", certs_dir, "--hub-name", "hub.example"]);
    ok(&["certs", "agent", id, "--dir", certs_dir]);
    ok(&["certs", "client", "historian", "--role", "viewer", "--dir", certs_dir]);
    // A second init would replace the CAs: refused.
    assert!(fails(&["certs", "init", certs_dir], 2).contains("already holds a PKI"));
    fails(&["certs", "agent", "Plant 9", "--dir", certs_dir], 2);
    fails(&["certs", "client", "x", "--role", "shift lead", "--dir", certs_dir], 2);
    // Secrets at rest: keys, secrets and credentials are the owner's only,
    // and the CA keys are apart from what ships to the plant.
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |name: &str| std::fs::metadata(certs.join(name)).unwrap().permissions().mode() & 0o777;
        for name in [
            "ca/hub-ca.key",
            "ca/agent-ca.key",
            "ca/client-ca.key",
            "hub.key",
            &format!("agents/{id}/agent.key"),
            &format!("agents/{id}/agent.secret"),
            "credentials.toml",
            "clients/historian.key",
        ] {
            assert_eq!(mode(name), 0o600, "{name}");
        }
        assert_eq!(mode("hub.pem") & 0o077, 0o044, "certificates stay readable");
        let shipped: Vec<_> = std::fs::read_dir(certs.join("agents").join(id))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert!(shipped.iter().all(|f| !f.contains("ca.key")), "{shipped:?}");
    }

    let sim = Program::start(OUTPOST, &["sim", "--listen", "127.0.0.1:0"]);
    let device = sim.wait_for("outpost sim listening on");

    // The sample configurations, on ephemeral ports.
    let hub_toml = write(
        &dir,
        "hub.toml",
        &sample("hub.toml")
            .replace("127.0.0.1:7443", "127.0.0.1:0")
            .replace("127.0.0.1:5020", "127.0.0.1:0")
            .replace("127.0.0.1:8020", "127.0.0.1:0")
            .replace("plant-7", id),
    );
    let checked = ok(&["check", "--config", hub_toml.to_str().unwrap()]);
    assert!(checked.contains("hub configuration OK"), "{checked}");

    // Broken configurations: one line each, naming file, line or key; exit 2.
    let broken = |name: &str, text: String, expect: &str| {
        let path = write(&dir, name, &text);
        let stderr = fails(&["check", "--config", path.to_str().unwrap()], 2);
        assert!(stderr.contains(expect), "{name}: {stderr}");
        assert!(stderr.lines().all(|l| l.starts_with("outpost: ")), "{stderr}");
        stderr
    };
    let typo = broken(
        "typo.toml",
        sample("hub.toml").replace("listen = \"127.0.0.1:7443\"", "lisen = \"127.0.0.1:7443\""),
        "lisen",
    );
    assert!(typo.contains("typo.toml:5:1:"), "{typo}");
    broken(
        "missing.toml",
        sample("hub.toml").replace("certs/hub.pem", "certs/nope.pem"),
        "certs/nope.pem",
    );
    broken(
        "mismatch.toml",
        sample("hub.toml").replace("certs/hub.key", "certs/ca/hub-ca.key"),
        "tls",
    );
    let agent_broken = broken(
        "agent-broken.toml",
        sample("agent.toml")
            .replace("id = \"plant-7\"", "id = \"Plant 7\"")
            .replace("127.0.0.1:7443", "hub.example"),
        "id",
    );
    assert!(
        agent_broken.contains(": hub: ") && agent_broken.lines().count() >= 3,
        "{agent_broken}"
    );

    let hub_log = dir.join("hub.log");
    let mut command = Command::new(OUTPOST);
    command
        .args([
            "hub",
            "--config",
            hub_toml.to_str().unwrap(),
            "--values",
            &format!("{id}/plc-1"),
        ])
        .stderr(std::fs::File::create(&hub_log).unwrap());
    let hub = Program::spawn_with_stderr(command);
    let hub_addr = hub.wait_for("outpost hub listening for agents on");
    let gateway = hub.wait_for("outpost hub gateway for role scada on");
    let secure_gateway = hub.wait_for("outpost hub modbus/tcp security gateway on");
    let secure_gateway = secure_gateway.split(' ').next().unwrap().to_owned();

    let agent_toml = write(
        &dir,
        "agent.toml",
        &sample("agent.toml")
            .replace("127.0.0.1:7443", &hub_addr)
            .replace("127.0.0.1:5502", &device)
            .replace("plant-7", id),
    );
    assert!(ok(&["check", "--config", agent_toml.to_str().unwrap()]).contains("agent configuration OK"));
    let agent = Program::start(OUTPOST, &["agent", "--config", agent_toml.to_str().unwrap()]);
    agent.wait_for("outpost agent connected");
    hub.wait_for("outpost hub event: Connected");

    // The sample's scan group reports to the hub: every point first.
    let first = hub.wait_for(&format!("outpost hub value: {id}/plc-1/status/setpoint = 12 (good)"));
    assert!(first.contains("snapshot"), "{first}");

    // Reads and writes through the plain gateway (role scada).
    let read = ok(&["read", "-a", &gateway, "holding", "10", "3"]);
    assert_eq!(read, "holding 10 = 10\nholding 11 = 11\nholding 12 = 12\n");
    ok(&["write", "-a", &gateway, "holding", "12", "1200"]);
    // The write is scanned and reported.
    hub.wait_for(&format!("outpost hub value: {id}/plc-1/status/setpoint = 1200 (good)"));
    let json = ok(&["read", "-a", &gateway, "--json", "holding", "12"]);
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(value["values"], serde_json::json!([1200]));
    // The sample policy lets scada write registers 10..19 only: 02, exit 1.
    let denied = fails(&["write", "-a", &gateway, "holding", "30", "1"], 1);
    assert!(denied.contains("illegal data address (0x02)"), "{denied}");
    // A bad value is a usage error.
    fails(&["write", "-a", &gateway, "holding", "12", "lots"], 2);

    // The secure gateway: the historian's certificate says "viewer".
    let tls = [
        "--cert",
        &format!("{certs_dir}/clients/historian.pem"),
        "--key",
        &format!("{certs_dir}/clients/historian.key"),
        "--ca",
        &format!("{certs_dir}/hub-ca.pem"),
        "--server-name",
        "hub.example",
    ]
    .map(String::from);
    let secure = |rest: &[&str]| {
        let mut args = vec!["-a", secure_gateway.as_str()];
        args.extend(tls.iter().map(String::as_str));
        args.extend_from_slice(rest);
        args.into_iter().map(String::from).collect::<Vec<_>>()
    };
    let args = [vec!["read".to_owned()], secure(&["holding", "12"])].concat();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    assert_eq!(ok(&args), "holding 12 = 1200\n");
    let args = [vec!["write".to_owned()], secure(&["holding", "12", "1"])].concat();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let denied = fails(&args, 1);
    assert!(
        denied.contains("illegal function (0x01)"),
        "Modbus/TCP Security answers 01: {denied}"
    );

    // Revoking the agent and the client, then SIGHUP: both are closed.
    ok(&["certs", "revoke", id, "--dir", certs_dir]);
    ok(&["certs", "revoke-client", "historian", "--dir", certs_dir]);
    let credentials = std::fs::read_to_string(certs.join("credentials.toml")).unwrap();
    assert!(credentials.contains("revoked = true"), "{credentials}");
    signal(&hub, "HUP");
    let closed = hub.wait_for("outpost hub reloaded; sessions closed:");
    assert!(closed.contains(id), "{closed}");
    hub.wait_for("outpost hub secure gateway");
    let revoked = hub.wait_for("outpost hub event: Revoked");
    assert!(revoked.contains(id), "{revoked}");
    drop(agent);

    // SIGTERM: the hub stops cleanly, exit 0.
    signal(&hub, "TERM");
    hub.wait_for("outpost hub stopped");
    let mut hub = hub;
    assert_eq!(hub.child.wait().unwrap().code(), Some(0));
    // Its log went to a file: plain text, no terminal escapes.
    let log = std::fs::read(&hub_log).unwrap();
    assert!(!log.is_empty());
    assert!(!log.contains(&0x1b), "escape bytes in a log file");
    drop(sim);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_move_and_sigterm_stops_the_agent_cleanly() {
    let (dir, sim, device) = plant("stop");
    let hub_toml = write(
        &dir,
        "hub.toml",
        &sample("hub.toml")
            .replace("127.0.0.1:7443", "127.0.0.1:0")
            .replace("127.0.0.1:5020", "127.0.0.1:0")
            .replace("127.0.0.1:8020", "127.0.0.1:0")
            .replace("credentials = ", "metrics = \"127.0.0.1:0\"\ncredentials = "),
    );
    let hub = Program::start(
        OUTPOST,
        &["--log-format", "json", "hub", "--config", hub_toml.to_str().unwrap()],
    );
    let hub_addr = hub.wait_for("outpost hub listening for agents on");
    let hub_metrics = hub.wait_for("outpost hub metrics on http://");
    let gateway = hub.wait_for("outpost hub gateway for role scada on");
    let agent_toml = write(
        &dir,
        "agent.toml",
        &sample("agent.toml")
            .replace("127.0.0.1:7443", &hub_addr)
            .replace("127.0.0.1:5502", &device)
            .replace("hub_name = ", "metrics = \"127.0.0.1:0\"\nhub_name = "),
    );
    let mut agent = Program::start(OUTPOST, &["agent", "--config", agent_toml.to_str().unwrap()]);
    let agent_metrics = agent.wait_for("outpost agent metrics on http://");
    agent.wait_for("outpost agent connected");
    hub.wait_for("outpost hub event: Connected");

    // Requests move the counters: two answered, one denied by the policy.
    ok(&["read", "-a", &gateway, "holding", "10", "2"]);
    ok(&["read", "-a", &gateway, "input", "1"]);
    fails(&["write", "-a", &gateway, "holding", "30", "1"], 1);
    let hub_text = scrape(&hub_metrics).await;
    for expected in [
        "outpost_hub_agents 1",
        "outpost_hub_requests_total{outcome=\"ok\"} 2",
        "outpost_hub_requests_total{outcome=\"denied\"} 1",
        "outpost_hub_sessions_total 1",
    ] {
        assert!(hub_text.contains(expected), "{expected} not in\n{hub_text}");
    }
    let agent_text = scrape(&agent_metrics).await;
    for expected in [
        "outpost_agent_connected 1",
        "outpost_agent_requests_total{outcome=\"ANSWERED\"} 2",
        "outpost_agent_denials_total{rule=\"address\"} 1",
        "outpost_agent_device_seconds_count{device=\"plc-1\"} 2",
        "outpost_agent_device_seconds_bucket{device=\"plc-1\",le=\"+Inf\"} 2",
    ] {
        assert!(agent_text.contains(expected), "{expected} not in\n{agent_text}");
    }
    // SIGHUP: the agent reads its policy again (scada may now write 30).
    let widened = std::fs::read_to_string(&agent_toml)
        .unwrap()
        .replace("write = [[10, 19]]", "write = [[10, 39]]");
    std::fs::write(&agent_toml, widened).unwrap();
    signal(&agent, "HUP");
    let reloaded = agent.wait_for("outpost agent reloaded the policy:");
    assert!(reloaded.contains("changed [\"scada\"]"), "{reloaded}");
    ok(&["write", "-a", &gateway, "holding", "30", "1"]);

    signal(&agent, "TERM");
    agent.wait_for("outpost agent stopped");
    assert_eq!(agent.child.wait().unwrap().code(), Some(0));
    let ended = hub.wait_for("outpost hub event: Disconnected");
    assert!(ended.contains("NoError"), "a planned stop, not a fault: {ended}");
    drop((hub, sim));
    let _ = std::fs::remove_dir_all(&dir);
}

/// The README's walkthrough, run line by line as written; only the folder
/// (`cli/config`, copied to a temporary one) and the fixed ports (each
/// program binds port 0, and later lines use the addresses it reports)
/// differ.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_walkthrough_runs_as_written() {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md")).unwrap();
    let block = readme
        .split("<!-- walkthrough -->")
        .nth(1)
        .and_then(|rest| rest.split("```sh\n").nth(1))
        .and_then(|rest| rest.split("```").next())
        .expect("the README has a walkthrough block");
    let dir = std::env::temp_dir().join(format!("outpost-readme-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let config = dir.join("config");
    std::fs::create_dir_all(&config).unwrap();
    let folder = config.to_str().unwrap().to_owned();
    // The README's fixed addresses, and what each became.
    let mut addresses: Vec<(String, String)> = Vec::new();
    let rewrite = |from: &str, to: &str, addresses: &mut Vec<(String, String)>| {
        addresses.push((from.to_owned(), to.to_owned()));
        for name in ["hub.toml", "agent.toml"] {
            let path = config.join(name);
            let text = std::fs::read_to_string(&path).unwrap().replace(from, to);
            std::fs::write(path, text).unwrap();
        }
    };
    // The hub binds port 0; the agent's file keeps the README's addresses
    // until the device and the hub report theirs.
    let hub = sample("hub.toml")
        .replace("127.0.0.1:7443", "127.0.0.1:0")
        .replace("127.0.0.1:5020", "127.0.0.1:0")
        .replace("127.0.0.1:8020", "127.0.0.1:0");
    write(&config, "hub.toml", &hub);
    write(&config, "agent.toml", &sample("agent.toml"));
    let mut programs = Vec::new();
    let mut ran = 0;
    for line in block.lines().filter(|l| l.starts_with("outpost ")) {
        let background = line.ends_with(" &");
        let mut line = line.trim_end_matches(" &").replace("cli/config", &folder);
        for (from, to) in &addresses {
            line = line.replace(from.as_str(), to);
        }
        let args: Vec<&str> = line.split_whitespace().skip(1).collect();
        if !background {
            ok(&args);
            ran += 1;
            continue;
        }
        match args[0] {
            "sim" => {
                let wanted = args[2].to_owned();
                let sim = Program::start(OUTPOST, &["sim", "--listen", "127.0.0.1:0"]);
                let device = sim.wait_for("outpost sim listening on");
                rewrite(&wanted, &device, &mut addresses);
                programs.push(sim);
            }
            "hub" => {
                let hub = Program::start(OUTPOST, &args);
                let agents = hub.wait_for("outpost hub listening for agents on");
                let gateway = hub.wait_for("outpost hub gateway for role scada on");
                let secure = hub.wait_for("outpost hub modbus/tcp security gateway on");
                let secure = secure.split(' ').next().unwrap().to_owned();
                rewrite("127.0.0.1:7443", &agents, &mut addresses);
                addresses.push(("127.0.0.1:5020".into(), gateway));
                addresses.push(("127.0.0.1:8020".into(), secure));
                programs.push(hub);
            }
            "agent" => {
                let agent = Program::start(OUTPOST, &args);
                agent.wait_for("outpost agent connected");
                programs.push(agent);
            }
            other => panic!("a background line the test does not know: {other}"),
        }
        ran += 1;
    }
    assert!(ran >= 11, "only {ran} lines ran");
    drop(programs);
    let _ = std::fs::remove_dir_all(&dir);
}

/// `GET /metrics` on `url` (`ADDR/metrics`), the body.
async fn scrape(url: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let address = url.split('/').next().unwrap();
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: outpost\r\n\r\n")
        .await
        .unwrap();
    let mut response = String::new();
    tokio::time::timeout(std::time::Duration::from_secs(5), stream.read_to_string(&mut response))
        .await
        .unwrap()
        .unwrap();
    assert!(response.starts_with("HTTP/1.1 200 OK"), "{response}");
    response.split("\r\n\r\n").nth(1).unwrap_or_default().to_owned()
}

/// `(at_ms, seq)` of a line `outpost hub value: ... at <ms> ms seq <n>...`.
fn stamp(line: &str) -> (u64, u64) {
    let words: Vec<&str> = line.split_whitespace().collect();
    let after = |w: &str| words.iter().position(|x| *x == w).and_then(|i| words.get(i + 1));
    let at = after("at")
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{line}"));
    let seq = after("seq")
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{line}"));
    (at, seq)
}

fn wall_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// The hub's value lines of the sample's scan group until one taken
/// after `until_ms`.
fn values_until(hub: &Program, until_ms: u64) -> Vec<(u64, u64)> {
    let mut seen = Vec::new();
    loop {
        let line = hub.wait_for("outpost hub value: plant-7/plc-1/status/");
        let (at, seq) = stamp(&line);
        seen.push((at, seq));
        if at > until_ms {
            return seen;
        }
    }
}

#[test]
fn an_agent_killed_while_the_hub_is_away_loses_no_sample() {
    let (dir, sim, device) = plant("spool");
    let hub_config = |listen: &str| {
        write(
            &dir,
            "hub.toml",
            &sample("hub.toml")
                .replace("127.0.0.1:7443", listen)
                .replace("127.0.0.1:5020", "127.0.0.1:0")
                .replace("127.0.0.1:8020", "127.0.0.1:0"),
        )
    };
    let hub_toml = hub_config("127.0.0.1:0");
    let start_hub = |path: &Path| {
        Program::start(
            OUTPOST,
            &["hub", "--config", path.to_str().unwrap(), "--values", "plant-7"],
        )
    };
    let hub = start_hub(&hub_toml);
    let hub_addr = hub.wait_for("outpost hub listening for agents on");
    // The uptime changes every second: a sample a second, kept on disk.
    let agent_toml = write(
        &dir,
        "agent.toml",
        &format!(
            "{}\n[acquisition]\nspool = \"spool.redb\"\n",
            sample("agent.toml")
                .replace("127.0.0.1:7443", &hub_addr)
                .replace("127.0.0.1:5502", &device)
                .replace("interval_ms = 1000", "interval_ms = 100")
        ),
    );
    let agent_args = ["agent", "--config", agent_toml.to_str().unwrap()];
    let agent = Program::start(OUTPOST, &agent_args);
    let before = values_until(&hub, wall_ms() + 1500);

    // The hub goes away; the agent is killed while it is away and starts
    // again from its spool; then the hub comes back on its port (a
    // program dropped is killed with SIGKILL).
    drop(hub);
    let away = wall_ms();
    std::thread::sleep(std::time::Duration::from_millis(2500));
    drop(agent);
    let killed = wall_ms();
    let _agent = Program::start(OUTPOST, &agent_args);
    std::thread::sleep(std::time::Duration::from_millis(2500));
    let back = wall_ms();
    let hub = start_hub(&hub_config(&hub_addr));
    hub.wait_for("outpost hub listening for agents on");
    let after = values_until(&hub, back + 1500);

    // One run of sequence numbers: the new hub's go on where the old one's
    // acknowledged ones ended, each once, with no gap, across both runs of
    // the agent.
    let seqs = |v: &[(u64, u64)]| v.iter().map(|(_, s)| *s).collect::<Vec<_>>();
    let (before_seqs, after_seqs) = (seqs(&before), seqs(&after));
    assert!(before_seqs.windows(2).all(|w| w[1] == w[0] + 1), "{before_seqs:?}");
    assert!(after_seqs.windows(2).all(|w| w[1] == w[0] + 1), "{after_seqs:?}");
    assert!(
        after_seqs[0] <= before_seqs[before_seqs.len() - 1] + 1,
        "{before_seqs:?} then {after_seqs:?}"
    );
    // With the time they were taken: while the hub was away, by the first
    // run and by the second.
    let taken = |from: u64, to: u64| after.iter().filter(|(at, _)| *at > from && *at < to).count();
    assert!(taken(away + 200, killed) >= 1, "the first run's samples: {after:?}");
    assert!(taken(killed + 200, back) >= 1, "the second run's samples: {after:?}");
    drop(sim);
    let _ = std::fs::remove_dir_all(&dir);
}
