//! The scheduling pipeline: filters, then weighted scorers, then a seeded selection.
//!
//! [`Scheduler::place`] visits nodes starting at a seeded offset (derived from
//! [`SchedulerConfig::seed`] and the task id), drops infeasible ones with the filters, scores the
//! feasible ones, stops once [`SchedulerConfig::sample`] says it has seen enough feasible
//! candidates, and picks the best weighted total, breaking exact ties with seeded keys.

use serde::{Deserialize, Serialize};

use super::builder::Catalog;
use super::rng::SplitMix64;
use super::{
    ClusterView, Filter, PlacementRequest, Rejection, Scorer, ScorerWeightClass, filters, scorers,
};
use crate::error::{Result, ValidationErrors};
use crate::model::NodeId;
use crate::model::spec::ScoringWeights;

/// How many feasible nodes [`Scheduler::place`] scores before choosing (Nomad-style sampling).
///
/// Nodes are visited from a seeded random offset in view order, wrapping around; the visit
/// stops once this many feasible candidates were found, or when every node was visited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sample {
    /// Score every feasible node: the best possible choice, O(nodes) per placement.
    All,
    /// Stop after `n` feasible nodes (at least 1).
    Fixed(usize),
    /// Stop after `max(2, ceil(log2 n))` feasible nodes for `n` nodes: 13 at 5,000 nodes.
    #[default]
    Log2,
}

impl Sample {
    /// The number of feasible candidates to find among `nodes` nodes (never 0 unless `nodes` is).
    pub fn limit(self, nodes: usize) -> usize {
        let limit = match self {
            Sample::All => nodes,
            Sample::Fixed(n) => n.max(1),
            Sample::Log2 => (usize::BITS - nodes.saturating_sub(1).leading_zeros()).max(2) as usize,
        };
        limit.min(nodes)
    }
}

/// Settings of a [`Scheduler`]. `Deserialize` with defaults for absent fields, so a config file
/// sets only what it changes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SchedulerConfig {
    /// Seed for tie-breaking and sampling; the same seed gives the same placements.
    pub seed: u64,
    /// Sampling of candidates; applies only to views with more than `full_scan_up_to` nodes.
    pub sample: Sample,
    /// Views with at most this many nodes are always scanned in full (default 128), so small
    /// clusters get the best placement and sampling only kicks in where it pays.
    pub full_scan_up_to: usize,
    /// The cluster's `a`, `b`, `c` of `score = a*cpu + b*memory + c*network` (default
    /// 0.3/0.3/0.4). The presets weight their cpu, memory and network scorers with them; a
    /// spec's `scheduling.weights` overrides them for that service.
    pub weights: ScoringWeights,
    /// Weight of the spread scorer in [`Scheduler::default_pipeline`] (default 0.3).
    pub spread_weight: f64,
    /// Weight of the zone affinity scorer (preferred zones) in
    /// [`Scheduler::default_pipeline`] (default 0.3).
    pub affinity_weight: f64,
    /// How many of the best candidates a [`Placement`] keeps for explanation (default 10).
    pub explain_top: usize,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        SchedulerConfig {
            seed: 0,
            sample: Sample::Log2,
            full_scan_up_to: 128,
            weights: ScoringWeights::default(),
            spread_weight: 0.3,
            affinity_weight: 0.3,
            explain_top: 10,
        }
    }
}

impl SchedulerConfig {
    /// The default settings with `seed`.
    pub fn with_seed(seed: u64) -> Self {
        SchedulerConfig {
            seed,
            ..Self::default()
        }
    }

    /// Checks that every weight is finite and not negative, reporting all problems.
    pub fn validate(&self) -> std::result::Result<(), ValidationErrors> {
        let mut errs = ValidationErrors::default();
        let w = &self.weights;
        for (path, v) in [
            ("scheduler.weights.cpu", w.cpu),
            ("scheduler.weights.memory", w.memory),
            ("scheduler.weights.network", w.network),
            ("scheduler.spread_weight", self.spread_weight),
            ("scheduler.affinity_weight", self.affinity_weight),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                errs.push(path, v, "a finite weight >= 0");
            }
        }
        if let Sample::Fixed(0) = self.sample {
            errs.push("scheduler.sample.fixed", 0, "at least 1 candidate");
        }
        errs.into_result()
    }

    /// The number of feasible candidates to look for among `nodes` nodes.
    pub fn sample_limit(&self, nodes: usize) -> usize {
        if nodes <= self.full_scan_up_to {
            nodes
        } else {
            self.sample.limit(nodes)
        }
    }
}

