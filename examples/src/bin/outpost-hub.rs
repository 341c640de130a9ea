//! The hub: accepts agents, and runs the Modbus TCP and Modbus/TCP
//! Security gateways its configuration lists. See `config/hub.toml`.
//! SIGHUP reloads the credentials, the TLS files and CRLs (of agents and of
//! secure gateways' clients).
//!
//! ```sh
//! cargo run -p outpost-examples --bin outpost-hub -- examples/config/hub.toml
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use outpost_examples::{config_arg, init_logging, load, relative};
use outpost_modbus_core::access::Policy;
use outpost_modbus_core::UnitId;
use outpost_tunnel_proto::AgentId;
use outpost_tunnel_tokio::binding::Role;
use outpost_tunnel_tokio::hub::{FileCredentials, GatewayBuilder, Hub, Route};
use outpost_tunnel_tokio::security::SecureServerTls;
use outpost_tunnel_tokio::tls::HubTls;

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    listen: SocketAddr,
    credentials: PathBuf,
    tls: Tls,
    /// Plain Modbus TCP gateways: off unless listed; each acts as one role.
    #[serde(default)]
    gateway: Vec<Gateway>,
    /// Modbus/TCP Security gateways: each client acts as its certificate's role.
    #[serde(default)]
    secure_gateway: Vec<SecureGateway>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Tls {
    cert: PathBuf,
    key: PathBuf,
    agent_ca: PathBuf,
    crl: Option<PathBuf>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Gateway {
    listen: SocketAddr,
    role: String,
    /// Where requests for units without a route of their own go.
    default: Option<Target>,
    #[serde(default)]
    routes: Vec<UnitRoute>,
    /// The hub's copy of the policy, to refuse early (optional).
    policy: Option<Policy>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct SecureGateway {
    listen: SocketAddr,
    /// The gateway's certificate and key (the clients verify it).
    cert: PathBuf,
    key: PathBuf,
    /// The CA the clients' certificates must chain to, and its CRLs.
    client_ca: PathBuf,
    crl: Option<PathBuf>,
    default: Option<Target>,
    #[serde(default)]
    routes: Vec<UnitRoute>,
    /// The hub's copy of the policy, to refuse early (optional).
    policy: Option<Policy>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Target {
    agent: String,
    target: String,
    device_unit: Option<u8>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct UnitRoute {
    unit: u8,
    agent: String,
    target: String,
    device_unit: Option<u8>,
}

/// Adds a gateway's routes and policy to its settings.
fn routed(
    mut builder: GatewayBuilder,
    default: &Option<Target>,
    routes: &[UnitRoute],
    policy: &Option<Policy>,
) -> Result<GatewayBuilder, Box<dyn std::error::Error>> {
    if let Some(t) = default {
        builder = builder.route_all(route(&t.agent, &t.target, t.device_unit)?);
    }
    for r in routes {
        builder = builder.route_unit(UnitId(r.unit), route(&r.agent, &r.target, r.device_unit)?);
    }
    if let Some(policy) = policy {
        builder = builder.policy(policy.clone());
    }
    Ok(builder)
}

fn route(agent: &str, target: &str, unit: Option<u8>) -> Result<Route, Box<dyn std::error::Error>> {
    let route = Route::new(AgentId::new(agent)?, target);
    Ok(match unit {
        Some(u) => route.with_unit(UnitId(u)),
        None => route,
    })
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    init_logging();
    let path = config_arg("outpost-hub");
    let config: Config = load(&path)?;
    let at = |p: &PathBuf| relative(&path, p);
    let load_tls = || {
        HubTls::from_pem_files(
            &at(&config.tls.cert),
            &at(&config.tls.key),
            &at(&config.tls.agent_ca),
            config.tls.crl.as_ref().map(at).as_deref(),
        )
    };
    let credentials = Arc::new(FileCredentials::load(at(&config.credentials))?);
    let hub = Hub::builder()
        .listen(config.listen)
        .tls(load_tls()?)
        .credentials(credentials.clone())
        .start()
        .await?;
    println!("outpost-hub listening for agents on {}", hub.local_addr());
    let mut gateways = Vec::new();
    for g in &config.gateway {
        let builder = GatewayBuilder::new(g.listen, Role::new(&g.role)?);
        let gateway = hub.gateway(routed(builder, &g.default, &g.routes, &g.policy)?).await?;
        println!("outpost-hub gateway for role {} on {}", g.role, gateway.local_addr());
        gateways.push(gateway);
    }
    let secure_tls = |g: &SecureGateway| {
        SecureServerTls::from_pem_files(
            &at(&g.cert),
            &at(&g.key),
            &at(&g.client_ca),
            g.crl.as_ref().map(at).as_deref(),
        )
    };
    let mut secure = Vec::new();
    for g in &config.secure_gateway {
        let tls = secure_tls(g)?;
        let builder = GatewayBuilder::secure(g.listen, tls);
        let gateway = hub.gateway(routed(builder, &g.default, &g.routes, &g.policy)?).await?;
        println!(
            "outpost-hub modbus/tcp security gateway on {} (roles from client certificates)",
            gateway.local_addr()
        );
        secure.push((gateway, g));
    }
    let mut events = hub.events();
    // SIGHUP reloads the credentials and the TLS files (CA, CRL): revoked
    // agents' live sessions close at once; a reload that fails keeps the
    // old state and says why.
    let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
    loop {
        tokio::select! {
            event = events.recv() => match event {
                Ok(event) => println!("outpost-hub event: {event:?}"),
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => println!("outpost-hub: {n} events missed"),
                Err(_) => break,
            },
            _ = hangup.recv() => {
                if let Err(e) = credentials.reload() {
                    tracing::error!(error = %e, "reload: credentials kept as they were");
                }
                let tls = match load_tls() {
                    Ok(tls) => Some(tls),
                    Err(e) => {
                        tracing::error!(error = %e, "reload: TLS settings kept as they were");
                        None
                    }
                };
                let closed = hub.reload(tls);
                println!("outpost-hub reloaded; sessions closed: {closed:?}");
                // Secure gateways: new client CA and CRL; revoked clients closed.
                for (gateway, g) in &secure {
                    match secure_tls(g) {
                        Ok(tls) => {
                            let closed = gateway.reload(tls);
                            println!("outpost-hub secure gateway {} reloaded; clients closed: {closed:?}", gateway.local_addr());
                        }
                        Err(e) => tracing::error!(error = %e, gateway = %gateway.local_addr(), "reload: secure gateway TLS kept as it was"),
                    }
                }
            }
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    Ok(())
}
