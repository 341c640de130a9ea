//! TLS for the tunnel: rustls configurations for the hub and the agent,
//! PEM loading, the agent id from the client certificate, and the exporter
//! value that binds the tunnel handshake to the TLS session.
//!
//! TLS 1.3 only. The hub requires a client certificate chaining to its
//! agent CA (with optional CRLs); the agent verifies the hub against a
//! pinned CA, not the system's roots.

use std::path::Path;
use std::sync::Arc;

use outpost_tunnel_proto::{AgentId, ChannelBinding};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::danger::ClientCertVerifier;
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, ConnectionCommon, RootCertStore, ServerConfig};

#[cfg(not(any(feature = "aws-lc-rs", feature = "ring")))]
compile_error!("outpost-tunnel-tokio needs a TLS crypto provider: enable feature `aws-lc-rs` (the default) or `ring`");

/// Why a TLS configuration could not be built, or a peer's certificate
/// does not name an agent.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM file could not be read or parsed.
    #[error("{path}: {reason}")]
    Pem {
        /// The file.
        path: String,
        /// What was wrong.
        reason: String,
    },
    /// A file held no certificate, key or CA where one was needed.
    #[error("{0}: nothing usable in the file")]
    Empty(String),
    /// rustls refused the configuration (a bad key, an unusable CA, ...).
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
    /// The client verifier could not be built from the CA and CRLs.
    #[error("client certificate verifier: {0}")]
    Verifier(String),
    /// The hub's name is not a valid DNS name or IP address.
    #[error("invalid hub name {0:?}")]
    ServerName(String),
    /// The agent's certificate names no agent (no DNS subject alternative name
    /// that is a valid agent id).
    #[error("the client certificate names no agent")]
    NoAgentId,
    /// A private key that does not belong to its certificate.
    #[error("the key {key} does not belong to the certificate {cert}")]
    KeyMismatch {
        /// The certificate file.
        cert: String,
        /// The key file.
        key: String,
    },
    /// A private key file others may read.
    #[error(transparent)]
    Exposed(#[from] crate::secrets::ExposedSecret),
}

/// The crypto provider this build uses: AWS-LC (feature `aws-lc-rs`, the
/// default, with X25519MLKEM768 preferred) or ring (feature `ring`).
pub fn provider() -> Arc<CryptoProvider> {
    #[cfg(feature = "aws-lc-rs")]
    {
        Arc::new(rustls::crypto::aws_lc_rs::default_provider())
    }
    #[cfg(all(feature = "ring", not(feature = "aws-lc-rs")))]
    {
        Arc::new(rustls::crypto::ring::default_provider())
    }
}

fn pem_error(path: &Path) -> impl Fn(rustls::pki_types::pem::Error) -> TlsError + '_ {
    move |e| TlsError::Pem {
        path: path.display().to_string(),
        reason: e.to_string(),
    }
}

/// Every certificate in a PEM file, in order.
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(pem_error(path))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(pem_error(path))?;
    if certs.is_empty() {
        return Err(TlsError::Empty(path.display().to_string()));
    }
    Ok(certs)
}

/// The first private key in a PEM file (PKCS#8, PKCS#1 or SEC1). A file
/// that group or others may read is refused ([`TlsError::Exposed`]).
pub fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    crate::secrets::check_private(path)?;
    PrivateKeyDer::from_pem_file(path).map_err(pem_error(path))
}

/// Every CRL in a PEM file.
pub fn load_crls(path: &Path) -> Result<Vec<CertificateRevocationListDer<'static>>, TlsError> {
    CertificateRevocationListDer::pem_file_iter(path)
        .map_err(pem_error(path))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(pem_error(path))
}

/// Names the files when a key does not match its certificate.
pub(crate) fn naming(cert: &Path, key: &Path) -> impl FnOnce(TlsError) -> TlsError {
    let (cert, key) = (cert.display().to_string(), key.display().to_string());
    move |e| match e {
        TlsError::Rustls(rustls::Error::InconsistentKeys(_)) => TlsError::KeyMismatch { cert, key },
        other => other,
    }
}

/// A root store of `cas`; an empty list is refused.
pub(crate) fn roots(cas: &[CertificateDer<'static>]) -> Result<RootCertStore, TlsError> {
    let mut store = RootCertStore::empty();
    for ca in cas {
        store.add(ca.clone())?;
    }
    if store.is_empty() {
        return Err(TlsError::Empty("CA list".into()));
    }
    Ok(store)
}

/// A verifier of client certificates chained to `cas`, checked against
/// `crls` (an expired CRL refused unless `expired` allows it).
pub(crate) fn client_verifier(
    provider: &Arc<CryptoProvider>,
    cas: &[CertificateDer<'static>],
    crls: Vec<CertificateRevocationListDer<'static>>,
    expired: ExpiredCrl,
) -> Result<Arc<dyn ClientCertVerifier>, TlsError> {
    let mut builder =
        WebPkiClientVerifier::builder_with_provider(Arc::new(roots(cas)?), Arc::clone(provider)).with_crls(crls);
    if expired == ExpiredCrl::Refuse {
        builder = builder.enforce_revocation_expiration();
    }
    builder.build().map_err(|e| TlsError::Verifier(e.to_string()))
}

/// Every CRL in the file `crl` names, or none.
pub(crate) fn load_optional_crls(crl: Option<&Path>) -> Result<Vec<CertificateRevocationListDer<'static>>, TlsError> {
    crl.map_or_else(|| Ok(Vec::new()), load_crls)
}

/// What a hub does with a CRL past its next-update time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ExpiredCrl {
    /// Certificates it covers fail verification (the default): a stale CRL
    /// cannot silently hide a newer revocation.
    #[default]
    Refuse,
    /// It is used as it is (for a PKI that cannot issue CRLs on time; say
    /// so in your operations notes).
    Allow,
}

