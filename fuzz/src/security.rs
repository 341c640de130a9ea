//! The Modbus/TCP Security role extension: what a hub reads from an IT
//! client's certificate before it lets the client in.

use outpost_tunnel_tokio::security::{role_from_certificate, role_from_extension_value};
use rustls_pki_types::CertificateDer;

/// Target `role_certificate`: byte 0 picks what the rest is. Even: a role
/// extension's value, which is a role only if it is exactly the DER
/// UTF8String of that role. Odd: a certificate, whose role (if any) is a
/// valid role.
pub fn role_certificate(data: &[u8]) {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    if which % 2 == 0 {
        if let Ok(role) = role_from_extension_value(rest) {
            let text = role.as_str().as_bytes();
            let mut canonical = vec![0x0C, text.len() as u8];
            canonical.extend_from_slice(text);
            assert_eq!(canonical, rest);
        }
    } else if let Ok(certified) = role_from_certificate(&CertificateDer::from(rest)) {
        let role = certified.role.as_str();
        assert!(!role.is_empty() && role.len() <= 64);
        assert!(role.bytes().all(|b| (0x21..=0x7E).contains(&b)));
        assert!(certified.subject.as_str().len() <= 255);
    }
}
