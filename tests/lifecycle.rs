//! End-to-end tests of health checks and restart policies: one `orion up` node against the real
//! Docker engine, with the static busybox test image (httpd serving `/www/index.html`).

mod support;

use std::process::Command;
use std::time::Duration;

use orion_core::model::{Task, TaskHealth, TaskState};
use serde_json::{Value, json};
use support::{TestCluster, http_spec, wait_for};

const CONVERGE: Duration = Duration::from_secs(90);

/// [`http_spec`] with an http check on `/index.html` every second (2 failures in a row make it
/// unhealthy).
fn http_checked(name: &str) -> String {
    let mut spec: Value = serde_json::from_str(&http_spec(name, 1)).expect("valid JSON");
    spec["health_check"] = json!({
        "type": "http", "http_path": "/index.html", "port": 8080,
        "interval": 1, "retries": 1,
    });
    spec.to_string()
}

/// A service that runs `script` in the test image's shell.
fn script_spec(name: &str, script: &str, restart_policy: &str) -> String {
    json!({
        "name": name,
        "image": orion_runtime::testing::TEST_IMAGE,
        "replicas": 1,
        "command": ["sh", "-c", script],
        "restart_policy": restart_policy,
    })
    .to_string()
}

/// All tasks of `service`, terminal ones too.
async fn all_tasks(c: &TestCluster, service: &str) -> Result<Vec<Task>, String> {
    let (status, body) = c
        .request(
            0,
            reqwest::Method::GET,
            &format!("/v1/tasks?service={service}&all=true"),
            None,
        )
        .await;
    if !status.is_success() {
        return Err(format!("GET /v1/tasks: {status} {body}"));
    }
    serde_json::from_value(body).map_err(|e| format!("task list does not decode: {e}"))
}

