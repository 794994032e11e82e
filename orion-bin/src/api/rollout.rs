//! `/v1/services/{name}/rollout` and `/v1/services/{name}/restart`: a service's rollout (its
//! stored record, its replicas per spec version, its spec history) and the commands that steer
//! it. Everything is written to the replicated store; the leader's reconcile controller acts on
//! it (see `orion_core::reconciler::rollout`).

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use orion_core::model::now_millis;
use orion_core::reconciler::Rollout;
use serde::{Deserialize, Serialize};

use super::access::{Access, RouteTable};
use super::errors::{ApiResult, HttpError};
use super::routes::ApiState;

/// The rollout routes, to merge into the API's route table.
pub fn routes() -> RouteTable {
    use Access::{Operate, Read};
    use Method as M;
    RouteTable::default()
        .add(M::GET, "/v1/services/{name}/rollout", Read, status)
        .add(M::POST, "/v1/services/{name}/rollout/pause", Operate, pause)
        .add(
            M::POST,
            "/v1/services/{name}/rollout/resume",
            Operate,
            resume,
        )
        .add(
            M::POST,
            "/v1/services/{name}/rollout/promote",
            Operate,
            promote,
        )
        .add(M::POST, "/v1/services/{name}/rollout/undo", Operate, undo)
        .add(M::POST, "/v1/services/{name}/restart", Operate, restart)
}

/// One stored spec version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct HistoryEntry {
    pub version: u64,
    pub image: String,
    /// True for the service's current version.
    pub current: bool,
}

/// `GET /v1/services/{name}/rollout`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RolloutStatus {
    pub service: String,
    /// The service's current spec version.
    pub version: u64,
    /// The stored record, once the leader has written one for this version (`null` right after
    /// a change, until its next round).
    #[schema(value_type = Option<Object>)]
    pub rollout: Option<Rollout>,
    /// True when a canary runs and waits for `promote`.
    pub canary_waiting: bool,
    /// Active replicas per spec version.
    #[schema(value_type = BTreeMap<String, u32>)]
    pub replicas_by_version: BTreeMap<u64, u32>,
    /// Serving replicas per spec version.
    #[schema(value_type = BTreeMap<String, u32>)]
    pub serving_by_version: BTreeMap<u64, u32>,
    /// The stored spec versions, oldest first.
    pub history: Vec<HistoryEntry>,
}

/// `POST /v1/services/{name}/rollout/undo` body (optional).
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UndoRequest {
    /// The version to go back to; default: the one the current rollout replaced.
    #[serde(default)]
    pub to_version: Option<u64>,
}

async fn status(State(state): State<ApiState>, Path(name): Path<String>) -> ApiResult<Response> {
    Ok(Json(rollout_status(&state, &name).await?).into_response())
}

/// The rollout view of service `name`; 404 when it does not exist.
pub(super) async fn rollout_status(state: &ApiState, name: &str) -> ApiResult<RolloutStatus> {
    let service = state
        .store
        .get_service(name)
        .await?
        .ok_or_else(|| HttpError::from(orion_core::Error::not_found("service", name)))?;
    let record = state
        .store
        .get_rollout(name)
        .await?
        .map(|(r, _)| r)
        .filter(|r| r.version == service.spec_version);
    let mut replicas_by_version = BTreeMap::new();
    let mut serving_by_version = BTreeMap::new();
    for t in state.store.tasks_of_service(name).await? {
        if t.is_active() {
            *replicas_by_version.entry(t.spec_version).or_insert(0) += 1;
        }
        if t.is_active() && t.is_serving() {
            *serving_by_version.entry(t.spec_version).or_insert(0) += 1;
        }
    }
    let history = state
        .store
        .spec_history(name)
        .await?
        .into_iter()
        .map(|r| HistoryEntry {
            version: r.version,
            image: r.spec.image,
            current: r.version == service.spec_version,
        })
        .collect();
    Ok(RolloutStatus {
        service: name.to_owned(),
        version: service.spec_version,
        canary_waiting: record.as_ref().is_some_and(Rollout::canary_waiting),
        rollout: record,
        replicas_by_version,
        serving_by_version,
        history,
    })
}

/// Applies `change` to the current version's record; 409 when the leader has not written one
/// for it yet (right after a change) or when `change` refuses.
async fn change_record(
    state: &ApiState,
    name: &str,
    change: impl Fn(&mut Rollout, u64) -> orion_core::Result<()>,
) -> ApiResult<Response> {
    let service = state
        .store
        .get_service(name)
        .await?
        .ok_or_else(|| HttpError::from(orion_core::Error::not_found("service", name)))?;
    let version = service.spec_version;
    state
        .store
        .update_rollout(name, |r| {
            if r.version != version {
                return Err(orion_core::Error::Conflict(format!(
                    "the rollout of {name:?} version {version} has not been recorded by the \
                     leader yet; retry in a moment"
                )));
            }
            change(r, now_millis())
        })
        .await?;
    Ok(Json(rollout_status(state, name).await?).into_response())
}

async fn pause(State(state): State<ApiState>, Path(name): Path<String>) -> ApiResult<Response> {
    change_record(&state, &name, |r, now| r.pause(now)).await
}

async fn resume(State(state): State<ApiState>, Path(name): Path<String>) -> ApiResult<Response> {
    change_record(&state, &name, |r, now| r.resume(now)).await
}

async fn promote(State(state): State<ApiState>, Path(name): Path<String>) -> ApiResult<Response> {
    change_record(&state, &name, |r, now| r.promote(now)).await
}

async fn undo(
    State(state): State<ApiState>,
    Path(name): Path<String>,
    body: String,
) -> ApiResult<Response> {
    let req: UndoRequest = if body.trim().is_empty() {
        UndoRequest::default()
    } else {
        serde_json::from_str(&body).map_err(|e| {
            HttpError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("body: {e}; expected JSON {{\"to_version\": N}} or no body"),
            )
        })?
    };
    let reason = match req.to_version {
        Some(v) => format!("undone by hand to version {v}"),
        None => "undone by hand".to_owned(),
    };
    state
        .store
        .rollback_service(&name, req.to_version, &reason, now_millis(), None)
        .await?;
    Ok(Json(rollout_status(&state, &name).await?).into_response())
}

async fn restart(State(state): State<ApiState>, Path(name): Path<String>) -> ApiResult<Response> {
    state.store.restart_service(&name).await?;
    Ok(Json(rollout_status(&state, &name).await?).into_response())
}
