//! The deployment's certificates, shared by the processes through files in
//! the run's directory: the coordinator makes the CAs and the hub's leaf;
//! the agents' process signs its agents' leaves with the agent CA's key.

use std::path::Path;

use outpost_tunnel_proto::{AgentId, Secret};
use outpost_tunnel_tokio::tls::{AgentTls, HubTls};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

pub(crate) type Error = Box<dyn std::error::Error + Send + Sync>;

/// The name in the hub's certificate, which agents check.
pub(crate) const HUB_NAME: &str = "hub.scale.test";

fn ca_params(name: &str) -> Result<CertificateParams, Error> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    Ok(params)
}

fn leaf(
    issuer: &Issuer<'_, KeyPair>,
    name: &str,
    client: bool,
) -> Result<(CertificateDer<'static>, PrivateKeyDer<'static>), Error> {
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(vec![name.to_owned()])?;
    params.extended_key_usages = vec![if client {
        ExtendedKeyUsagePurpose::ClientAuth
    } else {
        ExtendedKeyUsagePurpose::ServerAuth
    }];
    let cert = params.signed_by(&key, issuer)?;
    Ok((
        cert.der().clone(),
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
    ))
}

/// Makes the two CAs and the hub's certificate in `dir`.
pub(crate) fn create(dir: &Path) -> Result<(), Error> {
    for (name, file) in [("scale hub CA", "hub-ca"), ("scale agent CA", "agent-ca")] {
        let key = KeyPair::generate()?;
        let cert = ca_params(name)?.self_signed(&key)?;
        std::fs::write(dir.join(format!("{file}.der")), cert.der())?;
        std::fs::write(dir.join(format!("{file}.key")), key.serialize_pem())?;
    }
    let (cert, key) = leaf(&issuer(dir, "scale hub CA", "hub-ca")?, HUB_NAME, false)?;
    std::fs::write(dir.join("hub.der"), cert.as_ref())?;
    std::fs::write(dir.join("hub.key"), key.secret_der())?;
    Ok(())
}

fn issuer(dir: &Path, name: &str, file: &str) -> Result<Issuer<'static, KeyPair>, Error> {
    let key = KeyPair::from_pem(&std::fs::read_to_string(dir.join(format!("{file}.key")))?)?;
    Ok(Issuer::new(ca_params(name)?, key))
}

fn der(dir: &Path, file: &str) -> Result<CertificateDer<'static>, Error> {
    Ok(CertificateDer::from(std::fs::read(dir.join(file))?))
}

/// The hub's TLS settings.
pub(crate) fn hub_tls(dir: &Path) -> Result<HubTls, Error> {
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(std::fs::read(dir.join("hub.key"))?));
    Ok(HubTls::new(
        vec![der(dir, "hub.der")?],
        key,
        &[der(dir, "agent-ca.der")?],
        Vec::new(),
    )?)
}

/// Signs agent certificates in the agents' process.
pub(crate) struct AgentSigner {
    issuer: Issuer<'static, KeyPair>,
    hub_ca: CertificateDer<'static>,
}

impl AgentSigner {
    pub(crate) fn load(dir: &Path) -> Result<Self, Error> {
        Ok(AgentSigner {
            issuer: issuer(dir, "scale agent CA", "agent-ca")?,
            hub_ca: der(dir, "hub-ca.der")?,
        })
    }

    /// Agent `n`'s TLS settings, with a certificate of its own.
    pub(crate) fn agent_tls(&self, n: usize) -> Result<AgentTls, Error> {
        let (cert, key) = leaf(&self.issuer, agent_id(n).as_str(), true)?;
        Ok(AgentTls::new(
            vec![cert],
            key,
            std::slice::from_ref(&self.hub_ca),
            HUB_NAME,
        )?)
    }
}

/// Agent `n`'s id.
pub(crate) fn agent_id(n: usize) -> AgentId {
    AgentId::new(&format!("agent-{n}")).expect("a valid id")
}

/// Agent `n`'s secret (a benchmark's: derived from `n`).
pub(crate) fn secret(n: usize) -> Secret {
    Secret::new(format!("scale-secret-{n:020}").as_bytes()).expect("long enough")
}
