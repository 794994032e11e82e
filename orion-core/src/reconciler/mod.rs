//! The reconciler: a pure function from desired state (specs) and actual state (tasks, nodes) to
//! the [`Action`]s that close the gap.
//!
//! [`reconcile`] does no I/O and reads no clock (the time comes in [`ReconcileInput::now`]); the
//! same input and scheduler always give the same [`Plan`]. Every action is idempotent and keyed by
//! a task id, and new task ids are derived from the input, so a new leader that redoes a plan (or
//! reconciles again from the same state) does no harm. A controller applies the plan, waits (for
//! health, update delays), and calls [`reconcile`] again: repeated rounds converge to a fixpoint
//! where the plan is empty.
//!
//! # Terms
//!
//! - A task is **active** when [`Task::is_active`] (live, not stopping, desired running).
//! - A **slot** is a replica number; replacements keep the slot of the task they replace. A slot is
//!   **occupied** when it holds an active task. Slot numbers may have gaps after a scale-down; new
//!   slots take the lowest free numbers.
//! - An active task is **settled** when it was created from the current spec version and is
//!   pending or on a `Ready` node. In each slot the best task is **kept** (settled first, then
//!   running and healthy, then starting, scheduled, pending; then the newest); it is **serving**
//!   when it is running and not unhealthy.
//! - A slot is **finished** when it has no active task and its latest task, from the current spec
//!   version, ended in a way its restart policy accepts: `failed` under `no`, `completed` under
//!   `no` or `on-failure`. A finished slot below `replicas` counts as satisfied and is not refilled
//!   (it only spares a refill: it never makes the reconciler stop a running task).
//!
//! # Decision table
//!
//! | Situation | Actions |
//! |---|---|
//! | live task on a `Down` or unknown node | `MarkLost` (state `lost`; desired stays `running`, so the node's agent can reconnect the container if the node comes back) |
//! | task of a service with no spec, desired running | `Stop(service_deleted)` |
//! | failed or completed task, desired running | `Stop(retired)`: the agent must not restart it any more |
//! | lost task | nothing: its slot is refilled; if its node comes back with the container running, the agent reconnects it and the surplus task of the slot is stopped (the original is kept: oldest first) |
//! | more occupied slots than `replicas` | `Stop(scale_down)` every task of the surplus slots, chosen: slots where no task serves first, then old version or draining, then on the node with most replicas of the service, then highest slot |
//! | two active tasks in one slot | keep one; `Stop(duplicate_slot / updated / drained)` the others once the kept one serves (tasks that do not run yet are stopped at once) |
//! | old-version task still pending | `Stop(updated)`; the slot is refilled |
//! | kept task pending | `Assign` it to a node, or report it in [`Plan::unplaced`] and, when the reason differs from its stored `error`, `UpdatePendingReason` (so the reason shown is this round's) |
//! | fewer occupied (plus finished) slots than `replicas` | `Create` in the vacated slots of lost, failed or completed tasks first (`replacement`), then in the lowest free slots (`new_replica`); unplaceable ones are created `Pending` with the reasons in `error` and reported in `unplaced`. A slot whose latest task failed is refilled only after a crash-loop back-off (exponential in [`Task::attempt`], capped; [`Plan::retry_at`] says when) |
//! | kept task on a `Draining` node | `Create(drain)` a replacement in the same slot elsewhere; the old one is stopped in a later round once the new one serves. If no node can take it, the old one keeps running and the slot is reported |
//! | kept task whose `Ready` node now breaks a scheduler rule past its tolerance (a degraded link; module `moves`) | `Create(move)` a replacement in the same slot elsewhere, within the disruption budget and after a cooldown; the old one is stopped (`moved`) once the new one serves. Unplaceable: reported, old one keeps running |
//! | kept task from an older spec version | `Create(update)` in the same slot, at most `update_strategy.parallelism` slots in flight; the old one is stopped once the new one serves. Beyond `update_strategy.max_surge` slots of a batch, `Stop(updated)` the old one first instead: its slot counts as in flight while it stops, and is refilled (`Create(update)`, same slot) once it has stopped. Unplaceable: reported, old one keeps running. None while the service's [`RolloutGate`] holds (paused, a batch starting, a delay); with a canary, only while fewer slots than `max_new_slots` hold the current version |
//! | a service at rest whose replicas per node differ by at least [`RebalancePolicy::min_spread`] (a node joined or came back; module [`rebalance`]) | `Create(rebalance)` in the same slot on the least loaded node that every filter accepts and that has been ready for the cooldown, within the rebalancing budget; the old one is stopped (`rebalanced`) once the new one serves |
//!
//! Placement runs in that order over all services (pending tasks, then refills, then drains, then
//! moves, then rebalancing, then updates, services by name), through the [`Scheduler`] over one [`ClusterView`] of the input in
//! which every placement is assigned, so later ones see earlier ones. Whatever filters the
//! scheduler has, the reconciler's guard runs the real `node_status`, `resources` and `max_tasks`
//! filters ([`GUARD_FILTERS`]) on the chosen node: it never places on a
//! `Down` or `Draining` node and never overcommits. Resources of tasks stopped in the same round
//! are not reused before the next round (they are still held until the agent stops them).
//!
//! Restarts in place are the agent's (restart policy). Once a task is reported terminal the
//! reconciler retires it, Swarm-like: under `always` and `unless-stopped` the slot is refilled by a
//! new task; under `on-failure` only after a failure; under `no` not until the spec changes. Lost
//! tasks are always replaced (while `replicas` still wants their slot). Rollout pacing (batches,
//! delays, health waits, canaries, pause, automatic rollback) is decided by [`rollout::step`]
//! over the stored [`Rollout`] records; [`reconcile_state`] turns it into each spec's
//! [`RolloutGate`], and [`Plan::retry_at`] says when a wait ends.
//!
//! When two specs share a name, the one with the highest version is used.
//!
//! # Bounds ([`ReconcilePolicy`])
//!
//! `replicas` is read as at most the cluster's replica limit ([`ReconcilePolicy::limits`]; an
//! out-of-bounds spec that made it into the store cannot inflate the cluster), and one round
//! creates at most
//! [`ReconcilePolicy::max_creates_per_round`] tasks ([`Plan::more`] says the rest waits for the
//! next round).
//!
//! # Example
//!
//! ```
//! use orion_core::model::{NetworkMatrix, Node, Resources, ServiceSpec};
//! use orion_core::reconciler::{Action, ReconcileInput, VersionedSpec, reconcile};
//! use orion_core::scheduler::{Scheduler, SchedulerConfig};
//!
//! // No filters or scorers: the reconciler's guard still keeps placements feasible.
//! let scheduler = Scheduler::new(Vec::new(), Vec::new(), SchedulerConfig::default());
//! let specs = [VersionedSpec::new(ServiceSpec::new("web", "nginx", 2), 1)];
//! let nodes = [Node::new("n1", Resources::new(4000, 8 << 30))];
//! let plan = reconcile(
//!     &ReconcileInput {
//!         specs: &specs,
//!         tasks: &[],
//!         nodes: &nodes,
//!         network: &NetworkMatrix::new(),
//!         now: 1_700_000_000_000,
//!         policy: Default::default(),
//!     },
//!     &scheduler,
//! );
//! assert_eq!(plan.actions.len(), 2);
//! assert!(plan.actions.iter().all(|a| matches!(a, Action::Create { .. })));
//! assert!(plan.actions.iter().all(|a| a.placed_on() == Some("n1")));
//! ```

