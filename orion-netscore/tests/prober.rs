//! The prober on a simulated network (virtual time: no sleeping, nothing timed).

use std::time::Duration;

use orion_core::model::{Node, NodeStatus, Resources};
use orion_core::store::{ClusterStore, MemoryStore};
use orion_netscore::probe::{
    LinkState, PeerView, Prober, ProberConfig, SimulatedLink, SimulatedNetwork, peer_views, publish,
};

const INTERVAL_MS: u64 = 5_000;

fn link(rtt_ms: f64) -> SimulatedLink {
    SimulatedLink {
        rtt_ms,
        ..SimulatedLink::default()
    }
}

fn peer(id: &str, reached_by_others: bool) -> PeerView {
    PeerView {
        id: id.into(),
        coordinate: None,
        reached_by_others,
    }
}

fn config() -> ProberConfig {
    ProberConfig {
        min_publish_interval: Duration::from_secs(30),
        ..ProberConfig::default()
    }
}

#[tokio::test]
async fn probes_a_bounded_number_of_peers_per_round() {
    let network = SimulatedNetwork::new(link(2.0), 1);
    let peers: Vec<PeerView> = (0..50).map(|i| peer(&format!("n{i}"), true)).collect();
    let mut prober = Prober::new("n0", config(), 1).unwrap();
    let mut probed = std::collections::BTreeSet::new();
    for round in 0..40u64 {
        let report = prober
            .round(&network.endpoint("n0"), &peers, round * INTERVAL_MS)
            .await;
        assert_eq!(report.probed.len(), 3);
        assert!(!report.probed.contains(&"n0".to_string()), "probed itself");
        assert_eq!(report.echoes_sent, 3 * 3);
        probed.extend(report.probed);
    }
    assert!(
        probed.len() > 30,
        "the random choice covers the peers: {}",
        probed.len()
    );
}

#[tokio::test]
async fn measures_rtt_percentiles_loss_and_bandwidth() {
    let network = SimulatedNetwork::new(link(1.0), 7);
    network.set_link(
        "a",
        "b",
        SimulatedLink {
            rtt_ms: 20.0,
            loss: 0.2,
            bandwidth_mbps: 100.0,
            jitter_ms: 4.0,
        },
    );
    let config = ProberConfig {
        bandwidth_every_rounds: 1,
        ..config()
    };
    let mut prober = Prober::new("a", config, 3).unwrap();
    let peers = [peer("b", true)];
    for round in 0..200u64 {
        prober
            .round(&network.endpoint("a"), &peers, round * INTERVAL_MS)
            .await;
    }
    let stats = prober.link("b").unwrap();
    let p50 = stats.rtt_quantile(0.5).unwrap();
    let p90 = stats.rtt_quantile(0.9).unwrap();
    assert!((20.0..24.0).contains(&p50), "p50 {p50}");
    assert!(p90 > p50 && p90 <= 24.1, "p90 {p90}");
    assert!(
        stats.jitter_ms > 0.5 && stats.jitter_ms < 4.0,
        "jitter {}",
        stats.jitter_ms
    );
    assert!((0.08..0.35).contains(&stats.loss), "loss {}", stats.loss);
    let bandwidth = stats.bandwidth_mbps.unwrap();
    // The transfer's extra time includes the jitter, so the estimate is below the true 100.
    assert!((40.0..=130.0).contains(&bandwidth), "bandwidth {bandwidth}");
    assert_eq!(stats.state, LinkState::Up);
}

#[tokio::test]
async fn publishes_on_real_change_only_and_under_the_rate_limit() {
    let network = SimulatedNetwork::new(link(10.0), 1);
    let mut prober = Prober::new("a", config(), 1).unwrap();
    let peers = [peer("b", true)];
    let endpoint = network.endpoint("a");

    let first = prober.round(&endpoint, &peers, 0).await;
    assert_eq!(first.publish.len(), 1, "the first measurement is published");
    assert!((first.publish[0].rtt_ms - 10.0).abs() < 0.01);
    assert!(
        first.coordinate.is_some(),
        "the first coordinate is published, so peers have one to move against"
    );
    for round in 1..20u64 {
        let report = prober.round(&endpoint, &peers, round * INTERVAL_MS).await;
        assert!(
            report.coordinate.is_none(),
            "no peer coordinate: nothing moved, nothing to republish (round {round})"
        );
        assert!(
            report.publish.is_empty(),
            "steady link republished at round {round}"
        );
    }
    // The link slows down; the change waits for the rate limit, then is published once.
    network.set_link("a", "b", link(30.0));
    let mut published_at = Vec::new();
    for round in 20..60u64 {
        let now = round * INTERVAL_MS;
        let report = prober.round(&endpoint, &peers, now).await;
        if !report.publish.is_empty() {
            published_at.push(now);
        }
    }
    assert!(!published_at.is_empty(), "the change was never published");
    assert!(
        published_at.len() <= 3,
        "too many publications: {published_at:?}"
    );
    for pair in published_at.windows(2) {
        assert!(
            pair[1] - pair[0] >= 30_000,
            "rate limit broken: {published_at:?}"
        );
    }
}

