//! Certificates made in the test: a CA for agents, a CA for the hub, and
//! leaves signed by them.

use outpost_tunnel_tokio::tls::{AgentTls, HubTls};
use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, CertifiedIssuer, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyIdMethod, KeyPair, KeyUsagePurpose, RevokedCertParams, SerialNumber,
};
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer, PrivatePkcs8KeyDer};

pub(crate) struct Ca {
    pub(crate) issuer: CertifiedIssuer<'static, KeyPair>,
}

impl Ca {
    pub(crate) fn new(name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        Ca {
            issuer: CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap(),
        }
    }

    pub(crate) fn der(&self) -> CertificateDer<'static> {
        self.issuer.der().clone()
    }

    /// A leaf for `name` (a DNS subject alternative name) with serial `serial`.
    pub(crate) fn leaf(
        &self,
        name: &str,
        client: bool,
        serial: u64,
    ) -> (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(vec![name.to_owned()]).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.serial_number = Some(SerialNumber::from(serial));
        params.extended_key_usages = vec![if client {
            ExtendedKeyUsagePurpose::ClientAuth
        } else {
            ExtendedKeyUsagePurpose::ServerAuth
        }];
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        (vec![cert.der().clone()], key)
    }

    /// An IT client's certificate (subject `CN=name`) carrying `roles`,
    /// each the DER value of one role extension, with serial `serial`.
    pub(crate) fn client_with_roles(
        &self,
        name: &str,
        roles: &[Vec<u8>],
        serial: u64,
    ) -> (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
        let (cert, key) = self.client_cert(name, roles, serial);
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        (vec![cert.der().clone()], key)
    }

    /// [`Ca::client_with_roles`], as PEM text: the certificate and its key.
    pub(crate) fn client_with_roles_pem(&self, name: &str, roles: &[Vec<u8>], serial: u64) -> (String, String) {
        let (cert, key) = self.client_cert(name, roles, serial);
        (cert.pem(), key.serialize_pem())
    }

    fn client_cert(&self, name: &str, roles: &[Vec<u8>], serial: u64) -> (rcgen::Certificate, KeyPair) {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.serial_number = Some(SerialNumber::from(serial));
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        for role in roles {
            params
                .custom_extensions
                .push(rcgen::CustomExtension::from_oid_content(ROLE_OID, role.clone()));
        }
        (params.signed_by(&key, &self.issuer).unwrap(), key)
    }

    /// [`Ca::leaf`], as PEM text: the certificate and its key.
    pub(crate) fn leaf_pem(&self, name: &str, client: bool, serial: u64) -> (String, String) {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(vec![name.to_owned()]).unwrap();
        params.serial_number = Some(SerialNumber::from(serial));
        params.extended_key_usages = vec![if client {
            ExtendedKeyUsagePurpose::ClientAuth
        } else {
            ExtendedKeyUsagePurpose::ServerAuth
        }];
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    /// The CA certificate as PEM text.
    pub(crate) fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// A CRL revoking `serials`.
    pub(crate) fn crl(&self, serials: &[u64]) -> CertificateRevocationListDer<'static> {
        self.crl_until(serials, 2099)
    }

    /// A CRL revoking `serials`, due for renewal on New Year's day of `year`.
    pub(crate) fn crl_until(&self, serials: &[u64], year: i32) -> CertificateRevocationListDer<'static> {
        let now = rcgen::date_time_ymd(2024, 1, 1);
        let params = CertificateRevocationListParams {
            this_update: now,
            next_update: rcgen::date_time_ymd(year, 1, 1),
            crl_number: SerialNumber::from(1u64),
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
        params.signed_by(&self.issuer).unwrap().der().clone()
    }
}

/// The Modbus/TCP Security role extension.
pub(crate) const ROLE_OID: &[u64] = &[1, 3, 6, 1, 4, 1, 50316, 802, 1];

/// A role extension's value: a DER UTF8String.
pub(crate) fn utf8_role(role: &str) -> Vec<u8> {
    der(0x0C, role.as_bytes())
}

/// A DER value with `tag` (short lengths only).
pub(crate) fn der(tag: u8, content: &[u8]) -> Vec<u8> {
    assert!(content.len() < 128);
    let mut out = vec![tag, content.len() as u8];
    out.extend_from_slice(content);
    out
}

pub(crate) const HUB_NAME: &str = "hub.outpost.test";

/// The two CAs of a deployment.
pub(crate) struct Pki {
    pub(crate) hub_ca: Ca,
    pub(crate) agent_ca: Ca,
}

impl Pki {
    pub(crate) fn new() -> Pki {
        Pki {
            hub_ca: Ca::new("Outpost test hub CA"),
            agent_ca: Ca::new("Outpost test agent CA"),
        }
    }

    pub(crate) fn hub_tls(&self, revoked: &[u64]) -> HubTls {
        let (chain, key) = self.hub_ca.leaf(HUB_NAME, false, 1);
        let crls = if revoked.is_empty() {
            Vec::new()
        } else {
            vec![self.agent_ca.crl(revoked)]
        };
        HubTls::new(chain, key, &[self.agent_ca.der()], crls).unwrap()
    }

    /// An agent's TLS with a certificate naming `name` (serial `serial`).
    pub(crate) fn agent_tls(&self, name: &str, serial: u64) -> AgentTls {
        let (chain, key) = self.agent_ca.leaf(name, true, serial);
        AgentTls::new(chain, key, &[self.hub_ca.der()], HUB_NAME).unwrap()
    }
}