use std::cmp::Reverse;
use std::collections::{BTreeMap, HashSet};

use serde::{Deserialize, Serialize};

use crate::hash::{StableBuildHasher, StableMap};
use crate::model::spec::SpecLimits;
use crate::model::{
    DesiredState, Millis, NetworkMatrix, Node, NodeStatus, ServiceSpec, Task, TaskState,
};
use crate::scheduler::{ClusterView, Scheduler};
use crate::store::ClusterState;

mod action;
mod apply;
mod moves;
mod place;
mod placer;
pub mod rebalance;
pub mod rollout;
mod slots;

pub use action::{Action, Plan, Purpose, StopReason, Unplaced};
pub use apply::{ApplyReport, MAX_ACTIONS_PER_TXN, MAX_BATCHES_IN_FLIGHT, apply_plan};
pub use placer::{GUARD, GUARD_FILTERS};
pub use rebalance::{REBALANCE_PREFIX, RebalancePolicy};
pub use rollout::{Rollout, RolloutGate, RolloutPhase};

use placer::{IdMaker, Placer};
use slots::{SlotTasks, keep_key, latest_key, serves};

/// A service spec with its version (bumped on every change; tasks record the version they were
/// created from).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VersionedSpec {
    pub spec: ServiceSpec,
    pub version: u64,
    /// How far its rollout may go this round (module [`rollout`]); open by default.
    #[serde(default)]
    pub gate: RolloutGate,
}

