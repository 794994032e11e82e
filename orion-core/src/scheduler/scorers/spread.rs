//! `spread`: spread a service's replicas across zones and nodes.

use crate::model::ZONE_LABEL;
use crate::scheduler::{ClusterView, NodeView, PlacementRequest, Scorer};

/// The scorer's name.
pub const NAME: &str = "spread";

/// Prefers zones and nodes with fewer tasks of the service being placed.
///
/// - Node term: `1 / (1 + c_node)`, with `c_node` the service's tasks on the node.
/// - Zone term: `1 - c_zone / (m + 1)`, with `c_zone` the service's tasks in the node's value of
///   the spread label (`scheduling.spread_by`, default `zone`) and `m` the most in any value.
///   An unused zone scores 1, the fullest `1 / (m + 1)`.
///
/// The score is the mean of both terms, or the node term alone on a node without the label.
/// For the `zone` label the counts are O(1) lookups in the view; another `spread_by` label costs
/// O(nodes running the service) per node scored.
#[derive(Debug, Clone, Copy, Default)]
pub struct Spread;

impl Scorer for Spread {
    fn name(&self) -> &'static str {
        NAME
    }

    fn score(&self, req: &PlacementRequest<'_>, node: &NodeView, view: &ClusterView) -> f64 {
        let service = req.spec.name.as_str();
        let node_term = 1.0 / (1.0 + f64::from(node.count_of(service)));
        let label = req
            .spec
            .scheduling
            .spread_by
            .as_deref()
            .unwrap_or(ZONE_LABEL);
        let Some(value) = node.node.labels.get(label) else {
            return node_term;
        };
        let (here, most) = if label == ZONE_LABEL {
            (
                view.service_count_in_zone(service, value),
                view.service_max_in_a_zone(service),
            )
        } else {
            let counts = view.service_counts_by_label(service, label);
            (
                counts.get(value).copied().unwrap_or(0),
                counts.values().copied().max().unwrap_or(0),
            )
        };
        let zone_term = 1.0 - f64::from(here) / (f64::from(most) + 1.0);
        (node_term + zone_term) / 2.0
    }
}

impl Spread {
    /// The scorer.
    pub fn new() -> Self {
        Spread
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Resources;
    use crate::scheduler::filters::test_support::*;

    fn zoned() -> Vec<crate::model::Node> {
        vec![
            node("a1", 1000, 1024)
                .with_label("zone", "a")
                .with_label("rack", "r1"),
            node("a2", 1000, 1024)
                .with_label("zone", "a")
                .with_label("rack", "r2"),
            node("b1", 1000, 1024)
                .with_label("zone", "b")
                .with_label("rack", "r1"),
        ]
    }

    #[test]
    fn fewer_replicas_in_the_zone_scores_higher() {
        let r = Resources::new(10, MIB);
        let tasks = [running("web", "a1", r), running("other", "b1", r)];
        let v = view(zoned(), &tasks);
        let s = spec("web", 10, 1);
        let req = PlacementRequest::new(&s, "t");
        let sc = Spread::new();
        let [a1, a2, b1] = [0, 1, 2].map(|i| sc.score(&req, &v.nodes()[i], &v));
        // a1: node 1/2, zone 1 - 1/2; a2: node 1, zone 1/2; b1: node 1, zone 1.
        assert!((a1 - 0.5).abs() < 1e-9, "{a1}");
        assert!((a2 - 0.75).abs() < 1e-9, "{a2}");
        assert!((b1 - 1.0).abs() < 1e-9, "{b1}");
    }

    #[test]
    fn spread_by_another_label_and_nodes_without_it() {
        let r = Resources::new(10, MIB);
        let tasks = [running("web", "a1", r)];
        let mut nodes = zoned();
        nodes.push(node("bare", 1000, 1024));
        let v = view(nodes, &tasks);
        let mut s = spec("web", 10, 1);
        s.scheduling.spread_by = Some("rack".into());
        let req = PlacementRequest::new(&s, "t");
        let sc = Spread::new();
        // b1 shares rack r1 with a1; a2 is in the empty rack r2.
        assert!(sc.score(&req, &v.nodes()[1], &v) > sc.score(&req, &v.nodes()[2], &v));
        assert_eq!(sc.score(&req, &v.nodes()[3], &v), 1.0);
    }

    #[test]
    fn release_lowers_the_zone_count() {
        let r = Resources::new(10, MIB);
        let mut v = view(zoned(), &[]);
        v.assign("a1", "web", r);
        assert_eq!(v.service_count_in_zone("web", "a"), 1);
        v.release("a1", "web", r);
        assert_eq!(v.service_count_in_zone("web", "a"), 0);
        assert_eq!(v.service_max_in_a_zone("web"), 0);
    }
}
