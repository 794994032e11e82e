//! End-to-end tests of the CLI's feedback against a real `orion up` node and the real Docker
//! engine: request timeouts (a paused node), rollout progress and fast failure (no node can take
//! the replicas, a missing image), `--detach`, `deploy IMAGE -- COMMAND` with the spec's units,
//! `stop SERVICE` confirmation, `-o json` on mutating commands, `ps` showing failures, exit
//! codes and error text printed once.

mod support;

use std::process::Output;

use orion_runtime::testing::TEST_IMAGE;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use support::{NodeProc, TestCluster, run_cli};

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The command's stdout as JSON; panics with the whole output otherwise.
fn json(out: &Output) -> Value {
    serde_json::from_str(&stdout(out))
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {out:?}"))
}

fn code(out: &Output) -> Option<i32> {
    out.status.code()
}

/// Sends SIGCONT to a node stopped with SIGSTOP when dropped, also when the test panics.
struct Resume<'a>(&'a NodeProc);

impl Drop for Resume<'_> {
    fn drop(&mut self) {
        self.0.signal("CONT");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_node_times_out_with_exit_code_5_and_bad_timeouts_are_refused() {
    let c = TestCluster::single("cli-timeout").await;
    let out = c.cli(0, &["ps", "--timeout", "2s"]);
    assert_eq!(code(&out), Some(0), "{out:?}");

    {
        c.nodes[0].signal("STOP");
        let _resume = Resume(&c.nodes[0]);
        let out = c.cli(0, &["ps", "--timeout", "2s"]);
        assert_eq!(code(&out), Some(5), "{out:?}");
        let err = stderr(&out);
        assert!(
            err.contains("no answer from the Orion API") && err.contains("within 2s (--timeout)"),
            "{err}"
        );
        assert_eq!(err.matches("error:").count(), 1, "printed once: {err}");
    }
    let out = c.cli(0, &["ps", "--timeout", "2s", "-o", "json"]);
    assert_eq!(code(&out), Some(0), "the node answers again: {out:?}");
    assert!(json(&out).is_array());

    for bad in ["0s", "soon", "48h"] {
        let out = c.cli(0, &["ps", "--timeout", bad]);
        assert_eq!(code(&out), Some(2), "--timeout {bad}: {out:?}");
        assert!(
            stderr(&out).contains("expected") && stderr(&out).contains("--timeout"),
            "{out:?}"
        );
    }

    // Nothing listens: the cause is printed once, with the hint.
    let addr = support::reserve_loopback_port().to_string();
    let out = run_cli(&addr, &["ps"]);
    assert_eq!(code(&out), Some(5), "{out:?}");
    let err = stderr(&out);
    assert_eq!(err.matches("Connection refused").count(), 1, "{err}");
    assert!(err.contains("is a node running?"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploys_fail_fast_with_the_reason_and_report_json() {
    let c = TestCluster::single("cli-feedback").await;

    // No node has 500 cores: a placement failure, long before the 5-minute timeout.
    let out = c.cli(
        0,
        &[
            "deploy", TEST_IMAGE, "--name", "huge", "--cpu", "500cores", "-o", "json",
        ],
    );
    assert_eq!(code(&out), Some(8), "{out:?}");
    let r = json(&out);
    assert_eq!(r["service"], "huge");
    assert_eq!(r["result"], "failed", "{r}");
    assert_eq!(r["desired"], 1);
    assert_eq!(r["counts"]["pending"], 1, "{r}");
    let reason = r["reason"].as_str().unwrap_or_default();
    assert!(
        reason.starts_with("placement failure: 1 of 1 replica cannot be placed")
            && reason.contains("insufficient cpu"),
        "{r}"
    );
    for key in ["version", "waited_ms"] {
        assert!(r[key].is_u64(), "{key} in {r}");
    }
    for state in ["pending", "starting", "running", "healthy", "failed"] {
        assert!(r["counts"][state].is_u64(), "{state} in {r}");
    }
    assert!(stderr(&out).contains("rollout failed"), "{out:?}");
    // Off a terminal a table cuts a long reason at 100 characters; -o wide keeps it whole.
    let node = c.nodes[0].id.clone();
    let out = c.cli(0, &["ps", "--service", "huge"]);
    assert!(
        stdout(&out).contains("no feasible node") && stdout(&out).contains('…'),
        "{out:?}"
    );
    assert!(!stdout(&out).contains(&format!("on {node}")), "{out:?}");
    let out = c.cli(0, &["ps", "--service", "huge", "-o", "wide"]);
    assert_eq!(code(&out), Some(0), "{out:?}");
    assert!(
        stdout(&out).contains(&format!("free) on {node}")),
        "{out:?}"
    );

    // An update whose new replica no node can take (the old one holds 60 % of the CPU and the
    // new one starts before the old one stops): the reconciler keeps the old one and creates
    // nothing, and the dry run says why.
    let (_, nodes) = c.request(0, Method::GET, "/v1/nodes", None).await;
    let capacity = nodes[0]["capacity"]["cpu_millicores"]
        .as_u64()
        .expect("cpu capacity");
    let cpu = format!("{}m", capacity * 6 / 10);
    let serve = "exec httpd -f -p 8080 -h /www";
    let out = c.cli(
        0,
        &[
            "deploy", TEST_IMAGE, "--name", "big", "--cpu", &cpu, "--", "sh", "-c", serve,
        ],
    );
    assert_eq!(code(&out), Some(0), "{out:?}");
    let v2 = format!("echo v2; {serve}");
    let out = c.cli(
        0,
        &[
            "deploy", TEST_IMAGE, "--name", "big", "--cpu", &cpu, "-o", "json", "--", "sh", "-c",
            &v2,
        ],
    );
    assert_eq!(code(&out), Some(8), "{out:?}");
    let r = json(&out);
    assert_eq!(
        (r["result"].as_str(), r["version"].as_u64()),
        (Some("failed"), Some(2)),
        "{r}"
    );
    let reason = r["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("no node can take a replica of version 2")
            && reason.contains("insufficient cpu"),
        "{r}"
    );
    let out = c.cli(0, &["rm", "big", "-o", "json"]);
    assert_eq!(
        (code(&out), json(&out)["deleted"][0].as_str()),
        (Some(0), Some("big")),
        "{out:?}"
    );

    // A missing image: every replica fails to start.
    let registry = support::reserve_loopback_port();
    let missing = format!("{}/orion-missing:bad", registry);
    let out = c.cli(
        0,
        &["deploy", &missing, "--name", "ghost", "--replicas", "2"],
    );
    assert_eq!(code(&out), Some(8), "{out:?}");
    let err = stderr(&out);
    assert!(
        err.contains("every new replica fails") && err.contains("is not available"),
        "{err}"
    );
    assert_eq!(
        err.matches("rollout failed").count(),
        1,
        "printed once: {err}"
    );
    assert!(stdout(&out).contains("service ghost applied"), "{out:?}");

    // `ps` shows the failed tasks of the current version and why, without --all.
    let out = c.cli(0, &["ps", "--service", "ghost", "-o", "json"]);
    assert_eq!(code(&out), Some(0), "{out:?}");
    let tasks = json(&out);
    let failed: Vec<&Value> = tasks
        .as_array()
        .expect("a list")
        .iter()
        .filter(|t| t["state"] == "failed")
        .collect();
    assert!(!failed.is_empty(), "{tasks}");
    assert!(
        failed.iter().all(|t| t["error"]
            .as_str()
            .unwrap_or_default()
            .contains("not available")),
        "{tasks}"
    );
    let out = c.cli(0, &["ps", "--service", "ghost"]);
    assert!(stdout(&out).contains("failed"), "{out:?}");

    // --detach: accepted, not waited for.
    let out = c.cli(
        0,
        &[
            "deploy", TEST_IMAGE, "--name", "later", "--detach", "-o", "json",
        ],
    );
    assert_eq!(code(&out), Some(0), "{out:?}");
    let r = json(&out);
    assert_eq!(
        (r["result"].as_str(), r["service"].as_str()),
        (Some("detached"), Some("later"))
    );
    let (status, _) = c.request(0, Method::GET, "/v1/services/later", None).await;
    assert_eq!(status, StatusCode::OK);

    // Bad input: exit code 4 and what is accepted.
    let out = c.cli(0, &["deploy", TEST_IMAGE, "--cpu", "half"]);
    assert_eq!(code(&out), Some(4), "{out:?}");
    assert!(stderr(&out).contains("0.5cpu"), "{out:?}");
    let out = c.cli(0, &["deploy", TEST_IMAGE, "--memory", "64 parsecs"]);
    assert_eq!(code(&out), Some(4), "{out:?}");
    assert!(stderr(&out).contains("Mi"), "{out:?}");
    let out = c.cli(0, &["deploy", "--name", "x"]);
    assert_eq!(code(&out), Some(2), "no image: {out:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_with_a_command_and_units_then_scale_and_stop_with_confirmation() {
    let c = TestCluster::single("cli-deploy").await;
    let out = c.cli(
        0,
        &[
            "deploy",
            TEST_IMAGE,
            "--name",
            "web",
            "--port",
            "8080",
            "--cpu",
            "0.1",
            "--memory",
            "64Mi",
            "-o",
            "json",
            "--",
            "sh",
            "-c",
            "echo hello-from-web; exec httpd -f -p 8080 -h /www",
        ],
    );
    assert_eq!(code(&out), Some(0), "{out:?}");
    let r = json(&out);
    assert_eq!(r["result"], "ok", "{r}");
    assert_eq!(r["counts"]["healthy"], 1, "{r}");
    let (_, svc) = c.request(0, Method::GET, "/v1/services/web", None).await;
    assert_eq!(svc["spec"]["command"][0], "sh", "{svc}");
    assert_eq!(svc["spec"]["resources"]["cpu_millicores"], 100, "{svc}");
    assert_eq!(
        svc["spec"]["resources"]["memory_bytes"],
        64 * 1024 * 1024,
        "{svc}"
    );
    c.wait_serving(0, "web", 1, std::time::Duration::from_secs(60))
        .await;

    // Scale waits and reports; -o yaml works too.
    let out = c.cli(0, &["scale", "web", "2", "-o", "json"]);
    assert_eq!(code(&out), Some(0), "{out:?}");
    let r = json(&out);
    assert_eq!(
        (r["result"].as_str(), r["desired"].as_u64()),
        (Some("ok"), Some(2))
    );
    assert_eq!(r["counts"]["healthy"], 2, "{r}");
    let out = c.cli(0, &["scale", "nope", "2"]);
    assert_eq!(code(&out), Some(3), "{out:?}");

    // Mutating commands speak JSON too.
    let node = c.nodes[0].id.clone();
    let out = c.cli(0, &["undrain", &node, "-o", "json"]);
    assert_eq!(code(&out), Some(0), "{out:?}");
    assert_eq!(json(&out)["id"], node.as_str());

    // stop SERVICE without a terminal and without --yes is refused; nothing changes.
    let out = c.cli(0, &["stop", "web"]);
    assert_eq!(code(&out), Some(2), "{out:?}");
    let err = stderr(&out);
    assert!(
        err.contains("--yes") && err.contains("orion rm web"),
        "{err}"
    );
    let (status, _) = c.request(0, Method::GET, "/v1/services/web", None).await;
    assert_eq!(status, StatusCode::OK, "still there");
    let out = c.cli(0, &["stop", "nothing-by-this-name", "--yes"]);
    assert_eq!(code(&out), Some(3), "{out:?}");
    let out = c.cli(0, &["stop", "web", "--yes", "-o", "json"]);
    assert_eq!(code(&out), Some(0), "{out:?}");
    assert_eq!(json(&out)["deleted"], "web");
    let (status, _) = c.request(0, Method::GET, "/v1/services/web", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // A replica that never becomes healthy (its first check is an hour away): the wait ends
    // at --timeout with exit code 6; apply --detach does not wait at all.
    let mut spec: Value = serde_json::from_str(&support::http_spec("slow", 1)).unwrap();
    spec["health_check"] = serde_json::json!({
        "type": "http", "http_path": "/index.html", "port": 8080, "interval": 3600,
    });
    let file = c.dir().join("slow.json");
    std::fs::write(&file, spec.to_string()).expect("write the spec");
    let file = file.to_str().expect("utf-8");
    let out = c.cli(0, &["apply", "-f", file, "--timeout", "3s", "-o", "json"]);
    assert_eq!(code(&out), Some(6), "{out:?}");
    let r = json(&out);
    assert_eq!(
        (r["result"].as_str(), r["counts"]["healthy"].as_u64()),
        (Some("timeout"), Some(0))
    );
    assert!(stderr(&out).contains("did not converge in time"), "{out:?}");
    let out = c.cli(0, &["apply", "-f", file, "--detach"]);
    assert_eq!(code(&out), Some(0), "{out:?}");
    assert!(stdout(&out).contains("not waiting (--detach)"), "{out:?}");

    // -o on a command without structured output is refused, not ignored.
    let out = c.cli(0, &["logs", "web", "-o", "json"]);
    assert_eq!(code(&out), Some(2), "{out:?}");
    assert!(stderr(&out).contains("no structured output"), "{out:?}");
}
