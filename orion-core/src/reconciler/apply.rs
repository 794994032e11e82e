//! Applying a [`Plan`](super::Plan) to a store: fenced compare-and-swap writes, many actions per
//! transaction.
//!
//! A plan is built from one [`ClusterState`] read at one revision. Each action is written only if
//! - the controller's fence still holds (the leader record has not changed since this
//!   controller claimed it: a deposed or paused leader's half-done plan cannot act once a new
//!   leader has claimed), and
//! - what the action was decided on has not changed since the state was read: the task's key
//!   (for `Assign`, `Stop`, `MarkLost`), or the replica slot's key (for `Create`, which also
//!   requires the new task's key to be missing and writes the slot's key again, so its revision
//!   moves). Two controllers can therefore never both fill one slot, whatever ids they pick. The
//!   slot record's value is empty: its revision is all the compare needs, and a leader keeps one
//!   per task (records written with the task's id by earlier versions read the same).
//!
//! **Batches.** Consecutive actions are written together, up to [`MAX_ACTIONS_PER_TXN`] per
//! transaction (one Raft entry under `RaftStore`, one flush under `SledStore`), as long as no two
//! of them touch the same key. A batch's transaction carries every action's compares, so it
//! commits all of its actions at one revision or none of them. When it commits none (some compare
//! failed), each of its actions is tried again on its own, so one stale action never holds back
//! the others: the outcome per action is the same as writing them one by one, in plan order.
//!
//! **Pipelining.** Up to [`MAX_BATCHES_IN_FLIGHT`] batches are written at once, so their Raft
//! entries share commit rounds instead of waiting one round each. Batches in flight never share
//! a key: a batch that touches a key of one in flight waits until those in flight have ended, so
//! the outcome per action stays that of plan order.
//!
//! **A lost fence stops the plan.** When a batch commits nothing and a fence is given, the fence
//! alone is checked (one compare-only transaction); if it no longer holds, this batch and every
//! later one are skipped without being tried action by action: a deposed leader's plan adds no
//! entries to the log.
//!
//! An action whose compare fails is skipped, not retried: the next round re-reads the state and
//! decides again. Applying a plan twice is harmless (the second time every compare fails).

use std::collections::HashSet;

use futures::StreamExt;
use futures::stream::FuturesUnordered;

use crate::error::{Error, Result};
use crate::hash::StableMap;
use crate::model::{DesiredState, Task, TaskState};
use crate::store::{ClusterState, ClusterStore, Compare, Op, Store, Txn, keys};

use super::{Action, Plan};

/// Actions written in one transaction at most, which bounds a Raft entry (a task record is
/// well under 4 KiB, so an entry stays under about 256 KiB).
pub const MAX_ACTIONS_PER_TXN: usize = 64;

/// Batches written at once at most (see the module docs).
pub const MAX_BATCHES_IN_FLIGHT: usize = 4;

/// What applying a plan did.
#[derive(Debug, Default)]
pub struct ApplyReport {
    /// Actions written (or found already done).
    pub applied: usize,
    /// Actions whose compare failed (the state moved on, or the fence was lost).
    pub skipped: usize,
    /// Actions that could not be written, with the task id and the error.
    pub failed: Vec<(String, Error)>,
    /// Transactions written or tried (a batch that commits counts once).
    pub transactions: usize,
}

/// One action as a conditional write.
#[derive(Debug)]
struct Write {
    task: Task,
    /// The action's own compares (the fence is added per transaction).
    when: Vec<Compare>,
    /// Writes besides the task's record (the slot record of a `Create`).
    also: Vec<Op>,
    /// Every key the write compares or changes.
    keys: Vec<String>,
}

/// Applies every action of `plan`, built from `state`, in order; see the module docs. `fence` is
/// the compare every write must also pass (the controller's leadership record), if any.
pub async fn apply_plan<S: Store>(
    store: &ClusterStore<S>,
    plan: &Plan,
    state: &ClusterState,
    fence: Option<&Compare>,
) -> ApplyReport {
    let mut report = ApplyReport::default();
    if plan.actions.is_empty() {
        return report;
    }
    let tasks: StableMap<&str, &Task> = state.tasks.iter().map(|t| (t.id.as_str(), t)).collect();
    let mut batches: Vec<(Vec<Write>, HashSet<String>)> = Vec::new();
    let mut batch: Vec<Write> = Vec::new();
    let mut batch_keys: HashSet<String> = HashSet::new();
    for action in &plan.actions {
        let write = match prepare(action, state, &tasks) {
            Ok(Prepared::Write(w)) => *w,
            Ok(Prepared::Done) => {
                report.applied += 1;
                continue;
            }
            Ok(Prepared::Gone) => {
                report.skipped += 1;
                continue;
            }
            Err(e) => {
                report.failed.push((action.task_id().to_owned(), e));
                continue;
            }
        };
        let full = batch.len() >= MAX_ACTIONS_PER_TXN;
        if full || write.keys.iter().any(|k| batch_keys.contains(k)) {
            batches.push((std::mem::take(&mut batch), std::mem::take(&mut batch_keys)));
        }
        batch_keys.extend(write.keys.iter().cloned());
        batch.push(write);
    }
    if !batch.is_empty() {
        batches.push((batch, batch_keys));
    }
    write_pipelined(store, batches, fence, &mut report).await;
    report
}

