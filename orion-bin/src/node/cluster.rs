//! A node of a multi-node cluster: state replicated by Raft (openraft on sled) into an in-memory
//! store, liveness by gossip (SWIM), controllers on whichever node is the Raft leader.
//!
//! The Raft log and snapshots are the durable record, and a node rebuilds its state from them at
//! start (`orion_consensus::raft::StateMachine`), so the applied state lives in a `MemoryStore`
//! (as Nomad keeps its state in memory over its Raft log). A durable inner store would flush
//! every applied write on every node for nothing: with `SledStore` there, 64 writers got 1,869
//! writes/s instead of about 22,000 (docs/benchmarks.md).
//!
//! Security (see `super::security` and docs/security.md): Raft is mutual TLS with certificates of
//! the cluster CA, gossip datagrams are sealed with the cluster key (`SealedTransport`).
//!
//! Joining: `--join` names any member's Raft address. The first time, the node is admitted there
//! with its join token (`--join-token`) and receives its certificate and the cluster key; then
//! it asks that member over mutual TLS for its gossip address, joins the gossip cluster, learns
//! the members' Raft addresses from their gossip metadata, and asks the cluster to add it to
//! Raft: as a learner first, promoted to voter once caught up while voters stay an odd number, at
//! most five (the rest remain learners). A node admitted with a worker token stays a learner.
//!
//! Identity: `--bootstrap` is a one-time init that mints the cluster id (a random UUID kept in
//! the data dir) and is a no-op on later starts; a joining node learns the id from its seed and
//! records it. Raft frames and gossip datagrams carry it, so a node whose data dir was lost and
//! that bootstraps again (a new id) is refused by its old cluster rather than followed. A second
//! process started with a live member's node id is refused by the seeds and exits with an
//! error naming that member.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use orion_consensus::cluster::{JoinOptions, join_any, leadership, member_raft_addrs};
use orion_consensus::gossip::{
    GossipConfig, GossipMembership, LinkFaults, SealedTransport, UdpTransport,
};
use orion_consensus::raft::{RaftConfig, RaftNode, RaftStatus, ReadMode};
use orion_consensus::security::admission::{Admission, TokenSource};
use orion_consensus::security::{NodeTls, RaftTls, RotationPeriod, TokenRegistry};
use orion_consensus::transport::FaultInjector;
use orion_consensus::transport::join::gossip_addr_of;
use orion_core::membership::{Member, Membership};
use orion_core::store::{DEFAULT_HISTORY_EVENTS, MemoryStore};
use tokio::net::lookup_host;
use tokio::sync::watch;
use tracing::{error, info};

use super::{Parts, Settings, SharedStore};
use crate::api::ClusterInfo;
use crate::api::types::ClusterStatus;

pub use orion_consensus::cluster::raft_id;

struct ClusterNodeInfo {
    cluster_id: String,
    node_id: String,
    raft: Arc<RaftNode<MemoryStore>>,
    membership: Arc<GossipMembership>,
    /// The network prober's loop, which stops when this is dropped (`None`: monitoring is off).
    _prober: Option<orion_netscore::probe::ProberHandle>,
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
            cluster_uuid: self
                .raft
                .cluster_id()
                .or_else(|| self.membership.cluster_id()),
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

    async fn remove_member(&self, node: &str) -> orion_core::Result<()> {
        // `raft-<id>` names a Raft member that gossip does not know (see `name_of`).
        let id = match node.strip_prefix("raft-").map(str::parse::<u64>) {
            Some(Ok(id)) => id,
            _ => raft_id(node),
        };
        let s = self.raft.status();
        if !s.voters.contains(&id) && !s.learners.contains(&id) {
            return Err(orion_core::Error::NotFound {
                kind: "member",
                name: format!("{node} (not a Raft voter or learner; `orion cluster` lists them)"),
            });
        }
        info!(node, raft_id = id, "removing a member from Raft by request");
        self.raft.remove(id).await.map_err(Into::into)
    }
}

async fn resolve(addr: &str) -> Result<SocketAddr> {
    lookup_host(addr)
        .await
        .with_context(|| format!("gossip seed {addr:?}: expected HOST:PORT"))?
        .next()
        .with_context(|| format!("gossip seed {addr:?}: the name resolves to no address"))
}

/// How long a joining node keeps asking its `--join` member for a gossip seed.
const SEED_WAIT: Duration = Duration::from_secs(15);

