//! Example-based tests of the reconciler, one or more per kind of action.

mod reconciler_support;

use orion_core::model::spec::RestartPolicy;
use orion_core::model::{DesiredState, NodeStatus, Task, TaskHealth, TaskState};
use orion_core::reconciler::ReconcilePolicy;
use orion_core::reconciler::{Action, GUARD_FILTERS, Purpose, StopReason};
use reconciler_support::*;

/// A time past any crash-loop back-off of the tasks these tests make (stamped at 1 ms).
const LATER: u64 = 1_000_000;

const GIB: u64 = 1 << 30;

fn stops(plan: &orion_core::reconciler::Plan) -> Vec<(String, StopReason)> {
    plan.actions
        .iter()
        .filter_map(|a| match a {
            Action::Stop { task_id, reason } => Some((task_id.clone(), *reason)),
            _ => None,
        })
        .collect()
}

fn creates(plan: &orion_core::reconciler::Plan) -> Vec<(u32, Option<String>, Purpose)> {
    plan.actions
        .iter()
        .filter_map(|a| match a {
            Action::Create { task, purpose, .. } => {
                Some((task.slot, task.node.as_deref().map(str::to_owned), *purpose))
            }
            _ => None,
        })
        .collect()
}

#[test]
fn missing_replicas_are_created_placed_and_accounted() {
    let specs = [spec("web", 3, 400, 1)];
    // Each node has room for two tasks of 400m.
    let nodes = [
        node("a", 800, GIB, NodeStatus::Ready),
        node("b", 800, GIB, NodeStatus::Ready),
    ];
    let p = plan(&specs, &[], &nodes, 10, &scheduler());
    let c = creates(&p);
    assert_eq!(c.iter().map(|c| c.0).collect::<Vec<_>>(), [0, 1, 2]);
    assert!(
        c.iter()
            .all(|c| c.1.is_some() && c.2 == Purpose::NewReplica)
    );
    assert!(p.unplaced.is_empty());
    // The spread scorer sees earlier placements: two on one node, one on the other.
    let on_a = c.iter().filter(|c| c.1.as_deref() == Some("a")).count();
    assert!(on_a == 1 || on_a == 2, "{c:?}");
    for a in &p.actions {
        let Action::Create { task, .. } = a else {
            panic!("{a:?}")
        };
        assert_eq!(task.state, TaskState::Scheduled);
        assert_eq!(task.spec_version, 1);
        assert_eq!(task.created_at, 10);
    }
}

#[test]
fn unplaceable_replicas_are_created_pending_with_reasons() {
    let specs = [spec("web", 2, 600, 1)];
    let nodes = [node("a", 1000, GIB, NodeStatus::Ready)];
    let p = plan(&specs, &[], &nodes, 1, &scheduler());
    let pending: Vec<_> = p
        .actions
        .iter()
        .filter_map(|a| match a {
            Action::Create { task, .. } if task.state == TaskState::Pending => Some(task),
            _ => None,
        })
        .collect();
    assert_eq!(pending.len(), 1);
    assert!(pending[0].node.is_none());
    let error = pending[0].error.as_deref().unwrap_or_default();
    assert!(error.contains("not enough free resources"), "{error}");
    assert_eq!(p.unplaced.len(), 1);
    assert_eq!(
        p.unplaced[0].task_id.as_deref(),
        Some(pending[0].id.as_str())
    );
    assert_eq!(p.unplaced[0].rejections[0].0, "a");
}

#[test]
fn pending_tasks_are_assigned_when_capacity_appears() {
    let specs = [spec("web", 1, 600, 1)];
    let mut t = task(&specs[0], 0, TaskState::Pending, None);
    let full = [node("a", 500, GIB, NodeStatus::Ready)];
    // The stored reason is brought up to date once, then the round has nothing to write.
    let p = plan(&specs, std::slice::from_ref(&t), &full, 1, &scheduler());
    let [Action::UpdatePendingReason { reason, .. }] = p.actions.as_slice() else {
        panic!("{p:?}");
    };
    t.error = Some(reason.as_str().into());
    let p = plan(&specs, std::slice::from_ref(&t), &full, 1, &scheduler());
    assert!(p.actions.is_empty(), "{p:?}");
    assert_eq!(p.unplaced[0].purpose, Purpose::AssignPending);
    let roomy = [full[0].clone(), node("b", 1000, GIB, NodeStatus::Ready)];
    let p = plan(&specs, std::slice::from_ref(&t), &roomy, 1, &scheduler());
    assert_eq!(
        p.actions,
        [Action::Assign {
            task_id: t.id.to_string(),
            node: "b".into()
        }]
    );
}