/// One node's scores, kept so a placement can be explained.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeScore {
    pub node: NodeId,
    /// Weighted sum of the scorers.
    pub total: f64,
    /// Each scorer's raw score in `[0, 1]`, by scorer name, in pipeline order.
    pub by_scorer: Vec<(&'static str, f64)>,
}

/// A successful placement.
#[derive(Debug, Clone, PartialEq)]
pub struct Placement {
    pub node: NodeId,
    /// The best scored candidates (at most [`SchedulerConfig::explain_top`], at least the
    /// winner), best first; `candidates[0].node == node`.
    pub candidates: Vec<NodeScore>,
    /// The weight each scorer had for this request (after the spec's overrides), in pipeline
    /// order.
    pub weights: Vec<(&'static str, f64)>,
    /// Nodes visited (filtered or scored).
    pub visited: usize,
    /// Nodes in the view.
    pub nodes: usize,
    /// Feasible nodes scored (`visited` minus the filtered ones).
    pub feasible: usize,
    /// Visited nodes each filter turned down, for filters that turned any down.
    pub filtered: Vec<(&'static str, u32)>,
}

/// What [`Scheduler::place`] decided.
#[derive(Debug, Clone, PartialEq)]
pub enum PlacementOutcome {
    Placed(Placement),
    /// No node is feasible; each rejected node with why, in view order. See
    /// [`PlacementOutcome::summary`] for a grouped, human form.
    Unplaceable {
        rejections: Vec<(NodeId, Rejection)>,
    },
}

/// A scorer with its pipeline weight.
#[derive(Debug)]
struct WeightedScorer {
    scorer: Box<dyn Scorer>,
    weight: f64,
    class: ScorerWeightClass,
    why: &'static str,
}

/// A feasible node on the hot path: no allocation, scores live in a shared flat buffer.
#[derive(Debug, Clone, Copy)]
struct Candidate {
    /// Position in `ClusterView::nodes`.
    index: usize,
    /// Position in the scan (its scores are `scores[pos * k..(pos + 1) * k]`).
    pos: usize,
    total: f64,
    tie: u64,
}

/// Filters, then weighted scorers, then selection. Built by [`Scheduler::new`] (presets:
/// [`Scheduler::default_pipeline`], [`Scheduler::with_scorer`], [`Scheduler::from_names`]).
#[derive(Debug)]
pub struct Scheduler {
    filters: Vec<Box<dyn Filter>>,
    scorers: Vec<WeightedScorer>,
    config: SchedulerConfig,
    /// Why each filter is there (same order; empty strings when built without reasons).
    filter_why: Vec<&'static str>,
    /// Applied to the nodes before a placement pass ([`Scheduler::annotated_nodes`]).
    annotators: Vec<std::sync::Arc<dyn super::NodeAnnotator>>,
}

fn sanitize(weight: f64) -> f64 {
    if weight.is_finite() && weight > 0.0 {
        weight
    } else {
        0.0
    }
}

impl Scheduler {
    /// The one constructor: the pipeline's filters (run in order, the first rejection wins),
    /// its scorers with their weights, and settings. A weight that is negative or not finite
    /// counts as 0 (see [`SchedulerConfig::validate`] to report it instead).
    pub fn new(
        filters: Vec<Box<dyn Filter>>,
        scorers: Vec<(Box<dyn Scorer>, f64)>,
        config: SchedulerConfig,
    ) -> Self {
        // Built-in stages explain themselves; others get a reason through the builder.
        let builtin = Catalog::builtin();
        let scorers = scorers
            .into_iter()
            .map(|(scorer, weight)| WeightedScorer {
                class: scorer.weight_class(),
                why: builtin.scorer_why(scorer.name()).unwrap_or(""),
                scorer,
                weight: sanitize(weight),
            })
            .collect();
        Scheduler {
            filter_why: filters
                .iter()
                .map(|f| builtin.filter_why(f.name()).unwrap_or(""))
                .collect(),
            filters,
            scorers,
            config,
            annotators: Vec::new(),
        }
    }

    /// Adds a node annotator, unless one with the same name is there already.
    pub fn with_annotator(mut self, annotator: std::sync::Arc<dyn super::NodeAnnotator>) -> Self {
        if self.annotators.iter().all(|a| a.name() != annotator.name()) {
            self.annotators.push(annotator);
        }
        self
    }

    /// The names of the node annotators.
    pub fn annotator_names(&self) -> Vec<&'static str> {
        self.annotators.iter().map(|a| a.name()).collect()
    }

    /// `nodes` with the labels the annotators add (borrowed as is when they add none): what a
    /// placement pass should build its [`ClusterView`] from.
    pub fn annotated_nodes<'n>(
        &self,
        nodes: &'n [crate::model::Node],
        network: &crate::model::NetworkMatrix,
        now: crate::model::Millis,
    ) -> std::borrow::Cow<'n, [crate::model::Node]> {
        let mut out = std::borrow::Cow::Borrowed(nodes);
        for a in &self.annotators {
            let labels = a.annotate(&out, network, now);
            if labels.is_empty() {
                continue;
            }
            let by_id: std::collections::HashMap<&str, usize> = out
                .iter()
                .enumerate()
                .map(|(i, n)| (n.id.as_str(), i))
                .collect();
            let mut updates: Vec<(usize, String, String)> = Vec::new();
            for (id, k, v) in labels {
                if let Some(&i) = by_id.get(id.as_str()) {
                    updates.push((i, k, v));
                }
            }
            let owned = out.to_mut();
            for (i, k, v) in updates {
                owned[i].labels.entry(k).or_insert(v);
            }
        }
        out
    }

    /// Sets why each stage is there (see [`Scheduler::builder`]); lists shorter than the
    /// pipeline leave the rest empty.
    pub(crate) fn with_reasons(
        mut self,
        filter_why: Vec<&'static str>,
        scorer_why: Vec<&'static str>,
    ) -> Self {
        for (slot, why) in self.filter_why.iter_mut().zip(filter_why) {
            if !why.is_empty() {
                *slot = why;
            }
        }
        for (s, why) in self.scorers.iter_mut().zip(scorer_why) {
            if !why.is_empty() {
                s.why = why;
            }
        }
        self
    }

    /// `(name, why)` of each filter and `(name, weight, why)` of each scorer.
    #[allow(clippy::type_complexity)]
    pub(crate) fn stage_parts(
        &self,
    ) -> (
        Vec<(&'static str, &'static str)>,
        Vec<(&'static str, f64, &'static str)>,
    ) {
        (
            self.filters
                .iter()
                .zip(&self.filter_why)
                .map(|(f, why)| (f.name(), *why))
                .collect(),
            self.scorers
                .iter()
                .map(|s| (s.scorer.name(), s.weight, s.why))
                .collect(),
        )
    }

    /// The default scorers and their weights: `least_allocated_cpu` (weight `weights.cpu`),
    /// `least_allocated_memory` (`weights.memory`), `spread` (`spread_weight`) and
    /// `zone_affinity` (`affinity_weight`; neutral for specs without preferred zones).
    pub fn default_scorers(config: &SchedulerConfig) -> Vec<(Box<dyn Scorer>, f64)> {
        vec![
            (
                Box::new(scorers::LeastAllocated::cpu()) as Box<dyn Scorer>,
                config.weights.cpu,
            ),
            (
                Box::new(scorers::LeastAllocated::memory()),
                config.weights.memory,
            ),
            (Box::new(scorers::Spread::new()), config.spread_weight),
            (
                Box::new(scorers::ZoneAffinity::new()),
                config.affinity_weight,
            ),
        ]
    }

    /// The default pipeline: [`filters::standard`] and [`Scheduler::default_scorers`].
    /// Sampling follows `config` (by default: full scan up to 128 nodes, `Log2` above).
    pub fn default_pipeline(config: SchedulerConfig) -> Self {
        Self::default_pipeline_with(config, Vec::new())
    }

    /// The default pipeline plus `extra` weighted scorers, e.g. a network scorer of class
    /// [`ScorerWeightClass::Network`] weighted with `config.weights.network`.
    pub fn default_pipeline_with(
        config: SchedulerConfig,
        extra: Vec<(Box<dyn Scorer>, f64)>,
    ) -> Self {
        let mut scorers = Self::default_scorers(&config);
        scorers.extend(extra);
        Self::new(filters::standard(), scorers, config)
    }

    /// The standard filters and the one scorer named `name` (see [`scorers::by_name`]) with
    /// weight 1. Unknown names are an [`crate::Error::Invalid`] listing the known ones.
    pub fn with_scorer(name: &str, config: SchedulerConfig) -> Result<Self> {
        Ok(Self::new(
            filters::standard(),
            vec![(scorers::by_name(name)?, 1.0)],
            config,
        ))
    }

    /// A pipeline from a config file's names, with orion-core's [`Catalog::builtin`]. Reports
    /// every unknown name and bad weight at once. Other crates' stages: build your own
    /// [`Catalog`].
    pub fn from_names(
        filter_names: &[&str],
        scorer_names: &[(&str, f64)],
        config: SchedulerConfig,
    ) -> Result<Self> {
        Catalog::builtin().build(filter_names, scorer_names, config)
    }

    /// The settings.
    pub fn config(&self) -> &SchedulerConfig {
        &self.config
    }

    /// Filter names, in pipeline order.
    pub fn filter_names(&self) -> Vec<&'static str> {
        self.filters.iter().map(|f| f.name()).collect()
    }

    /// Scorer names with their pipeline weights, in pipeline order.
    pub fn scorer_weights(&self) -> Vec<(&'static str, f64)> {
        self.scorers
            .iter()
            .map(|s| (s.scorer.name(), s.weight))
            .collect()
    }

    /// The weight of each scorer for `req`: the pipeline weight, replaced by the spec's
    /// `scheduling.weights` for scorers of class cpu, memory or network.
    pub fn weights_for(&self, req: &PlacementRequest<'_>) -> Vec<(&'static str, f64)> {
        self.scorers
            .iter()
            .map(|s| (s.scorer.name(), self.weight_of(s, req)))
            .collect()
    }

    fn weight_of(&self, s: &WeightedScorer, req: &PlacementRequest<'_>) -> f64 {
        match (req.spec.scheduling.weights, s.class) {
            (Some(w), ScorerWeightClass::Cpu) => sanitize(w.cpu),
            (Some(w), ScorerWeightClass::Memory) => sanitize(w.memory),
            (Some(w), ScorerWeightClass::Network) => sanitize(w.network),
            _ => s.weight,
        }
    }

    /// Why the pipeline's filters turn `node` down for `req` (the first filter that does), or
    /// `Ok` when every filter accepts it; `Ok` also when `node` is not in `view`. For
    /// explanations: [`Scheduler::place`] gives the same verdicts.
    pub fn check(
        &self,
        req: &PlacementRequest<'_>,
        node: &str,
        view: &ClusterView,
    ) -> Result<(), Rejection> {
        let Some(nv) = view.node(node) else {
            return Ok(());
        };
        self.filters.iter().try_for_each(|f| f.check(req, nv, view))
    }

    /// Whether a task of `req` running on `node` should move: the first filter whose
    /// [`Filter::recheck`] rejects the node past `tolerance`, or `Ok` to keep it there (also when
    /// `node` is not in `view`: the reconciler handles tasks on unknown nodes).
    pub fn recheck(
        &self,
        req: &PlacementRequest<'_>,
        node: &str,
        view: &ClusterView,
        tolerance: f64,
    ) -> Result<(), Rejection> {
        let Some(nv) = view.node(node) else {
            return Ok(());
        };
        self.filters
            .iter()
            .try_for_each(|f| f.recheck(req, nv, view, tolerance))
    }

    /// Places one task on the best feasible node of `view`. Does not modify the view; call
    /// [`ClusterView::assign`] (or [`ClusterView::assign_request`]) with the result to account
    /// for it.
    ///
    /// Never places on a node that a filter rejects. Deterministic: the same seed, request and
    /// view give the same outcome. `Unplaceable` only after every node was checked.
    pub fn place(&self, req: &PlacementRequest<'_>, view: &ClusterView) -> PlacementOutcome {
        let nodes = view.nodes();
        let n = nodes.len();
        let k = self.scorers.len();
        let weights: Vec<f64> = self
            .scorers
            .iter()
            .map(|s| self.weight_of(s, req))
            .collect();
        let limit = self.config.sample_limit(n);
        let mut rng = SplitMix64::for_task(self.config.seed, req.task_id);
        let offset = rng.below(n);

        let prepared: Vec<Option<super::Prepared>> = self
            .scorers
            .iter()
            .map(|s| s.scorer.prepare(req, view))
            .collect();
        let mut candidates: Vec<Candidate> = Vec::with_capacity(limit);
        let mut scores: Vec<f64> = Vec::with_capacity(limit * k);
        let mut filtered = vec![0u32; self.filters.len()];
        let mut visited = 0;
        while visited < n && candidates.len() < limit {
            let index = (offset + visited) % n;
            visited += 1;
            let nv = &nodes[index];
            if let Some(f) = self.filters.iter().position(|f| !f.feasible(req, nv, view)) {
                filtered[f] += 1;
                continue;
            }
            let mut total = 0.0;
            for ((s, w), p) in self.scorers.iter().zip(&weights).zip(&prepared) {
                let raw = match p {
                    Some(p) => s.scorer.score_prepared(p.as_ref(), req, nv, view),
                    None => s.scorer.score(req, nv, view),
                };
                let score = if raw.is_nan() {
                    0.0
                } else {
                    raw.clamp(0.0, 1.0)
                };
                scores.push(score);
                total += score * w;
            }
            candidates.push(Candidate {
                index,
                pos: candidates.len(),
                total,
                tie: rng.next_u64(),
            });
        }

        if candidates.is_empty() {
            return PlacementOutcome::Unplaceable {
                rejections: self.rejections(req, view),
            };
        }
        let feasible = candidates.len();
        let order =
            |a: &Candidate, b: &Candidate| b.total.total_cmp(&a.total).then(a.tie.cmp(&b.tie));
        let top = self.config.explain_top.max(1).min(feasible);
        if top < feasible {
            candidates.select_nth_unstable_by(top - 1, order);
            candidates.truncate(top);
        }
        candidates.sort_unstable_by(order);
        let ranked: Vec<NodeScore> = candidates
            .iter()
            .map(|c| NodeScore {
                node: nodes[c.index].node.id.clone(),
                total: c.total,
                by_scorer: self
                    .scorers
                    .iter()
                    .map(|s| s.scorer.name())
                    .zip(scores[c.pos * k..(c.pos + 1) * k].iter().copied())
                    .collect(),
            })
            .collect();
        PlacementOutcome::Placed(Placement {
            node: ranked[0].node.clone(),
            candidates: ranked,
            weights: self
                .scorers
                .iter()
                .map(|s| s.scorer.name())
                .zip(weights)
                .collect(),
            visited,
            nodes: n,
            feasible,
            filtered: self
                .filters
                .iter()
                .zip(filtered)
                .filter(|(_, c)| *c > 0)
                .map(|(f, c)| (f.name(), c))
                .collect(),
        })
    }

    /// Every node's first rejection, in view order (the slow path of an unplaceable task).
    fn rejections(
        &self,
        req: &PlacementRequest<'_>,
        view: &ClusterView,
    ) -> Vec<(NodeId, Rejection)> {
        view.nodes()
            .iter()
            .filter_map(|nv| {
                self.filters
                    .iter()
                    .find_map(|f| f.check(req, nv, view).err())
                    .map(|r| (nv.node.id.clone(), r))
            })
            .collect()
    }
}