impl VersionedSpec {
    /// Pairs a spec with its version, its rollout ungated.
    pub fn new(spec: ServiceSpec, version: u64) -> Self {
        VersionedSpec {
            spec,
            version,
            gate: RolloutGate::default(),
        }
    }

    /// This spec with its rollout gated by `gate`.
    pub fn with_gate(mut self, gate: RolloutGate) -> Self {
        self.gate = gate;
        self
    }
}

/// Everything [`reconcile`] looks at: one consistent snapshot of the cluster state.
#[derive(Debug, Clone, Copy)]
pub struct ReconcileInput<'a> {
    /// The desired services.
    pub specs: &'a [VersionedSpec],
    /// Every known task, terminal ones included (they tell which slots were lost or finished).
    pub tasks: &'a [Task],
    /// Every known node; a task on a node not in this list is treated as on a `Down` node.
    pub nodes: &'a [Node],
    /// Network measurements, for network-aware scorers.
    pub network: &'a NetworkMatrix,
    /// The time stamped on created tasks, and against which crash-loop back-offs are measured.
    pub now: Millis,
    /// Bounds and back-offs.
    pub policy: ReconcilePolicy,
}

/// Bounds and back-offs of a reconcile round.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReconcilePolicy {
    /// The cluster's limits: a stored spec's `replicas` above `limits.max_replicas` are read as
    /// that many ([`SpecLimits::effective_replicas`]).
    pub limits: SpecLimits,
    /// Tasks created in one round at most; the rest in later rounds.
    pub max_creates_per_round: usize,
    /// Back-off before refilling a slot whose latest task failed, doubled per consecutive failure.
    pub crash_backoff_base: Millis,
    /// The longest such back-off.
    pub crash_backoff_max: Millis,
    /// Re-placement's hysteresis: a running task moves only when its node breaks a rule by more
    /// than this percentage of the rule's bound (new placements need the bound itself).
    pub move_tolerance_percent: u32,
    /// A task is moved only once it has run this long, so a slot moves at most once per cooldown.
    pub move_cooldown: Millis,
    /// Moves in flight across the cluster at most; 0 turns re-placement off (see `moves`).
    pub max_moves_in_flight: u32,
    /// Rebalancing: replicas moving to nodes that joined or came back (module [`rebalance`]).
    #[serde(default)]
    pub rebalance: RebalancePolicy,
}

impl Default for ReconcilePolicy {
    fn default() -> Self {
        ReconcilePolicy {
            limits: SpecLimits::default(),
            max_creates_per_round: 1_000,
            crash_backoff_base: 1_000,
            crash_backoff_max: 300_000,
            move_tolerance_percent: 20,
            move_cooldown: 60_000,
            max_moves_in_flight: 2,
            rebalance: RebalancePolicy::default(),
        }
    }
}

impl ReconcilePolicy {
    /// How long a slot waits after its latest task failed, `attempt` failures in a row before it.
    pub fn crash_backoff(&self, attempt: u32) -> Millis {
        self.crash_backoff_base
            .saturating_mul(1u64 << attempt.min(30))
            .min(self.crash_backoff_max)
    }
}

/// Computes the actions that move `input` toward its specs. Pure and deterministic; see the
/// module docs for the decision table.
pub fn reconcile(input: &ReconcileInput<'_>, scheduler: &Scheduler) -> Plan {
    let mut r = Round::new(input);
    r.mark_lost();
    r.stop_orphans_and_retire();
    let nodes = scheduler.annotated_nodes(input.nodes, input.network, input.now);
    let view = ClusterView::new(nodes.into_owned(), input.tasks, input.network.clone());
    r.find_misplaced(scheduler, &view);
    r.find_rebalancing();
    let mut works = Vec::new();
    for vs in r.specs.values().copied().collect::<Vec<_>>() {
        works.push(r.analyze(vs));
    }
    let mut placer = Placer::new(scheduler, view);
    r.place_all(&works, &mut placer);
    r.plan
}

