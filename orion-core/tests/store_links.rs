//! Per-node link records (`NodeLinks`, `/orion/links/<node>`): one write publishes a node's links
//! and coordinate; every reader sees them next to the per-link records, the per-node one winning.

use orion_core::model::{MAX_LINKS_PER_RECORD, NetworkCoordinate, NetworkMeasurement, NodeLinks};
use orion_core::store::{ClusterStore, MemoryStore, Store};

fn link(from: &str, to: &str, rtt_ms: f64) -> NetworkMeasurement {
    NetworkMeasurement {
        from: from.into(),
        to: to.into(),
        rtt_ms,
        ..NetworkMeasurement::default()
    }
}

fn record(from: &str, links: Vec<NetworkMeasurement>) -> NodeLinks {
    NodeLinks {
        from: from.into(),
        published_at: 7,
        links,
    }
}

#[tokio::test]
async fn one_write_publishes_links_and_coordinate_and_readers_see_them() {
    let store = ClusterStore::new(MemoryStore::new());
    // An older per-link record, and one the per-node record replaces.
    store.put_measurement(&link("c", "a", 30.0)).await.unwrap();
    store.put_measurement(&link("a", "b", 99.0)).await.unwrap();
    let coordinate = NetworkCoordinate {
        node: "a".into(),
        position: vec![1.0, 0.0, 0.0],
        height_ms: 0.5,
        error: 0.3,
        updated_at: 7,
    };
    let before = store.inner().revision().await.unwrap();
    let row = record("a", vec![link("a", "b", 2.0), link("a", "c", 4.0)]);
    store
        .publish_network("a", Some(&row), Some(&coordinate))
        .await
        .unwrap();
    assert_eq!(
        store.inner().revision().await.unwrap(),
        before + 1,
        "one write"
    );
    assert_eq!(store.get_node_links("a").await.unwrap(), Some(row));
    assert_eq!(store.get_coordinate("a").await.unwrap(), Some(coordinate));

    let all: Vec<(String, String, f64)> = store
        .list_measurements()
        .await
        .unwrap()
        .into_iter()
        .map(|m| (m.from, m.to, m.rtt_ms))
        .collect();
    assert_eq!(
        all,
        [
            ("a".into(), "b".into(), 2.0),
            ("a".into(), "c".into(), 4.0),
            ("c".into(), "a".into(), 30.0)
        ]
    );
    let matrix = store.load_state().await.unwrap().network;
    assert_eq!(matrix.len(), 3);
    assert_eq!(
        matrix.rtt_ms("a", "b"),
        Some(2.0),
        "the per-node record wins"
    );
    assert_eq!(store.network_matrix().await.unwrap(), matrix);

    // Nothing to publish writes nothing.
    let at = store.inner().revision().await.unwrap();
    assert_eq!(store.publish_network("a", None, None).await.unwrap(), None);
    assert_eq!(store.inner().revision().await.unwrap(), at);
}

#[tokio::test]
async fn records_are_checked() {
    let store = ClusterStore::new(MemoryStore::new());
    let bad = [
        record("b", vec![]),
        record("a", vec![link("x", "b", 1.0)]),
        record("a", vec![link("a", "b/c", 1.0)]),
        record("a", vec![link("a", "b", 1.0); MAX_LINKS_PER_RECORD + 1]),
    ];
    for row in bad {
        let error = store
            .publish_network("a", Some(&row), None)
            .await
            .unwrap_err()
            .to_string();
        assert!(error.contains("links"), "{error}");
    }
    let other = NetworkCoordinate {
        node: "z".into(),
        position: vec![0.0; 3],
        ..NetworkCoordinate::default()
    };
    assert!(
        store
            .publish_network("a", None, Some(&other))
            .await
            .is_err()
    );
    assert!(store.list_node_links().await.unwrap().is_empty());
}

#[tokio::test]
async fn deleting_a_node_s_measurements_covers_its_record_and_its_links_in_others() {
    let store = ClusterStore::new(MemoryStore::new());
    for row in [
        record("a", vec![link("a", "b", 1.0), link("a", "c", 2.0)]),
        record("b", vec![link("b", "a", 1.0)]),
        record("c", vec![link("c", "b", 3.0)]),
    ] {
        let from = row.from.clone();
        store
            .publish_network(&from, Some(&row), None)
            .await
            .unwrap();
    }
    store.put_measurement(&link("c", "a", 5.0)).await.unwrap();
    assert_eq!(store.delete_measurements_of("a").await.unwrap(), 4);
    let left: Vec<(String, String)> = store
        .list_measurements()
        .await
        .unwrap()
        .into_iter()
        .map(|m| (m.from, m.to))
        .collect();
    assert_eq!(left, [("c".to_string(), "b".to_string())]);
    assert_eq!(store.get_node_links("a").await.unwrap(), None);
    assert_eq!(
        store
            .get_node_links("b")
            .await
            .unwrap()
            .map(|r| r.links.len()),
        Some(0)
    );
}
