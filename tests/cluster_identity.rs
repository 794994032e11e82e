//! Cluster identity end to end, with real `orion` processes on loopback: `--bootstrap` is a
//! one-time init (a wiped bootstrap node that bootstraps again starts a new cluster, which the
//! old members refuse; `--join` recovers it), and a second process started with a live member's
//! node id exits with an error naming that member, leaving it untouched.

mod support;

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::Value;
use support::{NodeProc, Role, TestCluster, wait_for};

const CONVERGE: Duration = Duration::from_secs(60);

async fn cluster_status(c: &TestCluster, i: usize) -> Result<Value, String> {
    let (status, body) = c.request(i, Method::GET, "/v1/cluster", None).await;
    if status == StatusCode::OK {
        Ok(body)
    } else {
        Err(format!("node {i}: {status}: {body}"))
    }
}

fn names(body: &Value, field: &str) -> Vec<String> {
    let mut names: Vec<String> = body[field]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Node `i`'s cluster id once it has one, with `voters` as its voters.
async fn id_with_voters(c: &TestCluster, i: usize, voters: &[String]) -> Result<String, String> {
    let body = cluster_status(c, i).await?;
    let mut want = voters.to_vec();
    want.sort();
    match body["cluster_uuid"].as_str() {
        Some(id) if names(&body, "voters") == want && body["leader"].is_string() => {
            Ok(id.to_owned())
        }
        _ => Err(format!("node {i}: {body}")),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wiped_bootstrap_node_that_bootstraps_again_is_refused_and_rejoins_with_join() {
    // Three voters, so the two others keep a quorum while the bootstrap node is gone.
    let mut c = TestCluster::three("wiped").await;
    let all = c.node_ids();
    let old = wait_for("three voters under one cluster id", CONVERGE, || async {
        let a = id_with_voters(&c, 0, &all).await?;
        let b = id_with_voters(&c, 1, &all).await?;
        if a == b {
            Ok(a)
        } else {
            Err(format!("{a} != {b}"))
        }
    })
    .await;

    // The bootstrap node loses its data dir and is started again with --bootstrap.
    c.nodes[0].kill9();
    std::fs::remove_dir_all(&c.nodes[0].data_dir).expect("wipe node 0");
    c.start(0).await;
    let alone = vec![c.nodes[0].id.clone()];
    let new = wait_for("node 0 leads a cluster of its own", CONVERGE, || {
        id_with_voters(&c, 0, &alone)
    })
    .await;
    assert_ne!(
        new, old,
        "an empty data dir must not bootstrap under the old cluster id"
    );
    let body = cluster_status(&c, 1).await.expect("node 1 answers");
    assert_eq!(body["cluster_uuid"].as_str(), Some(old.as_str()), "{body}");
    assert_eq!(names(&body, "voters"), {
        let mut b = all.clone();
        b.sort();
        b
    });
    // Node 1 keeps asking node 0 for votes and gossiping to it; node 0 refuses: its new cluster
    // has a new CA, so node 1's certificate fails the Raft port's TLS handshake (and node 1's
    // gossip, sealed under the old cluster key, does not open).
    wait_for("node 0 to log the refusal of node 1", CONVERGE, || async {
        let log = c.nodes[0].read_log();
        if log.contains("refused a TLS handshake") {
            Ok(())
        } else {
            Err("no refusal logged yet".to_owned())
        }
    })
    .await;

    // Recovery (docs/operations.md): wipe it again and start it with --join.
    c.nodes[0].kill9();
    std::fs::remove_dir_all(&c.nodes[0].data_dir).expect("wipe node 0 again");
    c.nodes[0].role = Role::Join(c.nodes[1].raft);
    c.start(0).await;
    wait_for("node 0 back in the old cluster", CONVERGE, || async {
        let a = id_with_voters(&c, 0, &all).await?;
        if a == old {
            Ok(())
        } else {
            Err(format!("node 0 is in {a}"))
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_process_with_a_live_members_node_id_exits_naming_it() {
    let c = TestCluster::three("dupid").await;
    let holder_lines = c.nodes[1].read_log().lines().count();

    // Same node id as node 1, its own ports and data dir, joining through node 0.
    std::fs::create_dir_all(c.dir().join("impostor")).expect("impostor dir");
    let mut impostor = NodeProc::new(
        c.nodes[1].id.clone(),
        c.dir().join("impostor"),
        Role::Join(c.nodes[0].raft),
    );
    impostor.join_token = c.voter_token.clone();
    impostor.spawn();
    let status = impostor
        .wait_exit(CONVERGE)
        .expect("the second process exits on its own");
    assert!(!status.success(), "{status}");
    let log = impostor.read_log();
    assert!(
        log.contains("already used by a live member")
            && log.contains(&c.nodes[1].gossip.to_string()),
        "the error names the live holder: {log}"
    );

    // The real node is unaffected: still a member at its own address, and its log stays quiet.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let body = cluster_status(&c, 0).await.expect("node 0 answers");
    let members = body["members"].as_array().cloned().unwrap_or_default();
    let holder = members
        .iter()
        .find(|m| m["id"].as_str() == Some(c.nodes[1].id.as_str()))
        .unwrap_or_else(|| panic!("node 1 listed: {body}"));
    assert_eq!(holder["state"], "alive", "{holder}");
    assert_eq!(
        holder["addresses"]["gossip"].as_str(),
        Some(c.nodes[1].gossip.to_string().as_str())
    );
    let added = c.nodes[1].read_log().lines().count() - holder_lines;
    assert!(
        added < 20,
        "the real node wrote {added} log lines meanwhile: {}",
        c.nodes[1].read_log()
    );
}
