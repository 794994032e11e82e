//! A node of a multi-node cluster: state replicated by Raft (openraft on sled) into an in-memory
//! store, liveness by gossip (SWIM), controllers on whichever node is the Raft leader.
//!
//! The Raft log and snapshots are the durable record, and a node rebuilds its state from them at
//! start (`orion_consensus::raft::StateMachine`), so the applied state lives in a `MemoryStore`
//! (as Nomad keeps its state in memory over its Raft log). A durable inner store would flush
//! every applied write on every node for nothing: with `SledStore` there, 64 writers got 1,869
//! writes/s instead of about 22,000 (docs/benchmarks.md).
//!
//! Joining takes one flag: `--join` names any member's gossip address. The node joins the gossip
//! cluster, learns the members' Raft addresses from their gossip metadata, and asks the cluster to
//! add it to Raft: as a learner first, promoted to voter once caught up while voters stay an odd
//! number, at most five (the rest remain learners).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use orion_consensus::gossip::{GossipConfig, GossipMembership};
use orion_consensus::raft::{RaftConfig, RaftNode, RaftStatus};
use orion_core::membership::{Member, MemberState, Membership};
use orion_core::store::MemoryStore;
use tokio::net::lookup_host;
use tokio::sync::watch;
use tracing::{info, warn};

use super::{Parts, Settings};
use crate::api::ClusterInfo;
use crate::api::types::ClusterStatus;

/// The Raft id of a node: a stable hash of its name, so every node derives the same number.
pub fn raft_id(node_id: &str) -> u64 {
    // FNV-1a: stable across Rust versions and processes (DefaultHasher is not guaranteed to be).
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in node_id.as_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h.max(1)
}

struct ClusterNodeInfo {
    cluster_id: String,
    node_id: String,
    raft: Arc<RaftNode<MemoryStore>>,
    membership: Arc<GossipMembership>,
}

impl ClusterNodeInfo {
    async fn name_of(&self, members: &[Member], id: u64) -> String {
        members
            .iter()
            .find(|m| raft_id(&m.id) == id)
            .map_or_else(|| format!("raft-{id}"), |m| m.id.clone())
    }
}

#[async_trait::async_trait]
impl ClusterInfo for ClusterNodeInfo {
    async fn status(&self) -> ClusterStatus {
        let members = self.membership.members().await.unwrap_or_default();
        let s: RaftStatus = self.raft.status();
        let mut voters = Vec::new();
        for v in &s.voters {
            voters.push(self.name_of(&members, *v).await);
        }
        let mut learners = Vec::new();
        for l in &s.learners {
            learners.push(self.name_of(&members, *l).await);
        }
        let leader = match s.leader {
            Some(l) => Some(self.name_of(&members, l).await),
            None => None,
        };
        ClusterStatus {
            cluster_id: self.cluster_id.clone(),
            node_id: self.node_id.clone(),
            leader,
            term: s.term,
            voters,
            learners,
            commit_index: s.commit_index,
            applied_index: s.applied_index,
            members,
        }
    }
}

async fn resolve(addr: &str) -> Result<SocketAddr> {
    lookup_host(addr)
        .await
        .with_context(|| {
            format!("--join {addr:?}: expected HOST:PORT of a member's gossip address")
        })?
        .next()
        .with_context(|| format!("--join {addr:?}: the name resolves to no address"))
}

