//! Node-to-node security: the cluster CA, node certificates for mutual TLS, their rotation,
//! join tokens and the cluster key.
//!
//! - [`ClusterCa`]: the cluster's certificate authority, generated with rcgen at first bootstrap
//!   (or supplied from outside); its key is kept in `<data-dir>/keys/ca.key` with mode 0600.
//! - [`NodeCert`]: a node's certificate (for its name and addresses) and private key, signed by
//!   the CA; a node's private key never leaves it (the CA signs a CSR).
//! - [`NodeTls`]: the rustls server and client configurations of one node. Both present the
//!   node's current certificate through a [`CertSlot`], which [`NodeTls::rotate`] swaps
//!   atomically: handshakes after the swap use the new certificate, connections already open
//!   carry on, so no call fails during a rotation.
//! - [`JoinToken`]: `ORN1::<sha256 hex of the CA certificate DER>::<voter|worker>::<secret>`.
//!   A joining node checks the CA digest inside the TLS handshake, before it sends anything.
//! - [`ClusterKey`]: 32 random bytes in `<data-dir>/keys/cluster.key` (mode 0600), from which
//!   purpose-bound keys are derived with HKDF-SHA256.
//!
//! See `docs/security.md` for the threat model.

pub mod admission;
mod ca;
mod cluster_key;
mod listener;
mod node_cert;
mod pinned;
mod token;

use std::io::Write;
use std::path::{Path, PathBuf};

pub use ca::{CA_VALIDITY, MAX_CSR_BYTES, MAX_NODE_SANS};
pub use ca::{CaDigest, ClusterCa};
pub use cluster_key::{CLUSTER_KEY_LEN, ClusterKey};
pub use listener::{HANDSHAKE_TIMEOUT, MAX_PENDING_HANDSHAKES};
pub use listener::{PeerInfo, TlsListener};
pub use node_cert::{
    CertSlot, MIN_ROTATION_PERIOD, NodeCert, NodeTls, RotationPeriod, signing_request,
};
pub use pinned::PinnedCaVerifier;
pub use token::{JoinToken, Role, TokenRegistry};

use crate::error::{Error, Result};

/// A node's mutual-TLS setup for its Raft port and its requests ([`crate::raft::RaftConfig::tls`]).
#[derive(Debug, Clone)]
pub struct RaftTls {
    /// Its certificate and the CA it trusts.
    pub node: NodeTls,
    /// Set on nodes holding the CA key: they admit joining nodes and renew certificates.
    pub admission: Option<std::sync::Arc<admission::Admission>>,
}

/// The directory under a node's data dir that holds its keys and certificates.
pub fn keys_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("keys")
}

/// The rustls crypto provider Orion uses everywhere (aws-lc-rs, as reqwest's).
pub fn provider() -> std::sync::Arc<rustls::crypto::CryptoProvider> {
    std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// Writes `bytes` to `path` atomically (a temp file, synced, renamed into place) with mode
/// `mode`, creating the parent directory (mode 0700) if needed. For key files, and any other
/// file only the node's user may read (the CLI's credentials).
pub fn write_private(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(io)?;
    }
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)
        .map_err(io)?;
    file.write_all(bytes).map_err(io)?;
    file.sync_all().map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

/// Reads `path`, or `None` when it does not exist.
pub(crate) fn read_if_exists(path: &Path) -> Result<Option<Vec<u8>>> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(Error::Io {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Lower-case hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
