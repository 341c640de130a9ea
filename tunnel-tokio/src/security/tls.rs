//! TLS settings of Modbus/TCP Security: TLS 1.2 and 1.3, AEAD cipher
//! suites only, client certificates required and carrying exactly one
//! role.

use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{
    CertificateError, CipherSuite, ClientConfig, DigitallySignedStruct, DistinguishedName, OtherError, ServerConfig,
    SignatureScheme, SupportedCipherSuite,
};

use super::role::role_from_certificate;
use crate::tls::{
    client_verifier, load_certs, load_key, load_optional_crls, naming, provider, roots, ExpiredCrl, TlsError,
};

/// The protocol versions Modbus/TCP Security allows (1.2 or later).
static VERSIONS: &[&rustls::SupportedProtocolVersion] = &[&rustls::version::TLS13, &rustls::version::TLS12];

/// Whether a cipher suite is an AEAD one: every TLS 1.3 suite is; of the
/// TLS 1.2 suites, the ECDHE ones with AES-GCM or ChaCha20-Poly1305.
pub fn is_aead(suite: &SupportedCipherSuite) -> bool {
    match suite {
        SupportedCipherSuite::Tls13(_) => true,
        SupportedCipherSuite::Tls12(_) => matches!(
            suite.suite(),
            CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
                | CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384
                | CipherSuite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256
                | CipherSuite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256
                | CipherSuite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384
                | CipherSuite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256
        ),
    }
}

/// This build's crypto provider with only AEAD suites (a filter that
/// keeps every suite rustls offers by default: it holds that promise if a
/// provider ever adds others).
pub fn aead_provider() -> Arc<CryptoProvider> {
    let mut provider = Arc::unwrap_or_clone(provider());
    provider.cipher_suites.retain(is_aead);
    Arc::new(provider)
}

/// Verifies a client's chain (CA, CRLs, validity), then requires exactly
/// one role extension holding a UTF8String: a client without a usable
/// role fails the handshake with a `bad_certificate` alert.
#[derive(Debug)]
struct RoleVerifier {
    inner: Arc<dyn ClientCertVerifier>,
}

impl ClientCertVerifier for RoleVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let verified = self.inner.verify_client_cert(end_entity, intermediates, now)?;
        role_from_certificate(end_entity)
            .map_err(|e| rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(Arc::new(e)))))?;
        Ok(verified)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// The TLS of a Modbus/TCP Security server (a secure gateway on the hub,
/// or a [`super::SecureServer`]): its certificate and key, and the CA (and
/// CRLs) its clients' certificates must chain to.
#[derive(Debug, Clone)]
pub struct SecureServerTls {
    config: Arc<ServerConfig>,
    verifier: Arc<dyn ClientCertVerifier>,
}

impl SecureServerTls {
    /// Builds the configuration from DER values. An expired CRL is refused
    /// ([`ExpiredCrl::Refuse`]).
    pub fn new(
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
        client_ca: &[CertificateDer<'static>],
        crls: Vec<CertificateRevocationListDer<'static>>,
    ) -> Result<Self, TlsError> {
        Self::with_crl_policy(chain, key, client_ca, crls, ExpiredCrl::Refuse)
    }

    /// [`SecureServerTls::new`], saying what to do with an expired CRL.
    pub fn with_crl_policy(
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
        client_ca: &[CertificateDer<'static>],
        crls: Vec<CertificateRevocationListDer<'static>>,
        expired: ExpiredCrl,
    ) -> Result<Self, TlsError> {
        let provider = aead_provider();
        let inner = client_verifier(&provider, client_ca, crls, expired)?;
        let verifier: Arc<dyn ClientCertVerifier> = Arc::new(RoleVerifier { inner });
        let config = ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(VERSIONS)?
            .with_client_cert_verifier(Arc::clone(&verifier))
            .with_single_cert(chain, key)?;
        Ok(SecureServerTls {
            config: Arc::new(config),
            verifier,
        })
    }

    /// Checks a client's certificate chain (end entity first) as a new
    /// handshake would, now: CA, CRLs, validity and role. What a reload
    /// asks of every connected client.
    pub fn verify_client(&self, chain: &[CertificateDer<'static>]) -> Result<(), rustls::Error> {
        let (end_entity, intermediates) = chain.split_first().ok_or(rustls::Error::NoCertificatesPresented)?;
        self.verifier
            .verify_client_cert(end_entity, intermediates, UnixTime::now())
            .map(|_| ())
    }

    /// Builds the configuration from PEM files; `crl` may name a file of CRLs.
    pub fn from_pem_files(cert: &Path, key: &Path, client_ca: &Path, crl: Option<&Path>) -> Result<Self, TlsError> {
        let crls = load_optional_crls(crl)?;
        Self::new(load_certs(cert)?, load_key(key)?, &load_certs(client_ca)?, crls).map_err(naming(cert, key))
    }

    /// The rustls configuration.
    pub fn config(&self) -> Arc<ServerConfig> {
        Arc::clone(&self.config)
    }
}

/// The TLS of a Modbus/TCP Security client: its certificate (carrying its
/// role) and key, the CA the server's certificate must chain to, and the
/// name the server's certificate must carry.
#[derive(Debug, Clone)]
pub struct SecureClientTls {
    config: Arc<ClientConfig>,
    server_name: ServerName<'static>,
}

impl SecureClientTls {
    /// Builds the configuration from DER values.
    pub fn new(
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
        server_ca: &[CertificateDer<'static>],
        server_name: &str,
    ) -> Result<Self, TlsError> {
        let provider = aead_provider();
        let verifier = WebPkiServerVerifier::builder_with_provider(Arc::new(roots(server_ca)?), Arc::clone(&provider))
            .build()
            .map_err(|e| TlsError::Verifier(e.to_string()))?;
        let config = ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(VERSIONS)?
            .with_webpki_verifier(verifier)
            .with_client_auth_cert(chain, key)?;
        let server_name =
            ServerName::try_from(server_name.to_owned()).map_err(|_| TlsError::ServerName(server_name.into()))?;
        Ok(SecureClientTls {
            config: Arc::new(config),
            server_name,
        })
    }

    /// Builds the configuration from PEM files.
    pub fn from_pem_files(cert: &Path, key: &Path, server_ca: &Path, server_name: &str) -> Result<Self, TlsError> {
        Self::new(load_certs(cert)?, load_key(key)?, &load_certs(server_ca)?, server_name).map_err(naming(cert, key))
    }

    /// The rustls configuration.
    pub fn config(&self) -> Arc<ClientConfig> {
        Arc::clone(&self.config)
    }

    /// The name the server's certificate must carry.
    pub fn server_name(&self) -> &ServerName<'static> {
        &self.server_name
    }
}
