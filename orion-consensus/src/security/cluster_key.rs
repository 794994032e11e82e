//! [`ClusterKey`]: the cluster's symmetric root key.

use std::fmt;
use std::path::{Path, PathBuf};

use hkdf::Hkdf;
use sha2::Sha256;

use super::{read_if_exists, write_private};
use crate::error::{Error, Result};

/// The cluster key's length in bytes.
pub const CLUSTER_KEY_LEN: usize = 32;

/// 32 random bytes shared by every node of a cluster (minted at first bootstrap, delivered to a
/// node when it is admitted), from which every symmetric key is derived: the gossip AEAD key,
/// the secrets at-rest key. It is never used directly.
///
/// Kept in `<data-dir>/keys/cluster.key` with mode 0600. `Debug` never shows the bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct ClusterKey([u8; CLUSTER_KEY_LEN]);

impl fmt::Debug for ClusterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClusterKey(<redacted>)")
    }
}

impl ClusterKey {
    /// A new random key.
    pub fn generate() -> Self {
        ClusterKey(rand::random())
    }

    /// A key from its bytes (as delivered at join).
    pub fn from_bytes(bytes: [u8; CLUSTER_KEY_LEN]) -> Self {
        ClusterKey(bytes)
    }

    /// The raw bytes, to deliver to an admitted node over mutual TLS.
    pub fn to_bytes(&self) -> [u8; CLUSTER_KEY_LEN] {
        self.0
    }

    /// The key file under a node's data dir: `<data_dir>/keys/cluster.key`.
    pub fn path(data_dir: &Path) -> PathBuf {
        super::keys_dir(data_dir).join("cluster.key")
    }

    /// Loads the key from `<data_dir>/keys/cluster.key`, or `None` when there is none.
    /// Errors: a file that is not exactly 32 bytes, or readable by others than its owner.
    pub fn load(data_dir: &Path) -> Result<Option<Self>> {
        let path = Self::path(data_dir);
        let Some(bytes) = read_if_exists(&path)? else {
            return Ok(None);
        };
        check_private(&path)?;
        let bytes: [u8; CLUSTER_KEY_LEN] = bytes.as_slice().try_into().map_err(|_| {
            Error::security(
                format!("{}", path.display()),
                format!(
                    "{} bytes; a cluster key is exactly {CLUSTER_KEY_LEN} bytes",
                    bytes.len()
                ),
            )
        })?;
        Ok(Some(ClusterKey(bytes)))
    }

    /// Loads the key, or generates and stores one (mode 0600) when there is none.
    pub fn load_or_create(data_dir: &Path) -> Result<Self> {
        if let Some(key) = Self::load(data_dir)? {
            return Ok(key);
        }
        let key = Self::generate();
        key.save(data_dir)?;
        Ok(key)
    }

    /// Writes the key to `<data_dir>/keys/cluster.key` with mode 0600.
    pub fn save(&self, data_dir: &Path) -> Result<()> {
        write_private(&Self::path(data_dir), &self.0, 0o600)
    }

    /// A 32-byte key for `purpose` (for example `"gossip"` or `"secrets-at-rest"`), derived
    /// with HKDF-SHA256 (salt `orion-cluster-key-v1`, info = `purpose`). The same key and
    /// purpose always give the same bytes; different purposes give independent keys.
    pub fn derive(&self, purpose: &str) -> [u8; 32] {
        let hk = Hkdf::<Sha256>::new(Some(b"orion-cluster-key-v1"), &self.0);
        let mut out = [0u8; 32];
        hk.expand(purpose.as_bytes(), &mut out)
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        out
    }
}

/// Refuses a key file that group or others can read or write.
pub(crate) fn check_private(path: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)
        .map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        return Err(Error::security(
            format!("{}", path.display()),
            format!(
                "mode {:o} lets others read or write it; expected 0600 (chmod 600)",
                mode & 0o777
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_keys_are_stable_per_purpose_and_independent_across_purposes() {
        let key = ClusterKey::from_bytes([7; 32]);
        assert_eq!(key.derive("gossip"), key.derive("gossip"));
        assert_ne!(key.derive("gossip"), key.derive("secrets-at-rest"));
        assert_ne!(
            key.derive("gossip"),
            ClusterKey::from_bytes([8; 32]).derive("gossip")
        );
        assert_eq!(format!("{key:?}"), "ClusterKey(<redacted>)");
    }

    #[test]
    fn the_key_file_is_private_and_survives_a_reload() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let key = ClusterKey::load_or_create(dir.path()).expect("create");
        let mode = std::fs::metadata(ClusterKey::path(dir.path()))
            .expect("stat")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(ClusterKey::load_or_create(dir.path()).expect("load"), key);

        std::fs::set_permissions(
            ClusterKey::path(dir.path()),
            std::fs::Permissions::from_mode(0o644),
        )
        .expect("chmod");
        let err = ClusterKey::load(dir.path())
            .expect_err("world-readable")
            .to_string();
        assert!(err.contains("expected 0600"), "{err}");
    }
}