#[tokio::test]
async fn a_dead_link_is_told_apart_from_a_dead_node() {
    let network = SimulatedNetwork::new(link(5.0), 1);
    let endpoint = network.endpoint("a");
    let mut prober = Prober::new("a", config(), 1).unwrap();
    let mut now = 0;
    async fn step(
        prober: &mut Prober,
        endpoint: &orion_netscore::probe::SimulatedEndpoint,
        reached: bool,
        now: &mut u64,
    ) -> orion_netscore::probe::RoundReport {
        *now += INTERVAL_MS;
        prober.round(endpoint, &[peer("b", reached)], *now).await
    }
    step(&mut prober, &endpoint, true, &mut now).await;

    // The link is cut while others still reach b: after 3 failed rounds, published as down at once.
    network.cut_link("a", "b", true);
    let mut down = None;
    for _ in 0..3 {
        let report = step(&mut prober, &endpoint, true, &mut now).await;
        down = down.or(report.publish.into_iter().find(|m| m.link_down));
    }
    let down = down.expect("the dead link was published");
    assert_eq!(
        (down.from.as_str(), down.to.as_str(), down.loss),
        ("a", "b", 1.0)
    );
    assert_eq!(prober.link("b").unwrap().state, LinkState::Down);

    // Nobody reaches b any more: the node is gone, not the link; the link-down record is retracted.
    let report = step(&mut prober, &endpoint, false, &mut now).await;
    assert_eq!(report.retract, vec!["b".to_string()]);
    assert!(report.publish.is_empty());
    assert_eq!(prober.link("b").unwrap().state, LinkState::PeerUnreachable);

    // b comes back: the link is up and published at once.
    network.cut_link("a", "b", false);
    let report = step(&mut prober, &endpoint, true, &mut now).await;
    assert_eq!(prober.link("b").unwrap().state, LinkState::Up);
    assert!(report.publish.iter().any(|m| m.to == "b" && !m.link_down));
}

#[tokio::test]
async fn a_node_nobody_reaches_is_never_published_as_a_dead_link() {
    let network = SimulatedNetwork::new(link(5.0), 1);
    network.set_dead("b", true);
    let mut prober = Prober::new("a", config(), 1).unwrap();
    for round in 0..10u64 {
        let report = prober
            .round(
                &network.endpoint("a"),
                &[peer("b", false)],
                round * INTERVAL_MS,
            )
            .await;
        assert!(report.publish.iter().all(|m| !m.link_down), "round {round}");
    }
    assert_eq!(prober.link("b").unwrap().state, LinkState::PeerUnreachable);
}

/// Six probers on one store: they publish coordinates, read each other's, and the coordinates
/// come to estimate the RTT of every pair, including ones never probed directly.
#[tokio::test]
async fn probers_sharing_a_store_learn_coordinates_that_estimate_rtt() {
    // Two sites: a0..a2 and b0..b2, 2 ms inside a site, 40 ms across.
    let ids = ["a0", "a1", "a2", "b0", "b1", "b2"];
    let network = SimulatedNetwork::new(link(2.0), 5);
    for x in &ids[..3] {
        for y in &ids[3..] {
            network.set_link(x, y, link(40.0));
        }
    }
    let store = ClusterStore::new(MemoryStore::new());
    for id in ids {
        store
            .put_node(&Node::new(id, Resources::new(1000, 1 << 30)))
            .await
            .unwrap();
    }
    let config = ProberConfig {
        peers_per_round: 2,
        min_publish_interval: Duration::ZERO,
        coordinate_change_ms: 0.1,
        ..ProberConfig::default()
    };
    let mut probers: Vec<Prober> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| Prober::new(*id, config.clone(), i as u64).unwrap())
        .collect();
    for round in 0..150u64 {
        for prober in &mut probers {
            let me = prober.node().to_string();
            let peers = peer_views(&store, &me, &prober.suspected_peers())
                .await
                .unwrap();
            let report = prober
                .round(&network.endpoint(&me), &peers, round * INTERVAL_MS)
                .await;
            publish(&store, &me, &report).await.unwrap();
        }
    }
    let coordinates = store.list_coordinates().await.unwrap();
    assert_eq!(coordinates.len(), 6);
    for x in &coordinates {
        for y in &coordinates {
            if x.node == y.node {
                continue;
            }
            let truth = if x.node[..1] == y.node[..1] {
                2.0
            } else {
                40.0
            };
            let estimate = x.estimate_rtt_ms(y).unwrap();
            assert!(
                (estimate - truth).abs() / truth < 0.35,
                "{} -> {}: estimated {estimate}, true {truth}",
                x.node,
                y.node
            );
        }
    }
    assert!(!store.list_measurements().await.unwrap().is_empty());
}

