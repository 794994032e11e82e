//! Re-placement: running tasks whose node now breaks a rule of the scheduler (a network rule
//! whose link degraded) move elsewhere, start new then stop old, within a disruption budget.
//!
//! - **Which tasks.** A task is *misplaced* when it is active and serving, from the current spec
//!   version, on a `Ready` node, has run at least [`ReconcilePolicy::move_cooldown`], and
//!   [`Scheduler::recheck`] rejects its node with the bound widened by
//!   [`ReconcilePolicy::move_tolerance_percent`]. New placements need the bound itself, so a task
//!   moves only when a clearly better node exists (the gain passes the tolerance), and the node it
//!   moves to is not one it would leave again at once: hysteresis.
//! - **How.** A misplaced task is treated as not settled, like a task on a draining node: a
//!   replacement in the same slot is placed by the scheduler (which never picks a node breaking
//!   the rule); the old task keeps running until the new one serves, then is stopped
//!   ([`StopReason::Moved`](super::StopReason::Moved)). If no node can take it, it stays where it
//!   is and the slot is reported in [`Plan::unplaced`](super::Plan::unplaced). If the link
//!   recovers before the new task serves, the old task is settled again and kept, and the new one
//!   is stopped.
//! - **Budget.** Moves in flight (a new task not serving yet, its old one still running) are at
//!   most [`ReconcilePolicy::max_moves_in_flight`] across the cluster and
//!   `update_strategy.parallelism` per service; `max_moves_in_flight: 0` turns re-placement off.
//! - **Cooldown.** A task is not moved before it has run `move_cooldown`: each move makes a new
//!   task, so a slot moves at most once per cooldown. A task that would move but is cooling down
//!   sets [`Plan::retry_at`](super::Plan::retry_at) to the end of its cooldown.
//! - **Record.** The new task's `moved_because` says which node it left and which rule that node
//!   broke.
//!
//! [`ReconcilePolicy::move_cooldown`]: super::ReconcilePolicy::move_cooldown
//! [`ReconcilePolicy::move_tolerance_percent`]: super::ReconcilePolicy::move_tolerance_percent
//! [`ReconcilePolicy::max_moves_in_flight`]: super::ReconcilePolicy::max_moves_in_flight

use crate::model::NodeStatus;
use crate::scheduler::{ClusterView, PlacementRequest, Scheduler};

use super::placer::Placer;
use super::{Purpose, Round, ServiceWork, serves};

impl<'a> Round<'a> {
    /// Finds the misplaced tasks (see the module docs) and records why each should move.
    pub(super) fn find_misplaced(&mut self, scheduler: &Scheduler, view: &ClusterView) {
        let policy = self.input.policy;
        if policy.max_moves_in_flight == 0 {
            return;
        }
        let tolerance = f64::from(policy.move_tolerance_percent) / 100.0;
        for i in 0..self.tasks.len() {
            let t = self.tasks[i];
            let (Some(vs), Some(node)) = (
                self.specs.get(t.service.as_str()).copied(),
                t.node.as_deref(),
            ) else {
                continue;
            };
            if !self.is_active(t)
                || !serves(t)
                || t.spec_version != vs.version
                || self.status_of(t) != Some(NodeStatus::Ready)
            {
                continue;
            }
            let req = PlacementRequest {
                spec: &vs.spec,
                task_id: &t.id,
                resources: t.resources,
            };
            let Err(why) = scheduler.recheck(&req, node, view, tolerance) else {
                continue;
            };
            let free_at = t.created_at.saturating_add(policy.move_cooldown);
            if self.input.now < free_at {
                self.retry_at(free_at);
                continue;
            }
            self.misplaced.insert(
                t.id.as_str(),
                format!("moved off {node}: {} rejects it now ({why})", why.filter),
            );
        }
    }

    /// Starts moves within the budget: every service's misplaced tasks in slot order, at most
    /// `update_strategy.parallelism` in flight per service and
    /// [`ReconcilePolicy::max_moves_in_flight`](super::ReconcilePolicy::max_moves_in_flight) in
    /// all. Each attempt counts, placed or not, so an unplaceable move cannot crowd the round.
    pub(super) fn place_moves(&mut self, works: &[ServiceWork<'a>], placer: &mut Placer<'_>) {
        let in_flight: u32 = works.iter().map(|w| w.moves_in_flight).sum();
        let mut left = self
            .input
            .policy
            .max_moves_in_flight
            .saturating_sub(in_flight);
        for w in works {
            let per_service = w
                .spec
                .spec
                .update_strategy
                .parallelism
                .max(1)
                .saturating_sub(w.moves_in_flight);
            for &old in w.moves.iter().take(per_service.min(left) as usize) {
                left -= 1;
                let because = self.misplaced.get(old.id.as_str()).cloned();
                self.start_first(w.spec, old, Purpose::Move, placer, because);
            }
        }
    }
}
