//! `/v1/chaos`: faults kept in the replicated store (see [`crate::chaos`]) and applied by every
//! node. Creating one checks every value and every node name; a cluster with fewer than two
//! nodes refuses chaos (faults act on node-to-node links, and a lone node has none).
//!
//! Authorization: listing needs a token with the read access; creating and stopping faults
//! need the admin role.

use std::collections::BTreeSet;

use axum::Json;
use axum::extract::State;
use axum::http::Method;
use axum::http::StatusCode;
use orion_core::store::{Compare, Op, Txn};
use serde::de::DeserializeOwned;

use super::access::{Access, RouteTable};
use super::errors::{ApiResult, HttpError};
use super::routes::ApiState;
use crate::chaos::applier::read_faults;
use crate::chaos::{
    ChaosFault, ChaosStatus, LatencyRequest, MAX_FAULTS, MonkeyRequest, NodeFailureRequest,
    PartitionRequest, StopResult, now_ms, random_u64,
};

/// The chaos routes, to merge into the API's route table.
pub fn routes() -> RouteTable {
    RouteTable::default()
        .add(Method::GET, "/v1/chaos", Access::Read, list)
        .add(Method::DELETE, "/v1/chaos", Access::Admin, stop)
        .add(Method::POST, "/v1/chaos/latency", Access::Admin, latency)
        .add(
            Method::POST,
            "/v1/chaos/network-partition",
            Access::Admin,
            partition,
        )
        .add(
            Method::POST,
            "/v1/chaos/node-failure",
            Access::Admin,
            node_failure,
        )
        .add(Method::POST, "/v1/chaos/monkey", Access::Admin, monkey)
}

fn unprocessable(message: impl Into<String>) -> HttpError {
    HttpError::new(StatusCode::UNPROCESSABLE_ENTITY, message)
}

/// Decodes a JSON body, refusing unknown fields with what is expected.
fn body<T: DeserializeOwned>(text: &str, example: &str) -> ApiResult<T> {
    if text.trim().is_empty() {
        return Err(HttpError::bad_request(format!(
            "empty body: expected JSON such as {example}"
        )));
    }
    serde_json::from_str(text)
        .map_err(|e| HttpError::bad_request(format!("body: {e}; expected JSON such as {example}")))
}

/// The cluster's node ids; refused below two nodes.
async fn known_nodes(state: &ApiState) -> ApiResult<BTreeSet<String>> {
    let known: BTreeSet<String> = state
        .store
        .list_nodes()
        .await?
        .into_iter()
        .map(|n| n.id)
        .collect();
    if known.len() < 2 {
        return Err(HttpError::new(
            StatusCode::CONFLICT,
            format!(
                "chaos needs a cluster of at least two nodes: faults act on the links between \
                 nodes, and this cluster has only {} (a single-node cluster started with \
                 `orion up` has no peers)",
                known.into_iter().collect::<Vec<_>>().join(", ")
            ),
        ));
    }
    Ok(known)
}

/// Stores `faults` in one transaction, with the expired entries removed, if the total stays
/// within [`MAX_FAULTS`].
async fn create(
    state: &ApiState,
    faults: Vec<ChaosFault>,
) -> ApiResult<(StatusCode, Json<Vec<ChaosStatus>>)> {
    let store = state.store.inner();
    let existing = read_faults(&**store).await?;
    let now = now_ms();
    let live = existing.iter().filter(|(f, _)| !f.expired_at(now)).count();
    if live + faults.len() > MAX_FAULTS {
        return Err(HttpError::new(
            StatusCode::CONFLICT,
            format!(
                "too many chaos faults: {live} active or scheduled, {} more asked, at most \
                 {MAX_FAULTS}; end some with `orion chaos stop` (DELETE /v1/chaos)",
                faults.len()
            ),
        ));
    }
    let mut txn = Txn::new();
    for (f, rev) in existing.iter().filter(|(f, _)| f.expired_at(now)) {
        txn = txn
            .when(Compare::ModRevision(f.key(), *rev))
            .and_then(Op::Delete(f.key()));
    }
    for f in &faults {
        let value = serde_json::to_vec(f).map_err(|e| {
            HttpError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("encoding a fault: {e}"),
            )
        })?;
        txn = txn
            .when(Compare::Missing(f.key()))
            .and_then(Op::Put(f.key(), value));
    }
    if !store.txn(txn).await?.succeeded {
        return Err(HttpError::new(
            StatusCode::CONFLICT,
            "the chaos faults changed meanwhile; try again",
        ));
    }
    let now = now_ms();
    Ok((
        StatusCode::CREATED,
        Json(
            faults
                .into_iter()
                .map(|f| ChaosStatus::at(f, now))
                .collect(),
        ),
    ))
}

