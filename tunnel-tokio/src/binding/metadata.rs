//! The OPEN metadata of a Modbus channel: profile version, role, principal.

use super::{BindingError, PROFILE_VERSION};

/// The IT role whose rules in the agent's policy apply to a channel:
/// 1 to 64 printable ASCII characters (`!` to `~`), for example `operator`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Role(String);

impl Role {
    /// The longest role, in bytes.
    pub const MAX_LEN: usize = 64;

    /// Checks and wraps a role name.
    pub fn new(role: &str) -> Result<Self, BindingError> {
        if role.is_empty() || role.len() > Self::MAX_LEN || !role.bytes().all(|b| (0x21..=0x7E).contains(&b)) {
            return Err(BindingError::Role);
        }
        Ok(Role(role.to_owned()))
    }

    /// The role's name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Who is behind a channel's requests, for the agent's audit log only:
/// at most 255 bytes of UTF-8. It grants nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Principal(String);

impl Principal {
    /// The longest principal, in bytes.
    pub const MAX_LEN: usize = 255;

    /// Checks and wraps a principal.
    pub fn new(principal: &str) -> Result<Self, BindingError> {
        if principal.len() > Self::MAX_LEN {
            return Err(BindingError::Principal);
        }
        Ok(Principal(principal.to_owned()))
    }

    /// The principal as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Principal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The OPEN metadata of a Modbus channel (section 12.1).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ChannelMetadata {
    /// The role whose rules apply.
    pub role: Role,
    /// Who is behind the requests.
    pub principal: Principal,
}

impl ChannelMetadata {
    /// Appends the metadata's bytes to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.push(PROFILE_VERSION);
        out.push(self.role.0.len() as u8);
        out.extend_from_slice(self.role.0.as_bytes());
        out.push(self.principal.0.len() as u8);
        out.extend_from_slice(self.principal.0.as_bytes());
    }

    /// The metadata as bytes.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(3 + self.role.0.len() + self.principal.0.len());
        self.encode(&mut out);
        out
    }

    /// Reads metadata received in an OPEN.
    pub fn decode(bytes: &[u8]) -> Result<Self, BindingError> {
        let truncated = |what| BindingError::Truncated { what };
        let (&version, rest) = bytes.split_first().ok_or(truncated("metadata version"))?;
        if version != PROFILE_VERSION {
            return Err(BindingError::Version(version));
        }
        let (role, rest) = field(rest).ok_or(truncated("role"))?;
        let role = std::str::from_utf8(role).map_err(|_| BindingError::Role)?;
        let (principal, rest) = field(rest).ok_or(truncated("principal"))?;
        let principal = std::str::from_utf8(principal).map_err(|_| BindingError::Principal)?;
        if !rest.is_empty() {
            return Err(BindingError::Trailing {
                what: "metadata",
                extra: rest.len(),
            });
        }
        Ok(ChannelMetadata {
            role: Role::new(role)?,
            principal: Principal::new(principal)?,
        })
    }
}

/// A length-prefixed field and what follows it.
fn field(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let (&len, rest) = bytes.split_first()?;
    let len = usize::from(len);
    (rest.len() >= len).then(|| rest.split_at(len))
}