#[test]
fn scale_down_prefers_not_running_then_crowded_nodes_then_high_slots() {
    let vs = spec("web", 2, 100, 1);
    let nodes = [
        node("a", 4000, GIB, NodeStatus::Ready),
        node("b", 4000, GIB, NodeStatus::Ready),
    ];
    let tasks = vec![
        task(&vs, 0, TaskState::Running, Some("a")),
        task(&vs, 1, TaskState::Running, Some("a")),
        task(&vs, 2, TaskState::Running, Some("b")),
        task(&vs, 3, TaskState::Starting, Some("b")),
        task(&vs, 4, TaskState::Pending, None),
    ];
    let p = plan(std::slice::from_ref(&vs), &tasks, &nodes, 1, &scheduler());
    let stopped: Vec<_> = stops(&p)
        .into_iter()
        .map(|(id, r)| {
            assert_eq!(r, StopReason::ScaleDown);
            id
        })
        .collect();
    // Pending and starting first; then a's second task (a has the most), highest slot first.
    assert_eq!(stopped.len(), 3);
    assert!(stopped.contains(&tasks[4].id.to_string()));
    assert!(stopped.contains(&tasks[3].id.to_string()));
    assert!(stopped.contains(&tasks[1].id.to_string()));
    assert!(creates(&p).is_empty());
}

#[test]
fn scale_down_to_desired_never_goes_below() {
    let vs = spec("web", 3, 100, 1);
    let nodes = [node("a", 4000, GIB, NodeStatus::Ready)];
    let tasks: Vec<_> = (0..3)
        .map(|s| task(&vs, s, TaskState::Running, Some("a")))
        .collect();
    let p = plan(std::slice::from_ref(&vs), &tasks, &nodes, 1, &scheduler());
    assert!(p.is_empty(), "{p:?}");
}

#[test]
fn tasks_of_a_deleted_service_are_stopped() {
    let vs = spec("gone", 2, 100, 1);
    let nodes = [node("a", 4000, GIB, NodeStatus::Ready)];
    let tasks = vec![
        task(&vs, 0, TaskState::Running, Some("a")),
        task(&vs, 1, TaskState::Pending, None),
    ];
    let p = plan(&[], &tasks, &nodes, 1, &scheduler());
    let s = stops(&p);
    assert_eq!(s.len(), 2);
    assert!(s.iter().all(|(_, r)| *r == StopReason::ServiceDeleted));
}

#[test]
fn tasks_on_a_down_node_are_lost_and_replaced_in_the_same_slot() {
    let vs = spec("web", 2, 100, 1);
    let nodes = [
        node("a", 4000, GIB, NodeStatus::Down),
        node("b", 4000, GIB, NodeStatus::Ready),
    ];
    let tasks = vec![
        task(&vs, 0, TaskState::Running, Some("b")),
        task(&vs, 1, TaskState::Running, Some("a")),
    ];
    let p = plan(std::slice::from_ref(&vs), &tasks, &nodes, 1, &scheduler());
    assert_eq!(
        p.actions[0],
        Action::MarkLost {
            task_id: tasks[1].id.to_string(),
            node: "a".into()
        }
    );
    assert_eq!(
        creates(&p),
        [(1, Some("b".to_owned()), Purpose::Replacement)]
    );
    let Action::Create { replaces, .. } = &p.actions[1] else {
        panic!()
    };
    assert_eq!(replaces.as_deref(), Some(tasks[1].id.as_str()));
}

#[test]
fn a_task_on_an_unknown_node_counts_as_lost() {
    let vs = spec("web", 1, 100, 1);
    let nodes = [node("b", 4000, GIB, NodeStatus::Ready)];
    let tasks = vec![task(&vs, 0, TaskState::Running, Some("vanished"))];
    let p = plan(std::slice::from_ref(&vs), &tasks, &nodes, 1, &scheduler());
    assert!(matches!(p.actions[0], Action::MarkLost { .. }));
    assert_eq!(
        creates(&p),
        [(0, Some("b".to_owned()), Purpose::Replacement)]
    );
}