pub(super) async fn latency(
    State(state): State<ApiState>,
    text: String,
) -> ApiResult<(StatusCode, Json<Vec<ChaosStatus>>)> {
    let req: LatencyRequest = body(
        &text,
        r#"{"increase": "100ms", "nodes": ["n1"] or "all", "duration": "2m"}"#,
    )?;
    let known = known_nodes(&state).await?;
    let fault = req.into_fault(now_ms(), &known).map_err(unprocessable)?;
    create(&state, vec![fault]).await
}

pub(super) async fn partition(
    State(state): State<ApiState>,
    text: String,
) -> ApiResult<(StatusCode, Json<Vec<ChaosStatus>>)> {
    let req: PartitionRequest = body(&text, r#"{"partition": "n1,n2:n3", "duration": "30s"}"#)?;
    let known = known_nodes(&state).await?;
    let fault = req.into_fault(now_ms(), &known).map_err(unprocessable)?;
    create(&state, vec![fault]).await
}

pub(super) async fn node_failure(
    State(state): State<ApiState>,
    text: String,
) -> ApiResult<(StatusCode, Json<Vec<ChaosStatus>>)> {
    let req: NodeFailureRequest = body(&text, r#"{"target": "n2", "duration": "60s"}"#)?;
    let known = known_nodes(&state).await?;
    let fault = req.into_fault(now_ms(), &known).map_err(unprocessable)?;
    create(&state, vec![fault]).await
}

pub(super) async fn monkey(
    State(state): State<ApiState>,
    text: String,
) -> ApiResult<(StatusCode, Json<Vec<ChaosStatus>>)> {
    let req: MonkeyRequest = body(
        &text,
        r#"{"interval": "5m", "severity": "low|medium|high", "duration": "50m"}"#,
    )?;
    let known = known_nodes(&state).await?;
    let faults = req
        .into_faults(now_ms(), &known, random_u64())
        .map_err(unprocessable)?;
    create(&state, faults).await
}

/// `GET /v1/chaos`: faults active now or scheduled, soonest end first.
pub(super) async fn list(State(state): State<ApiState>) -> ApiResult<Json<Vec<ChaosStatus>>> {
    let now = now_ms();
    let mut faults: Vec<ChaosStatus> = read_faults(&**state.store.inner())
        .await?
        .into_iter()
        .filter(|(f, _)| !f.expired_at(now))
        .map(|(f, _)| ChaosStatus::at(f, now))
        .collect();
    faults.sort_by_key(|s| (s.fault.starts_at, s.fault.expires_at));
    Ok(Json(faults))
}

/// `DELETE /v1/chaos`: ends every fault at once (active and scheduled).
pub(super) async fn stop(State(state): State<ApiState>) -> ApiResult<Json<StopResult>> {
    let store = state.store.inner();
    let existing = read_faults(&**store).await?;
    let now = now_ms();
    store
        .txn(Txn::new().and_then(Op::DeletePrefix(crate::chaos::PREFIX.to_owned())))
        .await?;
    Ok(Json(StopResult {
        stopped: existing
            .into_iter()
            .map(|(f, _)| f)
            .filter(|f| !f.expired_at(now))
            .collect(),
    }))
}
