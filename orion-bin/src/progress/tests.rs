use orion_core::model::{Resources, Task, TaskHealth, TaskState};

use super::*;

fn task(slot: u32, version: u64, state: TaskState) -> Task {
    let mut t = Task::new("web", slot, version, Resources::default());
    t.state = state;
    if state != TaskState::Pending {
        t.node = Some("n1".into());
    }
    t
}

fn pending_unplaced(slot: u32, reason: &str) -> Task {
    let mut t = task(slot, 2, TaskState::Pending);
    t.error = Some(reason.into());
    t
}

#[test]
fn every_replica_serving_and_no_old_one_left_is_ok() {
    let tasks = vec![
        task(0, 2, TaskState::Running),
        task(1, 2, TaskState::Running),
    ];
    let l = look(&tasks, 2, 2);
    assert_eq!(l.counts.healthy, 2);
    assert_eq!(judge(&l, 2, false), Some((Outcome::Ok, None)));
    let mut old = tasks.clone();
    old.push(task(0, 1, TaskState::Running));
    assert_eq!(
        judge(&look(&old, 2, 2), 2, false),
        None,
        "an old replica is left"
    );
}

#[test]
fn a_running_replica_failing_its_check_is_not_healthy() {
    let mut t = task(0, 2, TaskState::Running);
    t.health = TaskHealth::Starting;
    let l = look(&[t], 2, 1);
    assert_eq!((l.counts.running, l.counts.healthy), (1, 0));
    assert_eq!(judge(&l, 1, false), None);
}

#[test]
fn an_unplaceable_replica_fails_on_the_second_look_with_the_scheduler_reason() {
    let reason = "no feasible node (1 node rejected): 1 node: insufficient cpu (needs 64000m)";
    let tasks = vec![task(0, 2, TaskState::Running), pending_unplaced(1, reason)];
    let l = look(&tasks, 2, 2);
    assert_eq!(l.counts.pending, 1);
    assert_eq!(l.stuck_pending.as_deref(), Some(reason));
    assert_eq!(judge(&l, 2, false), None, "the first look only notes it");
    let (outcome, why) = judge(&l, 2, true).unwrap();
    assert_eq!(outcome, Outcome::Failed);
    let why = why.unwrap();
    assert!(
        why.starts_with("placement failure: 1 of 2 replicas cannot be placed"),
        "{why}"
    );
    assert!(why.contains("insufficient cpu"), "{why}");
}

#[test]
fn a_pending_replica_while_another_starts_is_not_stuck() {
    let tasks = vec![
        task(0, 2, TaskState::Starting),
        pending_unplaced(1, "no feasible node"),
    ];
    let l = look(&tasks, 2, 2);
    assert_eq!(l.stuck_pending, None);
    assert_eq!(judge(&l, 2, true), None);
}

#[test]
fn every_slot_failing_to_start_fails_with_the_latest_reason() {
    let mut tasks = Vec::new();
    for slot in 0..2 {
        let mut t = task(slot, 2, TaskState::Failed);
        t.error = Some(format!("image \"ghost\" is not available (slot {slot})").into());
        t.updated_at = 10 + u64::from(slot);
        tasks.push(t);
    }
    let l = look(&tasks, 2, 2);
    assert_eq!(l.counts.failed, 2);
    let (outcome, why) = judge(&l, 2, false).unwrap();
    assert_eq!(outcome, Outcome::Failed);
    assert_eq!(
        why.unwrap(),
        "every new replica fails: image \"ghost\" is not available (slot 1)"
    );
    // One slot not failing yet: keep waiting.
    assert_eq!(judge(&look(&tasks[..1], 2, 2), 2, false), None);
}

#[test]
fn a_crash_is_permanent_only_once_repeated() {
    let mut t = task(0, 2, TaskState::Failed);
    t.container_id = Some("c1".into());
    t.exit_code = Some(1);
    t.error = Some("exited with code 1".into());
    assert_eq!(judge(&look(std::slice::from_ref(&t), 2, 1), 1, false), None);
    let mut again = task(0, 2, TaskState::Starting);
    again.restarts = 1;
    again.error = Some("restarting (1 of 3 on this node): exited with code 1".into());
    again.updated_at = t.updated_at + 1;
    let (outcome, why) = judge(&look(&[t, again], 2, 1), 1, false).unwrap();
    assert_eq!(outcome, Outcome::Failed);
    assert!(why.unwrap().contains("restarting (1 of 3"));
}

