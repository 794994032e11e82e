//! End-to-end tests of `orion chaos` and `orion plan` on three real `orion` nodes on loopback:
//! faults are stored cluster-wide, applied by every node to its Raft transport and gossip, heal
//! by themselves at their expiry, and end at once with `orion chaos stop`; `orion plan` places
//! replicas where the scheduler then does.

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::Value;
use support::{TestCluster, http_spec, wait_for};

/// Bound on membership noticing a cut or a healed node (detection is about 1 s).
const MEMBERSHIP: Duration = Duration::from_secs(20);

/// The state of member `id` as node `i` sees it (`alive`, `suspect`, `dead`, `left`).
async fn member_state(c: &TestCluster, i: usize, id: &str) -> Result<String, String> {
    let (status, body) = c.request(i, Method::GET, "/v1/cluster", None).await;
    body["members"]
        .as_array()
        .and_then(|ms| ms.iter().find(|m| m["id"] == id))
        .and_then(|m| m["state"].as_str())
        .map(str::to_owned)
        .ok_or_else(|| format!("{status}: {body}"))
}

async fn wait_member(c: &TestCluster, i: usize, id: &str, want: &[&str], what: &str) {
    wait_for(what, MEMBERSHIP, || async {
        let s = member_state(c, i, id).await?;
        if want.contains(&s.as_str()) {
            Ok(())
        } else {
            Err(format!("{id} is {s}"))
        }
    })
    .await;
}

