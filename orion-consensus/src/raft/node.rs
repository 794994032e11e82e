//! [`RaftNode`]: one member of an Orion Raft cluster, and its configuration.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use openraft::storage::RaftLogStorage;
use openraft::{BasicNode, SnapshotPolicy};
use orion_core::store::Store;
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::autopilot::{self, AutopilotConfig};
use super::election::{self, Elections, LeaderContact};
use super::identity::DataDirIdentity;
use super::leader::{JoinRequest, LeaderOps, LeaderRequest, LeaderResponse, Router};
use super::log_store::FileLogStore;
use super::network::NetworkFactory;
use super::state_machine::StateMachine;
use super::store::RaftStore;
use super::{NodeId, OrionRaft, server};
use crate::codec;
use crate::error::{Error as ConsensusError, Result};
use crate::security::RaftTls;
use crate::transport::{FaultInjector, Transport};

/// How [`RaftStore`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum ReadMode {
    /// Every read first confirms leadership with a quorum (read index) and waits until this node
    /// has applied up to it: a read sees every write acknowledged before it started.
    #[default]
    Linearizable,
    /// Reads the local state as applied so far: fast, available without quorum, possibly stale.
    Stale,
}

/// Configuration of one Raft node. Build it with [`RaftConfig::new`], then adjust fields.
#[derive(Debug, Clone)]
pub struct RaftConfig {
    /// This node's id; unique in the cluster, recorded in the data dir.
    pub node_id: NodeId,
    /// The cluster's name; recorded in the data dir, which then refuses any other cluster.
    pub cluster_id: String,
    /// Where the log, vote, snapshot and identity live.
    pub data_dir: PathBuf,
    /// The address the Raft port listens on (port 0 picks a free port).
    pub listen_addr: SocketAddr,
    /// The address peers use to reach this node; defaults to the bound listen address.
    pub advertise_addr: Option<String>,
    /// A follower starts an election after a random silence in this range (plus the leader
    /// lease, `election_timeout_max`, when it had a leader).
    pub election_timeout_min: Duration,
    pub election_timeout_max: Duration,
    /// How often the leader sends heartbeats.
    pub heartbeat_interval: Duration,
    /// A snapshot is built once this many entries were applied since the last one.
    pub snapshot_every: u64,
    /// Also build a snapshot this often when any entry was applied since the last one (`None`:
    /// by entry count only). Bounds how much log a restart replays on a slowly written cluster.
    pub snapshot_interval: Option<Duration>,
    /// Entries kept in the log behind a snapshot, so slightly late followers catch up from the
    /// log rather than by snapshot.
    pub logs_kept_after_snapshot: u64,
    /// How long a write or linearizable read waits for a leader and a quorum before failing
    /// with `Error::Unavailable`.
    pub request_timeout: Duration,
    /// How long `join` waits for this node to catch up and become a voter.
    pub join_timeout: Duration,
    /// How [`RaftStore`] reads.
    pub read_mode: ReadMode,
    /// The fault layer all of this node's outgoing traffic passes through.
    pub faults: FaultInjector,
    /// When the leader replaces dead voters and promotes learners.
    pub autopilot: AutopilotConfig,
    /// Mutual TLS on the Raft port and for every request this node sends (`None`: plain HTTP,
    /// for embedders on a trusted network and tests of the plaintext path).
    pub tls: Option<RaftTls>,
    /// This node's gossip address, told to nodes presenting a certificate of the cluster CA on
    /// `/raft/gossip` (with [`RaftConfig::tls`] only), so a node that joined through this one's
    /// Raft port finds a gossip seed. `None`: not served.
    pub gossip_addr: Option<String>,
}

/// Entries in one append request at most (see [`RaftConfig`]'s openraft configuration); with
/// entries of at most about 1 MiB (an API body, or a batched plan of 64 tasks) a request stays
/// well under the Raft port's 64 MiB body limit.
pub const MAX_ENTRIES_PER_APPEND: u64 = 32;

