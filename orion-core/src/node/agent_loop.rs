//! The agent's loop: when it converges, and what.
//!
//! - A full pass ([`Agent::sync`]: every task of this node from the store, every container from
//!   the runtime) runs at start, every [`RESYNC_INTERVAL`] and when a health check finishes.
//! - When the runtime reports that some of this node's containers exited
//!   ([`Runtime::watch_exits`], where the runtime has an event feed), only their tasks are
//!   converged: each container inspected, each task read.
//! - When a restart back-off ends, only the tasks whose back-off is over are read and converged.
//! - Between full passes the agent acts on what changed: the task watch's events are taken in
//!   batches (everything already delivered, at once), and only the tasks they name are
//!   converged, from the values in the events, with one runtime list ([`Agent::sync_changed`]).
//!   The periodic full pass is the safety net for anything an event did not say (a missed or
//!   compacted watch, a deleted task, a container that died without an event).
//! - The loop's passes do not wait for the engine: each task they converge becomes an operation
//!   of its own, spawned, at most [`Agent::max_in_flight`] at once and one per task
//!   ([`super::inflight`]); a pass skips a task with one under way (and, when it brings news such
//!   as a stop, has the operation converge it again when it ends).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, PoisonError};
use std::time::Duration;

use futures::{FutureExt, StreamExt};
use tokio::sync::watch;
use tracing::{Instrument, info, info_span, warn};

use super::{Agent, RESYNC_INTERVAL};
use crate::model::spec::ServiceSpec;
use crate::model::{Millis, Task};
use crate::runtime::{ContainerId, ExitStream, Runtime, labels};
use crate::store::{Store, TypedEvent, TypedWatch};

/// Task events taken into one batch at most; a longer backlog waits for the next pass.
pub const MAX_EVENTS_PER_BATCH: usize = 4096;

/// What woke the loop.
enum Wake {
    /// Run a full pass.
    Resync,
    /// Converge these tasks (the latest value of each).
    Changed(Vec<Task>),
    /// A restart back-off ended: converge the tasks waiting on one that is over.
    BackoffOver,
    /// These containers exited: converge their tasks.
    Exited(Vec<ContainerId>),
    /// Nothing to converge (a back-off was set: re-arm the timer).
    Rearm,
    Shutdown,
}

/// How long the loop waits on shutdown for the operations under way to end.
pub const SHUTDOWN_DRAIN: Duration = Duration::from_secs(2);

impl<S: Store, R: Runtime + ?Sized> Agent<S, R> {
    /// Runs until `shutdown` turns true. Passes hand their converges off as operations of their
    /// own ([`super::inflight`]), so the loop takes events while the engine works. Containers
    /// are left running on shutdown: a restarted agent adopts them.
    pub async fn run(self, shutdown: watch::Receiver<bool>) {
        Arc::new(self).run_shared(shutdown).await;
    }

