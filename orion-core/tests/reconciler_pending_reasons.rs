//! A pending task's reason (`error`) follows the cluster: each round the reconciler plans an
//! `UpdatePendingReason` when the reason it finds differs from the stored one, and nothing when it
//! is the same, so a stable reason costs no write. `apply_plan` writes the updates batched.

mod reconciler_support;

use orion_core::model::{Node, NodeStatus, Resources, ServiceSpec, Task, TaskState};
use orion_core::reconciler::{Action, ReconcilePolicy, apply_plan, reconcile_state};
use orion_core::scheduler::{
    ClusterView, Filter, NodeView, PlacementRequest, Rejection, Scheduler, SchedulerConfig,
};
use orion_core::store::{ClusterStore, MemoryStore, Store};
use reconciler_support::*;

const GIB: u64 = 1 << 30;

/// Stands in for a network rule no node meets (a `maxLatency` to a far dependency): rejects
/// every node without the `near-db` label.
#[derive(Debug)]
struct NearDbFilter;

impl Filter for NearDbFilter {
    fn name(&self) -> &'static str {
        "test_near_db"
    }
    fn check(
        &self,
        _req: &PlacementRequest<'_>,
        node: &NodeView,
        _view: &ClusterView,
    ) -> Result<(), Rejection> {
        if node.node.labels.contains_key("near-db") {
            Ok(())
        } else {
            Err(Rejection::new(self.name(), "too far from db").detail("rtt to db 40 ms > 5 ms"))
        }
    }
}

/// Capacity first, then the stand-in latency rule.
fn capacity_then_latency() -> Scheduler {
    Scheduler::new(
        vec![Box::new(FitsFilter), Box::new(NearDbFilter)],
        vec![(Box::new(FewestTasks), 1.0)],
        SchedulerConfig::default(),
    )
}

fn reasons(plan: &orion_core::reconciler::Plan) -> Vec<(&str, &str)> {
    plan.actions
        .iter()
        .filter_map(|a| match a {
            Action::UpdatePendingReason { task_id, reason } => {
                Some((task_id.as_str(), reason.as_str()))
            }
            _ => None,
        })
        .collect()
}

#[test]
fn the_reason_changes_when_capacity_frees_up_but_a_latency_rule_still_fails() {
    let specs = [spec("api", 1, 600, 1)];
    let sched = capacity_then_latency();
    let full = [node("a", 500, GIB, NodeStatus::Ready)];
    // Round 1 creates the task pending, with the capacity reason.
    let mut tasks: Vec<Task> = Vec::new();
    let p = plan(&specs, &tasks, &full, 1, &sched);
    apply(&p, &mut tasks, &full);
    assert_eq!(tasks.len(), 1);
    assert_eq!(tasks[0].state, TaskState::Pending);
    let first = tasks[0].error.clone().expect("a reason");
    assert!(first.contains("not enough free resources"), "{first}");

    // Nothing changed: no write.
    let p = plan(&specs, &tasks, &full, 2, &sched);
    assert!(p.actions.is_empty(), "{:?}", p.actions);
    assert_eq!(p.unplaced.len(), 1);

    // Capacity appears (node a grows), but a is still too far from db: the reason now says so.
    let roomy = [node("a", 4000, GIB, NodeStatus::Ready)];
    let p = plan(&specs, &tasks, &roomy, 3, &sched);
    assert_eq!(reasons(&p).len(), 1, "{:?}", p.actions);
    let (id, now) = reasons(&p)[0];
    assert_eq!(id, tasks[0].id);
    assert!(now.contains("too far from db"), "{now}");
    assert!(!now.contains("not enough free resources"), "{now}");
    apply(&p, &mut tasks, &roomy);
    assert_eq!(tasks[0].error.as_deref(), Some(now.to_owned()).as_deref());
    assert_eq!(tasks[0].state, TaskState::Pending);

    // Stable again: no write storm, round after round.
    for round in 4..8 {
        let p = plan(&specs, &tasks, &roomy, round, &sched);
        assert!(p.actions.is_empty(), "round {round}: {:?}", p.actions);
    }

    // The rule can be met at last: the task is assigned and its reason cleared.
    let mut near = node("a", 4000, GIB, NodeStatus::Ready);
    near.labels.insert("near-db".into(), "yes".into());
    let p = plan(&specs, &tasks, std::slice::from_ref(&near), 9, &sched);
    assert!(reasons(&p).is_empty());
    assert!(
        matches!(p.actions.as_slice(), [Action::Assign { .. }]),
        "{p:?}"
    );
}

#[tokio::test]
async fn reason_updates_are_written_batched_and_only_when_the_text_differs() {
    let store = ClusterStore::new(MemoryStore::new());
    store
        .put_node(&Node::new("small", Resources::new(100, GIB)))
        .await
        .unwrap();
    let mut spec = ServiceSpec::new("api", "busybox", 10);
    spec.resources.cpu_millicores = 500;
    store.put_service(&spec).await.unwrap();
    let sched = capacity_then_latency();
    let policy = ReconcilePolicy::default();

    // Round 1: ten pending tasks, each with the capacity reason.
    let state = store.load_state().await.unwrap();
    let p = reconcile_state(&state, 1, policy, &sched);
    apply_plan(&store, &p, &state, None).await;
    let tasks = store.list_tasks().await.unwrap();
    assert_eq!(tasks.len(), 10);
    assert!(tasks.iter().all(|t| t.state == TaskState::Pending));

    // Nothing changed: the round writes nothing at all.
    let before = store.inner().revision().await.unwrap();
    let state = store.load_state().await.unwrap();
    let p = reconcile_state(&state, 2, policy, &sched);
    assert!(p.actions.is_empty(), "{:?}", p.actions);
    assert_eq!(store.inner().revision().await.unwrap(), before);

    // The node grows: every reason changes, written in one transaction.
    store
        .update_node("small", |n| {
            n.capacity = Resources::new(100_000, 64 * GIB);
            Ok(())
        })
        .await
        .unwrap();
    let before = store.inner().revision().await.unwrap();
    let state = store.load_state().await.unwrap();
    let p = reconcile_state(&state, 3, policy, &sched);
    assert_eq!(reasons(&p).len(), 10, "{:?}", p.actions);
    let report = apply_plan(&store, &p, &state, None).await;
    assert_eq!((report.applied, report.transactions), (10, 1));
    assert_eq!(store.inner().revision().await.unwrap(), before + 1);
    for t in store.list_tasks().await.unwrap() {
        let reason = t.error.unwrap_or_default();
        assert!(reason.contains("too far from db"), "{reason}");
    }

    // And the next round is quiet again.
    let state = store.load_state().await.unwrap();
    assert!(
        reconcile_state(&state, 4, policy, &sched)
            .actions
            .is_empty()
    );
}
