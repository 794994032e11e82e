//! Health checks, restart and reschedule policies on the deterministic cluster harness, with
//! FakeRuntime's scriptable `exec` as the check's outcome.

use std::sync::Arc;
use std::time::Duration;

use orion_core::model::spec::{HealthCheck, HealthCheckType, RestartPolicy};
use orion_core::model::{DesiredState, ServiceSpec, Task, TaskHealth, TaskState};
use orion_core::node::{Agent, ControllerConfig, SystemClock};
use orion_core::runtime::{FakeRuntime, FaultPlan};
use orion_core::store::{ClusterStore, MemoryStore};
use orion_core::testing::cluster::ClusterHarness;

/// A command check running `check` every second.
fn command_check(retries: u32) -> HealthCheck {
    HealthCheck {
        kind: HealthCheckType::Command,
        http_path: None,
        expected_status: None,
        port: None,
        command: vec!["check".into(), "--quick".into()],
        interval: 1,
        timeout: 0,
        retries,
        start_period: 0,
    }
}

fn checked(name: &str, replicas: u32, policy: RestartPolicy) -> ServiceSpec {
    let mut spec = ServiceSpec::new(name, "busybox", replicas);
    spec.restart_policy = policy;
    spec.health_check = Some(command_check(1));
    spec
}

fn live<'a>(tasks: &'a [Task], service: &'a str) -> impl Iterator<Item = &'a Task> {
    tasks
        .iter()
        .filter(move |t| t.service == service && t.desired == DesiredState::Running)
}

fn all_healthy(tasks: &[Task], service: &str, n: usize) -> bool {
    live(tasks, service)
        .filter(|t| t.state == TaskState::Running && t.health == TaskHealth::Healthy)
        .count()
        == n
}

#[tokio::test]
async fn a_checked_task_starts_not_serving_and_serves_once_its_check_passes() {
    let mut h = ClusterHarness::new(2, 1, ControllerConfig::default());
    h.store
        .put_service(&checked("web", 2, RestartPolicy::Always))
        .await
        .unwrap();
    // Running, but no check has passed yet: starting, and not serving.
    assert!(
        h.run_until(30, |t| live(t, "web")
            .filter(|t| t.state == TaskState::Running)
            .count()
            == 2)
            .await
    );
    let tasks = h.store.list_tasks().await.unwrap();
    for t in live(&tasks, "web") {
        assert_eq!(t.health, TaskHealth::Starting, "{t:?}");
        assert!(!t.is_serving());
    }
    assert!(h.run_until(60, |t| all_healthy(t, "web", 2)).await);
    let tasks = h.store.list_tasks().await.unwrap();
    assert!(live(&tasks, "web").all(Task::is_serving));
    // A service without a check serves once running.
    h.store
        .put_service(&ServiceSpec::new("plain", "busybox", 1))
        .await
        .unwrap();
    assert!(
        h.run_until(30, |t| live(t, "plain")
            .any(|t| t.is_serving() && t.health == TaskHealth::Unknown))
            .await
    );
}

#[tokio::test]
async fn a_failing_check_marks_the_task_unhealthy_with_its_output_and_restarts_it() {
    let mut h = ClusterHarness::new(1, 2, ControllerConfig::default());
    h.store
        .put_service(&checked("web", 1, RestartPolicy::Always))
        .await
        .unwrap();
    assert!(h.run_until(60, |t| all_healthy(t, "web", 1)).await);
    let before = h.store.list_tasks().await.unwrap()[0].clone();
    // The check starts failing: after retries + 1 = 2 failures the task is unhealthy...
    h.runtime(0)
        .set_faults(FaultPlan::new().exec_exit_code("check", 3));
    assert!(h.run_until(60, |t| t[0].restarts > before.restarts).await);
    let after = h.store.list_tasks().await.unwrap()[0].clone();
    assert_eq!(after.id, before.id, "restarted in place, same task");
    assert!(
        after
            .health_output
            .as_deref()
            .is_some_and(|o| o.contains("exit code 3")),
        "{after:?}"
    );
    assert!(
        after
            .error
            .as_deref()
            .is_some_and(|e| e.contains("unhealthy")),
        "{after:?}"
    );
    // ...and once the check passes again, the new container serves.
    h.runtime(0).set_faults(FaultPlan::new());
    assert!(h.run_until(80, |t| all_healthy(t, "web", 1)).await);
    let healed = h.store.list_tasks().await.unwrap()[0].clone();
    assert_ne!(healed.container_id, before.container_id);
    assert_eq!(healed.health_output, None, "a pass clears the output");
}

