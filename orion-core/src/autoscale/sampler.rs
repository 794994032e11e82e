//! The node side of autoscaling: sampling this node's running tasks and publishing per-service
//! usage.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use tokio::sync::watch;
use tracing::{debug, warn};

use super::{AutoscaleConfig, UsageReport};
use crate::model::{Resources, Task, TaskState};
use crate::node::Clock;
use crate::runtime::{ContainerStats, Runtime};
use crate::store::{ClusterStore, Store};

/// Stats calls one sampler makes at once, at most.
pub const MAX_PARALLEL_STATS: usize = 8;

/// Longest one stats call may take before its sample is skipped.
const STATS_TIMEOUT: Duration = Duration::from_secs(10);

/// `stats` as percentages of the task's requests: CPU use over `resources.cpu_millicores`
/// (Orion's CPU limit for the container) and memory use over the memory limit the runtime
/// reports, else `resources.memory_bytes`. A zero request counts as no use (0 %).
pub fn utilization(stats: &ContainerStats, resources: &Resources) -> (f64, f64) {
    // `cpu_percent` is percent of one core: x10 gives millicores.
    let cpu = if resources.cpu_millicores > 0 && stats.cpu_percent.is_finite() {
        stats.cpu_percent.max(0.0) * 10.0 / resources.cpu_millicores as f64 * 100.0
    } else {
        0.0
    };
    let limit = stats
        .memory_limit_bytes
        .filter(|l| *l > 0)
        .unwrap_or(resources.memory_bytes);
    let memory = if limit > 0 {
        stats.memory_bytes as f64 / limit as f64 * 100.0
    } else {
        0.0
    };
    (cpu, memory)
}

/// Samples this node's running tasks of autoscaled services and publishes their usage.
pub struct UsageSampler<S, R: ?Sized> {
    node_id: String,
    store: ClusterStore<S>,
    runtime: Arc<R>,
    clock: Arc<dyn Clock>,
    config: AutoscaleConfig,
    /// What was last published per service, to skip writes that would change nothing.
    published: Mutex<HashMap<String, UsageReport>>,
}

/// A change in usage below this (percentage points) is not worth a store write on its own.
const REPUBLISH_POINTS: f64 = 2.0;

impl<S, R: ?Sized> std::fmt::Debug for UsageSampler<S, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UsageSampler")
            .field("node_id", &self.node_id)
            .field("config", &self.config)
            .finish()
    }
}

impl<S: Store, R: Runtime + ?Sized> UsageSampler<S, R> {
    pub fn new(
        node_id: impl Into<String>,
        store: ClusterStore<S>,
        runtime: Arc<R>,
        clock: Arc<dyn Clock>,
        config: AutoscaleConfig,
    ) -> Self {
        UsageSampler {
            node_id: node_id.into(),
            store,
            runtime,
            clock,
            config,
            published: Mutex::new(HashMap::new()),
        }
    }

    /// Whether `report` is worth writing: its replica count changed, its CPU or memory moved
    /// by [`REPUBLISH_POINTS`] or more, or the last write is a third of `stale_after` old.
    fn worth_publishing(&self, report: &UsageReport, last: Option<&UsageReport>) -> bool {
        let refresh = u64::try_from(self.config.stale_after.as_millis() / 3).unwrap_or(u64::MAX);
        last.is_none_or(|l| {
            l.replicas != report.replicas
                || (l.cpu_percent - report.cpu_percent).abs() >= REPUBLISH_POINTS
                || (l.memory_percent - report.memory_percent).abs() >= REPUBLISH_POINTS
                || report.sampled_at.saturating_sub(l.sampled_at) >= refresh
        })
    }

    /// One round: one stats call per running task of an autoscaled service on this node
    /// ([`MAX_PARALLEL_STATS`] at once; a call that fails or takes too long is skipped), then
    /// one store write of a [`UsageReport`] per service sampled, leaving out those that barely
    /// changed since their last write (each is still rewritten before it could go stale).
    /// Returns what it published.
    pub async fn sample(&self) -> crate::Result<Vec<UsageReport>> {
        let autoscaled: HashSet<String> = self
            .store
            .list_services()
            .await?
            .into_iter()
            .filter(|s| s.spec.scale_policy.is_some())
            .map(|s| s.spec.name)
            .collect();
        if autoscaled.is_empty() {
            return Ok(Vec::new());
        }
        let tasks: Vec<Task> = self
            .store
            .tasks_on_node(&self.node_id)
            .await?
            .into_iter()
            .filter(|t| {
                t.state == TaskState::Running
                    && t.container_id.is_some()
                    && autoscaled.contains(t.service.as_str())
            })
            .collect();
        let samples: Vec<(String, (f64, f64))> = futures::stream::iter(tasks)
            .map(|task| async move {
                let id = task.container_id.as_deref().unwrap_or_default();
                match tokio::time::timeout(STATS_TIMEOUT, self.runtime.stats(id)).await {
                    Ok(Ok(stats)) => Some((
                        task.service.to_string(),
                        utilization(&stats, &task.resources),
                    )),
                    Ok(Err(e)) => {
                        debug!(task = %task.id, error = %e, "no stats this round");
                        None
                    }
                    Err(_) => {
                        debug!(task = %task.id, "stats timed out this round");
                        None
                    }
                }
            })
            .buffer_unordered(MAX_PARALLEL_STATS)
            .filter_map(|s| async move { s })
            .collect()
            .await;
        let mut sums: BTreeMap<String, (u32, f64, f64)> = BTreeMap::new();
        for (service, (cpu, memory)) in samples {
            let e = sums.entry(service).or_default();
            e.0 += 1;
            e.1 += cpu;
            e.2 += memory;
        }
        let now = self.clock.now();
        let reports: Vec<UsageReport> = sums
            .into_iter()
            .map(|(service, (n, cpu, memory))| UsageReport {
                service,
                node: self.node_id.clone(),
                replicas: n,
                cpu_percent: cpu / f64::from(n),
                memory_percent: memory / f64::from(n),
                sampled_at: now,
            })
            .filter(|r: &UsageReport| {
                let published = self.published.lock().unwrap_or_else(|e| e.into_inner());
                self.worth_publishing(r, published.get(&r.service))
            })
            .collect();
        self.store.put_usage_reports(&reports).await?;
        let mut published = self.published.lock().unwrap_or_else(|e| e.into_inner());
        for r in &reports {
            published.insert(r.service.clone(), r.clone());
        }
        published.retain(|s, _| autoscaled.contains(s));
        Ok(reports)
    }

    /// Samples every `sample_interval` until `shutdown` turns true.
    pub async fn run(&self, mut shutdown: watch::Receiver<bool>) {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(self.config.sample_interval) => {}
                _ = shutdown.wait_for(|s| *s) => return,
            }
            if let Err(e) = self.sample().await {
                warn!(error = %e, "cannot sample or publish usage; retrying next interval");
            }
        }
    }
}
