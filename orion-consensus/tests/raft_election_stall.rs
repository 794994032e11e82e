//! The election stall seen once in CI (docs/consensus.md, "Known issues"): the leader lost right
//! after `join` promoted the third voter. Each round forms a fresh 3-node cluster by joins
//! through node 1 and cuts node 1 off (or shuts it down) the moment the third join returns;
//! the two survivors must elect a leader and commit.

mod common;

use std::time::Duration;

use common::cluster::{Cluster, WAIT};
use orion_core::store::Store;

const ROUNDS: usize = 8;

async fn round(index: usize, delay: Duration) {
    let mut c = Cluster::new();
    c.faults.set_delay(delay);
    c.start_with(3).await;
    // Node 1 bootstrapped and leads; node 3's join has just returned.
    if index.is_multiple_of(2) {
        c.faults.partition(&[1], &[2, 3]);
    } else {
        c.kill(1).await;
    }
    for id in [2, 3] {
        assert!(
            c.nodes[&id].status().voters.contains(&3),
            "round {index}: node {id} does not know node 3 votes: {:?}",
            c.nodes[&id].status()
        );
    }
    let leader = c.agreed_leader(&[2, 3]).await;
    assert_ne!(leader, 1);
    tokio::time::timeout(WAIT, c.store(2).put("after", b"x".to_vec()))
        .await
        .unwrap_or_else(|_| panic!("round {index}: no commit within {WAIT:?}"))
        .unwrap();
    c.faults.heal();
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn survivors_elect_a_leader_when_the_leader_is_lost_right_after_a_promotion() {
    for i in 0..ROUNDS {
        round(i, Duration::ZERO).await;
    }
}

/// The same on a slow network: every message delayed by 20 ms (openraft gives an append
/// `heartbeat_interval`, 50 ms here, before it counts it lost, so more than that stops all
/// replication).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn survivors_elect_a_leader_on_a_slow_network_too() {
    for i in 0..ROUNDS {
        round(i, Duration::from_millis(20)).await;
    }
}
