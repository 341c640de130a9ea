//! Makes a small PKI for trying Outpost: a hub CA and an agent CA, the
//! hub's certificate, an agent's certificate, the agent's secret and the
//! hub's credentials file.
//!
//! ```sh
//! cargo run -p outpost-examples --bin outpost-certs -- <dir> [hub-name] [agent-id]
//! ```
//!
//! For trying things out: a real deployment keeps each CA key offline.

use std::path::PathBuf;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair};

fn ca(name: &str) -> Result<CertifiedIssuer<'static, KeyPair>, rcgen::Error> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    CertifiedIssuer::self_signed(params, KeyPair::generate()?)
}

fn leaf(ca: &CertifiedIssuer<'static, KeyPair>, name: &str, client: bool) -> Result<(String, String), rcgen::Error> {
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(vec![name.to_owned()])?;
    params.distinguished_name.push(DnType::CommonName, name);
    params.extended_key_usages = vec![if client {
        ExtendedKeyUsagePurpose::ClientAuth
    } else {
        ExtendedKeyUsagePurpose::ServerAuth
    }];
    Ok((params.signed_by(&key, ca)?.pem(), key.serialize_pem()))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(args.next().ok_or("usage: outpost-certs <dir> [hub-name] [agent-id]")?);
    let hub_name = args.next().unwrap_or_else(|| "hub.example".into());
    let agent = args.next().unwrap_or_else(|| "plant-7".into());
    std::fs::create_dir_all(&dir)?;
    let (hub_ca, agent_ca) = (ca("Outpost hub CA")?, ca("Outpost agent CA")?);
    let (hub_cert, hub_key) = leaf(&hub_ca, &hub_name, false)?;
    let (agent_cert, agent_key) = leaf(&agent_ca, &agent, true)?;
    let mut secret = [0u8; 32];
    outpost_tunnel_tokio::tls::provider()
        .secure_random
        .fill(&mut secret)
        .map_err(|_| "no randomness")?;
    let secret: String = secret.iter().map(|b| format!("{b:02x}")).collect();
    let files = [
        ("hub-ca.pem".to_owned(), hub_ca.pem()),
        ("agent-ca.pem".to_owned(), agent_ca.pem()),
        ("hub.pem".to_owned(), hub_cert),
        ("hub.key".to_owned(), hub_key),
        (format!("{agent}.pem"), agent_cert),
        (format!("{agent}.key"), agent_key),
        (format!("{agent}.secret"), format!("{secret}\n")),
        (
            "credentials.toml".to_owned(),
            format!("[agents.{agent}]\nsecret = \"{secret}\"\n"),
        ),
    ];
    for (name, content) in files {
        std::fs::write(dir.join(&name), content)?;
        println!("wrote {}", dir.join(&name).display());
    }
    Ok(())
}
