//! Where the CLI finds its API token, and where a bootstrapping node leaves the management
//! token for local use.
//!
//! The CLI takes, in order: `--token` / `ORION_TOKEN`; the file named by `--credentials` /
//! `ORION_CREDENTIALS` (which must exist); `./orion-data/credentials` (the data dir of
//! `orion up`); `$HOME/.config/orion/credentials`. A credentials file holds the token on its
//! first line that is neither empty nor a `#` comment; it must not be readable by group or
//! others (mode 0600), and at most [`MAX_CREDENTIALS_BYTES`] long.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

/// Name of the credentials file in a node's data dir.
pub const CREDENTIALS_FILE: &str = "credentials";
/// Largest credentials file read.
pub const MAX_CREDENTIALS_BYTES: u64 = 4096;

/// The line prefix of the voter join token in a credentials file.
pub const VOTER_JOIN_TOKEN: &str = "voter-join-token ";
/// The line prefix of the worker join token in a credentials file.
pub const WORKER_JOIN_TOKEN: &str = "worker-join-token ";

/// Writes `token` to `<data_dir>/credentials`, mode 0600, atomically (replacing an older file),
/// followed by the `(voter, worker)` join tokens when given (lines after the token line, which
/// the CLI does not read).
pub fn write_credentials(
    data_dir: &Path,
    token: &str,
    join: Option<&(String, String)>,
) -> Result<PathBuf> {
    let path = data_dir.join(CREDENTIALS_FILE);
    let mut text =
        format!("# Orion management token (admin role), written once at bootstrap\n{token}\n");
    if let Some((voter, worker)) = join {
        text.push_str(&format!(
            "# Join tokens as made at bootstrap (`orion token rotate voter|worker` replaces them)\n\
             {VOTER_JOIN_TOKEN}{voter}\n{WORKER_JOIN_TOKEN}{worker}\n"
        ));
    }
    orion_consensus::security::write_private(&path, text.as_bytes(), 0o600)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path)
}

/// The token in credentials file `path`; refuses a file readable by group or others, a file
/// over [`MAX_CREDENTIALS_BYTES`], and one without a token line.
pub fn read_credentials(path: &Path) -> Result<String> {
    let meta =
        std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
    if meta.mode() & 0o077 != 0 {
        bail!(
            "credentials file {} can be read by others (mode {:o}); run chmod 600 on it",
            path.display(),
            meta.mode() & 0o777
        );
    }
    if meta.len() > MAX_CREDENTIALS_BYTES {
        bail!(
            "credentials file {} is {} bytes, expected at most {MAX_CREDENTIALS_BYTES}",
            path.display(),
            meta.len()
        );
    }
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .with_context(|| format!("credentials file {} holds no token line", path.display()))
}

/// The token the CLI sends, from `flag` (`--token` / `ORION_TOKEN`), then `file`
/// (`--credentials` / `ORION_CREDENTIALS`), then the default files; `None` when there is none.
pub fn resolve_token(flag: Option<&str>, file: Option<&Path>) -> Result<Option<String>> {
    if let Some(token) = flag.map(str::trim).filter(|t| !t.is_empty()) {
        return Ok(Some(token.to_owned()));
    }
    if let Some(path) = file {
        return read_credentials(path)
            .with_context(|| "--credentials / ORION_CREDENTIALS".to_owned())
            .map(Some);
    }
    let mut defaults = vec![PathBuf::from("orion-data").join(CREDENTIALS_FILE)];
    if let Some(home) = std::env::var_os("HOME") {
        defaults.push(
            PathBuf::from(home)
                .join(".config/orion")
                .join(CREDENTIALS_FILE),
        );
    }
    for path in defaults {
        if path.exists() {
            return read_credentials(&path).map(Some);
        }
    }
    Ok(None)
}

/// The cluster CA certificate (PEM) the CLI trusts for the API's TLS: the file `flag` names
/// (`--ca` / `ORION_CA`, which must exist); else `keys/ca.crt` next to the credentials file
/// named by `credentials` (`--credentials`), or next to `./orion-data/credentials`; else
/// `~/.config/orion/ca.crt`. `None` when there is none (the CLI then speaks plain HTTP to an
/// address without a scheme).
pub fn resolve_ca(flag: Option<&Path>, credentials: Option<&Path>) -> Result<Option<Vec<u8>>> {
    const MAX_CA_BYTES: u64 = 64 * 1024;
    let read = |path: &Path| -> Result<Vec<u8>> {
        let meta =
            std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
        if meta.len() > MAX_CA_BYTES {
            bail!(
                "CA file {} is {} bytes, expected at most {MAX_CA_BYTES}",
                path.display(),
                meta.len()
            );
        }
        std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
    };
    if let Some(path) = flag {
        return read(path).context("--ca / ORION_CA").map(Some);
    }
    let beside = |creds: &Path| creds.parent().map(|dir| dir.join("keys").join("ca.crt"));
    let mut candidates = Vec::new();
    match credentials {
        Some(creds) => candidates.extend(beside(creds)),
        None => {
            candidates.extend(beside(&PathBuf::from("orion-data").join(CREDENTIALS_FILE)));
            if let Some(home) = std::env::var_os("HOME") {
                candidates.push(PathBuf::from(home).join(".config/orion/ca.crt"));
            }
        }
    }
    for path in candidates {
        if path.exists() {
            return read(&path).map(Some);
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_written_file_is_private_and_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_credentials(
            dir.path(),
            "orion_abc_def",
            Some(&("ORN1::v".to_owned(), "ORN1::w".to_owned())),
        )
        .unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.contains("voter-join-token ORN1::v") && text.contains("worker-join-token ORN1::w")
        );
        assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
        assert_eq!(read_credentials(&path).unwrap(), "orion_abc_def");
        assert_eq!(
            resolve_token(Some("orion_flag"), Some(&path)).unwrap(),
            Some("orion_flag".into())
        );
        assert_eq!(
            resolve_token(None, Some(&path)).unwrap(),
            Some("orion_abc_def".into())
        );
    }

    #[test]
    fn a_file_others_can_read_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("credentials");
        std::fs::write(&path, "orion_x\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = read_credentials(&path).unwrap_err().to_string();
        assert!(err.contains("chmod 600"), "{err}");
        assert!(resolve_token(None, Some(&dir.path().join("missing"))).is_err());
    }
}