#[tokio::test]
async fn peer_views_tell_whether_others_still_reach_a_node() {
    let store = ClusterStore::new(MemoryStore::new());
    for id in ["a", "b", "c", "d"] {
        store
            .put_node(&Node::new(id, Resources::new(1000, 1 << 30)))
            .await
            .unwrap();
    }
    store
        .update_node("d", |n| {
            n.status = NodeStatus::Down;
            Ok(())
        })
        .await
        .unwrap();
    let down = |from: &str, to: &str| orion_core::model::NetworkMeasurement {
        from: from.into(),
        to: to.into(),
        loss: 1.0,
        link_down: true,
        ..Default::default()
    };
    // Everyone else fails to reach c; b is failed by a only (which is "me").
    store.put_measurement(&down("b", "c")).await.unwrap();
    store.put_measurement(&down("a", "b")).await.unwrap();
    let suspects = ["b".to_string(), "c".to_string()];
    let views = peer_views(&store, "a", &suspects).await.unwrap();
    let ids: Vec<&str> = views.iter().map(|v| v.id.as_str()).collect();
    assert_eq!(ids, ["b", "c"], "itself and down nodes are not peers");
    assert!(
        views[0].reached_by_others,
        "only my own record says b fails"
    );
    assert!(
        !views[1].reached_by_others,
        "every other record says c fails"
    );
}

/// A node learning many links publishes them in one record per interval: at most one store
/// write per `min_publish_interval` (none between), the record holding every link learned so far
/// up to `max_links_published`, and readers see the links through `list_measurements`.
#[tokio::test]
async fn links_are_published_as_one_record_at_most_once_per_interval() {
    let network = SimulatedNetwork::new(link(4.0), 3);
    let store = ClusterStore::new(MemoryStore::new());
    let ids: Vec<String> = (0..40).map(|i| format!("n{i:02}")).collect();
    for id in &ids {
        store
            .put_node(&Node::new(id.as_str(), Resources::new(1000, 1 << 30)))
            .await
            .unwrap();
    }
    let config = ProberConfig {
        max_links_published: 12,
        ..config()
    };
    let mut prober = Prober::new("n00", config, 9).unwrap();
    let endpoint = network.endpoint("n00");
    let mut publications = Vec::new();
    let mut largest = 0;
    for round in 0..60u64 {
        let now = round * INTERVAL_MS;
        let peers = peer_views(&store, "n00", &prober.suspected_peers())
            .await
            .unwrap();
        let report = prober.round(&endpoint, &peers, now).await;
        assert!(report.store_writes() <= 1);
        if let Some(record) = &report.links {
            assert_eq!(record.from, "n00");
            assert!(record.links.iter().all(|m| m.from == "n00"));
            largest = largest.max(record.links.len());
        }
        if report.store_writes() == 1 {
            publications.push(now);
        }
        publish(&store, "n00", &report).await.unwrap();
    }
    assert!(publications.len() >= 5, "{publications:?}");
    for pair in publications.windows(2) {
        assert!(pair[1] - pair[0] >= 30_000, "{publications:?}");
    }
    // 3 new peers per round, 6 rounds per interval: one record carries many links, bounded.
    assert_eq!(largest, 12, "the record is bounded by max_links_published");
    let stored = store
        .get_node_links("n00")
        .await
        .unwrap()
        .expect("a record");
    assert_eq!(stored.links.len(), 12);
    let read = store.list_measurements().await.unwrap();
    assert_eq!(read.len(), 12);
    assert!(
        read.iter()
            .all(|m| m.from == "n00" && (m.rtt_ms - 4.0).abs() < 1.0)
    );
    let matrix = store.load_state().await.unwrap().network;
    assert_eq!(matrix.len(), 12);
}

/// A publication that did not reach the store is made again at the next round, record and
/// coordinate, instead of waiting for the values to change again.
#[tokio::test]
async fn a_failed_publication_is_retried_at_the_next_round() {
    let network = SimulatedNetwork::new(link(6.0), 2);
    let mut prober = Prober::new("a", config(), 4).unwrap();
    let endpoint = network.endpoint("a");
    let peers = [peer("b", true)];
    let first = prober.round(&endpoint, &peers, 0).await;
    assert!(first.links.is_some() && first.coordinate.is_some());
    // Nothing changed and the interval has not passed: nothing to publish...
    let quiet = prober.round(&endpoint, &peers, INTERVAL_MS).await;
    assert_eq!(quiet.store_writes(), 0);
    // ...unless the last write failed.
    prober.publication_failed();
    let again = prober.round(&endpoint, &peers, 2 * INTERVAL_MS).await;
    let record = again.links.expect("the record again");
    assert_eq!(record.links.len(), 1);
    assert!((record.links[0].rtt_ms - 6.0).abs() < 0.5);
    assert!(again.coordinate.is_some());
    let after = prober.round(&endpoint, &peers, 3 * INTERVAL_MS).await;
    assert_eq!(after.store_writes(), 0, "and only once");
}
