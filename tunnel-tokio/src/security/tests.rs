//! The role extension's parsing, and the TLS settings' promises.

use proptest::prelude::*;
use rcgen::{CertificateParams, CustomExtension, DnType, KeyPair};
use rustls::pki_types::CertificateDer;

use super::*;

fn der_utf8(text: &str) -> Vec<u8> {
    let mut out = vec![0x0C, text.len() as u8];
    out.extend_from_slice(text.as_bytes());
    out
}

fn cert(roles: &[Vec<u8>], critical: bool) -> CertificateDer<'static> {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(DnType::CommonName, "scada-1");
    params.distinguished_name.push(DnType::OrganizationName, "Acme");
    for role in roles {
        let mut ext = CustomExtension::from_oid_content(&[1, 3, 6, 1, 4, 1, 50316, 802, 1], role.clone());
        ext.set_criticality(critical);
        params.custom_extensions.push(ext);
    }
    params.self_signed(&KeyPair::generate().unwrap()).unwrap().der().clone()
}

#[test]
fn the_oid_bytes_are_the_oid() {
    let oid = x509_parser::der_parser::oid::Oid::new(std::borrow::Cow::Borrowed(ROLE_OID_DER));
    assert_eq!(oid.to_id_string(), ROLE_OID);
}

#[test]
fn one_utf8string_role_is_read_with_the_subject() {
    let certified = role_from_certificate(&cert(&[der_utf8("operator")], false)).unwrap();
    assert_eq!(certified.role.as_str(), "operator");
    assert_eq!(certified.subject.as_str(), "CN=scada-1, O=Acme");
}

#[test]
fn anything_but_exactly_one_usable_role_is_refused() {
    assert_eq!(role_from_certificate(&cert(&[], false)), Err(RoleError::Missing));
    assert_eq!(
        role_from_certificate(&cert(&[der_utf8("a"), der_utf8("b")], false)),
        Err(RoleError::Several(2))
    );
    for value in [
        vec![0x13, 2, b'o', b'p'], // PrintableString
        vec![0x16, 2, b'o', b'p'], // IA5String
        vec![0x02, 1, 1],          // INTEGER
        vec![0x4C, 2, b'o', b'p'], // [APPLICATION 12]
        vec![0x8C, 2, b'o', b'p'], // [12], context-specific
        vec![0x0C, 3, b'o', b'p'], // length past the end
        vec![0x0C, 1, 0xFF],       // not UTF-8
        [der_utf8("op"), vec![0]].concat(),
        vec![],
    ] {
        assert_eq!(
            role_from_extension_value(&value),
            Err(RoleError::NotUtf8String),
            "{value:?}"
        );
    }
    for unusable in ["", "shift lead", "bediener\u{e4}", &"r".repeat(65)] {
        assert!(
            matches!(
                role_from_extension_value(&der_utf8_long(unusable)),
                Err(RoleError::Unusable(_))
            ),
            "{unusable:?}"
        );
    }
    assert_eq!(
        role_from_certificate(&CertificateDer::from(vec![0x30, 0x03, 1, 2, 3])),
        Err(RoleError::Certificate)
    );
}

/// A UTF8String of any length (long form lengths up to 255).
fn der_utf8_long(text: &str) -> Vec<u8> {
    let mut out = vec![0x0C];
    if text.len() < 128 {
        out.push(text.len() as u8);
    } else {
        out.extend_from_slice(&[0x81, text.len() as u8]);
    }
    out.extend_from_slice(text.as_bytes());
    out
}

#[test]
fn a_critical_role_extension_parses_the_same() {
    // Criticality is the chain verifier's business (webpki refuses
    // critical extensions it does not know; see the module docs).
    let certified = role_from_certificate(&cert(&[der_utf8("operator")], true)).unwrap();
    assert_eq!(certified.role.as_str(), "operator");
}

#[test]
fn only_aead_suites_and_tls_1_2_or_later() {
    let provider = aead_provider();
    assert!(!provider.cipher_suites.is_empty());
    for suite in &provider.cipher_suites {
        let name = format!("{:?}", suite.suite());
        assert!(name.contains("_GCM_") || name.contains("CHACHA20_POLY1305"), "{name}");
        assert!(is_aead(suite));
    }
    assert!(provider
        .cipher_suites
        .iter()
        .any(|s| s.version() == &rustls::version::TLS12));
}

proptest! {
    #[test]
    fn any_extension_value_is_a_role_or_a_typed_error(value in proptest::collection::vec(any::<u8>(), 0..80)) {
        match role_from_extension_value(&value) {
            Ok(role) => {
                // Only a whole DER UTF8String holding a valid role.
                prop_assert_eq!(der_utf8(role.as_str()), value);
            }
            Err(RoleError::NotUtf8String | RoleError::Unusable(_)) => {}
            Err(other) => prop_assert!(false, "unexpected {:?}", other),
        }
    }

    #[test]
    fn any_role_text_round_trips(role in "[!-~]{1,64}") {
        let parsed = role_from_extension_value(&der_utf8_long(&role)).unwrap();
        prop_assert_eq!(parsed.as_str(), role.as_str());
    }

    #[test]
    fn any_bytes_as_a_certificate_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = role_from_certificate(&CertificateDer::from(bytes));
    }
}

/// Made by OpenSSL, not by this crate or rcgen:
/// `openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes
/// -subj "/CN=scada-1/O=Acme" -addext
/// "1.3.6.1.4.1.50316.802.1=ASN1:UTF8String:operator" -outform DER`.
pub(crate) const OPENSSL_ROLE_CERT: &[u8] = include_bytes!("testdata/openssl-role.der");

#[test]
fn a_certificate_made_by_openssl_names_its_role() {
    let certified = role_from_certificate(&CertificateDer::from(OPENSSL_ROLE_CERT)).unwrap();
    assert_eq!(certified.role.as_str(), "operator");
    assert_eq!(certified.subject.as_str(), "CN=scada-1, O=Acme");
}

#[test]
fn a_length_in_long_form_where_short_would_do_is_not_der() {
    assert_eq!(
        role_from_extension_value(&[0x0C, 0x81, 0x02, b'o', b'p']),
        Err(RoleError::NotUtf8String)
    );
}
