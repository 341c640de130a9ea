//! Makes a small PKI for trying Outpost, and revokes its agents.
//!
//! ```sh
//! cargo run -p outpost-examples --bin outpost-certs -- <dir> [hub-name] [agent-id] [--ca-days N] [--days N]
//! cargo run -p outpost-examples --bin outpost-certs -- revoke <dir> <agent-id>
//! cargo run -p outpost-examples --bin outpost-certs -- client <dir> <name> --role <role>
//! cargo run -p outpost-examples --bin outpost-certs -- revoke-client <dir> <name>
//! ```
//!
//! The first form writes a hub CA and an agent CA (certificates and keys),
//! the hub's certificate, an agent's certificate, the agent's secret, the
//! hub's credentials file, an empty CRL of the agent CA, and `issued.toml`
//! (which serial each agent's certificate has). CAs are valid for 10 years
//! (`--ca-days`), leaves for 1 year (`--days`). Private keys, the secret and
//! the credentials file are written readable by their owner only (0600): the
//! hub and the agent refuse key and secret files that others can read.
//!
//! `revoke` adds the agent's certificate to the agent CA's CRL
//! (`agent-ca.crl.pem`, signed with the kept CA key, valid 30 days) and
//! marks the agent revoked in `credentials.toml`; a hub reloads both
//! without a restart.
//!
//! `client` makes an IT client's certificate for the hub's Modbus/TCP
//! Security gateway (`clients/<name>.pem` and `.key`, subject `CN=<name>`),
//! signed by the IT client CA (`client-ca.pem`, made by the first form)
//! and carrying `--role` in the role extension (1.3.6.1.4.1.50316.802.1, a
//! UTF8String). The client verifies the gateway against `hub-ca.pem`.
//! `revoke-client` adds it to `client-ca.crl.pem`.
//!
//! A real deployment keeps each CA key offline, away from the hub.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyIdMethod, KeyPair, RevokedCertParams, SerialNumber,
};
use time::{Duration, OffsetDateTime};

const HUB_CA: &str = "Outpost hub CA";
const AGENT_CA: &str = "Outpost agent CA";
const CLIENT_CA: &str = "Outpost IT client CA";
/// The Modbus/TCP Security role extension.
const ROLE_OID: &[u64] = &[1, 3, 6, 1, 4, 1, 50316, 802, 1];
/// How long a CRL is valid: a hub refuses an expired one.
const CRL_DAYS: i64 = 30;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn ca_params(name: &str, days: i64) -> Result<CertificateParams> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    let now = OffsetDateTime::now_utc();
    params.not_before = now - Duration::hours(1);
    params.not_after = now + Duration::days(days);
    Ok(params)
}

/// A leaf certificate for `name`, valid `days` days, with a random serial.
fn leaf(ca: &Issuer<'_, KeyPair>, name: &str, client: bool, days: i64) -> Result<(String, String, u64)> {
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(vec![name.to_owned()])?;
    params.distinguished_name.push(DnType::CommonName, name);
    params.extended_key_usages = vec![if client {
        ExtendedKeyUsagePurpose::ClientAuth
    } else {
        ExtendedKeyUsagePurpose::ServerAuth
    }];
    let now = OffsetDateTime::now_utc();
    params.not_before = now - Duration::hours(1);
    params.not_after = now + Duration::days(days);
    let serial = u64::from_be_bytes(random::<8>()?) >> 1;
    params.serial_number = Some(SerialNumber::from(serial));
    Ok((params.signed_by(&key, ca)?.pem(), key.serialize_pem(), serial))
}

fn random<const N: usize>() -> Result<[u8; N]> {
    let mut bytes = [0u8; N];
    outpost_tunnel_tokio::tls::provider()
        .secure_random
        .fill(&mut bytes)
        .map_err(|_| "no randomness")?;
    Ok(bytes)
}

/// Writes a file others may read (certificates, the CRL, the index).
fn write_public(path: &Path, content: &str) -> Result<()> {
    std::fs::write(path, content).map_err(|e| format!("{}: {e}", path.display()))?;
    println!("wrote {}", path.display());
    Ok(())
}

