//! Zones from latency: nodes with a `zone` label keep it; nodes without one are grouped by the
//! RTT measured (or estimated) between them.
//!
//! The grouping is threshold clustering around medoids: the node with the most peers within the
//! threshold becomes a zone's center and takes those peers, then the next, until every node has a
//! zone; finally each node moves to the nearest center within the threshold. Every member of a
//! zone is within the threshold of its center, so a zone's diameter is at most twice it. The
//! cost is O(n²) latency look-ups.
//!
//! ```
//! use orion_netscore::zones::cluster_by_latency;
//!
//! // two pairs 1 ms apart internally, 40 ms from each other
//! let rtt = |i: usize, j: usize| Some(if i / 2 == j / 2 { 1.0 } else { 40.0 });
//! let zones = cluster_by_latency(4, rtt, 5.0).unwrap();
//! assert_eq!(zones[0], zones[1]);
//! assert_eq!(zones[2], zones[3]);
//! assert_ne!(zones[0], zones[2]);
//! ```

use std::collections::BTreeMap;

use std::sync::Mutex;

use orion_core::model::{Millis, NetworkMatrix, Node, NodeId, ZONE_LABEL};
use orion_core::scheduler::NodeAnnotator;
use serde::Serialize;

use crate::{Error, Result};

/// The most nodes [`cluster_by_latency`] accepts.
pub const MAX_CLUSTER_NODES: usize = 10_000;

/// The default threshold: nodes within 5 ms of a zone's center share it (a metro area).
pub const DEFAULT_ZONE_THRESHOLD_MS: f64 = 5.0;

/// The largest threshold accepted, in milliseconds.
pub const MAX_ZONE_THRESHOLD_MS: f64 = 10_000.0;

/// The prefix of a zone name made from latency; the rest is the id of the zone's center node.
pub const LATENCY_ZONE_PREFIX: &str = "latency-";

/// Groups `n` nodes by latency. `latency(i, j)` is the RTT between nodes `i` and `j` in ms, `None`
/// when unknown (an unknown pair is never in the same zone through that pair).
///
/// Returns, for each node, the index of its zone's center node (a center is its own center).
/// Deterministic: ties go to the lower index. Errors: more than [`MAX_CLUSTER_NODES`] nodes, or a
/// threshold that is not in (0, [`MAX_ZONE_THRESHOLD_MS`]].
pub fn cluster_by_latency(
    n: usize,
    latency: impl Fn(usize, usize) -> Option<f64>,
    threshold_ms: f64,
) -> Result<Vec<usize>> {
    if n > MAX_CLUSTER_NODES {
        return Err(Error::invalid(
            "zone clustering",
            format!("{n} nodes; at most {MAX_CLUSTER_NODES} are accepted"),
        ));
    }
    if !(threshold_ms > 0.0 && threshold_ms <= MAX_ZONE_THRESHOLD_MS) {
        return Err(Error::invalid(
            "zone threshold",
            format!(
                "{threshold_ms} ms; accepted: more than 0 and at most {MAX_ZONE_THRESHOLD_MS} ms"
            ),
        ));
    }
    let close = |i: usize, j: usize| i != j && latency(i, j).is_some_and(|rtt| rtt <= threshold_ms);
    // close_unassigned[i]: peers within the threshold that have no zone yet.
    let mut close_unassigned: Vec<usize> = (0..n)
        .map(|i| (0..n).filter(|&j| close(i, j)).count())
        .collect();
    let mut center_of: Vec<Option<usize>> = vec![None; n];
    let mut centers = Vec::new();
    while let Some(center) = (0..n)
        .filter(|&i| center_of[i].is_none())
        .max_by_key(|&i| (close_unassigned[i], std::cmp::Reverse(i)))
    {
        centers.push(center);
        let members: Vec<usize> = std::iter::once(center)
            .chain((0..n).filter(|&j| center_of[j].is_none() && close(center, j)))
            .collect();
        for &member in &members {
            center_of[member] = Some(center);
        }
        for &member in &members {
            for (k, count) in close_unassigned.iter_mut().enumerate() {
                if close(k, member) {
                    *count = count.saturating_sub(1);
                }
            }
        }
    }
    // Refinement: each non-center node joins the nearest center within the threshold.
    let mut zone_of: Vec<usize> = center_of.into_iter().map(|c| c.unwrap_or(0)).collect();
    for (i, zone) in zone_of.iter_mut().enumerate() {
        if centers.contains(&i) {
            continue;
        }
        let nearest = centers
            .iter()
            .filter_map(|&c| {
                latency(i, c)
                    .filter(|&rtt| rtt <= threshold_ms)
                    .map(|rtt| (rtt, c))
            })
            .min_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        if let Some((_, center)) = nearest {
            *zone = center;
        }
    }
    Ok(zone_of)
}

