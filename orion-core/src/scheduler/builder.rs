//! Building a pipeline: [`SchedulerBuilder`] (stage by stage, each with a one-line "why") and
//! [`Catalog`] (by names, from a config file).

use std::fmt::Write as _;

use super::pipeline::{Scheduler, SchedulerConfig};
use super::{Filter, Scorer, filters, scorers};
use crate::error::{Result, ValidationErrors};

/// What a pipeline stage is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StageKind {
    /// A hard constraint: drops nodes.
    Filter,
    /// A weighted preference among the nodes left.
    Scorer,
}

/// One stage of a pipeline, as [`Scheduler::stages`] describes it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Stage {
    pub kind: StageKind,
    /// The filter's or scorer's name.
    pub name: &'static str,
    /// The pipeline weight (scorers only).
    pub weight: Option<f64>,
    /// One line: why the stage is in the pipeline (empty when built without one).
    pub why: &'static str,
}

/// Builds a [`Scheduler`] one stage at a time, each with a one-line reason, in order: filters
/// run in the order added (the first rejection wins), scorers are summed with their weights.
///
/// ```
/// use orion_core::scheduler::{Scheduler, SchedulerConfig, filters, scorers};
///
/// let s = Scheduler::builder(SchedulerConfig::default())
///     .filter(Box::new(filters::NodeStatusFilter::new()), "only ready nodes take new tasks")
///     .filter(Box::new(filters::ResourcesFilter::new()), "never overcommit")
///     .scorer(Box::new(scorers::Spread::new()), 1.0, "replicas apart survive a zone loss")
///     .build();
/// assert_eq!(s.filter_names(), ["node_status", "resources"]);
/// println!("{}", s.describe());
/// ```
#[derive(Debug)]
pub struct SchedulerBuilder {
    config: SchedulerConfig,
    filters: Vec<(Box<dyn Filter>, &'static str)>,
    scorers: Vec<(Box<dyn Scorer>, f64, &'static str)>,
}

impl SchedulerBuilder {
    /// An empty pipeline with `config`.
    pub fn new(config: SchedulerConfig) -> Self {
        SchedulerBuilder {
            config,
            filters: Vec::new(),
            scorers: Vec::new(),
        }
    }

    /// Appends a filter, with why it is there.
    pub fn filter(mut self, filter: Box<dyn Filter>, why: &'static str) -> Self {
        self.filters.push((filter, why));
        self
    }

    /// Appends a scorer with its pipeline weight (see [`Scheduler::new`] for weights that are
    /// negative or not finite), with why it is there.
    pub fn scorer(mut self, scorer: Box<dyn Scorer>, weight: f64, why: &'static str) -> Self {
        self.scorers.push((scorer, weight, why));
        self
    }

    /// The settings the pipeline is built with.
    pub fn config(&self) -> &SchedulerConfig {
        &self.config
    }

    /// The pipeline.
    pub fn build(self) -> Scheduler {
        let (filters, filter_why): (Vec<_>, Vec<_>) = self.filters.into_iter().unzip();
        let mut scorers = Vec::with_capacity(self.scorers.len());
        let mut scorer_why = Vec::with_capacity(self.scorers.len());
        for (s, w, why) in self.scorers {
            scorers.push((s, w));
            scorer_why.push(why);
        }
        Scheduler::new(filters, scorers, self.config).with_reasons(filter_why, scorer_why)
    }
}

/// Makes a filter from the scheduler's settings.
pub type FilterCtor = fn(&SchedulerConfig) -> Box<dyn Filter>;
/// Makes a scorer from the scheduler's settings.
pub type ScorerCtor = fn(&SchedulerConfig) -> Box<dyn Scorer>;

/// Filters and scorers by name, to compose a pipeline from a config file
/// (`scheduler: {filters: [...], scorers: [{name, weight}]}`). [`Catalog::builtin`] holds
/// orion-core's; crates add theirs (orion-netscore adds the network ones).
#[derive(Debug, Clone)]
pub struct Catalog {
    filters: Vec<(&'static str, &'static str, FilterCtor)>,
    scorers: Vec<(&'static str, &'static str, ScorerCtor)>,
}

impl Catalog {
    /// orion-core's filters ([`filters::NAMES`]) and scorers ([`scorers::NAMES`]).
    pub fn builtin() -> Self {
        use filters as f;
        use scorers as s;
        let filters: Vec<(&'static str, &'static str, FilterCtor)> = vec![
            (f::NODE_STATUS, "only ready nodes take new tasks", |_| {
                Box::new(f::NodeStatusFilter::new())
            }),
            (
                f::CONSTRAINTS,
                "the spec's labels, zones and (anti-)affinity rules",
                |_| Box::new(f::ConstraintsFilter::new()),
            ),
            (
                f::MAX_TASKS,
                "node max_tasks and the spec's max_per_node",
                |_| Box::new(f::MaxTasksFilter::new()),
            ),
            (
                f::HOST_PORTS,
                "a fixed host port is published once per node",
                |_| Box::new(f::HostPortsFilter::new()),
            ),
            (f::RESOURCES, "never overcommit cpu, memory or disk", |_| {
                Box::new(f::ResourcesFilter::new())
            }),
        ];
        let scorers: Vec<(&'static str, &'static str, ScorerCtor)> = vec![
            (
                "least_allocated",
                "spread load: most free cpu and memory",
                |_| Box::new(s::LeastAllocated::new()),
            ),
            (
                "least_allocated_cpu",
                "the formula's cpu term: most free cpu",
                |_| Box::new(s::LeastAllocated::cpu()),
            ),
            (
                "least_allocated_memory",
                "the formula's memory term: most free memory",
                |_| Box::new(s::LeastAllocated::memory()),
            ),
            (
                "most_allocated",
                "bin-pack: fill nodes before using new ones",
                |_| Box::new(s::MostAllocated::new()),
            ),
            ("round_robin", "take the nodes in turn", |_| {
                Box::new(s::RoundRobin::new())
            }),
            (
                "epvm",
                "least marginal cost, so hot spots cost more (E-PVM)",
                |_| Box::new(s::Epvm::new()),
            ),
            ("spread", "replicas apart over zones and nodes", |_| {
                Box::new(s::Spread::new())
            }),
            ("zone_affinity", "the spec's preferred zones", |_| {
                Box::new(s::ZoneAffinity::new())
            }),
        ];
        Catalog { filters, scorers }
    }

    /// Adds (or replaces) a filter under `name`.
    pub fn add_filter(&mut self, name: &'static str, why: &'static str, make: FilterCtor) {
        self.filters.retain(|(n, _, _)| *n != name);
        self.filters.push((name, why, make));
    }

    /// Adds (or replaces) a scorer under `name`.
    pub fn add_scorer(&mut self, name: &'static str, why: &'static str, make: ScorerCtor) {
        self.scorers.retain(|(n, _, _)| *n != name);
        self.scorers.push((name, why, make));
    }

    /// Why the filter `name` is in a pipeline, if the catalog has it.
    pub fn filter_why(&self, name: &str) -> Option<&'static str> {
        self.filters
            .iter()
            .find(|(n, _, _)| *n == name)
            .map(|(_, w, _)| *w)
    }

    /// Why the scorer `name` is in a pipeline, if the catalog has it.
    pub fn scorer_why(&self, name: &str) -> Option<&'static str> {
        self.scorers
            .iter()
            .find(|(n, _, _)| *n == name)
            .map(|(_, w, _)| *w)
    }

