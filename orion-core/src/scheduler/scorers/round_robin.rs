//! `round_robin`: alternate between nodes.

use crate::scheduler::{ClusterView, NodeView, PlacementRequest, Scorer};

/// The scorer's name.
pub const NAME: &str = "round_robin";

/// Prefers the node right after the last one placed on (in [`ClusterView::nodes`] order,
/// wrapping), then the one after it, and so on: with `n` nodes and the preferred node at
/// position `p`, a node at position `i` scores `1 - ((i - p) mod n) / n`.
///
/// The preferred node is the one after [`ClusterView::last_assigned`]; in a fresh view (no
/// assignment yet) it is node `total_tasks mod n`, so a new pass carries on the rotation of the
/// tasks already placed. Deterministic from the view alone. Best with [`super::super::Sample::All`]
/// (or a cluster below the full-scan threshold): sampling may skip the preferred node.
#[derive(Debug, Clone, Copy, Default)]
pub struct RoundRobin;

impl Scorer for RoundRobin {
    fn name(&self) -> &'static str {
        NAME
    }

    fn score(&self, _req: &PlacementRequest<'_>, node: &NodeView, view: &ClusterView) -> f64 {
        let n = view.nodes().len();
        let Some(i) = view.index_of(node) else {
            return 0.0;
        };
        let preferred = match view.last_assigned() {
            Some(last) => (last + 1) % n,
            None => (view.total_tasks() % n as u64) as usize,
        };
        let distance = (i + n - preferred) % n;
        1.0 - distance as f64 / n as f64
    }
}

impl RoundRobin {
    /// The scorer.
    pub fn new() -> Self {
        RoundRobin
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Resources;
    use crate::scheduler::filters::test_support::*;

    fn best(v: &ClusterView, req: &PlacementRequest<'_>) -> String {
        let sc = RoundRobin::new();
        v.nodes()
            .iter()
            .max_by(|a, b| sc.score(req, a, v).total_cmp(&sc.score(req, b, v)))
            .map(|n| n.id().to_owned())
            .unwrap()
    }

    #[test]
    fn cycles_through_the_nodes_in_order() {
        let mut v = view(
            vec![
                node("a", 1000, 1024),
                node("b", 1000, 1024),
                node("c", 1000, 1024),
            ],
            &[],
        );
        let s = spec("web", 10, 16);
        let req = PlacementRequest::new(&s, "t");
        let mut seen = Vec::new();
        for _ in 0..4 {
            let n = best(&v, &req);
            v.assign(&n, "web", Resources::new(10, 16 * MIB));
            seen.push(n);
        }
        assert_eq!(seen, ["a", "b", "c", "a"]);
    }

    #[test]
    fn index_of_finds_borrowed_and_foreign_nodes() {
        let v = view(vec![node("a", 1000, 1024), node("b", 1000, 1024)], &[]);
        assert_eq!(v.index_of(&v.nodes()[1]), Some(1));
        let copy = v.nodes()[1].clone();
        assert_eq!(v.index_of(&copy), Some(1));
        let other = view(vec![node("z", 1, 1)], &[]);
        assert_eq!(v.index_of(&other.nodes()[0]), None);
    }

    #[test]
    fn a_new_view_continues_after_existing_tasks() {
        let tasks = [running("web", "a", Resources::new(10, MIB))];
        let v = view(vec![node("a", 1000, 1024), node("b", 1000, 1024)], &tasks);
        let s = spec("web", 10, 16);
        assert_eq!(best(&v, &PlacementRequest::new(&s, "t")), "b");
    }
}