impl RaftConfig {
    /// A configuration with defaults that fit a LAN or loopback: heartbeat 50 ms, election
    /// timeout 150-300 ms, a snapshot every 10,000 entries, 5 s request timeout.
    ///
    /// openraft also keeps a leader lease of `election_timeout_max`: followers of a live leader
    /// wait `election_timeout_max + random(min..max)` before an election, so failover after a
    /// leader dies takes about that plus one vote and one commit round (about 0.5-0.7 s here).
    pub fn new(
        node_id: NodeId,
        cluster_id: impl Into<String>,
        data_dir: impl Into<PathBuf>,
        listen_addr: SocketAddr,
    ) -> Self {
        Self {
            node_id,
            cluster_id: cluster_id.into(),
            data_dir: data_dir.into(),
            listen_addr,
            advertise_addr: None,
            election_timeout_min: Duration::from_millis(150),
            election_timeout_max: Duration::from_millis(300),
            heartbeat_interval: Duration::from_millis(50),
            snapshot_every: 10_000,
            snapshot_interval: None,
            logs_kept_after_snapshot: 1_000,
            request_timeout: Duration::from_secs(5),
            join_timeout: Duration::from_secs(60),
            read_mode: ReadMode::Linearizable,
            faults: FaultInjector::new(),
            autopilot: AutopilotConfig::default(),
            tls: None,
            gossip_addr: None,
        }
    }

    fn openraft_config(&self) -> Result<openraft::Config> {
        let ms = |d: Duration| d.as_millis().min(u64::MAX as u128) as u64;
        let invalid = |field, value: String, expected: &str| ConsensusError::RaftConfig {
            field,
            value,
            expected: expected.to_owned(),
        };
        if self.cluster_id.trim().is_empty() {
            return Err(invalid(
                "cluster_id",
                format!("{:?}", self.cluster_id),
                "a non-empty name",
            ));
        }
        if ms(self.heartbeat_interval) == 0
            || ms(self.heartbeat_interval) >= ms(self.election_timeout_min)
        {
            return Err(invalid(
                "heartbeat_interval",
                format!("{:?}", self.heartbeat_interval),
                "at least 1 ms and below election_timeout_min",
            ));
        }
        if ms(self.election_timeout_min) >= ms(self.election_timeout_max) {
            return Err(invalid(
                "election_timeout_min",
                format!("{:?}", self.election_timeout_min),
                "below election_timeout_max",
            ));
        }
        self.autopilot.validate()?;
        if self.snapshot_every == 0 {
            return Err(invalid("snapshot_every", "0".into(), "at least 1"));
        }
        if self
            .snapshot_interval
            .is_some_and(|d| d < Duration::from_secs(1))
        {
            return Err(invalid(
                "snapshot_interval",
                format!("{:?}", self.snapshot_interval),
                "at least 1s, or none",
            ));
        }
        openraft::Config {
            cluster_name: self.cluster_id.clone(),
            election_timeout_min: ms(self.election_timeout_min),
            election_timeout_max: ms(self.election_timeout_max),
            heartbeat_interval: ms(self.heartbeat_interval),
            install_snapshot_timeout: 2_000,
            snapshot_policy: SnapshotPolicy::LogsSinceLast(self.snapshot_every),
            max_in_snapshot_log_to_keep: self.logs_kept_after_snapshot,
            snapshot_max_chunk_size: 1024 * 1024,
            // One append carries at most this many entries, so a follower or learner that lags
            // behind entries of batched transactions (up to about 1 MiB each) is sent requests
            // under the Raft port's body limit: openraft's default (300) built appends of
            // ~100 MB in the scale simulation, refused forever, and the learner never caught up.
            max_payload_entries: MAX_ENTRIES_PER_APPEND,
            // Elections are started by Orion's pre-vote driver (`election.rs`), not openraft's
            // timer: openraft 0.9 has no pre-vote.
            enable_elect: false,
            ..Default::default()
        }
        .validate()
        .map_err(|e| invalid("raft", e.to_string(), "a valid openraft configuration"))
    }
}

