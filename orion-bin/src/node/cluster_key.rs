//! The cluster key that seals secrets at rest: 32 random bytes in `<data dir>/keys/cluster.key`
//! (mode 0600, in a 0700 directory), created on first start.
//!
//! This is the one place the key is read or made ([`load_or_create_cluster_key`]). Until
//! joining nodes receive the key (node join tokens), each node of a multi-node cluster creates
//! its own, and a secret opens only on the node whose API sealed it; other nodes fail such
//! tasks with an error naming both key ids.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use rand::RngCore;

/// The key file under a data dir.
pub fn cluster_key_path(data_dir: &Path) -> PathBuf {
    data_dir.join("keys").join("cluster.key")
}

/// Reads the cluster key of `data_dir`, or creates it (32 bytes from the OS's random source,
/// written to a temp file with mode 0600, synced, then renamed into place). A key file that is
/// not exactly 32 bytes, or that group or others may read, is refused with an error naming the
/// file: it is never replaced, since secrets sealed with it would be lost.
pub fn load_or_create_cluster_key(data_dir: &Path) -> Result<[u8; 32]> {
    let path = cluster_key_path(data_dir);
    let dir = path.parent().unwrap_or(data_dir);
    match std::fs::read(&path) {
        Ok(bytes) => {
            let mode = std::fs::metadata(&path)?.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                bail!(
                    "{}: mode {mode:o} lets other users read the cluster key; \
                     run chmod 600 on it (expected mode 600)",
                    path.display()
                );
            }
            let key: [u8; 32] = bytes.as_slice().try_into().map_err(|_| {
                anyhow::anyhow!(
                    "{}: {} bytes, expected exactly 32 (a cluster key); restore it from a \
                     backup, since secrets sealed with it cannot be opened without it",
                    path.display(),
                    bytes.len()
                )
            })?;
            Ok(key)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            let mut key = [0u8; 32];
            rand::rng().fill_bytes(&mut key);
            let tmp = dir.join("cluster.key.tmp");
            let _ = std::fs::remove_file(&tmp);
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)
                .with_context(|| format!("cannot create {}", tmp.display()))?;
            file.write_all(&key)?;
            file.sync_all()?;
            std::fs::rename(&tmp, &path)
                .with_context(|| format!("cannot move the new key to {}", path.display()))?;
            std::fs::File::open(dir)?.sync_all()?;
            Ok(key)
        }
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_is_created_once_with_mode_0600_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let key = load_or_create_cluster_key(dir.path()).unwrap();
        let path = cluster_key_path(dir.path());
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(load_or_create_cluster_key(dir.path()).unwrap(), key);
        let other = tempfile::tempdir().unwrap();
        assert_ne!(load_or_create_cluster_key(other.path()).unwrap(), key);
    }

    #[test]
    fn a_short_or_readable_key_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = cluster_key_path(dir.path());
        load_or_create_cluster_key(dir.path()).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = load_or_create_cluster_key(dir.path())
            .unwrap_err()
            .to_string();
        assert!(err.contains("chmod 600"), "{err}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::write(&path, b"short").unwrap();
        let err = load_or_create_cluster_key(dir.path())
            .unwrap_err()
            .to_string();
        assert!(err.contains("expected exactly 32"), "{err}");
    }
}
