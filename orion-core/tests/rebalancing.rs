//! Rebalancing (replicas moving to a node that joined or came back): pure reconcile rounds,
//! then the deterministic cluster harness (MemoryStore, FakeRuntime, manual clock).

mod reconciler_support;

use std::collections::BTreeMap;

use orion_core::model::{DesiredState, Node, NodeStatus, Task, TaskState};
use orion_core::node::ControllerConfig;
use orion_core::reconciler::{
    Action, Plan, Purpose, REBALANCE_PREFIX, RebalancePolicy, ReconcilePolicy, StopReason,
    VersionedSpec,
};
use orion_core::runtime::Runtime;
use orion_core::testing::cluster::{ClusterHarness, STEP_MS};
use reconciler_support::{policy_round as round, running, spec, three_nodes};

const LATER: u64 = 10_000_000;

fn policy(max_in_flight: u32, min_spread: u32) -> ReconcilePolicy {
    ReconcilePolicy {
        rebalance: RebalancePolicy {
            max_in_flight,
            min_spread,
            cooldown: 1_000,
        },
        ..ReconcilePolicy::default()
    }
}

/// One reconcile round of `vs` alone, at [`LATER`] (past every cooldown).
fn round_of(vs: &VersionedSpec, tasks: &[Task], nodes: &[Node], p: ReconcilePolicy) -> Plan {
    round(std::slice::from_ref(vs), tasks, nodes, LATER, p)
}

fn rebalances(p: &Plan) -> Vec<&Task> {
    p.actions
        .iter()
        .filter_map(|a| match a {
            Action::Create {
                task,
                purpose: Purpose::Rebalance,
                ..
            } => Some(&**task),
            _ => None,
        })
        .collect()
}

fn per_node(tasks: &[Task], service: &str) -> BTreeMap<String, u32> {
    let mut out = BTreeMap::new();
    for t in tasks
        .iter()
        .filter(|t| t.service == service && t.is_active())
    {
        *out.entry(t.node.as_deref().unwrap_or_default().to_owned())
            .or_default() += 1;
    }
    out
}

#[test]
fn a_returning_node_gets_its_share_back_one_move_at_a_time() {
    let vs = spec("web", 6, 100, 1);
    let nodes = three_nodes();
    let mut tasks = running(&vs, &[("a", 3), ("b", 3)]);
    let p = policy(1, 2);
    let mut rounds = 0;
    let mut moved = 0;
    while rounds < 20 {
        rounds += 1;
        let plan = round_of(&vs, &tasks, &nodes, p);
        let started = rebalances(&plan);
        let in_flight = tasks
            .iter()
            .filter(|t| t.is_active() && !t.is_serving())
            .count();
        assert!(
            started.len() + in_flight <= 1,
            "budget 1: {} started with {in_flight} in flight",
            started.len()
        );
        for t in &started {
            assert_eq!(t.node.as_deref(), Some("c"));
            let why = t.moved_because.as_deref().unwrap();
            assert!(why.starts_with(REBALANCE_PREFIX), "{why}");
            assert!(
                why.contains("to c (0)") || why.contains("to c (1)"),
                "{why}"
            );
        }
        moved += started.len();
        if plan.is_empty() {
            break;
        }
        // Controllers apply, agents start the new one; never fewer than 6 serving.
        reconciler_support::apply_actions(&plan, &mut tasks);
        assert!(
            tasks
                .iter()
                .filter(|t| t.is_active() && t.is_serving())
                .count()
                >= 6
        );
        reconciler_support::run_agents(&mut tasks, &nodes);
    }
    assert_eq!(moved, 2, "two moves, from a then b");
    let counts = per_node(&tasks, "web");
    assert_eq!(
        counts.values().copied().collect::<Vec<_>>(),
        [2, 2, 2],
        "{counts:?}"
    );
    let stopped: Vec<&Task> = tasks
        .iter()
        .filter(|t| t.desired == DesiredState::Shutdown)
        .collect();
    assert_eq!(stopped.len(), 2);
}

#[test]
fn the_old_replica_stops_only_once_its_replacement_serves() {
    let vs = spec("web", 4, 100, 1);
    let nodes = three_nodes();
    let mut tasks = running(&vs, &[("a", 2), ("b", 2)]);
    let p = policy(2, 2);
    let first = round_of(&vs, &tasks, &nodes, p);
    let started = rebalances(&first);
    assert_eq!(started.len(), 1, "a has 2, c has 0: one move ({first:?})");
    reconciler_support::apply_actions(&first, &mut tasks);
    // Not serving yet: both stay, nothing else starts.
    let waiting = round_of(&vs, &tasks, &nodes, p);
    assert!(waiting.is_empty(), "{waiting:?}");
    // It serves: the old one stops, as rebalanced.
    for t in tasks.iter_mut().filter(|t| t.state == TaskState::Scheduled) {
        t.state = TaskState::Running;
    }
    let done = round_of(&vs, &tasks, &nodes, p);
    assert!(
        matches!(
            done.actions.as_slice(),
            [Action::Stop { reason: StopReason::Rebalanced, task_id }] if task_id == "web-1-a"
        ),
        "{done:?}"
    );
}