#[test]
fn a_node_that_comes_back_keeps_its_original_and_the_replacement_stops() {
    let vs = spec("web", 1, 100, 1);
    let nodes = [
        node("a", 4000, GIB, NodeStatus::Ready),
        node("b", 4000, GIB, NodeStatus::Ready),
    ];
    let old = task(&vs, 0, TaskState::Running, Some("a"));
    let mut replacement = task(&vs, 0, TaskState::Running, Some("b"));
    replacement.created_at = 5;
    let p = plan(
        std::slice::from_ref(&vs),
        &[old, replacement.clone()],
        &nodes,
        9,
        &scheduler(),
    );
    // As Nomad does for reconnecting clients: the original (oldest) is kept.
    assert_eq!(
        stops(&p),
        [(replacement.id.to_string(), StopReason::DuplicateSlot)]
    );
    assert!(creates(&p).is_empty());
}

#[test]
fn a_crash_looping_slot_is_refilled_only_after_its_back_off() {
    let mut vs = spec("job", 1, 100, 1);
    vs.spec.restart_policy = RestartPolicy::Always;
    let nodes = [node("a", 4000, GIB, NodeStatus::Ready)];
    let mut failed = task(&vs, 0, TaskState::Failed, Some("a"));
    failed.desired = DesiredState::Shutdown;
    failed.attempt = 3;
    failed.updated_at = 1_000;
    let policy = ReconcilePolicy::default();
    let wait = policy.crash_backoff(3);
    assert_eq!(wait, 8_000, "1 s doubled per earlier failure");
    let tasks = std::slice::from_ref(&failed);
    let early = plan(
        std::slice::from_ref(&vs),
        tasks,
        &nodes,
        1_000 + wait - 1,
        &scheduler(),
    );
    assert!(creates(&early).is_empty(), "{early:?}");
    assert_eq!(early.retry_at, Some(1_000 + wait));
    let due = plan(
        std::slice::from_ref(&vs),
        tasks,
        &nodes,
        1_000 + wait,
        &scheduler(),
    );
    let Some(Action::Create { task, .. }) = due.actions.first() else {
        panic!("{due:?}");
    };
    assert_eq!(task.attempt, 4, "the next failure waits longer");
    assert_eq!(policy.crash_backoff(40), policy.crash_backoff_max);
}

#[test]
fn replicas_beyond_the_bound_are_read_as_the_bound_and_creation_is_bounded_per_round() {
    let vs = spec("web", 4_000_000_000, 1, 1);
    let nodes = [node("a", 1 << 40, 1 << 50, NodeStatus::Ready)];
    let p = plan(std::slice::from_ref(&vs), &[], &nodes, 9, &scheduler());
    let policy = ReconcilePolicy::default();
    assert_eq!(creates(&p).len(), policy.max_creates_per_round);
    assert!(p.more);
    assert!(policy.limits.max_replicas < 4_000_000_000);
}

#[test]
fn drain_starts_the_replacement_first_then_stops_the_old_task() {
    let vs = spec("web", 1, 100, 1);
    let nodes = [
        node("a", 4000, GIB, NodeStatus::Draining),
        node("b", 4000, GIB, NodeStatus::Ready),
    ];
    let old = task(&vs, 0, TaskState::Running, Some("a"));
    let mut tasks = vec![old.clone()];
    let p1 = plan(std::slice::from_ref(&vs), &tasks, &nodes, 1, &scheduler());
    assert_eq!(creates(&p1), [(0, Some("b".to_owned()), Purpose::Drain)]);
    assert!(
        stops(&p1).is_empty(),
        "the old task serves until the new one runs"
    );
    apply(&p1, &mut tasks, &nodes);
    let p2 = plan(std::slice::from_ref(&vs), &tasks, &nodes, 2, &scheduler());
    assert_eq!(stops(&p2), [(old.id.to_string(), StopReason::Drained)]);
    assert!(creates(&p2).is_empty());
    apply(&p2, &mut tasks, &nodes);
    assert!(plan(std::slice::from_ref(&vs), &tasks, &nodes, 3, &scheduler()).is_empty());
}

