//! `update_strategy.max_surge`: of a batch, at most `max_surge` slots start their new replica
//! before the old one stops; the others stop first. Pure reconcile rounds, then the cluster
//! harness (MemoryStore, FakeRuntime, manual clock).

mod reconciler_support;

use std::collections::BTreeMap;

use orion_core::model::{DesiredState, NodeStatus, Task, TaskState};
use orion_core::node::ControllerConfig;
use orion_core::reconciler::{
    Action, Plan, Purpose, RebalancePolicy, ReconcilePolicy, StopReason, VersionedSpec,
};
use orion_core::runtime::Runtime;
use orion_core::testing::cluster::ClusterHarness;
use reconciler_support::{apply, node, policy_round as round, running, spec, three_nodes};

const LATER: u64 = 10_000_000;
const GIB: u64 = 1 << 30;

/// Rebalancing off: only the update moves replicas.
fn policy(_: u32, _: u32) -> ReconcilePolicy {
    ReconcilePolicy {
        rebalance: RebalancePolicy {
            max_in_flight: 0,
            ..RebalancePolicy::default()
        },
        ..ReconcilePolicy::default()
    }
}

#[test]
fn max_surge_zero_stops_the_old_replica_before_its_replacement_starts() {
    let mut vs = spec("web", 2, 100, 1);
    vs.spec.update_strategy.max_surge = Some(0);
    let nodes = vec![node("a", 8000, 8 * GIB, NodeStatus::Ready)];
    let mut tasks = running(&vs, &[("a", 2)]);
    let v2 = VersionedSpec::new(vs.spec.clone(), 2);
    let no_rebalance = policy(0, 2);
    let mut max_active = 0;
    for _ in 0..20 {
        let plan = round(
            std::slice::from_ref(&v2),
            &tasks,
            &nodes,
            LATER,
            no_rebalance,
        );
        if plan.is_empty() {
            break;
        }
        for a in &plan.actions {
            if let Action::Create { purpose, .. } = a {
                assert_eq!(*purpose, Purpose::Update);
            }
        }
        reconciler_support::apply_actions(&plan, &mut tasks);
        let active = tasks
            .iter()
            .filter(|t| {
                t.is_active()
                    || t.state == TaskState::Running && t.desired == DesiredState::Shutdown
            })
            .count();
        max_active = max_active.max(active);
        apply(&Plan::default(), &mut tasks, &nodes);
    }
    assert!(
        max_active <= 2,
        "never more than replicas at once: {max_active}"
    );
    let live: Vec<&Task> = tasks.iter().filter(|t| t.is_active()).collect();
    assert_eq!(live.len(), 2);
    assert!(live.iter().all(|t| t.spec_version == 2));
    assert_eq!(
        live.iter()
            .map(|t| t.slot)
            .collect::<std::collections::BTreeSet<_>>(),
        [0, 1].into(),
        "each new replica takes its old one's slot"
    );
}

#[test]
fn max_surge_bounds_the_extra_replicas_of_a_batch() {
    let mut vs = spec("web", 4, 100, 1);
    vs.spec.update_strategy.parallelism = 3;
    vs.spec.update_strategy.max_surge = Some(1);
    let nodes = three_nodes();
    let tasks = running(&vs, &[("a", 2), ("b", 2)]);
    let v2 = VersionedSpec::new(vs.spec.clone(), 2);
    let plan = round(
        std::slice::from_ref(&v2),
        &tasks,
        &nodes,
        LATER,
        policy(0, 2),
    );
    let creates = plan
        .actions
        .iter()
        .filter(|a| matches!(a, Action::Create { .. }))
        .count();
    let stops = plan
        .actions
        .iter()
        .filter(|a| {
            matches!(
                a,
                Action::Stop {
                    reason: StopReason::Updated,
                    ..
                }
            )
        })
        .count();
    assert_eq!(
        (creates, stops),
        (1, 2),
        "one surges, two stop first: {plan:?}"
    );
    // Unset, the surge is the parallelism (every slot of the batch starts first).
    vs.spec.update_strategy.max_surge = None;
    let v2 = VersionedSpec::new(vs.spec.clone(), 2);
    let plan = round(
        std::slice::from_ref(&v2),
        &tasks,
        &nodes,
        LATER,
        policy(0, 2),
    );
    assert_eq!(plan.actions.len(), 3);
    assert!(
        plan.actions
            .iter()
            .all(|a| matches!(a, Action::Create { .. }))
    );
}

/// On the harness: with `max_surge: 0`, an update never runs more than `replicas` containers
/// (each old one stops before its new one starts), and the rollout completes only once the new
/// replicas serve.
#[tokio::test]
async fn max_surge_zero_on_the_harness_never_runs_more_than_replicas() {
    let mut config = ControllerConfig::default();
    config.policy.rebalance.max_in_flight = 0;
    let mut h = ClusterHarness::new(1, 5, config);
    let mut svc = orion_core::model::ServiceSpec::new("web", "web:1", 2);
    svc.update_strategy.parallelism = 2;
    svc.update_strategy.max_surge = Some(0);
    svc.update_strategy.health_wait_seconds = 5;
    h.store.put_service(&svc).await.unwrap();
    let serving = |ts: &[Task], v: u64| {
        ts.iter()
            .filter(|t| t.spec_version == v && t.desired == DesiredState::Running && t.is_serving())
            .count()
    };
    assert!(h.run_until(400, |ts| serving(ts, 1) == 2).await);
    assert!(h.run_until(5, |_| true).await);
    h.store
        .update_service("web", |s| {
            s.image = "web:2".into();
            Ok(())
        })
        .await
        .unwrap();
    let rt = h.runtime(0).clone();
    let mut most = 0;
    let mut done = false;
    for _ in 0..400 {
        h.step().await;
        let containers = rt.list(&BTreeMap::new()).await.unwrap();
        let alive = containers
            .iter()
            .filter(|c| c.status == orion_core::runtime::ContainerStatus::Running)
            .count();
        most = most.max(alive);
        let ts = h.store.list_tasks().await.unwrap();
        let record = h.store.get_rollout("web").await.unwrap().map(|(r, _)| r);
        if let Some(r) = &record
            && r.version == 2
            && r.phase == orion_core::reconciler::RolloutPhase::Completed
        {
            assert_eq!(
                serving(&ts, 2),
                2,
                "completed only once both new replicas serve"
            );
            done = true;
            break;
        }
    }
    assert!(done, "the update completed");
    assert!(
        most <= 2,
        "{most} containers ran at once, replicas 2, max_surge 0"
    );
}