#[test]
fn results_have_exit_codes_and_one_line() {
    let r = RolloutResult {
        service: "web".into(),
        version: 3,
        desired: 2,
        counts: Counts {
            pending: 1,
            healthy: 1,
            running: 1,
            ..Counts::default()
        },
        result: Outcome::Failed,
        reason: Some("placement failure: x".into()),
        waited_ms: 5,
    };
    assert_eq!(r.exit_code(), exit::ROLLOUT_FAILED);
    assert_eq!(
        r.line(),
        "service web: rollout failed (1/2 serving; pending 1, starting 0, running 1, healthy 1, \
         failed 0): placement failure: x"
    );
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(json["result"], "failed");
    assert_eq!(json["counts"]["pending"], 1);
    let timeout = RolloutResult {
        result: Outcome::Timeout,
        ..r
    };
    assert_eq!(timeout.exit_code(), exit::TIMEOUT);
}

fn rollout_status(
    phase: &str,
    canary_waiting: bool,
    version: u64,
) -> crate::api::rollout::RolloutStatus {
    serde_json::from_value(serde_json::json!({
        "service": "web",
        "version": version,
        "rollout": {
            "service": "web", "version": version, "previous_version": 1, "phase": phase,
            "reason": "replica web-0 failed its health wait", "started_at": 1, "updated_at": 2,
        },
        "canary_waiting": canary_waiting,
        "replicas_by_version": {},
        "serving_by_version": {},
        "history": [],
    }))
    .expect("a rollout status")
}

#[test]
fn a_waiting_canary_is_as_far_as_it_goes_and_a_paused_rollout_fails() {
    let (outcome, note) = rollout_verdict(&rollout_status("progressing", true, 2), 2).unwrap();
    assert_eq!(outcome, Outcome::Ok);
    assert!(note.unwrap().contains("orion rollout promote web"));
    let (outcome, why) = rollout_verdict(&rollout_status("paused", false, 2), 2).unwrap();
    assert_eq!(outcome, Outcome::Failed);
    assert_eq!(
        why.unwrap(),
        "rollout paused: replica web-0 failed its health wait; `orion rollout resume web` continues it"
    );
    assert_eq!(
        rollout_verdict(&rollout_status("progressing", false, 2), 2),
        None
    );
    assert_eq!(
        rollout_verdict(&rollout_status("paused", false, 1), 2),
        None,
        "another version's record"
    );
}

#[test]
fn a_stalled_update_fails_when_the_plan_places_nothing() {
    let plan = |feasible: bool, placed: bool| -> crate::api::plan::PlanResult {
        serde_json::from_value(serde_json::json!({
            "service": "web", "replicas": 1, "weights": [],
            "nodes": [{"node": "n1", "feasible": feasible, "scores": [],
                       "reason": "resources: insufficient cpu (needs 1200m, 600m free)"}],
            "placements": if placed {
                serde_json::json!([{"slot": 0, "task_id": "web-0-x", "node": "n1"}])
            } else {
                serde_json::json!([])
            },
        }))
        .expect("a plan")
    };
    let (outcome, why) = plan_verdict(&plan(false, false), 2).unwrap();
    assert_eq!(outcome, Outcome::Failed);
    assert_eq!(
        why.unwrap(),
        "placement failure: no node can take a replica of version 2 (the old replicas keep \
         running): n1: resources: insufficient cpu (needs 1200m, 600m free)"
    );
    assert_eq!(plan_verdict(&plan(true, true), 2), None);
    assert_eq!(plan_verdict(&plan(false, true), 2), None);

    let mut old = task(0, 1, TaskState::Running);
    old.node = Some("n1".into());
    let l = look(&[old.clone()], 2, 1);
    assert!(l.update_stalled);
    let l = look(&[old, task(0, 2, TaskState::Starting)], 2, 1);
    assert!(!l.update_stalled, "a new replica starts");
}