#[test]
fn a_failed_replacement_leaves_the_old_replica_and_waits_for_the_cooldown() {
    let vs = spec("web", 4, 100, 1);
    let nodes = three_nodes();
    let mut tasks = running(&vs, &[("a", 2), ("b", 2)]);
    let p = policy(2, 2);
    let first = round_of(&vs, &tasks, &nodes, p);
    reconciler_support::apply_actions(&first, &mut tasks);
    let new = tasks
        .iter_mut()
        .find(|t| t.node.as_deref() == Some("c"))
        .unwrap();
    new.state = TaskState::Failed;
    let plan = round(std::slice::from_ref(&vs), &tasks, &nodes, LATER + 10, p);
    assert!(rebalances(&plan).is_empty(), "{plan:?}");
    assert!(
        plan.actions
            .iter()
            .all(|a| !matches!(a, Action::Stop { task_id, .. } if task_id.ends_with("-a"))),
        "the old replicas keep running: {plan:?}"
    );
    assert_eq!(plan.retry_at, Some(LATER + 1_000));
    let later = round(std::slice::from_ref(&vs), &tasks, &nodes, LATER + 1_000, p);
    assert_eq!(rebalances(&later).len(), 1, "{later:?}");
}

#[test]
fn below_the_threshold_nothing_moves() {
    let vs = spec("web", 5, 100, 1);
    let nodes = three_nodes();
    let tasks = running(&vs, &[("a", 2), ("b", 2), ("c", 1)]);
    assert!(round_of(&vs, &tasks, &nodes, policy(2, 2)).is_empty());
    let tasks = running(&vs, &[("a", 3), ("b", 1), ("c", 1)]);
    assert_eq!(
        rebalances(&round_of(&vs, &tasks, &nodes, policy(2, 2))).len(),
        1
    );
    assert!(
        round_of(&vs, &tasks, &nodes, policy(2, 3)).is_empty(),
        "a difference of 2 is below a threshold of 3"
    );
    assert!(
        round_of(&vs, &tasks, &nodes, policy(0, 2)).is_empty(),
        "max_in_flight 0 turns rebalancing off"
    );
}

#[test]
fn a_node_that_just_came_back_or_a_young_replica_waits_for_the_cooldown() {
    let vs = spec("web", 4, 100, 1);
    let mut nodes = three_nodes();
    nodes[2].updated_at = LATER - 200;
    let tasks = running(&vs, &[("a", 2), ("b", 2)]);
    let plan = round_of(&vs, &tasks, &nodes, policy(2, 2));
    assert!(plan.is_empty());
    assert_eq!(plan.retry_at, Some(LATER + 800));
    nodes[2].updated_at = 0;
    let mut young = tasks.clone();
    for t in &mut young {
        t.created_at = LATER - 10;
    }
    assert!(round_of(&vs, &young, &nodes, policy(2, 2)).is_empty());
}

#[test]
fn filters_are_never_broken_and_unsettled_services_wait() {
    // c does not match the node selector: nothing moves there.
    let mut vs = spec("web", 4, 100, 1);
    vs.spec
        .scheduling
        .node_selector
        .insert("disk".into(), "ssd".into());
    let mut nodes = three_nodes();
    for n in &mut nodes[..2] {
        n.labels.insert("disk".into(), "ssd".into());
    }
    let tasks = running(&vs, &[("a", 4)]);
    let plan = round_of(&vs, &tasks, &nodes, policy(2, 2));
    assert!(
        rebalances(&plan)
            .iter()
            .all(|t| t.node.as_deref() == Some("b"))
    );
    // c is too small for a replica.
    let vs = spec("big", 4, 3000, 1);
    let mut nodes = three_nodes();
    nodes[2].capacity.cpu_millicores = 1000;
    let tasks = running(&vs, &[("a", 2), ("b", 2)]);
    assert!(round_of(&vs, &tasks, &nodes, policy(2, 2)).is_empty());
    // A draining target is never used, and a service mid-update is left alone.
    let vs = spec("web", 4, 100, 2);
    let mut nodes = three_nodes();
    let mut tasks = running(&vs, &[("a", 2), ("b", 2)]);
    nodes[2].status = NodeStatus::Draining;
    assert!(round_of(&vs, &tasks, &nodes, policy(2, 2)).is_empty());
    nodes[2].status = NodeStatus::Ready;
    tasks[0].spec_version = 1;
    let plan = round_of(&vs, &tasks, &nodes, policy(2, 2));
    assert!(rebalances(&plan).is_empty(), "{plan:?}");
}

