//! `outpost certs`: the PKI a small deployment needs.
//!
//! ```text
//! DIR/
//!   ca/hub-ca.key ca/agent-ca.key ca/client-ca.key   CA keys: keep them offline
//!   hub-ca.pem agent-ca.pem client-ca.pem            CA certificates
//!   agent-ca.crl.pem client-ca.crl.pem               revocation lists
//!   hub.pem hub.key credentials.toml                 for the hub
//!   agents/<id>/agent.pem agent.key agent.secret hub-ca.pem
//!                                                    ship this folder to the plant
//!   clients/<name>.pem clients/<name>.key            IT clients (Modbus/TCP Security)
//!   issued.toml                                      serials issued and revoked
//! ```
//!
//! Keys, secrets and the credentials file are written readable by their
//! owner only (0600). CAs last `--ca-days` (3650), certificates `--days`
//! (365), CRLs 30 days.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyIdMethod, KeyPair, RevokedCertParams, SerialNumber,
};
use time::{Duration, OffsetDateTime};

use crate::Failure;

const HUB_CA: &str = "Outpost hub CA";
const AGENT_CA: &str = "Outpost agent CA";
const CLIENT_CA: &str = "Outpost IT client CA";
/// The Modbus/TCP Security role extension.
const ROLE_OID: &[u64] = &[1, 3, 6, 1, 4, 1, 50316, 802, 1];
/// How long a CRL is valid: a hub refuses an expired one.
const CRL_DAYS: i64 = 30;

/// The PKI steps.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum Certs {
    /// Makes the three CAs, the hub's certificate, empty CRLs and an empty
    /// credentials file in DIR (refuses a DIR that already holds a PKI).
    ///
    /// Example: outpost certs init /etc/outpost/pki --hub-name hub.example
    Init {
        /// The folder (made if needed).
        dir: PathBuf,
        /// The name agents and IT clients dial the hub by (its certificate's name).
        #[arg(long, default_value = "hub.example")]
        hub_name: String,
        /// How long the CAs are valid, in days.
        #[arg(long, default_value_t = 3650)]
        ca_days: i64,
        /// How long the hub's certificate is valid, in days.
        #[arg(long, default_value_t = 365)]
        days: i64,
    },
    /// Issues an agent's certificate and secret (agents/ID/, to ship to the
    /// plant) and adds the secret to the hub's credentials.
    ///
    /// Example: outpost certs agent plant-7 --dir /etc/outpost/pki
    Agent {
        /// The agent's id: a DNS name in lowercase (plant-7, plant-7.site-a).
        id: String,
        /// The PKI folder.
        #[arg(long, default_value = ".")]
        dir: PathBuf,
        /// How long the certificate is valid, in days.
        #[arg(long, default_value_t = 365)]
        days: i64,
    },
    /// Issues an IT client's certificate carrying a Modbus/TCP Security role
    /// (clients/NAME.pem and .key).
    ///
    /// Example: outpost certs client historian --role viewer --dir /etc/outpost/pki
    Client {
        /// The client's name (its certificate's CN).
        name: String,
        /// The role its requests act as (in the agents' policies).
        #[arg(long)]
        role: String,
        /// The PKI folder.
        #[arg(long, default_value = ".")]
        dir: PathBuf,
        /// How long the certificate is valid, in days.
        #[arg(long, default_value_t = 365)]
        days: i64,
    },
    /// Revokes an agent: its certificate in the agent CA's CRL, its secret
    /// marked revoked. Reload the hub (SIGHUP) to close its session.
    ///
    /// Example: outpost certs revoke plant-7 --dir /etc/outpost/pki
    Revoke {
        /// The agent's id.
        id: String,
        /// The PKI folder.
        #[arg(long, default_value = ".")]
        dir: PathBuf,
    },
    /// Revokes an IT client's certificate (the client CA's CRL). Reload the
    /// hub (SIGHUP) to close its connections.
    ///
    /// Example: outpost certs revoke-client historian --dir /etc/outpost/pki
    RevokeClient {
        /// The client's name.
        name: String,
        /// The PKI folder.
        #[arg(long, default_value = ".")]
        dir: PathBuf,
    },
}

type Result<T> = std::result::Result<T, Failure>;

fn io(path: &Path) -> impl Fn(std::io::Error) -> Failure + '_ {
    move |e| Failure::Runtime(format!("{}: {e}", path.display()))
}

