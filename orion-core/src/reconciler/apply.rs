//! Applying a [`Plan`](super::Plan) to a store: each action is one compare-and-swap transaction
//! on one task, fenced.
//!
//! A plan is built from one [`ClusterState`] read at one revision. Each action is written only if
//! - the controller's fence still holds (the leader record has not changed since this
//!   controller claimed it: a deposed or paused leader's half-done plan cannot act once a new
//!   leader has claimed), and
//! - what the action was decided on has not changed since the state was read: the task's key
//!   (for `Assign`, `Stop`, `MarkLost`), or the replica slot's key (for `Create`, which also
//!   requires the new task's key to be missing and records the task in the slot). Two
//!   controllers can therefore never both fill one slot, whatever ids they pick.
//!
//! An action whose compare fails is skipped, not retried: the next round re-reads the state and
//! decides again. Applying a plan twice is harmless (the second time every compare fails).

use std::collections::HashMap;

use crate::error::{Error, Result};
use crate::model::{DesiredState, Task, TaskState};
use crate::store::{ClusterState, ClusterStore, Compare, Op, Store, keys};

use super::{Action, Plan};

/// What applying a plan did.
#[derive(Debug, Default)]
pub struct ApplyReport {
    /// Actions written.
    pub applied: usize,
    /// Actions whose compare failed (the state moved on, or the fence was lost).
    pub skipped: usize,
    /// Actions that could not be written, with the task id and the error.
    pub failed: Vec<(String, Error)>,
}

/// Applies every action of `plan`, built from `state`, in order; see the module docs. `fence` is
/// the compare every write must also pass (the controller's leadership record), if any.
pub async fn apply_plan<S: Store>(
    store: &ClusterStore<S>,
    plan: &Plan,
    state: &ClusterState,
    fence: Option<&Compare>,
) -> ApplyReport {
    let tasks: HashMap<&str, &Task> = state.tasks.iter().map(|t| (t.id.as_str(), t)).collect();
    let mut report = ApplyReport::default();
    for action in &plan.actions {
        match apply_action(store, action, state, &tasks, fence).await {
            Ok(true) => report.applied += 1,
            Ok(false) => report.skipped += 1,
            Err(e) => report.failed.push((action.task_id().to_owned(), e)),
        }
    }
    report
}

async fn apply_action<S: Store>(
    store: &ClusterStore<S>,
    action: &Action,
    state: &ClusterState,
    tasks: &HashMap<&str, &Task>,
    fence: Option<&Compare>,
) -> Result<bool> {
    let seen = |key: &str| state.revisions.get(key).copied().unwrap_or(0);
    let mut when: Vec<Compare> = fence.into_iter().cloned().collect();
    if let Action::Create { task, .. } = action {
        let slot_key = keys::slot(&task.service, task.slot);
        when.push(Compare::Missing(keys::task(&task.id)));
        when.push(Compare::ModRevision(slot_key.clone(), seen(&slot_key)));
        let record = serde_json::to_vec(&task.id).map_err(|e| Error::backend("slot record", e))?;
        return store
            .put_task_if(task, when, vec![Op::Put(slot_key, record)])
            .await;
    }
    let Some(&current) = tasks.get(action.task_id()) else {
        return Ok(false);
    };
    let key = keys::task(&current.id);
    when.push(Compare::ModRevision(key.clone(), seen(&key)));
    let mut task = current.clone();
    change(action, &mut task)?;
    if task == *current {
        return Ok(true);
    }
    store.put_task_if(&task, when, Vec::new()).await
}

/// What `action` does to its task (not `Create`).
fn change(action: &Action, t: &mut Task) -> Result<()> {
    match action {
        Action::Create { .. } => {}
        Action::Assign { node, .. } => {
            if t.state == TaskState::Pending {
                t.node = Some(node.clone());
                t.error = None;
                t.transition(TaskState::Scheduled)?;
            }
        }
        Action::Stop { reason, .. } => {
            t.desired = DesiredState::Shutdown;
            if t.state == TaskState::Pending {
                t.transition(TaskState::Stopped)?;
            }
            if t.error.is_none() {
                t.error = Some(format!("stopped: {reason:?}"));
            }
        }
        Action::MarkLost { node, .. } => {
            if t.state.can_transition_to(TaskState::Lost) {
                t.transition(TaskState::Lost)?;
                t.error = Some(format!("node {node} is down"));
            }
        }
    }
    Ok(())
}