/// The hub's TLS: its certificate and key, and the CA (and CRLs) its
/// agents' certificates must chain to.
#[derive(Debug, Clone)]
pub struct HubTls {
    config: Arc<ServerConfig>,
    verifier: Arc<dyn ClientCertVerifier>,
}

impl HubTls {
    /// Builds the configuration from DER values. An expired CRL is refused
    /// ([`ExpiredCrl::Refuse`]).
    pub fn new(
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
        agent_ca: &[CertificateDer<'static>],
        crls: Vec<CertificateRevocationListDer<'static>>,
    ) -> Result<Self, TlsError> {
        Self::with_crl_policy(chain, key, agent_ca, crls, ExpiredCrl::Refuse)
    }

    /// [`HubTls::new`], saying what to do with an expired CRL.
    pub fn with_crl_policy(
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
        agent_ca: &[CertificateDer<'static>],
        crls: Vec<CertificateRevocationListDer<'static>>,
        expired: ExpiredCrl,
    ) -> Result<Self, TlsError> {
        let provider = provider();
        let verifier = client_verifier(&provider, agent_ca, crls, expired)?;
        let config = ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .with_client_cert_verifier(Arc::clone(&verifier))
            .with_single_cert(chain, key)?;
        Ok(HubTls {
            config: Arc::new(config),
            verifier,
        })
    }

    /// Checks an agent's certificate chain (end entity first) against the
    /// CA and CRLs, now: what a reload asks of every live session.
    pub fn verify_agent(&self, chain: &[CertificateDer<'static>]) -> Result<(), rustls::Error> {
        let (end_entity, intermediates) = chain.split_first().ok_or(rustls::Error::NoCertificatesPresented)?;
        self.verifier
            .verify_client_cert(end_entity, intermediates, UnixTime::now())
            .map(|_| ())
    }

    /// Builds the configuration from PEM files; `crl` may name a file of CRLs.
    pub fn from_pem_files(cert: &Path, key: &Path, agent_ca: &Path, crl: Option<&Path>) -> Result<Self, TlsError> {
        let crls = load_optional_crls(crl)?;
        Self::new(load_certs(cert)?, load_key(key)?, &load_certs(agent_ca)?, crls).map_err(naming(cert, key))
    }

    /// The rustls configuration.
    pub fn config(&self) -> Arc<ServerConfig> {
        Arc::clone(&self.config)
    }
}

/// The agent's TLS: its certificate and key, the CA the hub's certificate
/// must chain to, and the name the hub's certificate must carry.
#[derive(Debug, Clone)]
pub struct AgentTls {
    config: Arc<ClientConfig>,
    hub_name: ServerName<'static>,
}

impl AgentTls {
    /// Builds the configuration from DER values.
    pub fn new(
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
        hub_ca: &[CertificateDer<'static>],
        hub_name: &str,
    ) -> Result<Self, TlsError> {
        let provider = provider();
        let verifier = WebPkiServerVerifier::builder_with_provider(Arc::new(roots(hub_ca)?), Arc::clone(&provider))
            .build()
            .map_err(|e| TlsError::Verifier(e.to_string()))?;
        let config = ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .with_webpki_verifier(verifier)
            .with_client_auth_cert(chain, key)?;
        let hub_name = ServerName::try_from(hub_name.to_owned()).map_err(|_| TlsError::ServerName(hub_name.into()))?;
        Ok(AgentTls {
            config: Arc::new(config),
            hub_name,
        })
    }

    /// Builds the configuration from PEM files.
    pub fn from_pem_files(cert: &Path, key: &Path, hub_ca: &Path, hub_name: &str) -> Result<Self, TlsError> {
        Self::new(load_certs(cert)?, load_key(key)?, &load_certs(hub_ca)?, hub_name).map_err(naming(cert, key))
    }

    /// The rustls configuration.
    pub fn config(&self) -> Arc<ClientConfig> {
        Arc::clone(&self.config)
    }

    /// The name the hub's certificate must carry.
    pub fn hub_name(&self) -> &ServerName<'static> {
        &self.hub_name
    }
}

/// The agent id a verified client certificate names: its first DNS subject
/// alternative name that is a valid agent id. Agents with certificates
/// therefore use ids that are DNS names (`plant-7`, `plant-7.acme.example`).
pub fn agent_id_from_certificate(cert: &CertificateDer<'_>) -> Result<AgentId, TlsError> {
    let cert = webpki::EndEntityCert::try_from(cert).map_err(|_| TlsError::NoAgentId)?;
    // DNS names compare without regard to case: the id is the name in
    // lowercase, and an agent (or a credentials entry) must use that form.
    cert.valid_dns_names()
        .find_map(|name| AgentId::new(&name.to_ascii_lowercase()).ok())
        .ok_or(TlsError::NoAgentId)
}

/// The exporter value ([`ChannelBinding::EXPORTER_LABEL`], no context,
/// 32 bytes) that binds the tunnel handshake to this TLS session.
pub fn channel_binding<D>(tls: &ConnectionCommon<D>) -> Result<ChannelBinding, TlsError> {
    let exported = tls.export_keying_material(
        [0u8; ChannelBinding::RECOMMENDED_LEN],
        ChannelBinding::EXPORTER_LABEL,
        None,
    )?;
    // 32 bytes is within the accepted range.
    ChannelBinding::new(&exported).map_err(|_| TlsError::Rustls(rustls::Error::General("exporter length".into())))
}
