//! Gossip and identity: datagrams carry the cluster id (another cluster's are counted and
//! dropped; a node without one learns it from its seed), and a second process with a live
//! member's node id is refused at its hello and stops, leaving the member untouched. Real UDP
//! on loopback; every wait is bounded.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures::StreamExt;
use orion_consensus::Error;
use orion_consensus::gossip::{GossipConfig, GossipMembership};
use orion_core::membership::{MemberState, Membership, MembershipEvent};
use orion_core::model::NodeAddresses;

/// Generous bound for convergence on a shared machine (not a detection figure).
const BOUND: Duration = Duration::from_secs(15);
/// How long to watch for an unwanted event: several default detection times.
const WATCH: Duration = Duration::from_secs(3);

struct Node {
    membership: GossipMembership,
    events: Arc<Mutex<Vec<MembershipEvent>>>,
}

impl Node {
    async fn start(id: &str, cluster: Option<&str>, seeds: &[SocketAddr]) -> Node {
        let mut config = GossipConfig::new(id, "127.0.0.1:0".parse().expect("literal"))
            .with_addresses(NodeAddresses {
                api: format!("api-of-{id}:80"),
                raft: format!("raft-of-{id}:90"),
                gossip: String::new(),
            });
        config.seeds = seeds.to_vec();
        config.cluster_id = cluster.map(str::to_owned);
        let membership = GossipMembership::start(config).await.expect("valid config");
        let events = Arc::new(Mutex::new(Vec::new()));
        let sink = events.clone();
        let mut stream = membership.subscribe();
        tokio::spawn(async move {
            while let Some(event) = stream.next().await {
                sink.lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(event);
            }
        });
        Node { membership, events }
    }

    fn addr(&self) -> SocketAddr {
        self.membership.gossip_addr()
    }

    fn events_about(&self, id: &str) -> Vec<MembershipEvent> {
        self.events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter(|event| event.node_id() == id)
            .cloned()
            .collect()
    }

    async fn sees_alive(&self, id: &str) -> bool {
        let members = self.membership.members().await.expect("members");
        members
            .iter()
            .any(|m| m.id == id && m.state == MemberState::Alive)
    }

    async fn knows(&self, id: &str) -> bool {
        let members = self.membership.members().await.expect("members");
        members.iter().any(|m| m.id == id)
    }
}