/// [`reconcile`] over a state read from the store (`ClusterStore::load_state`): its services at
/// their versions, tasks, nodes and measurements, at time `now` under `policy`. Each service's
/// rollout is gated by [`rollout::step`] over its stored [`Rollout`] record, and the plan's
/// `retry_at` includes the end of any health wait or batch delay.
pub fn reconcile_state(
    state: &ClusterState,
    now: Millis,
    policy: ReconcilePolicy,
    scheduler: &Scheduler,
) -> Plan {
    let (specs, wake_at) = rollout::gated_specs(state, now);
    let input = ReconcileInput {
        specs: &specs,
        tasks: &state.tasks,
        nodes: &state.nodes,
        network: &state.network,
        now,
        policy,
    };
    let mut plan = reconcile(&input, scheduler);
    if let Some(at) = wake_at {
        plan.retry_at = Some(plan.retry_at.map_or(at, |r| r.min(at)));
    }
    plan
}

/// What one service still needs placed, found by [`Round::analyze`].
struct ServiceWork<'a> {
    spec: &'a VersionedSpec,
    /// Kept tasks that are pending.
    pending: Vec<&'a Task>,
    /// Slots to fill: (slot, purpose, task replaced).
    refills: Vec<(u32, action::Purpose, Option<&'a Task>)>,
    /// Kept tasks on draining nodes.
    drains: Vec<&'a Task>,
    /// Kept tasks to move off their node (`moves`).
    moves: Vec<&'a Task>,
    /// Slots whose move is in flight (new task not serving yet).
    moves_in_flight: u32,
    /// Kept tasks from an older version, not-serving ones first.
    updates: Vec<&'a Task>,
    /// Slots whose update is in flight: a new task not serving yet, or an old one stopping
    /// first (`max_surge`).
    updates_in_flight: u32,
    /// Of those, slots whose new task started before the old one stopped (the surge).
    surge_in_flight: u32,
    /// Slots whose rebalancing move is in flight (new task not serving yet).
    rebalances_in_flight: u32,
    /// The kept task of every occupied slot.
    kept: Vec<&'a Task>,
    /// True when something else (a refill, drain, move, update, pending task, a replica not
    /// serving) is going on: no rebalancing then.
    busy: bool,
    /// Slots whose kept task is from the current version (a canary's count).
    current_slots: u32,
}

/// A set of ids hashed with FNV (the round looks up every task in several).
type StableSet<'a> = HashSet<&'a str, StableBuildHasher>;

struct Round<'a> {
    input: &'a ReconcileInput<'a>,
    specs: BTreeMap<&'a str, &'a VersionedSpec>,
    node_status: StableMap<&'a str, NodeStatus>,
    /// Tasks by id order.
    tasks: Vec<&'a Task>,
    /// The same, per service (each service's list is taken by its analysis).
    by_service: StableMap<&'a str, Vec<&'a Task>>,
    lost: StableSet<'a>,
    /// Tasks to move off their node, with why (`moves`).
    misplaced: StableMap<&'a str, String>,
    /// Those of them leaving for rebalancing (`rebalance`), not for a broken rule.
    rebalancing: StableSet<'a>,
    /// Services whose rebalancing replacement failed: no rebalancing before this time.
    rebalance_held_until: StableMap<&'a str, Millis>,
    stopped: StableSet<'a>,
    ids: IdMaker<'a>,
    /// Creates this round may still make ([`ReconcilePolicy::max_creates_per_round`]).
    creates_left: usize,
    plan: Plan,
}

impl<'a> Round<'a> {
    fn new(input: &'a ReconcileInput<'a>) -> Self {
        let mut specs: BTreeMap<&str, &VersionedSpec> = BTreeMap::new();
        for vs in input.specs {
            let slot = specs.entry(vs.spec.name.as_str()).or_insert(vs);
            if vs.version > slot.version {
                *slot = vs;
            }
        }
        let mut tasks: Vec<&Task> = input.tasks.iter().collect();
        tasks.sort_by(|a, b| a.id.cmp(&b.id));
        let mut by_service: StableMap<&str, Vec<&Task>> = StableMap::default();
        for &t in &tasks {
            by_service.entry(t.service.as_str()).or_default().push(t);
        }
        Round {
            by_service,
            input,
            specs,
            node_status: input
                .nodes
                .iter()
                .map(|n| (n.id.as_str(), n.status))
                .collect(),
            tasks,
            lost: StableSet::default(),
            misplaced: StableMap::default(),
            rebalancing: StableSet::default(),
            rebalance_held_until: StableMap::default(),
            stopped: StableSet::default(),
            ids: IdMaker::new(input.tasks.iter().map(|t| t.id.as_str())),
            creates_left: input.policy.max_creates_per_round,
            plan: Plan::default(),
        }
    }

