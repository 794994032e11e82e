//! One membership suite, run over both transports: real UDP on loopback (with a fault filter
//! for partitions) and the in-process network that cuts links. 3 to 7 members per scenario;
//! every wait is bounded. Real processes (kill -9, SIGSTOP) are in `gossip_processes.rs`.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures::StreamExt;
use orion_consensus::gossip::{
    GossipConfig, GossipMembership, LinkFaults, MemoryNetwork, Transport, UdpTransport,
};
use orion_core::membership::{MemberState, Membership, MembershipEvent};
use orion_core::model::{NodeAddresses, Resources, ZONE_LABEL};

/// Generous bound for convergence and detection (the machine is shared); detection figures come
/// from the `gossip_detection` bench, not from tests.
const BOUND: Duration = Duration::from_secs(15);
/// How long to watch for a wrong `Dead`: several default detection times.
const WATCH: Duration = Duration::from_secs(3);

/// Which transport a scenario runs on.
#[derive(Debug, Clone)]
enum Net {
    Udp(LinkFaults),
    Memory(MemoryNetwork, Arc<AtomicU16>),
}

impl Net {
    fn udp() -> Self {
        Net::Udp(LinkFaults::new())
    }

    fn memory() -> Self {
        Net::Memory(MemoryNetwork::new(), Arc::new(AtomicU16::new(20_000)))
    }

    fn faults(&self) -> LinkFaults {
        match self {
            Net::Udp(faults) => faults.clone(),
            Net::Memory(network, _) => network.faults().clone(),
        }
    }