/// Where a node's zone came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ZoneSource {
    /// The node's own `zone` label.
    Label,
    /// Latency to labelled nodes: the node's latency zone sits within the threshold of one.
    NearestLabel,
    /// Latency clustering among unlabelled nodes: the name is [`LATENCY_ZONE_PREFIX`] + center id.
    Latency,
}

/// A node's zone and where it came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Zone {
    pub name: String,
    pub source: ZoneSource,
}

/// Every node's zone: its `zone` label if it has one; otherwise unlabelled nodes are clustered by
/// `latency` (RTT in ms between two node ids, `None` when unknown; for example
/// `|a, b| matrix.rtt_ms(a, b)`, or a Vivaldi estimate where unmeasured). A latency zone whose
/// center is within the threshold of a labelled node takes that node's label (the nearest one);
/// else it is named [`LATENCY_ZONE_PREFIX`] + its center's id.
///
/// Errors as [`cluster_by_latency`].
pub fn assign_zones(
    nodes: &[Node],
    latency: impl Fn(&str, &str) -> Option<f64>,
    threshold_ms: f64,
) -> Result<BTreeMap<NodeId, Zone>> {
    let mut zones = BTreeMap::new();
    let mut labelled = Vec::new();
    let mut unlabelled = Vec::new();
    for node in nodes {
        match node.labels.get(ZONE_LABEL) {
            Some(label) => {
                labelled.push((node.id.as_str(), label.as_str()));
                zones.insert(
                    node.id.clone(),
                    Zone {
                        name: label.clone(),
                        source: ZoneSource::Label,
                    },
                );
            }
            None => unlabelled.push(node.id.as_str()),
        }
    }
    let centers = cluster_by_latency(
        unlabelled.len(),
        |i, j| latency(unlabelled[i], unlabelled[j]),
        threshold_ms,
    )?;
    for (i, &center) in centers.iter().enumerate() {
        let center_id = unlabelled[center];
        let nearest_label = labelled
            .iter()
            .filter_map(|&(id, label)| {
                latency(center_id, id)
                    .filter(|&rtt| rtt <= threshold_ms)
                    .map(|rtt| (rtt, label))
            })
            .min_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(b.1)));
        let zone = match nearest_label {
            Some((_, label)) => Zone {
                name: label.to_string(),
                source: ZoneSource::NearestLabel,
            },
            None => Zone {
                name: format!("{LATENCY_ZONE_PREFIX}{center_id}"),
                source: ZoneSource::Latency,
            },
        };
        zones.insert(unlabelled[i].to_string(), zone);
    }
    Ok(zones)
}

/// The pipeline stage that gives every node without a `zone` label the zone [`assign_zones`]
/// finds from the measured RTT (either direction), so zone rules, `spread` and anti-affinity
/// work on clusters nobody labelled. A node with a `zone` label keeps it.
///
/// Clustering is O(n²) in the unlabelled nodes, so the result is reused for `refresh` unless
/// the set of nodes or their zone labels changed; a cluster of more than
/// [`MAX_CLUSTER_NODES`] nodes, or with no measurement yet, gets no latency zones, and a latency
/// zone of a single node is not added (it would only make the node its own zone).
#[derive(Debug)]
pub struct LatencyZones {
    threshold_ms: f64,
    refresh_ms: Millis,
    cache: Mutex<Option<CachedZones>>,
}

#[derive(Debug)]
struct CachedZones {
    key: u64,
    at: Millis,
    labels: Vec<(NodeId, String, String)>,
}

/// The annotator's name.
pub const LATENCY_ZONES: &str = "latency_zones";

impl Default for LatencyZones {
    fn default() -> Self {
        Self::new(DEFAULT_ZONE_THRESHOLD_MS, 30_000)
    }
}