fn pki(e: impl std::fmt::Display) -> Failure {
    Failure::Runtime(format!("certificate: {e}"))
}

pub(crate) fn run(command: Certs) -> Result<()> {
    match command {
        Certs::Init {
            dir,
            hub_name,
            ca_days,
            days,
        } => init(&dir, &hub_name, ca_days, days),
        Certs::Agent { id, dir, days } => agent(&dir, &id, days),
        Certs::Client { name, role, dir, days } => client(&dir, &name, &role, days),
        Certs::Revoke { id, dir } => revoke(&dir, &id),
        Certs::RevokeClient { name, dir } => revoke_client(&dir, &name),
    }
}

fn ca_params(name: &str, days: i64) -> Result<CertificateParams> {
    let mut params = CertificateParams::new(Vec::<String>::new()).map_err(pki)?;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    let now = OffsetDateTime::now_utc();
    params.not_before = now - Duration::hours(1);
    params.not_after = now + Duration::days(days);
    Ok(params)
}

/// A CA's issuer from its kept key (its certificate's name and key).
fn issuer(dir: &Path, file: &str, name: &str) -> Result<Issuer<'static, KeyPair>> {
    let path = dir.join("ca").join(format!("{file}.key"));
    let text = outpost_tunnel_tokio::secrets::read_private(&path).map_err(|e| Failure::Runtime(e.to_string()))?;
    let key = KeyPair::from_pem(&text).map_err(pki)?;
    Ok(Issuer::new(ca_params(name, 1)?, key))
}

fn serial() -> Result<u64> {
    Ok(u64::from_be_bytes(random::<8>()?) >> 1)
}

fn random<const N: usize>() -> Result<[u8; N]> {
    let mut bytes = [0u8; N];
    outpost_tunnel_tokio::tls::provider()
        .secure_random
        .fill(&mut bytes)
        .map_err(|_| Failure::Runtime("no randomness".into()))?;
    Ok(bytes)
}

/// A leaf valid `days` days, signed by `ca`: (certificate PEM, key PEM, serial).
fn leaf(
    ca: &Issuer<'_, KeyPair>,
    mut params: CertificateParams,
    usage: ExtendedKeyUsagePurpose,
    days: i64,
) -> Result<(String, String, u64)> {
    let key = KeyPair::generate().map_err(pki)?;
    params.extended_key_usages = vec![usage];
    let now = OffsetDateTime::now_utc();
    params.not_before = now - Duration::hours(1);
    params.not_after = now + Duration::days(days);
    let serial = serial()?;
    params.serial_number = Some(SerialNumber::from(serial));
    let cert = params.signed_by(&key, ca).map_err(pki)?;
    Ok((cert.pem(), key.serialize_pem(), serial))
}

/// Writes a file others may read (certificates, CRLs, the index).
fn write_public(path: &Path, content: &str) -> Result<()> {
    std::fs::write(path, content).map_err(io(path))?;
    println!("wrote {}", path.display());
    Ok(())
}

/// Writes a file only its owner may read (keys, secrets, credentials).
fn write_private(path: &Path, content: &str) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    // An existing file keeps its mode on open: set it first.
    if path.exists() {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(io(path))?;
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(io(path))?;
    file.write_all(content.as_bytes()).map_err(io(path))?;
    println!("wrote {} (owner only)", path.display());
    Ok(())
}

/// What `issued.toml` records.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
struct Issued {
    /// Serial of each agent's certificate, by agent id.
    #[serde(default)]
    agents: BTreeMap<String, u64>,
    /// Agent serials revoked so far.
    #[serde(default)]
    revoked: Vec<u64>,
    /// The number of the last agent CRL written.
    #[serde(default)]
    crl_number: u64,
    /// Serial of each IT client's certificate, by name.
    #[serde(default)]
    clients: BTreeMap<String, u64>,
    /// IT client serials revoked so far.
    #[serde(default)]
    clients_revoked: Vec<u64>,
    /// The number of the last IT client CRL written.
    #[serde(default)]
    client_crl_number: u64,
}

fn read_issued(dir: &Path) -> Result<Issued> {
    let path = dir.join("issued.toml");
    let text = std::fs::read_to_string(&path).map_err(|e| {
        Failure::Config(vec![format!(
            "{}: {e} (run `outpost certs init` first)",
            path.display()
        )])
    })?;
    toml::from_str(&text).map_err(|e| Failure::Config(vec![format!("{}: {}", path.display(), e.message())]))
}