fn docker_exec(container: &str, args: &[&str]) {
    let out = Command::new("docker")
        .arg("exec")
        .arg(container)
        .args(args)
        .output()
        .expect("run the docker CLI");
    assert!(
        out.status.success(),
        "docker exec {container} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_checked_replica_turns_healthy_then_unhealthy_and_is_restarted() {
    let c = TestCluster::single("health").await;
    c.deploy(0, &http_checked("web")).await;
    let healthy = wait_for("the replica to pass its check", CONVERGE, || async {
        let tasks = c.tasks(0, "web").await?;
        match tasks.as_slice() {
            [t] if t.health == TaskHealth::Healthy && t.is_serving() => Ok(t.clone()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    let ps = c.cli(0, &["ps", "--service", "web"]);
    assert!(
        String::from_utf8_lossy(&ps.stdout).contains("healthy"),
        "{ps:?}"
    );

    // The replica goes bad: its page is deleted, httpd answers 404.
    let container = healthy.container_id.clone().expect("container id");
    docker_exec(&container, &["rm", "/www/index.html"]);
    let restarted = wait_for(
        "the unhealthy replica to be restarted",
        CONVERGE,
        || async {
            let tasks = c.tasks(0, "web").await?;
            match tasks.iter().find(|t| t.id == healthy.id) {
                Some(t) if t.restarts > healthy.restarts => Ok(t.clone()),
                other => Err(format!("{other:?}")),
            }
        },
    )
    .await;
    let why = format!("{:?} {:?}", restarted.error, restarted.health_output);
    assert!(why.contains("404"), "the failure's output is kept: {why}");
    // The new container serves the image's page again and passes.
    wait_for("the restarted replica to pass", CONVERGE, || async {
        let tasks = c.tasks(0, "web").await?;
        match tasks.as_slice() {
            [t] if t.health == TaskHealth::Healthy
                && t.container_id.as_ref() != Some(&container) =>
            {
                Ok(())
            }
            other => Err(format!("{other:?}")),
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_check_that_starts_failing_restarts_the_replica() {
    let c = TestCluster::single("cmdcheck").await;
    let mut spec: Value = serde_json::from_str(&http_spec("cmd", 1)).expect("valid JSON");
    spec["health_check"] = json!({
        "command": ["test", "-f", "/tmp/ready"], "interval": 1, "start_period": 600,
    });
    c.deploy(0, &spec.to_string()).await;
    let running = wait_for("the replica to run", CONVERGE, || async {
        let tasks = c.tasks(0, "cmd").await?;
        match tasks.as_slice() {
            [t] if t.state == TaskState::Running && t.container_id.is_some() => Ok(t.clone()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    // Failing within the start period: starting, not unhealthy, not serving.
    assert_ne!(running.health, TaskHealth::Unhealthy);
    assert!(!running.is_serving() || running.health == TaskHealth::Healthy);
    let container = running.container_id.clone().expect("container id");
    docker_exec(&container, &["touch", "/tmp/ready"]);
    wait_for("the check to pass", CONVERGE, || async {
        match c.tasks(0, "cmd").await?.as_slice() {
            [t] if t.health == TaskHealth::Healthy => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    docker_exec(&container, &["rm", "/tmp/ready"]);
    let t = wait_for("the failing replica to be restarted", CONVERGE, || async {
        match c.tasks(0, "cmd").await?.as_slice() {
            [t] if t.restarts > running.restarts => Ok(t.clone()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    assert!(
        t.error.as_deref().is_some_and(|e| e.contains("unhealthy")),
        "{t:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_policy_no_leaves_an_exited_task_alone() {
    let c = TestCluster::single("policyno").await;
    c.deploy(0, &script_spec("oneshot", "sleep 1; exit 3", "no"))
        .await;
    let failed = wait_for("the task to fail", CONVERGE, || async {
        let tasks = all_tasks(&c, "oneshot").await?;
        match tasks.as_slice() {
            [t] if t.state == TaskState::Failed => Ok(t.clone()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    assert_eq!(failed.exit_code, Some(3));
    // A later task of another service proves the agent and reconciler made passes since.
    c.deploy(0, &http_spec("probe", 1)).await;
    c.wait_serving(0, "probe", 1, CONVERGE).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let tasks = all_tasks(&c, "oneshot").await.expect("tasks");
    assert_eq!(tasks.len(), 1, "no replacement: {tasks:?}");
    assert_eq!((tasks[0].restarts, tasks[0].state), (0, TaskState::Failed));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_failure_restarts_non_zero_exits_only() {
    let c = TestCluster::single("onfailure").await;
    c.deploy(0, &script_spec("done", "sleep 1; exit 0", "on-failure"))
        .await;
    c.deploy(0, &script_spec("crash", "sleep 1; exit 4", "on-failure"))
        .await;
    wait_for("the failing task to be restarted", CONVERGE, || async {
        let tasks = all_tasks(&c, "crash").await?;
        if tasks.iter().map(|t| t.restarts).sum::<u32>() >= 1 {
            Ok(())
        } else {
            Err(format!("{tasks:?}"))
        }
    })
    .await;
    let done = wait_for("the successful task to complete", CONVERGE, || async {
        let tasks = all_tasks(&c, "done").await?;
        match tasks.as_slice() {
            [t] if t.state == TaskState::Completed => Ok(t.clone()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    // By now the crashing one has been restarted at least once more (several passes happened).
    wait_for("another restart of the failing task", CONVERGE, || async {
        let tasks = all_tasks(&c, "crash").await?;
        if tasks.iter().map(|t| t.restarts).sum::<u32>() >= 2 {
            Ok(())
        } else {
            Err(format!("{tasks:?}"))
        }
    })
    .await;
    let tasks = all_tasks(&c, "done").await.expect("tasks");
    assert_eq!(tasks.len(), 1, "{tasks:?}");
    assert_eq!(
        (tasks[0].restarts, tasks[0].state),
        (done.restarts, TaskState::Completed),
        "exit 0 is not restarted under on-failure"
    );
    assert_eq!(done.restarts, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tcp_check_passes_and_status_lists_failed_attempts_with_their_reasons() {
    let c = TestCluster::single("attempts").await;
    let mut spec: Value = serde_json::from_str(&http_spec("tcp", 1)).expect("valid JSON");
    spec["health_check"] = json!({"type": "tcp", "port": 8080, "interval": 1});
    c.deploy(0, &spec.to_string()).await;
    let mut crash: Value =
        serde_json::from_str(&script_spec("crash", "sleep 1; exit 5", "always")).expect("JSON");
    crash["reschedule_after"] = json!(1);
    c.deploy(0, &crash.to_string()).await;
    wait_for("the tcp check to pass", CONVERGE, || async {
        match c.tasks(0, "tcp").await?.as_slice() {
            [t] if t.health == TaskHealth::Healthy => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    // After one restart in place the task gives up; its slot is refilled by a new task.
    wait_for("a failed attempt", CONVERGE, || async {
        let tasks = all_tasks(&c, "crash").await?;
        if tasks.iter().any(|t| t.state == TaskState::Failed) {
            Ok(())
        } else {
            Err(format!("{tasks:?}"))
        }
    })
    .await;
    let out = c.cli(0, &["status", "crash"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(text.contains("Failed attempts"), "{text}");
    assert!(
        text.contains("exited with code 5; gave up after 1 restarts on node"),
        "{text}"
    );
    let out = c.cli(0, &["status", "tcp"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("healthy"),
        "{out:?}"
    );
}
