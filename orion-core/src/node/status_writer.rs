//! The agent's status writes, with group commit: one store transaction (one Raft entry in
//! cluster mode) for every status update made while the previous write was under way.
//!
//! Contract:
//! - [`StatusWriter::update`] has the meaning of [`ClusterStore::update_task`]: `f` is applied
//!   to the task's current record and the result is written only if the record has not changed
//!   since it was read (a compare on its `mod_revision`), else it is read again and `f` applied
//!   again (`f` may run more than once), up to [`MAX_CAS_ATTEMPTS`] times. It returns the task as
//!   written, [`Error::NotFound`] when the task does not exist, and an error of `f` unchanged.
//! - When no write is under way the update is written at once (no added latency). Updates made
//!   while one is under way wait, and the next write takes all of them (up to
//!   [`MAX_UPDATES_PER_TXN`] tasks) in one transaction.
//! - A batch's transaction carries every task's compare. When it commits nothing (some task
//!   changed under it), each task is written again on its own, so a failed compare of one task
//!   never loses the others' updates (the outcome per task is the same as writing them one by
//!   one, as `orion_core::reconciler::apply_plan` does).
//! - Several updates of one task in one batch are applied in the order they were made, and the
//!   task is written once.
//! - Cancel-safe: a caller that stops waiting leaves its update queued; the updates of a writer
//!   that is dropped mid-write go back to the queue for the next one.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use tokio::sync::Notify;

use crate::error::{Error, Result};
use crate::model::Task;
use crate::store::{ClusterStore, Compare, MAX_CAS_ATTEMPTS, Revision, Store, keys};

/// Tasks written in one transaction at most (as many as a controller's batched plan).
pub const MAX_UPDATES_PER_TXN: usize = crate::reconciler::MAX_ACTIONS_PER_TXN;

/// A change to a task's record; see [`ClusterStore::update_task`].
pub(super) type Mutation = Box<dyn FnMut(&mut Task) -> Result<()> + Send>;

/// One queued update.
struct Pending {
    ticket: u64,
    id: String,
    f: Mutation,
}

#[derive(Default)]
struct Queue {
    next_ticket: u64,
    waiting: Vec<Pending>,
    /// Whether a caller is writing a batch now.
    writing: bool,
    /// Outcomes not yet collected, by ticket.
    done: HashMap<u64, Result<Task>>,
}

/// Group-committed task status writes of one agent; see the module docs.
#[derive(Default)]
pub(super) struct StatusWriter {
    queue: Mutex<Queue>,
    /// Woken when a batch's outcomes are in, or when the writer role is free again.
    settled: Notify,
}

