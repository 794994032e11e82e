//! Raft under network faults on a loopback cluster: an isolated follower that comes back does
//! not depose a healthy leader (pre-vote), and a write in flight when its leader freezes is
//! retried against the new leader.

mod common;

use std::time::Duration;

use common::cluster::{Cluster, WAIT};
use orion_core::store::Store;
use tokio::time::{Instant, sleep};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_isolated_follower_that_returns_does_not_depose_the_leader() {
    let c = Cluster::start(3).await;
    let mut acked = c.write_keys(1, "before/", 5).await;
    let leader = c.agreed_leader(&[1, 2, 3]).await;
    let term = c.nodes[&leader].status().term;
    let isolated = (1..=3).find(|id| *id != leader).unwrap();
    let others: Vec<u64> = (1..=3).filter(|id| *id != isolated).collect();

    c.faults.partition(&[isolated], &others);
    // Many election timeouts (150-300 ms each, plus the 300 ms lease) pass in isolation.
    sleep(Duration::from_secs(4)).await;
    let isolated_term = c.nodes[&isolated].status().term;
    acked.extend(c.write_keys(leader, "during/", 5).await);

    c.faults.heal();
    // The returning node catches up (a write through it commits once it follows a leader) ...
    acked.extend(c.write_keys(isolated, "after/", 5).await);
    let now_leader = c.agreed_leader(&[1, 2, 3]).await;
    let caught_up_to = c.nodes[&now_leader].status().commit_index;
    let deadline = Instant::now() + WAIT;
    while c.nodes[&isolated].status().applied_index < caught_up_to {
        assert!(
            Instant::now() < deadline,
            "node {isolated} did not catch up"
        );
        sleep(Duration::from_millis(20)).await;
    }
    // ... under the same leader, in the same term: no election happened.
    for id in 1..=3 {
        let s = c.nodes[&id].status();
        assert_eq!((s.leader, s.term), (Some(leader), term), "node {id}: {s:?}");
    }
    assert_eq!(
        isolated_term, term,
        "the isolated node raised its term without a majority's pre-vote"
    );
    c.assert_all_present(&acked).await;
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_in_flight_when_its_leader_freezes_commits_through_the_new_leader() {
    let c = Cluster::start(3).await;
    let mut acked = c.write_keys(1, "before/", 5).await;
    let old = c.agreed_leader(&[1, 2, 3]).await;
    let via = (1..=3).find(|id| *id != old).unwrap();
    let others: Vec<u64> = (1..=3).filter(|id| *id != old).collect();

    // The leader freezes: nothing it sends arrives any more (requests to it still do, so the
    // forwarded write below reaches it and then waits there, unanswered, with no quorum).
    for id in &others {
        c.faults.cut(old, *id);
    }
    let write = tokio::spawn({
        let store = c.store(via);
        async move { store.put("in-flight", b"in-flight".to_vec()).await }
    });
    let new = c.agreed_leader(&others).await;
    assert_ne!(new, old);
    // Within the 5 s request timeout, although the old leader never answers.
    let revision = write
        .await
        .unwrap()
        .expect("the write failed instead of being retried");
    acked.push("in-flight".into());

    c.faults.heal();
    let kv = c.store(new).get("in-flight").await.unwrap().unwrap();
    assert_eq!((kv.mod_revision, kv.version), (revision, 1));
    c.assert_all_present(&acked).await;
    c.shutdown().await;
}
