//! Validated identifiers and secrets: what the handshake names and proves.

use core::fmt;

use bytes::Bytes;
use zeroize::Zeroize;

/// Why an identifier or secret was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidValue {
    /// An agent id must be 1 to 128 printable ASCII characters without spaces.
    #[error("an agent id must be 1..={max} printable ASCII characters without spaces (got {len} bytes)")]
    AgentId {
        /// The length given.
        len: usize,
        /// The largest length allowed.
        max: usize,
    },
    /// A secret must be 16 to 128 bytes long.
    #[error("a secret must be {min}..={max} bytes long (got {len})")]
    SecretLength {
        /// The length given.
        len: usize,
        /// The smallest length allowed.
        min: usize,
        /// The largest length allowed.
        max: usize,
    },
    /// A secret written as text must be hexadecimal, two digits per byte.
    #[error("a secret in text must be hexadecimal, two digits per byte")]
    SecretHex,
    /// A channel binding value must be 16 to 64 bytes long.
    #[error("a channel binding must be {min}..={max} bytes long (got {len})")]
    BindingLength {
        /// The length given.
        len: usize,
        /// The smallest length allowed.
        min: usize,
        /// The largest length allowed.
        max: usize,
    },
}

/// The name an agent is known by: 1 to 128 printable ASCII characters
/// (`!` to `~`), for example `plant-7` or `urn:acme:agent:plant-7`.
///
/// The character set keeps ids safe to log and to compare with a name taken
/// from a certificate.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AgentId(Bytes);

impl AgentId {
    /// The longest id, in bytes.
    pub const MAX_LEN: usize = 128;

    /// Checks and wraps an id.
    pub fn new(id: &str) -> Result<Self, InvalidValue> {
        Self::from_bytes(Bytes::copy_from_slice(id.as_bytes()))
    }

    pub(crate) fn from_bytes(id: Bytes) -> Result<Self, InvalidValue> {
        if id.is_empty() || id.len() > Self::MAX_LEN || !id.iter().all(|b| (0x21..=0x7E).contains(b)) {
            return Err(InvalidValue::AgentId {
                len: id.len(),
                max: Self::MAX_LEN,
            });
        }
        Ok(Self(id))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        // Only printable ASCII gets in (checked in `from_bytes`).
        core::str::from_utf8(&self.0).unwrap_or_default()
    }

    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for AgentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AgentId({})", self.as_str())
    }
}

impl fmt::Display for AgentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl core::str::FromStr for AgentId {
    type Err = InvalidValue;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

/// A per-agent secret shared by the agent and the hub's credential store:
/// 16 to 128 bytes (use 32 random bytes).
///
/// It never appears in `Debug` output and is wiped from memory when dropped.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Box<[u8]>);

impl Secret {
    /// The shortest secret, in bytes (128 bits).
    pub const MIN_LEN: usize = 16;
    /// The longest secret, in bytes.
    pub const MAX_LEN: usize = 128;

    /// Checks the length and wraps the secret.
    pub fn new(secret: &[u8]) -> Result<Self, InvalidValue> {
        if !(Self::MIN_LEN..=Self::MAX_LEN).contains(&secret.len()) {
            return Err(InvalidValue::SecretLength {
                len: secret.len(),
                min: Self::MIN_LEN,
                max: Self::MAX_LEN,
            });
        }
        Ok(Self(secret.into()))
    }

    /// Reads a secret written in hexadecimal (as `outpost certs` writes
    /// agents' secret files); surrounding whitespace is ignored.
    ///
    /// ```
    /// use outpost_tunnel_proto::Secret;
    /// assert!(Secret::from_hex("00112233445566778899aabbccddeeff\n").is_ok());
    /// assert!(Secret::from_hex("not hex").is_err());
    /// ```
    pub fn from_hex(text: &str) -> Result<Self, InvalidValue> {
        let text = text.trim();
        if !text.len().is_multiple_of(2) || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(InvalidValue::SecretHex);
        }
        let len = text.len() / 2;
        if !(Self::MIN_LEN..=Self::MAX_LEN).contains(&len) {
            return Err(InvalidValue::SecretLength {
                len,
                min: Self::MIN_LEN,
                max: Self::MAX_LEN,
            });
        }
        let mut bytes = [0u8; Self::MAX_LEN];
        let digit = |c: u8| char::from(c).to_digit(16).ok_or(InvalidValue::SecretHex);
        let mut result = Ok(());
        for (slot, pair) in bytes.iter_mut().zip(text.as_bytes().chunks(2)) {
            match (digit(pair[0]), digit(pair[1])) {
                (Ok(high), Ok(low)) => *slot = (high * 16 + low) as u8,
                _ => {
                    result = Err(InvalidValue::SecretHex);
                    break;
                }
            }
        }
        let secret = result.and_then(|()| Self::new(&bytes[..len]));
        bytes.zeroize();
        secret
    }

    pub(crate) fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// The channel-binding value of the TLS connection under the session: keying
/// material exported from TLS (RFC 5705 / RFC 8446 section 7.5), 16 to 64
/// bytes. Both ends must export it with the same label and length; the
/// handshake proofs cover it, so a proof made on one TLS connection fails on
/// any other.
#[derive(Clone, PartialEq, Eq)]
pub struct ChannelBinding(Box<[u8]>);

impl ChannelBinding {
    /// The exporter label adapters should use.
    pub const EXPORTER_LABEL: &'static [u8] = b"EXPORTER-outpost-tunnel";
    /// The exporter length adapters should ask for.
    pub const RECOMMENDED_LEN: usize = 32;
    const MIN_LEN: usize = 16;
    const MAX_LEN: usize = 64;

