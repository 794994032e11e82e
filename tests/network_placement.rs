//! Network-aware placement end to end, on three real `orion` nodes on loopback with latency
//! injected by `orion chaos` (the nodes' own fault layer): a hard latency rule keeps a service off
//! a slow node while the latency lasts (and `orion plan` says where a new one goes), a replica
//! whose link degrades after placement moves once to a node within the bound, a rule no node meets
//! leaves the task pending with a reason that follows the network, and nothing moves back once
//! the latency is lifted.

mod support;

use std::time::Duration;

use orion_core::model::Task;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use support::{FAST_NETWORK_YAML, TestCluster, http_spec, near_but_not_on_spec, wait_for};

/// Bound on measurements, placements and moves following a change (each takes a few seconds).
const FOLLOW: Duration = Duration::from_secs(60);

fn ok(out: &std::process::Output) -> String {
    assert!(
        out.status.success(),
        "orion failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The one running task of `service`, with its node.
async fn one_running(c: &TestCluster, service: &str) -> Result<Task, String> {
    let tasks = c.tasks(0, service).await?;
    match &tasks[..] {
        [t] if t.state == orion_core::model::TaskState::Running && t.node.is_some() => {
            Ok(t.clone())
        }
        _ => Err(format!(
            "{service}: {:?}",
            tasks
                .iter()
                .map(|t| (&t.id, t.state, &t.node))
                .collect::<Vec<_>>()
        )),
    }
}

/// The measured RTT from `from` to `to`, as `GET /v1/network` reports it.
async fn measured_rtt(c: &TestCluster, from: &str, to: &str) -> Result<f64, String> {
    let (status, body) = c.request(0, Method::GET, "/v1/network", None).await;
    if status != StatusCode::OK {
        return Err(format!("{status}: {body}"));
    }
    body["pairs"]
        .as_array()
        .and_then(|pairs| {
            pairs
                .iter()
                .find(|p| p["from"] == from && p["to"] == to && p["estimated"] != Value::Bool(true))
        })
        .and_then(|p| p["rtt_ms"].as_f64())
        .ok_or_else(|| format!("{from} -> {to} not measured yet: {body}"))
}

/// `orion plan` for `web`: whether `node` is feasible, and the JSON of its entry.
fn plan_for(c: &TestCluster, spec_file: &str, node: &str) -> (bool, Value) {
    let out = ok(&c.cli(0, &["plan", "-f", spec_file, "-o", "json"]));
    let plan: Value = serde_json::from_str(&out).expect("plan -o json is JSON");
    let entry = plan["nodes"]
        .as_array()
        .and_then(|ns| ns.iter().find(|n| n["node"] == node))
        .cloned()
        .unwrap_or_else(|| panic!("{node} is not in the plan: {plan}"));
    (entry["feasible"] == true, entry)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_degraded_link_moves_the_replica_once_and_the_slow_node_is_eligible_again_after() {
    let c = TestCluster::three_configured("netplace", Some(FAST_NETWORK_YAML)).await;
    c.deploy(0, &http_spec("db", 1)).await;
    let db = wait_for("db running", FOLLOW, || one_running(&c, "db")).await;
    let db_node = db.node.clone().unwrap();
    c.deploy(0, &near_but_not_on_spec("web", "db", 5.0)).await;
    let first = wait_for("web running", FOLLOW, || one_running(&c, "web")).await;
    let slow = first.node.clone().unwrap();
    assert_ne!(slow, db_node, "anti-affinity keeps web off db's node");
    let other = c
        .node_ids()
        .into_iter()
        .find(|n| *n != slow && *n != db_node)
        .unwrap();
    wait_for("both candidate links measured", FOLLOW, || async {
        measured_rtt(&c, &other, &db_node).await?;
        measured_rtt(&c, &slow, &db_node).await
    })
    .await;

    // 15 ms more on every request of web's node: its link to db breaks the 5 ms rule (and stays
    // below the 50 ms Raft heartbeat interval, which bounds the RTT between voters).
    ok(&c.cli(
        0,
        &[
            "chaos",
            "latency",
            "--increase",
            "15ms",
            "--nodes",
            &slow,
            "--duration",
            "120s",
        ],
    ));
    let moved = wait_for("web moved off the slow node", FOLLOW, || async {
        let t = one_running(&c, "web").await?;
        if t.node.as_deref() == Some(other.as_str()) {
            Ok(t)
        } else {
            Err(format!("web still on {:?}", t.node))
        }
    })
    .await;
    let because = moved.moved_because.clone().unwrap_or_default();
    assert!(
        because.contains(&format!("moved off {slow}")) && because.contains("latency"),
        "the move says why: {because:?}"
    );
    let spec_file = c.dir().join("web.json");
    std::fs::write(&spec_file, near_but_not_on_spec("web", "db", 5.0)).unwrap();
    let spec_file = spec_file.to_str().unwrap();
    let (feasible, entry) = plan_for(&c, spec_file, &slow);
    assert!(!feasible, "the slow node is not eligible: {entry}");
    assert!(
        entry.to_string().contains("latency"),
        "the plan says why: {entry}"
    );

    // While the latency lasts, a new service with the rule is placed only within the bound, and
    // on the node `orion plan` said.
    let web2_file = c.dir().join("web2.json");
    std::fs::write(&web2_file, near_but_not_on_spec("web2", "db", 5.0)).unwrap();
    let out = ok(&c.cli(
        0,
        &["plan", "-f", web2_file.to_str().unwrap(), "-o", "json"],
    ));
    let plan: Value = serde_json::from_str(&out).expect("plan -o json is JSON");
    let planned = plan["placements"][0]["node"]
        .as_str()
        .unwrap_or_else(|| panic!("web2 placed nowhere: {plan}"))
        .to_string();
    assert_eq!(planned, other, "only {other} is within 5 ms of db: {plan}");
    c.deploy(0, &near_but_not_on_spec("web2", "db", 5.0)).await;
    let web2 = wait_for("web2 running", FOLLOW, || one_running(&c, "web2")).await;
    assert_eq!(
        web2.node.as_deref(),
        Some(planned.as_str()),
        "plan and scheduler agree"
    );

    // A rule no node meets: the task stays pending, and `orion status` says which rule.
    let mut far: Value = serde_json::from_str(&near_but_not_on_spec("web", "db", 5.0)).unwrap();
    far["name"] = "far".into();
    far["scheduling"]["affinity"][0]["max_latency_ms"] = json!(0.001);
    c.deploy(0, &far.to_string()).await;
    let reason = wait_for("far pending with its reason", FOLLOW, || async {
        let tasks = c.tasks(0, "far").await?;
        match tasks.first().and_then(|t| t.error.clone()) {
            Some(e) if e.contains("latency too high") => Ok(e),
            _ => Err(format!("{tasks:?}")),
        }
    })
    .await;
    assert!(reason.contains("db"), "{reason}");
    let status = ok(&c.cli(0, &["status", "far"]));
    assert!(status.contains("latency too high"), "{status}");

    // The latency is lifted: the node is eligible again, and web does not move back.
    ok(&c.cli(0, &["chaos", "stop"]));
    // The pending reason follows: the slow node's RTT to db drops, so the reason's figures change
    // (it is rewritten each round it differs, not kept from the task's creation).
    wait_for("far's reason refreshed", FOLLOW, || async {
        let tasks = c.tasks(0, "far").await?;
        match tasks.first().and_then(|t| t.error.clone()) {
            Some(e) if e != reason && e.contains("latency too high") => Ok(e),
            _ => Err(format!("{tasks:?}")),
        }
    })
    .await;
    wait_for("the slow node eligible again", FOLLOW, || async {
        match plan_for(&c, spec_file, &slow) {
            (true, _) => Ok(()),
            (false, entry) => Err(entry.to_string()),
        }
    })
    .await;
    // Longer than the cooldown and several reconcile rounds.
    tokio::time::sleep(Duration::from_secs(8)).await;
    let after = one_running(&c, "web").await.unwrap();
    assert_eq!(after.id, moved.id, "moved once, not back: {after:?}");
}
