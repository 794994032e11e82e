//! Re-placement with the real network-aware pipeline: a replica whose link to its dependency
//! degrades past a hard rule moves once, within the budget, after its cooldown, and not back.

use orion_core::model::spec::AffinityRule;
use orion_core::model::{
    DesiredState, NetworkMatrix, NetworkMeasurement, Node, Resources, ServiceSpec, Task, TaskState,
};
use orion_core::reconciler::{
    Action, Plan, Purpose, ReconcileInput, ReconcilePolicy, StopReason, VersionedSpec, reconcile,
};
use orion_core::scheduler::{SchedulerConfig, reasons};
use orion_netscore::scoring::network_aware_pipeline;

/// Past every task's cooldown (tasks here are created at 1 ms).
const LATER: u64 = 10_000_000;

fn nodes(ids: &[&str]) -> Vec<Node> {
    ids.iter()
        .map(|id| Node::new(*id, Resources::new(4000, 8 << 30)))
        .collect()
}

/// `db` (1 replica) and `web` (`replicas`, within 5 ms of `db`).
fn specs(replicas: u32, parallelism: u32) -> Vec<VersionedSpec> {
    let mut web = ServiceSpec::new("web", "img", replicas);
    web.scheduling.affinity = vec![AffinityRule::Latency {
        target: "db".into(),
        max_latency_ms: 5.0,
        required: true,
    }];
    web.update_strategy.parallelism = parallelism;
    vec![
        VersionedSpec::new(ServiceSpec::new("db", "img", 1), 1),
        VersionedSpec::new(web, 1),
    ]
}

fn running(service: &str, slot: u32, node: &str) -> Task {
    let mut t = Task::new(service, slot, 1, Resources::new(100, 1 << 20));
    t.id = format!("{service}-{slot}-{node}").into();
    t.node = Some(node.into());
    t.state = TaskState::Running;
    t.created_at = 1;
    t.updated_at = 1;
    t
}

/// Symmetric links with these RTTs.
fn network(links: &[(&str, &str, f64)]) -> NetworkMatrix {
    let mut m = NetworkMatrix::new();
    for &(a, b, rtt_ms) in links {
        for (from, to) in [(a, b), (b, a)] {
            m.insert(NetworkMeasurement {
                from: from.into(),
                to: to.into(),
                rtt_ms,
                ..Default::default()
            });
        }
    }
    m
}

fn plan_at(
    specs: &[VersionedSpec],
    tasks: &[Task],
    nodes: &[Node],
    network: &NetworkMatrix,
    now: u64,
    policy: ReconcilePolicy,
) -> Plan {
    reconcile(
        &ReconcileInput {
            specs,
            tasks,
            nodes,
            network,
            now,
            policy,
        },
        &network_aware_pipeline(SchedulerConfig::default()),
    )
}

fn moves(plan: &Plan) -> Vec<(&str, &str, &Task)> {
    plan.actions
        .iter()
        .filter_map(|a| match a {
            Action::Create {
                task,
                purpose: Purpose::Move,
                replaces,
            } => Some((replaces.as_deref()?, task.node.as_deref()?, &**task)),
            _ => None,
        })
        .collect()
}

/// Applies the plan's creates and stops; created tasks run at once when `run` is set.
fn apply(plan: &Plan, tasks: &mut Vec<Task>, run: bool) {
    for a in &plan.actions {
        match a {
            Action::Create { task, .. } => tasks.push((**task).clone()),
            Action::Stop { task_id, .. } => {
                let t = tasks.iter_mut().find(|t| t.id == task_id).unwrap();
                t.desired = DesiredState::Shutdown;
                t.state = TaskState::Stopped;
            }
            _ => {}
        }
    }
    if run {
        for t in tasks.iter_mut().filter(|t| t.state == TaskState::Scheduled) {
            t.state = TaskState::Running;
        }
    }
}

#[test]
fn a_degraded_link_moves_the_replica_once_and_not_back() {
    let (specs, nodes) = (specs(1, 1), nodes(&["a", "b", "c"]));
    let mut tasks = vec![running("db", 0, "a"), running("web", 0, "b")];
    let policy = ReconcilePolicy::default();
    let healthy = network(&[("a", "b", 1.0), ("a", "c", 1.0), ("b", "c", 1.0)]);
    assert!(plan_at(&specs, &tasks, &nodes, &healthy, LATER, policy).is_empty());

    let degraded = network(&[("a", "b", 40.0), ("a", "c", 1.0), ("b", "c", 40.0)]);
    let p1 = plan_at(&specs, &tasks, &nodes, &degraded, LATER, policy);
    let m = moves(&p1);
    assert_eq!(m.len(), 1, "{:?}", p1.actions);
    let (old, to, new) = m[0];
    assert_eq!(old, "web-0-b");
    assert_ne!(to, "b", "never onto the node that breaks the rule");
    let because = new.moved_because.as_deref().unwrap();
    assert!(
        because.contains("moved off b") && because.contains(reasons::LATENCY_TOO_HIGH),
        "{because}"
    );
    assert!(
        p1.actions.iter().all(|a| !matches!(a, Action::Stop { .. })),
        "the old replica serves until the new one runs"
    );

    apply(&p1, &mut tasks, true);
    let p2 = plan_at(&specs, &tasks, &nodes, &degraded, LATER, policy);
    assert_eq!(
        p2.actions,
        [Action::Stop {
            task_id: "web-0-b".into(),
            reason: StopReason::Moved
        }]
    );
    apply(&p2, &mut tasks, true);
    assert!(plan_at(&specs, &tasks, &nodes, &degraded, LATER, policy).is_empty());
    // The link heals: nothing moves back.
    assert!(plan_at(&specs, &tasks, &nodes, &healthy, LATER * 2, policy).is_empty());
}