/// Writes `batches` in order, up to [`MAX_BATCHES_IN_FLIGHT`] at once, never two sharing a key.
async fn write_pipelined<S: Store>(
    store: &ClusterStore<S>,
    batches: Vec<(Vec<Write>, HashSet<String>)>,
    fence: Option<&Compare>,
    report: &mut ApplyReport,
) {
    let mut in_flight = FuturesUnordered::new();
    let mut in_flight_keys: HashSet<String> = HashSet::new();
    let mut fenced_out = false;
    for (batch, keys) in batches {
        let shares_key = keys.iter().any(|k| in_flight_keys.contains(k));
        while !in_flight.is_empty() && (shares_key || in_flight.len() >= MAX_BATCHES_IN_FLIGHT) {
            if let Some(outcome) = in_flight.next().await {
                fenced_out |= merge(report, outcome);
            }
            if shares_key && in_flight.is_empty() {
                in_flight_keys.clear();
            }
        }
        if in_flight.is_empty() {
            in_flight_keys.clear();
        }
        if fenced_out {
            report.skipped += batch.len();
            continue;
        }
        in_flight_keys.extend(keys);
        in_flight.push(write_batch(store, batch, fence));
    }
    while let Some(outcome) = in_flight.next().await {
        merge(report, outcome);
    }
}

/// Adds one batch's outcome to `report`; true when the batch found the fence lost.
fn merge(report: &mut ApplyReport, outcome: BatchOutcome) -> bool {
    report.applied += outcome.report.applied;
    report.skipped += outcome.report.skipped;
    report.failed.extend(outcome.report.failed);
    report.transactions += outcome.report.transactions;
    outcome.fenced_out
}

/// What writing one batch did.
struct BatchOutcome {
    report: ApplyReport,
    /// The batch committed nothing because the fence no longer holds.
    fenced_out: bool,
}

/// Writes `batch` in one transaction; when that commits nothing, checks the fence (if any) and,
/// while it holds, each write on its own.
async fn write_batch<S: Store>(
    store: &ClusterStore<S>,
    batch: Vec<Write>,
    fence: Option<&Compare>,
) -> BatchOutcome {
    let mut report = ApplyReport::default();
    if batch.len() > 1 {
        let mut when: Vec<Compare> = fence.into_iter().cloned().collect();
        let mut records = Vec::with_capacity(batch.len());
        for w in &batch {
            when.extend(w.when.iter().cloned());
            records.push((&w.task, w.also.clone()));
        }
        report.transactions += 1;
        if let Ok(true) = store.put_tasks_if(&records, when).await {
            report.applied += batch.len();
            return BatchOutcome {
                report,
                fenced_out: false,
            };
        }
        if let Some(fence) = fence {
            report.transactions += 1;
            let check = Txn::new().when(fence.clone());
            if let Ok(held) = store.inner().txn(check).await
                && !held.succeeded
            {
                report.skipped += batch.len();
                return BatchOutcome {
                    report,
                    fenced_out: true,
                };
            }
        }
    }
    for w in batch {
        let mut when: Vec<Compare> = fence.into_iter().cloned().collect();
        when.extend(w.when);
        report.transactions += 1;
        match store.put_task_if(&w.task, when, w.also).await {
            Ok(true) => report.applied += 1,
            Ok(false) => report.skipped += 1,
            Err(e) => report.failed.push((w.task.id.to_string(), e)),
        }
    }
    BatchOutcome {
        report,
        fenced_out: false,
    }
}

/// What an action amounts to before anything is written.
enum Prepared {
    Write(Box<Write>),
    /// It changes nothing: already done.
    Done,
    /// Its task is not in the state it was planned on.
    Gone,
}

fn prepare(
    action: &Action,
    state: &ClusterState,
    tasks: &StableMap<&str, &Task>,
) -> Result<Prepared> {
    let seen = |key: &str| state.revisions.get(key).unwrap_or(0);
    if let Action::Create { task, .. } = action {
        let (task_key, slot_key) = (keys::task(&task.id), keys::slot(&task.service, task.slot));
        return Ok(Prepared::Write(Box::new(Write {
            task: (**task).clone(),
            when: vec![
                Compare::Missing(task_key.clone()),
                Compare::ModRevision(slot_key.clone(), seen(&slot_key)),
            ],
            also: vec![Op::Put(slot_key.clone(), Vec::new())],
            keys: vec![task_key, slot_key],
        })));
    }
    let Some(&current) = tasks.get(action.task_id()) else {
        return Ok(Prepared::Gone);
    };
    let key = keys::task(&current.id);
    let mut task = current.clone();
    change(action, &mut task)?;
    if task == *current {
        return Ok(Prepared::Done);
    }
    Ok(Prepared::Write(Box::new(Write {
        task,
        when: vec![Compare::ModRevision(key.clone(), seen(&key))],
        also: Vec::new(),
        keys: vec![key],
    })))
}
/// What `action` does to its task (not `Create`).
fn change(action: &Action, t: &mut Task) -> Result<()> {
    match action {
        Action::Create { .. } => {}
        Action::Assign { node, .. } => {
            if t.state == TaskState::Pending {
                t.node = Some(node.into());
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
                t.error = Some(format!("stopped: {reason:?}").into());
            }
        }
        Action::UpdatePendingReason { reason, .. } => {
            if t.state == TaskState::Pending {
                t.error = Some(reason.as_str().into());
            }
        }
        Action::MarkLost { node, .. } => {
            if t.state.can_transition_to(TaskState::Lost) {
                t.transition(TaskState::Lost)?;
                t.error = Some(format!("node {node} is down").into());
            }
        }
    }
    Ok(())
}
