//! A credential store read from a TOML file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::RwLock;

use outpost_tunnel_proto::{AgentId, Credential, CredentialStore, InvalidValue, MemoryCredentials, Secret};
use tracing::info;

/// Why a credentials file could not be loaded.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    /// The file could not be read.
    #[error("{path}: {error}")]
    Read {
        /// The file.
        path: String,
        /// The failure.
        error: std::io::Error,
    },
    /// The file is not valid TOML of the expected shape.
    #[error("{path}: {error}")]
    Parse {
        /// The file.
        path: String,
        /// The failure.
        error: String,
    },
    /// Others may read the file.
    #[error(transparent)]
    Exposed(#[from] crate::secrets::ExposedSecret),
    /// An entry is invalid.
    #[error("{path}: agent {agent:?}: {reason}")]
    Entry {
        /// The file.
        path: String,
        /// The entry's name.
        agent: String,
        /// What is wrong with it.
        reason: &'static str,
    },
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    agents: BTreeMap<String, Entry>,
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    /// The secret in hexadecimal (at least 16 bytes).
    #[serde(default)]
    secret: Option<String>,
    #[serde(default)]
    revoked: bool,
}

/// Agent secrets from a TOML file, reloadable while the hub runs:
///
/// ```toml
/// [agents.plant-7]
/// secret = "5d3f0c9a8e7b6a5d4c3b2a1908f7e6d5c4b3a291807f6e5d4c3b2a1908f7e6d5"
///
/// [agents.plant-9]
/// revoked = true
/// ```
///
/// Secrets are hexadecimal, at least 16 bytes (32 digits); 32 random bytes
/// are recommended. A revoked agent is refused like an unknown one. The
/// file must be readable by its owner only (`chmod 600`); others are
/// refused with [`CredentialsError::Exposed`]. Agent ids with dots are
/// quoted TOML keys: `[agents."plant-7.site-a"]`.
#[derive(Debug)]
pub struct FileCredentials {
    path: PathBuf,
    store: RwLock<MemoryCredentials>,
}

impl FileCredentials {
    /// Reads the file.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, CredentialsError> {
        let path = path.as_ref().to_path_buf();
        let store = RwLock::new(read(&path)?);
        Ok(FileCredentials { path, store })
    }

    /// Reads the file again; on failure the previous credentials stay.
    pub fn reload(&self) -> Result<(), CredentialsError> {
        let fresh = read(&self.path)?;
        *self.store.write().unwrap_or_else(|p| p.into_inner()) = fresh;
        info!(target: "outpost::audit", event = "credentials.reloaded", path = %self.path.display(), "credentials reloaded");
        Ok(())
    }
}

impl CredentialStore for FileCredentials {
    fn lookup(&self, agent: &AgentId) -> Credential {
        self.store.read().unwrap_or_else(|p| p.into_inner()).lookup(agent)
    }
}

fn read(path: &Path) -> Result<MemoryCredentials, CredentialsError> {
    crate::secrets::check_private(path)?;
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|error| CredentialsError::Read {
        path: shown.clone(),
        error,
    })?;
    parse(&text, &shown)
}

/// Parses the file's text; `path` names it in errors.
pub(crate) fn parse(text: &str, path: &str) -> Result<MemoryCredentials, CredentialsError> {
    let file: File = toml::from_str(text).map_err(|e| CredentialsError::Parse {
        path: path.into(),
        error: e.to_string(),
    })?;
    let mut store = MemoryCredentials::new();
    for (name, entry) in file.agents {
        let bad = |reason| CredentialsError::Entry {
            path: path.into(),
            agent: name.clone(),
            reason,
        };
        let id = AgentId::new(&name).map_err(|_| bad("not a valid agent id"))?;
        if name.bytes().any(|b| b.is_ascii_uppercase()) {
            // Ids come from certificates' DNS names, compared in lowercase.
            return Err(bad(
                "agent ids are DNS names, compared in lowercase: write it in lowercase",
            ));
        }
        if entry.revoked {
            store.revoke(id);
            continue;
        }
        let hex = entry.secret.ok_or_else(|| bad("no secret"))?;
        let secret = Secret::from_hex(&hex).map_err(|e| match e {
            InvalidValue::SecretLength { len, min, .. } if len < min => bad("the secret is shorter than 16 bytes"),
            InvalidValue::SecretLength { .. } => bad("the secret is longer than 128 bytes"),
            _ => bad("the secret is not hexadecimal"),
        })?;
        store.insert(id, secret);
    }
    Ok(store)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_and_refusals() {
        let store = parse(
            "[agents.plant-7]\nsecret = \"000102030405060708090a0b0c0d0e0f\"\n[agents.plant-9]\nrevoked = true\n",
            "t",
        )
        .unwrap();
        let id = |s| AgentId::new(s).unwrap();
        assert!(matches!(store.lookup(&id("plant-7")), Credential::Active(_)));
        assert!(matches!(store.lookup(&id("plant-9")), Credential::Revoked));
        assert!(matches!(store.lookup(&id("plant-8")), Credential::Unknown));
        for (text, reason) in [
            ("[agents.a]\nsecret = \"0001\"\n", "the secret is shorter than 16 bytes"),
            ("[agents.a]\nsecret = \"zz\"\n", "the secret is not hexadecimal"),
            ("[agents.a]\n", "no secret"),
            ("[agents.\"a b\"]\nrevoked = true\n", "not a valid agent id"),
            (
                "[agents.Plant-7]\nrevoked = true\n",
                "agent ids are DNS names, compared in lowercase: write it in lowercase",
            ),
        ] {
            match parse(text, "t") {
                Err(CredentialsError::Entry { reason: r, .. }) => assert_eq!(r, reason),
                other => panic!("{text}: {other:?}"),
            }
        }
        assert!(matches!(
            parse("[agents.a]\nsecrt = 1\n", "t"),
            Err(CredentialsError::Parse { .. })
        ));
    }

    #[test]
    fn dotted_ids_are_quoted_keys() {
        let store = parse(
            "[agents.\"plant-7.site-a.example\"]\nsecret = \"000102030405060708090a0b0c0d0e0f\"\n",
            "t",
        )
        .unwrap();
        let id = AgentId::new("plant-7.site-a.example").unwrap();
        assert!(matches!(store.lookup(&id), Credential::Active(_)));
    }
}
