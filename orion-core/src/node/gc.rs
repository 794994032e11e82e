//! The garbage collector (leader only): finished task records do not pile up.
//!
//! Contract:
//! - Only terminal tasks (`completed`, `failed`, `stopped`, `lost`) are ever deleted, and never
//!   the newest task of a slot of an existing service (it records how the slot ended, which the
//!   reconciler reads: a completed job is not re-run).
//! - A terminal task is deleted once it has not changed for [`GcConfig::retention`], or earlier
//!   when its service keeps more than [`GcConfig::history_per_service`] terminal tasks (the
//!   oldest go first). A `lost` task whose desired state is still `running` (its node may come
//!   back and reconnect it) goes only by retention.
//! - The slot records of a deleted service go with its last task.
//! - At most [`GcConfig::max_deletes_per_round`] keys per round; every delete is fenced and
//!   compares the task's revision, so a task that changed meanwhile is left for the next round.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use super::{Clock, Fence};
use crate::model::{DesiredState, Millis, Task, TaskState};
use crate::store::{ClusterState, ClusterStore, Compare, Store, keys};

/// Retention of finished tasks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GcConfig {
    /// How long a terminal task is kept after its last change.
    pub retention: Duration,
    /// Terminal tasks kept per service at most (besides each slot's newest).
    pub history_per_service: usize,
    /// Keys deleted per round at most.
    pub max_deletes_per_round: usize,
    /// How often the collector runs.
    pub interval: Duration,
}

impl Default for GcConfig {
    fn default() -> Self {
        GcConfig {
            retention: Duration::from_secs(3600),
            history_per_service: 50,
            max_deletes_per_round: 1_000,
            interval: Duration::from_secs(30),
        }
    }
}

/// Deletes finished task records.
pub struct GarbageCollector<S> {
    store: ClusterStore<S>,
    clock: Arc<dyn Clock>,
    config: GcConfig,
}

impl<S> std::fmt::Debug for GarbageCollector<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GarbageCollector")
            .field("config", &self.config)
            .finish()
    }
}

/// Keys deleted in one transaction.
const BATCH: usize = 64;

impl<S: Store> GarbageCollector<S> {
    pub fn new(store: ClusterStore<S>, clock: Arc<dyn Clock>, config: GcConfig) -> Self {
        GarbageCollector {
            store,
            clock,
            config,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &GcConfig {
        &self.config
    }

    /// One collection over a fresh read of the state; returns the number of keys deleted.
    pub async fn round(&self, fence: &Fence) -> crate::Result<usize> {
        let state = self.store.load_state().await?;
        let doomed = crate::blocking::cpu_bound(|| self.plan(&state));
        self.delete(&doomed, fence).await
    }

    /// The keys a round over `state` deletes, each with the revision it was read at (see
    /// [`collectable`]). `state` may be one kept by a watch (the reconciler's): every delete
    /// compares that revision, so a key changed since is left for the next round.
    pub fn plan(&self, state: &ClusterState) -> Vec<(String, u64)> {
        collectable(state, self.clock.now(), &self.config)
            .into_iter()
            .map(|key| {
                let revision = state.revisions.get(&key).unwrap_or(0);
                (key, revision)
            })
            .collect()
    }

    /// Deletes `doomed` (from [`GarbageCollector::plan`]) under `fence`, [`BATCH`] keys per
    /// transaction; returns how many went. Stops when the fence is lost.
    pub async fn delete(&self, doomed: &[(String, u64)], fence: &Fence) -> crate::Result<usize> {
        let mut deleted = 0;
        for batch in doomed.chunks(BATCH) {
            let mut when = vec![fence.compare()];
            when.extend(
                batch
                    .iter()
                    .map(|(key, revision)| Compare::ModRevision(key.clone(), *revision)),
            );
            let keys = batch.iter().map(|(key, _)| key.clone()).collect();
            if self.store.delete_if(keys, when).await? {
                deleted += batch.len();
            } else if !fence.held(&self.store).await? {
                break;
            }
        }
        Ok(deleted)
    }
}

/// The keys to delete from `state` at `now` (see the module contract), oldest first.
pub fn collectable(state: &ClusterState, now: Millis, config: &GcConfig) -> Vec<String> {
    let services: HashSet<&str> = state
        .services
        .iter()
        .map(|s| s.spec.name.as_str())
        .collect();
    let retention = config.retention.as_millis() as Millis;
    // The newest task of each slot of an existing service is kept.
    let mut newest: HashMap<(&str, u32), &Task> = HashMap::new();
    for t in state
        .tasks
        .iter()
        .filter(|t| services.contains(t.service.as_str()))
    {
        let e = newest.entry((t.service.as_str(), t.slot)).or_insert(t);
        if (t.created_at, &t.id) > (e.created_at, &e.id) {
            *e = t;
        }
    }
    let kept: HashSet<&str> = newest.values().map(|t| t.id.as_str()).collect();
    let mut by_service: HashMap<&str, Vec<&Task>> = HashMap::new();
    for t in &state.tasks {
        if t.state.is_terminal() && !kept.contains(t.id.as_str()) {
            by_service.entry(t.service.as_str()).or_default().push(t);
        }
    }
    let mut doomed: Vec<(Millis, &str)> = Vec::new();
    for tasks in by_service.values_mut() {
        tasks.sort_by_key(|t| std::cmp::Reverse((t.updated_at, t.created_at)));
        for (i, t) in tasks.iter().enumerate() {
            let may_reconnect = t.state == TaskState::Lost && t.desired == DesiredState::Running;
            let expired = now.saturating_sub(t.updated_at) >= retention;
            let beyond_history = i >= config.history_per_service && !may_reconnect;
            if expired || beyond_history {
                doomed.push((t.updated_at, t.id.as_str()));
            }
        }
    }
    doomed.sort();
    doomed.truncate(config.max_deletes_per_round);
    let going: HashSet<&str> = doomed.iter().map(|(_, id)| *id).collect();
    let mut keys_out: Vec<String> = doomed.iter().map(|(_, id)| keys::task(id)).collect();
    // Slot records of deleted services whose tasks are all going (or gone).
    let remaining: HashSet<&str> = state
        .tasks
        .iter()
        .filter(|t| !going.contains(t.id.as_str()))
        .map(|t| t.service.as_str())
        .collect();
    for rest in state.revisions.slots() {
        if let Some((service, _)) = rest.split_once('/')
            && !services.contains(service)
            && !remaining.contains(service)
        {
            keys_out.push(format!("{}{rest}", keys::SLOTS));
        }
    }
    keys_out.truncate(config.max_deletes_per_round);
    keys_out
}
