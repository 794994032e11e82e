//! `GossipMembership` runs the `Membership` conformance suite (`orion_core::testing::membership`)
//! over both transports: real UDP on loopback and the in-process network. Each check gets a fresh
//! member, alone or joined to a running peer (so `members()` and `leave()` involve gossip).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use orion_consensus::gossip::{GossipConfig, GossipMembership, MemoryNetwork, UdpTransport};
use orion_core::membership::{MemberState, Membership};
use orion_core::model::{NodeAddresses, Resources};
use orion_core::testing::membership as suite;

/// Longest wait for a new member to see its seed peer Alive.
const JOIN_WAIT: Duration = Duration::from_secs(15);
const POLL: Duration = Duration::from_millis(50);

/// Where the members of one test live.
#[derive(Clone)]
enum Net {
    Udp,
    Memory(MemoryNetwork, Arc<AtomicU16>),
}

impl Net {
    fn memory() -> Self {
        Net::Memory(MemoryNetwork::new(), Arc::new(AtomicU16::new(21_000)))
    }

    async fn start(&self, id: &str, seeds: &[SocketAddr]) -> GossipMembership {
        let mut config = GossipConfig::new(id, "127.0.0.1:0".parse().expect("literal"))
            .with_capacity(Resources::new(2000, 4 << 30))
            .with_addresses(NodeAddresses {
                api: "127.0.0.1:7070".to_owned(),
                raft: String::new(),
                gossip: String::new(),
            });
        config.seeds = seeds.to_vec();
        match self {
            Net::Udp => {
                let transport = UdpTransport::bind(config.bind)
                    .await
                    .expect("a UDP socket on loopback");
                GossipMembership::start_with_transport(config, Arc::new(transport)).await
            }
            Net::Memory(network, next_port) => {
                let port = next_port.fetch_add(1, Ordering::Relaxed);
                let transport = network.bind(SocketAddr::from(([127, 0, 0, 1], port)));
                GossipMembership::start_with_transport(config, Arc::new(transport)).await
            }
        }
        .expect("a valid gossip config")
    }
}

/// Makes fresh members; with `joined`, each first joins a peer started for it. Peers are kept
/// alive until the factory is dropped.
struct Factory {
    net: Net,
    joined: bool,
    peers: Mutex<Vec<GossipMembership>>,
    counter: AtomicU16,
}

impl Factory {
    fn new(net: Net, joined: bool) -> Self {
        Factory {
            net,
            joined,
            peers: Mutex::new(Vec::new()),
            counter: AtomicU16::new(0),
        }
    }

    async fn member(&self) -> GossipMembership {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        if !self.joined {
            return self.net.start(&format!("solo-{n}"), &[]).await;
        }
        let peer = self.net.start(&format!("peer-{n}"), &[]).await;
        let member = self
            .net
            .start(&format!("member-{n}"), &[peer.gossip_addr()])
            .await;
        wait_until_sees(&member, &peer.local().id).await;
        self.peers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(peer);
        member
    }
}

/// Polls `members()` until `peer` is listed Alive; panics after [`JOIN_WAIT`].
async fn wait_until_sees(member: &GossipMembership, peer: &str) {
    let deadline = tokio::time::Instant::now() + JOIN_WAIT;
    loop {
        let members = member.members().await.expect("members()");
        if members
            .iter()
            .any(|m| m.id == peer && m.state == MemberState::Alive)
        {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} did not see {peer} Alive within {JOIN_WAIT:?}: {members:?}",
            member.local().id
        );
        tokio::time::sleep(POLL).await;
    }
}

/// Every check of the suite, each on a fresh member, through the suite's one entry point: a
/// check added to `orion_core::testing::membership::run` runs here too, it cannot be skipped by
/// a hand-copied list.
async fn run_suite(net: Net, joined: bool) {
    let factory = Factory::new(net, joined);
    suite::run(|| factory.member()).await;
}

#[tokio::test]
async fn udp_alone() {
    run_suite(Net::Udp, false).await;
}

#[tokio::test]
async fn udp_joined_to_a_peer() {
    run_suite(Net::Udp, true).await;
}

#[tokio::test]
async fn in_process_alone() {
    run_suite(Net::memory(), false).await;
}

#[tokio::test]
async fn in_process_joined_to_a_peer() {
    run_suite(Net::memory(), true).await;
}