/// Every `every`, asks openraft for a snapshot if anything was applied since the last one. Ends
/// when the node stops (or its `RaftNode` is dropped).
async fn snapshot_timer(raft: OrionRaft, every: Duration, mut stop: watch::Receiver<bool>) {
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            changed = stop.changed() => {
                if changed.is_err() || *stop.borrow() {
                    return;
                }
                continue;
            }
        }
        let (applied, snapshot) = {
            let metrics = raft.metrics();
            let m = metrics.borrow();
            (m.last_applied.map(|l| l.index), m.snapshot.map(|l| l.index))
        };
        if applied > snapshot && raft.trigger().snapshot().await.is_err() {
            return; // Raft stopped.
        }
    }
}

/// True when the log store holds no vote, no log entry and nothing purged: the data dir is new
/// (or was wiped), so this node has never voted nor acknowledged anything.
async fn is_fresh(log_store: &mut FileLogStore) -> Result<bool> {
    let vote = log_store.read_vote().await.map_err(ConsensusError::raft)?;
    let state = log_store
        .get_log_state()
        .await
        .map_err(ConsensusError::raft)?;
    Ok(vote.is_none() && state.last_log_id.is_none() && state.last_purged_log_id.is_none())
}

/// A snapshot of a node's view of the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RaftStatus {
    pub node_id: NodeId,
    /// "Leader", "Follower", "Candidate", "Learner" or "Shutdown".
    pub state: String,
    pub leader: Option<NodeId>,
    pub term: u64,
    pub voters: Vec<NodeId>,
    pub learners: Vec<NodeId>,
    /// Highest log index known committed.
    pub commit_index: u64,
    /// Highest log index applied to the local store.
    pub applied_index: u64,
    /// Highest log index in the local log.
    pub last_log_index: u64,
}

/// The parts of a node shared by its server, its store handles and its operations.
pub(crate) struct Core<S: Store> {
    pub id: NodeId,
    pub addr: String,
    pub raft: OrionRaft,
    pub inner: Arc<S>,
    pub router: Router,
    pub read_mode: ReadMode,
    pub committed: Arc<AtomicU64>,
    /// False while this node's data dir held no vote, log or snapshot at start and it has not
    /// been admitted by a leader yet (see `super::membership`): its Raft port then refuses
    /// appends, votes and snapshots.
    pub admitted: Arc<AtomicBool>,
}

impl<S: Store> std::fmt::Debug for Core<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Core")
            .field("id", &self.id)
            .field("addr", &self.addr)
            .field("read_mode", &self.read_mode)
            .finish_non_exhaustive()
    }
}

impl<S: Store> Drop for Core<S> {
    /// The last handle on the node is gone (the `RaftNode` and every `RaftStore`): stop Raft, so
    /// the state machine and the inner store are released and open watches end.
    fn drop(&mut self) {
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let raft = self.raft.clone();
            runtime.spawn(async move {
                let _ = raft.shutdown().await;
            });
        }
    }
}

impl<S: Store> Core<S> {
    pub fn status(&self) -> RaftStatus {
        status_of(&self.raft, &self.committed)
    }
}

pub(crate) fn status_of(raft: &OrionRaft, committed: &AtomicU64) -> RaftStatus {
    let m = raft.metrics().borrow().clone();
    let membership = m.membership_config.membership();
    RaftStatus {
        node_id: m.id,
        state: format!("{:?}", m.state),
        leader: m.current_leader,
        term: m.current_term,
        voters: membership.voter_ids().collect(),
        learners: membership.learner_ids().collect(),
        commit_index: committed.load(Ordering::Relaxed),
        applied_index: m.last_applied.map_or(0, |l| l.index),
        last_log_index: m.last_log_index.unwrap_or(0),
    }
}

