//! Secret files staged on a host tmpfs, for runtimes that bind-mount them into containers (as
//! Docker Swarm does): each container's files live in their own directory
//! `<secrets dir>/<random id>/` (mode 0700), one file per secret (mode 0400), and the directory
//! is removed with the container.
//!
//! The secrets directory must be on a tmpfs, so plaintext never reaches a disk; one that is not
//! is refused ([`RuntimeError::Unsupported`] naming it), never used anyway.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use orion_core::secrets::{SECRET_FILE_MODE, SecretDelivery, SecretTarget};
use rand::RngCore;

use crate::error::{Result, RuntimeError};

/// Where secret files are staged by default: `/dev/shm` is a tmpfs on Linux.
pub const DEFAULT_SECRETS_DIR: &str = "/dev/shm/orion-secrets";

/// The container label that records its staged secrets directory, so `remove` can delete it.
pub const SECRETS_DIR_LABEL: &str = "io.orion.secrets-dir";

/// One container's staged secret files.
#[derive(Debug)]
pub(crate) struct StagedSecrets {
    /// The container's own directory under the secrets directory.
    pub dir: PathBuf,
    /// Each file: its path on the host and its target path in the container.
    pub files: Vec<(PathBuf, String)>,
}

impl StagedSecrets {
    /// Deletes the files and their directory (best effort: logged on failure).
    pub fn discard(&self) {
        remove_staged(&self.dir);
    }
}

/// The file system type of the mount holding `path` (`tmpfs`, `ext4`...), from
/// `/proc/self/mounts`; `None` when it cannot be told.
pub fn filesystem_type(path: &Path) -> Option<String> {
    let mut probe = path.to_path_buf();
    let real = loop {
        if let Ok(real) = probe.canonicalize() {
            break real;
        }
        if !probe.pop() {
            return None;
        }
    };
    let mounts = std::fs::read_to_string("/proc/self/mounts").ok()?;
    mounts
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let _device = fields.next()?;
            let point = fields.next()?.replace("\\040", " ");
            let kind = fields.next()?;
            real.starts_with(&point)
                .then(|| (point.len(), kind.to_owned()))
        })
        // The last, longest match is the mount in effect.
        .fold(
            None,
            |best: Option<(usize, String)>, (len, kind)| match best {
                Some((l, _)) if l > len => best,
                _ => Some((len, kind)),
            },
        )
        .map(|(_, kind)| kind)
}

/// Writes the file secrets of `secrets` under `root` (created, mode 0700), each mode 0400;
/// `None` when there are none. `backend` names the runtime in errors.
pub(crate) fn stage(
    backend: &'static str,
    root: &Path,
    secrets: &[SecretDelivery],
) -> Result<Option<StagedSecrets>> {
    let files: Vec<_> = secrets
        .iter()
        .filter_map(|s| match &s.target {
            SecretTarget::File(target) => Some((s, target)),
            SecretTarget::Env(_) => None,
        })
        .collect();
    if files.is_empty() {
        return Ok(None);
    }
    let io = |what: &str, path: &Path, e| RuntimeError::io(format!("{what} {}", path.display()), e);
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(root)
        .map_err(|e| io("creating the secrets directory", root, e))?;
    match filesystem_type(root).as_deref() {
        Some("tmpfs") => {}
        other => {
            return Err(RuntimeError::Unsupported {
                backend,
                feature: format!(
                    "secret files in {} (a {} file system)",
                    root.display(),
                    other.unwrap_or("unknown")
                ),
                hint: "secret files are staged only on a tmpfs, so no plaintext reaches a disk; \
                       give the runtime a secrets directory on a tmpfs (default /dev/shm/orion-secrets)"
                    .to_owned(),
            });
        }
    }
    let mut id = [0u8; 16];
    rand::rng().fill_bytes(&mut id);
    let dir = root.join(id.iter().map(|b| format!("{b:02x}")).collect::<String>());
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&dir)
        .map_err(|e| io("creating", &dir, e))?;
    let mut staged = StagedSecrets {
        dir,
        files: Vec::new(),
    };
    for (i, (secret, target)) in files.into_iter().enumerate() {
        let host = staged.dir.join(format!("{i}-{}", secret.name));
        let written = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(SECRET_FILE_MODE)
            .open(&host)
            .and_then(|mut f| f.write_all(secret.value.expose()));
        if let Err(e) = written {
            staged.discard();
            return Err(io("writing secret file", &host, e));
        }
        staged.files.push((host, target.clone()));
    }
    Ok(Some(staged))
}

/// Deletes a staged directory; only a direct child of a directory named like
/// [`DEFAULT_SECRETS_DIR`]'s last part or any 32-hex-digit name is touched.
pub(crate) fn remove_staged(dir: &Path) {
    let named_like_ours = dir
        .file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.len() == 32 && n.bytes().all(|b| b.is_ascii_hexdigit()));
    if !named_like_ours {
        tracing::warn!(dir = %dir.display(), "not removing a secrets directory Orion did not name");
        return;
    }
    match std::fs::remove_dir_all(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => tracing::warn!(dir = %dir.display(), error = %e, "cannot remove staged secrets"),
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use orion_core::secrets::SecretValue;

    use super::*;

    fn delivery(name: &str, target: SecretTarget) -> SecretDelivery {
        SecretDelivery {
            name: name.into(),
            target,
            value: SecretValue::new(b"v4lue".to_vec()).unwrap(),
        }
    }

    #[test]
    fn files_are_staged_0400_on_tmpfs_and_removed() {
        let root = Path::new("/dev/shm").join(format!("orion-secrets-test-{}", std::process::id()));
        let staged = stage(
            "docker",
            &root,
            &[
                delivery("db", SecretTarget::File("/run/secrets/db".into())),
                delivery("env-only", SecretTarget::Env("X".into())),
            ],
        )
        .unwrap()
        .unwrap();
        assert_eq!(staged.files.len(), 1);
        let (host, target) = &staged.files[0];
        assert_eq!(target, "/run/secrets/db");
        assert_eq!(std::fs::read(host).unwrap(), b"v4lue");
        let mode = std::fs::metadata(host).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o400);
        assert_eq!(filesystem_type(host).as_deref(), Some("tmpfs"));
        staged.discard();
        assert!(!staged.dir.exists());
        std::fs::remove_dir(&root).unwrap();
    }

    #[test]
    fn a_directory_on_disk_is_refused() {
        let dir = tempfile::tempdir_in(env!("CARGO_MANIFEST_DIR")).unwrap();
        assert_ne!(filesystem_type(dir.path()).as_deref(), Some("tmpfs"));
        let err = stage(
            "docker",
            dir.path(),
            &[delivery("db", SecretTarget::File("/run/secrets/db".into()))],
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("tmpfs"), "{err}");
    }

    #[test]
    fn env_only_secrets_stage_nothing() {
        let staged = stage(
            "docker",
            Path::new("/nonexistent/never-created"),
            &[delivery("db", SecretTarget::Env("DB".into()))],
        )
        .unwrap();
        assert!(staged.is_none());
    }
}
