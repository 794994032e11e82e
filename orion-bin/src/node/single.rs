//! A single-node cluster: state on sled in the data dir, this node as the only member, and
//! always the leader.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};
use orion_core::membership::StaticMembership;
use orion_core::node::Leadership;
use orion_core::store::SledStore;
use tokio::sync::watch;

use super::{Parts, Settings};
use crate::api::ClusterInfo;
use crate::api::types::ClusterStatus;

struct SingleInfo {
    cluster_id: String,
    cluster_uuid: String,
    node_id: String,
    membership: Arc<StaticMembership>,
    store: Arc<SledStore>,
    /// Never changes: a single node is always its own leader. Kept so receivers stay open.
    _leader: watch::Sender<Leadership>,
}

#[async_trait::async_trait]
impl ClusterInfo for SingleInfo {
    async fn status(&self) -> ClusterStatus {
        use orion_core::membership::Membership;
        use orion_core::store::Store;
        let revision = self.store.revision().await.unwrap_or(0);
        ClusterStatus {
            cluster_id: self.cluster_id.clone(),
            cluster_uuid: Some(self.cluster_uuid.clone()),
            node_id: self.node_id.clone(),
            leader: Some(self.node_id.clone()),
            term: 1,
            voters: vec![self.node_id.clone()],
            learners: Vec::new(),
            commit_index: revision,
            applied_index: revision,
            members: self.membership.members().await.unwrap_or_default(),
        }
    }
}

/// The cluster id of a single-node data dir: minted on first start and kept in
/// `<data dir>/identity.json` (`{"cluster_uuid": ...}`), so `GET /v1/cluster` shows the same id
/// across restarts, as in cluster mode.
fn single_cluster_id(data_dir: &Path) -> Result<String> {
    let path = data_dir.join("identity.json");
    match std::fs::read(&path) {
        Ok(bytes) => {
            let json: serde_json::Value = serde_json::from_slice(&bytes)
                .with_context(|| format!("{} is not JSON", path.display()))?;
            let id = json["cluster_uuid"]
                .as_str()
                .with_context(|| format!("{} has no \"cluster_uuid\" string", path.display()))?;
            orion_consensus::cluster_id::validate_cluster_id(id)
                .with_context(|| format!("in {}", path.display()))?;
            Ok(id.to_owned())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let id = orion_consensus::cluster_id::new_cluster_id();
            let tmp = data_dir.join("identity.json.tmp");
            std::fs::write(&tmp, serde_json::json!({ "cluster_uuid": id }).to_string())
                .and_then(|()| std::fs::rename(&tmp, &path))
                .with_context(|| format!("cannot write {}", path.display()))?;
            Ok(id)
        }
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

pub async fn start(settings: &Settings) -> Result<Parts> {
    let cluster_uuid = single_cluster_id(&settings.data_dir)?;
    // A CA and a node certificate for the API's TLS (and the cluster key for secrets).
    let keys = super::security::prepare(settings, None).await?;
    let tls = orion_consensus::security::NodeTls::new(&keys.ca, &keys.cert)
        .context("this node's TLS setup")?;
    tokio::spawn(super::security::renewal(
        tls.clone(),
        &keys,
        settings,
        settings.config.security.rotation()?,
        None,
    ));
    let path = settings.data_dir.join("state");
    let store = Arc::new(
        SledStore::open_with_history_limit(&path, super::WATCH_HISTORY)
            .with_context(|| format!("cannot open state in {}", path.display()))?,
    );
    let membership = Arc::new(StaticMembership::new(settings.local_member(), Vec::new())?);
    let (leader_tx, leader) = watch::channel(Leadership::Leader { term: 1 });
    Ok(Parts {
        store: store.clone(),
        local_store: store.clone(),
        membership: membership.clone(),
        leader,
        raft_leader: None,
        ca_digest: None,
        tls,
        cluster: Arc::new(SingleInfo {
            cluster_id: settings.cluster_id.clone(),
            cluster_uuid,
            node_id: settings.node_id.clone(),
            membership,
            store,
            _leader: leader_tx,
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_single_node_cluster_id_is_minted_once() {
        let dir = tempfile::tempdir().expect("temp dir");
        let first = single_cluster_id(dir.path()).expect("minted");
        assert_eq!(single_cluster_id(dir.path()).expect("read back"), first);
        std::fs::write(dir.path().join("identity.json"), "{}").expect("write");
        let err = single_cluster_id(dir.path())
            .expect_err("no id")
            .to_string();
        assert!(err.contains("cluster_uuid"), "{err}");
    }
}
