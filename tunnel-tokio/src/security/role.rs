//! The Modbus/TCP Security role: the X.509 v3 extension
//! `1.3.6.1.4.1.50316.802.1` whose value is one DER UTF8String, read with
//! `x509-parser` (never by hand).

use rustls::pki_types::CertificateDer;
use x509_parser::der_parser::der::parse_der_utf8string;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::binding::{Principal, Role};

/// The role extension's object identifier, as text.
pub const ROLE_OID: &str = "1.3.6.1.4.1.50316.802.1";

/// The role extension's object identifier, DER-encoded (without tag and
/// length): 1.3 is 0x2B, 50316 and 802 take three and two base-128 bytes.
pub const ROLE_OID_DER: &[u8] = &[0x2B, 0x06, 0x01, 0x04, 0x01, 0x83, 0x89, 0x0C, 0x86, 0x22, 0x01];

/// The DER tag of a UTF8String (universal, primitive, 12).
const UTF8_STRING: u8 = 0x0C;

/// Why a client certificate names no usable role. The client is refused
/// during the TLS handshake.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RoleError {
    /// The certificate is not valid X.509 DER.
    #[error("the certificate does not parse")]
    Certificate,
    /// The certificate has no role extension.
    #[error("the certificate carries no Modbus role ({ROLE_OID})")]
    Missing,
    /// The certificate has more than one role extension.
    #[error("the certificate carries {0} Modbus role extensions; exactly one is allowed")]
    Several(usize),
    /// The extension's value is not exactly one DER UTF8String.
    #[error("the Modbus role is not a UTF8String")]
    NotUtf8String,
    /// The UTF8String is not a role this library carries: 1 to 64
    /// printable ASCII characters, no spaces.
    #[error("the Modbus role {0:?} is not 1 to 64 printable ASCII characters")]
    Unusable(String),
}

/// What a verified Modbus/TCP Security client certificate says about its
/// holder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertifiedRole {
    /// The role from the role extension.
    pub role: Role,
    /// The certificate's subject, as an RFC 4514 string (`CN=scada-1,O=Acme`),
    /// cut to [`Principal::MAX_LEN`] bytes: it names the client in audit
    /// events and travels to the agent as the channel's principal.
    pub subject: Principal,
}

/// The role a role extension's value (the content of its OCTET STRING)
/// names.
pub fn role_from_extension_value(value: &[u8]) -> Result<Role, RoleError> {
    let (rest, object) = parse_der_utf8string(value).map_err(|_| RoleError::NotUtf8String)?;
    if !rest.is_empty() {
        return Err(RoleError::NotUtf8String);
    }
    let text = object.as_str().map_err(|_| RoleError::NotUtf8String)?;
    let role = Role::new(text).map_err(|_| RoleError::Unusable(text.chars().take(Role::MAX_LEN + 1).collect()))?;
    // DER allows one encoding: the universal tag 12 and, for a role (at
    // most 64 bytes), a one-byte length. The parser also takes tag 12 of
    // another class and a long-form length; DER does not.
    if value.len() != 2 + text.len() || value[0] != UTF8_STRING || usize::from(value[1]) != text.len() {
        return Err(RoleError::NotUtf8String);
    }
    Ok(role)
}

/// The role and subject of a client certificate (DER). Exactly one role
/// extension must be present; its value must be a UTF8String.
pub fn role_from_certificate(cert: &CertificateDer<'_>) -> Result<CertifiedRole, RoleError> {
    let (_, cert) = X509Certificate::from_der(cert.as_ref()).map_err(|_| RoleError::Certificate)?;
    let mut roles = cert.extensions().iter().filter(|e| e.oid.as_bytes() == ROLE_OID_DER);
    let first = roles.next().ok_or(RoleError::Missing)?;
    let more = roles.count();
    if more > 0 {
        return Err(RoleError::Several(more + 1));
    }
    let role = role_from_extension_value(first.value)?;
    let subject = cert.subject().to_string();
    Ok(CertifiedRole {
        role,
        subject: Principal::new(cut(&subject, Principal::MAX_LEN)).unwrap_or_default(),
    })
}

/// `text` cut to at most `max` bytes, on a character boundary.
fn cut(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}