/// Writes a file only its owner may read (keys, secrets, credentials).
fn write_private(path: &Path, content: &str) -> Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        options.mode(0o600);
        // An existing file keeps its mode on open: set it first.
        if path.exists() {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
        }
    }
    let mut file = options.open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    file.write_all(content.as_bytes())?;
    println!("wrote {} (owner only)", path.display());
    Ok(())
}

/// The TOML key of an agent id: quoted, so ids with dots are one key.
fn key(agent: &str) -> String {
    format!("\"{agent}\"")
}

/// A CRL of the agent CA revoking `serials`, numbered `number`.
fn crl(dir: &Path, serials: &[u64], number: u64) -> Result<String> {
    crl_of(dir, "agent-ca", AGENT_CA, serials, number)
}

/// A CRL of the CA whose files are `<file>.pem`/`.key` in `dir`.
fn crl_of(dir: &Path, file: &str, name: &str, serials: &[u64], number: u64) -> Result<String> {
    let path = dir.join(format!("{file}.key"));
    let key = KeyPair::from_pem(&std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?)?;
    // The same name and key as the CA certificate: its CRLs verify against it.
    let issuer = Issuer::new(ca_params(name, 1)?, key);
    let now = OffsetDateTime::now_utc();
    let params = CertificateRevocationListParams {
        this_update: now,
        next_update: now + Duration::days(CRL_DAYS),
        crl_number: SerialNumber::from(number),
        issuing_distribution_point: None,
        revoked_certs: serials
            .iter()
            .map(|s| RevokedCertParams {
                serial_number: SerialNumber::from(*s),
                revocation_time: now,
                reason_code: None,
                invalidity_date: None,
            })
            .collect(),
        key_identifier_method: KeyIdMethod::Sha256,
    };
    Ok(params.signed_by(&issuer)?.pem()?)
}

/// What `issued.toml` records.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
struct Issued {
    /// Serial of each agent's certificate, by agent id.
    agents: std::collections::BTreeMap<String, u64>,
    /// Serials revoked so far.
    revoked: Vec<u64>,
    /// The number of the last CRL written.
    crl_number: u64,
    /// Serial of each IT client's certificate, by name.
    #[serde(default)]
    clients: std::collections::BTreeMap<String, u64>,
    /// IT client serials revoked so far.
    #[serde(default)]
    clients_revoked: Vec<u64>,
    /// The number of the last IT client CRL written.
    #[serde(default)]
    client_crl_number: u64,
}

fn read_issued(dir: &Path) -> Result<Issued> {
    let index = dir.join("issued.toml");
    let text = std::fs::read_to_string(&index).map_err(|e| format!("{}: {e}", index.display()))?;
    Ok(toml::from_str(&text).map_err(|e| format!("{}: {e}", index.display()))?)
}

/// An IT client's certificate carrying `role`, signed by the client CA.
fn client(dir: &Path, name: &str, role: &str, days: i64) -> Result<()> {
    outpost_tunnel_tokio::binding::Role::new(role)
        .map_err(|_| format!("role {role:?}: 1 to 64 printable ASCII characters, no spaces"))?;
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)) {
        return Err(format!("client name {name:?}: letters, digits, '-', '_' and '.' only").into());
    }
    let mut issued = read_issued(dir)?;
    let path = dir.join("client-ca.key");
    let key = KeyPair::from_pem(&std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?)?;
    let issuer = Issuer::new(ca_params(CLIENT_CA, 1)?, key);
    let leaf_key = KeyPair::generate()?;
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.distinguished_name.push(DnType::CommonName, name);
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let now = OffsetDateTime::now_utc();
    params.not_before = now - Duration::hours(1);
    params.not_after = now + Duration::days(days);
    let serial = u64::from_be_bytes(random::<8>()?) >> 1;
    params.serial_number = Some(SerialNumber::from(serial));
    // The role: one non-critical extension holding a DER UTF8String.
    let mut value = vec![0x0C, role.len() as u8];
    value.extend_from_slice(role.as_bytes());
    params
        .custom_extensions
        .push(rcgen::CustomExtension::from_oid_content(ROLE_OID, value));
    let cert = params.signed_by(&leaf_key, &issuer)?;
    let clients = dir.join("clients");
    std::fs::create_dir_all(&clients)?;
    write_public(&clients.join(format!("{name}.pem")), &cert.pem())?;
    write_private(&clients.join(format!("{name}.key")), &leaf_key.serialize_pem())?;
    issued.clients.insert(name.to_owned(), serial);
    write_public(&dir.join("issued.toml"), &toml::to_string(&issued)?)?;
    println!("issued {name} with role {role} (certificate serial {serial})");
    Ok(())
}

