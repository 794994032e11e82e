//! What a data dir records about its owner (`identity.json`): the cluster's name, the node's
//! Raft id, the storage format, and the [cluster id](crate::cluster_id) once it is minted or
//! learned. A data dir of another name, node id or format is refused at start.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use serde::{Deserialize, Serialize};

use super::NodeId;
use crate::cluster_id::{ClusterIdCell, validate_cluster_id};
use crate::error::{Error as ConsensusError, Result};

/// The content of `identity.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Identity {
    /// The cluster's configured name.
    cluster_id: String,
    node_id: NodeId,
    /// The [`crate::codec::STORAGE_FORMAT`] of the log and snapshots (absent, 0, before the
    /// codec).
    #[serde(default)]
    storage_format: u32,
    /// The random cluster id minted by the bootstrap node and learned by every node that joins;
    /// absent until then (and in data dirs from before cluster ids).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cluster_uuid: Option<String>,
}

impl std::fmt::Display for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cluster {:?} node {}", self.cluster_id, self.node_id)
    }
}

/// A claimed data dir's identity, and the cluster id cell that the node's Raft client and
/// server stamp and check frames with. Shared by the node and its Raft port.
#[derive(Debug)]
pub(crate) struct DataDirIdentity {
    dir: PathBuf,
    identity: Mutex<Identity>,
    cell: ClusterIdCell,
}

impl DataDirIdentity {
    /// Checks (or, on first start, records) that `dir` belongs to this cluster name, node id
    /// and storage format, and reads the cluster id recorded there, if any.
    pub(crate) fn claim(
        dir: &Path,
        cluster_name: &str,
        node_id: NodeId,
        storage_format: u32,
    ) -> Result<Self> {
        let expected = Identity {
            cluster_id: cluster_name.to_owned(),
            node_id,
            storage_format,
            cluster_uuid: None,
        };
        let identity = claim_data_dir(dir, &expected)?;
        Ok(DataDirIdentity {
            dir: dir.to_owned(),
            cell: ClusterIdCell::new(identity.cluster_uuid.clone()),
            identity: Mutex::new(identity),
        })
    }

    /// The cluster id, if minted or learned.
    pub(crate) fn cluster_id(&self) -> Option<String> {
        self.cell.get()
    }

    /// The cell frames are stamped and checked with.
    pub(crate) fn cell(&self) -> ClusterIdCell {
        self.cell.clone()
    }

    /// Records `id` as this node's cluster id: in the data dir first (durably), then in the
    /// cell. A no-op when it already is; [`ConsensusError::ClusterMismatch`] naming `peer` when
    /// the node already belongs to another cluster.
    pub(crate) fn adopt(&self, id: &str, peer: &str) -> Result<()> {
        validate_cluster_id(id)?;
        let mut identity = self.identity.lock().unwrap_or_else(PoisonError::into_inner);
        match &identity.cluster_uuid {
            Some(ours) if ours == id => return Ok(()),
            Some(ours) => {
                return Err(ConsensusError::ClusterMismatch {
                    ours: ours.clone(),
                    theirs: id.to_owned(),
                    peer: peer.to_owned(),
                });
            }
            None => {}
        }
        let mut next = identity.clone();
        next.cluster_uuid = Some(id.to_owned());
        write_identity(&self.dir, &next)?;
        *identity = next;
        self.cell.set(id.to_owned());
        tracing::info!(cluster_id = id, "recorded the cluster id");
        Ok(())
    }
}

/// Checks (or, on first start, records) that `dir` belongs to `expected` (its name, node id and
/// format); returns what is recorded there.
fn claim_data_dir(dir: &Path, expected: &Identity) -> Result<Identity> {
    let io = |path: &Path, source| ConsensusError::Io {
        path: path.to_owned(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    let path = dir.join("identity.json");
    match std::fs::read(&path) {
        Ok(bytes) => {
            let found: Identity = serde_json::from_slice(&bytes)
                .map_err(|e| ConsensusError::codec(path.display().to_string(), e))?;
            if found.storage_format != expected.storage_format {
                return Err(ConsensusError::StorageFormat {
                    dir: dir.to_owned(),
                    found: found.storage_format,
                    expected: expected.storage_format,
                });
            }
            if (&found.cluster_id, found.node_id) != (&expected.cluster_id, expected.node_id) {
                return Err(ConsensusError::IdentityMismatch {
                    dir: dir.to_owned(),
                    found: found.to_string(),
                    expected: expected.to_string(),
                });
            }
            if let Some(uuid) = &found.cluster_uuid {
                validate_cluster_id(uuid)?;
            }
            Ok(found)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            write_identity(dir, expected)?;
            Ok(expected.clone())
        }
        Err(e) => Err(io(&path, e)),
    }
}

/// Writes `dir/identity.json` atomically and durably (temp file, fsync, rename, fsync of the
/// dir): the cluster id in it must survive a power loss once a node has acted on it.
fn write_identity(dir: &Path, identity: &Identity) -> Result<()> {
    use std::io::Write;
    let io = |path: &Path, source| ConsensusError::Io {
        path: path.to_owned(),
        source,
    };
    let bytes =
        serde_json::to_vec_pretty(identity).map_err(|e| ConsensusError::codec("identity", e))?;
    let tmp = dir.join("identity.json.tmp");
    let path = dir.join("identity.json");
    let mut file = std::fs::File::create(&tmp).map_err(|e| io(&tmp, e))?;
    file.write_all(&bytes).map_err(|e| io(&tmp, e))?;
    file.sync_all().map_err(|e| io(&tmp, e))?;
    std::fs::rename(&tmp, &path).map_err(|e| io(&path, e))?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io(dir, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_id_is_recorded_once_and_another_is_refused_naming_both() {
        let dir = tempfile::tempdir().expect("temp dir");
        let claimed = DataDirIdentity::claim(dir.path(), "orion", 7, 1).expect("claim");
        assert_eq!(claimed.cluster_id(), None);
        claimed.adopt("id-one", "a test").expect("adopt");
        claimed
            .adopt("id-one", "a test")
            .expect("the same id again is a no-op");
        let err = claimed
            .adopt("id-two", "a test")
            .expect_err("another id")
            .to_string();
        assert!(err.contains("id-one") && err.contains("id-two"), "{err}");
        let reopened = DataDirIdentity::claim(dir.path(), "orion", 7, 1).expect("reopen");
        assert_eq!(reopened.cluster_id().as_deref(), Some("id-one"));
        let err = DataDirIdentity::claim(dir.path(), "orion", 8, 1).expect_err("other node id");
        assert!(err.to_string().contains("node 7"), "{err}");
    }
}
