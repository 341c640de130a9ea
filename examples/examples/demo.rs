//! The whole system in one process on loopback: a Modbus device on the
//! "plant" side, an agent that dials out to a hub and polls the device,
//! and a hub with a Modbus TCP gateway and a subscriber of the agent's
//! values on the "IT" side. Certificates are made in memory.
//!
//! ```sh
//! cargo run -p outpost-examples --example demo
//! ```

use std::sync::{Arc, Mutex};
use std::time::Duration;

use outpost_modbus_core::access::{Policy, Table};
use outpost_modbus_core::scan::{Deadband, Encoding, Point, Value};
use outpost_modbus_core::server::DataModel;
use outpost_modbus_core::{ExceptionCode, RegisterRange, UnitId, Words};
use outpost_tunnel_proto::{AgentId, MemoryCredentials, Secret};
use outpost_tunnel_tokio::agent::{Agent, Device, GroupSpec, PointSpec};
use outpost_tunnel_tokio::binding::Role;
use outpost_tunnel_tokio::hub::{Filter, GatewayBuilder, Hub, Route, Subscription};
use outpost_tunnel_tokio::modbus::{Client, ClientError, Requests, Server};
use outpost_tunnel_tokio::tls::{AgentTls, HubTls};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, ExtendedKeyUsagePurpose, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// A tank level transmitter: ten holding registers.
struct Tank([u16; 10]);

impl DataModel for Tank {
    fn read_holding_registers(&mut self, range: RegisterRange, out: &mut [u16]) -> Result<(), ExceptionCode> {
        let values = self
            .0
            .get(range.start() as usize..=range.last() as usize)
            .ok_or(ExceptionCode::IllegalDataAddress)?;
        out.copy_from_slice(values);
        Ok(())
    }

    fn write_single_register(&mut self, address: u16, value: u16) -> Result<(), ExceptionCode> {
        *self
            .0
            .get_mut(address as usize)
            .ok_or(ExceptionCode::IllegalDataAddress)? = value;
        Ok(())
    }

    fn write_multiple_registers(&mut self, start: u16, values: Words<'_>) -> Result<(), ExceptionCode> {
        for (i, v) in values.iter().enumerate() {
            *self
                .0
                .get_mut(start as usize + i)
                .ok_or(ExceptionCode::IllegalDataAddress)? = v;
        }
        Ok(())
    }
}

type Leaf = (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>);

fn ca() -> Result<CertifiedIssuer<'static, KeyPair>, rcgen::Error> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    CertifiedIssuer::self_signed(params, KeyPair::generate()?)
}