fn write_issued(dir: &Path, issued: &Issued) -> Result<()> {
    write_public(&dir.join("issued.toml"), &toml::to_string(issued).map_err(pki)?)
}

/// A CRL of the CA `file` revoking `serials`, numbered `number`.
fn crl(dir: &Path, file: &str, name: &str, serials: &[u64], number: u64) -> Result<String> {
    let issuer = issuer(dir, file, name)?;
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
    params.signed_by(&issuer).map_err(pki)?.pem().map_err(pki)
}

fn init(dir: &Path, hub_name: &str, ca_days: i64, days: i64) -> Result<()> {
    if dir.join("issued.toml").exists() {
        return Err(Failure::Config(vec![format!(
            "{}: already holds a PKI (issued.toml); `outpost certs agent` and `client` add to it",
            dir.display()
        )]));
    }
    std::fs::create_dir_all(dir.join("ca")).map_err(io(dir))?;
    let mut cas = Vec::new();
    for (file, name) in [("hub-ca", HUB_CA), ("agent-ca", AGENT_CA), ("client-ca", CLIENT_CA)] {
        let key = KeyPair::generate().map_err(pki)?;
        let cert = ca_params(name, ca_days)?.self_signed(&key).map_err(pki)?;
        write_public(&dir.join(format!("{file}.pem")), &cert.pem())?;
        write_private(&dir.join("ca").join(format!("{file}.key")), &key.serialize_pem())?;
        cas.push(file);
    }
    let hub_issuer = issuer(dir, "hub-ca", HUB_CA)?;
    let mut params = CertificateParams::new(vec![hub_name.to_owned()]).map_err(pki)?;
    params.distinguished_name.push(DnType::CommonName, hub_name);
    let (cert, key, _) = leaf(&hub_issuer, params, ExtendedKeyUsagePurpose::ServerAuth, days)?;
    write_public(&dir.join("hub.pem"), &cert)?;
    write_private(&dir.join("hub.key"), &key)?;
    write_private(&dir.join("credentials.toml"), "[agents]\n")?;
    let issued = Issued {
        crl_number: 1,
        client_crl_number: 1,
        ..Issued::default()
    };
    write_public(&dir.join("agent-ca.crl.pem"), &crl(dir, "agent-ca", AGENT_CA, &[], 1)?)?;
    write_public(
        &dir.join("client-ca.crl.pem"),
        &crl(dir, "client-ca", CLIENT_CA, &[], 1)?,
    )?;
    write_issued(dir, &issued)?;
    println!(
        "PKI ready in {} for hub {hub_name}; keep {} offline",
        dir.display(),
        dir.join("ca").display()
    );
    Ok(())
}

fn agent(dir: &Path, id: &str, days: i64) -> Result<()> {
    if id.bytes().any(|b| b.is_ascii_uppercase()) || outpost_tunnel_proto::AgentId::new(id).is_err() {
        return Err(Failure::Config(vec![format!(
            "agent id {id:?}: a DNS name in lowercase (letters, digits, '-', '.')"
        )]));
    }
    let mut issued = read_issued(dir)?;
    let issuer = issuer(dir, "agent-ca", AGENT_CA)?;
    let mut params = CertificateParams::new(vec![id.to_owned()]).map_err(pki)?;
    params.distinguished_name.push(DnType::CommonName, id);
    let (cert, key, serial) = leaf(&issuer, params, ExtendedKeyUsagePurpose::ClientAuth, days)?;
    let bundle = dir.join("agents").join(id);
    std::fs::create_dir_all(&bundle).map_err(io(&bundle))?;
    write_public(&bundle.join("agent.pem"), &cert)?;
    write_private(&bundle.join("agent.key"), &key)?;
    let hub_ca = std::fs::read_to_string(dir.join("hub-ca.pem")).map_err(io(&dir.join("hub-ca.pem")))?;
    write_public(&bundle.join("hub-ca.pem"), &hub_ca)?;
    let secret: String = random::<32>()?.iter().map(|b| format!("{b:02x}")).collect();
    write_private(&bundle.join("agent.secret"), &format!("{secret}\n"))?;
    set_credential(dir, id, Some(&secret))?;
    issued.agents.insert(id.to_owned(), serial);
    write_issued(dir, &issued)?;
    println!(
        "issued agent {id} (certificate serial {serial}); ship {} to the plant",
        bundle.display()
    );
    Ok(())
}