/// One member of a Raft cluster: the Raft port, the log in files, the state machine over the
/// inner store `S`. Stop it with [`RaftNode::shutdown`]. Dropping it closes the Raft port at
/// once; Raft itself stops when the last [`RaftStore`] handle from it is dropped too.
#[derive(Debug)]
pub struct RaftNode<S: Store> {
    core: Arc<Core<S>>,
    stop: watch::Sender<bool>,
    server: JoinHandle<()>,
    data_dir: PathBuf,
    /// The data dir's identity and the cluster id every frame is stamped with.
    identity: Arc<DataDirIdentity>,
    transport: Transport,
}

impl<S: Store> RaftNode<S> {
    /// Starts a node: claims the data dir (refusing one that belongs to another cluster or node
    /// id), opens the log and state machine (restoring `inner` from the saved snapshot), binds
    /// the Raft port and starts Raft. A new node is uninitialized until [`Self::bootstrap`] or
    /// [`Self::join`]; a restarted node rejoins its cluster by itself.
    pub async fn start(config: RaftConfig, inner: S) -> Result<Self> {
        let raft_config = Arc::new(config.openraft_config()?);
        let identity = Arc::new(DataDirIdentity::claim(
            &config.data_dir,
            &config.cluster_id,
            config.node_id,
            codec::STORAGE_FORMAT,
        )?);
        let cluster = identity.cell();
        let raft_dir = config.data_dir.join("raft");
        let mut log_store = FileLogStore::open(&raft_dir.join("log"))?;
        let committed = log_store.committed_index();
        let last_log = log_store.last_log_id_handle();
        let fresh = is_fresh(&mut log_store).await?;
        let inner = Arc::new(inner);
        let state_machine = StateMachine::open(&raft_dir, inner.clone()).await?;

        let listener =
            TcpListener::bind(config.listen_addr)
                .await
                .map_err(|e| ConsensusError::Io {
                    path: PathBuf::from(config.listen_addr.to_string()),
                    source: e,
                })?;
        let bound = listener.local_addr().map_err(|e| ConsensusError::Io {
            path: PathBuf::from(config.listen_addr.to_string()),
            source: e,
        })?;
        let addr = config.advertise_addr.clone().unwrap_or(bound.to_string());

        let mut transport =
            Transport::new(config.node_id, config.faults.clone())?.with_cluster_id(cluster.clone());
        if let Some(tls) = &config.tls {
            transport = transport.with_tls(&tls.node)?;
        }
        let raft = OrionRaft::new(
            config.node_id,
            raft_config,
            NetworkFactory::new(transport.clone()),
            log_store,
            state_machine,
        )
        .await
        .map_err(ConsensusError::raft)?;

        let workers =
            super::workers::Workers::new(inner.clone() as Arc<dyn orion_core::store::Store>);
        let ops = LeaderOps::new(
            raft.clone(),
            config.request_timeout,
            config.join_timeout,
            workers.clone(),
        );
        let router_transport = transport.clone();
        let router = Router::new(
            config.node_id,
            ops.clone(),
            transport.clone(),
            config.request_timeout,
        );
        let (stop, stop_rx) = watch::channel(false);
        if let Some(every) = config.snapshot_interval {
            tokio::spawn(snapshot_timer(raft.clone(), every, stop_rx.clone()));
        }
        let elections = Elections {
            id: config.node_id,
            raft: raft.clone(),
            contact: LeaderContact::new(),
            last_log,
            transport: router_transport.clone(),
            timeout_min: config.election_timeout_min,
            timeout_max: config.election_timeout_max,
        };
        election::spawn_driver(elections.clone(), stop_rx.clone());
        tokio::spawn(autopilot::run(
            raft.clone(),
            router_transport.clone(),
            config.autopilot.clone(),
            config.election_timeout_max,
            config.request_timeout,
            workers,
            stop_rx.clone(),
        ));
        let admitted = Arc::new(AtomicBool::new(!fresh));
        let server = server::serve(
            listener,
            ops,
            committed.clone(),
            elections,
            identity.clone(),
            admitted.clone(),
            config.tls.clone(),
            config.gossip_addr.clone(),
            stop_rx,
        )
        .map_err(|e| ConsensusError::Io {
            path: PathBuf::from(addr.clone()),
            source: e,
        })?;
        tracing::info!(
            node = config.node_id,
            %addr,
            cluster_id = cluster.get().as_deref().unwrap_or("(none yet)"),
            "raft node started"
        );
        Ok(Self {
            core: Arc::new(Core {
                id: config.node_id,
                addr,
                raft,
                inner,
                router,
                read_mode: config.read_mode,
                committed,
                admitted,
            }),
            stop,
            server,
            data_dir: config.data_dir,
            identity,
            transport,
        })
    }

