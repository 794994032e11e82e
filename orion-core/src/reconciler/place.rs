//! Placement of what [`Round::analyze`](super::Round) found: pending tasks, refills, drains,
//! moves and updates, in that order, through one [`Placer`].

use super::placer::{Placer, new_task};
use super::{Action, Purpose, Round, ServiceWork, Unplaced, VersionedSpec, action};
use crate::model::{Task, TaskState};

impl<'a> Round<'a> {
    pub(super) fn place_all(&mut self, works: &[ServiceWork<'a>], placer: &mut Placer<'_>) {
        let now = self.input.now;
        for w in works {
            let spec = &w.spec.spec;
            for &t in &w.pending {
                match placer.place(spec, &t.id, t.resources) {
                    Ok(node) => self.plan.actions.push(Action::Assign {
                        task_id: t.id.to_string(),
                        node,
                    }),
                    Err(rejections) => {
                        // The reason of a task that stays pending follows the cluster: written
                        // only when its text changed, so a stable reason costs no write.
                        let reason = action::summarize(&rejections);
                        if t.error.as_deref() != Some(reason.as_str()) {
                            self.plan.actions.push(Action::UpdatePendingReason {
                                task_id: t.id.to_string(),
                                reason,
                            });
                        }
                        self.plan.unplaced.push(Unplaced {
                            service: spec.name.clone(),
                            slot: t.slot,
                            purpose: Purpose::AssignPending,
                            task_id: Some(t.id.to_string()),
                            rejections,
                        })
                    }
                }
            }
        }
        for w in works {
            let (spec, version) = (&w.spec.spec, w.spec.version);
            for &(slot, purpose, replaces) in &w.refills {
                if self.creates_left == 0 {
                    self.plan.more = true;
                    break;
                }
                self.creates_left -= 1;
                let replaced = replaces.map(|t| t.id.as_str());
                let attempt = replaces
                    .filter(|t| t.state == TaskState::Failed && t.spec_version == version)
                    .map_or(0, |t| t.attempt.saturating_add(1));
                let id = self.ids.make(&spec.name, slot, version, replaced);
                // Reschedule: a task that failed on its node (after its restarts in place there)
                // goes to another node when one can take it.
                let avoid = replaces
                    .filter(|t| t.state == TaskState::Failed)
                    .and_then(|t| t.node.as_deref());
                let (node, error) =
                    match placer.place_avoiding(spec, &id, spec.resources.into(), avoid) {
                        Ok(node) => (Some(node), None),
                        Err(rejections) => {
                            let error = action::summarize(&rejections);
                            self.plan.unplaced.push(Unplaced {
                                service: spec.name.clone(),
                                slot,
                                purpose,
                                task_id: Some(id.clone()),
                                rejections,
                            });
                            (None, Some(error))
                        }
                    };
                let mut task = new_task(spec, version, id, slot, node, error, now);
                task.attempt = attempt;
                self.plan.actions.push(Action::Create {
                    task,
                    purpose,
                    replaces: replaced.map(str::to_owned),
                });
            }
        }
        for w in works {
            for &old in &w.drains {
                self.start_first(w.spec, old, Purpose::Drain, placer, None);
            }
        }
        self.place_moves(works, placer);
        self.place_rebalancing(works, placer);
        for w in works {
            let gate = w.spec.gate;
            let strategy = &w.spec.spec.update_strategy;
            let mut budget = if gate.hold {
                0
            } else {
                strategy
                    .parallelism
                    .max(1)
                    .saturating_sub(w.updates_in_flight)
            };
            if let Some(max) = gate.max_new_slots {
                budget = budget.min(max.saturating_sub(w.current_slots));
            }
            let mut surge = strategy.surge().saturating_sub(w.surge_in_flight);
            for &old in w.updates.iter().take(budget as usize) {
                if surge > 0 {
                    surge -= 1;
                    self.start_first(w.spec, old, Purpose::Update, placer, None);
                } else {
                    // `max_surge` reached: the old replica stops first; its slot is refilled
                    // with the new version once it has stopped.
                    self.stop(old, super::StopReason::Updated);
                }
            }
        }
    }

    /// Creates a replacement for `old` in its slot if a node can take it; `old` keeps running
    /// until the replacement serves. `moved_because` is recorded on the replacement.
    pub(super) fn start_first(
        &mut self,
        vs: &VersionedSpec,
        old: &Task,
        purpose: Purpose,
        placer: &mut Placer<'_>,
        moved_because: Option<String>,
    ) {
        let (spec, version) = (&vs.spec, vs.version);
        if self.creates_left == 0 {
            self.plan.more = true;
            return;
        }
        self.creates_left -= 1;
        let id = self.ids.make(&spec.name, old.slot, version, Some(&old.id));
        match placer.place(spec, &id, spec.resources.into()) {
            Ok(node) => {
                let mut task = new_task(
                    spec,
                    version,
                    id,
                    old.slot,
                    Some(node),
                    None,
                    self.input.now,
                );
                task.moved_because = moved_because.map(Into::into);
                self.plan.actions.push(Action::Create {
                    task,
                    purpose,
                    replaces: Some(old.id.to_string()),
                });
            }
            Err(rejections) => self.plan.unplaced.push(Unplaced {
                service: spec.name.clone(),
                slot: old.slot,
                purpose,
                task_id: None,
                rejections,
            }),
        }
    }
}