    /// A transport at `at`, or at a fresh address. UDP retries briefly: a restarted node may
    /// rebind a port its aborted predecessor is still releasing.
    async fn bind(&self, at: Option<SocketAddr>) -> Arc<dyn Transport> {
        match self {
            Net::Udp(faults) => {
                let addr = at.unwrap_or_else(|| "127.0.0.1:0".parse().expect("literal"));
                for _ in 0..100 {
                    if let Ok(udp) = UdpTransport::bind_with_faults(addr, faults.clone()).await {
                        return Arc::new(udp);
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                panic!("cannot bind UDP at {addr}");
            }
            Net::Memory(network, next_port) => {
                let addr = at.unwrap_or_else(|| {
                    let port = next_port.fetch_add(1, Ordering::Relaxed);
                    SocketAddr::from(([127, 0, 0, 1], port))
                });
                Arc::new(network.bind(addr))
            }
        }
    }
}

/// A member and everything it reported.
struct Node {
    id: String,
    membership: GossipMembership,
    events: Arc<Mutex<Vec<MembershipEvent>>>,
}

impl Node {
    async fn start(net: &Net, id: &str, at: Option<SocketAddr>, seeds: &[SocketAddr]) -> Node {
        let mut config = GossipConfig::new(id, "127.0.0.1:0".parse().expect("literal"))
            .with_label(ZONE_LABEL, format!("zone-{id}"))
            .with_capacity(Resources::new(4000, 8 << 30))
            .with_addresses(NodeAddresses {
                api: format!("127.0.0.1:80{}", id.len()),
                raft: format!("{id}.raft:9000"),
                gossip: String::new(),
            });
        config.seeds = seeds.to_vec();
        let transport = net.bind(at).await;
        let membership = GossipMembership::start_with_transport(config, transport)
            .await
            .expect("valid config");
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
        Node {
            id: id.to_string(),
            membership,
            events,
        }
    }

    fn addr(&self) -> SocketAddr {
        self.membership.gossip_addr()
    }

    fn events(&self) -> Vec<MembershipEvent> {
        self.events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// `(kind, node)` of every event, in order.
    fn log(&self) -> Vec<(&'static str, String)> {
        self.events()
            .iter()
            .map(|event| {
                let kind = match event {
                    MembershipEvent::Joined(_) => "joined",
                    MembershipEvent::Suspect(_) => "suspect",
                    MembershipEvent::Dead(_) => "dead",
                    MembershipEvent::Left(_) => "left",
                    MembershipEvent::Recovered(_) => "recovered",
                    MembershipEvent::Updated(_) => "updated",
                };
                (kind, event.node_id().to_string())
            })
            .collect()
    }

    fn position(&self, kind: &str, node: &str) -> Option<usize> {
        self.log().iter().position(|(k, n)| *k == kind && n == node)
    }

    fn count(&self, kind: &str, node: &str) -> usize {
        self.log()
            .iter()
            .filter(|(k, n)| *k == kind && n == node)
            .count()
    }

    async fn states(&self) -> BTreeMap<String, MemberState> {
        let members = self
            .membership
            .members()
            .await
            .expect("members never fails");
        members.into_iter().map(|m| (m.id, m.state)).collect()
    }
}

async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + BOUND;
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {BOUND:?} waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Starts `size` members `{prefix}0..`, member i joining through member i-1 (any member works
/// as a seed), and waits until every member sees all of them alive.
async fn cluster(net: &Net, prefix: &str, size: usize) -> Vec<Node> {
    let mut nodes: Vec<Node> = Vec::new();
    for i in 0..size {
        let seeds: Vec<SocketAddr> = nodes.last().map(Node::addr).into_iter().collect();
        nodes.push(Node::start(net, &format!("{prefix}{i}"), None, &seeds).await);
    }
    all_alive(&nodes, size).await;
    nodes
}

async fn all_alive(nodes: &[Node], size: usize) {
    let deadline = tokio::time::Instant::now() + BOUND;
    loop {
        let mut views = Vec::new();
        for node in nodes {
            views.push((node.id.clone(), node.states().await, node.log()));
        }
        let converged = views.iter().all(|(_, states, _)| {
            states.len() == size && states.values().all(|s| *s == MemberState::Alive)
        });
        if converged {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {BOUND:?} waiting until every member sees every member alive; \
             views (member, states, events): {views:#?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn joining_through_any_member_shares_metadata(net: Net) {
    let nodes = cluster(&net, "m", 3).await;
    let members = nodes[0].membership.members().await.expect("members");
    let m2 = members.iter().find(|m| m.id == "m2").expect("m0 knows m2");
    assert_eq!(m2.labels[ZONE_LABEL], "zone-m2");
    assert_eq!(m2.capacity, Resources::new(4000, 8 << 30));
    assert_eq!(m2.addresses.raft, "m2.raft:9000");
    assert_eq!(m2.addresses.gossip, nodes[2].addr().to_string());
    assert_eq!(nodes[0].membership.local().state, MemberState::Alive);
    assert_eq!(
        members[0].id, "m0",
        "members() starts with the local member"
    );
}

async fn crashed_member_is_suspect_then_dead_everywhere(net: Net) {
    let mut nodes = cluster(&net, "c", 7).await;
    drop(nodes.pop()); // c6: no goodbye, a crash as far as the others can tell
    eventually("every survivor reports c6 dead", || async {
        nodes.iter().all(|node| node.count("dead", "c6") == 1)
    })
    .await;
    for node in &nodes {
        assert!(node.position("suspect", "c6") < node.position("dead", "c6"));
        for other in &nodes {
            assert_eq!(node.count("dead", &other.id), 0, "{} is alive", other.id);
        }
        assert_eq!(node.states().await["c6"], MemberState::Dead);
    }
}

async fn graceful_leave_is_left_never_dead(net: Net) {
    let nodes = cluster(&net, "l", 3).await;
    nodes[2].membership.leave().await.expect("leave");
    assert_eq!(nodes[2].membership.local().state, MemberState::Left);
    eventually("l0 and l1 report l2 left", || async {
        nodes[..2].iter().all(|node| node.count("left", "l2") == 1)
    })
    .await;
    tokio::time::sleep(WATCH).await;
    for node in &nodes[..2] {
        assert_eq!(node.count("dead", "l2"), 0, "{}: {:?}", node.id, node.log());
        assert_eq!(node.states().await["l2"], MemberState::Left);
    }
}

async fn restart_with_the_same_id_joins_again(net: Net) {
    let mut nodes = cluster(&net, "r", 3).await;
    let old = nodes.pop().expect("three nodes");
    let addr = old.addr();
    drop(old);
    eventually("r0 and r1 report r2 dead", || async {
        nodes.iter().all(|node| node.count("dead", "r2") == 1)
    })
    .await;
    let back = Node::start(&net, "r2", Some(addr), &[nodes[0].addr()]).await;
    eventually("r0 and r1 report r2 joined after its death", || async {
        nodes.iter().all(|node| {
            node.log()
                .iter()
                .rposition(|(k, n)| *k == "joined" && n == "r2")
                > node.position("dead", "r2")
        })
    })
    .await;
    nodes.push(back);
    all_alive(&nodes, 3).await;
}

async fn partition_is_detected_on_both_sides_and_heals(net: Net) {
    let nodes = cluster(&net, "p", 4).await;
    let (left, right) = nodes.split_at(2);
    let addrs = |side: &[Node]| side.iter().map(Node::addr).collect::<Vec<_>>();
    net.faults().partition(&addrs(left), &addrs(right));
    eventually("each side reports the other suspect then dead", || async {
        nodes.iter().all(|node| {
            let others = if left.iter().any(|n| n.id == node.id) {
                right
            } else {
                left
            };
            others.iter().all(|other| {
                node.position("dead", &other.id).is_some()
                    && node.position("suspect", &other.id) < node.position("dead", &other.id)
            })
        })
    })
    .await;
    for node in left {
        for same_side in left {
            assert_eq!(
                node.count("dead", &same_side.id),
                0,
                "no dead within a side"
            );
        }
    }
    net.faults().heal_all();
    all_alive(&nodes, 4).await;
    for node in left {
        for other in right {
            let back = node
                .log()
                .iter()
                .rposition(|(k, n)| (*k == "recovered" || *k == "joined") && *n == other.id);
            assert!(
                back > node.position("dead", &other.id),
                "{} sees {} back",
                node.id,
                other.id
            );
        }
    }
}

async fn metadata_change_is_gossiped_as_updated(net: Net) {
    let nodes = cluster(&net, "u", 3).await;
    let labels = BTreeMap::from([(ZONE_LABEL.to_string(), "zone-new".to_string())]);
    nodes[1]
        .membership
        .update_metadata(labels, Resources::new(1000, 1 << 30))
        .await
        .expect("update");
    eventually("u0 reports u1 updated with the new zone", || async {
        nodes[0].events().iter().any(|event| {
            matches!(event, MembershipEvent::Updated(m) if m.labels[ZONE_LABEL] == "zone-new")
        })
    })
    .await;
    assert_eq!(nodes[0].count("dead", "u1"), 0);
    let members = nodes[0].membership.members().await.expect("members");
    assert_eq!(members[1].capacity, Resources::new(1000, 1 << 30));
}

macro_rules! over_both_transports {
    ($($scenario:ident),* $(,)?) => {
        mod udp {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    super::$scenario(super::Net::udp()).await;
                }
            )*
        }
        mod in_process {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    super::$scenario(super::Net::memory()).await;
                }
            )*
        }
    };
}

over_both_transports!(
    joining_through_any_member_shares_metadata,
    crashed_member_is_suspect_then_dead_everywhere,
    graceful_leave_is_left_never_dead,
    restart_with_the_same_id_joins_again,
    partition_is_detected_on_both_sides_and_heals,
    metadata_change_is_gossiped_as_updated,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_on_the_udp_port_is_dropped_and_counted() {
    let net = Net::udp();
    let nodes = cluster(&net, "g", 3).await;
    let before = nodes[0].events().len();
    let attacker = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind attacker");
    let mut garbage: Vec<Vec<u8>> = vec![
        Vec::new(),
        b"GET / HTTP/1.1\r\n\r\n".to_vec(),
        b"ORNG".to_vec(),
        b"ORNG\x01\x00".to_vec(),
        b"ORNG\x01\x00\xff\xff\xff\xff\xff".to_vec(),
        b"ORNG\x01\x02\x01\x02\x03".to_vec(),
        b"ORNG\x01\x03not-an-identity".to_vec(),
        b"ORNG\x01\x07".to_vec(),
        vec![0xAB; 1500],
        [b"ORNG\x01\x00".as_slice(), &[0u8; 3000]].concat(),
    ];
    let mut seed = 0x2545_f491_u32;
    for _ in 0..90 {
        let len = (seed % 200) as usize + 1;
        let packet = (0..len)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 17;
                seed ^= seed << 5;
                seed as u8
            })
            .collect();
        garbage.push(packet);
    }
    for packet in &garbage {
        attacker
            .send_to(packet, nodes[0].addr())
            .expect("send garbage");
    }
    eventually("g0 counted every garbage datagram", || async {
        nodes[0].membership.stats().malformed_packets >= garbage.len() as u64
    })
    .await;
    tokio::time::sleep(WATCH).await;
    all_alive(&nodes, 3).await;
    assert_eq!(
        nodes[0].events().len(),
        before,
        "garbage changed membership"
    );
    assert!(nodes[0].membership.stats().packets_received > garbage.len() as u64);
}

#[tokio::test]
async fn invalid_config_is_a_typed_error_naming_the_field() {
    let mut config = GossipConfig::new("", "127.0.0.1:0".parse().expect("literal"));
    let err = GossipMembership::start(config.clone())
        .await
        .expect_err("empty id");
    assert!(err.to_string().contains("node_id"), "{err}");
    config.node_id = "n".into();
    config.timings.probe_rtt = config.timings.probe_period;
    let err = GossipMembership::start(config.clone())
        .await
        .expect_err("rtt >= period");
    assert!(err.to_string().contains("probe_rtt"), "{err}");
    let core: orion_core::Error = err.into();
    assert!(matches!(core, orion_core::Error::Invalid(_)));
    config.timings = Default::default();
    config.labels.insert("huge".into(), "x".repeat(2000));
    let err = GossipMembership::start(config)
        .await
        .expect_err("labels too big");
    assert!(err.to_string().contains("labels"), "{err}");
}

/// s2's seed (s1) is unreachable while s3 joins through s2: s2 now knows a member, but not its
/// seed's cluster. Once the link is back, s2 must still join through its seed, or the cluster
/// stays split in two for good.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_joiner_that_gained_members_before_its_seed_answered_still_merges() {
    let net = Net::memory();
    let s0 = Node::start(&net, "s0", None, &[]).await;
    let s1 = Node::start(&net, "s1", None, &[s0.addr()]).await;
    let s2_addr: SocketAddr = "127.0.0.1:29999".parse().expect("literal");
    net.faults().cut(s2_addr, s1.addr());
    let s2 = Node::start(&net, "s2", Some(s2_addr), &[s1.addr()]).await;
    let s3 = Node::start(&net, "s3", None, &[s2_addr]).await;
    eventually("s2 knows s3 while its seed is cut off", || async {
        s2.states().await.get("s3") == Some(&MemberState::Alive)
    })
    .await;
    assert!(!s2.states().await.contains_key("s1"), "the cut holds");
    net.faults().heal_all();
    all_alive(&[s0, s1, s2, s3], 4).await;
}
