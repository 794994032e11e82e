//! The cluster id at the Raft level: minted once by bootstrap, learned on join, kept in the data
//! dir, carried by every frame; a node of another cluster (two clusters pointed at each other,
//! or a wiped bootstrap node that bootstrapped again) is refused with both ids named.

mod common;

use std::time::Duration;

use common::cluster::{Cluster, WAIT};
use openraft::Vote;
use openraft::error::RaftError;
use openraft::raft::{VoteRequest, VoteResponse};
use orion_consensus::cluster_id::ClusterIdCell;
use orion_consensus::transport::{FaultInjector, Transport};
use orion_core::store::Store;
use tokio::time::{Instant, sleep};

fn recorded_cluster_id(c: &Cluster, id: u64) -> Option<String> {
    let text = std::fs::read_to_string(c.data_dir(id).join("identity.json")).ok()?;
    let json: serde_json::Value = serde_json::from_str(&text).ok()?;
    json["cluster_uuid"].as_str().map(str::to_owned)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bootstrap_mints_the_id_once_and_joiners_learn_and_keep_it() {
    let mut c = Cluster::start(2).await;
    let minted = c.nodes[&1]
        .cluster_id()
        .expect("bootstrap mints a cluster id");
    assert_eq!(c.nodes[&2].cluster_id().as_deref(), Some(minted.as_str()));
    assert_eq!(recorded_cluster_id(&c, 1).as_deref(), Some(minted.as_str()));
    assert_eq!(recorded_cluster_id(&c, 2).as_deref(), Some(minted.as_str()));

    // --bootstrap on every start is safe: the second call, and one after a restart, keep it.
    c.nodes[&1].bootstrap().await.expect("bootstrap again");
    c.kill(1).await;
    c.start_node(1).await;
    assert_eq!(c.nodes[&1].cluster_id().as_deref(), Some(minted.as_str()));
    c.nodes[&1]
        .bootstrap()
        .await
        .expect("bootstrap after a restart");
    assert_eq!(c.nodes[&1].cluster_id().as_deref(), Some(minted.as_str()));
    c.agreed_leader(&[1, 2]).await;
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_clusters_pointed_at_each_other_refuse_with_both_ids() {
    let a = Cluster::start(1).await;
    let b = Cluster::start(1).await;
    let (id_a, id_b) = (
        a.nodes[&1].cluster_id().expect("a has an id"),
        b.nodes[&1].cluster_id().expect("b has an id"),
    );
    assert_ne!(id_a, id_b, "each bootstrap mints its own id");

    // A joins B: refused by B, naming both ids.
    let err = a.nodes[&1]
        .join(b.nodes[&1].addr())
        .await
        .expect_err("a node of another cluster cannot join");
    let text = err.to_string();
    assert!(text.contains(&id_a) && text.contains(&id_b), "{text}");

    // A raw Raft RPC stamped with A's id, sent to B's port: refused the same way.
    let transport = Transport::new(7, FaultInjector::new())
        .expect("transport")
        .with_cluster_id(ClusterIdCell::new(Some(id_a.clone())));
    let vote = VoteRequest::<u64>::new(Vote::new(99, 7), None);
    let status: Result<Result<VoteResponse<u64>, RaftError<u64>>, _> = transport
        .call(
            None,
            b.nodes[&1].addr(),
            "/raft/vote",
            &vote,
            Duration::from_secs(5),
        )
        .await;
    let text = status.expect_err("refused").to_string();
    assert!(
        text.contains("409") || text.contains("Rejected(409)"),
        "{text}"
    );
    assert!(text.contains(&id_a) && text.contains(&id_b), "{text}");

    // Neither cluster changed.
    assert_eq!(a.nodes[&1].status().voters, vec![1]);
    assert_eq!(b.nodes[&1].status().voters, vec![1]);
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wiped_bootstrap_node_that_bootstraps_again_gets_a_new_id_and_the_old_members_refuse_it()
{
    let mut c = Cluster::start(3).await;
    let old = c.nodes[&1].cluster_id().expect("minted");
    c.write_keys(1, "before/", 3).await;
    c.kill(1).await;
    std::fs::remove_dir_all(c.data_dir(1)).expect("wipe node 1");

    // Same node id, same address, empty data dir, --bootstrap again.
    c.start_node(1).await;
    c.nodes[&1]
        .bootstrap()
        .await
        .expect("bootstrap the wiped node");
    let new = c.nodes[&1].cluster_id().expect("a new id");
    assert_ne!(
        new, old,
        "a wiped node must not bootstrap under the old cluster id"
    );

    // The old members elect a leader among themselves and keep writing; node 1 stays a
    // one-node cluster of its own: none of their entries reach it.
    let leader = c.agreed_leader(&[2, 3]).await;
    c.write_keys(leader, "after/", 3).await;
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline {
        assert_eq!(c.nodes[&1].status().voters, vec![1], "node 1 stays alone");
        sleep(Duration::from_millis(100)).await;
    }
    let local = c.nodes[&1].store().local().range("").await.expect("range");
    assert!(
        local.kvs.is_empty(),
        "the old cluster's data reached node 1"
    );
    for id in [2, 3] {
        assert_eq!(c.nodes[&id].cluster_id().as_deref(), Some(old.as_str()));
        assert!(
            c.nodes[&id].status().voters.contains(&1),
            "still in their config"
        );
    }

    // Its join attempt names both ids.
    let err = c.nodes[&1]
        .join(c.nodes[&2].addr())
        .await
        .expect_err("refused");
    let text = err.to_string();
    assert!(text.contains(&old) && text.contains(&new), "{text}");
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wiped_member_recovers_by_joining_and_learns_the_old_id() {
    let mut c = Cluster::start(3).await;
    let old = c.nodes[&1].cluster_id().expect("minted");
    let acked = c.write_keys(1, "k/", 5).await;
    c.kill(3).await;
    std::fs::remove_dir_all(c.data_dir(3)).expect("wipe node 3");
    c.start_node(3).await;
    assert_eq!(
        c.nodes[&3].cluster_id(),
        None,
        "an empty data dir has no id"
    );
    let seed = c.nodes[&1].addr().to_owned();
    tokio::time::timeout(WAIT, c.nodes[&3].join(&seed))
        .await
        .expect("join within the bound")
        .expect("join");
    assert_eq!(c.nodes[&3].cluster_id().as_deref(), Some(old.as_str()));
    c.assert_all_present(&acked).await;
    c.shutdown().await;
}