#[tokio::test]
async fn restart_policy_no_leaves_an_unhealthy_task_failed() {
    let mut h = ClusterHarness::new(1, 3, ControllerConfig::default());
    h.store
        .put_service(&checked("once", 1, RestartPolicy::No))
        .await
        .unwrap();
    assert!(h.run_until(60, |t| all_healthy(t, "once", 1)).await);
    h.runtime(0)
        .set_faults(FaultPlan::new().exec_exit_code("check", 1));
    assert!(
        h.run_until(60, |t| t.iter().any(|t| t.state == TaskState::Failed))
            .await
    );
    for _ in 0..50 {
        h.step().await;
    }
    let tasks = h.store.list_tasks().await.unwrap();
    assert_eq!(tasks.len(), 1, "not refilled under `no`: {tasks:?}");
    assert_eq!(tasks[0].restarts, 0);
    assert_eq!(tasks[0].health, TaskHealth::Unhealthy);
}

#[tokio::test]
async fn on_failure_restarts_non_zero_exits_only() {
    let mut h = ClusterHarness::new(1, 4, ControllerConfig::default());
    let mut spec = ServiceSpec::new("job", "busybox", 2);
    spec.restart_policy = RestartPolicy::OnFailure;
    h.store.put_service(&spec).await.unwrap();
    assert!(
        h.run_until(30, |t| live(t, "job")
            .filter(|t| t.state == TaskState::Running)
            .count()
            == 2)
            .await
    );
    let tasks = h.store.list_tasks().await.unwrap();
    let (ok, bad) = (&tasks[0], &tasks[1]);
    h.runtime(0)
        .exit(ok.container_id.as_deref().unwrap(), 0)
        .unwrap();
    h.runtime(0)
        .exit(bad.container_id.as_deref().unwrap(), 2)
        .unwrap();
    for _ in 0..30 {
        h.step().await;
    }
    let tasks = h.store.list_tasks().await.unwrap();
    let find = |id: &str| tasks.iter().find(|t| t.id == id).unwrap().clone();
    assert_eq!(find(&ok.id).state, TaskState::Completed);
    assert_eq!(find(&ok.id).restarts, 0);
    assert_eq!(find(&bad.id).restarts, 1);
    assert_eq!(find(&bad.id).state, TaskState::Running);
    assert_eq!(
        tasks.len(),
        2,
        "the completed slot is not refilled: {tasks:?}"
    );
}

#[tokio::test]
async fn a_task_failing_on_one_node_is_rescheduled_to_another_after_n_restarts() {
    for seed in 0..3 {
        let mut h = ClusterHarness::new(2, seed, ControllerConfig::default());
        let mut spec = ServiceSpec::new("flaky", "busybox", 1);
        spec.reschedule_after = 2;
        h.store.put_service(&spec).await.unwrap();
        assert!(
            h.run_until(30, |t| t.iter().any(|t| t.state == TaskState::Running))
                .await
        );
        let first = h.store.list_tasks().await.unwrap()[0].clone();
        let bad = (0..2)
            .find(|&i| Some(h.id(i)) == first.node.as_deref())
            .unwrap();
        // Every container on that node dies at once from now on.
        h.runtime(bad)
            .set_faults(FaultPlan::new().crash_after(Duration::ZERO, 1));
        h.runtime(bad)
            .exit(first.container_id.as_deref().unwrap(), 1)
            .unwrap();
        let bad_id = h.id(bad).to_owned();
        let moved = h
            .run_until(200, |t| {
                t.iter().any(|t| {
                    t.state == TaskState::Running && t.node.as_deref() != Some(bad_id.as_str())
                })
            })
            .await;
        assert!(moved, "seed {seed}: {:?}", h.store.list_tasks().await);
        let tasks = h.store.list_tasks().await.unwrap();
        let given_up = tasks.iter().find(|t| t.id == first.id).unwrap();
        assert_eq!(given_up.state, TaskState::Failed, "seed {seed}");
        assert_eq!(given_up.restarts, 2, "seed {seed}: {given_up:?}");
        let why = given_up.error.as_deref().unwrap_or_default();
        assert!(
            why.contains("gave up after 2 restarts on node") && why.contains("exited with code 1"),
            "seed {seed}: {why}"
        );
    }
}