    /// The cluster id this node belongs to: minted by [`Self::bootstrap`], learned by
    /// [`Self::join`] or [`Self::adopt_cluster_id`], and kept in the data dir. `None` until then.
    pub fn cluster_id(&self) -> Option<String> {
        self.identity.cluster_id()
    }

    /// Records `id` as this node's cluster id, in the data dir first (durably), then for every
    /// frame. A no-op when it is already this node's id.
    ///
    /// Errors: [`ConsensusError::ClusterMismatch`] when the node already belongs to another
    /// cluster, [`ConsensusError::InvalidClusterId`], or an I/O error writing the data dir.
    pub fn adopt_cluster_id(&self, id: &str) -> Result<()> {
        self.identity
            .adopt(id, "the cluster this node was asked to join")
    }

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.core.id
    }

    /// The node-to-node transport this node's Raft traffic uses (with its fault layer and cluster
    /// id), for other node-to-node calls such as network probes ([`Transport::echo`]).
    pub fn transport(&self) -> &Transport {
        &self.transport
    }

    /// The address peers reach this node's Raft port at.
    pub fn addr(&self) -> &str {
        &self.core.addr
    }

    /// The data dir this node owns.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The openraft handle, for metrics and advanced use.
    pub fn raft(&self) -> &OrionRaft {
        &self.core.raft
    }

    /// A [`Store`] on the replicated state, usable from any node.
    pub fn store(&self) -> RaftStore<S> {
        RaftStore::new(self.core.clone())
    }

    /// Makes this node a one-voter cluster under a newly minted cluster id. A one-time init: a
    /// no-op on a node that is already initialized, so it is safe on every start. A node whose
    /// data dir was lost mints a *new* id, so the members of its old cluster refuse it rather
    /// than follow a second, empty cluster (recover such a node with [`Self::join`] instead).
    ///
    /// A data dir from before cluster ids (initialized, with none recorded) gets one minted too;
    /// its members learn it through [`Self::adopt_cluster_id`].
    pub async fn bootstrap(&self) -> Result<()> {
        if self.identity.cluster_id().is_none() {
            let id = crate::cluster_id::new_cluster_id();
            self.adopt_cluster_id(&id)?;
            tracing::info!(cluster_id = %id, "minted a new cluster id");
        }
        if self
            .core
            .raft
            .is_initialized()
            .await
            .map_err(ConsensusError::raft)?
        {
            return Ok(());
        }
        self.core.admitted.store(true, Ordering::SeqCst);
        let members = BTreeMap::from([(
            self.core.id,
            BasicNode {
                addr: self.core.addr.clone(),
            },
        )]);
        self.core
            .raft
            .initialize(members)
            .await
            .map_err(ConsensusError::raft)
    }

    /// Joins the cluster whose member listens at `member_addr` (any member; the request is
    /// passed on to the leader): added as a learner, caught up, then promoted to voter while
    /// voters stay odd and at most [`super::MAX_VOTERS`]. Returns once the leader reports the
    /// join done, which, for a promoted node, is once it holds the membership entry that made
    /// it a voter. Idempotent: a member that joins again (after a restart) is answered at once.
    ///
    /// A node that started on an empty data dir is first admitted as a new member; if the
    /// cluster still lists a member of this id (this node before its data dir was wiped), that
    /// member is removed first, so a wiped voter never votes or counts towards a quorum with an
    /// empty log. Waits at most the request timeout plus the join timeout per request.
    ///
    /// A node with no cluster id first learns (and records) the member's; a node of another
    /// cluster is refused with [`ConsensusError::ClusterMismatch`] naming both ids.
    pub async fn join(&self, member_addr: &str) -> Result<()> {
        // Asked first, so that a node of another cluster gets an error naming both ids rather
        // than a refusal the router might answer by retrying elsewhere.
        let theirs = self
            .transport
            .peer_cluster_id(member_addr, Duration::from_secs(5))
            .await?;
        match self.identity.cluster_id() {
            None => self.adopt_cluster_id(&theirs)?,
            Some(ours) if ours != theirs => {
                return Err(ConsensusError::ClusterMismatch {
                    ours,
                    theirs,
                    peer: format!("the member at {member_addr}"),
                });
            }
            Some(_) => {}
        }
        let request = |fresh| {
            LeaderRequest::Join(JoinRequest {
                node_id: self.core.id,
                addr: self.core.addr.clone(),
                fresh,
                worker: false,
            })
        };
        if !self.core.admitted.load(Ordering::SeqCst) {
            match self.core.router.send_to(member_addr, request(true)).await? {
                LeaderResponse::Admitted => {
                    tracing::info!(node = self.core.id, "admitted as a new member");
                    self.core.admitted.store(true, Ordering::SeqCst);
                }
                other => {
                    return Err(ConsensusError::Raft(format!(
                        "unexpected answer to an admission request: {other:?}"
                    )));
                }
            }
        }
        match self
            .core
            .router
            .send_to(member_addr, request(false))
            .await?
        {
            LeaderResponse::Done => {}
            other => {
                return Err(ConsensusError::Raft(format!(
                    "unexpected answer to join: {other:?}"
                )));
            }
        }
        // The leader has replicated the membership entry here; wait until Raft has taken it in.
        let me = self.core.id;
        let timeout = self.core.router.request_timeout();
        self.core
            .raft
            .wait(Some(timeout))
            .metrics(
                |m| m.membership_config.membership().get_node(&me).is_some(),
                "this node is in its membership",
            )
            .await
            .map(|_| ())
            .map_err(|e| {
                ConsensusError::Unavailable(format!(
                    "the leader reported the join done, but this node does not see itself in \
                     the membership within {timeout:?}: {e}; join again"
                ))
            })
    }

    /// Removes this node from the voters (the cluster carries on without it). Refused on the
    /// leader (see [`Self::remove`]).
    pub async fn leave(&self) -> Result<()> {
        self.remove(self.core.id).await
    }

    /// Removes `node_id` from the cluster's voters and learners, through the leader. Refused,
    /// with `Error::Store(Conflict)` saying what to do, for the leader itself and for the last
    /// voter; `Error::Store(NotFound)` when `node_id` is not a member.
    pub async fn remove(&self, node_id: NodeId) -> Result<()> {
        self.core
            .router
            .route(LeaderRequest::Remove(node_id))
            .await?;
        Ok(())
    }

    /// This node's view: leader, term, voters, learners, commit and applied index.
    pub fn status(&self) -> RaftStatus {
        self.core.status()
    }

    /// Waits until this node knows a leader, for at most `timeout`.
    pub async fn wait_for_leader(&self, timeout: Duration) -> Result<NodeId> {
        let m = self
            .core
            .raft
            .wait(Some(timeout))
            .metrics(|m| m.current_leader.is_some(), "a leader is known")
            .await
            .map_err(|e| {
                ConsensusError::Unavailable(format!("no leader within {timeout:?}: {e}"))
            })?;
        m.current_leader
            .ok_or_else(|| ConsensusError::Unavailable("no leader".into()))
    }

    /// Stops Raft and the Raft port. The data dir stays; a node started on it later resumes.
    pub async fn shutdown(self) -> Result<()> {
        let _ = self.stop.send(true);
        let result = self.core.raft.shutdown().await;
        let _ = self.server.await;
        result.map_err(ConsensusError::raft)
    }
}
