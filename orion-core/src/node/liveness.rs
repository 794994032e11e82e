//! The liveness controller (leader only): node records follow membership, slowly enough that a
//! false death harms nothing.
//!
//! Contract:
//! - A member that is alive (or only suspect) is `Ready`, or stays `Draining` if it was.
//! - A member that membership reports dead or departed is marked `Down` only after it has been
//!   seen not alive, by this controller, for [`LivenessConfig::down_grace`] without a break. A
//!   node in the store that membership does not know at all waits
//!   [`LivenessConfig::unknown_grace`] (counted from when this controller started, so a new leader
//!   whose gossip view is still filling up marks nobody down).
//! - At most [`LivenessConfig::max_down_per_minute`] nodes are marked down in any minute (as
//!   Kubernetes rate-limits evictions); the rest wait their turn.
//! - Every [`LivenessController::step`] derives every node's status from this leader's own
//!   membership view and corrects what the store says, so a stale `Down` (left by an earlier
//!   leader, or by a lost event) is repaired within one resync.
//! - Every write is fenced ([`super::Fence`]).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tracing::{info, warn};

use super::{Clock, Fence};
use crate::membership::{Member, MemberState, Membership};
use crate::model::{Millis, Node, NodeId, NodeStatus};
use crate::store::{ClusterStore, Store};

/// Timings and bounds of the liveness controller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LivenessConfig {
    /// How long a member must stay dead before its node is marked down (on top of detection).
    pub down_grace: Duration,
    /// How long a node unknown to membership waits before it is marked down.
    pub unknown_grace: Duration,
    /// Nodes marked down in any 60 s window, at most (at least 1).
    pub max_down_per_minute: u32,
    /// How often the node records are re-derived from membership when no event arrives.
    pub resync_interval: Duration,
    /// Written into every node record as its task limit.
    pub max_tasks: Option<u32>,
}

impl Default for LivenessConfig {
    fn default() -> Self {
        LivenessConfig {
            // Detection (gossip) takes about 1 s; 250 ms on top keeps a killed node's replicas
            // running elsewhere within 2 s, and rides out a flapping suspect/alive.
            down_grace: Duration::from_millis(250),
            unknown_grace: Duration::from_secs(10),
            max_down_per_minute: 5,
            resync_interval: Duration::from_secs(2),
            max_tasks: None,
        }
    }
}

/// What one step did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct LivenessReport {
    /// Nodes whose record was written (created or status changed).
    pub written: Vec<NodeId>,
    /// Nodes marked down in this step.
    pub marked_down: Vec<NodeId>,
    /// Nodes not alive, waiting out their grace period or the rate limit.
    pub waiting: Vec<NodeId>,
    /// True when a write was refused because the fence is no longer held.
    pub fenced_out: bool,
}

#[derive(Debug, Default)]
struct Memory {
    /// When this controller first saw each node not alive (cleared when alive again).
    not_alive_since: HashMap<NodeId, Millis>,
    /// When the recent marks down happened (the last minute's).
    recent_downs: VecDeque<Millis>,
}

/// Keeps node records in step with membership.
pub struct LivenessController<S, M: ?Sized> {
    store: ClusterStore<S>,
    membership: Arc<M>,
    clock: Arc<dyn Clock>,
    config: LivenessConfig,
    started: Millis,
    memory: Mutex<Memory>,
}

impl<S, M: ?Sized> std::fmt::Debug for LivenessController<S, M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LivenessController")
            .field("config", &self.config)
            .finish()
    }
}