    async fn run_shared(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let mut tick = tokio::time::interval(RESYNC_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut events: Option<TypedWatch<Task>> = None;
        let mut exits: Option<ExitStream> = None;
        // The runtime's exit feed is (re)subscribed at most once per resync interval.
        let mut exits_due = tokio::time::Instant::now();
        let mut wake = Wake::Resync;
        loop {
            if events.is_none() {
                events = self.store.watch_tasks(0).await.ok();
                // Whatever happened while not watching, a full pass sees.
                wake = Wake::Resync;
            }
            if exits.is_none() && tokio::time::Instant::now() >= exits_due {
                exits_due = tokio::time::Instant::now() + RESYNC_INTERVAL;
                exits = self.runtime.watch_exits(&self.node_labels()).await.ok();
            }
            let pass = match wake {
                Wake::Resync => self.full_pass(Some(&self)).await,
                Wake::Changed(tasks) => self.changed_pass(tasks, false, Some(&self)).await,
                Wake::BackoffOver => self.backoff_pass(Some(&self)).await,
                Wake::Exited(ids) => self.exits_pass(ids, Some(&self)).await,
                Wake::Rearm => Ok(()),
                Wake::Shutdown => break,
            };
            if let Err(e) = pass {
                warn!(node = %self.node_id, error = %e, "agent sync failed; retrying");
            }
            let backoff_end = self.next_backoff_end();
            wake = tokio::select! {
                _ = shutdown.changed() => {
                    if *shutdown.borrow() { Wake::Shutdown } else { Wake::Resync }
                }
                _ = tick.tick() => Wake::Resync,
                _ = self.health.check_finished() => Wake::Resync,
                _ = sleep_until_millis(&*self.clock, backoff_end) => Wake::BackoffOver,
                _ = self.backoff_set.notified() => Wake::Rearm,
                first = next_of(&mut events) => match first {
                    Some(Ok(event)) => Wake::Changed(self.batch(event, events.as_mut())),
                    _ => {
                        events = None;
                        Wake::Resync
                    }
                },
                exit = next_of(&mut exits) => match exit {
                    Some(Ok(first)) => {
                        // Take every exit already reported: one pass handles them all.
                        let mut ids = vec![first];
                        if let Some(s) = exits.as_mut() {
                            for _ in 1..MAX_EVENTS_PER_BATCH {
                                match s.next().now_or_never() {
                                    Some(Some(Ok(id))) => ids.push(id),
                                    _ => break,
                                }
                            }
                        }
                        Wake::Exited(ids)
                    }
                    _ => {
                        exits = None;
                        Wake::Resync
                    }
                }
            };
        }
        // Let operations under way finish their store writes (bounded).
        let _ = tokio::time::timeout(SHUTDOWN_DRAIN, self.inflight.idle()).await;
        info!(node = %self.node_id, "agent stopped; containers keep running");
    }

    /// `first` and every event already delivered after it (at most [`MAX_EVENTS_PER_BATCH`]),
    /// as the latest value of each task placed on this node. Deletions are left to the full pass.
    fn batch(&self, first: TypedEvent<Task>, events: Option<&mut TypedWatch<Task>>) -> Vec<Task> {
        let mut latest: BTreeMap<String, Option<Task>> = BTreeMap::new();
        let mut take = |event: TypedEvent<Task>| match event {
            TypedEvent::Put { id, value, .. } => {
                latest.insert(id, Some(value));
            }
            TypedEvent::Delete { id, .. } => {
                latest.insert(id, None);
            }
        };
        take(first);
        if let Some(events) = events {
            for _ in 1..MAX_EVENTS_PER_BATCH {
                match events.next().now_or_never() {
                    Some(Some(Ok(event))) => take(event),
                    // Nothing more yet; an error or the end shows on the next poll.
                    _ => break,
                }
            }
        }
        latest
            .into_values()
            .flatten()
            .filter(|t| t.node.as_deref() == Some(self.node_id.as_str()))
            .collect()
    }

    /// Converges only `changed` (tasks as the store's events delivered them), with one runtime
    /// list and no store read; tasks not placed on this node are ignored. Health verdicts and
    /// stale containers wait for the next full pass ([`Agent::sync`]). Returns when every
    /// converge it started has ended; a task with an operation under way is left to it.
    pub async fn sync_changed(&self, changed: Vec<Task>) -> crate::Result<()> {
        self.changed_pass(changed, false, None).await
    }

    /// [`Agent::sync_changed`]; with `wake`, a task with an operation under way is converged
    /// again when it ends; with `detach`, the converges are spawned.
    pub(super) async fn changed_pass(
        &self,
        changed: Vec<Task>,
        wake: bool,
        detach: Option<&Arc<Self>>,
    ) -> crate::Result<()> {
        let mine: Vec<Task> = changed
            .into_iter()
            .filter(|t| t.node.as_deref() == Some(self.node_id.as_str()))
            .collect();
        if mine.is_empty() {
            return Ok(());
        }
        let epoch = self.inflight.epoch();
        let mut containers = self.containers_by_task().await?;
        let work: Vec<_> = mine
            .into_iter()
            .map(|task| {
                let container = containers.remove(task.id.as_str());
                (task, container)
            })
            .collect();
        self.converge_all(work, &HashMap::new(), epoch, wake, detach)
            .await;
        Ok(())
    }

    /// Converges the tasks of the containers in `exited` (reported by the runtime's exit feed):
    /// each container is inspected for its task, which is read from the store; no full list and
    /// no full read. A container that cannot be inspected any more makes it a full pass.
    async fn exits_pass(
        &self,
        exited: Vec<ContainerId>,
        detach: Option<&Arc<Self>>,
    ) -> crate::Result<()> {
        let epoch = self.inflight.epoch();
        let mut work = Vec::with_capacity(exited.len());
        let mut specs = HashMap::new();
        for id in exited {
            let Ok(c) = self.runtime.inspect(&id).await else {
                return self.full_pass(detach).await;
            };
            let Some(task_id) = c.labels.get(labels::TASK) else {
                continue;
            };
            let Some(task) = self.store.get_task(task_id).await? else {
                continue;
            };
            if task.node.as_deref() != Some(self.node_id.as_str()) {
                continue;
            }
            if !specs.contains_key(task.service.as_str())
                && let Some(s) = self.store.get_service(&task.service).await?
            {
                specs.insert(task.service.to_string(), s.spec);
            }
            work.push((task, Some(c)));
        }
        self.converge_all(work, &specs, epoch, true, detach).await;
        Ok(())
    }

    /// Converges the tasks whose restart back-off is over, read from the store one by one (not
    /// a full pass). A task that is gone loses its back-off.
    async fn backoff_pass(&self, detach: Option<&Arc<Self>>) -> crate::Result<()> {
        let now = self.clock.now();
        let due: Vec<String> = self
            .backoff
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter(|(_, at)| **at <= now)
            .map(|(id, _)| id.clone())
            .collect();
        let mut tasks = Vec::with_capacity(due.len());
        for id in due {
            match self.store.get_task(&id).await? {
                Some(task) if task.state.is_terminal() => {}
                Some(task) => {
                    tasks.push(task);
                    continue;
                }
                None => {}
            }
            // Gone or finished: it will not start again from this back-off.
            self.backoff
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(&id);
        }
        self.changed_pass(tasks, true, detach).await
    }

    /// When the earliest restart back-off ends, if any task waits on one.
    /// Back-offs already over are left out: the pass they woke has run (a task that no longer
    /// starts keeps its entry until its next start, and must not wake the loop again).
    fn next_backoff_end(&self) -> Option<Millis> {
        let now = self.clock.now();
        self.backoff
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .filter(|at| **at > now)
            .min()
            .copied()
    }

    /// Reads this node's tasks; on success records the contact and the services'
    /// `stop_after_disconnect`.
    pub(super) async fn read_tasks(
        &self,
    ) -> crate::Result<(Vec<Task>, HashMap<String, ServiceSpec>)> {
        let tasks = self.store.tasks_on_node(&self.node_id).await?;
        let mut stop_after = HashMap::new();
        let mut specs = HashMap::new();
        let mut seen: Vec<&str> = tasks.iter().map(|t| t.service.as_str()).collect();
        seen.sort_unstable();
        seen.dedup();
        for name in seen {
            if let Some(s) = self.store.get_service(name).await? {
                if s.spec.stop_after_disconnect > 0 {
                    stop_after.insert(name.to_owned(), s.spec.stop_after_disconnect * 1000);
                }
                specs.insert(name.to_owned(), s.spec);
            }
        }
        let mut contact = self
            .last_contact
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        contact.at = Some(self.clock.now());
        contact.stop_after = stop_after;
        Ok((tasks, specs))
    }

    /// Stops the containers of services with `stop_after_disconnect` once the store has been
    /// unreachable that long. Nothing else is touched while disconnected.
    pub(super) async fn stop_after_disconnect(&self) {
        let due: HashSet<String> = {
            let contact = self
                .last_contact
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let Some(at) = contact.at else { return };
            let away = self.clock.now().saturating_sub(at);
            contact
                .stop_after
                .iter()
                .filter(|(_, after)| away >= **after)
                .map(|(service, _)| service.clone())
                .collect()
        };
        if due.is_empty() {
            return;
        }
        let Ok(containers) = self.runtime.list(&self.node_labels()).await else {
            return;
        };
        for c in containers.iter().filter(|c| c.status.is_running()) {
            if c.labels
                .get(labels::SERVICE)
                .is_some_and(|s| due.contains(s))
            {
                let task = c.labels.get(labels::TASK).map_or("", String::as_str);
                let service = c.labels.get(labels::SERVICE).map_or("", String::as_str);
                let span = info_span!("task", task, service, node = %self.node_id);
                async {
                    warn!(container = %c.id, "stopping: the store has been unreachable longer than the service's stop_after_disconnect");
                    self.discard(c).await;
                }
                .instrument(span)
                .await;
            }
        }
    }
}

/// The next item of `stream`, or never when there is none.
async fn next_of<T>(
    stream: &mut Option<std::pin::Pin<Box<dyn futures::Stream<Item = T> + Send>>>,
) -> Option<T> {
    match stream.as_mut() {
        Some(s) => s.next().await,
        None => std::future::pending().await,
    }
}

/// Sleeps until `at` on `clock` (just past it), or forever when `at` is `None`. The wait is
/// measured on the clock once, then slept on tokio's timer.
async fn sleep_until_millis(clock: &dyn super::Clock, at: Option<Millis>) {
    match at {
        Some(at) => {
            let ms = at.saturating_sub(clock.now()) + 1;
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
        None => std::future::pending().await,
    }
}
