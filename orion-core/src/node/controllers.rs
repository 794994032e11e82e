//! The leader's controllers and their supervisor.
//!
//! [`Controllers`] bundles the reconciler, liveness and garbage collection of one node. Each has a
//! `round`/`step` method that does one pass (what the deterministic harness drives), and
//! [`Controllers::run`] runs them all while this node leads: on every leadership (a new term) it
//! claims the [`Fence`], then loops until leadership is lost, the fence is taken by another
//! leader, or shutdown. They hold no state the store does not hold, except grace-period clocks
//! that a new leader starts afresh, and the reconciler's decoded copy of the cluster state
//! ([`WatchedState`], kept current from a watch and dropped when leadership ends).

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tokio::sync::watch;
use tracing::{debug, info, warn};

use super::gc::{GarbageCollector, GcConfig};
use super::liveness::{LivenessConfig, LivenessController};
use super::rollouts::advance_rollouts;
use super::{Clock, Fence, Leadership};
use crate::autoscale::{AutoscaleConfig, AutoscaleController};
use crate::membership::Membership;
use crate::observe::{SharedObserver, no_observer};
use crate::reconciler::{Action, Purpose, ReconcilePolicy, apply_plan, reconcile_state};
use crate::scheduler::Scheduler;
use crate::store::{ClusterStore, Store, WatchedState, keys};

/// What one reconcile round did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RoundReport {
    /// The revision the plan was built on.
    pub revision: u64,
    pub actions: usize,
    pub applied: usize,
    /// Actions skipped because what they were decided on changed (or the fence was lost).
    pub skipped: usize,
    pub failed: usize,
    /// Slots that no node could take.
    pub unplaced: usize,
    /// The round hit its creation bound: run another at once.
    pub more: bool,
    /// The earliest crash-loop back-off end: run another then.
    pub retry_at: Option<u64>,
    /// The fence is no longer held: this node must stop acting as leader.
    pub fenced_out: bool,
    /// Nothing was planned: the state is the one the last round planned from, that round had
    /// nothing to do, and neither its `retry_at` nor [`QUIET_REPLAN`] has come.
    pub unchanged: bool,
}

/// The longest a quiet state goes without being planned again. A plan can change with time
/// alone in ways no `retry_at` announces (network measurements going stale change the zones
/// derived from them), so an unchanged state is planned again at least this often.
pub const QUIET_REPLAN: Duration = Duration::from_secs(30);

/// The last round that planned and had nothing to do.
#[derive(Debug, Clone, Copy)]
struct QuietRound {
    /// The state revision it planned from.
    revision: u64,
    /// When it planned.
    at: crate::model::Millis,
    /// Its plan's `retry_at`.
    retry_at: Option<crate::model::Millis>,
}

impl QuietRound {
    /// True when a round at `revision` and `now` would plan the same nothing again.
    fn still_holds(&self, revision: u64, now: crate::model::Millis) -> bool {
        let replan_ms = QUIET_REPLAN.as_millis() as u64;
        revision == self.revision
            && self.retry_at.is_none_or(|at| now < at)
            && now < self.at.saturating_add(replan_ms)
    }
}

/// Turns specs into placed tasks, one fenced plan per round.
///
/// Each round plans from a [`WatchedState`] brought up to the store's current revision (under
/// Raft, the latest committed one this node knows), so a round decodes only what changed since
/// the last one. Every write of the round is a fenced compare-and-swap on the revisions the plan
/// saw: a state that was stale all the same would only waste the round.
///
/// A round whose state has not changed since a round that had nothing to do (no action, nothing
/// unplaced) plans nothing, until that round's `retry_at` or [`QUIET_REPLAN`] has passed
/// ([`RoundReport::unchanged`]): planning is O(all tasks), seconds and hundreds of megabytes
/// at a million, and the controllers run a round at least every few seconds. Rollouts still
/// advance every round.
pub struct ReconcileController<S> {
    store: ClusterStore<S>,
    /// The decoded cluster state, kept current between rounds (one round at a time holds it).
    state: tokio::sync::Mutex<WatchedState<S>>,
    scheduler: Arc<Scheduler>,
    clock: Arc<dyn Clock>,
    policy: ReconcilePolicy,
    /// Told how long each round's planning took and what it placed (metrics).
    observer: SharedObserver,
    /// The last round that planned, if it had nothing to do.
    quiet: std::sync::Mutex<Option<QuietRound>>,
}