impl LatencyZones {
    /// Zones of nodes within `threshold_ms` of a center (clamped to (0, [`MAX_ZONE_THRESHOLD_MS`]]),
    /// recomputed at most every `refresh_ms` while the node set stays the same.
    pub fn new(threshold_ms: f64, refresh_ms: Millis) -> Self {
        let threshold_ms = if threshold_ms.is_finite() && threshold_ms > 0.0 {
            threshold_ms.min(MAX_ZONE_THRESHOLD_MS)
        } else {
            DEFAULT_ZONE_THRESHOLD_MS
        };
        LatencyZones {
            threshold_ms,
            refresh_ms,
            cache: Mutex::new(None),
        }
    }
}

impl NodeAnnotator for LatencyZones {
    fn name(&self) -> &'static str {
        LATENCY_ZONES
    }

    fn annotate(
        &self,
        nodes: &[Node],
        network: &NetworkMatrix,
        now: Millis,
    ) -> Vec<(NodeId, String, String)> {
        if network.is_empty()
            || nodes.iter().all(|n| n.zone().is_some())
            || nodes.len() > MAX_CLUSTER_NODES
        {
            return Vec::new();
        }
        let mut ids = orion_core::hash::StableHasher::default();
        for n in nodes {
            ids.write_field(n.id.as_bytes());
            ids.write_field(n.zone().unwrap_or("").as_bytes());
        }
        let key = std::hash::Hasher::finish(&ids);
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = cache.as_ref()
            && c.key == key
            && now >= c.at
            && now - c.at < self.refresh_ms
        {
            return c.labels.clone();
        }
        let rtt = |a: &str, b: &str| network.rtt_ms(a, b).or_else(|| network.rtt_ms(b, a));
        let zones = assign_zones(nodes, rtt, self.threshold_ms).unwrap_or_default();
        // A latency zone of one node says nothing the node's id does not: only zones that group
        // nodes (or join a labelled zone) are added.
        let mut members: BTreeMap<&str, usize> = BTreeMap::new();
        for z in zones.values() {
            *members.entry(z.name.as_str()).or_default() += 1;
        }
        let labels: Vec<(NodeId, String, String)> = zones
            .iter()
            .filter(|(_, z)| {
                z.source == ZoneSource::NearestLabel
                    || (z.source == ZoneSource::Latency && members[z.name.as_str()] > 1)
            })
            .map(|(id, z)| (id.clone(), ZONE_LABEL.to_owned(), z.name.clone()))
            .collect();
        *cache = Some(CachedZones {
            key,
            at: now,
            labels: labels.clone(),
        });
        labels
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synthetic;
    use orion_core::model::Resources;

    fn same_partition(zones: &[usize], expected: impl Fn(usize) -> usize) -> bool {
        let n = zones.len();
        (0..n).all(|i| (0..n).all(|j| (zones[i] == zones[j]) == (expected(i) == expected(j))))
    }

    #[test]
    fn recovers_synthetic_zones() {
        // 6 zones of 15: 0.4-6 ms within a zone (2 ms spread, access delays), tens of ms between.
        let matrix = synthetic::clustered(6, 15, 21).unwrap();
        let zones = cluster_by_latency(matrix.len(), |i, j| matrix.rtt(i, j), 10.0).unwrap();
        assert!(same_partition(&zones, |i| i / 15), "{zones:?}");
    }

    #[test]
    fn unmeasured_pairs_split_and_isolated_nodes_stand_alone() {
        // 0-1-2 close, 3 unmeasured to everyone.
        let rtt = |i: usize, j: usize| (i < 3 && j < 3).then_some(1.0);
        let zones = cluster_by_latency(4, rtt, 5.0).unwrap();
        assert!(same_partition(&zones, |i| usize::from(i == 3)), "{zones:?}");
        assert_eq!(zones[3], 3);
    }

    #[test]
    fn a_chain_is_not_one_zone() {
        // 10 nodes on a line 3 ms apart: single linkage would chain them all into one zone.
        let rtt = |i: usize, j: usize| Some((i as f64 - j as f64).abs() * 3.0);
        let zones = cluster_by_latency(10, rtt, 5.0).unwrap();
        for (i, &center) in zones.iter().enumerate() {
            assert!(
                rtt(i, center).unwrap() <= 5.0,
                "{i} is far from its center {center}"
            );
        }
        let distinct: std::collections::BTreeSet<_> = zones.iter().collect();
        assert!(distinct.len() >= 3, "{zones:?}");
    }

    #[test]
    fn bounds() {
        assert!(cluster_by_latency(3, |_, _| Some(1.0), 0.0).is_err());
        assert!(cluster_by_latency(3, |_, _| Some(1.0), f64::NAN).is_err());
        assert!(cluster_by_latency(MAX_CLUSTER_NODES + 1, |_, _| None, 5.0).is_err());
        assert_eq!(
            cluster_by_latency(0, |_, _| None, 5.0).unwrap(),
            Vec::<usize>::new()
        );
    }

    #[test]
    fn labels_win_and_unlabelled_nodes_join_a_close_labelled_zone() {
        let node = |id: &str| Node::new(id, Resources::new(1000, 1 << 30));
        let nodes = vec![
            node("a").with_label(ZONE_LABEL, "eu-1"),
            node("b"),
            node("c"),
            node("d"),
        ];
        // a, b close; c, d close; the two groups 50 ms apart.
        let group = |id: &str| u8::from(id == "c" || id == "d");
        let rtt = |x: &str, y: &str| Some(if group(x) == group(y) { 1.0 } else { 50.0 });
        let zones = assign_zones(&nodes, rtt, 5.0).unwrap();
        assert_eq!(zones["a"].source, ZoneSource::Label);
        assert_eq!(zones["b"].name, "eu-1");
        assert_eq!(zones["b"].source, ZoneSource::NearestLabel);
        assert_eq!(zones["c"].name, zones["d"].name);
        assert!(zones["c"].name.starts_with(LATENCY_ZONE_PREFIX));
        assert_eq!(zones["c"].source, ZoneSource::Latency);
    }

    #[test]
    fn latency_zones_label_only_unlabelled_nodes_and_reuse_the_result() {
        use orion_core::model::NetworkMeasurement;
        let nodes: Vec<Node> = ["a1", "a2", "b1", "b2"]
            .iter()
            .map(|id| Node::new(*id, Resources::new(1000, 1 << 30)))
            .chain([Node::new("l1", Resources::new(1000, 1 << 30)).with_label(ZONE_LABEL, "eu")])
            .collect();
        let mut m = NetworkMatrix::new();
        for (a, b) in [
            ("a1", "a2"),
            ("b1", "b2"),
            ("a1", "b1"),
            ("a2", "b2"),
            ("l1", "a1"),
        ] {
            let rtt_ms = if a[..1] == b[..1] { 1.0 } else { 40.0 };
            m.insert(NetworkMeasurement {
                from: a.into(),
                to: b.into(),
                rtt_ms,
                ..Default::default()
            });
        }
        let z = LatencyZones::default();
        let labels = z.annotate(&nodes, &m, 1_000);
        let zone_of = |id: &str| {
            labels
                .iter()
                .find(|(n, _, _)| n == id)
                .map(|(_, _, v)| v.clone())
        };
        assert_eq!(zone_of("a1"), zone_of("a2"));
        assert_eq!(zone_of("b1"), zone_of("b2"));
        assert_ne!(zone_of("a1"), zone_of("b1"));
        assert_eq!(zone_of("l1"), None, "a label is kept");
        assert!(
            z.annotate(&nodes, &NetworkMatrix::new(), 100_000)
                .is_empty(),
            "nothing measured: no zones"
        );
        assert!(labels.iter().all(|(_, k, _)| k == ZONE_LABEL));
        // Within the refresh time the result is reused, even if the network changed.
        let mut changed = NetworkMatrix::new();
        changed.insert(NetworkMeasurement {
            from: "a1".into(),
            to: "a2".into(),
            rtt_ms: 40.0,
            ..Default::default()
        });
        assert_eq!(z.annotate(&nodes, &changed, 2_000), labels);
        // The network-aware pipeline applies it before placing.
        let sched = crate::scoring::network_aware_pipeline(Default::default());
        let placed_on = sched.annotated_nodes(&nodes, &m, 1_000);
        assert_eq!(placed_on[0].zone(), zone_of("a1").as_deref());
        assert_eq!(placed_on[4].zone(), Some("eu"));
        // Every node labelled: nothing to add.
        let labelled: Vec<Node> = nodes
            .iter()
            .cloned()
            .map(|n| n.with_label(ZONE_LABEL, "x"))
            .collect();
        assert!(z.annotate(&labelled, &m, 3_000).is_empty());
    }
}