#[tokio::test]
async fn a_hanging_check_does_not_delay_another_tasks_restart() {
    let mut h = ClusterHarness::new(1, 6, ControllerConfig::default());
    // Every exec hangs for an hour (each check times out after its 1 s interval, in real time;
    // the long start period keeps those timeouts from counting).
    h.runtime(0)
        .set_faults(FaultPlan::new().slow_exec(Duration::from_secs(3600)));
    let mut slow = checked("slow", 3, RestartPolicy::Always);
    if let Some(c) = slow.health_check.as_mut() {
        c.start_period = 3600;
    }
    h.store.put_service(&slow).await.unwrap();
    h.store
        .put_service(&ServiceSpec::new("fast", "busybox", 1))
        .await
        .unwrap();
    assert!(
        h.run_until(30, |t| live(t, "fast")
            .any(|t| t.state == TaskState::Running))
            .await
    );
    for _ in 0..20 {
        h.step().await; // checks of `slow` are in flight, hanging
    }
    let fast = live(&h.store.list_tasks().await.unwrap(), "fast")
        .next()
        .unwrap()
        .clone();
    h.runtime(0)
        .exit(fast.container_id.as_deref().unwrap(), 1)
        .unwrap();
    // 2 s of simulated time: the restart's back-off is 400 ms.
    let restarted = h
        .run_until(20, |t| {
            t.iter().any(|t| {
                t.id == fast.id
                    && t.restarts == 1
                    && t.state == TaskState::Running
                    && t.container_id != fast.container_id
            })
        })
        .await;
    assert!(restarted, "{:?}", h.store.list_tasks().await);
    let slow: Vec<Task> = live(&h.store.list_tasks().await.unwrap(), "slow")
        .cloned()
        .collect();
    assert!(
        slow.iter().all(|t| t.health == TaskHealth::Starting),
        "no hanging check passed: {slow:?}"
    );
}

#[tokio::test]
async fn checks_run_with_bounded_concurrency() {
    let store = ClusterStore::new(Arc::new(MemoryStore::new()));
    let runtime = Arc::new(FakeRuntime::with_faults(
        FaultPlan::new().slow_exec(Duration::from_millis(300)),
    ));
    let agent = Agent::new(
        "n1",
        store.clone(),
        runtime.clone(),
        Arc::new(SystemClock),
        "127.0.0.1",
    )
    .max_concurrent_checks(3);
    store
        .put_service(&checked("many", 12, RestartPolicy::Always))
        .await
        .unwrap();
    for slot in 0..12 {
        let mut t = Task::new("many", slot, 1, Default::default());
        t.node = Some("n1".into());
        t.transition(TaskState::Scheduled).unwrap();
        store.create_task(&t).await.unwrap();
    }
    // Pass after pass for 4 s of real time: every task's check comes due (1 s interval) and
    // runs 300 ms; 12 at once would be possible without the bound.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(4);
    while tokio::time::Instant::now() < deadline {
        agent.sync().await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        runtime.exec_peak(),
        3,
        "the bound is reached and never passed"
    );
    let tasks = store.list_tasks().await.unwrap();
    assert!(
        tasks.iter().any(|t| t.health == TaskHealth::Healthy),
        "checks completed: {tasks:?}"
    );
}

#[tokio::test]
async fn unless_stopped_keeps_a_container_stopped_from_outside_stopped() {
    let mut h = ClusterHarness::new(1, 7, ControllerConfig::default());
    let mut spec = ServiceSpec::new("svc", "busybox", 2);
    spec.restart_policy = RestartPolicy::UnlessStopped;
    h.store.put_service(&spec).await.unwrap();
    assert!(
        h.run_until(30, |t| live(t, "svc")
            .filter(|t| t.state == TaskState::Running)
            .count()
            == 2)
            .await
    );
    let tasks = h.store.list_tasks().await.unwrap();
    let (stopped, crashed) = (&tasks[0], &tasks[1]);
    // `docker stop` (SIGTERM: 143) on one, a crash on the other.
    h.runtime(0)
        .exit(stopped.container_id.as_deref().unwrap(), 143)
        .unwrap();
    h.runtime(0)
        .exit(crashed.container_id.as_deref().unwrap(), 1)
        .unwrap();
    for _ in 0..50 {
        h.step().await;
    }
    let tasks = h.store.list_tasks().await.unwrap();
    let find = |id: &str| tasks.iter().find(|t| t.id == id).unwrap().clone();
    assert_eq!(
        (find(&stopped.id).state, find(&stopped.id).restarts),
        (TaskState::Failed, 0)
    );
    assert_eq!(find(&crashed.id).restarts, 1);
    assert_eq!(find(&crashed.id).state, TaskState::Running);
    assert_eq!(
        tasks.len(),
        2,
        "the stopped slot is not refilled: {tasks:?}"
    );
}