#[test]
fn drain_without_capacity_keeps_the_old_task_and_reports_it() {
    let vs = spec("web", 1, 800, 1);
    let nodes = [
        node("a", 4000, GIB, NodeStatus::Draining),
        node("b", 500, GIB, NodeStatus::Ready),
    ];
    let tasks = vec![task(&vs, 0, TaskState::Running, Some("a"))];
    let p = plan(std::slice::from_ref(&vs), &tasks, &nodes, 1, &scheduler());
    assert!(p.actions.is_empty(), "{p:?}");
    assert_eq!(p.unplaced[0].purpose, Purpose::Drain);
    assert_eq!(p.unplaced[0].task_id, None);
}

#[test]
fn failed_tasks_are_retired_and_replaced_per_restart_policy() {
    let nodes = [node("a", 4000, GIB, NodeStatus::Ready)];
    for (policy, state, replaced) in [
        (RestartPolicy::Always, TaskState::Failed, true),
        (RestartPolicy::UnlessStopped, TaskState::Completed, true),
        (RestartPolicy::OnFailure, TaskState::Failed, true),
        (RestartPolicy::OnFailure, TaskState::Completed, false),
        (RestartPolicy::No, TaskState::Failed, false),
    ] {
        let mut vs = spec("job", 1, 100, 1);
        vs.spec.restart_policy = policy;
        let t = task(&vs, 0, state, Some("a"));
        let p = plan(
            std::slice::from_ref(&vs),
            std::slice::from_ref(&t),
            &nodes,
            LATER,
            &scheduler(),
        );
        assert_eq!(
            stops(&p),
            [(t.id.to_string(), StopReason::Retired)],
            "{policy:?} {state}"
        );
        let expected = if replaced {
            vec![(0, Some("a".to_owned()), Purpose::Replacement)]
        } else {
            vec![]
        };
        assert_eq!(creates(&p), expected, "{policy:?} {state}");
        // Retired (desired shutdown), the slot's history still decides: same answer, no stop.
        let mut retired = t.clone();
        retired.desired = DesiredState::Shutdown;
        let p = plan(
            std::slice::from_ref(&vs),
            &[retired],
            &nodes,
            LATER,
            &scheduler(),
        );
        assert!(stops(&p).is_empty());
        assert_eq!(creates(&p).len(), expected.len(), "{policy:?} {state}");
    }
}

#[test]
fn a_finished_slot_reruns_after_a_spec_change() {
    let nodes = [node("a", 4000, GIB, NodeStatus::Ready)];
    let mut vs = spec("job", 1, 100, 2);
    vs.spec.restart_policy = RestartPolicy::No;
    let mut t = task_v(&vs, 0, 1, TaskState::Failed, Some("a"));
    t.desired = DesiredState::Shutdown;
    let p = plan(std::slice::from_ref(&vs), &[t], &nodes, 1, &scheduler());
    assert_eq!(
        creates(&p),
        [(0, Some("a".to_owned()), Purpose::Replacement)]
    );
}

#[test]
fn rolling_update_keeps_at_most_parallelism_slots_in_flight() {
    let mut vs = spec("web", 5, 100, 2);
    vs.spec.update_strategy.parallelism = 2;
    let nodes = [
        node("a", 4000, GIB, NodeStatus::Ready),
        node("b", 4000, GIB, NodeStatus::Ready),
    ];
    let mut tasks: Vec<_> = (0..5)
        .map(|s| {
            task_v(
                &vs,
                s,
                1,
                TaskState::Running,
                Some(if s % 2 == 0 { "a" } else { "b" }),
            )
        })
        .collect();
    let specs = std::slice::from_ref(&vs);

    let p1 = plan(specs, &tasks, &nodes, 1, &scheduler());
    assert_eq!(
        creates(&p1).iter().map(|c| (c.0, c.2)).collect::<Vec<_>>(),
        [(0, Purpose::Update), (1, Purpose::Update)]
    );
    assert!(stops(&p1).is_empty());

    // New tasks created but not yet running: nothing more starts, nothing stops.
    let mut starting = tasks.clone();
    for a in &p1.actions {
        if let Action::Create { task, .. } = a {
            let mut t = Task::clone(task);
            t.state = TaskState::Starting;
            starting.push(t);
        }
    }
    assert!(plan(specs, &starting, &nodes, 2, &scheduler()).is_empty());

    // Once they run: the two old ones stop and the next batch starts.
    apply(&p1, &mut tasks, &nodes);
    let p2 = plan(specs, &tasks, &nodes, 3, &scheduler());
    assert_eq!(stops(&p2).len(), 2);
    assert!(stops(&p2).iter().all(|s| s.1 == StopReason::Updated));
    assert_eq!(creates(&p2).iter().map(|c| c.0).collect::<Vec<_>>(), [2, 3]);

    for round in 4..10 {
        let p = plan(specs, &tasks, &nodes, round, &scheduler());
        apply(&p, &mut tasks, &nodes);
    }
    let live = active(&tasks, "web");
    assert_eq!(live.len(), 5);
    assert!(
        live.iter()
            .all(|t| t.spec_version == 2 && t.state == TaskState::Running)
    );
}