impl<S> std::fmt::Debug for ReconcileController<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReconcileController")
            .field("policy", &self.policy)
            .finish()
    }
}

impl<S: Store + Clone> ReconcileController<S> {
    pub fn new(
        store: ClusterStore<S>,
        scheduler: Arc<Scheduler>,
        clock: Arc<dyn Clock>,
        policy: ReconcilePolicy,
    ) -> Self {
        ReconcileController {
            state: tokio::sync::Mutex::new(store.watched_state()),
            store,
            scheduler,
            clock,
            policy,
            observer: no_observer(),
            quiet: std::sync::Mutex::new(None),
        }
    }

    /// This controller, reporting each round's planning time and placements to `observer`.
    pub fn with_observer(mut self, observer: SharedObserver) -> Self {
        self.observer = observer;
        self
    }

    /// Drops the decoded state and its watch (the next round reads everything): for a node
    /// that stops leading.
    pub async fn forget_state(&self) {
        self.state.lock().await.forget();
        *self.quiet_round() = None;
    }

    fn quiet_round(&self) -> std::sync::MutexGuard<'_, Option<QuietRound>> {
        self.quiet
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// How many times the rounds read the whole state (the first read included), and how many
    /// watch events they applied instead.
    pub async fn state_reads(&self) -> (u64, u64) {
        let state = self.state.lock().await;
        (state.reloads(), state.applied_events())
    }

    /// Runs `f` on the kept state brought up to the store's current revision (off the async
    /// workers: it may be long), between rounds. For the leader's other readers of the whole
    /// state (the garbage collector), so they decode nothing of their own.
    pub async fn with_state<R>(
        &self,
        f: impl FnOnce(&crate::store::ClusterState) -> R,
    ) -> crate::Result<R> {
        let mut watched = self.state.lock().await;
        let state = watched.current().await?;
        Ok(crate::blocking::cpu_bound(|| f(state)))
    }

    /// Brings the state up to the store's current revision, plans, and applies the plan under
    /// `fence`.
    pub async fn round(&self, fence: &Fence) -> crate::Result<RoundReport> {
        let mut watched = self.state.lock().await;
        let state = watched.current().await?;
        let rollouts =
            advance_rollouts(&self.store, state, self.clock.now(), Some(&fence.compare())).await?;
        if !rollouts.rolled_back.is_empty() {
            // The specs changed under the state read: plan from a fresh read, at once.
            return Ok(RoundReport {
                revision: state.revision,
                more: true,
                ..RoundReport::default()
            });
        }
        let now = self.clock.now();
        let quiet = *self.quiet_round();
        if let Some(q) = quiet.filter(|q| q.still_holds(state.revision, now)) {
            return Ok(RoundReport {
                revision: state.revision,
                retry_at: q.retry_at,
                unchanged: true,
                ..RoundReport::default()
            });
        }
        let planning = std::time::Instant::now();
        // Seconds at a million tasks: keep the runtime's other tasks (Raft heartbeats) moving.
        let mut plan = crate::blocking::cpu_bound(|| {
            reconcile_state(state, now, self.policy, &self.scheduler)
        });
        let traced = super::traces::open(&self.store, &mut plan).await;
        let placed = plan
            .actions
            .iter()
            .filter(|a| match a {
                Action::Create { task, .. } => task.node.is_some(),
                Action::Assign { .. } => true,
                _ => false,
            })
            .count();
        self.observer
            .reconcile_planned(planning.elapsed(), placed, plan.unplaced.len());
        let applied = apply_plan(&self.store, &plan, state, Some(&fence.compare())).await;
        traced.close();
        for (task, e) in &applied.failed {
            let known = state.tasks.iter().find(|t| t.id == task).or_else(|| {
                plan.actions.iter().find_map(|a| match a {
                    Action::Create { task: t, .. } if t.id == task => Some(&**t),
                    _ => None,
                })
            });
            let service = known.map_or("", |t| t.service.as_str());
            let node = known.and_then(|t| t.node.as_deref()).unwrap_or("");
            warn!(%task, service, node, error = %e, "action failed; the next round retries");
        }
        let fenced_out = applied.skipped > 0 && !fence.held(&self.store).await?;
        let quiet = plan.actions.is_empty() && plan.unplaced.is_empty() && !plan.more;
        *self.quiet_round() = quiet.then_some(QuietRound {
            revision: state.revision,
            at: now,
            retry_at: plan.retry_at,
        });
        for action in &plan.actions {
            let Action::Create {
                task,
                purpose,
                replaces,
            } = action
            else {
                continue;
            };
            let what = match purpose {
                Purpose::Rebalance => "rebalancing: starting a replacement on a less loaded node",
                Purpose::Move => "re-placement: starting a replacement on a better node",
                _ => continue,
            };
            info!(
                task = %task.id,
                service = %task.service,
                node = task.node.as_deref().unwrap_or("-"),
                replaces = replaces.as_deref().unwrap_or("-"),
                because = task.moved_because.as_deref().unwrap_or("-"),
                "{what}"
            );
        }
        for u in &plan.unplaced {
            debug!(service = %u.service, slot = u.slot, "cannot place: {} nodes rejected", u.rejections.len());
        }
        Ok(RoundReport {
            revision: state.revision,
            actions: plan.actions.len(),
            applied: applied.applied,
            skipped: applied.skipped,
            failed: applied.failed.len(),
            unplaced: plan.unplaced.len(),
            more: plan.more,
            retry_at: plan.retry_at,
            fenced_out,
            unchanged: false,
        })
    }
}