    /// Status of a task's node; `Down` for unknown nodes, `None` for unplaced tasks.
    fn status_of(&self, t: &Task) -> Option<NodeStatus> {
        let node = t.node.as_deref()?;
        Some(
            self.node_status
                .get(node)
                .copied()
                .unwrap_or(NodeStatus::Down),
        )
    }

    fn is_active(&self, t: &Task) -> bool {
        t.is_active() && !self.lost.contains(t.id.as_str())
    }

    fn stop(&mut self, t: &'a Task, reason: StopReason) {
        if self.stopped.insert(t.id.as_str()) {
            self.plan.actions.push(Action::Stop {
                task_id: t.id.to_string(),
                reason,
            });
        }
    }

    fn mark_lost(&mut self) {
        for i in 0..self.tasks.len() {
            let t = self.tasks[i];
            if self.status_of(t) == Some(NodeStatus::Down)
                && t.state.can_transition_to(TaskState::Lost)
                && let Some(node) = &t.node
            {
                self.lost.insert(t.id.as_str());
                self.plan.actions.push(Action::MarkLost {
                    task_id: t.id.to_string(),
                    node: node.to_string(),
                });
            }
        }
    }

    fn stop_orphans_and_retire(&mut self) {
        for i in 0..self.tasks.len() {
            let t = self.tasks[i];
            if self.lost.contains(t.id.as_str()) || t.desired != DesiredState::Running {
                continue;
            }
            if !self.specs.contains_key(t.service.as_str()) {
                self.stop(t, StopReason::ServiceDeleted);
            } else if t.state.is_terminal() && t.state != TaskState::Lost {
                // A lost task is left to its node's agent: reconnected if its container still
                // runs when the node comes back, given up otherwise.
                self.stop(t, StopReason::Retired);
            }
        }
    }

    fn is_settled(&self, t: &Task, version: u64) -> bool {
        t.spec_version == version
            && matches!(self.status_of(t), None | Some(NodeStatus::Ready))
            && !self.misplaced.contains_key(t.id.as_str())
    }

    /// Asks for another round at `at` at the latest.
    fn retry_at(&mut self, at: Millis) {
        self.plan.retry_at = Some(self.plan.retry_at.map_or(at, |r| r.min(at)));
    }

