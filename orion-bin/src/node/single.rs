//! A single-node cluster: state on sled in the data dir, this node as the only member, and
//! always the leader.

use std::sync::Arc;

use anyhow::{Context, Result};
use orion_core::membership::StaticMembership;
use orion_core::store::SledStore;
use tokio::sync::watch;

use super::{Parts, Settings};
use crate::api::ClusterInfo;
use crate::api::types::ClusterStatus;

struct SingleInfo {
    cluster_id: String,
    node_id: String,
    membership: Arc<StaticMembership>,
    store: Arc<SledStore>,
    /// Never changes: a single node is always its own leader. Kept so receivers stay open.
    _leader: watch::Sender<bool>,
}

#[async_trait::async_trait]
impl ClusterInfo for SingleInfo {
    async fn status(&self) -> ClusterStatus {
        use orion_core::membership::Membership;
        use orion_core::store::Store;
        let revision = self.store.revision().await.unwrap_or(0);
        ClusterStatus {
            cluster_id: self.cluster_id.clone(),
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

pub async fn start(settings: &Settings) -> Result<Parts> {
    let path = settings.data_dir.join("state");
    let store = Arc::new(
        SledStore::open_with_history_limit(&path, super::WATCH_HISTORY)
            .with_context(|| format!("cannot open state in {}", path.display()))?,
    );
    let membership = Arc::new(StaticMembership::new(settings.local_member(), Vec::new())?);
    let (leader_tx, leader) = watch::channel(true);
    Ok(Parts {
        store: store.clone(),
        membership: membership.clone(),
        leader,
        cluster: Arc::new(SingleInfo {
            cluster_id: settings.cluster_id.clone(),
            node_id: settings.node_id.clone(),
            membership,
            store,
            _leader: leader_tx,
        }),
    })
}
