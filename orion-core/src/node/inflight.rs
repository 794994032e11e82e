//! The agent's operations under way (a task's start, stop, restart or health verdict), keyed by
//! task id, so that passes hand them off and go on taking events while the engine works.
//!
//! Contract:
//! - At most one operation per task at once: a pass [`InFlight::claim`]s a task before it
//!   converges it, and a task already claimed is skipped.
//! - A pass that skips a task it has news about (its desired state changed, it is to stop or it
//!   was declared lost, or its restart back-off ended) marks it: the operation under way
//!   converges it once more, from a fresh read, when it ends ([`InFlight::finish`]). So a stop
//!   requested while its start is under way is done when the start ends.
//! - A pass that read its tasks and containers before an operation of a task ended skips that
//!   task too ([`InFlight::epoch`]): what it read may predate the operation's work.
//! - At most the agent's bound of operations talk to the engine at once ([`InFlight::permit`]);
//!   the others wait for a slot without holding up the loop.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

use crate::model::{DesiredState, Task, TaskState};

/// Operations run at once by default (chosen from the deploy bench; see docs/benchmarks.md).
pub const DEFAULT_MAX_IN_FLIGHT: usize = 16;

/// The largest bound accepted for operations at once.
pub const MAX_IN_FLIGHT_CEILING: usize = 256;

/// `Ok` when `n` is an accepted bound on operations at once (1 to [`MAX_IN_FLIGHT_CEILING`]);
/// else an error naming `max_in_flight` and the accepted range.
pub(super) fn check_limit(n: usize) -> crate::Result<()> {
    if !(1..=MAX_IN_FLIGHT_CEILING).contains(&n) {
        let mut errors = crate::error::ValidationErrors::default();
        errors.push("max_in_flight", n, format!("1 to {MAX_IN_FLIGHT_CEILING}"));
        return Err(errors.into());
    }
    Ok(())
}

/// What a pass can do with a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Claim {
    /// The task is this pass's to converge; it must be [`InFlight::finish`]ed.
    Taken,
    /// An operation of the task is under way (or ended after the pass read it): leave it.
    Busy,
}

struct Entry {
    /// The desired state the operation was started for.
    desired: DesiredState,
    /// Converge once more, from a fresh read, when the operation ends.
    again: bool,
}

#[derive(Default)]
struct State {
    running: HashMap<String, Entry>,
    /// Counts ended operations.
    epoch: u64,
    /// The epoch at which each task's last operation ended (pruned by full passes).
    ended: HashMap<String, u64>,
}

/// The operations under way; see the module docs.
pub(super) struct InFlight {
    permits: Arc<Semaphore>,
    state: Mutex<State>,
    idle: Notify,
}

impl InFlight {
    /// At most `limit` (clamped to 1..=[`MAX_IN_FLIGHT_CEILING`]) operations at once.
    pub(super) fn new(limit: usize) -> Self {
        let limit = limit.clamp(1, MAX_IN_FLIGHT_CEILING);
        InFlight {
            permits: Arc::new(Semaphore::new(limit)),
            state: Mutex::new(State::default()),
            idle: Notify::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Taken by a pass before it reads: operations that end after it make the pass skip their task.
    pub(super) fn epoch(&self) -> u64 {
        self.lock().epoch
    }

    /// Claims `task` for a pass that read it at `epoch`. When it is busy and `wake` (or what the
    /// pass saw differs from what the operation was started for), the operation under way
    /// converges it again when it ends.
    pub(super) fn claim(&self, task: &Task, epoch: u64, wake: bool) -> Claim {
        let mut state = self.lock();
        if let Some(entry) = state.running.get_mut(task.id.as_str()) {
            if wake || news(entry.desired, task) {
                entry.again = true;
            }
            return Claim::Busy;
        }
        if state
            .ended
            .get(task.id.as_str())
            .is_some_and(|at| *at > epoch)
        {
            return Claim::Busy;
        }
        state.running.insert(
            task.id.to_string(),
            Entry {
                desired: task.desired,
                again: false,
            },
        );
        Claim::Taken
    }

    /// Whether an operation of `task_id` is under way, or ended after `epoch`.
    pub(super) fn busy(&self, task_id: &str, epoch: u64) -> bool {
        let state = self.lock();
        state.running.contains_key(task_id)
            || state.ended.get(task_id).is_some_and(|at| *at > epoch)
    }

    /// Ends the operation of `task_id`, unless it was marked to converge again: then it stays
    /// claimed, the mark is cleared, and `true` is returned.
    pub(super) fn finish(&self, task_id: &str) -> bool {
        let mut state = self.lock();
        if let Some(entry) = state.running.get_mut(task_id)
            && entry.again
        {
            entry.again = false;
            return true;
        }
        drop(state);
        self.release(task_id);
        false
    }

    /// Ends the operation of `task_id`, marked or not.
    pub(super) fn release(&self, task_id: &str) {
        let mut state = self.lock();
        state.running.remove(task_id);
        state.epoch += 1;
        let epoch = state.epoch;
        state.ended.insert(task_id.to_owned(), epoch);
        if state.running.is_empty() {
            self.idle.notify_waiters();
        }
    }

    /// Forgets when operations ended before `epoch` (a full pass that read after them).
    pub(super) fn prune(&self, epoch: u64) {
        self.lock().ended.retain(|_, at| *at > epoch);
    }

    /// A slot to talk to the engine.
    pub(super) async fn permit(&self) -> OwnedSemaphorePermit {
        self.permits
            .clone()
            .acquire_owned()
            .await
            .expect("the semaphore is never closed")
    }

    /// Operations under way.
    pub(super) fn len(&self) -> usize {
        self.lock().running.len()
    }

    /// Waits until no operation is under way.
    pub(super) async fn idle(&self) {
        loop {
            let idle = self.idle.notified();
            tokio::pin!(idle);
            idle.as_mut().enable();
            if self.len() == 0 {
                return;
            }
            idle.await;
        }
    }
}

/// Whether `seen` asks for something the operation started for `desired` does not do.
fn news(desired: DesiredState, seen: &Task) -> bool {
    seen.desired != desired || matches!(seen.state, TaskState::Stopping | TaskState::Lost)
}