    /// Checks the length and wraps the exported value.
    pub fn new(exported: &[u8]) -> Result<Self, InvalidValue> {
        if !(Self::MIN_LEN..=Self::MAX_LEN).contains(&exported.len()) {
            return Err(InvalidValue::BindingLength {
                len: exported.len(),
                min: Self::MIN_LEN,
                max: Self::MAX_LEN,
            });
        }
        Ok(Self(exported.into()))
    }

    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for ChannelBinding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ChannelBinding(..)")
    }
}

/// The 16-byte id the hub gives a session, for logs and for telling a newer
/// session of an agent from an older one.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(pub [u8; 16]);

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionId({self})")
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// A channel's number within its session. Never zero: frame channel 0 is the
/// session itself. The agent opens odd numbers, the hub even ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChannelId(u32);

impl ChannelId {
    /// Wraps a wire value; `None` for 0.
    pub const fn new(value: u32) -> Option<Self> {
        if value == 0 {
            None
        } else {
            Some(Self(value))
        }
    }

    /// The value on the wire.
    pub const fn value(self) -> u32 {
        self.0
    }

    /// Whether the agent opened this channel (odd numbers).
    pub const fn opened_by_agent(self) -> bool {
        self.0 % 2 == 1
    }
}

impl fmt::Display for ChannelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// The two kinds of channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ChannelKind {
    /// Each message is one frame with a correlation id: request/response
    /// traffic such as Modbus transactions.
    Message,
    /// Ordered bytes, for forwarding a byte stream such as a TCP connection.
    Stream,
}

impl ChannelKind {
    pub(crate) const fn value(self) -> u8 {
        match self {
            ChannelKind::Message => 1,
            ChannelKind::Stream => 2,
        }
    }

    pub(crate) const fn from_u8(value: u8) -> Option<Self> {
        match value {
            1 => Some(ChannelKind::Message),
            2 => Some(ChannelKind::Stream),
            _ => None,
        }
    }
}

/// 32 bytes from a cryptographically secure random source, supplied by the
/// caller for each new session (this crate has no source of its own). The
/// agent's handshake nonce, and the hub's nonce and session id, come from it.
#[derive(Clone)]
pub struct Random(pub [u8; 32]);

impl fmt::Debug for Random {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Random(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agent_ids_are_printable_ascii() {
        assert!(AgentId::new("plant-7").is_ok());
        assert!(AgentId::new("urn:acme:agent/7@site").is_ok());
        assert!(AgentId::new("").is_err());
        assert!(AgentId::new("with space").is_err());
        assert!(AgentId::new("caf\u{e9}").is_err());
        assert!(AgentId::new(&"a".repeat(128)).is_ok());
        assert!(AgentId::new(&"a".repeat(129)).is_err());
        assert_eq!(AgentId::new("x").unwrap().to_string(), "x");
    }

    #[test]
    fn secrets_are_bounded_and_never_printed() {
        assert!(Secret::new(&[0; 15]).is_err());
        assert!(Secret::new(&[0; 129]).is_err());
        let s = Secret::new(b"0123456789abcdef").unwrap();
        assert_eq!(format!("{s:?}"), "Secret(..)");
    }

    #[test]
    fn a_hex_secret_decodes_to_exactly_its_bytes() {
        // Every digit value in both positions, upper and lower case.
        let bytes: Vec<u8> = (0..=255u8).step_by(3).take(64).collect();
        let text: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(Secret::from_hex(&text).unwrap().expose(), &bytes[..]);
        assert_eq!(Secret::from_hex(&text.to_uppercase()).unwrap().expose(), &bytes[..]);
        assert_eq!(
            Secret::from_hex("  0f1e2d3c4b5a69788796a5b4c3d2e1f0\n")
                .unwrap()
                .expose(),
            [0x0f, 0x1e, 0x2d, 0x3c, 0x4b, 0x5a, 0x69, 0x78, 0x87, 0x96, 0xa5, 0xb4, 0xc3, 0xd2, 0xe1, 0xf0]
        );
    }

    #[test]
    fn a_hex_secret_is_refused_for_its_text_or_its_length() {
        let hex = |n: usize| "ab".repeat(n);
        assert_eq!(Secret::from_hex(&hex(16)).unwrap().expose().len(), 16);
        assert_eq!(Secret::from_hex(&hex(128)).unwrap().expose().len(), 128);
        for (text, expected) in [
            (hex(16)[..31].to_owned(), InvalidValue::SecretHex),
            (format!("{}g0", hex(15)), InvalidValue::SecretHex),
            (format!("{}0 0", hex(15)), InvalidValue::SecretHex),
            (format!("{}\u{e9}", hex(16)), InvalidValue::SecretHex),
            (
                hex(15),
                InvalidValue::SecretLength {
                    len: 15,
                    min: 16,
                    max: 128,
                },
            ),
            (
                hex(129),
                InvalidValue::SecretLength {
                    len: 129,
                    min: 16,
                    max: 128,
                },
            ),
            (
                String::new(),
                InvalidValue::SecretLength {
                    len: 0,
                    min: 16,
                    max: 128,
                },
            ),
        ] {
            assert_eq!(Secret::from_hex(&text), Err(expected), "{text:?}");
        }
    }
}