impl StatusWriter {
    /// Applies `f` to task `id` and writes it, in the next batch; see the module docs.
    pub(super) async fn update<S: Store>(
        &self,
        store: &ClusterStore<S>,
        id: &str,
        f: Mutation,
    ) -> Result<Task> {
        let ticket = {
            let mut q = self.lock();
            let ticket = q.next_ticket;
            q.next_ticket += 1;
            q.waiting.push(Pending {
                ticket,
                id: id.to_owned(),
                f,
            });
            ticket
        };
        loop {
            let settled = self.settled.notified();
            tokio::pin!(settled);
            settled.as_mut().enable();
            let batch = {
                let mut q = self.lock();
                if let Some(outcome) = q.done.remove(&ticket) {
                    return outcome;
                }
                if q.writing {
                    None
                } else {
                    q.writing = true;
                    Some(take_batch(&mut q.waiting))
                }
            };
            match batch {
                Some(batch) => {
                    let mut role = WriterRole {
                        writer: self,
                        batch,
                    };
                    let outcomes = write_batch(store, &mut role.batch).await;
                    role.batch.clear();
                    drop(role);
                    let mut q = self.lock();
                    q.done.extend(outcomes);
                    drop(q);
                    self.settled.notify_waiters();
                }
                None => settled.await,
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The writer role while a batch is written: on drop, frees the role and puts back what was
/// not written (when the writing caller was cancelled).
struct WriterRole<'a> {
    writer: &'a StatusWriter,
    batch: Vec<Pending>,
}

impl Drop for WriterRole<'_> {
    fn drop(&mut self) {
        let mut q = self.writer.lock();
        q.writing = false;
        let unwritten = std::mem::take(&mut self.batch);
        q.waiting.splice(0..0, unwritten);
        drop(q);
        self.writer.settled.notify_waiters();
    }
}

/// The oldest waiting updates of at most [`MAX_UPDATES_PER_TXN`] distinct tasks.
fn take_batch(waiting: &mut Vec<Pending>) -> Vec<Pending> {
    let mut ids: Vec<&str> = Vec::new();
    let mut cut = waiting.len();
    for (i, p) in waiting.iter().enumerate() {
        if !ids.contains(&p.id.as_str()) {
            if ids.len() == MAX_UPDATES_PER_TXN {
                cut = i;
                break;
            }
            ids.push(&p.id);
        }
    }
    // Updates past the cut of tasks already in the batch stay queued: order per task holds.
    let rest = waiting.split_off(cut);
    std::mem::replace(waiting, rest)
}

/// One task's updates of a batch, applied to its current record.
struct Applied {
    id: String,
    revision: Revision,
    value: Task,
    /// Whether any update changed something to write.
    changed: bool,
}

/// Writes `batch`: every task in one transaction, else each task on its own with retries.
async fn write_batch<S: Store>(
    store: &ClusterStore<S>,
    batch: &mut [Pending],
) -> Vec<(u64, Result<Task>)> {
    let mut order: Vec<String> = Vec::new();
    for p in batch.iter() {
        if !order.contains(&p.id) {
            order.push(p.id.clone());
        }
    }
    if order.len() > 1 {
        let reads = futures::future::join_all(order.iter().map(|id| store.get_task_revision(id)));
        let mut applied = Vec::new();
        let mut outcomes = Vec::new();
        for (id, read) in order.iter().zip(reads.await) {
            match read {
                Ok(Some((task, revision))) => {
                    let (value, results) = apply(batch, id, task);
                    applied.push(Applied {
                        id: id.clone(),
                        revision,
                        changed: results.iter().any(|(_, r)| r.is_ok()),
                        value,
                    });
                    outcomes.extend(results);
                }
                // A task that is gone or unreadable is handled alone below.
                _ => {
                    applied.clear();
                    break;
                }
            }
        }
        if !applied.is_empty() && matches!(commit(store, &applied).await, Ok(true)) {
            return outcomes;
        }
    }
    let mut outcomes = Vec::new();
    for id in &order {
        outcomes.extend(write_one(store, batch, id).await);
    }
    outcomes
}

/// Applies, in order, every update of `batch` for task `id` to `task`; an update whose `f`
/// fails leaves the task as it was. Returns the task and each update's outcome.
fn apply(batch: &mut [Pending], id: &str, mut task: Task) -> (Task, Vec<(u64, Result<Task>)>) {
    let mut results = Vec::new();
    for p in batch.iter_mut().filter(|p| p.id == id) {
        let mut next = task.clone();
        let outcome = (p.f)(&mut next).and_then(|()| {
            if next.id == id {
                Ok(())
            } else {
                Err(Error::Conflict(format!(
                    "a status update changed task {id:?}'s id"
                )))
            }
        });
        match outcome {
            Ok(()) => {
                task = next;
                results.push((p.ticket, Ok(task.clone())));
            }
            Err(e) => results.push((p.ticket, Err(e))),
        }
    }
    (task, results)
}

/// Writes every changed task of `applied` in one transaction, each compared on its revision;
/// `Ok(false)` when a compare failed.
async fn commit<S: Store>(store: &ClusterStore<S>, applied: &[Applied]) -> Result<bool> {
    let changed: Vec<&Applied> = applied.iter().filter(|a| a.changed).collect();
    if changed.is_empty() {
        return Ok(true);
    }
    let when = changed
        .iter()
        .map(|a| Compare::ModRevision(keys::task(&a.id), a.revision))
        .collect();
    let records: Vec<(&Task, Vec<crate::store::Op>)> =
        changed.iter().map(|a| (&a.value, Vec::new())).collect();
    store.put_tasks_if(&records, when).await
}

/// Writes task `id`'s updates of `batch` on their own, read-modify-write with a compare, up to
/// [`MAX_CAS_ATTEMPTS`] times.
async fn write_one<S: Store>(
    store: &ClusterStore<S>,
    batch: &mut [Pending],
    id: &str,
) -> Vec<(u64, Result<Task>)> {
    let tickets: Vec<u64> = batch
        .iter()
        .filter(|p| p.id == id)
        .map(|p| p.ticket)
        .collect();
    let fail_all = |e: &dyn Fn() -> Error| tickets.iter().map(|t| (*t, Err(e()))).collect();
    let unavailable = |e: Error| {
        let message = e.to_string();
        move || Error::Unavailable(message.clone())
    };
    for _ in 0..MAX_CAS_ATTEMPTS {
        let (task, revision) = match store.get_task_revision(id).await {
            Ok(Some(read)) => read,
            Ok(None) => return fail_all(&|| Error::not_found("task", id)),
            Err(e) => return fail_all(&unavailable(e)),
        };
        let (value, outcomes) = apply(batch, id, task);
        let applied = Applied {
            id: id.to_owned(),
            revision,
            changed: outcomes.iter().any(|(_, r)| r.is_ok()),
            value,
        };
        match commit(store, std::slice::from_ref(&applied)).await {
            Ok(true) => return outcomes,
            Ok(false) => {}
            Err(e) => return fail_all(&unavailable(e)),
        }
    }
    fail_all(&|| {
        Error::Conflict(format!(
            "task {id} kept changing under concurrent writers; gave up after {MAX_CAS_ATTEMPTS} attempts"
        ))
    })
}
