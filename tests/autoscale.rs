//! End-to-end autoscaling: one `orion up` node against the real Docker engine. A service of
//! busybox containers limited to 100 millicores burns CPU until a fixed time, so it runs at about
//! 100 % of its request against a 50 % target and scales up; once the burn ends it scales back to
//! `min_replicas` after its stabilization window and cooldown. Sampling and evaluation run every
//! 2 s (`cluster.autoscale`), the window is 10 s and the cooldown the 30 s minimum.

mod support;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use support::{Role, TestCluster, wait_for};

/// Seconds the replicas burn CPU, from the deploy.
const BURN_SECONDS: u64 = 40;

/// The service's `spec.replicas` and its autoscale record, as node 0 shows them.
async fn view(c: &TestCluster, name: &str) -> Result<(u64, Value), String> {
    let (status, body) = c
        .request(0, Method::GET, &format!("/v1/services/{name}"), None)
        .await;
    if !status.is_success() {
        return Err(format!("GET /v1/services/{name}: {status} {body}"));
    }
    let replicas = body["spec"]["replicas"]
        .as_u64()
        .ok_or_else(|| format!("no spec.replicas in {body}"))?;
    Ok((replicas, body["autoscale"].clone()))
}

/// The outcomes of the recorded changes, oldest first.
fn changes(record: &Value) -> Vec<String> {
    record["decisions"]
        .as_array()
        .map(|d| {
            d.iter()
                .map(|d| d["outcome"].as_str().unwrap_or("?").to_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cpu_burning_service_scales_up_then_back_down() {
    let started = std::time::Instant::now();
    let mut c = TestCluster::new("autoscale", &[Role::Single]).await;
    c.nodes[0]
        .use_config("cluster:\n  autoscale:\n    sampleInterval: 2s\n    evaluateInterval: 2s\n");
    c.start(0).await;

    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let until = now + BURN_SECONDS;
    let spec = json!({
        "name": "burn",
        "image": orion_runtime::testing::TEST_IMAGE,
        "replicas": 1,
        "command": ["sh", "-c",
            "while [ \"$(date +%s)\" -lt \"$UNTIL\" ]; do :; done; exec sleep 3600"],
        "env": [format!("UNTIL={until}")],
        "resources": {"cpu_millicores": "100m", "memory_bytes": "32Mi"},
        "scale_policy": {
            "min_replicas": 1, "max_replicas": 3, "target_cpu": 50,
            "cooldown_seconds": 30, "stabilization_seconds": 10,
        },
    });
    c.deploy(0, &spec.to_string()).await;
    eprintln!("deployed at {:?}", started.elapsed());

    // A manual scale outside min..max is refused, naming the bounds.
    let (status, err) = c
        .request(
            0,
            Method::POST,
            "/v1/services/burn/scale",
            Some((
                "application/json",
                json!({"replicas": 5}).to_string().into_bytes(),
            )),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{err}");
    assert!(err.to_string().contains("(1-3)"), "{err}");
    let out = c.cli(0, &["scale", "burn", "5", "--detach"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "orion scale burn 5: {stderr}");
    assert!(stderr.contains("(1-3)"), "{stderr}");

    // Burning at ~100 % of its request against a 50 % target: up.
    let up = wait_for(
        "the autoscaler to scale the burning service up",
        Duration::from_secs(BURN_SECONDS),
        || async {
            let (replicas, record) = view(&c, "burn").await?;
            if replicas >= 2 {
                Ok(record)
            } else {
                Err(format!("replicas {replicas}, autoscale {record}"))
            }
        },
    )
    .await;
    eprintln!("scaled up at {:?}: {up}", started.elapsed());
    assert_eq!(
        changes(&up).first().map(String::as_str),
        Some("scale_up"),
        "{up}"
    );
    let first = &up["decisions"][0];
    assert_eq!(first["from"], 1, "{up}");
    assert_eq!(first["target_cpu"], 50.0, "{up}");
    assert!(
        first["usage"]["cpu_percent"].as_f64().unwrap_or(0.0) > 55.0,
        "decided on usage above the tolerance: {up}"
    );
    assert!(
        first["reason"].as_str().unwrap_or("").contains("cpu"),
        "{up}"
    );
    let tasks = wait_for(
        "the new replicas to start",
        Duration::from_secs(30),
        || async {
            let tasks = c.tasks(0, "burn").await?;
            let running = tasks
                .iter()
                .filter(|t| t.state == orion_core::model::TaskState::Running)
                .count();
            if running >= 2 {
                Ok(running)
            } else {
                Err(format!("{running} running"))
            }
        },
    )
    .await;
    assert!(tasks >= 2);

    // The burn ends; after the window and the cooldown, back to min_replicas.
    let down = wait_for(
        "the autoscaler to scale back down to 1",
        Duration::from_secs(BURN_SECONDS + 60),
        || async {
            let (replicas, record) = view(&c, "burn").await?;
            if replicas == 1 {
                Ok(record)
            } else {
                Err(format!("replicas {replicas}, autoscale {record}"))
            }
        },
    )
    .await;
    eprintln!("scaled down at {:?}: {down}", started.elapsed());
    let outcomes = changes(&down);
    assert_eq!(
        outcomes.last().map(String::as_str),
        Some("scale_down"),
        "{down}"
    );
    let last = &down["decisions"][outcomes.len() - 1];
    assert!(
        last["usage"]["cpu_percent"].as_f64().unwrap_or(100.0) < 45.0,
        "decided on an idle service: {down}"
    );
    let stamps: Vec<u64> = down["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["at"].as_u64().unwrap())
        .collect();
    assert!(
        stamps.windows(2).all(|w| w[1] - w[0] >= 30_000),
        "changes at least a cooldown apart: {stamps:?}"
    );

    // `orion status SERVICE` shows the decisions with their reasons.
    let out = c.cli(0, &["status", "burn"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    for want in ["Autoscaling: 1-3 replicas", "scale-up", "scale-down", "cpu"] {
        assert!(text.contains(want), "{want:?} missing from:\n{text}");
    }
}