fn leaf(ca: &CertifiedIssuer<'static, KeyPair>, name: &str, client: bool) -> Result<Leaf, rcgen::Error> {
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(vec![name.to_owned()])?;
    params.extended_key_usages = vec![if client {
        ExtendedKeyUsagePurpose::ClientAuth
    } else {
        ExtendedKeyUsagePurpose::ServerAuth
    }];
    let cert = params.signed_by(&key, ca)?;
    Ok((
        vec![cert.der().clone()],
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
    ))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Plant side: a device on the OT network.
    let device = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let device_addr = device.local_addr()?;
    let tank = Arc::new(Mutex::new(Tank([420, 0, 0, 0, 0, 0, 0, 0, 0, 75])));
    let device_tank = Arc::clone(&tank);
    tokio::spawn(Server::builder().serve(device, Arc::clone(&tank)));
    println!("plant: tank level transmitter (Modbus TCP) at {device_addr}");

    // Certificates: one CA for hubs, one for agents.
    let (hub_ca, agent_ca) = (ca()?, ca()?);
    let (hub_chain, hub_key) = leaf(&hub_ca, "hub.example", false)?;
    let (agent_chain, agent_key) = leaf(&agent_ca, "plant-7", true)?;
    let secret = Secret::new(b"plant-7 shares this secret with the hub")?;

    // IT side: the hub, with the agent's secret, and a gateway for SCADA.
    let mut credentials = MemoryCredentials::new();
    credentials.insert(AgentId::new("plant-7")?, secret.clone());
    let hub = Hub::builder()
        .tls(HubTls::new(hub_chain, hub_key, &[agent_ca.der().clone()], Vec::new())?)
        .credentials(Arc::new(credentials))
        .start()
        .await?;
    println!("it:    hub listening for agents at {}", hub.local_addr());

    // Plant side: the agent. Its policy lets "scada" read the tank and set
    // its setpoint (register 9), nothing else.
    let policy: Policy = toml::from_str(
        r#"
        [roles.scada]
        units = [1]
        functions = ["read", "write"]
        holding_registers = { read = [[0, 9]], write = [[9, 9]] }
        "#,
    )?;
    let mut agent = Agent::builder()
        .hub(hub.local_addr().to_string())
        .tls(AgentTls::new(
            agent_chain,
            agent_key,
            &[hub_ca.der().clone()],
            "hub.example",
        )?)
        .identity(AgentId::new("plant-7")?, secret)
        .policy(policy)
        .device(Device::tcp("tank-1", &device_addr.to_string()).units([UnitId(1)]))
        // Data acquisition: the agent polls the tank five times a second
        // and reports changes (the level past a deadband of 2).
        .scan(
            GroupSpec::new("tank", UnitId(1), Duration::from_millis(200))
                .device("tank-1")
                .point(
                    PointSpec::new("level", Point::new(Table::HoldingRegisters, 0, Encoding::U16)?)
                        .deadband(Deadband::new(2.0)),
                )
                .point(PointSpec::new(
                    "setpoint",
                    Point::new(Table::HoldingRegisters, 9, Encoding::U16)?,
                )),
        )
        .build()?
        .spawn();
    let mut values = hub.subscribe(Filter::all().agent("plant-7").group("tank"));
    tokio::time::timeout(Duration::from_secs(10), agent.connected()).await?;
    println!("plant: agent plant-7 connected out to the hub (mutual TLS 1.3 + channel-bound secret)");

    // A Rust program on the IT side, through the hub's API.
    let tank = hub.agent("plant-7")?.modbus("tank-1", Role::new("scada")?);
    let level = tank.read_holding_registers(UnitId(1), 0, 1).await?;
    println!("it:    hub API read tank level: {}", level[0]);
    tank.write_single_register(UnitId(1), 9, 80).await?;
    println!("it:    hub API set setpoint to 80");

    // The agent's scans arrive at a subscriber: the first scan reports
    // every point, then changes come as they happen on the device.
    print_until(&mut values, "setpoint", 80).await?;
    tank_model_set(&device_tank, 0, 431);
    println!("plant: the tank's level rises to 431");
    print_until(&mut values, "level", 431).await?;

    // Unmodified Modbus TCP software, through the gateway.
    let gateway = hub
        .gateway(
            GatewayBuilder::new("127.0.0.1:0".parse()?, Role::new("scada")?)
                .route_all(Route::new(AgentId::new("plant-7")?, "tank-1")),
        )
        .await?;
    println!("it:    Modbus TCP gateway for SCADA at {}", gateway.local_addr());
    let scada = Client::tcp(gateway.local_addr().to_string()).build();
    let values = scada.read_holding_registers(UnitId(1), 0, 10).await?;
    println!("it:    SCADA read registers 0..9 through the gateway: {values:?}");

    // The plant's policy says no: SCADA may not write the level register.
    match scada.write_single_register(UnitId(1), 0, 0).await {
        Err(ClientError::Exception(code)) => {
            println!("it:    SCADA write to register 0 denied by the plant's policy: exception {code:?}")
        }
        other => println!("it:    unexpected: {other:?}"),
    }
    // Every listening socket of this process, and whose it is: none is the agent's.
    let owners = [
        (device_addr.port(), "the device simulator"),
        (hub.local_addr().port(), "the hub"),
        (gateway.local_addr().port(), "the gateway"),
    ];
    match listening_ports() {
        Some(ports) => {
            for port in &ports {
                let owner = owners.iter().find(|(p, _)| p == port).map_or("UNKNOWN", |(_, o)| o);
                println!("check: listening on port {port}: {owner}");
            }
            let agents = ports.iter().filter(|p| !owners.iter().any(|(o, _)| o == *p)).count();
            println!("check: the agent listens on nothing ({agents} listening sockets not accounted for)");
        }
        None => println!("check: the agent only dials out (no /proc here to list listening sockets)"),
    }
    let stats = agent.stats();
    println!(
        "plant: agent served {} requests, denied {}; hub moved {} bytes in, {} out",
        stats.requests,
        stats.denials,
        hub.stats().bytes_in,
        hub.stats().bytes_out
    );
    Ok(())
}

/// Prints what the subscription brings until `point` is `wanted`.
async fn print_until(values: &mut Subscription, point: &str, wanted: u16) -> Result<(), Box<dyn std::error::Error>> {
    loop {
        let Some(Ok(v)) = tokio::time::timeout(Duration::from_secs(5), values.recv()).await? else {
            return Err("the subscription ended".into());
        };
        let value = v.value.map_or("-".to_string(), |x| x.to_string());
        println!(
            "it:    subscriber: {}/{}/{} = {value} ({:?})",
            v.agent, v.group, v.point, v.quality
        );
        if v.point == point && v.value == Some(Value::U16(wanted)) {
            return Ok(());
        }
    }
}

/// Sets a register of the simulated tank, as the process would.
fn tank_model_set(tank: &Mutex<Tank>, address: usize, value: u16) {
    if let Ok(mut tank) = tank.lock() {
        tank.0[address] = value;
    }
}

/// The ports this process listens on (TCP, from /proc on Linux).
fn listening_ports() -> Option<Vec<u16>> {
    let mut inodes = std::collections::HashSet::new();
    for entry in std::fs::read_dir("/proc/self/fd").ok()?.flatten() {
        let target = std::fs::read_link(entry.path()).ok()?;
        let target = target.to_string_lossy();
        if let Some(inode) = target.strip_prefix("socket:[").and_then(|s| s.strip_suffix(']')) {
            inodes.insert(inode.to_owned());
        }
    }
    let mut ports = Vec::new();
    for table in ["/proc/self/net/tcp", "/proc/self/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() > 9 && f[3] == "0A" && inodes.contains(f[9]) {
                let port = f[1].rsplit(':').next().and_then(|p| u16::from_str_radix(p, 16).ok())?;
                ports.push(port);
            }
        }
    }
    ports.sort_unstable();
    Some(ports)
}