#[test]
fn a_replica_within_the_tolerance_band_stays() {
    let (specs, nodes) = (specs(1, 1), nodes(&["a", "b", "c"]));
    let tasks = vec![running("db", 0, "a"), running("web", 0, "b")];
    let policy = ReconcilePolicy::default(); // 20 %: moves past 6 ms
    let slightly_over = network(&[("a", "b", 5.8), ("a", "c", 1.0), ("b", "c", 1.0)]);
    assert!(plan_at(&specs, &tasks, &nodes, &slightly_over, LATER, policy).is_empty());
    let past = network(&[("a", "b", 6.5), ("a", "c", 1.0), ("b", "c", 1.0)]);
    assert_eq!(
        moves(&plan_at(&specs, &tasks, &nodes, &past, LATER, policy)).len(),
        1
    );
    let strict = ReconcilePolicy {
        move_tolerance_percent: 0,
        ..policy
    };
    assert_eq!(
        moves(&plan_at(
            &specs,
            &tasks,
            &nodes,
            &slightly_over,
            LATER,
            strict
        ))
        .len(),
        1
    );
}

#[test]
fn a_replica_in_its_cooldown_waits_and_the_plan_says_until_when() {
    let (specs, nodes) = (specs(1, 1), nodes(&["a", "b", "c"]));
    let mut tasks = vec![running("db", 0, "a"), running("web", 0, "b")];
    tasks[1].created_at = 5_000;
    let policy = ReconcilePolicy::default();
    let degraded = network(&[("a", "b", 40.0), ("a", "c", 1.0), ("b", "c", 40.0)]);
    let early = plan_at(&specs, &tasks, &nodes, &degraded, 6_000, policy);
    assert!(early.is_empty());
    assert_eq!(early.retry_at, Some(5_000 + policy.move_cooldown));
    let after = plan_at(
        &specs,
        &tasks,
        &nodes,
        &degraded,
        5_000 + policy.move_cooldown,
        policy,
    );
    assert_eq!(moves(&after).len(), 1);
}

#[test]
fn moves_in_flight_stay_within_the_budget() {
    let (specs, nodes) = (specs(5, 5), nodes(&["a", "b", "c"]));
    let mut tasks = vec![running("db", 0, "a")];
    tasks.extend((0..5).map(|slot| running("web", slot, "b")));
    let policy = ReconcilePolicy::default(); // at most 2 in flight
    let degraded = network(&[("a", "b", 40.0), ("a", "c", 1.0), ("b", "c", 40.0)]);
    let p1 = plan_at(&specs, &tasks, &nodes, &degraded, LATER, policy);
    assert_eq!(moves(&p1).len(), 2);
    apply(&p1, &mut tasks, false); // created, not serving yet
    let p2 = plan_at(&specs, &tasks, &nodes, &degraded, LATER, policy);
    assert!(
        moves(&p2).is_empty(),
        "two moves are in flight: {:?}",
        p2.actions
    );
    // Once they serve, the old ones stop and the next two start.
    for t in tasks.iter_mut().filter(|t| t.state == TaskState::Scheduled) {
        t.state = TaskState::Running;
    }
    let p3 = plan_at(&specs, &tasks, &nodes, &degraded, LATER, policy);
    assert_eq!(moves(&p3).len(), 2);
    let off = ReconcilePolicy {
        max_moves_in_flight: 0,
        ..policy
    };
    // Rebalancing (5 replicas on b, none on a or c) is another mover: off too.
    let mut off_too = off;
    off_too.rebalance.max_in_flight = 0;
    assert!(plan_at(&specs, &tasks[..6], &nodes, &degraded, LATER, off_too).is_empty());
    assert!(
        moves(&plan_at(&specs, &tasks[..6], &nodes, &degraded, LATER, off)).is_empty(),
        "re-placement is off; only rebalancing moves"
    );
}

#[test]
fn nowhere_better_or_unmeasured_keeps_the_replica_running() {
    let (specs, nodes) = (specs(1, 1), nodes(&["a", "b", "c"]));
    let tasks = vec![running("db", 0, "a"), running("web", 0, "b")];
    let policy = ReconcilePolicy::default();
    // Only `a` itself would do, and it is full.
    let mut full = nodes.clone();
    full[0].capacity = Resources::new(100, 1 << 20);
    let degraded = network(&[("a", "b", 40.0), ("a", "c", 40.0), ("b", "c", 1.0)]);
    let p = plan_at(&specs, &tasks, &full, &degraded, LATER, policy);
    assert!(moves(&p).is_empty());
    assert!(p.actions.iter().all(|a| !matches!(a, Action::Stop { .. })));
    assert!(
        p.unplaced.iter().any(|u| u.purpose == Purpose::Move),
        "{:?}",
        p.unplaced
    );
    // A link that is not measured is not a degraded one.
    let unmeasured = network(&[("a", "c", 1.0)]);
    assert!(plan_at(&specs, &tasks, &nodes, &unmeasured, LATER, policy).is_empty());
}
