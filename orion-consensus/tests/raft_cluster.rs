//! Raft clusters over real loopback TCP: leader loss, restart, wipe, partition. After each
//! scenario every acknowledged write is read back on every node.

mod common;

use std::time::Duration;

use common::cluster::{Cluster, WAIT};
use orion_core::Error;
use orion_core::store::Store;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_elect_a_new_leader_and_a_restarted_node_catches_up_from_the_log() {
    let mut c = Cluster::start(3).await;
    let status = c.nodes[&1].status();
    assert_eq!(status.voters, vec![1, 2, 3]);
    assert!(status.learners.is_empty());

    let mut acked = Vec::new();
    for via in [1, 2, 3] {
        acked.extend(c.write_keys(via, &format!("before/{via}/"), 10).await);
    }
    let old_leader = c.agreed_leader(&[1, 2, 3]).await;
    c.kill(old_leader).await;
    let survivors: Vec<u64> = c.nodes.keys().copied().collect();
    let new_leader = c.agreed_leader(&survivors).await;
    assert_ne!(new_leader, old_leader);
    for via in &survivors {
        acked.extend(c.write_keys(*via, &format!("after/{via}/"), 10).await);
    }

    c.start_node(old_leader).await;
    // Joining again after a restart is harmless.
    let seed = c.nodes[&new_leader].addr().to_owned();
    c.nodes[&old_leader].join(&seed).await.unwrap();
    assert_eq!(c.nodes[&new_leader].status().voters, vec![1, 2, 3]);
    acked.extend(c.write_keys(old_leader, "restarted/", 5).await);
    c.assert_all_present(&acked).await;
    let revision = c.store(1).revision().await.unwrap();
    assert_eq!(
        revision,
        acked.len() as u64,
        "one revision per acknowledged put"
    );
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_nodes_survive_two_leader_kills() {
    let mut c = Cluster::start(5).await;
    let mut acked = c.write_keys(3, "a/", 20).await;
    for round in 0..2 {
        let running: Vec<u64> = c.nodes.keys().copied().collect();
        let leader = c.agreed_leader(&running).await;
        c.kill(leader).await;
        let running: Vec<u64> = c.nodes.keys().copied().collect();
        let next = c.agreed_leader(&running).await;
        assert_ne!(next, leader);
        let via = *running.iter().find(|id| **id != next).unwrap();
        acked.extend(c.write_keys(via, &format!("round{round}/"), 20).await);
    }
    assert_eq!(c.nodes.len(), 3);
    c.assert_all_present(&acked).await;
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wiped_node_catches_up_from_a_snapshot() {
    let mut c = Cluster::new();
    c.snapshot_every = 20;
    c.start_with(3).await;
    let mut acked = c.write_keys(1, "old/", 60).await;
    let leader = c.agreed_leader(&[1, 2, 3]).await;
    let victim = if leader == 3 { 2 } else { 3 };
    c.kill(victim).await;
    std::fs::remove_dir_all(c.data_dir(victim)).unwrap();
    let via = *c.nodes.keys().next().unwrap();
    acked.extend(c.write_keys(via, "new/", 60).await);

    // The leader purged the log behind its snapshot, so the wiped node needs the snapshot.
    let leader_metrics = c.nodes[&leader].raft().metrics().borrow().clone();
    assert!(
        leader_metrics.purged.is_some(),
        "the leader should have purged its log"
    );

    c.start_node(victim).await;
    // A wiped node takes no Raft traffic until it joins (it is re-added as a new member).
    let seed = c.nodes[&leader].addr().to_owned();
    c.nodes[&victim].join(&seed).await.unwrap();
    c.assert_all_present(&acked).await;
    let victim_metrics = c.nodes[&victim].raft().metrics().borrow().clone();
    assert!(
        victim_metrics.snapshot.is_some(),
        "the wiped node should have installed a snapshot"
    );
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_minority_partition_cannot_commit_while_the_majority_does() {
    let mut c = Cluster::new();
    c.request_timeout = Duration::from_millis(1500);
    c.start_with(5).await;
    let mut acked = c.write_keys(2, "before/", 10).await;
    let leader = c.agreed_leader(&[1, 2, 3, 4, 5]).await;
    let buddy = (1..=5).find(|id| *id != leader).unwrap();
    let minority = [leader, buddy];
    let majority: Vec<u64> = (1..=5).filter(|id| !minority.contains(id)).collect();
    c.faults.partition(&minority, &majority);

    // The minority cannot commit, from its old leader or from its follower.
    for via in minority {
        let err = c
            .store(via)
            .put("minority/key", b"lost".to_vec())
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Unavailable(_)), "got {err:?}");
    }
    // The majority elects a leader among itself and keeps committing.
    let new_leader = c.agreed_leader(&majority).await;
    assert!(majority.contains(&new_leader));
    for via in &majority {
        acked.extend(c.write_keys(*via, &format!("majority/{via}/"), 10).await);
    }

    c.faults.heal();
    c.assert_all_present(&acked).await;
    for id in 1..=5 {
        let got = c.store(id).get("minority/key").await.unwrap();
        assert_eq!(got, None, "node {id} has a write that was never committed");
    }
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_on_a_lone_node_without_quorum_fail_with_unavailable() {
    let mut c = Cluster::new();
    c.request_timeout = Duration::from_millis(800);
    c.start_with(3).await;
    c.kill(2).await;
    c.kill(3).await;
    let err = c.store(1).put("k", b"v".to_vec()).await.unwrap_err();
    match err {
        Error::Unavailable(msg) => assert!(msg.contains("quorum"), "message: {msg}"),
        other => panic!("expected Unavailable, got {other:?}"),
    }
    // Stale reads still answer from local state.
    let stale = c
        .store(1)
        .with_read_mode(orion_consensus::raft::ReadMode::Stale);
    assert_eq!(stale.get("k").await.unwrap(), None);
    assert!(WAIT > Duration::ZERO);
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_on_a_follower_sees_every_write_at_the_leaders_revisions() {
    use futures::StreamExt;

    let c = Cluster::start(3).await;
    let leader = c.agreed_leader(&[1, 2, 3]).await;
    let follower = (1..=3).find(|id| *id != leader).unwrap();
    let writer = (1..=3).find(|id| *id != leader && *id != follower).unwrap();
    let mut watch = c.store(follower).watch("w/", 0).await.unwrap();
    let mut acked = Vec::new();
    for i in 0..20 {
        let key = format!("w/{i:02}");
        let rev = c.store(writer).put(&key, vec![i]).await.unwrap();
        acked.push((key, rev));
    }
    for (key, rev) in &acked {
        let event = tokio::time::timeout(WAIT, watch.next())
            .await
            .expect("watch event in time")
            .expect("stream open")
            .unwrap();
        assert_eq!((&event.kv.key, event.revision()), (key, *rev));
    }
    c.shutdown().await;
}
