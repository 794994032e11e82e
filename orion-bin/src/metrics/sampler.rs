//! Background loops that feed [`Metrics`]: Raft leader changes, membership events, and the CPU
//! and memory of this node's containers.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use orion_core::membership::Membership;
use orion_core::model::TaskState;
use orion_core::runtime::Runtime;
use orion_core::store::{ClusterStore, Store};
use tokio::sync::watch;

use super::Metrics;

/// How often container CPU and memory are sampled.
pub const SAMPLE_INTERVAL: Duration = Duration::from_secs(5);
/// Bound on one container's stats answer.
const STATS_TIMEOUT: Duration = Duration::from_secs(4);
/// Containers asked for their stats at once.
const STATS_PARALLEL: usize = 4;

/// Counts every leader `leader` names (the Raft leader's id, `None` while there is none) that
/// differs from the one before, the first one this node learns included, and every event of
/// `membership`, until `shutdown` turns true.
pub async fn watch_cluster_events(
    metrics: Arc<Metrics>,
    leader: Option<watch::Receiver<Option<u64>>>,
    membership: Arc<dyn Membership>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut events = membership.subscribe();
    let mut leader = leader;
    let mut last = leader.as_mut().and_then(|l| *l.borrow_and_update());
    if last.is_some() {
        metrics.leader_changed();
    }
    loop {
        let changed = async {
            match leader.as_mut() {
                Some(l) => l.changed().await.is_ok(),
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            ok = changed => {
                if !ok {
                    leader = None;
                    continue;
                }
                let now = leader.as_mut().and_then(|l| *l.borrow_and_update());
                if now != last && now.is_some() {
                    metrics.leader_changed();
                }
                last = now;
            }
            event = events.next() => match event {
                Some(event) => metrics.membership_event(&event),
                None => events = Box::pin(futures::stream::pending()),
            },
            _ = shutdown.wait_for(|s| *s) => return,
        }
    }
}

/// Every [`SAMPLE_INTERVAL`], asks `runtime` for the CPU and memory of this node's running
/// tasks and sets the per-service gauges, until `shutdown` turns true. A container that does
/// not answer within a few seconds is left out of that sample.
pub async fn sample_containers<S: Store>(
    metrics: Arc<Metrics>,
    store: ClusterStore<S>,
    runtime: Arc<dyn Runtime>,
    node_id: String,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(SAMPLE_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.wait_for(|s| *s) => return,
        }
        let Ok(tasks) = store.tasks_on_node(&node_id).await else {
            continue;
        };
        let running: Vec<(String, String)> = tasks
            .into_iter()
            .filter(|t| t.state == TaskState::Running)
            .filter_map(|t| Some((t.service.to_string(), t.container_id?)))
            .collect();
        let samples: Vec<_> = futures::stream::iter(running)
            .map(|(service, container)| {
                let runtime = runtime.clone();
                async move {
                    let stats = tokio::time::timeout(STATS_TIMEOUT, runtime.stats(&container));
                    match stats.await {
                        Ok(Ok(s)) => Some((service, s)),
                        _ => None,
                    }
                }
            })
            .buffer_unordered(STATS_PARALLEL)
            .collect()
            .await;
        let mut by_service: BTreeMap<String, (f64, u64)> = BTreeMap::new();
        for (service, s) in samples.into_iter().flatten() {
            let entry = by_service.entry(service).or_default();
            entry.0 += s.cpu_percent;
            entry.1 += s.memory_bytes;
        }
        let rows: Vec<(String, f64, u64)> = by_service
            .into_iter()
            .map(|(service, (cpu, memory))| (service, cpu, memory))
            .collect();
        metrics.set_container_usage(&rows);
    }
}