#[test]
fn an_unhealthy_replacement_does_not_stop_the_old_task() {
    let vs = spec("web", 1, 100, 2);
    let nodes = [node("a", 4000, GIB, NodeStatus::Ready)];
    let old = task_v(&vs, 0, 1, TaskState::Running, Some("a"));
    let mut new = task(&vs, 0, TaskState::Running, Some("a"));
    new.health = TaskHealth::Unhealthy;
    let p = plan(
        std::slice::from_ref(&vs),
        &[old, new],
        &nodes,
        1,
        &scheduler(),
    );
    assert!(p.is_empty(), "{p:?}");
}

#[test]
fn the_guard_never_uses_draining_down_or_full_nodes_even_without_filters() {
    let vs = spec("web", 3, 600, 1);
    let nodes = [
        node("down", 99_000, GIB, NodeStatus::Down),
        node("draining", 99_000, GIB, NodeStatus::Draining),
        node("small", 1000, GIB, NodeStatus::Ready),
    ];
    let p = plan(
        std::slice::from_ref(&vs),
        &[],
        &nodes,
        1,
        &naive_scheduler(),
    );
    let c = creates(&p);
    assert_eq!(
        c.iter().filter(|c| c.1.as_deref() == Some("small")).count(),
        1
    );
    assert_eq!(c.iter().filter(|c| c.1.is_none()).count(), 2);
    for u in &p.unplaced {
        assert!(
            u.rejections
                .iter()
                .all(|(_, r)| GUARD_FILTERS.contains(&r.filter)),
            "{u:?}"
        );
    }
}

#[test]
fn max_tasks_is_respected() {
    let vs = spec("web", 2, 100, 1);
    let mut n = node("a", 4000, GIB, NodeStatus::Ready);
    n.max_tasks = Some(1);
    let p = plan(std::slice::from_ref(&vs), &[], &[n], 1, &naive_scheduler());
    assert_eq!(creates(&p).iter().filter(|c| c.1.is_some()).count(), 1);
}

#[test]
fn plans_are_deterministic_and_replay_safely() {
    let specs = [spec("web", 3, 100, 1), spec("api", 2, 200, 1)];
    let nodes = [
        node("a", 4000, GIB, NodeStatus::Ready),
        node("b", 4000, GIB, NodeStatus::Down),
    ];
    let tasks = vec![task(&specs[0], 0, TaskState::Running, Some("b"))];
    let p1 = plan(&specs, &tasks, &nodes, 42, &scheduler());
    let p2 = plan(&specs, &tasks, &nodes, 42, &scheduler());
    assert_eq!(p1, p2);
    let mut once = tasks.clone();
    apply(&p1, &mut once, &nodes);
    let mut twice = once.clone();
    apply(&p1, &mut twice, &nodes);
    assert_eq!(once, twice, "applying a plan again changes nothing");
    let ids: std::collections::HashSet<_> = once.iter().map(|t| &t.id).collect();
    assert_eq!(ids.len(), once.len(), "task ids are unique");
}

#[test]
fn actions_round_trip_through_json() {
    let specs = [spec("web", 2, 100, 1)];
    let nodes = [node("a", 4000, GIB, NodeStatus::Ready)];
    let tasks = vec![task(&specs[0], 5, TaskState::Running, Some("a"))];
    let p = plan(&specs, &tasks, &nodes, 1, &scheduler());
    assert!(!p.actions.is_empty());
    for a in &p.actions {
        let json = serde_json::to_string(a).unwrap();
        let back: Action = serde_json::from_str(&json).unwrap();
        assert_eq!(&back, a);
    }
    let json = serde_json::to_string(&p.actions[0]).unwrap();
    assert!(json.contains("\"kind\":\"create\""), "{json}");
}
