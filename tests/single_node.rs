//! End-to-end tests of one `orion up` node against the real Docker engine: deploy, scale,
//! container replacement, restart adoption, bad input, the `POST /tasks` form, CLI exit codes
//! and logs.

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use support::{TestCluster, docker_kill, http_spec, http_spec_restart, run_cli, wait_for};

const CONVERGE: Duration = Duration::from_secs(60);

fn container_ids(tasks: &[orion_core::model::Task]) -> BTreeSet<String> {
    tasks
        .iter()
        .filter_map(|t| t.container_id.clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_serve_http_and_scaling_converges() {
    let c = TestCluster::single("scale").await;
    c.deploy(0, &http_spec("web", 3)).await;
    let tasks = c.wait_serving(0, "web", 3, CONVERGE).await;
    let ports: BTreeSet<u16> = tasks.iter().filter_map(support::host_port).collect();
    assert_eq!(ports.len(), 3, "each replica has its own host port");
    assert_eq!(c.running_containers("web"), container_ids(&tasks));

    c.scale(0, "web", 5).await;
    let tasks = c.wait_serving(0, "web", 5, CONVERGE).await;
    assert_eq!(c.running_containers("web"), container_ids(&tasks));

    c.scale(0, "web", 2).await;
    let tasks = c.wait_serving(0, "web", 2, CONVERGE).await;
    let kept = container_ids(&tasks);
    wait_for("surplus containers to be removed", CONVERGE, || async {
        let running = c.running_containers("web");
        if running == kept {
            Ok(())
        } else {
            Err(format!("running {running:?}, tasks {kept:?}"))
        }
    })
    .await;
}

/// Under `restart_policy: always` a killed container's task is restarted in place or
/// replaced (under `no` a failed slot counts as finished and is not refilled).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_container_is_restarted_or_replaced_and_serves_again() {
    let c = TestCluster::single("kill").await;
    c.deploy(0, &http_spec_restart("victim", 2, "always")).await;
    let before = c.wait_serving(0, "victim", 2, CONVERGE).await;
    let victim = before[0].clone();
    let killed = victim.container_id.clone().expect("container id");
    docker_kill(&killed);

    let after = wait_for(
        "the killed container to be restarted or replaced",
        CONVERGE,
        || async {
            let tasks = c.serving_now(0, "victim", 2).await?;
            let same = tasks.iter().find(|t| t.id == victim.id);
            match same {
                Some(t)
                    if t.restarts == victim.restarts
                        && t.container_id.as_ref() == Some(&killed) =>
                {
                    Err(format!("{} not yet restarted", t.id))
                }
                _ => Ok(tasks),
            }
        },
    )
    .await;
    assert_eq!(c.running_containers("victim"), container_ids(&after));
}

/// After a restart, proves a full agent and controller pass happened by deploying a probe
/// service, then checks that `service` kept exactly `expected` containers.
async fn assert_adopted(c: &TestCluster, service: &str, expected: &BTreeSet<String>, probe: &str) {
    c.deploy(0, &http_spec(probe, 1)).await;
    c.wait_serving(0, probe, 1, CONVERGE).await;
    let tasks = c.wait_serving(0, service, expected.len(), CONVERGE).await;
    assert_eq!(
        &container_ids(&tasks),
        expected,
        "tasks keep their containers"
    );
    assert_eq!(
        &c.running_containers(service),
        expected,
        "no container was killed or started twice"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarted_node_adopts_its_containers() {
    let mut c = TestCluster::single("adopt").await;
    c.deploy(0, &http_spec("keep", 3)).await;
    let ids = container_ids(&c.wait_serving(0, "keep", 3, CONVERGE).await);

    c.nodes[0].sigterm();
    assert_eq!(
        c.running_containers("keep"),
        ids,
        "SIGTERM leaves containers running"
    );
    c.start(0).await;
    assert_adopted(&c, "keep", &ids, "probe-a").await;

    c.nodes[0].kill9();
    assert_eq!(
        c.running_containers("keep"),
        ids,
        "kill -9 leaves containers running"
    );
    c.start(0).await;
    assert_adopted(&c, "keep", &ids, "probe-b").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_with_field_and_reason_and_nothing_is_stored() {
    let c = TestCluster::single("badin").await;
    let json = "application/json";

    let unknown = r#"{"name":"bad","image":"orion-test/busybox:1","replicaz":3}"#;
    let (status, body) = c
        .request(
            0,
            Method::POST,
            "/v1/services",
            Some((json, unknown.into())),
        )
        .await;
    assert!(status.is_client_error(), "unknown field: {status} {body}");
    assert!(
        body.to_string().contains("replicaz"),
        "names the field: {body}"
    );

    let cpu = r#"{"name":"bad","image":"orion-test/busybox:1","resources":{"cpu_millicores":1}}"#;
    let (status, body) = c
        .request(0, Method::POST, "/v1/services", Some((json, cpu.into())))
        .await;
    assert!(status.is_client_error(), "cpu 1: {status} {body}");
    let fields = body["fields"].as_array().cloned().unwrap_or_default();
    assert!(
        fields.iter().any(|f| f.to_string().contains("cpu")),
        "a field error names cpu: {body}"
    );
    assert!(
        !body["error"].as_str().unwrap_or("").is_empty(),
        "has a reason: {body}"
    );

    let mut huge = br#"{"name":"big","image":"orion-test/busybox:1","env":[""#.to_vec();
    huge.extend(std::iter::repeat_n(b'x', 2 * 1024 * 1024));
    huge.extend(br#""]}"#);
    // A client of its own: the server answers 413 without reading the body and closes the
    // connection, which must not be reused for the next request.
    let once = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .expect("http client");
    let resp = once
        .post(c.nodes[0].url("/v1/services"))
        .bearer_auth(&c.token)
        .header("content-type", json)
        .body(huge)
        .send()
        .await
        .expect("the oversized request gets an answer");
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);

    let (status, body) = c.request(0, Method::GET, "/v1/services", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, serde_json::json!([]), "nothing was stored");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_post_tasks_form_is_accepted() {
    let c = TestCluster::single("seed").await;
    let seed = r#"{"image":"orion-test/busybox:1","name":"seedtask","memory":100000000,
                   "portBindings":{"8080/tcp":"0"}}"#;
    let (status, body) = c
        .request(
            0,
            Method::POST,
            "/tasks",
            Some(("application/json", seed.into())),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, svc) = c
        .request(0, Method::GET, "/v1/services/seedtask", None)
        .await;
    assert_eq!(status, StatusCode::OK, "{svc}");
    assert_eq!(svc["spec"]["image"], "orion-test/busybox:1");
    assert_eq!(svc["desired"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_exit_codes_and_logs() {
    let c = TestCluster::single("cli").await;
    let dir = tempfile::tempdir().expect("temp dir");

    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, "name: bad\nimage: x\nreplicas: -1\n").expect("write");
    let out = run_cli(
        "127.0.0.1:9",
        &["validate", "-f", bad.to_str().expect("utf-8")],
    );
    assert_eq!(out.status.code(), Some(4), "validate bad file: {out:?}");

    let unreachable = support::reserve_loopback_port().to_string();
    let out = run_cli(&unreachable, &["ps"]);
    assert_eq!(out.status.code(), Some(5), "unreachable API: {out:?}");

    let out = c.cli(0, &["status", "no-such-service"]);
    assert_eq!(out.status.code(), Some(3), "unknown service: {out:?}");

    // drain warns on the last schedulable node; undrain (and its alias) undoes it.
    let node = c.nodes[0].id.clone();
    let out = c.cli(0, &["drain", &node]);
    assert_eq!(out.status.code(), Some(0), "drain: {out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("last schedulable node"), "{err}");
    let out = c.cli(0, &["uncordon", &node]);
    assert_eq!(out.status.code(), Some(0), "uncordon: {out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("schedulable again"));
    let out = c.cli(0, &["undrain", "no-such-node"]);
    assert_eq!(out.status.code(), Some(3), "unknown node: {out:?}");

    let good = dir.path().join("chatty.json");
    std::fs::write(&good, http_spec("chatty", 1)).expect("write");
    let out = c.cli(0, &["apply", "-f", good.to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(0), "apply: {out:?}");
    c.wait_serving(0, "chatty", 1, CONVERGE).await;

    wait_for(
        "`orion logs chatty` to show the greeting",
        CONVERGE,
        || async {
            let out = c.cli(0, &["logs", "chatty"]);
            let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
            if out.status.success() && stdout.contains("hello-from-chatty") {
                Ok(())
            } else {
                Err(format!("{out:?}"))
            }
        },
    )
    .await;
}

/// A node that answers `/healthz` handles SIGTERM: it shuts down and exits 0 (containers keep
/// running). Repeated because the window it checks is short.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_right_after_healthz_exits_cleanly() {
    let mut c = TestCluster::single("term").await;
    for _ in 0..20 {
        // `sigterm` panics unless the process exits with status 0 within 15 s.
        c.nodes[0].sigterm();
        c.start(0).await;
    }
}

/// `resources.cpu_limit` reaches the engine: `none` sets no CFS quota, a number caps there, and
/// either way the reservation weighs the container (CPU shares, 1024 per core).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cpu_limit_sets_the_engines_quota_and_the_reservation_its_shares() {
    let c = TestCluster::single("cpu-limit").await;
    for (service, limit) in [("uncapped", "none"), ("burst", "1.5cpu")] {
        let mut spec: serde_json::Value =
            serde_json::from_str(&http_spec(service, 1)).expect("JSON");
        spec["resources"] = serde_json::json!({ "cpu_millicores": 250, "cpu_limit": limit });
        c.deploy(0, &spec.to_string()).await;
    }
    for (service, expected) in [("uncapped", "0 256"), ("burst", "1500000000 256")] {
        let tasks = c.wait_serving(0, service, 1, CONVERGE).await;
        let id = tasks[0].container_id.clone().expect("container id");
        let out = std::process::Command::new("docker")
            .args([
                "inspect",
                "-f",
                "{{.HostConfig.NanoCpus}} {{.HostConfig.CpuShares}}",
                &id,
            ])
            .output()
            .expect("docker inspect");
        let shown = String::from_utf8_lossy(&out.stdout);
        assert_eq!(shown.trim(), expected, "{service}");
    }
}