/// Starts Raft and gossip for this node, and joins or bootstraps the cluster.
pub async fn start(settings: &Settings) -> Result<Parts> {
    if !settings.bootstrap && settings.join.is_none() {
        bail!(
            "a cluster node needs --bootstrap (the first node) or --join ADDR (any member's gossip address)"
        );
    }
    let inner = MemoryStore::with_history_limit(super::WATCH_HISTORY);
    let consensus = &settings.config.cluster.consensus;
    let mut raft_config = RaftConfig::new(
        raft_id(&settings.node_id),
        settings.cluster_id.clone(),
        settings.data_dir.join("raft"),
        settings.raft_addr,
    );
    raft_config.heartbeat_interval = consensus.heartbeat_interval;
    raft_config.election_timeout_min = consensus.election_timeout / 2;
    raft_config.election_timeout_max = consensus.election_timeout;
    raft_config.snapshot_interval = Some(consensus.snapshot_interval);
    let raft = Arc::new(
        RaftNode::start(raft_config, inner)
            .await
            .context("cannot start Raft")?,
    );

    let mut gossip = GossipConfig::new(settings.node_id.clone(), settings.gossip_addr)
        .with_capacity(settings.capacity)
        .with_addresses(settings.local_member().addresses);
    for (k, v) in &settings.labels {
        gossip = gossip.with_label(k.clone(), v.clone());
    }
    if let Some(join) = &settings.join {
        gossip = gossip.with_seed(resolve(join).await?);
    }
    let membership = Arc::new(
        GossipMembership::start(gossip)
            .await
            .context("cannot start gossip")?,
    );

    if settings.bootstrap {
        raft.bootstrap().await.context("cannot bootstrap Raft")?;
    } else if !in_raft(&raft) {
        tokio::spawn(join_raft(
            raft.clone(),
            membership.clone(),
            settings.node_id.clone(),
        ));
    }

    let leader = leadership(&raft, raft_id(&settings.node_id));
    Ok(Parts {
        store: Arc::new(raft.store()),
        membership: membership.clone(),
        leader,
        cluster: Arc::new(ClusterNodeInfo {
            cluster_id: settings.cluster_id.clone(),
            node_id: settings.node_id.clone(),
            raft,
            membership,
        }),
    })
}

/// How long one join request through one member may take (catching up included).
const JOIN_ATTEMPT: Duration = Duration::from_secs(20);

/// True once this node is in the Raft configuration (as voter or learner).
fn in_raft(raft: &RaftNode<MemoryStore>) -> bool {
    let s = raft.status();
    s.voters.contains(&s.node_id) || s.learners.contains(&s.node_id)
}

/// Asks any live member to add this node to Raft, retrying with backoff until it is in.
async fn join_raft(
    raft: Arc<RaftNode<MemoryStore>>,
    membership: Arc<GossipMembership>,
    node_id: String,
) {
    let mut delay = Duration::from_millis(200);
    loop {
        let members = membership.members().await.unwrap_or_default();
        let peers: Vec<String> = members
            .iter()
            .filter(|m| m.id != node_id && m.state == MemberState::Alive)
            .map(|m| m.addresses.raft.clone())
            .filter(|a| !a.is_empty())
            .collect();
        for addr in &peers {
            if in_raft(&raft) {
                return;
            }
            // Bounded per member, so a member that died mid-join does not hold us up.
            match tokio::time::timeout(JOIN_ATTEMPT, raft.join(addr)).await {
                Ok(Ok(())) => {
                    info!(via = %addr, "joined Raft");
                    return;
                }
                Ok(Err(e)) => {
                    warn!(via = %addr, error = %e, "Raft join failed; trying another member")
                }
                Err(_) => warn!(via = %addr, "Raft join timed out; trying another member"),
            }
        }
        if in_raft(&raft) {
            return;
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(5));
    }
}

/// True while this node is the Raft leader.
fn leadership(raft: &RaftNode<MemoryStore>, me: u64) -> watch::Receiver<bool> {
    let mut metrics = raft.raft().metrics();
    let (tx, rx) = watch::channel(metrics.borrow().current_leader == Some(me));
    tokio::spawn(async move {
        while metrics.changed().await.is_ok() {
            let is_leader = metrics.borrow().current_leader == Some(me);
            tx.send_if_modified(|v| {
                let changed = *v != is_leader;
                *v = is_leader;
                changed
            });
        }
    });
    rx
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raft_ids_are_stable_and_distinct() {
        assert_eq!(raft_id("node1"), raft_id("node1"));
        assert_ne!(raft_id("node1"), raft_id("node2"));
    }
}
