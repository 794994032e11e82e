//! `most_allocated`: bin-packing, prefer the fullest node that still fits.

use super::{ResourceTerms, mean_over};
use crate::scheduler::{ClusterView, NodeView, PlacementRequest, Scorer};

/// The scorer's name.
pub const NAME: &str = "most_allocated";

/// Kubernetes' `NodeResourcesMostAllocated`: per resource `(allocated + request) / capacity`,
/// averaged over cpu and memory. Packs tasks onto few nodes and leaves others empty.
#[derive(Debug, Clone, Copy)]
pub struct MostAllocated {
    terms: ResourceTerms,
}

impl Scorer for MostAllocated {
    fn name(&self) -> &'static str {
        NAME
    }

    fn score(&self, req: &PlacementRequest<'_>, node: &NodeView, _view: &ClusterView) -> f64 {
        mean_over(self.terms, req, node, |used, need, cap| {
            ((used + need) / cap).clamp(0.0, 1.0)
        })
    }
}

impl MostAllocated {
    /// Cpu and memory, averaged.
    pub fn new() -> Self {
        MostAllocated {
            terms: ResourceTerms::CpuAndMemory,
        }
    }
}

impl Default for MostAllocated {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Resources;
    use crate::scheduler::filters::test_support::*;

    #[test]
    fn fuller_nodes_score_higher() {
        let tasks = [running("x", "busy", Resources::new(2000, 2048 * MIB))];
        let v = view(
            vec![node("idle", 4000, 4096), node("busy", 4000, 4096)],
            &tasks,
        );
        let s = spec("web", 1000, 1024);
        let req = PlacementRequest::new(&s, "t");
        let sc = MostAllocated::new();
        assert!((sc.score(&req, &v.nodes()[0], &v) - 0.25).abs() < 1e-9);
        assert!((sc.score(&req, &v.nodes()[1], &v) - 0.75).abs() < 1e-9);
    }
}
