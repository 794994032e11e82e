//! Autoscaling from a service's `scale_policy`, in three parts:
//!
//! - [`UsageSampler`] (every node, beside the agent): at most one [`Runtime::stats`] call per
//!   running task of an autoscaled service per interval, [`MAX_PARALLEL_STATS`] at once. It
//!   turns each sample into percentages of the task's own request (`resources.cpu`,
//!   `resources.memory`, which are also its limits), averages them per service, and publishes
//!   one [`UsageReport`] per service it runs, all in one store write per interval.
//! - [`evaluate`] (pure): Kubernetes HPA maths. For each target, `ceil(current x usage /
//!   target)`, unchanged within a 10 % [`TOLERANCE`]; the larger of the CPU and memory
//!   recommendations; clamped to `min_replicas..=max_replicas`; a scale-down goes only as low as
//!   the highest recommendation over the `stabilization_seconds` window; no change within
//!   `cooldown_seconds` of the last one; and no scale-down (nor up) without fresh stats.
//! - [`AutoscaleController`] (the leader): one [`evaluate`] per autoscaled service per round,
//!   writing the new `replicas` and the decision in one fenced transaction, and keeping the
//!   latest [`MAX_DECISIONS`] decisions per service in an [`AutoscaleRecord`].
//!
//! [`Runtime::stats`]: crate::runtime::Runtime::stats

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::model::Millis;

mod controller;
mod math;
mod sampler;
#[cfg(test)]
mod tests;

pub use controller::{AutoscaleController, AutoscaleRoundReport};
pub use math::{Evaluation, Outcome, RecommendationWindow, TOLERANCE, evaluate, recommend};
pub use sampler::{MAX_PARALLEL_STATS, UsageSampler, utilization};

/// Decisions kept per service in its [`AutoscaleRecord`].
pub const MAX_DECISIONS: usize = 20;

/// CPU target used when a `scale_policy` sets neither `target_cpu` nor `target_memory`
/// (Kubernetes's default), percent of the request.
pub const DEFAULT_TARGET_CPU: f64 = 80.0;

/// Timings of the sampler and the controller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AutoscaleConfig {
    /// How often each node samples its tasks and publishes one write of per-service usage.
    pub sample_interval: Duration,
    /// How often the leader evaluates every autoscaled service.
    pub evaluate_interval: Duration,
    /// A usage report older than this is not fresh: the service is neither scaled up nor down
    /// on it (default: three sample intervals).
    pub stale_after: Duration,
}

impl AutoscaleConfig {
    /// `sample_interval` and `evaluate_interval` both `interval`, stale after three of them.
    pub fn every(interval: Duration) -> Self {
        AutoscaleConfig {
            sample_interval: interval,
            evaluate_interval: interval,
            stale_after: interval * 3,
        }
    }
}

impl Default for AutoscaleConfig {
    fn default() -> Self {
        AutoscaleConfig::every(Duration::from_secs(15))
    }
}

/// Shortest accepted sample and evaluate interval.
pub const MIN_AUTOSCALE_INTERVAL: Duration = Duration::from_secs(1);
/// Longest accepted sample and evaluate interval.
pub const MAX_AUTOSCALE_INTERVAL: Duration = Duration::from_secs(600);

/// One node's usage of one service, as its sampler last published it
/// (`/orion/usage/<service>/<node>`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UsageReport {
    pub service: String,
    pub node: String,
    /// Running tasks sampled.
    pub replicas: u32,
    /// Mean CPU use of those tasks, percent of each task's CPU request.
    pub cpu_percent: f64,
    /// Mean memory use, percent of each task's memory request (its limit).
    pub memory_percent: f64,
    pub sampled_at: Millis,
}

/// A service's usage over every node's fresh report, weighted by replicas sampled.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ServiceUsage {
    pub replicas: u32,
    pub cpu_percent: f64,
    pub memory_percent: f64,
    /// The oldest report counted.
    pub sampled_at: Millis,
}

impl ServiceUsage {
    /// The weighted mean of `reports` sampled at or after `fresh_since`; `None` when no report
    /// is fresh or none sampled a replica.
    pub fn from_reports<'a>(
        reports: impl IntoIterator<Item = &'a UsageReport>,
        fresh_since: Millis,
    ) -> Option<ServiceUsage> {
        let (mut n, mut cpu, mut mem, mut oldest) = (0u32, 0.0, 0.0, Millis::MAX);
        for r in reports {
            if r.sampled_at < fresh_since || r.replicas == 0 {
                continue;
            }
            n = n.saturating_add(r.replicas);
            cpu += r.cpu_percent * f64::from(r.replicas);
            mem += r.memory_percent * f64::from(r.replicas);
            oldest = oldest.min(r.sampled_at);
        }
        (n > 0).then(|| ServiceUsage {
            replicas: n,
            cpu_percent: cpu / f64::from(n),
            memory_percent: mem / f64::from(n),
            sampled_at: oldest,
        })
    }
}

/// One evaluation of a service: what it saw, what it did and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScaleDecision {
    pub at: Millis,
    /// `replicas` before.
    pub from: u32,
    /// `replicas` after (equal to `from` when held).
    pub to: u32,
    pub outcome: Outcome,
    /// The usage it was decided on, when fresh stats existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<ServiceUsage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_cpu: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_memory: Option<f64>,
    /// In words, with the numbers.
    pub reason: String,
}

/// A service's autoscaling state in the store (`/orion/autoscale/<service>`): the latest
/// evaluation and the latest changes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AutoscaleRecord {
    pub service: String,
    /// When the autoscaler last changed `replicas` (the cooldown counts from here).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_change_at: Option<Millis>,
    /// The latest evaluation, stored when its outcome differs from the one before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last: Option<ScaleDecision>,
    /// The latest [`MAX_DECISIONS`] changes, oldest first.
    #[serde(default)]
    pub decisions: Vec<ScaleDecision>,
}

impl AutoscaleRecord {
    /// Notes `decision`: kept as the latest, and among the changes when it changed `replicas`.
    pub fn note(&mut self, decision: ScaleDecision) {
        if decision.to != decision.from {
            self.last_change_at = Some(decision.at);
            self.decisions.push(decision.clone());
            let excess = self.decisions.len().saturating_sub(MAX_DECISIONS);
            self.decisions.drain(..excess);
        }
        self.last = Some(decision);
    }
}