    /// Every filter name, in the order added.
    pub fn filter_names(&self) -> Vec<&'static str> {
        self.filters.iter().map(|(n, _, _)| *n).collect()
    }

    /// Every scorer name, in the order added.
    pub fn scorer_names(&self) -> Vec<&'static str> {
        self.scorers.iter().map(|(n, _, _)| *n).collect()
    }

    fn make_filter(
        &self,
        name: &str,
        config: &SchedulerConfig,
    ) -> Option<(Box<dyn Filter>, &'static str)> {
        let (_, why, make) = self.filters.iter().find(|(n, _, _)| *n == name)?;
        Some((make(config), *why))
    }

    fn make_scorer(
        &self,
        name: &str,
        config: &SchedulerConfig,
    ) -> Option<(Box<dyn Scorer>, &'static str)> {
        let (_, why, make) = self.scorers.iter().find(|(n, _, _)| *n == name)?;
        Some((make(config), *why))
    }

    /// A pipeline from names: filters in order, scorers with their weights. Reports every
    /// unknown name (listing the accepted ones), every bad weight and every name given twice,
    /// all at once, with paths under `scheduler.`.
    pub fn build(
        &self,
        filter_names: &[&str],
        scorer_names: &[(&str, f64)],
        config: SchedulerConfig,
    ) -> Result<Scheduler> {
        let mut errs = ValidationErrors::default();
        let mut b = SchedulerBuilder::new(config.clone());
        for (i, name) in filter_names.iter().enumerate() {
            if filter_names[..i].contains(name) {
                errs.push(
                    format!("scheduler.filters[{i}]"),
                    format!("{name:?}"),
                    "each filter once",
                );
                continue;
            }
            match self.make_filter(name, &config) {
                Some((f, why)) => b = b.filter(f, why),
                None => errs.push(
                    format!("scheduler.filters[{i}]"),
                    format!("{name:?}"),
                    format!("one of {}", self.filter_names().join(", ")),
                ),
            }
        }
        for (i, (name, weight)) in scorer_names.iter().enumerate() {
            if !(weight.is_finite() && *weight >= 0.0) {
                errs.push(
                    format!("scheduler.scorers[{i}].weight"),
                    weight,
                    "a finite weight >= 0",
                );
            }
            if scorer_names[..i].iter().any(|(n, _)| n == name) {
                errs.push(
                    format!("scheduler.scorers[{i}].name"),
                    format!("{name:?}"),
                    "each scorer once",
                );
                continue;
            }
            match self.make_scorer(name, &config) {
                Some((s, why)) => b = b.scorer(s, *weight, why),
                None => errs.push(
                    format!("scheduler.scorers[{i}].name"),
                    format!("{name:?}"),
                    format!("one of {}", self.scorer_names().join(", ")),
                ),
            }
        }
        errs.into_result()?;
        Ok(b.build())
    }
}

