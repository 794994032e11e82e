//! Placement: which node runs a task.
//!
//! One pipeline, built by [`Scheduler::new`]: **filters** drop nodes that cannot take the task
//! (each with a [`Rejection`] reason — rejection is not an error), **scorers** rate the rest in
//! `[0, 1]`, the weighted sum ranks them, and the best one wins (ties broken by a seeded RNG, so a
//! placement is deterministic for a given seed). Every node's per-scorer scores are kept in the
//! [`Placement`] so `orion plan` can explain a decision.
//!
//! Filters and scorers are synchronous functions over an immutable [`ClusterView`] snapshot.
//! Write your own by implementing [`Filter`] or [`Scorer`]; `docs/scheduling.md` describes every
//! built-in plugin and its formula.
//!
//! ```
//! use orion_core::model::{NetworkMatrix, Node, Resources, ServiceSpec};
//! use orion_core::scheduler::{ClusterView, PlacementRequest, Scheduler, SchedulerConfig};
//!
//! let gib = 1024 * 1024 * 1024;
//! let nodes = vec![
//!     Node::new("small", Resources::new(2000, 2 * gib)).with_label("zone", "a"),
//!     Node::new("large", Resources::new(8000, 16 * gib)).with_label("zone", "b"),
//! ];
//! let mut view = ClusterView::new(nodes, &[], NetworkMatrix::new());
//! let scheduler = Scheduler::default_pipeline(SchedulerConfig::with_seed(42));
//! let spec = ServiceSpec::new("web", "nginx", 2);
//! for id in ["web-0-a", "web-1-b"] {
//!     let req = PlacementRequest::new(&spec, id);
//!     let outcome = scheduler.place(&req, &view);
//!     let placement = outcome.placement().expect("both nodes fit");
//!     println!("{}", placement.explain());
//!     view.assign_request(&placement.node, &req);
//! }
//! // Spread sends the second replica to the other zone.
//! assert_eq!(view.service_nodes("web").count(), 2);
//! ```

use std::collections::HashMap;
use std::fmt::Debug;

use crate::model::spec::ServiceSpec;
use crate::model::{NetworkMatrix, Node, NodeId, Resources, Task};

mod builder;
mod explain;
mod links;
mod pipeline;
mod rejection;
mod rng;
mod view;

pub mod filters;
pub mod scorers;

pub use builder::{Catalog, FilterCtor, SchedulerBuilder, ScorerCtor, Stage, StageKind};
pub use explain::{FilterRejections, RejectionSummary};
pub use links::Link;
pub use pipeline::{NodeScore, Placement, PlacementOutcome, Sample, Scheduler, SchedulerConfig};
pub use rejection::{Rejection, reasons};
pub use view::{ClusterView, NodeView};

/// What is being placed: one task of `spec`.
#[derive(Debug, Clone, Copy)]
pub struct PlacementRequest<'a> {
    pub spec: &'a ServiceSpec,
    /// The task's id (for logs and deterministic tie-breaking).
    pub task_id: &'a str,
    /// The task's request; usually `spec.resources`.
    pub resources: Resources,
}

impl<'a> PlacementRequest<'a> {
    /// A request for one task of `spec` with the spec's resources.
    pub fn new(spec: &'a ServiceSpec, task_id: &'a str) -> Self {
        PlacementRequest {
            spec,
            task_id,
            resources: spec.resources.into(),
        }
    }
}

/// A hard constraint: can this node take this task at all?
///
/// Contract: pure and cheap (it runs for every candidate node); never panics; the same inputs
/// always give the same answer.
pub trait Filter: Send + Sync + Debug {
    /// A stable name, used in explanations and config.
    fn name(&self) -> &'static str;

    /// `Ok(())` if the node is feasible, or why not.
    fn check(
        &self,
        req: &PlacementRequest<'_>,
        node: &NodeView,
        view: &ClusterView,
    ) -> Result<(), Rejection>;

    /// Same answer as `check(..).is_ok()`, without building a [`Rejection`]. The pipeline calls
    /// this on its hot path and calls [`Filter::check`] only to explain an unplaceable task;
    /// override it when building the reason allocates.
    fn feasible(&self, req: &PlacementRequest<'_>, node: &NodeView, view: &ClusterView) -> bool {
        self.check(req, node, view).is_ok()
    }

