//! What the reconciler outputs: [`Action`]s to apply and [`Unplaced`] slots to explain.

use serde::{Deserialize, Serialize};

use crate::model::{NodeId, Task, TaskId};
use crate::scheduler::Rejection;

/// Why a task is being placed (on [`Action::Create`] and [`Unplaced`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Purpose {
    /// The service has fewer tasks than `replicas` (new service, scale up).
    NewReplica,
    /// Refills the slot of a task that was lost with its node or failed (same slot number).
    Replacement,
    /// Moves a task off a draining node (start new, then stop old).
    Drain,
    /// Rolling update: replaces a task created from an older spec version (start new, then stop old).
    Update,
    /// Places an existing `Pending` task.
    AssignPending,
    /// Re-placement: moves a running task off a node that now breaks a rule of the scheduler
    /// past its tolerance (a degraded link), start new, then stop old.
    Move,
    /// Rebalancing: moves a running replica from a node with many of its service's replicas to
    /// one with few (a node that joined or came back), start new, then stop old.
    Rebalance,
}

/// Why a task is asked to stop (on [`Action::Stop`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// The service has more tasks than `replicas`.
    ScaleDown,
    /// The service's spec no longer exists.
    ServiceDeleted,
    /// Another task holds the same slot and is kept (for example, a task whose node came back
    /// after it had been replaced).
    DuplicateSlot,
    /// Its replacement, started because its node is draining, is running.
    Drained,
    /// Its replacement, started because its node broke a rule past its tolerance
    /// ([`Purpose::Move`]), is running; the replacement's `moved_because` says which.
    Moved,
    /// Its replacement, started on a node with fewer replicas of the service
    /// ([`Purpose::Rebalance`]), is running; the replacement's `moved_because` says which.
    Rebalanced,
    /// Its replacement from the current spec version is running (or it never ran), or, under
    /// `update_strategy.max_surge`, it stops before its replacement starts.
    Updated,
    /// It is terminal (failed, completed, lost) and must not be restarted in place any more:
    /// its slot is refilled by a new task if the restart policy asks for it.
    Retired,
}

/// One idempotent step toward the desired state, keyed by task id: applying an action twice, or
/// after a leader change, has the same effect as applying it once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Action {
    /// Insert `task` unless a task with its id exists. The task is `Scheduled` on its node, or
    /// `Pending` (no node, `error` says why) when no node could take it.
    Create {
        /// Boxed: a task is much larger than the other actions.
        task: Box<Task>,
        purpose: Purpose,
        /// The task it takes over from (same slot), if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        replaces: Option<TaskId>,
    },
    /// Move a `Pending` task to `Scheduled` on `node`; a no-op if it is no longer pending.
    Assign { task_id: TaskId, node: NodeId },
    /// Set the task's desired state to `shutdown`. A `Pending` task goes straight to `Stopped`;
    /// a placed live task is stopped by its node's agent (`Stopping -> Stopped`); a terminal task
    /// only records that it must not be restarted.
    Stop { task_id: TaskId, reason: StopReason },
    /// The task's node is down (or gone): set its state to `Lost`, so its slot is refilled. Its
    /// desired state is left alone: if the node comes back with the container still running, the
    /// node's agent reconnects it, and the reconciler stops the surplus task of the slot.
    MarkLost { task_id: TaskId, node: NodeId },
    /// Replace a `Pending` task's reason (`error`) with the current one, so `orion status` and
    /// `orion ps` tell why it waits now, not why it waited when it was created. Planned only when
    /// the text differs from the stored one (so a stable reason writes nothing); a no-op if the
    /// task is no longer pending. Written in the same batched transactions as the other actions.
    UpdatePendingReason { task_id: TaskId, reason: String },
}

impl Action {
    /// The task the action is about.
    pub fn task_id(&self) -> &str {
        match self {
            Action::Create { task, .. } => &task.id,
            Action::Assign { task_id, .. }
            | Action::Stop { task_id, .. }
            | Action::MarkLost { task_id, .. }
            | Action::UpdatePendingReason { task_id, .. } => task_id,
        }
    }

    /// The node a task is placed on by this action (`Create` of a scheduled task, `Assign`).
    pub fn placed_on(&self) -> Option<&str> {
        match self {
            Action::Create { task, .. } => task.node.as_deref(),
            Action::Assign { node, .. } => Some(node),
            Action::Stop { .. } | Action::MarkLost { .. } | Action::UpdatePendingReason { .. } => {
                None
            }
        }
    }
}

/// A slot the reconciler wanted to place but could not, with every node's rejection.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Unplaced {
    pub service: String,
    pub slot: u32,
    pub purpose: Purpose,
    /// The pending task created or kept for it, if any (none for drain and update, whose old task
    /// keeps running).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_id: Option<TaskId>,
    /// Why each node was turned down (by the scheduler's filters or the reconciler's own guard).
    pub rejections: Vec<(NodeId, Rejection)>,
}

/// The output of [`super::reconcile`]: actions in the order to apply them, and what could not be
/// placed. An empty `actions` means the cluster matches the specs as far as capacity allows.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Plan {
    pub actions: Vec<Action>,
    pub unplaced: Vec<Unplaced>,
    /// True when the round stopped creating tasks at its bound: reconcile again at once.
    pub more: bool,
    /// The earliest time a slot in crash-loop back-off may be refilled: reconcile again then.
    pub retry_at: Option<crate::model::Millis>,
}

impl Plan {
    /// True when there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.actions.is_empty()
    }
}

/// A one-line summary of rejections, for a pending task's `error`: grouped by filter and kind
/// of reason ([`crate::scheduler::RejectionSummary`]), so `orion ps` and `orion status` show
/// which rule no node meets.
pub(crate) fn summarize(rejections: &[(NodeId, Rejection)]) -> String {
    if rejections.is_empty() {
        return "no node can take it: the cluster has no nodes".to_owned();
    }
    crate::scheduler::RejectionSummary::from_rejections(rejections).to_string()
}