impl<S: Store, M: Membership + ?Sized> LivenessController<S, M> {
    /// A controller that starts counting grace periods now.
    pub fn new(
        store: ClusterStore<S>,
        membership: Arc<M>,
        clock: Arc<dyn Clock>,
        config: LivenessConfig,
    ) -> Self {
        let started = clock.now();
        LivenessController {
            store,
            membership,
            clock,
            config,
            started,
            memory: Mutex::new(Memory::default()),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &LivenessConfig {
        &self.config
    }

    /// Membership's events: each is a reason to [`LivenessController::step`] now.
    pub fn events(&self) -> crate::membership::MembershipEvents {
        self.membership.subscribe()
    }

    /// Re-derives every node record from membership and writes what changed (fenced).
    pub async fn step(&self, fence: &Fence) -> crate::Result<LivenessReport> {
        let now = self.clock.now();
        let members = self.membership.members().await?;
        let nodes = self.store.list_nodes().await?;
        let mut report = LivenessReport::default();
        let existing: HashMap<&str, &Node> = nodes.iter().map(|n| (n.id.as_str(), n)).collect();

        let mut wanted: Vec<(Node, bool)> = Vec::new();
        for m in &members {
            let alive = matches!(m.state, MemberState::Alive | MemberState::Suspect);
            let node = node_from_member(m, existing.get(m.id.as_str()).copied(), &self.config);
            wanted.push((node, alive));
        }
        for n in nodes
            .iter()
            .filter(|n| !members.iter().any(|m| m.id == n.id))
        {
            let mut node = n.clone();
            node.status = NodeStatus::Down;
            wanted.push((node, false));
        }

        let writes = self.decide(wanted, &existing, &members, now, &mut report);
        for node in writes {
            if self.store.put_node_if(&node, vec![fence.compare()]).await? {
                info!(node = %node.id, status = %node.status, "node status");
                report.written.push(node.id.clone());
            } else if !fence.held(&self.store).await? {
                report.fenced_out = true;
                return Ok(report);
            }
        }
        if !report.marked_down.is_empty() {
            warn!(nodes = ?report.marked_down, "nodes marked down");
        }
        Ok(report)
    }

    /// The records to write, applying grace periods and the rate limit.
    fn decide(
        &self,
        wanted: Vec<(Node, bool)>,
        existing: &HashMap<&str, &Node>,
        members: &[Member],
        now: Millis,
        report: &mut LivenessReport,
    ) -> Vec<Node> {
        let mut memory = self.memory.lock().unwrap_or_else(PoisonError::into_inner);
        let mut writes = Vec::new();
        for (mut node, alive) in wanted {
            let current = existing.get(node.id.as_str()).copied();
            if alive {
                memory.not_alive_since.remove(&node.id);
            } else if current.is_none_or(|c| c.status != NodeStatus::Down) {
                let known = members.iter().any(|m| m.id == node.id);
                let first = *memory
                    .not_alive_since
                    .entry(node.id.clone())
                    .or_insert(if known { now } else { self.started.min(now) });
                let grace = if known {
                    self.config.down_grace
                } else {
                    self.config.unknown_grace
                };
                let due = now.saturating_sub(first) >= grace.as_millis() as Millis;
                while memory
                    .recent_downs
                    .front()
                    .is_some_and(|t| now.saturating_sub(*t) >= 60_000)
                {
                    memory.recent_downs.pop_front();
                }
                let allowed =
                    memory.recent_downs.len() < self.config.max_down_per_minute.max(1) as usize;
                if !(due && allowed) {
                    report.waiting.push(node.id.clone());
                    // Keep what the store says until it is due.
                    match current {
                        Some(c) => node.status = c.status,
                        None => continue,
                    }
                } else {
                    memory.recent_downs.push_back(now);
                    report.marked_down.push(node.id.clone());
                }
            }
            if current.is_some_and(|c| same_record(c, &node)) {
                continue;
            }
            node.updated_at = now;
            writes.push(node);
        }
        writes
    }
}

/// The record a member should have: alive members are `Ready` unless draining.
fn node_from_member(m: &Member, existing: Option<&Node>, config: &LivenessConfig) -> Node {
    let mut node = existing
        .cloned()
        .unwrap_or_else(|| Node::new(m.id.clone(), m.capacity));
    node.addresses = m.addresses.clone();
    node.labels = m.labels.clone();
    node.capacity = m.capacity;
    node.max_tasks = config.max_tasks;
    node.status = match (m.state, node.status) {
        (MemberState::Alive | MemberState::Suspect, NodeStatus::Draining) => NodeStatus::Draining,
        (MemberState::Alive | MemberState::Suspect, _) => NodeStatus::Ready,
        (MemberState::Dead | MemberState::Left, _) => NodeStatus::Down,
    };
    node
}

fn same_record(a: &Node, b: &Node) -> bool {
    a.status == b.status
        && a.capacity == b.capacity
        && a.labels == b.labels
        && a.addresses == b.addresses
        && a.max_tasks == b.max_tasks
}
