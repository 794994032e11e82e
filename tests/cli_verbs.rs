//! End to end: the kubectl- and docker-style verbs against one real node and the Docker engine:
//! `apply --dry-run`, `-l` selectors, `describe`, `events [-w]`, `exec`, `logs` with its flags
//! and `delete -f|-l`: each one's exit code, `-o json` shape and the error text of a bad input.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::Value;
use support::{ORION_BIN, TestCluster, http_spec, wait_for};

const CONVERGE: Duration = Duration::from_secs(60);

fn labelled(name: &str, replicas: u32, tier: &str) -> Value {
    let mut spec: Value = serde_json::from_str(&http_spec(name, replicas)).expect("JSON");
    spec["labels"] = serde_json::json!({ "tier": tier });
    spec
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `out`'s stdout as JSON, after checking its exit code.
fn json_of(out: &std::process::Output, code: i32, what: &str) -> Value {
    assert_eq!(out.status.code(), Some(code), "{what}: {out:?}");
    serde_json::from_str(&stdout(out)).unwrap_or_else(|e| panic!("{what}: not JSON ({e}): {out:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verbs_against_a_real_node() {
    let c = TestCluster::single("verbs").await;
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("app.json");
    let file_arg = file.to_str().expect("utf-8").to_owned();
    let write = |web_replicas: u32| {
        let specs = serde_json::json!([
            labelled("web", web_replicas, "front"),
            labelled("api", 1, "back")
        ]);
        std::fs::write(&file, specs.to_string()).expect("write the spec file");
    };

    // apply --dry-run: everything is added, and nothing is written.
    write(1);
    let diff = json_of(
        &c.cli(0, &["apply", "-f", &file_arg, "--dry-run", "-o", "json"]),
        0,
        "apply --dry-run",
    );
    assert_eq!(diff["services"][0]["change"], "added", "{diff}");
    assert_eq!(diff["services"][1]["name"], "api", "{diff}");
    let (status, stored) = c.request(0, Method::GET, "/v1/services", None).await;
    assert_eq!((status, stored), (StatusCode::OK, serde_json::json!([])));

    let out = c.cli(0, &["apply", "-f", &file_arg]);
    assert_eq!(out.status.code(), Some(0), "apply: {out:?}");
    let web = c.wait_serving(0, "web", 1, CONVERGE).await;
    c.wait_serving(0, "api", 1, CONVERGE).await;
    let task = web[0].id.clone();

    // A changed field is named with both values.
    write(2);
    let diff = json_of(
        &c.cli(0, &["apply", "-f", &file_arg, "--dry-run", "-o", "json"]),
        0,
        "apply --dry-run after a change",
    );
    assert_eq!(diff["services"][0]["change"], "changed", "{diff}");
    let fields = diff["services"][0]["fields"].as_array().expect("fields");
    assert!(
        fields
            .iter()
            .any(|f| f["path"] == "replicas" && f["stored"] == 1 && f["file"] == 2),
        "{diff}"
    );
    assert_eq!(diff["services"][1]["change"], "unchanged", "{diff}");

    // Label selectors.
    let tasks = json_of(
        &c.cli(0, &["ps", "-l", "tier=front", "-o", "json"]),
        0,
        "ps -l",
    );
    let services: Vec<&str> = tasks
        .as_array()
        .expect("a list")
        .iter()
        .map(|t| t["service"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(services, ["web"], "{tasks}");
    let status = json_of(
        &c.cli(0, &["status", "-l", "tier!=front", "-o", "json"]),
        0,
        "status -l",
    );
    assert_eq!(status[0]["spec"]["name"], "api", "{status}");
    assert_eq!(status.as_array().map(Vec::len), Some(1), "{status}");
    let got = json_of(
        &c.cli(0, &["get", "-l", "tier,!nope", "-o", "json"]),
        0,
        "get -l",
    );
    assert_eq!(got.as_array().map(Vec::len), Some(2), "{got}");
    let out = c.cli(0, &["ps", "-l", "tier in (front)"]);
    assert_eq!(out.status.code(), Some(2), "set-based selector: {out:?}");
    assert!(stderr(&out).contains("not supported"), "{out:?}");

    // describe, with recent events.
    let d = json_of(
        &c.cli(0, &["describe", "service", "web", "-o", "json"]),
        0,
        "describe service",
    );
    assert_eq!(d["service"]["spec"]["name"], "web", "{d}");
    assert_eq!(d["tasks"][0]["id"], task.as_str(), "{d}");
    let events = d["events"].as_array().expect("events");
    assert!(
        events
            .iter()
            .any(|e| e["kind"] == "service" && e["reason"] == "created"),
        "{d}"
    );
    let out = c.cli(0, &["describe", "task", &task]);
    assert_eq!(out.status.code(), Some(0), "describe task: {out:?}");
    assert!(
        stdout(&out).contains("State:") && stdout(&out).contains("Events:"),
        "{out:?}"
    );
    let node = c.nodes[0].id.clone();
    let d = json_of(
        &c.cli(0, &["describe", "node", &node, "-o", "json"]),
        0,
        "describe node",
    );
    assert_eq!(d["node"]["id"], node.as_str(), "{d}");
    let out = c.cli(0, &["describe", "service", "nope"]);
    assert_eq!(out.status.code(), Some(3), "describe unknown: {out:?}");
    assert!(stderr(&out).contains("nope"), "{out:?}");

    // events: the task's placement and start, in revision order.
    let events = json_of(
        &c.cli(0, &["events", "--task", &task, "-o", "json"]),
        0,
        "events",
    );
    let reasons: Vec<&str> = events
        .as_array()
        .expect("a list")
        .iter()
        .map(|e| e["reason"].as_str().unwrap_or(""))
        .collect();
    assert!(
        reasons.contains(&"placed") && reasons.contains(&"running"),
        "{events}"
    );
    let out = c.cli(0, &["events", "--limit", "0"]);
    assert_eq!(out.status.code(), Some(2), "events --limit 0: {out:?}");

    // events -w sees a new task of a scale-up.
    let mut watch = Command::new(&*ORION_BIN)
        .env("ORION_TOKEN", &c.nodes[0].token)
        .args(["--addr", &c.nodes[0].api.to_string()])
        .args(["events", "-w", "-o", "json", "--service", "web"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("run orion events -w");
    let (tx, rx) = mpsc::channel();
    let reader = BufReader::new(watch.stdout.take().expect("stdout"));
    std::thread::spawn(move || {
        for line in reader.lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    c.scale(0, "web", 2).await;
    let placed = (|| {
        while let Ok(line) = rx.recv_timeout(CONVERGE) {
            let e: Value = serde_json::from_str(&line).expect("one JSON event per line");
            if e["reason"] == "placed" && e["name"] != task.as_str() {
                return Some(e);
            }
        }
        None
    })();
    let _ = watch.kill();
    let _ = watch.wait();
    assert!(
        placed.is_some(),
        "events -w showed no placement of the new replica"
    );

    // exec: output and exit code passed through.
    let out = c.cli(
        0,
        &[
            "exec",
            &task,
            "--",
            "sh",
            "-c",
            "echo out; echo err >&2; exit 7",
        ],
    );
    assert_eq!(out.status.code(), Some(7), "exec: {out:?}");
    assert_eq!(stdout(&out), "out\n");
    assert!(stderr(&out).contains("err"), "{out:?}");
    let r = json_of(
        &c.cli(0, &["exec", &task, "-o", "json", "--", "echo", "hi"]),
        0,
        "exec -o json",
    );
    assert_eq!(
        (&r["exit_code"], &r["stdout"]),
        (&Value::from(0), &Value::from("hi\n"))
    );
    assert_eq!(r["truncated"], false, "{r}");
    let out = c.cli(0, &["exec", "no-such-task", "--", "true"]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "exec in an unknown task: {out:?}"
    );
    let out = c.cli(0, &["exec", &task, "--timeout", "1h", "--", "true"]);
    assert_eq!(out.status.code(), Some(4), "exec --timeout 1h: {out:?}");
    assert!(stderr(&out).contains("1s to 10m"), "{out:?}");

    // logs with times; a bad --since; a service with nothing running says so.
    let out = wait_for("timestamped logs of web", CONVERGE, || async {
        let out = c.cli(0, &["logs", "web", "--timestamps", "--since", "1h"]);
        if out.status.success() && stdout(&out).contains("hello-from-web") {
            Ok(out)
        } else {
            Err(format!("{out:?}"))
        }
    })
    .await;
    let line = stdout(&out)
        .lines()
        .find(|l| l.contains("hello-from-web"))
        .expect("the greeting")
        .to_owned();
    let (_, rest) = line.split_once(" | ").expect("task prefix");
    assert!(rest.starts_with("20") && rest.contains('T'), "{line}");
    let out = c.cli(0, &["logs", "web", "--since", "yesterday"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "logs --since yesterday: {out:?}"
    );
    assert!(stderr(&out).contains("expected a duration ago"), "{out:?}");
    c.deploy(0, &http_spec("idle", 0)).await;
    let out = c.cli(0, &["logs", "idle"]);
    assert_eq!(
        out.status.code(),
        Some(4),
        "logs of nothing running: {out:?}"
    );
    assert!(stderr(&out).contains("has no running task"), "{out:?}");

    // delete by selector, then by file (api is gone by then: exit code 3, web removed).
    let d = json_of(
        &c.cli(0, &["delete", "-l", "tier=back", "-o", "json"]),
        0,
        "delete -l",
    );
    assert_eq!(d["deleted"], serde_json::json!(["api"]), "{d}");
    let out = c.cli(0, &["delete", "-f", &file_arg, "-o", "json"]);
    let d = json_of(&out, 3, "delete -f");
    assert_eq!(d["deleted"], serde_json::json!(["web"]), "{d}");
    assert_eq!(d["not_found"], serde_json::json!(["api"]), "{d}");
    assert!(stderr(&out).contains("did not exist: api"), "{out:?}");
    let out = c.cli(0, &["delete"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "delete without a target: {out:?}"
    );
}
