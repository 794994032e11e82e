//! The autopilot on a loopback cluster: a dead voter is replaced by a live, caught-up learner
//! after the grace period, and only by a live one.

mod common;

use std::time::Duration;

use common::cluster::{Cluster, WAIT};
use orion_consensus::raft::{AutopilotConfig, NodeId};
use tokio::time::{Instant, sleep};

fn fast_autopilot() -> AutopilotConfig {
    AutopilotConfig {
        dead_voter_grace: Some(Duration::from_secs(2)),
        interval: Duration::from_millis(200),
        max_lag: 100,
    }
}

/// Waits until `node`'s view of the voters and learners is `voters` / `learners`.
async fn wait_membership(c: &Cluster, node: NodeId, voters: &[NodeId], learners: &[NodeId]) {
    let deadline = Instant::now() + WAIT;
    loop {
        let s = c.nodes[&node].status();
        if s.voters == voters && s.learners == learners {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "node {node}: voters {:?} learners {:?}, expected {voters:?} {learners:?}",
            s.voters,
            s.learners
        );
        sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_voter_is_replaced_only_by_a_live_caught_up_learner() {
    let mut c = Cluster::new();
    c.autopilot = fast_autopilot();
    c.start_with(4).await;
    assert_eq!(c.nodes[&1].status().voters, vec![1, 2, 3]);
    assert_eq!(c.nodes[&1].status().learners, vec![4]);
    let mut acked = c.write_keys(1, "before/", 20).await;
    let leader = c.agreed_leader(&[1, 2, 3]).await;
    let victim = [1, 2, 3].into_iter().find(|id| *id != leader).unwrap();
    let other = [1, 2, 3]
        .into_iter()
        .find(|id| *id != leader && *id != victim)
        .unwrap();

    // The only learner is cut off from the leader: it is not live, so it is not promoted, and
    // the dead voter stays (dropping it would leave two voters and no more fault tolerance).
    c.faults.cut_both(leader, 4);
    c.kill(victim).await;
    acked.extend(c.write_keys(leader, "victim-down/", 20).await);
    for _ in 0..20 {
        // Two grace periods.
        sleep(Duration::from_millis(200)).await;
        let s = c.nodes[&leader].status();
        assert!(
            s.voters.contains(&victim),
            "dead voter dropped early: {s:?}"
        );
        assert!(
            !s.voters.contains(&4),
            "a cut-off learner was promoted: {s:?}"
        );
    }

    // The learner comes back: it catches up and takes the dead voter's place.
    c.faults.heal();
    let mut voters = vec![leader, other, 4];
    voters.sort();
    wait_membership(&c, leader, &voters, &[]).await;
    acked.extend(c.write_keys(4, "after/", 10).await);
    c.assert_all_present(&acked).await;

    // The removed node comes back (same data dir) and joins again: as a learner, since the
    // three voters are live.
    c.start_node(victim).await;
    let seed = c.nodes[&leader].addr().to_owned();
    c.nodes[&victim].join(&seed).await.unwrap();
    wait_membership(&c, leader, &voters, &[victim]).await;
    c.assert_all_present(&acked).await;
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_grace_period_dead_voters_stay() {
    let mut c = Cluster::new();
    c.autopilot = AutopilotConfig {
        dead_voter_grace: None,
        ..fast_autopilot()
    };
    c.start_with(4).await;
    let leader = c.agreed_leader(&[1, 2, 3]).await;
    let victim = [1, 2, 3].into_iter().find(|id| *id != leader).unwrap();
    c.kill(victim).await;
    for _ in 0..15 {
        sleep(Duration::from_millis(200)).await;
        let s = c.nodes[&leader].status();
        assert!(s.voters.contains(&victim), "{s:?}");
    }
    c.shutdown().await;
}
