//! `outpost agent`: runs the agent from `agent.toml` until SIGTERM or
//! Ctrl-C, which finish the requests in service and tell the hub the stop
//! is planned. SIGHUP reloads the access policy.

use std::path::Path;
use std::time::Duration;

use outpost_tunnel_tokio::config::AgentConfig;
use tracing::{error, info};

use crate::signals;
use crate::Failure;

/// How long requests in service may take to finish on a stop.
const STOP_GRACE: Duration = Duration::from_secs(5);

pub(crate) async fn run(path: &Path) -> Result<(), Failure> {
    let config = AgentConfig::load(path).map_err(|e| Failure::Config(e.lines()))?;
    let builder = config.prepare().map_err(|e| Failure::Config(e.lines()))?;
    // The recorder first: the agent's counters are made when it starts.
    let metrics = match config.metrics {
        Some(address) => Some(crate::metrics::bind(address).await?),
        None => None,
    };
    let agent = builder
        .build()
        .map_err(|e| Failure::Config(vec![format!("{}: {e}", path.display())]))?;
    let mut agent = agent.spawn();
    let endpoint = match metrics {
        Some((handle, listener)) => {
            let local = listener.local_addr().map_err(|e| Failure::Runtime(e.to_string()))?;
            println!("outpost agent metrics on http://{local}/metrics");
            let stats = agent.stats_handle();
            Some(crate::metrics::serve(listener, handle, move || {
                outpost_tunnel_tokio::metrics::record_agent(&stats.stats(), stats.is_connected())
            }))
        }
        None => None,
    };
    println!(
        "outpost agent {} dialing {} (it listens on nothing)",
        config.id, config.hub
    );
    let mut hangup = signals::hangups();
    let stop = signals::terminated();
    tokio::pin!(stop);
    let mut connected = false;
    loop {
        tokio::select! {
            () = agent.connected(), if !connected => {
                connected = true;
                println!("outpost agent connected");
            }
            () = signals::recv(&mut hangup) => {
                // The policy is reloaded; a file that fails keeps the old one.
                match AgentConfig::load(path) {
                    Ok(fresh) => {
                        let change = agent.set_policy(fresh.policy);
                        println!(
                            "outpost agent reloaded the policy: roles added {:?}, removed {:?}, changed {:?}",
                            change.added, change.removed, change.changed
                        );
                        info!("devices, the hub and TLS settings are read at start: restart the agent to apply changes to them");
                    }
                    Err(e) => {
                        for line in e.lines() {
                            error!("reload: policy kept as it was: {line}");
                        }
                    }
                }
            }
            () = &mut stop => break,
        }
    }
    println!("outpost agent stopping");
    drop(endpoint);
    agent.stop(STOP_GRACE).await;
    println!("outpost agent stopped");
    Ok(())
}
