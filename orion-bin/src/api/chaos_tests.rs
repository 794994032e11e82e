//! Handler tests of `/v1/chaos` and `/v1/plan` on an in-memory store.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use orion_core::model::{Node, Resources};
use orion_core::store::MemoryStore;

use super::chaos::{list, node_failure, partition, stop};
use super::plan::{PlanResult, plan};
use super::routes::{ApiSettings, ApiState};
use super::tests::{json, state_on};

async fn cluster(nodes: &[(&str, u64)]) -> ApiState {
    let state = state_on(Arc::new(MemoryStore::new()), ApiSettings::default());
    for (id, gib) in nodes {
        let node = Node::new(*id, Resources::new(4000, gib << 30));
        state.store.put_node(&node).await.unwrap();
    }
    state
}

async fn error_of(resp: impl IntoResponse) -> (StatusCode, String) {
    let resp = resp.into_response();
    let status = resp.status();
    (
        status,
        json(resp).await["error"].as_str().unwrap_or("").to_owned(),
    )
}

#[tokio::test]
async fn a_lone_node_refuses_chaos_saying_why() {
    let state = cluster(&[("n1", 8)]).await;
    let body = r#"{"target": "n1", "duration": "5s"}"#.to_owned();
    let (status, error) = error_of(node_failure(State(state), body).await.unwrap_err()).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(error.contains("at least two nodes"), "{error}");
}

#[tokio::test]
async fn faults_are_checked_stored_listed_and_stopped() {
    let state = cluster(&[("n1", 8), ("n2", 8), ("n3", 8)]).await;
    let bad = r#"{"target": "n9", "duration": "5s"}"#.to_owned();
    let (status, error) =
        error_of(node_failure(State(state.clone()), bad).await.unwrap_err()).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        error.contains("n9") && error.contains("n1, n2, n3"),
        "{error}"
    );
    let unknown_field = r#"{"partition": "n1:n2", "duration": "5s", "x": 1}"#.to_owned();
    let (status, _) = error_of(
        partition(State(state.clone()), unknown_field)
            .await
            .unwrap_err(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let ok = r#"{"partition": "n1,n2:n3", "duration": "30s"}"#.to_owned();
    let (status, created) = partition(State(state.clone()), ok).await.unwrap();
    assert_eq!(status, StatusCode::CREATED);
    assert!(created[0].active && created[0].remaining_ms <= 30_000);
    let listed = list(State(state.clone())).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].fault.id, created[0].fault.id);
    let stopped = stop(State(state.clone())).await.unwrap();
    assert_eq!(stopped.stopped.len(), 1);
    assert!(list(State(state)).await.unwrap().is_empty());
}

#[tokio::test]
async fn plan_ranks_feasible_nodes_explains_rejected_ones_and_writes_nothing() {
    let state = cluster(&[("big", 8), ("small", 1), ("mid", 4)]).await;
    let spec = r#"{"name": "web", "image": "nginx", "replicas": 2,
                   "resources": {"cpu_millicores": 100, "memory_bytes": 2147483648}}"#;
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, "application/json".parse().unwrap());
    let admin = axum::Extension(super::tokens::Caller {
        token_id: "t".into(),
        role: super::tokens::Role::Admin,
        scope: None,
    });
    let result: PlanResult = plan(State(state.clone()), admin, headers, spec.to_owned())
        .await
        .unwrap()
        .0;
    assert_eq!(result.nodes.len(), 3);
    let small = result.nodes.iter().find(|n| n.node == "small").unwrap();
    assert!(!small.feasible && small.rank.is_none());
    assert!(
        small.reason.as_deref().unwrap().contains("memory"),
        "{small:?}"
    );
    assert!(small.rejection.is_some());
    assert_eq!(result.nodes[0].rank, Some(1));
    assert!(
        result.nodes[..2]
            .iter()
            .all(|n| n.feasible && !n.scores.is_empty())
    );
    assert_eq!(result.placements.len(), 2);
    assert!(
        result
            .placements
            .iter()
            .all(|p| p.node.as_deref() != Some("small"))
    );
    assert!(state.store.get_service("web").await.unwrap().is_none());
    assert!(state.store.list_tasks().await.unwrap().is_empty());
}
