//! `least_allocated`: prefer the node with the most free cpu and memory after placement.

use super::{ResourceTerms, mean_over};
use crate::scheduler::{ClusterView, NodeView, PlacementRequest, Scorer, ScorerWeightClass};

/// The scorer's name (cpu and memory).
pub const NAME: &str = "least_allocated";
/// Name of the cpu-only term.
pub const NAME_CPU: &str = "least_allocated_cpu";
/// Name of the memory-only term.
pub const NAME_MEMORY: &str = "least_allocated_memory";

/// Kubernetes' `NodeResourcesLeastAllocated` ("least loaded"): per resource,
/// `(capacity - allocated - request) / capacity`, averaged over the selected resources.
/// An empty node scores near 1, a node the task would fill scores 0.
///
/// [`LeastAllocated::cpu`] and [`LeastAllocated::memory`] are the `cpu` and `memory` terms of
/// `score = a*cpu + b*memory + c*network` (weight classes `Cpu` and `Memory`, so a spec's
/// `scheduling.weights` re-weights them).
#[derive(Debug, Clone, Copy)]
pub struct LeastAllocated {
    terms: ResourceTerms,
}

impl Scorer for LeastAllocated {
    fn name(&self) -> &'static str {
        match self.terms {
            ResourceTerms::Cpu => NAME_CPU,
            ResourceTerms::Memory => NAME_MEMORY,
            ResourceTerms::CpuAndMemory => NAME,
        }
    }

    fn score(&self, req: &PlacementRequest<'_>, node: &NodeView, _view: &ClusterView) -> f64 {
        mean_over(self.terms, req, node, |used, need, cap| {
            ((cap - used - need) / cap).clamp(0.0, 1.0)
        })
    }

    fn weight_class(&self) -> ScorerWeightClass {
        match self.terms {
            ResourceTerms::Cpu => ScorerWeightClass::Cpu,
            ResourceTerms::Memory => ScorerWeightClass::Memory,
            ResourceTerms::CpuAndMemory => ScorerWeightClass::Fixed,
        }
    }
}

impl LeastAllocated {
    /// Cpu and memory, averaged.
    pub fn new() -> Self {
        Self::with_terms(ResourceTerms::CpuAndMemory)
    }

    /// The cpu term only.
    pub fn cpu() -> Self {
        Self::with_terms(ResourceTerms::Cpu)
    }

    /// The memory term only.
    pub fn memory() -> Self {
        Self::with_terms(ResourceTerms::Memory)
    }

    /// Any selection of resources.
    pub fn with_terms(terms: ResourceTerms) -> Self {
        LeastAllocated { terms }
    }
}

impl Default for LeastAllocated {
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
    fn more_free_after_placement_scores_higher() {
        let tasks = [running("x", "busy", Resources::new(2000, 2048 * MIB))];
        let v = view(
            vec![node("idle", 4000, 4096), node("busy", 4000, 4096)],
            &tasks,
        );
        let s = spec("web", 1000, 1024);
        let req = PlacementRequest::new(&s, "t");
        let sc = LeastAllocated::new();
        let idle = sc.score(&req, &v.nodes()[0], &v);
        let busy = sc.score(&req, &v.nodes()[1], &v);
        assert!((idle - 0.75).abs() < 1e-9, "{idle}");
        assert!((busy - 0.25).abs() < 1e-9, "{busy}");
    }

    #[test]
    fn cpu_and_memory_terms_are_separate_and_classed() {
        let tasks = [running("x", "n", Resources::new(0, 3072 * MIB))];
        let v = view(vec![node("n", 4000, 4096)], &tasks);
        let s = spec("web", 1000, 1024);
        let req = PlacementRequest::new(&s, "t");
        assert!((LeastAllocated::cpu().score(&req, &v.nodes()[0], &v) - 0.75).abs() < 1e-9);
        assert_eq!(LeastAllocated::memory().score(&req, &v.nodes()[0], &v), 0.0);
        assert_eq!(LeastAllocated::cpu().weight_class(), ScorerWeightClass::Cpu);
        assert_eq!(
            LeastAllocated::memory().weight_class(),
            ScorerWeightClass::Memory
        );
        assert_eq!(
            LeastAllocated::new().weight_class(),
            ScorerWeightClass::Fixed
        );
    }

    #[test]
    fn zero_capacity_never_divides_by_zero() {
        let v = view(vec![node("n", 0, 0)], &[]);
        let s = spec("web", 0, 0);
        let score = LeastAllocated::new().score(&PlacementRequest::new(&s, "t"), &v.nodes()[0], &v);
        assert_eq!(score, 0.0);
    }
}