fn revoke_client(dir: &Path, name: &str) -> Result<()> {
    let mut issued = read_issued(dir)?;
    let serial = *issued.clients.get(name).ok_or_else(|| {
        format!(
            "{}: no client certificate issued to {name:?}",
            dir.join("issued.toml").display()
        )
    })?;
    if !issued.clients_revoked.contains(&serial) {
        issued.clients_revoked.push(serial);
    }
    issued.client_crl_number += 1;
    let crl = crl_of(
        dir,
        "client-ca",
        CLIENT_CA,
        &issued.clients_revoked,
        issued.client_crl_number,
    )?;
    write_public(&dir.join("client-ca.crl.pem"), &crl)?;
    write_public(&dir.join("issued.toml"), &toml::to_string(&issued)?)?;
    println!("revoked client {name} (certificate serial {serial}); reload the hub (SIGHUP) to close its connections");
    Ok(())
}

fn make(dir: &Path, hub_name: &str, agent: &str, ca_days: i64, days: i64) -> Result<()> {
    outpost_tunnel_proto::AgentId::new(agent).map_err(|e| format!("agent id {agent:?}: {e}"))?;
    if agent.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(format!(
            "agent id {agent:?}: agent ids are DNS names, compared in lowercase: write it in lowercase"
        )
        .into());
    }
    std::fs::create_dir_all(dir)?;
    let hub_ca_key = KeyPair::generate()?;
    let agent_ca_key = KeyPair::generate()?;
    let client_ca_key = KeyPair::generate()?;
    let hub_ca_cert = ca_params(HUB_CA, ca_days)?.self_signed(&hub_ca_key)?;
    let agent_ca_cert = ca_params(AGENT_CA, ca_days)?.self_signed(&agent_ca_key)?;
    write_public(&dir.join("hub-ca.pem"), &hub_ca_cert.pem())?;
    write_private(&dir.join("hub-ca.key"), &hub_ca_key.serialize_pem())?;
    write_public(&dir.join("agent-ca.pem"), &agent_ca_cert.pem())?;
    write_private(&dir.join("agent-ca.key"), &agent_ca_key.serialize_pem())?;
    let client_ca_cert = ca_params(CLIENT_CA, ca_days)?.self_signed(&client_ca_key)?;
    write_public(&dir.join("client-ca.pem"), &client_ca_cert.pem())?;
    write_private(&dir.join("client-ca.key"), &client_ca_key.serialize_pem())?;
    let hub_issuer = Issuer::new(ca_params(HUB_CA, ca_days)?, hub_ca_key);
    let agent_issuer = Issuer::new(ca_params(AGENT_CA, ca_days)?, agent_ca_key);
    let (hub_cert, hub_key, _) = leaf(&hub_issuer, hub_name, false, days)?;
    let (agent_cert, agent_key, serial) = leaf(&agent_issuer, agent, true, days)?;
    write_public(&dir.join("hub.pem"), &hub_cert)?;
    write_private(&dir.join("hub.key"), &hub_key)?;
    write_public(&dir.join(format!("{agent}.pem")), &agent_cert)?;
    write_private(&dir.join(format!("{agent}.key")), &agent_key)?;
    let secret: String = random::<32>()?.iter().map(|b| format!("{b:02x}")).collect();
    write_private(&dir.join(format!("{agent}.secret")), &format!("{secret}\n"))?;
    write_private(
        &dir.join("credentials.toml"),
        &format!("[agents.{}]\nsecret = \"{secret}\"\n", key(agent)),
    )?;
    let mut issued = Issued::default();
    issued.agents.insert(agent.to_owned(), serial);
    issued.crl_number = 1;
    issued.client_crl_number = 1;
    write_public(&dir.join("agent-ca.crl.pem"), &crl(dir, &[], issued.crl_number)?)?;
    write_public(
        &dir.join("client-ca.crl.pem"),
        &crl_of(dir, "client-ca", CLIENT_CA, &[], issued.client_crl_number)?,
    )?;
    write_public(&dir.join("issued.toml"), &toml::to_string(&issued)?)?;
    Ok(())
}

