//! `outpost hub`: runs the hub and its gateways from `hub.toml` until
//! SIGTERM or Ctrl-C; SIGHUP reloads credentials, certificates and CRLs.

use std::path::Path;

use outpost_tunnel_tokio::config::HubConfig;
use outpost_tunnel_tokio::hub::{Filter, Gateway, HubEvent, Lagged, PointValue, Quality, Subscription};
use tracing::{error, info};

use crate::signals;

/// How long gateways may take to answer what is in flight on a stop.
const STOP_GRACE: std::time::Duration = std::time::Duration::from_secs(5);
use crate::Failure;

pub(crate) async fn run(path: &Path, values: Option<&str>) -> Result<(), Failure> {
    let config = HubConfig::load(path).map_err(|e| Failure::Config(e.lines()))?;
    let prepared = config.prepare().map_err(|e| Failure::Config(e.lines()))?;
    // The recorder first: the hub's counters are made when it starts.
    let metrics = match config.metrics {
        Some(address) => Some(crate::metrics::bind(address).await?),
        None => None,
    };
    let credentials = prepared.credentials.clone();
    let hub = prepared
        .builder
        .start()
        .await
        .map_err(|e| Failure::Runtime(format!("{}: listen = {}: {e}", path.display(), config.listen)))?;
    println!("outpost hub listening for agents on {}", hub.local_addr());
    let hub = std::sync::Arc::new(hub);
    let _endpoint = match metrics {
        Some((handle, listener)) => {
            let local = listener.local_addr().map_err(|e| Failure::Runtime(e.to_string()))?;
            println!("outpost hub metrics on http://{local}/metrics");
            let hub = std::sync::Arc::clone(&hub);
            Some(crate::metrics::serve(listener, handle, move || {
                outpost_tunnel_tokio::metrics::record_hub(&hub.stats())
            }))
        }
        None => None,
    };
    let mut secure: Vec<(Gateway, usize)> = Vec::new();
    let mut plain: Vec<Gateway> = Vec::new();
    for builder in prepared.gateways {
        let is_secure = builder.is_secure();
        let address = builder.listen_address();
        let gateway = hub
            .gateway(builder)
            .await
            .map_err(|e| Failure::Runtime(format!("{}: gateway on {address}: {e}", path.display())))?;
        if is_secure {
            println!(
                "outpost hub modbus/tcp security gateway on {} (roles from client certificates)",
                gateway.local_addr()
            );
            secure.push((gateway, secure.len()));
        } else {
            let role = &config.gateway[plain.len()].role;
            println!(
                "outpost hub gateway for role {} on {}",
                role.as_deref().unwrap_or("?"),
                gateway.local_addr()
            );
            plain.push(gateway);
        }
    }
    let mut events = hub.events();
    let mut values = match values {
        Some(filter) => Some(hub.subscribe(filter_of(filter)?)),
        None => None,
    };
    let mut hangup = signals::hangups();
    let stop = signals::terminated();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            event = events.recv() => match event {
                Ok(event) => println!("outpost hub event: {}", describe(&event)),
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => println!("outpost hub: {n} events missed"),
                Err(_) => break,
            },
            () = signals::recv(&mut hangup) => {
                // Files as they are now; a file that fails keeps the old state.
                if let Err(e) = credentials.reload() {
                    error!(error = %e, "reload: credentials kept as they were");
                }
                let tls = match config.hub_tls() {
                    Ok(tls) => Some(tls),
                    Err(e) => {
                        error!(error = %e, "reload: TLS settings kept as they were");
                        None
                    }
                };
                let closed = hub.reload(tls);
                println!("outpost hub reloaded; sessions closed: {closed:?}");
                for (gateway, index) in &secure {
                    match config.secure_tls(*index) {
                        Ok(tls) => {
                            let closed = gateway.reload(tls);
                            println!("outpost hub secure gateway {} reloaded; clients closed: {closed:?}", gateway.local_addr());
                        }
                        Err(e) => error!(error = %e, gateway = %gateway.local_addr(), "reload: secure gateway TLS kept as it was"),
                    }
                }
            }
            value = next_value(&mut values) => match value {
                Some(Ok(v)) => println!("outpost hub value: {}", describe_value(&v)),
                Some(Err(lagged)) => println!("outpost hub: {lagged}"),
                None => values = None,
            },
            () = &mut stop => break,
        }
    }
    info!("stopping: gateways answer what is in flight, then agents are told the hub is stopping");
    // Gateways first (nothing new read; requests in flight answered, for
    // STOP_GRACE at most), then the hub (a CLOSE to each agent).
    let mut stopping = tokio::task::JoinSet::new();
    for gateway in plain.into_iter().chain(secure.into_iter().map(|(g, _)| g)) {
        stopping.spawn(gateway.stop(STOP_GRACE));
    }
    while stopping.join_next().await.is_some() {}
    drop(_endpoint);
    drop(hub);
    println!("outpost hub stopped");
    Ok(())
}

/// `agent/device/group/point`, each part optional from the right, `*` for any.
fn filter_of(text: &str) -> Result<Filter, Failure> {
    let parts: Vec<&str> = text.split('/').collect();
    if parts.len() > 4 || parts.iter().any(|p| p.is_empty()) {
        return Err(Failure::Config(vec![format!(
            "--values {text:?}: give agent/device/group/point, each part optional from the right, * for any"
        )]));
    }
    let mut filter = Filter::all();
    for (i, part) in parts.into_iter().enumerate() {
        if part == "*" {
            continue;
        }
        filter = match i {
            0 => filter.agent(part),
            1 => filter.device(part),
            2 => filter.group(part),
            _ => filter.point(part),
        };
    }
    Ok(filter)
}

/// The next value of a subscription, if there is one.
async fn next_value(values: &mut Option<Subscription>) -> Option<Result<PointValue, Lagged>> {
    match values {
        Some(values) => values.recv().await,
        None => std::future::pending().await,
    }
}

/// A value in words: where, what, how good, when (by the agent's clock).
fn describe_value(v: &PointValue) -> String {
    let value = match v.value {
        Some(value) => format!("{value}"),
        None => "-".to_string(),
    };
    let quality = match v.quality {
        Quality::Good => "good".to_string(),
        Quality::Stale => "stale".to_string(),
        Quality::CommFailure => "comm-failure".to_string(),
        Quality::DeviceException(code) => format!("exception {:#04x}", u8::from(code)),
        other => format!("{other:?}"),
    };
    let snapshot = if v.snapshot { " snapshot" } else { "" };
    format!(
        "{}/{}/{}/{} = {value} ({quality}) at {} ms seq {}{snapshot}",
        v.agent, v.device, v.group, v.point, v.at_ms, v.seq
    )
}

/// An event in words.
fn describe(event: &HubEvent) -> String {
    match event {
        HubEvent::Connected { agent, peer } => format!("Connected {agent} from {peer}"),
        HubEvent::Disconnected { agent, reason } => format!("Disconnected {agent}: {reason}"),
        HubEvent::Superseded { agent, old_peer } => format!("Superseded {agent} (the session from {old_peer})"),
        HubEvent::Revoked { agent, reason } => format!("Revoked {agent}: {reason}"),
        HubEvent::Rejected { peer, reason } => format!("Rejected {peer}: {reason}"),
        other => format!("{other:?}"),
    }
}
