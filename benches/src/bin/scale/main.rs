//! The scale benchmark: one hub and N idle agents in two processes on
//! loopback. It reports how long the agents take to connect, the memory
//! each agent costs on the hub and in the agents' process, the idle CPU of
//! both, and how long all agents take to come back after the hub is killed
//! and started again.
//!
//! ```sh
//! cargo run --release -p outpost-benches --bin scale -- --agents 1000
//! cargo run --release -p outpost-benches --bin scale -- --agents 10000 --idle-secs 20
//! ```
//!
//! The hub is killed once every session has been up for longer than the
//! agents' backoff cap (30 s), as after any long-running session.
//!
//! Options: `--agents N` (100), `--idle-secs S` (10, how long idle CPU is
//! sampled), `--limit-secs S` (120, the longest any phase may take before
//! the run fails), `--no-restart`, `--max-handshakes M` and
//! `--per-source K` (the hub's handshake limits; its defaults otherwise),
//! `--sources K` (the agents dial from K loopback addresses, 127.1.x.y;
//! one each by default, as agents at their own sites do; `--sources 1` is
//! every agent behind one NAT). Linux only (it reads `/proc`); the open
//! file limit must allow N sockets in each process.

#![forbid(unsafe_code)]

mod agents;
mod child;
mod hub;
mod pki;
mod proc;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use child::Process;
use pki::Error;

/// How old every session is when the hub is killed: past the agents'
/// default backoff cap.
const SESSION_AGE: Duration = Duration::from_secs(31);

struct Options {
    agents: usize,
    idle: Duration,
    limit: Duration,
    restart: bool,
    /// The hub's handshake limits (its defaults when not given).
    max_handshakes: Option<usize>,
    per_source: Option<usize>,
    /// How many addresses the agents dial from (one each by default).
    sources: Option<usize>,
}

fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("hub") => hub::run(
            &PathBuf::from(&args[1]),
            args[2].parse()?,
            args[3].parse()?,
            args[4].parse().ok(),
            args[5].parse().ok(),
        ),
        Some("agents") => agents::run(
            &PathBuf::from(&args[1]),
            args[2].parse()?,
            args[3].parse()?,
            args[4].parse()?,
        ),
        _ => coordinate(options(&args)?),
    }
}

fn options(args: &[String]) -> Result<Options, Error> {
    let mut options = Options {
        agents: 100,
        idle: Duration::from_secs(10),
        limit: Duration::from_secs(120),
        restart: true,
        max_handshakes: None,
        per_source: None,
        sources: None,
    };
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--agents" => options.agents = value()?.parse()?,
            "--idle-secs" => options.idle = Duration::from_secs(value()?.parse()?),
            "--limit-secs" => options.limit = Duration::from_secs(value()?.parse()?),
            "--no-restart" => options.restart = false,
            "--max-handshakes" => options.max_handshakes = Some(value()?.parse()?),
            "--per-source" => options.per_source = Some(value()?.parse()?),
            "--sources" => options.sources = Some(value()?.parse()?),
            // Passed by `cargo bench` to every bench target.
            "--bench" => {}
            other => return Err(format!("unknown option {other}").into()),
        }
    }
    Ok(options)
}

fn start_hub(dir: &std::path::Path, listen: SocketAddr, options: &Options) -> Result<(Process, SocketAddr), Error> {
    let limit = |v: Option<usize>| v.map_or_else(|| "default".to_owned(), |v| v.to_string());
    let hub = Process::start(&[
        "hub".into(),
        dir.display().to_string(),
        listen.to_string(),
        options.agents.to_string(),
        limit(options.max_handshakes),
        limit(options.per_source),
    ])?;
    hub.wait_until(options.limit, "the hub listening", |p| p.get("listening").is_some())?;
    let address = hub.get("listening").ok_or("no address")?.parse()?;
    Ok((hub, address))
}

fn kib(total: u64, per: usize) -> f64 {
    total as f64 / per.max(1) as f64
}

