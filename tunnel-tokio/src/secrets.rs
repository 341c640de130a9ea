//! Files that hold secrets (private keys, agent secrets, credentials) must
//! be readable by their owner only: a key any local user can read is a key
//! anyone on the machine can use.

use std::path::Path;

/// A file holding a secret that others may read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path} holds a secret and is readable by group or others (mode {mode:04o}); run: chmod 600 {path}")]
pub struct ExposedSecret {
    /// The file.
    pub path: String,
    /// Its permission bits.
    pub mode: u32,
}

/// Checks that `path` is readable by its owner only (on Unix; elsewhere it
/// passes). A file that cannot be inspected passes here: reading it will
/// report why.
pub fn check_private(path: &Path) -> Result<(), ExposedSecret> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(path) {
            let mode = meta.permissions().mode() & 0o7777;
            if mode & 0o077 != 0 {
                return Err(ExposedSecret {
                    path: path.display().to_string(),
                    mode,
                });
            }
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// Reads a secret file, refusing one that others may read.
pub fn read_private(path: &Path) -> Result<String, SecretFileError> {
    check_private(path)?;
    std::fs::read_to_string(path).map_err(|error| SecretFileError::Read {
        path: path.display().to_string(),
        error,
    })
}

/// Why a secret file could not be read.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum SecretFileError {
    /// Others may read it.
    #[error(transparent)]
    Exposed(#[from] ExposedSecret),
    /// It could not be read.
    #[error("{path}: {error}")]
    Read {
        /// The file.
        path: String,
        /// The failure.
        error: std::io::Error,
    },
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn a_secret_others_can_read_is_refused_with_the_command_that_fixes_it() {
        let dir = std::env::temp_dir().join(format!("outpost-secrets-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("agent.key");
        std::fs::write(&path, "key").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let error = check_private(&path).unwrap_err();
        assert_eq!(error.mode, 0o644);
        assert!(
            error.to_string().contains(&format!("chmod 600 {}", path.display())),
            "{error}"
        );
        assert!(matches!(read_private(&path), Err(SecretFileError::Exposed(_))));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        assert!(check_private(&path).is_err(), "group-readable");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(read_private(&path).unwrap(), "key");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o400)).unwrap();
        assert!(check_private(&path).is_ok());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
