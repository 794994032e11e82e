use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Millis, NodeId, Resources};

/// The label that names a node's zone (failure domain / network segment).
pub const ZONE_LABEL: &str = "zone";

/// Whether a node takes new work.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeStatus {
    /// Alive and accepting tasks.
    #[default]
    Ready,
    /// Alive, but its tasks are being moved away and it accepts none.
    Draining,
    /// Declared dead by membership; its tasks are lost and replaced elsewhere.
    Down,
}

impl std::fmt::Display for NodeStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            NodeStatus::Ready => "ready",
            NodeStatus::Draining => "draining",
            NodeStatus::Down => "down",
        })
    }
}

/// Where a node can be reached. Empty strings mean "not served".
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeAddresses {
    /// HTTP API, `host:port`.
    #[serde(default)]
    pub api: String,
    /// Raft RPCs, `host:port`.
    #[serde(default)]
    pub raft: String,
    /// Gossip (UDP), `host:port`.
    #[serde(default)]
    pub gossip: String,
}

/// A machine that runs tasks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Node {
    /// Stable identifier.
    pub id: NodeId,
    /// Where to reach it.
    #[serde(default)]
    pub addresses: NodeAddresses,
    /// What it offers in total.
    pub capacity: Resources,
    /// What its tasks have requested. Maintained by the controllers; the scheduler recomputes it
    /// from the tasks in its snapshot rather than trusting it.
    #[serde(default)]
    pub allocated: Resources,
    /// Free-form labels; [`ZONE_LABEL`] names the zone.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Whether it takes work.
    #[serde(default)]
    pub status: NodeStatus,
    /// Upper bound on tasks on this node (`runtime.resourceLimits.maxContainersPerNode`).
    #[serde(default)]
    pub max_tasks: Option<u32>,
    /// Last change, in [`Millis`].
    #[serde(default)]
    pub updated_at: Millis,
}

impl Node {
    /// A ready node with `capacity` and no labels.
    pub fn new(id: impl Into<NodeId>, capacity: Resources) -> Self {
        Node {
            id: id.into(),
            addresses: NodeAddresses::default(),
            capacity,
            allocated: Resources::default(),
            labels: BTreeMap::new(),
            status: NodeStatus::Ready,
            max_tasks: None,
            updated_at: 0,
        }
    }

    /// Builder: sets a label.
    pub fn with_label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels.insert(key.into(), value.into());
        self
    }

    /// The node's zone label, if any.
    pub fn zone(&self) -> Option<&str> {
        self.labels.get(ZONE_LABEL).map(String::as_str)
    }

    /// Capacity not yet allocated.
    pub fn free(&self) -> Resources {
        self.capacity.saturating_sub(self.allocated)
    }
}