fn revoke(dir: &Path, agent: &str) -> Result<()> {
    let index = dir.join("issued.toml");
    let text = std::fs::read_to_string(&index).map_err(|e| format!("{}: {e}", index.display()))?;
    let mut issued: Issued = toml::from_str(&text).map_err(|e| format!("{}: {e}", index.display()))?;
    let serial = *issued
        .agents
        .get(agent)
        .ok_or_else(|| format!("{}: no certificate issued to {agent:?}", index.display()))?;
    if !issued.revoked.contains(&serial) {
        issued.revoked.push(serial);
    }
    issued.crl_number += 1;
    write_public(
        &dir.join("agent-ca.crl.pem"),
        &crl(dir, &issued.revoked, issued.crl_number)?,
    )?;
    write_public(&index, &toml::to_string(&issued)?)?;
    // The second factor too: the agent's secret is no longer accepted.
    let credentials = dir.join("credentials.toml");
    let text = outpost_tunnel_tokio::secrets::read_private(&credentials)?;
    let mut table: toml::Table = toml::from_str(&text).map_err(|e| format!("{}: {e}", credentials.display()))?;
    let agents = table
        .entry("agents")
        .or_insert_with(|| toml::Value::Table(toml::Table::new()));
    if let Some(agents) = agents.as_table_mut() {
        let mut entry = toml::Table::new();
        entry.insert("revoked".into(), toml::Value::Boolean(true));
        agents.insert(agent.to_owned(), toml::Value::Table(entry));
    }
    write_private(&credentials, &toml::to_string(&table)?)?;
    println!("revoked {agent} (certificate serial {serial}); reload the hub (SIGHUP) to close its session");
    Ok(())
}

fn main() -> Result<()> {
    let mut positional = Vec::new();
    let mut ca_days = 3650;
    let mut role = None;
    let mut days = 365;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--ca-days" => ca_days = args.next().ok_or("--ca-days needs a number")?.parse()?,
            "--days" => days = args.next().ok_or("--days needs a number")?.parse()?,
            "--role" => role = Some(args.next().ok_or("--role needs a role name")?),
            "-h" | "--help" => {
                println!("usage: outpost-certs <dir> [hub-name] [agent-id] [--ca-days N] [--days N]");
                println!("       outpost-certs revoke <dir> <agent-id>");
                println!("       outpost-certs client <dir> <name> --role <role> [--days N]");
                println!("       outpost-certs revoke-client <dir> <name>");
                return Ok(());
            }
            flag if flag.starts_with('-') => return Err(format!("unknown option {flag}").into()),
            _ => positional.push(arg),
        }
    }
    match positional.first().map(String::as_str) {
        Some("revoke") => {
            let (Some(dir), Some(agent)) = (positional.get(1), positional.get(2)) else {
                return Err("usage: outpost-certs revoke <dir> <agent-id>".into());
            };
            revoke(&PathBuf::from(dir), agent)
        }
        Some("client") => {
            let (Some(dir), Some(name), Some(role)) = (positional.get(1), positional.get(2), role.as_deref()) else {
                return Err("usage: outpost-certs client <dir> <name> --role <role>".into());
            };
            client(&PathBuf::from(dir), name, role, days)
        }
        Some("revoke-client") => {
            let (Some(dir), Some(name)) = (positional.get(1), positional.get(2)) else {
                return Err("usage: outpost-certs revoke-client <dir> <name>".into());
            };
            revoke_client(&PathBuf::from(dir), name)
        }
        Some(dir) => {
            let hub_name = positional.get(1).map_or("hub.example", String::as_str);
            let agent = positional.get(2).map_or("plant-7", String::as_str);
            make(&PathBuf::from(dir), hub_name, agent, ca_days, days)
        }
        None => Err("usage: outpost-certs <dir> [hub-name] [agent-id]; see --help".into()),
    }
}