fn coordinate(options: Options) -> Result<(), Error> {
    let n = options.agents;
    let dir = std::env::temp_dir().join(format!("outpost-scale-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let result = run(&options, &dir);
    let _ = std::fs::remove_dir_all(&dir);
    let report = result?;
    println!("{report}");
    eprintln!("scale: {n} agents: done");
    Ok(())
}

fn run(options: &Options, dir: &std::path::Path) -> Result<String, Error> {
    let n = options.agents;
    pki::create(dir)?;
    let (mut hub, address) = start_hub(dir, SocketAddr::from(([127, 0, 0, 1], 0)), options)?;
    std::thread::sleep(Duration::from_millis(500));
    let hub_before = proc::rss_kib(hub.pid()).ok_or("hub memory")?;

    let mut agents = Process::start(&[
        "agents".into(),
        dir.display().to_string(),
        address.to_string(),
        n.to_string(),
        options.sources.unwrap_or(n).to_string(),
    ])?;
    let made = agents.wait_until(options.limit * 4, "the agents' certificates", |p| {
        p.get("ready").is_some()
    })?;
    eprintln!("scale: {n} agents configured in {made:.1?}");
    let agents_before = proc::rss_kib(agents.pid()).ok_or("agents memory")?;

    agents.send("go")?;
    let connected = hub.wait_until(options.limit, "every agent connected", |p| {
        p.number("agents") as usize >= n
    })?;
    // Attempts past the first of each agent: turned away, or cut short to
    // make room for others.
    let retries = agents.number("attempts").saturating_sub(n as u64);
    eprintln!("scale: {n} agents connected in {connected:.2?}");
    let all_up = Instant::now();
    // Let the sessions settle (their first keepalives, freed handshakes).
    std::thread::sleep(Duration::from_secs(2));
    let hub_after = proc::rss_kib(hub.pid()).ok_or("hub memory")?;
    let agents_after = proc::rss_kib(agents.pid()).ok_or("agents memory")?;

    let cpu = |pid| proc::cpu_time(pid).unwrap_or_default();
    let (hub_cpu, agents_cpu, started) = (cpu(hub.pid()), cpu(agents.pid()), Instant::now());
    std::thread::sleep(options.idle);
    let elapsed = started.elapsed().as_secs_f64();
    let hub_idle = (cpu(hub.pid()) - hub_cpu).as_secs_f64() / elapsed * 100.0;
    let agents_idle = (cpu(agents.pid()) - agents_cpu).as_secs_f64() / elapsed * 100.0;
    if (hub.number("agents") as usize) < n {
        return Err("agents were lost while idle".into());
    }

    let mut report = format!(
        "| agents | connected in | retries | hub memory per agent | agents' memory per agent | idle CPU, hub | idle CPU, agents |{}\n",
        if options.restart { " back after a hub restart in | retries |" } else { "" }
    );
    report += &format!(
        "|---|---|---|---|---|---|---|{}\n",
        if options.restart { "---|---|" } else { "" }
    );
    report += &format!(
        "| {n} | {:.2} s | {retries} | {:.1} KiB | {:.1} KiB | {hub_idle:.1}% | {agents_idle:.1}% |",
        connected.as_secs_f64(),
        kib(hub_after.saturating_sub(hub_before), n),
        kib(agents_after.saturating_sub(agents_before), n),
    );
    if options.restart {
        // Sessions that stayed up longer than the agents' backoff cap (30 s)
        // start the backoff over, as after any long-running session.
        let up = all_up.elapsed();
        if up < SESSION_AGE {
            std::thread::sleep(SESSION_AGE - up);
        }
        let before = agents.number("attempts");
        hub.kill();
        let killed = Instant::now();
        agents.wait_until(options.limit, "agents noticing the hub is gone", |p| {
            p.number("connected") == 0
        })?;
        let (hub, _) = start_hub(dir, address, options)?;
        hub.wait_until(options.limit, "every agent back", |p| p.number("agents") as usize >= n)?;
        let back = killed.elapsed();
        let retries = agents.number("attempts").saturating_sub(before + n as u64);
        report += &format!(" {:.2} s | {retries} |", back.as_secs_f64());
    }
    eprintln!(
        "scale: hub {hub_before} KiB before, {hub_after} KiB after; agents' process {agents_before} KiB configured, {agents_after} KiB connected"
    );
    Ok(report)
}