    /// Decides the stops of one service and collects what it needs placed.
    fn analyze(&mut self, vs: &'a VersionedSpec) -> ServiceWork<'a> {
        let (spec, version) = (&vs.spec, vs.version);
        let replicas = self.input.policy.limits.effective_replicas(spec);
        let mut slots: BTreeMap<u32, SlotTasks<'a>> = BTreeMap::new();
        let own = self
            .by_service
            .remove(spec.name.as_str())
            .unwrap_or_default();
        for t in own {
            let entry = slots.entry(t.slot).or_default();
            if self.is_active(t) {
                if t.state == TaskState::Pending && t.spec_version != version {
                    self.stop(t, StopReason::Updated);
                } else {
                    entry.active.push(t);
                }
            } else if t.state.is_terminal() || self.lost.contains(t.id.as_str()) {
                if entry.latest.is_none_or(|l| latest_key(t) > latest_key(l)) {
                    entry.latest = Some(t);
                }
            } else if t.desired == DesiredState::Shutdown
                && t.node.is_some()
                && t.state != TaskState::Pending
                && entry.stopping.is_none_or(|l| latest_key(t) > latest_key(l))
            {
                entry.stopping = Some(t);
            }
        }
        for st in slots.values_mut().filter(|st| st.active.len() > 1) {
            // Stable, greatest first.
            st.active
                .sort_by_cached_key(|t| Reverse(keep_key(t, self.is_settled(t, version))));
        }
        self.scale_down(&mut slots, replicas, version);

        let mut work = ServiceWork {
            spec: vs,
            pending: Vec::new(),
            refills: Vec::new(),
            drains: Vec::new(),
            moves: Vec::new(),
            moves_in_flight: 0,
            updates: Vec::new(),
            updates_in_flight: 0,
            surge_in_flight: 0,
            rebalances_in_flight: 0,
            kept: Vec::new(),
            busy: false,
            current_slots: 0,
        };
        let mut occupied = 0u32;
        let mut finished_below = 0u32;
        let mut vacated = Vec::new();
        for (&slot, st) in &slots {
            let Some(&keep) = st.active.first() else {
                if slot < replicas
                    && let Some(s) = st.stopping
                    && s.spec_version != version
                {
                    // An update stopping the old replica first (`max_surge`): the slot is
                    // refilled once it has stopped.
                    occupied += 1;
                    work.updates_in_flight += 1;
                    continue;
                }
                match st.latest {
                    Some(l) if self.finished(l, spec.restart_policy, version) => {
                        finished_below += u32::from(slot < replicas);
                    }
                    Some(l) if l.state != TaskState::Stopped => {
                        vacated.push((slot, Purpose::Replacement, l));
                    }
                    Some(l) if l.spec_version != version && slot < replicas => {
                        // Its old replica stopped first: the new one takes its place.
                        vacated.push((slot, Purpose::Update, l));
                    }
                    _ => {}
                }
                continue;
            };
            occupied += 1;
            work.kept.push(keep);
            let keep_settled = self.is_settled(keep, version);
            let serving = serves(keep);
            let (mut waiting_old, mut waiting_move, mut waiting_rebalance) = (false, false, false);
            for &o in &st.active[1..] {
                let moving = self.misplaced.contains_key(o.id.as_str());
                let rebalancing = self.rebalancing.contains(o.id.as_str());
                if serving || o.state != TaskState::Running {
                    let reason = if !keep_settled || self.is_settled(o, version) {
                        StopReason::DuplicateSlot
                    } else if o.spec_version != version {
                        StopReason::Updated
                    } else if rebalancing {
                        StopReason::Rebalanced
                    } else if moving {
                        StopReason::Moved
                    } else {
                        StopReason::Drained
                    };
                    self.stop(o, reason);
                } else if o.spec_version != version {
                    waiting_old = true;
                } else if rebalancing {
                    waiting_rebalance = true;
                } else if moving {
                    waiting_move = true;
                }
            }
            if !keep_settled || !serving || st.active.len() > 1 {
                work.busy = true;
            }
            if keep_settled {
                work.current_slots += 1;
                if keep.state == TaskState::Pending {
                    work.pending.push(keep);
                }
                if waiting_old {
                    work.updates_in_flight += 1;
                    work.surge_in_flight += 1;
                } else if !serving
                    && st
                        .latest
                        .is_some_and(|l| l.spec_version != version && l.state == TaskState::Stopped)
                {
                    // The new replica of a slot whose old one stopped first, not serving yet.
                    work.updates_in_flight += 1;
                }
                if waiting_move {
                    work.moves_in_flight += 1;
                }
                if waiting_rebalance {
                    work.rebalances_in_flight += 1;
                }
            } else if self.status_of(keep) == Some(NodeStatus::Draining) {
                work.drains.push(keep);
            } else if self.misplaced.contains_key(keep.id.as_str()) {
                work.moves.push(keep);
            } else {
                work.updates.push(keep);
            }
        }
        work.updates.sort_by_key(|t| (serves(t), t.slot));

        let mut need = replicas
            .saturating_sub(occupied)
            .saturating_sub(finished_below);
        for (slot, purpose, l) in vacated {
            if need == 0 {
                break;
            }
            need -= 1;
            if let Some(at) = self.backing_off(l, version) {
                // Crash loop: this slot waits; it still counts, so no other slot is filled instead.
                self.retry_at(at);
                work.busy = true;
                continue;
            }
            work.refills.push((slot, purpose, Some(l)));
        }
        let mut slot = 0u32;
        while need > 0 {
            let free = slots.get(&slot).is_none_or(|st| {
                st.active.is_empty()
                    && st.stopping.is_none_or(|s| s.spec_version == version)
                    && st.latest.is_none_or(|l| l.state == TaskState::Stopped)
            });
            if free {
                work.refills.push((slot, Purpose::NewReplica, None));
                need -= 1;
            }
            slot += 1;
        }
        work
    }
}
