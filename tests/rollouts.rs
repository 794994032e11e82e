//! End-to-end rollouts against the real Docker engine: a bad image rolls back by itself with no
//! loss of service (three nodes), and a canary is promoted, then another is undone (one node),
//! through the `orion rollout` commands.

mod support;

use std::time::{Duration, Instant};

use orion_core::model::Task;
use reqwest::Method;
use serde_json::{Value, json};
use support::{TestCluster, host_port, http_get_ok, http_spec, wait_for};

const CONVERGE: Duration = Duration::from_secs(120);
/// Bound on the sampling loop of the rollback test (samples and time).
const MAX_SAMPLES: usize = 1_000;

/// [`http_spec`] with an http check every second and `update_strategy`.
fn rolling_spec(name: &str, replicas: u32, update_strategy: Value) -> Value {
    let mut spec: Value = serde_json::from_str(&http_spec(name, replicas)).expect("valid JSON");
    spec["health_check"] = json!({
        "type": "http", "http_path": "/index.html", "port": 8080, "interval": 1, "retries": 1,
    });
    spec["update_strategy"] = update_strategy;
    spec
}

async fn put(c: &TestCluster, spec: &Value) {
    let name = spec["name"].as_str().expect("a name");
    let (status, body) = c
        .request(
            0,
            Method::PUT,
            &format!("/v1/services/{name}"),
            Some(("application/json", spec.to_string().into_bytes())),
        )
        .await;
    assert!(status.is_success(), "PUT refused: {status} {body}");
}

async fn rollout(c: &TestCluster, service: &str) -> Value {
    let (status, body) = c
        .request(
            0,
            Method::GET,
            &format!("/v1/services/{service}/rollout"),
            None,
        )
        .await;
    assert!(status.is_success(), "GET rollout: {status} {body}");
    body
}

/// Replicas of `tasks` answering HTTP on their published port now.
async fn answering(c: &TestCluster, tasks: &[Task]) -> usize {
    let mut n = 0;
    for t in tasks {
        if let Some(port) = host_port(t)
            && http_get_ok(&c.http, port).await.is_ok()
        {
            n += 1;
        }
    }
    n
}

fn cli_ok(c: &TestCluster, args: &[&str]) -> String {
    let out = c.cli(0, args);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "orion {args:?}: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_image_rolls_back_by_itself_and_replicas_minus_parallelism_keep_serving() {
    let c = TestCluster::three("rollback").await;
    let (replicas, parallelism) = (4u32, 2u32);
    let good = rolling_spec(
        "web",
        replicas,
        json!({"parallelism": parallelism, "health_wait_seconds": 10}),
    );
    c.deploy(0, &good.to_string()).await;
    c.wait_serving(0, "web", replicas as usize, CONVERGE).await;
    // An image from a registry on a loopback port where nothing listens: the pull fails.
    let port = support::reserve_loopback_port();
    let mut bad = good.clone();
    bad["image"] = Value::from(format!("{}/orion-missing:bad", port));
    put(&c, &bad).await;

    let started = Instant::now();
    let mut least = usize::MAX;
    let mut rolled_back = false;
    for _ in 0..MAX_SAMPLES {
        if started.elapsed() > CONVERGE {
            break;
        }
        let tasks = c.tasks(0, "web").await.unwrap_or_default();
        least = least.min(answering(&c, &tasks).await);
        let r = rollout(&c, "web").await;
        if r["version"] == 1
            && r["rollout"]["rolled_back_from"] == 2
            && r["replicas_by_version"] == json!({"1": replicas})
            && r["serving_by_version"] == json!({"1": replicas})
        {
            rolled_back = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        rolled_back,
        "rolled back to version 1: {}",
        rollout(&c, "web").await
    );
    assert!(
        least >= (replicas - parallelism) as usize,
        "at least replicas - parallelism answered throughout; {least} at worst"
    );
    let status = cli_ok(&c, &["rollout", "status", "web"]);
    assert!(
        status.contains("rolled back from version 2") && status.contains("failed"),
        "{status}"
    );
    c.wait_serving(0, "web", replicas as usize, CONVERGE).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_canary_is_promoted_and_another_is_undone() {
    let c = TestCluster::single("canary").await;
    let mut spec = rolling_spec("web", 3, json!({"parallelism": 1, "canary": 1}));
    c.deploy(0, &spec.to_string()).await;
    c.wait_serving(0, "web", 3, CONVERGE).await;

    // Version 2: one canary serves, the others wait for promotion.
    spec["env"] = json!({"RELEASE": "2"});
    put(&c, &spec).await;
    wait_for("one canary of version 2", CONVERGE, || async {
        let r = rollout(&c, "web").await;
        let ok = r["canary_waiting"] == true
            && r["serving_by_version"] == json!({"1": 2, "2": 1})
            && r["replicas_by_version"] == json!({"1": 2, "2": 1});
        if ok { Ok(()) } else { Err(r.to_string()) }
    })
    .await;
    let status = cli_ok(&c, &["rollout", "status", "web"]);
    assert!(status.contains("orion rollout promote web"), "{status}");
    cli_ok(&c, &["rollout", "promote", "web"]);
    wait_for("version 2 everywhere", CONVERGE, || async {
        let r = rollout(&c, "web").await;
        let ok = r["rollout"]["phase"] == "completed"
            && r["serving_by_version"] == json!({"2": 3})
            && r["replicas_by_version"] == json!({"2": 3});
        if ok { Ok(()) } else { Err(r.to_string()) }
    })
    .await;

    // Version 3: its canary is undone, and every replica runs version 2 again.
    spec["env"] = json!({"RELEASE": "3"});
    put(&c, &spec).await;
    wait_for("one canary of version 3", CONVERGE, || async {
        let r = rollout(&c, "web").await;
        let ok = r["canary_waiting"] == true && r["serving_by_version"] == json!({"2": 2, "3": 1});
        if ok { Ok(()) } else { Err(r.to_string()) }
    })
    .await;
    cli_ok(&c, &["rollout", "undo", "web"]);
    wait_for("version 2 everywhere again", CONVERGE, || async {
        let r = rollout(&c, "web").await;
        let ok = r["version"] == 2
            && r["rollout"]["rolled_back_from"] == 3
            && r["serving_by_version"] == json!({"2": 3})
            && r["replicas_by_version"] == json!({"2": 3});
        if ok { Ok(()) } else { Err(r.to_string()) }
    })
    .await;
    let history = cli_ok(&c, &["rollout", "history", "web"]);
    for line in ["1 ", "2 ", "3 "] {
        assert!(history.lines().any(|l| l.starts_with(line)), "{history}");
    }
    assert!(history.contains("(current)"), "{history}");
    // Undo to a version the history does not hold is refused, naming what it holds.
    let out = c.cli(0, &["rollout", "undo", "web", "--to-version", "9"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("1, 2, 3"), "{err}");
    c.wait_serving(0, "web", 3, CONVERGE).await;
}
