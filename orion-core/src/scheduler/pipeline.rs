//! The scheduling pipeline. (Skeleton: the scheduler work adds weights from config, sampling,
//! seeded tie-breaking and the built-in filters and scorers.)

use super::{ClusterView, Filter, PlacementRequest, Rejection, Scorer};
use crate::model::NodeId;

/// Settings of a [`Scheduler`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SchedulerConfig {
    /// Seed for tie-breaking and sampling; the same seed gives the same placements.
    pub seed: u64,
}

/// One node's scores, kept so a placement can be explained.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeScore {
    pub node: NodeId,
    /// Weighted sum of the scorers.
    pub total: f64,
    /// Each scorer's raw score in `[0, 1]`, by scorer name.
    pub by_scorer: Vec<(&'static str, f64)>,
}

/// A successful placement.
#[derive(Debug, Clone, PartialEq)]
pub struct Placement {
    pub node: NodeId,
    /// Every scored candidate, best first.
    pub candidates: Vec<NodeScore>,
}

/// What [`Scheduler::place`] decided.
#[derive(Debug, Clone, PartialEq)]
pub enum PlacementOutcome {
    Placed(Placement),
    /// No node is feasible; each rejected node with why.
    Unplaceable {
        rejections: Vec<(NodeId, Rejection)>,
    },
}

/// Filters, then weighted scorers, then selection.
#[derive(Debug)]
pub struct Scheduler {
    filters: Vec<Box<dyn Filter>>,
    scorers: Vec<(Box<dyn Scorer>, f64)>,
    config: SchedulerConfig,
}

impl Scheduler {
    /// The one constructor: the pipeline's filters, its scorers with their weights, and settings.
    pub fn new(
        filters: Vec<Box<dyn Filter>>,
        scorers: Vec<(Box<dyn Scorer>, f64)>,
        config: SchedulerConfig,
    ) -> Self {
        Scheduler {
            filters,
            scorers,
            config,
        }
    }

    /// Places one task on the best feasible node of `view`. Does not modify the view; call
    /// [`ClusterView::assign`] with the result to account for it.
    pub fn place(&self, req: &PlacementRequest<'_>, view: &ClusterView) -> PlacementOutcome {
        let _ = self.config.seed;
        let mut rejections = Vec::new();
        let mut candidates = Vec::new();
        'nodes: for nv in view.nodes() {
            for f in &self.filters {
                if let Err(r) = f.check(req, nv, view) {
                    rejections.push((nv.node.id.clone(), r));
                    continue 'nodes;
                }
            }
            let by_scorer: Vec<_> = self
                .scorers
                .iter()
                .map(|(s, _)| (s.name(), s.score(req, nv, view).clamp(0.0, 1.0)))
                .collect();
            let total = by_scorer
                .iter()
                .zip(&self.scorers)
                .map(|((_, s), (_, w))| s * w)
                .sum();
            candidates.push(NodeScore {
                node: nv.node.id.clone(),
                total,
                by_scorer,
            });
        }
        candidates.sort_by(|a, b| b.total.total_cmp(&a.total));
        match candidates.first() {
            Some(best) => PlacementOutcome::Placed(Placement {
                node: best.node.clone(),
                candidates,
            }),
            None => PlacementOutcome::Unplaceable { rejections },
        }
    }
}
