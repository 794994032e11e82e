//! Hooks the node's loops call on events worth counting, so that an embedder can export metrics
//! without this crate depending on a metrics library.
//!
//! The default is [`NoObserver`]: every hook does nothing. `orion-bin` implements [`Observer`]
//! with Prometheus counters and histograms. Hooks are called on the loops' own tasks, so an
//! implementation must be cheap and must not block: record into atomics, do not allocate or
//! wait.

use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

/// Receives the events of a node's agent and controllers. Every method has a no-op default.
pub trait Observer: Send + Sync + Debug + 'static {
    /// A reconcile round planned: `elapsed` is the time the reconciler and scheduler took to
    /// build the plan (not to apply it), `placed` the tasks it put on a node, `unplaced` the
    /// slots no node could take (left `Pending`).
    fn reconcile_planned(&self, elapsed: Duration, placed: usize, unplaced: usize) {
        let _ = (elapsed, placed, unplaced);
    }

    /// The agent started a task's container: `elapsed` from the start of the attempt (image
    /// check or pull included) until the runtime reported it started.
    fn container_started(&self, elapsed: Duration) {
        let _ = elapsed;
    }

    /// The agent could not start a task's container (the task is reported `failed`).
    fn container_start_failed(&self) {}

    /// A task's container exited and the agent restarts it in place (after its back-off).
    fn container_restarted(&self) {}
}

/// The observer that records nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoObserver;

impl Observer for NoObserver {}

/// A shared observer, as the loops hold it.
pub type SharedObserver = Arc<dyn Observer>;

/// The default shared observer ([`NoObserver`]).
pub fn no_observer() -> SharedObserver {
    Arc::new(NoObserver)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::membership::{Member, StaticMembership};
    use crate::model::{Resources, ServiceSpec, TaskState};
    use crate::node::{Fence, Node};
    use crate::runtime::FakeRuntime;
    use crate::store::{ClusterStore, MemoryStore};

    #[derive(Debug, Default)]
    struct Counting {
        rounds: AtomicUsize,
        placed: AtomicUsize,
        started: AtomicUsize,
    }

    impl Observer for Counting {
        fn reconcile_planned(&self, _: Duration, placed: usize, _: usize) {
            self.rounds.fetch_add(1, Ordering::Relaxed);
            self.placed.fetch_add(placed, Ordering::Relaxed);
        }

        fn container_started(&self, _: Duration) {
            self.started.fetch_add(1, Ordering::Relaxed);
        }
    }

    #[tokio::test]
    async fn the_node_reports_placements_and_starts_to_its_observer() {
        let store = ClusterStore::new(MemoryStore::new());
        let me = Member::alive("n1", Resources::new(2000, 4 << 30));
        let membership = Arc::new(StaticMembership::new(me, vec![]).expect("membership"));
        let counting = Arc::new(Counting::default());
        let node = Node::builder(
            "n1",
            store.clone(),
            membership,
            Arc::new(FakeRuntime::new()),
        )
        .observer(counting.clone())
        .build();
        store
            .put_service(&ServiceSpec::new("web", "nginx:alpine", 2))
            .await
            .expect("put");
        let fence = claim(&node).await;
        node.controllers()
            .liveness
            .step(&fence)
            .await
            .expect("liveness");
        node.controllers()
            .reconciler
            .round(&fence)
            .await
            .expect("round");
        node.agent().sync().await.expect("sync");
        let tasks = store.tasks_of_service("web").await.expect("tasks");
        assert!(
            tasks.iter().all(|t| t.state == TaskState::Running),
            "{tasks:?}"
        );
        assert!(counting.rounds.load(Ordering::Relaxed) >= 1);
        assert_eq!(counting.placed.load(Ordering::Relaxed), 2);
        assert_eq!(counting.started.load(Ordering::Relaxed), 2);
    }

    async fn claim<S, M, R>(node: &Node<S, M, R>) -> Fence
    where
        S: crate::store::Store + Clone,
        M: crate::membership::Membership + ?Sized,
        R: crate::runtime::Runtime + ?Sized,
    {
        node.controllers().claim(1).await.expect("claim")
    }
}
