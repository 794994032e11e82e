//! Cluster-wide chaos: faults kept in the replicated store under [`PREFIX`], each with a start
//! and an expiry time, and applied by every node to its own fault layer ([`applier`]).
//!
//! A fault lives in the store, not in the node that created it: every node reads the active
//! faults from its local copy of the state and applies them to its own
//! [`orion_consensus::transport::FaultInjector`] (Raft and other node-to-node requests) and
//! gossip link filter, and drops each fault when its expiry time passes on its own clock. So a
//! fault heals by itself even when the node that started it dies, and a node cut off by a fault
//! still heals on time (it cannot hear the deletion while cut). The leader deletes expired
//! entries from the store.
//!
//! Bounds: a fault lasts [`MIN_DURATION`] to [`MAX_DURATION`]; latency is at most
//! [`MAX_LATENCY`]; at most [`MAX_FAULTS`] entries (active or scheduled) exist at once; a monkey
//! schedules at most [`MAX_MONKEY_EVENTS`] faults.

use std::collections::BTreeSet;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

pub mod applier;
pub mod monkey;
mod request;

pub use request::{LatencyRequest, MonkeyRequest, NodeFailureRequest, PartitionRequest};

/// `/orion/chaos/<id>` -> [`ChaosFault`] (JSON).
pub const PREFIX: &str = "/orion/chaos/";
/// Shortest fault.
pub const MIN_DURATION: Duration = Duration::from_secs(1);
/// Longest fault, and longest monkey run.
pub const MAX_DURATION: Duration = Duration::from_secs(3600);
/// Largest added latency.
pub const MAX_LATENCY: Duration = Duration::from_secs(10);
/// Most fault entries (active or scheduled) in the store at once.
pub const MAX_FAULTS: usize = 100;
/// Most faults one monkey schedules.
pub const MAX_MONKEY_EVENTS: usize = 60;

/// What a fault does. Node names are node ids as `orion nodes` lists them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum ChaosKind {
    /// Adds `increase_ms` to every node-to-node request sent by or to one of `nodes` (every
    /// node when `nodes` is empty). Gossip datagrams are not delayed.
    Latency {
        increase_ms: u64,
        #[serde(default)]
        nodes: Vec<String>,
    },
    /// Cuts Raft and gossip between nodes of different groups; nodes in no group keep their
    /// links.
    NetworkPartition { groups: Vec<Vec<String>> },
    /// Cuts every link of `target`, Raft and gossip: to the others it is a dead node.
    NodeFailure { target: String },
}

impl ChaosKind {
    /// Every node the fault names.
    pub fn nodes(&self) -> Vec<&str> {
        match self {
            ChaosKind::Latency { nodes, .. } => nodes.iter().map(String::as_str).collect(),
            ChaosKind::NetworkPartition { groups } => {
                groups.iter().flatten().map(String::as_str).collect()
            }
            ChaosKind::NodeFailure { target } => vec![target.as_str()],
        }
    }

    /// A one-line description, e.g. `latency +100ms on n1, n2`.
    pub fn describe(&self) -> String {
        match self {
            ChaosKind::Latency { increase_ms, nodes } if nodes.is_empty() => {
                format!("latency +{increase_ms}ms on all nodes")
            }
            ChaosKind::Latency { increase_ms, nodes } => {
                format!("latency +{increase_ms}ms on {}", nodes.join(", "))
            }
            ChaosKind::NetworkPartition { groups } => format!(
                "partition {}",
                groups
                    .iter()
                    .map(|g| g.join(","))
                    .collect::<Vec<_>>()
                    .join(" | ")
            ),
            ChaosKind::NodeFailure { target } => format!("node failure of {target}"),
        }
    }
}

/// One stored fault.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChaosFault {
    /// Unique; the key is `PREFIX + id`.
    pub id: String,
    #[serde(flatten)]
    pub kind: ChaosKind,
    /// Unix milliseconds from which the fault applies.
    pub starts_at: u64,
    /// Unix milliseconds at which the fault ends by itself.
    pub expires_at: u64,
    /// Who made it: `api`, or `monkey <id>`.
    pub source: String,
}

impl ChaosFault {
    /// The store key.
    pub fn key(&self) -> String {
        format!("{PREFIX}{}", self.id)
    }

    /// True when it applies at `now` (unix ms).
    pub fn active_at(&self, now: u64) -> bool {
        self.starts_at <= now && now < self.expires_at
    }

    /// True when it ended before `now`.
    pub fn expired_at(&self, now: u64) -> bool {
        now >= self.expires_at
    }
}

/// A fault as `GET /v1/chaos` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChaosStatus {
    #[serde(flatten)]
    pub fault: ChaosFault,
    /// True when it applies now; false while scheduled (a monkey's later faults).
    pub active: bool,
    /// Milliseconds until it starts (0 when active).
    pub starts_in_ms: u64,
    /// Milliseconds until it ends.
    pub remaining_ms: u64,
}

impl ChaosStatus {
    /// The status of `fault` at `now` (unix ms).
    pub fn at(fault: ChaosFault, now: u64) -> Self {
        ChaosStatus {
            active: fault.active_at(now),
            starts_in_ms: fault.starts_at.saturating_sub(now),
            remaining_ms: fault.expires_at.saturating_sub(now),
            fault,
        }
    }
}

/// Answer of `DELETE /v1/chaos`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StopResult {
    /// The faults removed (active and scheduled).
    pub stopped: Vec<ChaosFault>,
}

/// Unix milliseconds now.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// A random 64-bit number (std's randomly keyed hasher, a counter and the clock): ids and the
/// monkey's choices, not cryptography.
pub fn random_u64() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.write_u128(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.finish()
}

/// A new fault id: `c-<12 hex>`.
pub fn new_id() -> String {
    format!("c-{:012x}", random_u64() & 0xffff_ffff_ffff)
}

/// Checks that every node `kind` names is in `known`; the error lists the known ones.
pub fn check_nodes(kind: &ChaosKind, known: &BTreeSet<String>) -> Result<(), String> {
    let unknown: Vec<&str> = kind
        .nodes()
        .into_iter()
        .filter(|n| !known.contains(*n))
        .collect();
    if unknown.is_empty() {
        return Ok(());
    }
    Err(format!(
        "unknown node{} {}: the cluster's nodes are {}",
        if unknown.len() == 1 { "" } else { "s" },
        unknown.join(", "),
        known.iter().cloned().collect::<Vec<_>>().join(", ")
    ))
}