/// Sets `id`'s entry in `credentials.toml`: its secret, or revoked.
fn set_credential(dir: &Path, id: &str, secret: Option<&str>) -> Result<()> {
    let path = dir.join("credentials.toml");
    let text = outpost_tunnel_tokio::secrets::read_private(&path).map_err(|e| Failure::Runtime(e.to_string()))?;
    let mut table: toml::Table =
        toml::from_str(&text).map_err(|e| Failure::Config(vec![format!("{}: {}", path.display(), e.message())]))?;
    let agents = table
        .entry("agents")
        .or_insert_with(|| toml::Value::Table(toml::Table::new()));
    if let Some(agents) = agents.as_table_mut() {
        let mut entry = toml::Table::new();
        match secret {
            Some(secret) => entry.insert("secret".into(), toml::Value::String(secret.into())),
            None => entry.insert("revoked".into(), toml::Value::Boolean(true)),
        };
        agents.insert(id.to_owned(), toml::Value::Table(entry));
    }
    write_private(&path, &toml::to_string(&table).map_err(pki)?)
}

fn client(dir: &Path, name: &str, role: &str, days: i64) -> Result<()> {
    let mut problems = Vec::new();
    if outpost_tunnel_tokio::binding::Role::new(role).is_err() {
        problems.push(format!("role {role:?}: 1 to 64 printable ASCII characters, no spaces"));
    }
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)) {
        problems.push(format!("client name {name:?}: letters, digits, '-', '_' and '.' only"));
    }
    if !problems.is_empty() {
        return Err(Failure::Config(problems));
    }
    let mut issued = read_issued(dir)?;
    let issuer = issuer(dir, "client-ca", CLIENT_CA)?;
    let mut params = CertificateParams::new(Vec::<String>::new()).map_err(pki)?;
    params.distinguished_name.push(DnType::CommonName, name);
    // The role: one non-critical extension holding a DER UTF8String.
    let mut value = vec![0x0C, role.len() as u8];
    value.extend_from_slice(role.as_bytes());
    params
        .custom_extensions
        .push(rcgen::CustomExtension::from_oid_content(ROLE_OID, value));
    let (cert, key, serial) = leaf(&issuer, params, ExtendedKeyUsagePurpose::ClientAuth, days)?;
    let clients = dir.join("clients");
    std::fs::create_dir_all(&clients).map_err(io(&clients))?;
    write_public(&clients.join(format!("{name}.pem")), &cert)?;
    write_private(&clients.join(format!("{name}.key")), &key)?;
    issued.clients.insert(name.to_owned(), serial);
    write_issued(dir, &issued)?;
    println!("issued client {name} with role {role} (certificate serial {serial})");
    Ok(())
}

fn revoke(dir: &Path, id: &str) -> Result<()> {
    let mut issued = read_issued(dir)?;
    let serial = *issued
        .agents
        .get(id)
        .ok_or_else(|| Failure::Config(vec![format!("no certificate was issued to agent {id:?}")]))?;
    if !issued.revoked.contains(&serial) {
        issued.revoked.push(serial);
    }
    issued.crl_number += 1;
    let crl = crl(dir, "agent-ca", AGENT_CA, &issued.revoked, issued.crl_number)?;
    write_public(&dir.join("agent-ca.crl.pem"), &crl)?;
    write_issued(dir, &issued)?;
    // The second factor too: the agent's secret is no longer accepted.
    set_credential(dir, id, None)?;
    println!("revoked agent {id} (certificate serial {serial}); reload the hub (SIGHUP) to close its session");
    Ok(())
}

fn revoke_client(dir: &Path, name: &str) -> Result<()> {
    let mut issued = read_issued(dir)?;
    let serial = *issued
        .clients
        .get(name)
        .ok_or_else(|| Failure::Config(vec![format!("no client certificate was issued to {name:?}")]))?;
    if !issued.clients_revoked.contains(&serial) {
        issued.clients_revoked.push(serial);
    }
    issued.client_crl_number += 1;
    let crl = crl(
        dir,
        "client-ca",
        CLIENT_CA,
        &issued.clients_revoked,
        issued.client_crl_number,
    )?;
    write_public(&dir.join("client-ca.crl.pem"), &crl)?;
    write_issued(dir, &issued)?;
    println!("revoked client {name} (certificate serial {serial}); reload the hub (SIGHUP) to close its connections");
    Ok(())
}
