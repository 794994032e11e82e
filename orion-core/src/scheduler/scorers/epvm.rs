//! `epvm`: Enhanced Parallel Virtual Machine (after Amir et al.'s E-PVM).

use super::amounts;
use crate::scheduler::{ClusterView, NodeView, PlacementRequest, Scorer};

/// The scorer's name.
pub const NAME: &str = "epvm";

/// Minimises the marginal cost of the placement, where a resource at utilisation `u` costs
/// `a^u`: `cost = sum over cpu and memory of a^u_after - a^u_before`, with `a = 2n` for a view
/// of `n` nodes (at least 2), as in E-PVM. Utilisations are clamped to `[0, 1]` and a
/// resource's cost is at most `a - 1`, so the score is `1 - cost / (2 (a - 1))`, in `[0, 1]`.
///
/// The exponential makes a busy node's next slice of capacity far dearer than an idle node's:
/// E-PVM spreads like least-allocated, but punishes hot spots harder.
#[derive(Debug, Clone, Copy, Default)]
pub struct Epvm {
    base: Option<f64>,
}

impl Scorer for Epvm {
    fn name(&self) -> &'static str {
        NAME
    }

    fn score(&self, req: &PlacementRequest<'_>, node: &NodeView, view: &ClusterView) -> f64 {
        let a = self
            .base
            .unwrap_or_else(|| 2.0 * view.nodes().len() as f64)
            .max(2.0);
        let mut cost = 0.0;
        let mut terms = 0.0;
        for (used, need, cap) in amounts(req, node) {
            if cap <= 0.0 {
                continue;
            }
            let before = (used / cap).clamp(0.0, 1.0);
            let after = ((used + need) / cap).clamp(0.0, 1.0);
            cost += a.powf(after) - a.powf(before);
            terms += 1.0;
        }
        if terms == 0.0 {
            return 0.0;
        }
        1.0 - cost / (terms * (a - 1.0))
    }
}

impl Epvm {
    /// E-PVM with `a = 2n`.
    pub fn new() -> Self {
        Epvm { base: None }
    }

    /// E-PVM with a fixed base `a` (values below 2 count as 2).
    pub fn with_base(a: f64) -> Self {
        Epvm { base: Some(a) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Resources;
    use crate::scheduler::filters::test_support::*;

    #[test]
    fn marginal_cost_follows_the_formula() {
        let tasks = [running("x", "half", Resources::new(2000, 2048 * MIB))];
        let v = view(
            vec![node("idle", 4000, 4096), node("half", 4000, 4096)],
            &tasks,
        );
        let s = spec("web", 1000, 1024);
        let req = PlacementRequest::new(&s, "t");
        let sc = Epvm::new(); // a = 4
        let idle = sc.score(&req, &v.nodes()[0], &v);
        let want_idle = 1.0 - 2.0 * (4f64.powf(0.25) - 1.0) / (2.0 * 3.0);
        assert!((idle - want_idle).abs() < 1e-9, "{idle} vs {want_idle}");
        let half = sc.score(&req, &v.nodes()[1], &v);
        let want_half = 1.0 - 2.0 * (4f64.powf(0.75) - 4f64.powf(0.5)) / (2.0 * 3.0);
        assert!((half - want_half).abs() < 1e-9);
        assert!(idle > half);
    }

    #[test]
    fn prefers_the_less_loaded_node_even_when_the_request_is_the_same_fraction() {
        // Same absolute request; on the bigger node it is a smaller fraction.
        let v = view(
            vec![node("small", 2000, 2048), node("big", 8000, 8192)],
            &[],
        );
        let s = spec("web", 1000, 1024);
        let req = PlacementRequest::new(&s, "t");
        let sc = Epvm::with_base(10.0);
        assert!(sc.score(&req, &v.nodes()[1], &v) > sc.score(&req, &v.nodes()[0], &v));
    }

    #[test]
    fn scores_stay_in_range_when_overcommitted() {
        let tasks = [running("x", "n", Resources::new(5000, 5000 * MIB))];
        let v = view(vec![node("n", 4000, 4096)], &tasks);
        let s = spec("web", 1000, 1024);
        let score = Epvm::new().score(&PlacementRequest::new(&s, "t"), &v.nodes()[0], &v);
        assert!((0.0..=1.0).contains(&score), "{score}");
    }
}
