//! Long CPU-bound work inside async code, without starving the runtime's other tasks.
//!
//! A reconcile round at a million tasks plans for seconds. Run inline on a tokio worker, that
//! stalls every task queued behind it on that worker: under Raft those include heartbeats, and
//! a stalled heartbeat is an election. [`cpu_bound`] moves the worker's queue to another thread
//! for the duration (`tokio::task::block_in_place`) on a multi-threaded runtime, and runs the
//! work inline on a current-thread runtime (where nothing else could run meanwhile anyway) or
//! outside any runtime.

use tokio::runtime::{Handle, RuntimeFlavor};

/// Runs `work` and returns its result; on a multi-threaded tokio runtime, the calling worker's
/// other tasks move to another thread while it runs.
pub fn cpu_bound<T>(work: impl FnOnce() -> T) -> T {
    match Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(RuntimeFlavor::MultiThread) => tokio::task::block_in_place(work),
        _ => work(),
    }
}

#[cfg(test)]
mod tests {
    use super::cpu_bound;

    #[test]
    fn runs_outside_a_runtime() {
        assert_eq!(cpu_bound(|| 2 + 2), 4);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn runs_inline_on_a_current_thread_runtime() {
        assert_eq!(cpu_bound(|| "inline"), "inline");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn other_tasks_run_while_a_worker_is_busy() {
        let (tx, rx) = std::sync::mpsc::channel();
        // A task queued on the runtime must run while the work below blocks its thread.
        tokio::spawn(async move { tx.send(()).unwrap() });
        let got = cpu_bound(|| rx.recv_timeout(std::time::Duration::from_secs(10)));
        assert!(
            got.is_ok(),
            "the spawned task never ran while the worker was busy"
        );
    }
}