/// Settings of the leader's controllers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ControllerConfig {
    /// A reconcile round runs at least this often, besides after every change.
    pub reconcile_interval: Duration,
    /// Bounds and back-offs of each reconcile round (the cluster's replica limit among them).
    pub policy: ReconcilePolicy,
    pub liveness: LivenessConfig,
    pub gc: GcConfig,
    /// The autoscaler's sampling and evaluation timings.
    pub autoscale: AutoscaleConfig,
}

impl Default for ControllerConfig {
    fn default() -> Self {
        ControllerConfig {
            reconcile_interval: Duration::from_secs(5),
            policy: ReconcilePolicy::default(),
            liveness: LivenessConfig::default(),
            gc: GcConfig::default(),
            autoscale: AutoscaleConfig::default(),
        }
    }
}

/// The leader's controllers of one node.
pub struct Controllers<S, M: ?Sized> {
    node_id: String,
    store: ClusterStore<S>,
    clock: Arc<dyn Clock>,
    config: ControllerConfig,
    pub reconciler: ReconcileController<S>,
    pub liveness: LivenessController<S, M>,
    pub gc: GarbageCollector<S>,
    pub autoscale: AutoscaleController<S>,
}

impl<S, M: ?Sized> std::fmt::Debug for Controllers<S, M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Controllers")
            .field("node_id", &self.node_id)
            .field("config", &self.config)
            .finish()
    }
}

impl<S: Store + Clone, M: Membership + ?Sized> Controllers<S, M> {
    pub fn new(
        node_id: impl Into<String>,
        store: ClusterStore<S>,
        membership: Arc<M>,
        scheduler: Arc<Scheduler>,
        clock: Arc<dyn Clock>,
        config: ControllerConfig,
    ) -> Self {
        Controllers {
            node_id: node_id.into(),
            reconciler: ReconcileController::new(
                store.clone(),
                scheduler,
                clock.clone(),
                config.policy,
            ),
            liveness: LivenessController::new(
                store.clone(),
                membership,
                clock.clone(),
                config.liveness,
            ),
            gc: GarbageCollector::new(store.clone(), clock.clone(), config.gc),
            autoscale: AutoscaleController::new(store.clone(), clock.clone(), config.autoscale),
            store,
            clock,
            config,
        }
    }

    /// These controllers, reporting reconcile rounds to `observer`.
    pub fn with_observer(mut self, observer: SharedObserver) -> Self {
        self.reconciler = self.reconciler.with_observer(observer);
        self
    }

    /// Claims the fence for `term`.
    pub async fn claim(&self, term: u64) -> crate::Result<Fence> {
        Fence::claim(&self.store, &self.node_id, term, self.clock.now()).await
    }

    /// Runs the controllers whenever `leadership` says this node leads, until `shutdown`.
    pub async fn run(
        &self,
        mut leadership: watch::Receiver<Leadership>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        loop {
            let lead = *leadership.borrow_and_update();
            if let Some(term) = lead.term() {
                tokio::select! {
                    _ = self.lead(term, leadership.clone()) => {}
                    _ = shutdown.wait_for(|s| *s) => return,
                }
            }
            tokio::select! {
                r = leadership.changed() => if r.is_err() { return },
                _ = shutdown.wait_for(|s| *s) => return,
            }
        }
    }