async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + BOUND;
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {BOUND:?} waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_clusters_pointed_at_each_other_drop_and_count_each_others_datagrams() {
    let x0 = Node::start("x0", Some("cluster-x"), &[]).await;
    // y0 seeds at x0, x1 seeds at y0: every hello and every probe crosses the boundary.
    let y0 = Node::start("y0", Some("cluster-y"), &[x0.addr()]).await;
    let x1 = Node::start("x1", Some("cluster-x"), &[y0.addr(), x0.addr()]).await;
    let y1 = Node::start("y1", Some("cluster-y"), &[x1.addr(), y0.addr()]).await;
    eventually("x0 and x1 see each other", async || {
        x0.sees_alive("x1").await && x1.sees_alive("x0").await
    })
    .await;
    eventually("y0 and y1 see each other", async || {
        y0.sees_alive("y1").await && y1.sees_alive("y0").await
    })
    .await;
    eventually("both sides counted the other's datagrams", async || {
        x0.membership.stats().foreign_cluster_packets > 0
            && y0.membership.stats().foreign_cluster_packets > 0
    })
    .await;
    tokio::time::sleep(WATCH).await;
    for (node, others) in [
        (&x0, ["y0", "y1"]),
        (&x1, ["y0", "y1"]),
        (&y0, ["x0", "x1"]),
    ] {
        for other in others {
            assert!(
                !node.knows(other).await,
                "a member of another cluster was let in"
            );
        }
    }
    assert_eq!(x0.membership.cluster_id().as_deref(), Some("cluster-x"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_without_a_cluster_id_learns_its_seeds() {
    let x0 = Node::start("x0", Some("cluster-x"), &[]).await;
    let fresh = Node::start("fresh", None, &[x0.addr()]).await;
    let mut learned = fresh.membership.watch_cluster_id();
    tokio::time::timeout(BOUND, learned.wait_for(Option::is_some))
        .await
        .expect("learned within the bound")
        .expect("gossip still running");
    assert_eq!(fresh.membership.cluster_id().as_deref(), Some("cluster-x"));
    eventually("x0 and fresh see each other", async || {
        x0.sees_alive("fresh").await && fresh.sees_alive("x0").await
    })
    .await;
    assert_eq!(x0.membership.stats().foreign_cluster_packets, 0);
}

/// Waits (bounded) for `impostor` to stop on its own, and returns the error it stopped with.
async fn refused(impostor: &Node) -> Error {
    tokio::time::timeout(BOUND, impostor.membership.duplicate_node_id())
        .await
        .expect("the impostor stops within the bound")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_process_with_a_live_members_id_is_refused_and_the_member_is_untouched() {
    let d0 = Node::start("d0", Some("c"), &[]).await;
    let d1 = Node::start("d1", Some("c"), &[d0.addr()]).await;
    let d2 = Node::start("d2", Some("c"), &[d0.addr()]).await;
    eventually("every member sees every other", async || {
        d0.sees_alive("d1").await && d0.sees_alive("d2").await && d2.sees_alive("d1").await
    })
    .await;
    let before = d1.membership.local();
    let seen_before = (d0.events_about("d1").len(), d2.events_about("d1").len());

    // Another process, other addresses, same node id, joining through d0.
    let impostor = Node::start("d1", Some("c"), &[d0.addr()]).await;
    let err = refused(&impostor).await;
    let text = err.to_string();
    assert!(matches!(err, Error::DuplicateNodeId { .. }), "{text}");
    assert!(
        text.contains(&d1.addr().to_string()),
        "names the live holder: {text}"
    );
    assert!(text.contains("api-of-d1:80"), "{text}");
    assert!(d0.membership.stats().refused_duplicates > 0);

    tokio::time::sleep(WATCH).await;
    assert_eq!(
        (d0.events_about("d1").len(), d2.events_about("d1").len()),
        seen_before,
        "the members saw something of the impostor: {:?}",
        d0.events_about("d1")
    );
    let after = d1.membership.local();
    assert_eq!(
        after.incarnation, before.incarnation,
        "the real d1 never had to refute"
    );
    let listed = d0.membership.members().await.expect("members");
    let d1_seen = listed.iter().find(|m| m.id == "d1").expect("d1 listed");
    assert_eq!(d1_seen.addresses.gossip, d1.addr().to_string());
    assert_eq!(d1_seen.state, MemberState::Alive);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_impostor_that_greets_the_holder_itself_is_refused_too() {
    let d0 = Node::start("d0", Some("c"), &[]).await;
    let impostor = Node::start("d0", Some("c"), &[d0.addr()]).await;
    let text = refused(&impostor).await.to_string();
    assert!(text.contains(&d0.addr().to_string()), "{text}");
    assert!(d0.events_about("d0").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_node_restarted_at_another_address_is_accepted_once_its_old_life_is_dead() {
    let d0 = Node::start("d0", Some("c"), &[]).await;
    let d1 = Node::start("d1", Some("c"), &[d0.addr()]).await;
    eventually("d0 sees d1", async || d0.sees_alive("d1").await).await;
    drop(d1); // a crash: no goodbye
    let back = Node::start("d1", Some("c"), &[d0.addr()]).await;
    eventually("d0 sees the new life of d1 alive", async || {
        let members = d0.membership.members().await.expect("members");
        members.iter().any(|m| {
            m.id == "d1"
                && m.state == MemberState::Alive
                && m.addresses.gossip == back.addr().to_string()
        })
    })
    .await;
}
