//! Applying a [`Plan`](super::Plan) to a store: each action is one compare-and-swap on one task.

use crate::error::{Error, Result};
use crate::model::{DesiredState, TaskState};
use crate::store::{ClusterStore, Store};

use super::Action;

/// Applies one action. Idempotent: applying it twice, or after the task moved on, changes
/// nothing more (a `Create` whose task exists is a no-op, an `Assign` of a task that is no longer
/// pending is a no-op), so a new leader can redo the last plan safely.
pub async fn apply_action<S: Store>(store: &ClusterStore<S>, action: &Action) -> Result<()> {
    match action {
        Action::Create { task, .. } => match store.create_task(task).await {
            Ok(_) | Err(Error::Conflict(_)) => {}
            Err(e) => return Err(e),
        },
        Action::Assign { task_id, node } => {
            store
                .update_task(task_id, |t| {
                    if t.state == TaskState::Pending {
                        t.node = Some(node.clone());
                        t.error = None;
                        t.transition(TaskState::Scheduled)?;
                    }
                    Ok(())
                })
                .await?;
        }
        Action::Stop { task_id, reason } => {
            store
                .update_task(task_id, |t| {
                    t.desired = DesiredState::Shutdown;
                    if t.state == TaskState::Pending {
                        t.transition(TaskState::Stopped)?;
                    }
                    if t.error.is_none() {
                        t.error = Some(format!("stopped: {reason:?}"));
                    }
                    Ok(())
                })
                .await?;
        }
        Action::MarkLost { task_id, node } => {
            store
                .update_task(task_id, |t| {
                    t.desired = DesiredState::Shutdown;
                    if t.state.can_transition_to(TaskState::Lost) {
                        t.transition(TaskState::Lost)?;
                        t.error = Some(format!("node {node} is down"));
                    }
                    Ok(())
                })
                .await?;
        }
    }
    Ok(())
}

/// Applies every action of `plan` in order. An action that fails is skipped (the next round
/// retries it); the errors are returned with the task ids.
pub async fn apply_plan<S: Store>(
    store: &ClusterStore<S>,
    plan: &super::Plan,
) -> Vec<(String, Error)> {
    let mut failed = Vec::new();
    for action in &plan.actions {
        if let Err(e) = apply_action(store, action).await {
            failed.push((action.task_id().to_owned(), e));
        }
    }
    failed
}