#[test]
fn the_cluster_budget_is_shared_and_the_service_keeps_its_parallelism() {
    let mut web = spec("web", 6, 100, 1);
    web.spec.update_strategy.parallelism = 3;
    let api = spec("api", 6, 100, 1);
    let nodes = three_nodes();
    let mut tasks = running(&web, &[("a", 3), ("b", 3)]);
    tasks.extend(running(&api, &[("a", 3), ("b", 3)]));
    let plan = round(
        &[web.clone(), api.clone()],
        &tasks,
        &nodes,
        LATER,
        policy(2, 2),
    );
    let started = rebalances(&plan);
    assert_eq!(started.len(), 2, "cluster budget 2: {plan:?}");
    let services: Vec<&str> = started.iter().map(|t| t.service.as_str()).collect();
    assert_eq!(services, ["api", "web"], "api's parallelism is 1; by name");
    let plan = round(&[web, api], &tasks, &nodes, LATER, policy(10, 2));
    assert_eq!(
        rebalances(&plan).len(),
        3,
        "api's parallelism 1 + the 2 web needs"
    );
}

#[test]
fn spread_by_a_label_never_gets_worse() {
    let mut vs = spec("web", 4, 100, 1);
    vs.spec.scheduling.spread_by = Some("zone".into());
    let mut nodes = three_nodes();
    nodes[0].labels.insert("zone".into(), "z1".into());
    nodes[1].labels.insert("zone".into(), "z2".into());
    nodes[2].labels.insert("zone".into(), "z2".into());
    // z1: 2 on a; z2: 2 on b, 0 on c. Moving a -> c would make z2 hold 3: only b -> c is fine.
    let tasks = running(&vs, &[("a", 2), ("b", 2)]);
    let plan = round_of(&vs, &tasks, &nodes, policy(2, 2));
    let started = rebalances(&plan);
    assert_eq!(started.len(), 1, "{plan:?}");
    assert!(
        started[0]
            .moved_because
            .as_deref()
            .unwrap()
            .contains("from b"),
        "{:?}",
        started[0].moved_because
    );
}

/// On the harness: node 3 dies with its containers (a machine reboot), its replicas move to
/// nodes 1 and 2; it comes back and gets its share back, moves within the budget, never fewer
/// than `replicas` serving.
#[tokio::test]
async fn a_node_back_from_a_reboot_gets_its_share_back_on_the_harness() {
    let mut config = ControllerConfig::default();
    config.policy.rebalance = RebalancePolicy {
        max_in_flight: 1,
        min_spread: 2,
        cooldown: 2_000,
    };
    let mut h = ClusterHarness::new(3, 11, config);
    let svc = orion_core::model::ServiceSpec::new("web", "web:1", 6);
    h.store.put_service(&svc).await.unwrap();
    let serving = |ts: &[Task]| {
        ts.iter()
            .filter(|t| t.service == "web" && t.desired == DesiredState::Running && t.is_serving())
            .count()
    };
    assert!(h.run_until(400, |ts| serving(ts) == 6).await);
    h.kill(2);
    let rt = h.runtime(2).clone();
    for c in rt.list(&BTreeMap::new()).await.unwrap() {
        rt.remove(&c.id).await.unwrap();
    }
    let n3 = h.id(2).to_owned();
    assert!(
        h.run_until(600, |ts| {
            serving(ts) == 6
                && ts
                    .iter()
                    .filter(|t| t.is_active() && t.node.as_deref() == Some(n3.as_str()))
                    .count()
                    == 0
        })
        .await,
        "the replicas of node 3 moved away"
    );
    h.restart(2);
    let mut most_in_flight = 0;
    let mut least_serving = usize::MAX;
    let mut back = false;
    for _ in 0..(120_000 / STEP_MS as usize) {
        h.step().await;
        let ts = h.store.list_tasks().await.unwrap();
        let in_flight = ts
            .iter()
            .filter(|t| {
                t.is_active()
                    && !t.is_serving()
                    && t.moved_because
                        .as_deref()
                        .is_some_and(|m| m.starts_with(REBALANCE_PREFIX))
            })
            .count();
        most_in_flight = most_in_flight.max(in_flight);
        least_serving = least_serving.min(serving(&ts));
        let on3 = ts
            .iter()
            .filter(|t| t.is_active() && t.is_serving() && t.node.as_deref() == Some(n3.as_str()))
            .count();
        if on3 == 2 && serving(&ts) == 6 && ts.iter().filter(|t| t.is_active()).count() == 6 {
            back = true;
            break;
        }
    }
    assert!(
        back,
        "node 3 got 2 of the 6 replicas back: {:?}",
        per_node(&h.store.list_tasks().await.unwrap(), "web")
    );
    assert!(
        most_in_flight <= 1,
        "{most_in_flight} moves in flight at once, budget 1"
    );
    assert!(least_serving >= 6, "{least_serving} serving at the lowest");
    let ts = h.store.list_tasks().await.unwrap();
    let reasons: Vec<&str> = ts
        .iter()
        .filter_map(|t| t.moved_because.as_deref())
        .collect();
    assert_eq!(reasons.len(), 2, "{reasons:?}");
}
