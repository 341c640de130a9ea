//! The agent: dials the hub, listens on nothing, and serves the devices its
//! configuration lists under its access policy. See `config/agent.toml`.
//!
//! ```sh
//! cargo run -p outpost-examples --bin outpost-agent -- examples/config/agent.toml
//! ```

use std::path::PathBuf;
use std::time::Duration;

use outpost_examples::{config_arg, hex, init_logging, load, relative};
use outpost_modbus_core::access::Policy;
use outpost_modbus_core::UnitId;
use outpost_tunnel_proto::{AgentId, Secret};
use outpost_tunnel_tokio::agent::{Agent, Device};
use outpost_tunnel_tokio::tls::AgentTls;

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    id: String,
    /// A file holding the agent's secret in hexadecimal.
    secret_file: PathBuf,
    hub: String,
    hub_name: String,
    tls: Tls,
    #[serde(default)]
    device: Vec<DeviceConfig>,
    #[serde(default)]
    policy: Policy,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Tls {
    cert: PathBuf,
    key: PathBuf,
    hub_ca: PathBuf,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct DeviceConfig {
    name: String,
    /// A Modbus TCP device, `host:port`.
    tcp: Option<String>,
    /// RTU devices behind a serial-to-TCP gateway, `host:port`.
    rtu_over_tcp: Option<String>,
    units: Vec<u8>,
    max_in_flight: Option<usize>,
    timeout_ms: Option<u64>,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    init_logging();
    let path = config_arg("outpost-agent");
    let config: Config = load(&path)?;
    let at = |p: &PathBuf| relative(&path, p);
    let tls = AgentTls::from_pem_files(
        &at(&config.tls.cert),
        &at(&config.tls.key),
        &at(&config.tls.hub_ca),
        &config.hub_name,
    )?;
    let secret_hex = outpost_tunnel_tokio::secrets::read_private(&at(&config.secret_file))?;
    let secret = Secret::new(&hex(&secret_hex).ok_or("the secret file is not hexadecimal")?)?;
    let mut builder = Agent::builder()
        .hub(config.hub.clone())
        .tls(tls)
        .identity(AgentId::new(&config.id)?, secret)
        .policy(config.policy);
    for d in &config.device {
        let mut device = match (&d.tcp, &d.rtu_over_tcp) {
            (Some(address), None) => Device::tcp(&d.name, address),
            (None, Some(address)) => Device::rtu_over_tcp(&d.name, address),
            _ => return Err(format!("device {}: give one of tcp or rtu_over_tcp", d.name).into()),
        };
        device = device.units(d.units.iter().copied().map(UnitId));
        if let Some(n) = d.max_in_flight {
            device = device.max_in_flight(n);
        }
        if let Some(ms) = d.timeout_ms {
            device = device.timeout(Duration::from_millis(ms));
        }
        builder = builder.device(device);
    }
    let mut agent = builder.build()?.spawn();
    println!(
        "outpost-agent {} dialing {} (it listens on nothing)",
        config.id, config.hub
    );
    agent.connected().await;
    println!("outpost-agent connected");
    tokio::signal::ctrl_c().await?;
    agent.shutdown();
    Ok(())
}