    /// Leads in `term` until leadership changes or the fence is lost.
    async fn lead(&self, term: u64, mut leadership: watch::Receiver<Leadership>) {
        let fence = loop {
            match self.claim(term).await {
                Ok(f) => break f,
                Err(crate::Error::Conflict(why)) => {
                    warn!(%why, "not claiming the controllers");
                    let _ = leadership.changed().await;
                    return;
                }
                Err(e) => {
                    warn!(error = %e, "cannot claim the controllers yet; retrying");
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                        _ = leadership.changed() => return,
                    }
                }
            }
        };
        info!(node = %self.node_id, term, "leader: controllers running");
        tokio::select! {
            _ = self.reconcile_loop(&fence) => {}
            _ = self.liveness_loop(&fence) => {}
            _ = self.gc_loop(&fence) => {}
            _ = self.autoscale_loop(&fence) => {}
            _ = leadership.changed() => {}
        }
        self.reconciler.forget_state().await;
        warn!(node = %self.node_id, term, "controllers stopped");
    }

    /// Reconciles after every change (debounced) and at least every interval; returns when the
    /// fence is lost.
    async fn reconcile_loop(&self, fence: &Fence) {
        let mut changes = None;
        loop {
            if changes.is_none() {
                let from = self.store.inner().revision().await.unwrap_or(0) + 1;
                changes = self.store.inner().watch(keys::ROOT, from).await.ok();
            }
            let mut wait = self.config.reconcile_interval;
            match self.reconciler.round(fence).await {
                Ok(r) if r.fenced_out => return,
                Ok(r) => {
                    if r.more {
                        wait = Duration::ZERO;
                    } else if let Some(at) = r.retry_at {
                        let ms = at.saturating_sub(self.clock.now()).max(50);
                        wait = wait.min(Duration::from_millis(ms));
                    }
                }
                Err(e) => {
                    warn!(error = %e, "cannot reconcile; retrying");
                    wait = Duration::from_millis(500);
                }
            }
            let change = async {
                match changes.as_mut() {
                    Some(s) => matches!(s.next().await, Some(Ok(_))),
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                ok = change => {
                    if !ok { changes = None; }
                    // Let a burst of writes settle.
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    async fn liveness_loop(&self, fence: &Fence) {
        let mut membership_events = self.liveness.events();
        loop {
            let mut wait = self.config.liveness.resync_interval;
            match self.liveness.step(fence).await {
                Ok(r) if r.fenced_out => return,
                Ok(r) if !r.waiting.is_empty() => wait = wait.min(Duration::from_millis(50)),
                Ok(_) => {}
                Err(e) => warn!(error = %e, "cannot sync node records; retrying"),
            }
            tokio::select! {
                _ = membership_events.next() => {}
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// Evaluates autoscaled services every interval; returns when the fence is lost.
    async fn autoscale_loop(&self, fence: &Fence) {
        self.autoscale.reset();
        let compare = fence.compare();
        loop {
            tokio::time::sleep(self.config.autoscale.evaluate_interval).await;
            if let Err(e) = self.autoscale.round(Some(&compare)).await {
                warn!(error = %e, "cannot evaluate autoscaling; retrying");
            }
            if !fence.held(&self.store).await.unwrap_or(true) {
                return;
            }
        }
    }

    /// One garbage collection (see [`GarbageCollector`]) planned from the reconciler's kept
    /// state rather than a read of its own (at a million tasks a full read decodes for
    /// seconds); returns how many keys were deleted.
    pub async fn collect_garbage(&self, fence: &Fence) -> crate::Result<usize> {
        let doomed = self.reconciler.with_state(|s| self.gc.plan(s)).await?;
        self.gc.delete(&doomed, fence).await
    }

    async fn gc_loop(&self, fence: &Fence) {
        loop {
            tokio::time::sleep(self.config.gc.interval).await;
            match self.collect_garbage(fence).await {
                Ok(0) => {}
                Ok(n) => info!(deleted = n, "collected finished task records"),
                Err(e) => warn!(error = %e, "garbage collection failed; retrying"),
            }
            if !fence.held(&self.store).await.unwrap_or(true) {
                return;
            }
        }
    }
}