    /// Should a task already running on `node` move off it? `Err` (why) when the node now
    /// breaks this filter's rule by more than `tolerance`, a fraction of the rule's bound (`0.2`:
    /// a `max_latency_ms: 5` rule moves tasks only past 6 ms, while new placements still need
    /// 5 ms). The band between the two is the hysteresis that keeps a task from moving back and
    /// forth around a bound.
    ///
    /// Contract: only for rules whose verdict can change while a task runs and that warrant a
    /// move (measured network quality, for example); the default keeps every task. With any
    /// `tolerance >= 0`, a node that [`Filter::check`] accepts is never rejected here. `view`
    /// counts the task itself on `node`. Never rejects for lack of data (an unmeasured link is
    /// not a degraded one).
    fn recheck(
        &self,
        _req: &PlacementRequest<'_>,
        _node: &NodeView,
        _view: &ClusterView,
        _tolerance: f64,
    ) -> Result<(), Rejection> {
        Ok(())
    }
}

/// Fills in labels a node's record lacks but the pipeline uses, before a placement pass: for
/// example the `zone` of a node without a `zone` label, from measured latency (orion-netscore's
/// `LatencyZones`). [`Scheduler::annotated_nodes`] applies a pipeline's annotators.
///
/// Contract: deterministic in `(nodes, network, now)`; only adds labels a node does not have
/// (a label set by the operator always wins); cheap enough per reconcile round (cache inside
/// when the work is large; `now` is the round's clock for that).
pub trait NodeAnnotator: Send + Sync + Debug {
    /// A stable name, used in explanations.
    fn name(&self) -> &'static str;

    /// `(node id, label key, value)` to add.
    fn annotate(
        &self,
        nodes: &[Node],
        network: &NetworkMatrix,
        now: crate::model::Millis,
    ) -> Vec<(NodeId, String, String)>;
}

/// Which term of the score formula `score = cpu*S_cpu + memory*S_mem + network*S_net` a scorer
/// is. A service's `scheduling.weights` replaces the pipeline weight of every scorer of class
/// `Cpu`, `Memory` or `Network` with its `cpu`, `memory` or `network` weight; `Fixed` scorers
/// always keep the weight they were built with.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum ScorerWeightClass {
    /// A CPU term (e.g. `least_allocated_cpu`).
    Cpu,
    /// A memory term (e.g. `least_allocated_memory`).
    Memory,
    /// A network term (the network scorers of `orion-netscore`).
    Network,
    /// Not part of the formula: weighted only by the pipeline (spread, bin-packing, ...).
    #[default]
    Fixed,
}

/// A preference: how good is this feasible node for this task?
///
/// Contract: pure and cheap; returns a score in `[0.0, 1.0]` where higher is better (values
/// outside are clamped by the pipeline); never panics; deterministic for the same inputs.
pub trait Scorer: Send + Sync + Debug {
    /// A stable name, used in explanations and config (`least_allocated`, `spread`, ...).
    fn name(&self) -> &'static str;

    /// The node's score for this task.
    fn score(&self, req: &PlacementRequest<'_>, node: &NodeView, view: &ClusterView) -> f64;

    /// Which weight of a spec's `scheduling.weights` applies to this scorer;
    /// [`ScorerWeightClass::Fixed`] (the default) when none does.
    fn weight_class(&self) -> ScorerWeightClass {
        ScorerWeightClass::Fixed
    }

    /// Work done once per placement, before the candidates are scored (Kubernetes' PreScore):
    /// the pipeline then calls [`Scorer::score_prepared`] with it for every candidate. `None`
    /// (the default) means [`Scorer::score`] is called instead.
    fn prepare(&self, _req: &PlacementRequest<'_>, _view: &ClusterView) -> Option<Prepared> {
        None
    }

    /// The score given what [`Scorer::prepare`] returned for the same request and view.
    /// Contract: the same value as [`Scorer::score`]. The default calls it.
    fn score_prepared(
        &self,
        _prepared: &(dyn std::any::Any + Send + Sync),
        req: &PlacementRequest<'_>,
        node: &NodeView,
        view: &ClusterView,
    ) -> f64 {
        self.score(req, node, view)
    }
}

/// What [`Scorer::prepare`] returns.
pub type Prepared = Box<dyn std::any::Any + Send + Sync>;

/// Builds a [`ClusterView`] from the store's current objects; a convenience over
/// [`ClusterView::new`].
pub fn snapshot(nodes: &[Node], tasks: &[Task], network: &NetworkMatrix) -> ClusterView {
    ClusterView::new(nodes.to_vec(), tasks, network.clone())
}

/// Counts of a service's active tasks per node id; used by spread and per-node limits.
pub type ServiceCounts = HashMap<NodeId, u32>;

#[cfg(test)]
mod tests;

/// `docs/scheduling.md`, compiled so that its examples are tested.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/scheduling.md")]
pub struct SchedulingGuide;
