//! `apply_plan` writes many actions per transaction: one revision per batch, all or nothing per
//! batch, and per action the same outcome as writing them one by one.

use orion_core::model::{Node, Resources, ServiceSpec, TaskState};
use orion_core::reconciler::{
    Action, MAX_ACTIONS_PER_TXN, MAX_BATCHES_IN_FLIGHT, Plan, ReconcilePolicy, apply_plan,
    reconcile_state,
};
use orion_core::scheduler::{Scheduler, SchedulerConfig};
use orion_core::store::{ClusterState, ClusterStore, Compare, MemoryStore, Store, keys};

/// A store with one roomy node and service `web` of `replicas`, and the plan that creates them.
async fn planned(replicas: u32) -> (ClusterStore<MemoryStore>, ClusterState, Plan) {
    let store = ClusterStore::new(MemoryStore::new());
    store
        .put_node(&Node::new("n1", Resources::new(1_000_000, 1 << 40)))
        .await
        .unwrap();
    let mut spec = ServiceSpec::new("web", "busybox", replicas);
    spec.resources.cpu_millicores = 10;
    store.put_service(&spec).await.unwrap();
    let state = store.load_state().await.unwrap();
    let scheduler = Scheduler::default_pipeline(SchedulerConfig::default());
    let plan = reconcile_state(&state, 1, ReconcilePolicy::default(), &scheduler);
    assert_eq!(plan.actions.len(), replicas as usize, "{:?}", plan.actions);
    (store, state, plan)
}

#[tokio::test]
async fn a_plan_of_creates_commits_in_one_revision() {
    let (store, state, plan) = planned(10).await;
    let before = store.inner().revision().await.unwrap();
    let report = apply_plan(&store, &plan, &state, None).await;
    assert_eq!((report.applied, report.skipped), (10, 0));
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    assert_eq!(report.transactions, 1);
    assert_eq!(store.inner().revision().await.unwrap(), before + 1);
    let tasks = store.list_tasks().await.unwrap();
    assert_eq!(tasks.len(), 10);
    assert!(tasks.iter().all(|t| t.state == TaskState::Scheduled));
    // Every slot record is written in the same revision as its task.
    for t in &tasks {
        let slot = store
            .inner()
            .get(&keys::slot("web", t.slot))
            .await
            .unwrap()
            .expect("slot record");
        assert_eq!(slot.mod_revision, before + 1);
    }
}

#[tokio::test]
async fn batches_are_bounded() {
    let n = MAX_ACTIONS_PER_TXN as u32 + 1;
    let (store, state, plan) = planned(n).await;
    let before = store.inner().revision().await.unwrap();
    let report = apply_plan(&store, &plan, &state, None).await;
    assert_eq!(report.applied, n as usize);
    assert_eq!(report.transactions, 2);
    assert_eq!(store.inner().revision().await.unwrap(), before + 2);
}

#[tokio::test]
async fn one_stale_action_is_skipped_and_the_rest_of_its_batch_commits() {
    let (store, state, plan) = planned(10).await;
    // Another controller filled slot 3 after the state was read.
    store
        .inner()
        .put(&keys::slot("web", 3), b"\"someone-else\"".to_vec())
        .await
        .unwrap();
    let report = apply_plan(&store, &plan, &state, None).await;
    assert_eq!((report.applied, report.skipped), (9, 1));
    let tasks = store.list_tasks().await.unwrap();
    assert_eq!(tasks.len(), 9);
    assert!(tasks.iter().all(|t| t.slot != 3));
    // Applying the same plan again writes nothing: every compare fails now.
    let again = apply_plan(&store, &plan, &state, None).await;
    assert_eq!((again.applied, again.skipped), (0, 10));
    assert_eq!(store.list_tasks().await.unwrap().len(), 9);
}

#[tokio::test]
async fn a_lost_fence_writes_nothing_of_a_batch() {
    let (store, state, plan) = planned(10).await;
    let before = store.inner().revision().await.unwrap();
    let fence = Compare::Value("/orion/leader-test".into(), b"me".to_vec());
    let report = apply_plan(&store, &plan, &state, Some(&fence)).await;
    assert_eq!((report.applied, report.skipped), (0, 10));
    assert_eq!(store.inner().revision().await.unwrap(), before);
    assert!(store.list_tasks().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_lost_fence_stops_the_plan_without_trying_each_action() {
    // A deposed leader's plan of many batches: it must not fall back to one transaction per
    // action (each a Raft entry) once the fence is known lost.
    let batches = 3 * MAX_BATCHES_IN_FLIGHT;
    let (store, state, plan) = planned((batches * MAX_ACTIONS_PER_TXN) as u32).await;
    let before = store.inner().revision().await.unwrap();
    let fence = Compare::Value("/orion/leader-test".into(), b"me".to_vec());
    let report = apply_plan(&store, &plan, &state, Some(&fence)).await;
    assert_eq!((report.applied, report.skipped), (0, plan.actions.len()));
    assert!(
        report.transactions <= 2 * MAX_BATCHES_IN_FLIGHT,
        "{} transactions tried for a lost fence",
        report.transactions
    );
    assert_eq!(store.inner().revision().await.unwrap(), before);
}

#[tokio::test]
async fn batches_in_flight_together_keep_each_actions_outcome() {
    let n = (2 * MAX_BATCHES_IN_FLIGHT * MAX_ACTIONS_PER_TXN) as u32;
    let (store, state, plan) = planned(n).await;
    // A slot in a later batch was filled by someone else after the state was read.
    let stale = MAX_BATCHES_IN_FLIGHT as u32 * MAX_ACTIONS_PER_TXN as u32 + 5;
    store
        .inner()
        .put(&keys::slot("web", stale), b"\"someone-else\"".to_vec())
        .await
        .unwrap();
    let fence = Compare::Missing("/orion/leader-test".into());
    let report = apply_plan(&store, &plan, &state, Some(&fence)).await;
    assert_eq!((report.applied, report.skipped), (n as usize - 1, 1));
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    let tasks = store.list_tasks().await.unwrap();
    assert_eq!(tasks.len(), n as usize - 1);
    assert!(tasks.iter().all(|t| t.slot != stale));
}

#[tokio::test]
async fn two_actions_on_one_task_never_share_a_transaction() {
    let (store, state, plan) = planned(2).await;
    apply_plan(&store, &plan, &state, None).await;
    let state = store.load_state().await.unwrap();
    let task = state.tasks[0].clone();
    // Two decisions on one task, planned on the same state: written one by one, the second
    // finds the key changed by the first and is skipped, as it would be without batching.
    let plan = Plan {
        actions: vec![
            Action::MarkLost {
                task_id: task.id.to_string(),
                node: "n1".into(),
            },
            Action::Stop {
                task_id: task.id.to_string(),
                reason: orion_core::reconciler::StopReason::ScaleDown,
            },
        ],
        ..Plan::default()
    };
    let report = apply_plan(&store, &plan, &state, None).await;
    assert_eq!((report.applied, report.skipped), (1, 1));
    assert_eq!(report.transactions, 2);
    let stored = store.get_task(&task.id).await.unwrap().unwrap();
    assert_eq!(stored.state, TaskState::Lost);
}