impl Scheduler {
    /// A [`SchedulerBuilder`] with `config`.
    pub fn builder(config: SchedulerConfig) -> SchedulerBuilder {
        SchedulerBuilder::new(config)
    }

    /// Every stage, filters first then scorers, in pipeline order, with its weight and why.
    pub fn stages(&self) -> Vec<Stage> {
        let (filters, scorers) = self.stage_parts();
        filters
            .into_iter()
            .map(|(name, why)| Stage {
                kind: StageKind::Filter,
                name,
                weight: None,
                why,
            })
            .chain(scorers.into_iter().map(|(name, weight, why)| Stage {
                kind: StageKind::Scorer,
                name,
                weight: Some(weight),
                why,
            }))
            .collect()
    }

    /// The pipeline, one stage a line: `filter  resources  never overcommit a node`.
    pub fn describe(&self) -> String {
        let stages = self.stages();
        let width = stages.iter().map(|s| s.name.len()).max().unwrap_or(0);
        let mut out = String::new();
        for s in &stages {
            let head = match s.weight {
                None => "filter      ".to_owned(),
                Some(w) => format!("scorer x{w:<4.2}"),
            };
            let _ = writeln!(out, "{head}  {:<width$}  {}", s.name, s.why);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_catalog_builds_by_name_and_refuses_unknown_names() {
        let c = Catalog::builtin();
        let s = c
            .build(
                &["node_status", "resources"],
                &[("spread", 0.5)],
                SchedulerConfig::default(),
            )
            .unwrap();
        assert_eq!(s.filter_names(), ["node_status", "resources"]);
        assert_eq!(s.scorer_weights(), [("spread", 0.5)]);
        assert!(
            s.stages().iter().all(|st| !st.why.is_empty()),
            "{}",
            s.describe()
        );
        let err = c
            .build(
                &["nope", "resources", "resources"],
                &[("spreed", -1.0)],
                SchedulerConfig::default(),
            )
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("scheduler.filters[0]") && err.contains("one of node_status"),
            "{err}"
        );
        assert!(
            err.contains("scheduler.filters[2]") && err.contains("each filter once"),
            "{err}"
        );
        assert!(err.contains("scheduler.scorers[0].weight"), "{err}");
        assert!(
            err.contains("scheduler.scorers[0].name") && err.contains("least_allocated"),
            "{err}"
        );
    }

    #[derive(Debug)]
    struct Half;
    impl Scorer for Half {
        fn name(&self) -> &'static str {
            "half"
        }
        fn score(
            &self,
            _: &super::super::PlacementRequest<'_>,
            _: &super::super::NodeView,
            _: &super::super::ClusterView,
        ) -> f64 {
            0.5
        }
    }

    #[test]
    fn builtin_catalog_knows_every_builtin_name() {
        let c = Catalog::builtin();
        assert_eq!(c.filter_names(), filters::NAMES);
        assert_eq!(c.scorer_names(), scorers::NAMES);
        let all: Vec<(&str, f64)> = scorers::NAMES.iter().map(|n| (*n, 1.0)).collect();
        let s = c
            .build(&filters::NAMES, &all, SchedulerConfig::default())
            .unwrap();
        let names: Vec<_> = s.scorer_weights().into_iter().map(|(n, _)| n).collect();
        assert_eq!(
            names,
            scorers::NAMES,
            "each name builds the scorer of that name"
        );
        assert_eq!(s.filter_names(), filters::NAMES);
    }

    #[test]
    fn catalogs_take_new_names() {
        let mut c = Catalog::builtin();
        c.add_scorer("half", "a constant", |_| Box::new(Half));
        assert!(c.scorer_names().contains(&"half"));
        let s = c
            .build(&[], &[("half", 2.0)], SchedulerConfig::default())
            .unwrap();
        assert_eq!(s.stages()[0].why, "a constant");
        assert!(s.describe().contains("half"));
    }
}

#[cfg(all(test, feature = "testing"))]
mod conformance {
    use super::*;
    use crate::testing::scheduler::{check_filter, check_scorer, specs, views};

    #[test]
    fn every_builtin_stage_meets_its_contract() {
        let (views, specs) = (views(), specs());
        let c = Catalog::builtin();
        let config = SchedulerConfig::default();
        for (_, _, make) in &c.filters {
            check_filter(make(&config).as_ref(), &views, &specs);
        }
        for (_, _, make) in &c.scorers {
            check_scorer(make(&config).as_ref(), &views, &specs);
        }
    }
}