/// The gossip address of the member at Raft address `join`, asked over mutual TLS; retried for
/// [`SEED_WAIT`] (the member may be restarting too). `None` when it never answered.
async fn gossip_seed(raft: &RaftNode<MemoryStore>, join: &str) -> Option<SocketAddr> {
    let deadline = tokio::time::Instant::now() + SEED_WAIT;
    loop {
        let answer = gossip_addr_of(raft.transport(), join, Duration::from_secs(2)).await;
        match answer {
            Ok(addr) => match resolve(&addr).await {
                Ok(a) => return Some(a),
                Err(e) => tracing::warn!(error = %e, "the --join member's gossip address"),
            },
            Err(e) if tokio::time::Instant::now() >= deadline => {
                tracing::warn!(
                    via = %join,
                    error = %e,
                    "no gossip seed: the --join member does not answer; this node runs alone \
                     until restarted with a live member's Raft address"
                );
                return None;
            }
            Err(e) => {
                tracing::debug!(error = %e, "asking the --join member for its gossip address")
            }
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// Admission for a node holding the CA key: tokens read from the replicated store (through
/// `store`, set once Raft runs) before every request.
fn admission(
    keys: &super::security::NodeKeys,
    period: RotationPeriod,
    store: Arc<std::sync::OnceLock<SharedStore>>,
) -> Result<Option<Arc<Admission>>> {
    if !keys.ca.can_sign() {
        return Ok(None);
    }
    let source: TokenSource = Arc::new(move || {
        let store = store.get().cloned();
        Box::pin(async move {
            let Some(store) = store else {
                return Err(orion_consensus::Error::Unavailable(
                    "this node is still starting".into(),
                ));
            };
            crate::api::join_tokens::current(store.as_ref())
                .await
                .map_err(|e| orion_consensus::Error::Unavailable(e.to_string()))
        })
    });
    let admission = Admission::new(
        keys.ca.clone(),
        Arc::new(TokenRegistry::new()),
        keys.cluster_key.clone(),
        period,
    )?
    .with_token_source(source);
    Ok(Some(Arc::new(admission)))
}

/// Starts Raft and gossip for this node, and joins or bootstraps the cluster.
pub async fn start(settings: &Settings) -> Result<Parts> {
    if !settings.bootstrap && settings.join.is_none() {
        bail!(
            "a cluster node needs --bootstrap (the first node) or --join ADDR (any member's Raft \
             address, with --join-token the first time)"
        );
    }
    let keys = super::security::prepare(settings, settings.join_token.as_deref()).await?;
    let period = settings.config.security.rotation()?;
    let node_tls = NodeTls::new(&keys.ca, &keys.cert).context("this node's TLS setup")?;
    let store_cell = Arc::new(std::sync::OnceLock::new());
    let admission = admission(&keys, period, store_cell.clone())?;
    let inner = MemoryStore::with_history_bounds(super::WATCH_HISTORY, DEFAULT_HISTORY_EVENTS);
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
    // The fault layers `orion chaos` drives (crate::chaos::applier): Raft and gossip.
    let faults = FaultInjector::new();
    let gossip_faults = LinkFaults::new();
    raft_config.faults = faults.clone();
    raft_config.tls = Some(RaftTls {
        node: node_tls.clone(),
        admission,
    });
    raft_config.gossip_addr = Some(settings.gossip_addr.to_string());
    let raft = Arc::new(
        RaftNode::start(raft_config, inner)
            .await
            .context("cannot start Raft")?,
    );
    let _ = store_cell.set(Arc::new(raft.store()) as SharedStore);
    if settings.bootstrap {
        // A one-time init: mints the cluster id on an empty data dir, a no-op afterwards.
        raft.bootstrap().await.context("cannot bootstrap Raft")?;
    }
    tokio::spawn(super::security::renewal(
        node_tls.clone(),
        &keys,
        settings,
        period,
        Some(raft.transport().clone()),
    ));

    let mut gossip = GossipConfig::new(settings.node_id.clone(), settings.gossip_addr)
        .with_capacity(settings.capacity)
        .with_addresses(settings.local_member().addresses);
    if let Some(cluster_id) = raft.cluster_id() {
        gossip = gossip.with_cluster_id(cluster_id);
    }
    for (k, v) in &settings.labels {
        gossip = gossip.with_label(k.clone(), v.clone());
    }
    if let Some(join) = &settings.join
        && let Some(seed) = gossip_seed(&raft, join).await
    {
        gossip = gossip.with_seed(seed);
    }
    let udp = UdpTransport::bind_with_faults(settings.gossip_addr, gossip_faults.clone())
        .await
        .with_context(|| format!("cannot bind gossip on {}", settings.gossip_addr))?;
    let gossip_addr = orion_consensus::gossip::Transport::local_addr(&udp);
    // Every datagram sealed under the cluster key: others' are dropped unopened.
    let sealed = SealedTransport::new(Arc::new(udp), &keys.cluster_key);
    let membership = Arc::new(
        GossipMembership::start_with_transport(gossip, Arc::new(sealed))
            .await
            .context("cannot start gossip")?,
    );

    tokio::spawn(exit_on_duplicate_node_id(membership.clone()));
    if raft.cluster_id().is_none() {
        tokio::spawn(record_learned_cluster_id(raft.clone(), membership.clone()));
    }
    if !settings.bootstrap {
        // On every start: a voter is answered at once; a node removed while away, or whose
        // data dir was wiped, comes back as a new learner.
        tokio::spawn(join_raft(
            raft.clone(),
            membership.clone(),
            settings.node_id.clone(),
        ));
    }

    let monitoring = &settings.config.network.monitoring;
    let prober = if monitoring.enabled {
        Some(super::network_probe::start(
            &settings.node_id,
            monitoring,
            &raft,
        )?)
    } else {
        None
    };
    let leader = leadership(&raft);
    tokio::spawn(
        crate::chaos::applier::Applier {
            node_id: settings.node_id.clone(),
            local: Arc::new(raft.store().with_read_mode(ReadMode::Stale)),
            store: Arc::new(raft.store()),
            faults,
            gossip: gossip_faults,
            gossip_addr,
            membership: membership.clone(),
            leader: leader.clone(),
        }
        .run(),
    );
    Ok(Parts {
        store: Arc::new(raft.store()),
        local_store: Arc::new(raft.store().with_read_mode(ReadMode::Stale)),
        membership: membership.clone(),
        leader,
        raft_leader: Some(leader_ids(&raft)),
        ca_digest: Some(keys.ca.digest()),
        tls: node_tls,
        cluster: Arc::new(ClusterNodeInfo {
            cluster_id: settings.cluster_id.clone(),
            node_id: settings.node_id.clone(),
            raft,
            membership,
            _prober: prober,
        }),
    })
}

/// The Raft leader's id as this node sees it (`None` while there is none), for
/// `orion_raft_leader_changes_total`.
fn leader_ids(raft: &RaftNode<MemoryStore>) -> watch::Receiver<Option<u64>> {
    let mut metrics = raft.raft().metrics();
    let (tx, rx) = watch::channel(metrics.borrow().current_leader);
    tokio::spawn(async move {
        while metrics.changed().await.is_ok() {
            let leader = metrics.borrow().current_leader;
            tx.send_if_modified(|v| std::mem::replace(v, leader) != leader);
            if tx.is_closed() {
                return;
            }
        }
    });
    rx
}

/// Exit code of a node refused because another live member uses its node id (as for any
/// failure to start).
const EXIT_DUPLICATE_NODE_ID: i32 = 1;

/// Ends the process if the seeds refuse this node because a live member already uses its node
/// id: it never joined, so nothing is left behind; the error names the live holder.
async fn exit_on_duplicate_node_id(membership: Arc<GossipMembership>) {
    let err = membership.duplicate_node_id().await;
    tracing::error!(error = %err, "refusing to start");
    eprintln!("error: {err}");
    std::process::exit(EXIT_DUPLICATE_NODE_ID);
}

/// Records in the data dir the cluster id gossip learned from a seed, so Raft frames carry it
/// (a wiped member that rejoins must answer its peers before it asks to join). Ends once
/// recorded, or when gossip stops.
async fn record_learned_cluster_id(
    raft: Arc<RaftNode<MemoryStore>>,
    membership: Arc<GossipMembership>,
) {
    let mut learned = membership.watch_cluster_id();
    let Ok(id) = learned.wait_for(Option::is_some).await.map(|id| id.clone()) else {
        return;
    };
    if let Some(id) = id
        && let Err(e) = raft.adopt_cluster_id(&id)
    {
        tracing::error!(error = %e, "cannot record the cluster id learned from the seed");
    }
}

/// Joins Raft through any live gossip member (see `orion_consensus::cluster::join_any`).
async fn join_raft(
    raft: Arc<RaftNode<MemoryStore>>,
    membership: Arc<GossipMembership>,
    node_id: String,
) {
    let peers = || member_raft_addrs(&*membership, &node_id);
    if let Err(e) = join_any(&raft, peers, &JoinOptions::default()).await {
        error!(error = %e, "this node is not in the Raft cluster; restart it to try again");
    }
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
