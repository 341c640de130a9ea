//! Modbus/TCP Security (MB-TCP-Security v21, 2018): Modbus TCP framing
//! inside mutually authenticated TLS, with the client's **role** carried in
//! its X.509 certificate (extension [`ROLE_OID`], a UTF8String) and every
//! request authorized for that role.
//!
//! - [`SecureServer`]: a server over a data model, with an [`Authorize`]
//!   hook (a [`Policy`](outpost_modbus_core::access::Policy), or any
//!   closure) asked before each request reaches the model; a refusal is
//!   answered with exception 01 and an audit event.
//! - The client: [`crate::modbus::ClientBuilder::tls`] with a
//!   [`SecureClientTls`].
//! - On the hub, a secure gateway
//!   ([`GatewayBuilder::secure`](crate::hub::GatewayBuilder::secure))
//!   carries each client's role and certificate subject over the tunnel,
//!   where the agent's own policy makes the final decision.
//!
//! # What this implementation does, and where it differs from the specification
//!
//! - TLS 1.2 and 1.3, mutual authentication required, AEAD cipher suites
//!   only (ECDHE with AES-GCM or ChaCha20-Poly1305; every TLS 1.3 suite).
//!   The specification requires support for `TLS_RSA_WITH_NULL_SHA256`
//!   and `TLS_RSA_WITH_AES_128_CBC_SHA256`. rustls offers neither, on
//!   purpose: the first has no encryption at all, the second uses RSA key
//!   transport (no forward secrecy) and CBC with MAC-then-encrypt (the
//!   padding-oracle family of attacks). A peer that offers only those
//!   cannot connect; every maintained TLS stack offers the ECDHE suites.
//! - The role must be exactly one extension holding a DER UTF8String;
//!   none, several, or another type fails the handshake. The role must
//!   also be 1 to 64 printable ASCII characters without spaces (the form
//!   roles take in policies and on the tunnel); other UTF-8 text fails
//!   the handshake too. The extension must not be marked critical: the
//!   certificate verifier (webpki) refuses critical extensions it does not
//!   know.
//! - A request the role may not make is answered with exception 01
//!   (Illegal Function), as the specification asks, whatever rule denied
//!   it (the plain gateway answers address denials with 02).
//! - TLS renegotiation does not exist in rustls (TLS 1.3 removed it);
//!   session resumption uses rustls's defaults.
//! - Revocation is by CRL files (a CRL past its next update is refused
//!   unless configured otherwise); OCSP is not used.

mod authorize;
mod handshakes;
mod role;
mod server;
mod tls;

#[cfg(test)]
mod tests;

pub use authorize::{Authorize, ClientIdentity};
pub use role::{role_from_certificate, role_from_extension_value, CertifiedRole, RoleError, ROLE_OID, ROLE_OID_DER};
pub use server::{SecureServer, SecureServerBuilder};
pub use tls::{aead_provider, is_aead, SecureClientTls, SecureServerTls};

pub(crate) use handshakes::{HandshakeLimits, Handshakes};
pub(crate) use server::audit_denial;

/// The port Modbus/TCP Security uses by convention (`mbap/tls`).
pub const MBAPS_PORT: u16 = 802;
