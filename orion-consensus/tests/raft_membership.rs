//! Membership over real loopback TCP: joining through any live member (`cluster::join_any`),
//! the leadership watch, removal by hand, and a voter whose data dir was wiped.

mod common;

use std::time::Duration;

use common::cluster::{Cluster, WAIT};
use orion_consensus::cluster::{JoinOptions, in_raft, join_any, leadership};
use orion_core::Error;
use tokio::net::TcpListener;
use tokio::time::sleep;

/// A TCP port that accepts connections and never answers: a member that hangs mid-join.
async fn silent_member() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        let mut held = Vec::new();
        // Bounded: the test ends long before this many connections.
        for _ in 0..64 {
            match listener.accept().await {
                Ok((stream, _)) => held.push(stream),
                Err(_) => return,
            }
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn join_any_skips_a_hanging_member_and_joins_through_a_live_one() {
    let mut c = Cluster::start(1).await;
    c.start_node(2).await;
    assert!(!in_raft(&c.nodes[&2]));
    let hanging = silent_member().await;
    let live = c.nodes[&1].addr().to_owned();
    let peers = vec![hanging.clone(), live.clone()];
    let options = JoinOptions {
        attempt_timeout: Duration::from_secs(1),
        give_up_after: WAIT,
        max_backoff: Duration::from_millis(500),
    };
    let via = join_any(&c.nodes[&2], || async { peers.clone() }, &options)
        .await
        .unwrap();
    assert_eq!(via, live, "joined through the live member");
    assert!(in_raft(&c.nodes[&2]));
    // Two members: one voter, one learner (voters stay odd).
    let status = c.nodes[&1].status();
    assert_eq!(status.voters, vec![1]);
    assert_eq!(status.learners, vec![2]);

    // Joining again on a restart is answered at once and changes nothing.
    c.kill(2).await;
    c.start_node(2).await;
    join_any(&c.nodes[&2], || async { vec![live.clone()] }, &options)
        .await
        .unwrap();
    assert_eq!(c.nodes[&1].status().learners, vec![2]);
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn join_any_gives_up_when_no_member_answers() {
    let mut c = Cluster::new();
    c.start_node(7).await;
    let hanging = silent_member().await;
    let options = JoinOptions {
        attempt_timeout: Duration::from_millis(300),
        give_up_after: Duration::from_secs(1),
        max_backoff: Duration::from_millis(100),
    };
    let err = join_any(&c.nodes[&7], || async { vec![hanging.clone()] }, &options)
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("could not join"), "{msg}");
    assert!(msg.contains(&hanging), "names the member tried: {msg}");
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_leadership_watch_follows_the_leader() {
    let mut c = Cluster::start(3).await;
    let watches: Vec<_> = [1, 2, 3].map(|id| (id, leadership(&c.nodes[&id]))).into();
    let leader = c.agreed_leader(&[1, 2, 3]).await;
    for (id, w) in &watches {
        assert_eq!(w.borrow().term().is_some(), *id == leader, "node {id}");
    }
    c.kill(leader).await;
    let survivors: Vec<u64> = c.nodes.keys().copied().collect();
    let next = c.agreed_leader(&survivors).await;
    let mut watch = watches
        .iter()
        .find(|(id, _)| *id == next)
        .unwrap()
        .1
        .clone();
    tokio::time::timeout(WAIT, watch.wait_for(|v| v.term().is_some()))
        .await
        .expect("the new leader's watch turns true")
        .unwrap();
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remove_by_hand_refuses_the_leader_and_strangers_and_removes_a_follower() {
    let mut c = Cluster::start(3).await;
    let leader = c.agreed_leader(&[1, 2, 3]).await;
    let follower = [1, 2, 3].into_iter().find(|id| *id != leader).unwrap();

    // Through a follower, so the request is forwarded to the leader.
    let err = c.nodes[&follower].remove(leader).await.unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(Error::from(err), Error::Conflict(_)),
        "the leader itself is refused: {msg}"
    );
    assert!(msg.contains("cannot remove itself"), "{msg}");
    let err = c.nodes[&leader].remove(999).await.unwrap_err();
    assert!(
        matches!(Error::from(err), Error::NotFound { .. }),
        "a stranger is not found"
    );

    c.nodes[&leader].remove(follower).await.unwrap();
    let status = c.nodes[&leader].status();
    assert!(!status.voters.contains(&follower), "{status:?}");
    assert!(!status.learners.contains(&follower), "{status:?}");
    let acked = {
        c.kill(follower).await;
        c.write_keys(leader, "after-remove/", 5).await
    };
    c.assert_all_present(&acked).await;
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_voter_cannot_remove_itself() {
    let c = Cluster::start(1).await;
    let err = c.nodes[&1].leave().await.unwrap_err();
    assert!(err.to_string().contains("Raft leader"), "{err}");
    assert_eq!(c.nodes[&1].status().voters, vec![1]);
    c.shutdown().await;
}

/// A voter restarted on an empty data dir must neither vote nor take entries as the old voter:
/// its Raft port refuses the leader's traffic until it joins, and the join removes the old
/// member and adds it back as a new one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wiped_voter_is_not_taken_back_silently_but_re_added_as_a_new_member() {
    let mut c = Cluster::start(3).await;
    let mut acked = c.write_keys(1, "old/", 20).await;
    let leader = c.agreed_leader(&[1, 2, 3]).await;
    let victim = if leader == 3 { 2 } else { 3 };
    c.kill(victim).await;
    std::fs::remove_dir_all(c.data_dir(victim)).unwrap();
    c.start_node(victim).await;

    // The leader keeps replicating to its old voter; the wiped node must refuse all of it.
    acked.extend(c.write_keys(leader, "while-wiped/", 20).await);
    let commit = c.nodes[&leader].status().commit_index;
    let heartbeats = Duration::from_millis(50);
    for _ in 0..20 {
        sleep(heartbeats).await;
        let s = c.nodes[&victim].status();
        assert_eq!(
            (s.last_log_index, s.term),
            (0, 0),
            "the wiped node took Raft traffic before being admitted (leader at {commit})"
        );
    }
    assert!(c.nodes[&leader].status().voters.contains(&victim));

    let seed = c.nodes[&leader].addr().to_owned();
    c.nodes[&victim].join(&seed).await.unwrap();
    let status = c.nodes[&leader].status();
    assert_eq!(status.voters, vec![1, 2, 3], "re-added and promoted again");
    acked.extend(c.write_keys(victim, "after-rejoin/", 5).await);
    c.assert_all_present(&acked).await;
    c.shutdown().await;
}

/// A fresh node that was never a member is admitted and joins the usual way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_node_refuses_raft_traffic_until_admitted() {
    let mut c = Cluster::start(1).await;
    c.start_node(2).await;
    let addr = c.nodes[&2].addr().to_owned();
    let status = reqwest::Client::new()
        .post(format!("http://{addr}/raft/vote"))
        .header("content-type", orion_consensus::codec::WIRE_CONTENT_TYPE)
        .body(vec![0u8; 8])
        .send()
        .await
        .unwrap();
    assert_eq!(status.status().as_u16(), 503);
    let text = status.text().await.unwrap();
    assert!(text.contains("not a member yet"), "{text}");
    let seed = c.nodes[&1].addr().to_owned();
    c.nodes[&2].join(&seed).await.unwrap();
    assert_eq!(c.nodes[&1].status().learners, vec![2]);
    c.shutdown().await;
}
