//! End-to-end tests of what a node tells its operator, on a real `orion up` node and the real
//! Docker engine: `/metrics` checked by `promtool check metrics` (Debian's prometheus package,
//! a client Orion did not write) after a deploy, JSON logs whose task lines carry task, service
//! and node, text logs without ANSI escapes when written to a file, and JSON API errors.

mod support;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::Value;
use support::{Role, TestCluster, http_spec, wait_for};

const CONVERGE: Duration = Duration::from_secs(60);

/// The series `/metrics` promises (docs/operations.md), as they appear once a service runs.
const PROMISED: &[&str] = &[
    "orion_raft_term",
    "orion_raft_leader_changes_total",
    "orion_raft_commit_latency_seconds_bucket",
    "orion_raft_apply_lag",
    "orion_scheduler_placement_latency_seconds_bucket",
    "orion_scheduler_placements_total",
    "orion_scheduler_pending_tasks",
    "orion_members",
    "orion_membership_events_total",
    "orion_container_start_latency_seconds_bucket",
    "orion_container_start_failures_total",
    "orion_container_restarts_total",
    "orion_container_cpu_percent",
    "orion_container_memory_bytes",
    "orion_api_requests_total",
    "orion_api_request_duration_seconds_bucket",
];

/// The value of the first sample line starting with `prefix`.
fn sample(text: &str, prefix: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// Runs `promtool check metrics` on `text`; its output on failure.
fn promtool_check(text: &str) -> Result<(), String> {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run promtool (make setup installs it): {e}"))?;
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .map_err(|e| e.to_string())?;
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_after_a_deploy_pass_promtool_and_cover_every_area() {
    let c = TestCluster::single("metrics").await;
    c.deploy(0, &http_spec("obs-metrics", 2)).await;
    c.wait_serving(0, "obs-metrics", 2, CONVERGE).await;
    let url = c.nodes[0].url("/metrics");
    let text = wait_for(
        "container usage of obs-metrics in /metrics",
        CONVERGE,
        || async {
            let resp = c.http.get(&url).send().await.map_err(|e| e.to_string())?;
            if resp.status() != StatusCode::OK {
                return Err(format!("GET /metrics: {}", resp.status()));
            }
            let text = resp.text().await.map_err(|e| e.to_string())?;
            match sample(
                &text,
                r#"orion_container_memory_bytes{service="obs-metrics"}"#,
            ) {
                Some(bytes) if bytes > 0.0 => Ok(text),
                _ => Err("no memory sample for obs-metrics yet".into()),
            }
        },
    )
    .await;
    promtool_check(&text).unwrap_or_else(|e| panic!("promtool check metrics: {e}\n{text}"));
    for name in PROMISED {
        assert!(text.contains(name), "{name} is missing:\n{text}");
    }
    let started = sample(&text, "orion_container_start_latency_seconds_count").unwrap_or(0.0);
    assert!(started >= 2.0, "both replicas' starts are timed:\n{text}");
    let placed = sample(
        &text,
        r#"orion_scheduler_placements_total{outcome="placed"}"#,
    );
    assert!(placed.unwrap_or(0.0) >= 2.0, "{text}");
    assert!(
        sample(&text, "orion_raft_commit_latency_seconds_count").unwrap_or(0.0) > 0.0,
        "{text}"
    );
    assert_eq!(sample(&text, r#"orion_members{state="alive"}"#), Some(1.0));
    assert!(
        text.contains(r#"route="/v1/services""#),
        "the deploy is counted by route:\n{text}"
    );
    let openmetrics = c
        .http
        .get(&url)
        .header("accept", "application/openmetrics-text; version=1.0.0")
        .send()
        .await
        .expect("GET /metrics");
    let content_type = openmetrics.headers()["content-type"].to_str().unwrap_or("");
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    let body = openmetrics.text().await.expect("body");
    assert!(body.ends_with("# EOF\n"), "{body}");
}

/// In a Raft cluster the Raft series come from openraft's metrics: every node saw a leader
/// elected, knows the term, and sees three alive members.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_metrics_show_the_raft_leader_and_every_member() {
    let c = TestCluster::three("rmetrics").await;
    for (i, node) in c.nodes.iter().enumerate() {
        let url = node.url("/metrics");
        let text = wait_for(
            &format!("three alive members in node {i}'s /metrics"),
            CONVERGE,
            || async {
                let text = c
                    .http
                    .get(&url)
                    .send()
                    .await
                    .map_err(|e| e.to_string())?
                    .text()
                    .await
                    .map_err(|e| e.to_string())?;
                match sample(&text, r#"orion_members{state="alive"}"#) {
                    Some(3.0) => Ok(text),
                    other => Err(format!("alive members: {other:?}")),
                }
            },
        )
        .await;
        promtool_check(&text).unwrap_or_else(|e| panic!("promtool check metrics: {e}\n{text}"));
        assert!(
            sample(&text, "orion_raft_term ").unwrap_or(0.0) >= 1.0,
            "{text}"
        );
        assert!(
            sample(&text, "orion_raft_leader_changes_total ").unwrap_or(0.0) >= 1.0,
            "node {i} saw the leader elected:\n{text}"
        );
        if i == 0 {
            // The first node was up before the others joined.
            let joined = sample(&text, r#"orion_membership_events_total{event="joined"}"#);
            assert!(joined.unwrap_or(0.0) >= 2.0, "{text}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_are_parseable_and_task_lines_carry_task_service_and_node() {
    let mut c = TestCluster::new("jsonlog", &[Role::Single]).await;
    c.nodes[0]
        .extra_args
        .extend(["--log-format".into(), "json".into()]);
    c.start(0).await;
    c.deploy(0, &http_spec("obs-jsonlog", 1)).await;
    let tasks = c.wait_serving(0, "obs-jsonlog", 1, CONVERGE).await;
    let task_id = &tasks[0].id;
    let node_id = c.nodes[0].id.clone();
    let log = wait_for("the task's lines in the log", CONVERGE, || async {
        let log = c.nodes[0].read_log();
        if log.contains(task_id.as_str()) {
            Ok(log)
        } else {
            Err("not logged yet".into())
        }
    })
    .await;
    assert!(!log.contains('\u{1b}'), "escape codes in JSON logs:\n{log}");
    let mut task_lines = 0;
    for line in log.lines().filter(|l| !l.trim().is_empty()) {
        let json: Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
        assert!(
            json["level"].is_string() && json["fields"].is_object(),
            "{line}"
        );
        if json["fields"]["task"] == task_id.as_str() {
            task_lines += 1;
            let span = &json["span"];
            assert_eq!(span["task"], task_id.as_str(), "{line}");
            assert_eq!(span["service"], "obs-jsonlog", "{line}");
            assert_eq!(span["node"], node_id.as_str(), "{line}");
        }
    }
    assert!(task_lines > 0, "no line about {task_id}:\n{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_logs_to_a_file_have_no_escape_codes_and_bad_levels_are_refused() {
    let c = TestCluster::single("textlog").await;
    let log = wait_for("node ready in the log", CONVERGE, || async {
        let log = c.nodes[0].read_log();
        if log.contains("node ready") {
            Ok(log)
        } else {
            Err(log)
        }
    })
    .await;
    assert!(
        !log.contains('\u{1b}'),
        "escape codes in a log file:\n{log}"
    );

    let out = c.cli(0, &["--log-level", "verbose", "nodes"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--log-level"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_errors_are_json_for_unknown_routes_methods_big_bodies_and_bad_queries() {
    let c = TestCluster::single("apierr").await;
    /// Method, path, body, expected status and code.
    type Case = (
        Method,
        &'static str,
        Option<(&'static str, Vec<u8>)>,
        StatusCode,
        &'static str,
    );
    let cases: Vec<Case> = vec![
        (
            Method::GET,
            "/v1/nope",
            None,
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            Method::PATCH,
            "/v1/services",
            None,
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
        ),
        (
            Method::GET,
            "/v1/services/web/logs?tail=lots",
            None,
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
    ];
    for (method, path, body, status, code) in cases {
        let (got, json) = c.request(0, method.clone(), path, body).await;
        assert_eq!(got, status, "{method} {path}: {json}");
        assert_eq!(json["code"], code, "{method} {path}: {json}");
        assert!(
            json["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{json}"
        );
    }
    let (_, json) = c
        .request(0, Method::GET, "/v1/services/web/logs?tail=lots", None)
        .await;
    assert_eq!(json["fields"][0]["path"], "tail", "{json}");
    assert_eq!(json["fields"][0]["value"], "lots", "{json}");

    // The server answers 413 without reading the body, then closes the connection: a client
    // that does not pool connections, as in single_node.rs.
    let once = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .expect("http client");
    let resp = once
        .post(c.nodes[0].url("/v1/services"))
        .bearer_auth(&c.token)
        .header("content-type", "application/json")
        .body(vec![b' '; 2 << 20])
        .send()
        .await
        .expect("the oversized request gets an answer");
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let json: Value = resp.json().await.expect("a JSON error");
    assert_eq!(json["code"], "payload_too_large", "{json}");
    assert!(
        json["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{json}"
    );
}
