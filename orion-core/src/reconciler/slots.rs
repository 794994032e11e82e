//! The slots of one service: scale-down, crash-loop back-off, finished slots, and how the tasks
//! of a slot are ranked (which one is kept).

use std::cmp::Reverse;
use std::collections::{BTreeMap, HashMap};

use smallvec::SmallVec;

use crate::model::spec::RestartPolicy;
use crate::model::{Millis, Task, TaskState};

use super::{Round, StopReason};

impl<'a> Round<'a> {
    /// Stops whole slots while more than `replicas` are occupied (see the decision table).
    pub(super) fn scale_down(
        &mut self,
        slots: &mut BTreeMap<u32, SlotTasks<'a>>,
        replicas: u32,
        version: u64,
    ) {
        let occupied = slots.values().filter(|s| !s.active.is_empty()).count() as u32;
        let mut surplus = occupied.saturating_sub(replicas);
        if surplus == 0 {
            return;
        }
        let mut per_node: HashMap<&str, u32> = HashMap::new();
        for t in slots.values().flat_map(|s| s.active.iter()) {
            if let Some(n) = t.node.as_deref() {
                *per_node.entry(n).or_default() += 1;
            }
        }
        while surplus > 0 {
            let victim = slots
                .iter()
                .filter_map(|(&slot, st)| st.active.first().map(|k| (slot, *k, st)))
                .max_by_key(|&(slot, k, st)| {
                    // A slot serves if any of its tasks does (an update may be in flight).
                    let serving = st.active.iter().any(|t| serves(t));
                    let on_node = k.node.as_deref().and_then(|n| per_node.get(n)).copied();
                    (
                        !serving,
                        !self.is_settled(k, version),
                        on_node.unwrap_or(0),
                        slot,
                    )
                })
                .map(|(slot, _, _)| slot);
            let Some(slot) = victim else { break };
            let Some(st) = slots.get_mut(&slot) else {
                break;
            };
            for t in std::mem::take(&mut st.active) {
                if let Some(c) = t.node.as_deref().and_then(|n| per_node.get_mut(n)) {
                    *c = c.saturating_sub(1);
                }
                self.stop(t, StopReason::ScaleDown);
            }
            st.latest = None;
            surplus -= 1;
        }
    }

    /// When `l` (the latest task of a vacated slot) failed from the current spec less than its
    /// crash-loop back-off ago: the time the slot may be refilled.
    pub(super) fn backing_off(&self, l: &Task, version: u64) -> Option<Millis> {
        if l.state != TaskState::Failed || l.spec_version != version {
            return None;
        }
        let at = l
            .updated_at
            .saturating_add(self.input.policy.crash_backoff(l.attempt));
        (self.input.now < at).then_some(at)
    }

    /// True when `l` (the latest task of a slot with no active task) ended as its policy accepts.
    pub(super) fn finished(&self, l: &Task, policy: RestartPolicy, version: u64) -> bool {
        if l.spec_version != version || self.lost.contains(l.id.as_str()) {
            return false;
        }
        match l.state {
            TaskState::Failed => {
                policy == RestartPolicy::No
                    || (policy == RestartPolicy::UnlessStopped
                        && crate::model::spec::stopped_from_outside(
                            l.exit_code,
                            l.error.as_deref().is_some_and(|e| e.contains("OOM killer")),
                        ))
            }
            TaskState::Completed => matches!(policy, RestartPolicy::No | RestartPolicy::OnFailure),
            _ => false,
        }
    }
}

/// The tasks of one slot: active ones (best to keep first), the latest terminal (or lost) one,
/// and the latest one still stopping. A slot rarely holds more than two active tasks (an update
/// or a move in flight), so they are kept inline: a round over a million slots allocates none.
#[derive(Default)]
pub(super) struct SlotTasks<'a> {
    pub(super) active: SmallVec<[&'a Task; 2]>,
    pub(super) latest: Option<&'a Task>,
    pub(super) stopping: Option<&'a Task>,
}

/// True when the task is running and its health check (if any) passed: [`Task::is_serving`].
pub(super) fn serves(t: &Task) -> bool {
    t.is_serving()
}

/// Orders terminal tasks of a slot by recency.
pub(super) fn latest_key(t: &Task) -> (Millis, Millis, &str) {
    (t.created_at, t.updated_at, t.id.as_str())
}

/// Orders active tasks of a slot: the greatest is kept. Between equals the oldest wins, so when a
/// node comes back and its agent reconnects the original task, the replacement made meanwhile is
/// the one stopped (as Nomad does for reconnecting clients).
pub(super) fn keep_key(t: &Task, settled: bool) -> (bool, u8, Reverse<Millis>, Reverse<&str>) {
    let state = match t.state {
        TaskState::Running if t.is_serving() => 4,
        TaskState::Running => 3,
        TaskState::Starting => 2,
        TaskState::Scheduled => 1,
        _ => 0,
    };
    (
        settled,
        state,
        Reverse(t.created_at),
        Reverse(t.id.as_str()),
    )
}
