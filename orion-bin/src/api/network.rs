//! `GET /v1/network`: the network between the nodes as measured by their probers, with the pairs
//! nobody measured estimated from the nodes' Vivaldi coordinates (marked `"estimated": true`).

use std::collections::{BTreeMap, BTreeSet};

use axum::Json;
use axum::extract::State;
use orion_core::model::{Millis, NetworkCoordinate};
use serde::{Deserialize, Serialize};

use super::errors::ApiResult;
use super::routes::ApiState;

/// Above this many nodes, estimated pairs are left out (their number grows as n²).
pub const MAX_NODES_ESTIMATED: usize = 200;

/// The answer of `GET /v1/network`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NetworkView {
    /// Every node, sorted by id.
    pub nodes: Vec<String>,
    /// Measured pairs (directed, as published by `from`'s prober), then estimated ones (one per
    /// unordered pair measured in neither direction, when both nodes have a coordinate).
    pub pairs: Vec<NetworkPair>,
    /// True when estimates were left out because there are more than [`MAX_NODES_ESTIMATED`] nodes.
    #[serde(default)]
    pub estimates_omitted: bool,
}

/// One pair of nodes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NetworkPair {
    pub from: String,
    pub to: String,
    pub rtt_ms: f64,
    /// Only for measured pairs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rtt_p90_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jitter_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loss: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bandwidth_mbps: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stability: Option<f64>,
    #[serde(default)]
    pub link_down: bool,
    #[serde(default)]
    pub measured_at: Millis,
    /// True when the RTT is a Vivaldi estimate, not a measurement.
    pub estimated: bool,
}

/// `GET /v1/network`.
pub(super) async fn network(State(state): State<ApiState>) -> ApiResult<Json<NetworkView>> {
    let nodes: BTreeSet<String> = state
        .store
        .list_nodes()
        .await?
        .into_iter()
        .map(|n| n.id)
        .collect();
    let measurements = state.store.list_measurements().await?;
    let coordinates: BTreeMap<String, NetworkCoordinate> = state
        .store
        .list_coordinates()
        .await?
        .into_iter()
        .map(|c| (c.node.clone(), c))
        .collect();
    let mut measured: BTreeSet<(String, String)> = BTreeSet::new();
    let mut pairs = Vec::with_capacity(measurements.len());
    for m in measurements {
        measured.insert(unordered(&m.from, &m.to));
        pairs.push(NetworkPair {
            rtt_p90_ms: Some(m.rtt_p90_ms),
            jitter_ms: Some(m.jitter_ms),
            loss: Some(m.loss),
            bandwidth_mbps: m.bandwidth_mbps,
            stability: Some(m.stability),
            link_down: m.link_down,
            measured_at: m.measured_at,
            estimated: false,
            rtt_ms: m.rtt_ms,
            from: m.from,
            to: m.to,
        });
    }
    let estimates_omitted = nodes.len() > MAX_NODES_ESTIMATED;
    if !estimates_omitted {
        let ids: Vec<&String> = nodes.iter().collect();
        for (i, a) in ids.iter().enumerate() {
            for b in &ids[i + 1..] {
                if measured.contains(&unordered(a, b)) {
                    continue;
                }
                let (Some(ca), Some(cb)) = (coordinates.get(*a), coordinates.get(*b)) else {
                    continue;
                };
                if let Some(rtt_ms) = ca.estimate_rtt_ms(cb) {
                    pairs.push(NetworkPair {
                        from: (*a).clone(),
                        to: (*b).clone(),
                        rtt_ms,
                        measured_at: ca.updated_at.min(cb.updated_at),
                        estimated: true,
                        ..NetworkPair::default()
                    });
                }
            }
        }
    }
    Ok(Json(NetworkView {
        nodes: nodes.into_iter().collect(),
        pairs,
        estimates_omitted,
    }))
}

fn unordered(a: &str, b: &str) -> (String, String) {
    if a <= b {
        (a.to_string(), b.to_string())
    } else {
        (b.to_string(), a.to_string())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use orion_core::model::{NetworkMeasurement, Node, Resources};
    use orion_core::runtime::FakeRuntime;
    use orion_core::store::{ClusterStore, MemoryStore};

    use super::*;
    use crate::api::routes::{ApiSettings, ClusterInfo};
    use crate::api::types::ClusterStatus;

    struct NoCluster;

    #[async_trait::async_trait]
    impl ClusterInfo for NoCluster {
        async fn status(&self) -> ClusterStatus {
            ClusterStatus::default()
        }
    }

    #[tokio::test]
    async fn measured_pairs_then_estimated_ones_marked_as_such() {
        let store = ClusterStore::new(Arc::new(MemoryStore::new()) as crate::api::SharedStore);
        for id in ["a", "b", "c"] {
            store
                .put_node(&Node::new(id, Resources::new(1000, 1 << 30)))
                .await
                .unwrap();
            store
                .put_coordinate(&NetworkCoordinate {
                    node: id.into(),
                    position: vec![if id == "c" { 30.0 } else { 0.0 }, 0.0, 0.0],
                    height_ms: 1.0,
                    error: 0.1,
                    updated_at: 7,
                })
                .await
                .unwrap();
        }
        store
            .put_measurement(&NetworkMeasurement {
                from: "a".into(),
                to: "b".into(),
                rtt_ms: 2.0,
                loss: 0.01,
                ..Default::default()
            })
            .await
            .unwrap();
        let state = ApiState {
            local_store: store.inner().clone(),
            store,
            node_id: "a".into(),
            runtime: Arc::new(FakeRuntime::new()),
            cluster: Arc::new(NoCluster),
            http: reqwest::Client::new(),
            settings: ApiSettings::default(),
            scheduler: Arc::new(orion_core::scheduler::Scheduler::default_pipeline(
                Default::default(),
            )),
            metrics: Arc::new(crate::metrics::Metrics::new()),
            secrets: None,
            events: Default::default(),
        };
        let Ok(Json(view)) = network(State(state)).await else {
            panic!("GET /v1/network failed");
        };
        assert_eq!(view.nodes, ["a", "b", "c"]);
        let measured: Vec<_> = view.pairs.iter().filter(|p| !p.estimated).collect();
        assert_eq!(measured.len(), 1);
        assert_eq!((measured[0].rtt_ms, measured[0].loss), (2.0, Some(0.01)));
        let estimated: Vec<_> = view.pairs.iter().filter(|p| p.estimated).collect();
        // a-b is measured; a-c and b-c are estimated: 30 ms apart plus two 1 ms heights.
        assert_eq!(estimated.len(), 2);
        assert!(
            estimated
                .iter()
                .all(|p| p.rtt_ms == 32.0 && p.loss.is_none())
        );
        let json = serde_json::to_value(&view).unwrap();
        assert_eq!(json["pairs"][1]["estimated"], true);
    }
}
