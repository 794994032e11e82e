use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::{Millis, NodeId};

/// One directed measurement of the network from node `from` to node `to`.
///
/// Fields added after the first version carry `#[serde(default)]`, so older records still read;
/// build one with `..Default::default()` to stay source compatible when fields are added.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NetworkMeasurement {
    pub from: NodeId,
    pub to: NodeId,
    /// Round-trip time, milliseconds (median of the last probe round).
    pub rtt_ms: f64,
    /// Variation of the RTT, milliseconds.
    #[serde(default)]
    pub jitter_ms: f64,
    /// Fraction of probes lost, 0.0 to 1.0.
    #[serde(default)]
    pub loss: f64,
    /// Estimated bandwidth, megabits per second; `None` when not measured (then left out of the
    /// JSON).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bandwidth_mbps: Option<f64>,
    /// When it was taken.
    #[serde(default)]
    pub measured_at: Millis,
    /// 90th percentile of the recent RTT samples, milliseconds (0 when unknown).
    #[serde(default)]
    pub rtt_p90_ms: f64,
    /// How steady the link is, 0.0 (erratic) to 1.0 (steady); 0 when unknown.
    #[serde(default)]
    pub stability: f64,
    /// The prober can no longer reach `to` while other nodes still do: the link, not the node, is
    /// down. A node that nobody reaches is left to membership, and never marked this way. Left
    /// out of the JSON when false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub link_down: bool,
}

/// Most links one [`NodeLinks`] record may hold; the store refuses larger records.
pub const MAX_LINKS_PER_RECORD: usize = 1024;

/// Every link one node's prober publishes, as one record (`/orion/links/<from>`): the prober
/// rewrites it whole at most once per publication interval (at once when a link goes down or comes
/// back), so publishing costs one store write per node per interval, however many links changed.
/// Readers flatten it into [`NetworkMeasurement`]s (`ClusterStore::list_measurements`,
/// `load_state`'s [`NetworkMatrix`]).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NodeLinks {
    pub from: NodeId,
    /// When the record was written.
    #[serde(default)]
    pub published_at: Millis,
    /// One measurement per peer, each with `from` equal to the record's, at most
    /// [`MAX_LINKS_PER_RECORD`].
    #[serde(default)]
    pub links: Vec<NetworkMeasurement>,
}

/// A node's Vivaldi network coordinate as stored: a position in a small Euclidean space, a height,
/// all in milliseconds, and the node's own estimate of its relative error. The estimated RTT
/// between two nodes is the distance between the positions plus both heights.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NetworkCoordinate {
    pub node: NodeId,
    pub position: Vec<f64>,
    pub height_ms: f64,
    pub error: f64,
    #[serde(default)]
    pub updated_at: Millis,
}

impl NetworkCoordinate {
    /// The estimated RTT to `other` in milliseconds, or `None` when the two have different
    /// dimensions.
    pub fn estimate_rtt_ms(&self, other: &NetworkCoordinate) -> Option<f64> {
        if self.position.len() != other.position.len() {
            return None;
        }
        let plane = self
            .position
            .iter()
            .zip(&other.position)
            .map(|(a, b)| (a - b) * (a - b))
            .sum::<f64>()
            .sqrt();
        Some(plane + self.height_ms + other.height_ms)
    }
}

/// All known measurements, indexed by `(from, to)`. A lookup falls back to the reverse direction,
/// since RTT is symmetric and most links are.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NetworkMatrix {
    /// `from -> to -> measurement`; nested so lookups by `&str` need no allocation.
    entries: HashMap<NodeId, HashMap<NodeId, NetworkMeasurement>>,
}

impl NetworkMatrix {
    /// An empty matrix.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds or replaces the measurement for `(m.from, m.to)`.
    pub fn insert(&mut self, m: NetworkMeasurement) {
        self.entries
            .entry(m.from.clone())
            .or_default()
            .insert(m.to.clone(), m);
    }

    /// The measurement from `from` to `to`, or the reverse one. A node is at zero distance from
    /// itself, which is reported as `None` here; callers treat `from == to` as 0 ms.
    pub fn get(&self, from: &str, to: &str) -> Option<&NetworkMeasurement> {
        let one_way = |a: &str, b: &str| self.entries.get(a).and_then(|row| row.get(b));
        one_way(from, to).or_else(|| one_way(to, from))
    }

    /// RTT in ms between two nodes: 0 for the same node, `None` when never measured.
    pub fn rtt_ms(&self, from: &str, to: &str) -> Option<f64> {
        if from == to {
            return Some(0.0);
        }
        self.get(from, to).map(|m| m.rtt_ms)
    }

    /// Number of measurements.
    pub fn len(&self) -> usize {
        self.entries.values().map(HashMap::len).sum()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// All measurements, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &NetworkMeasurement> {
        self.entries.values().flat_map(HashMap::values)
    }
}
