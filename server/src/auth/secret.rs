//! Where the signing secret comes from: `SWITCHBOARD_AUTH_SECRET`, the file named by
//! `--auth-secret-file`, or else a file the server creates on its first run in its data
//! folder (mode 0600, 32 random bytes as hex), so auth is on without any setting and
//! `switchboard token create` finds the same secret.

use super::keys::weakness;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The environment variable that may hold the signing secret.
pub const SECRET_ENV: &str = "SWITCHBOARD_AUTH_SECRET";
/// The file in the data folder that holds the generated secret.
pub const SECRET_FILE: &str = "auth-secret";
/// Random bytes in a generated secret.
const GENERATED_BYTES: usize = 32;

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("cannot read the signing secret from {path}: {reason}")]
    Read { path: String, reason: String },
    #[error("cannot create the signing secret {path}: {reason}")]
    Create { path: String, reason: String },
    #[error("the signing secret in {source_name} is too weak: {why} (e.g. `openssl rand -hex 32`)")]
    Weak { source_name: String, why: String },
    #[error(
        "no signing secret: {path} does not exist yet (the server creates it on its first run), \
         and neither SWITCHBOARD_AUTH_SECRET nor SWITCHBOARD_AUTH_SECRET_FILE is set"
    )]
    Missing { path: String },
}

/// A secret and where it came from (named in logs and errors, never its value).
pub struct Secret {
    pub bytes: Vec<u8>,
    pub source_name: String,
    /// Whether it was generated just now.
    pub created: bool,
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secret").field("source_name", &self.source_name).finish_non_exhaustive()
    }
}

pub fn data_dir_file(data_dir: &Path) -> PathBuf {
    data_dir.join(SECRET_FILE)
}

fn checked(text: String, source_name: String, created: bool) -> Result<Secret, SecretError> {
    // a trailing newline from `echo` or an editor is not part of the secret
    let bytes = text.trim_end_matches(['\n', '\r']).as_bytes().to_vec();
    if let Some(why) = weakness(&bytes) {
        return Err(SecretError::Weak { source_name, why });
    }
    Ok(Secret { bytes, source_name, created })
}

fn read(path: &Path) -> Result<String, SecretError> {
    std::fs::read_to_string(path).map_err(|e| SecretError::Read { path: path.display().to_string(), reason: e.to_string() })
}

/// The configured secret (environment first, then `file`), if any.
pub fn configured(file: Option<&Path>) -> Result<Option<Secret>, SecretError> {
    if let Ok(text) = std::env::var(SECRET_ENV) {
        return checked(text, SECRET_ENV.to_owned(), false).map(Some);
    }
    match file {
        Some(path) => checked(read(path)?, path.display().to_string(), false).map(Some),
        None => Ok(None),
    }
}

/// The configured secret, or the data folder's, created when `create` and missing.
pub fn resolve(file: Option<&Path>, data_dir: &Path, create: bool) -> Result<Secret, SecretError> {
    if let Some(secret) = configured(file)? {
        return Ok(secret);
    }
    let path = data_dir_file(data_dir);
    let name = path.display().to_string();
    if path.exists() {
        warn_if_readable_by_others(&path);
        return checked(read(&path)?, name, false);
    }
    if !create {
        return Err(SecretError::Missing { path: name });
    }
    let text = generate();
    write_new(&path, &text).map_err(|e| SecretError::Create { path: name.clone(), reason: e.to_string() })?;
    checked(text, name, true)
}

fn generate() -> String {
    let bytes: [u8; GENERATED_BYTES] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Creates the file readable by its owner only; never replaces one.
fn write_new(path: &Path, text: &str) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(text.as_bytes())?;
    file.write_all(b"\n")?;
    file.sync_all()
}

fn warn_if_readable_by_others(path: &Path) {
    #[cfg(unix)]
    if let Ok(meta) = std::fs::metadata(path) {
        use std::os::unix::fs::PermissionsExt;
        if meta.permissions().mode() & 0o077 != 0 {
            tracing::warn!(path = %path.display(), "the signing secret is readable by other users: chmod 600 it");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_secret_is_created_once_owner_only_and_then_reused() {
        let dir = std::env::temp_dir().join(format!("sb-secret-{:x}", rand::random::<u64>()));
        std::fs::create_dir_all(&dir).unwrap();
        assert!(matches!(resolve(None, &dir, false), Err(SecretError::Missing { .. })));
        let first = resolve(None, &dir, true).unwrap();
        assert!(first.created && first.bytes.len() == 2 * GENERATED_BYTES);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(data_dir_file(&dir)).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let again = resolve(None, &dir, true).unwrap();
        assert!(!again.created && again.bytes == first.bytes);
        let weak = dir.join("weak");
        std::fs::write(&weak, "x".repeat(40)).unwrap();
        let err = resolve(Some(&weak), &dir, true).unwrap_err().to_string();
        assert!(err.contains("repeated") && !err.contains("xxxx"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