fn ok(out: &std::process::Output) -> String {
    assert!(
        out.status.success(),
        "orion failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `GET /v1/chaos` on node `i`, retried while the cluster elects a leader (a fault may cut the
/// leader off).
async fn active_faults(c: &TestCluster, i: usize) -> Vec<Value> {
    wait_for("GET /v1/chaos to answer", MEMBERSHIP, || async {
        let (status, body) = c.request(i, Method::GET, "/v1/chaos", None).await;
        match body.as_array() {
            Some(a) if status == StatusCode::OK => Ok(a.clone()),
            _ => Err(format!("{status}: {body}")),
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_take_effect_heal_by_themselves_and_stop_ends_them() {
    let c = TestCluster::three("chaos").await;
    let ids = c.node_ids();

    // Unknown nodes are refused, naming the known ones; nothing is stored.
    let out = c.cli(
        0,
        &[
            "chaos",
            "node-failure",
            "--target",
            "nope",
            "--duration",
            "5s",
        ],
    );
    assert_eq!(out.status.code(), Some(4), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("nope") && err.contains(&ids[2]), "{err}");
    let out = c.cli(
        0,
        &[
            "chaos",
            "latency",
            "--increase",
            "1h",
            "--nodes",
            "all",
            "--duration",
            "5s",
        ],
    );
    assert_eq!(out.status.code(), Some(4), "latency is bounded: {out:?}");
    assert!(active_faults(&c, 0).await.is_empty());

    // A node failure cuts node 3 off (gossip too: the others see it dead), then heals alone.
    let started = Instant::now();
    ok(&c.cli(
        0,
        &[
            "chaos",
            "node-failure",
            "--target",
            &ids[2],
            "--duration",
            "5s",
        ],
    ));
    let faults = active_faults(&c, 1).await;
    assert_eq!(faults.len(), 1, "{faults:?}");
    assert_eq!(faults[0]["kind"], "node-failure");
    assert!(faults[0]["remaining_ms"].as_u64().unwrap() <= 5_000);
    let status = ok(&c.cli(0, &["chaos", "status"]));
    assert!(
        status.contains("node failure of") && status.contains("active"),
        "{status}"
    );
    wait_member(
        &c,
        0,
        &ids[2],
        &["suspect", "dead"],
        "node 3 to look failed",
    )
    .await;
    wait_member(&c, 0, &ids[2], &["alive"], "node 3 to come back by itself").await;
    assert!(
        started.elapsed() >= Duration::from_secs(5),
        "healed only at expiry"
    );
    wait_for("the expired fault to be gone", MEMBERSHIP, || async {
        let f = active_faults(&c, 0).await;
        if f.is_empty() {
            Ok(())
        } else {
            Err(format!("{f:?}"))
        }
    })
    .await;

    // A long partition ends at once with `chaos stop`.
    let groups = format!("{},{}:{}", ids[0], ids[1], ids[2]);
    ok(&c.cli(
        0,
        &[
            "chaos",
            "network-partition",
            "--partition",
            &groups,
            "--duration",
            "10m",
        ],
    ));
    wait_member(
        &c,
        1,
        &ids[2],
        &["suspect", "dead"],
        "node 3 cut off by the partition",
    )
    .await;
    let stopped = Instant::now();
    let out = ok(&c.cli(1, &["chaos", "stop"]));
    assert!(out.contains("1 fault"), "{out}");
    // Node 3 hears of the stop through Raft (the other side lifted the cut), and follows the
    // leader again. (Its gossip state is not asserted here: after a partition shorter than the
    // suspicion timeout, a member can stay `suspect` in another's view for tens of seconds;
    // see docs/membership.md, "Known issues".)
    wait_for("node 3 back after chaos stop", MEMBERSHIP, || async {
        let (status, body) = c.request(2, Method::GET, "/v1/chaos", None).await;
        let faults = body.as_array().map_or(usize::MAX, Vec::len);
        let (_, cluster) = c.request(2, Method::GET, "/v1/cluster", None).await;
        if status == StatusCode::OK && faults == 0 && cluster["leader"].is_string() {
            Ok(())
        } else {
            Err(format!("{status}: {body}; cluster: {cluster}"))
        }
    })
    .await;
    assert!(
        stopped.elapsed() < Duration::from_secs(60),
        "stop does not wait for expiry"
    );
    assert!(active_faults(&c, 0).await.is_empty());

    // Latency on a follower delays its node-to-node requests: a linearizable read there asks
    // the leader first.
    let (_, cluster) = c.request(0, Method::GET, "/v1/cluster", None).await;
    let leader = cluster["leader"].as_str().unwrap().to_owned();
    let f = ids.iter().position(|id| *id != leader).unwrap();
    ok(&c.cli(
        0,
        &[
            "chaos",
            "latency",
            "--increase",
            "400ms",
            "--nodes",
            &ids[f],
            "--duration",
            "1m",
        ],
    ));
    wait_for(
        "a read on the slowed follower to take 400 ms or more",
        MEMBERSHIP,
        || async {
            let t = Instant::now();
            let (status, body) = c.request(f, Method::GET, "/v1/services", None).await;
            let took = t.elapsed();
            if status == StatusCode::OK && took >= Duration::from_millis(400) {
                Ok(())
            } else {
                Err(format!("{status} in {took:?}: {body}"))
            }
        },
    )
    .await;
    ok(&c.cli(0, &["chaos", "stop"]));
    assert!(active_faults(&c, 0).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_matches_what_the_scheduler_then_does() {
    let c = TestCluster::three("plan").await;
    let spec = http_spec("planned", 2);
    let file = c.dir().join("planned.json");
    std::fs::write(&file, &spec).unwrap();
    let file = file.to_str().unwrap();

    let table = ok(&c.cli(1, &["plan", "-f", file]));
    assert!(
        table.contains("RANK") && table.contains("replica 0 ->"),
        "{table}"
    );
    let plan: Value = serde_json::from_str(&ok(&c.cli(1, &["plan", "-f", file, "-o", "json"])))
        .expect("plan -o json is JSON");
    let nodes = plan["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 3, "every node is listed: {plan}");
    for n in nodes {
        assert_eq!(n["feasible"], true, "{n}");
        assert!(!n["scores"].as_array().unwrap().is_empty(), "{n}");
    }
    assert_eq!(nodes[0]["rank"], 1);
    let mut planned: BTreeMap<String, usize> = BTreeMap::new();
    for p in plan["placements"].as_array().unwrap() {
        *planned
            .entry(p["node"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    assert_eq!(planned.values().sum::<usize>(), 2, "{plan}");
    // Nothing was written.
    let (status, _) = c
        .request(0, Method::GET, "/v1/services/planned", None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    c.deploy(0, &spec).await;
    let tasks = c
        .wait_serving(0, "planned", 2, Duration::from_secs(90))
        .await;
    let mut placed: BTreeMap<String, usize> = BTreeMap::new();
    for t in &tasks {
        *placed
            .entry(t.node.as_deref().unwrap().to_owned())
            .or_default() += 1;
    }
    assert_eq!(placed, planned, "the plan and the placement differ");

    // A spec the API refuses is refused by plan too (exit code 4).
    std::fs::write(
        c.dir().join("bad.json"),
        r#"{"name": "bad", "image": "x", "replicas": 1, "resources": {"cpu_millicores": 1}}"#,
    )
    .unwrap();
    let out = c.cli(
        0,
        &["plan", "-f", c.dir().join("bad.json").to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(4), "{out:?}");
}
