//! Routes and handlers.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use orion_core::model::spec::{ServiceSpec, SpecFormat, parse_port, parse_spec};
use orion_core::model::{DesiredState, NetworkMatrix, Node, NodeStatus, Task};
use orion_core::runtime::Runtime;
use orion_core::scheduler::ClusterView;
use orion_core::store::{ClusterStore, VersionedService};
use serde::Deserialize;

use super::errors::{ApiResult, HttpError};
use super::logs;
use super::types::{ClusterStatus, ScaleRequest, ServiceStatus, SimpleTaskRequest};
use crate::node::SharedStore;

/// Largest request body accepted (a spec file is a few KiB).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// What the API needs from the node about the cluster (Raft and membership).
#[async_trait::async_trait]
pub trait ClusterInfo: Send + Sync + 'static {
    async fn status(&self) -> ClusterStatus;
}

/// Shared state of every handler.
#[derive(Clone)]
pub struct ApiState {
    pub store: ClusterStore<SharedStore>,
    pub node_id: String,
    pub runtime: Arc<dyn Runtime>,
    pub cluster: Arc<dyn ClusterInfo>,
    pub http: reqwest::Client,
}

/// The API's routes.
pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/v1/healthz", get(healthz))
        .route("/v1/services", get(list_services).post(create_service))
        .route(
            "/v1/services/{name}",
            get(get_service).put(put_service).delete(delete_service),
        )
        .route("/v1/services/{name}/scale", post(scale_service))
        .route("/v1/services/{name}/logs", get(logs::service_logs))
        .route("/v1/tasks", get(list_tasks))
        .route("/v1/tasks/{id}", get(get_task).delete(stop_task))
        .route("/v1/tasks/{id}/logs", get(logs::task_logs))
        .route("/tasks", post(simple_task))
        .route("/v1/nodes", get(list_nodes))
        .route("/v1/nodes/{id}", get(get_node))
        .route("/v1/nodes/{id}/drain", post(drain_node))
        .route("/v1/cluster", get(cluster_status))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

async fn healthz() -> &'static str {
    "ok"
}

async fn status_of(state: &ApiState, svc: VersionedService) -> ApiResult<ServiceStatus> {
    let tasks = state.store.tasks_of_service(&svc.spec.name).await?;
    Ok(ServiceStatus::new(svc.spec, svc.spec_version, &tasks))
}

async fn list_services(State(state): State<ApiState>) -> ApiResult<Json<Vec<ServiceStatus>>> {
    let services = state.store.list_services().await?;
    let tasks = state.store.list_tasks().await?;
    let mut by_service: HashMap<&str, Vec<Task>> = HashMap::new();
    for t in &tasks {
        by_service.entry(&t.service).or_default().push(t.clone());
    }
    Ok(Json(
        services
            .into_iter()
            .map(|s| {
                let tasks = by_service.get(s.spec.name.as_str()).map(Vec::as_slice);
                ServiceStatus::new(s.spec, s.spec_version, tasks.unwrap_or_default())
            })
            .collect(),
    ))
}

/// Reads a spec body in the format its content type names (JSON or YAML; sniffed otherwise).
fn spec_from_body(headers: &HeaderMap, body: &str) -> ApiResult<ServiceSpec> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let format = if content_type.contains("json") {
        SpecFormat::Json
    } else if content_type.contains("yaml") {
        SpecFormat::Yaml
    } else {
        SpecFormat::Auto
    };
    if body.trim().is_empty() {
        return Err(HttpError::bad_request(
            "empty body: send a service spec as JSON or YAML",
        ));
    }
    Ok(parse_spec(body, format)?)
}

async fn create_service(
    State(state): State<ApiState>,
    headers: HeaderMap,
    body: String,
) -> ApiResult<(StatusCode, Json<ServiceStatus>)> {
    let spec = spec_from_body(&headers, &body)?;
    if state.store.get_service(&spec.name).await?.is_some() {
        return Err(HttpError::new(
            StatusCode::CONFLICT,
            format!(
                "service {:?} exists; update it with PUT /v1/services/{}",
                spec.name, spec.name
            ),
        ));
    }
    let stored = state.store.put_service(&spec).await?;
    Ok((StatusCode::CREATED, Json(status_of(&state, stored).await?)))
}

async fn put_service(
    State(state): State<ApiState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: String,
) -> ApiResult<Json<ServiceStatus>> {
    let spec = spec_from_body(&headers, &body)?;
    if spec.name != name {
        return Err(HttpError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!(
                "name: the body names service {:?} but the path names {name:?}; they must match",
                spec.name
            ),
        ));
    }
    let stored = state.store.put_service(&spec).await?;
    Ok(Json(status_of(&state, stored).await?))
}

async fn get_service(
    State(state): State<ApiState>,
    Path(name): Path<String>,
) -> ApiResult<Json<ServiceStatus>> {
    let svc = state
        .store
        .get_service(&name)
        .await?
        .ok_or_else(|| HttpError::not_found("service", &name))?;
    Ok(Json(status_of(&state, svc).await?))
}

async fn delete_service(
    State(state): State<ApiState>,
    Path(name): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    if !state.store.delete_service(&name).await? {
        return Err(HttpError::not_found("service", &name));
    }
    Ok(Json(serde_json::json!({ "deleted": name })))
}

async fn scale_service(
    State(state): State<ApiState>,
    Path(name): Path<String>,
    body: Option<Json<ScaleRequest>>,
) -> ApiResult<Json<ServiceStatus>> {
    let Some(Json(req)) = body else {
        return Err(HttpError::bad_request(
            "body: expected JSON {\"replicas\": N}",
        ));
    };
    let mut svc = state
        .store
        .get_service(&name)
        .await?
        .ok_or_else(|| HttpError::not_found("service", &name))?;
    svc.spec.replicas = req.replicas;
    svc.spec.validate().map_err(orion_core::Error::from)?;
    let stored = state.store.put_service(&svc.spec).await?;
    Ok(Json(status_of(&state, stored).await?))
}

#[derive(Debug, Deserialize)]
struct TaskQuery {
    service: Option<String>,
    node: Option<String>,
    #[serde(default)]
    all: bool,
}

async fn list_tasks(
    State(state): State<ApiState>,
    Query(q): Query<TaskQuery>,
) -> ApiResult<Json<Vec<Task>>> {
    let tasks = match (&q.service, &q.node) {
        (Some(s), _) => state.store.tasks_of_service(s).await?,
        (None, Some(n)) => state.store.tasks_on_node(n).await?,
        (None, None) => state.store.list_tasks().await?,
    };
    Ok(Json(
        tasks
            .into_iter()
            .filter(|t| q.node.as_ref().is_none_or(|n| t.node.as_ref() == Some(n)))
            .filter(|t| q.all || !t.state.is_terminal())
            .collect(),
    ))
}

async fn get_task(State(state): State<ApiState>, Path(id): Path<String>) -> ApiResult<Json<Task>> {
    let task = state
        .store
        .get_task(&id)
        .await?
        .ok_or_else(|| HttpError::not_found("task", &id))?;
    Ok(Json(task))
}

async fn stop_task(State(state): State<ApiState>, Path(id): Path<String>) -> ApiResult<Json<Task>> {
    if state.store.get_task(&id).await?.is_none() {
        return Err(HttpError::not_found("task", &id));
    }
    let task = state
        .store
        .update_task(&id, |t| {
            t.desired = DesiredState::Shutdown;
            Ok(())
        })
        .await?;
    Ok(Json(task))
}

/// Seed 001's `POST /tasks`: a one-replica service from an image, memory and port bindings.
async fn simple_task(
    State(state): State<ApiState>,
    body: Option<Json<SimpleTaskRequest>>,
) -> ApiResult<(StatusCode, Json<ServiceStatus>)> {
    let Some(Json(req)) = body else {
        return Err(HttpError::bad_request(
            "body: expected JSON {\"image\": \"nginx\", \"memory\": 100000000, \"portBindings\": {\"80/tcp\": \"8080\"}}",
        ));
    };
    let name = req
        .name
        .clone()
        .unwrap_or_else(|| crate::commands::service_name_from_image(&req.image));
    let mut spec = ServiceSpec::new(name, &req.image, 1);
    if let Some(memory) = req.memory {
        spec.resources.memory_bytes = memory;
    }
    spec.env = req.env.clone();
    spec.command = req.command.clone();
    for (container, host) in &req.port_bindings {
        // `"80/tcp": "8080"` is the spec's `8080:80/tcp`; an empty host port is dynamic.
        let (port, proto) = container.split_once('/').unwrap_or((container, "tcp"));
        let host = if host.is_empty() { "0" } else { host };
        let port = parse_port(&format!("{host}:{port}/{proto}")).map_err(|e| {
            HttpError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("portBindings.{container}: {e}"),
            )
        })?;
        spec.ports.push(port);
    }
    spec.validate().map_err(orion_core::Error::from)?;
    let stored = state.store.put_service(&spec).await?;
    Ok((StatusCode::CREATED, Json(status_of(&state, stored).await?)))
}

async fn list_nodes(State(state): State<ApiState>) -> ApiResult<Json<Vec<Node>>> {
    let nodes = state.store.list_nodes().await?;
    let tasks = state.store.list_tasks().await?;
    // The scheduler's view already sums what each node's tasks hold.
    let view = ClusterView::new(nodes, &tasks, NetworkMatrix::new());
    let nodes = view.nodes().iter().map(|nv| Node {
        allocated: nv.allocated,
        ..nv.node.clone()
    });
    Ok(Json(nodes.collect()))
}

async fn get_node(State(state): State<ApiState>, Path(id): Path<String>) -> ApiResult<Json<Node>> {
    let node = state
        .store
        .get_node(&id)
        .await?
        .ok_or_else(|| HttpError::not_found("node", &id))?;
    Ok(Json(node))
}

async fn drain_node(
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Node>> {
    if state.store.get_node(&id).await?.is_none() {
        return Err(HttpError::not_found("node", &id));
    }
    let node = state
        .store
        .update_node(&id, |n| {
            if n.status == NodeStatus::Ready {
                n.status = NodeStatus::Draining;
            }
            Ok(())
        })
        .await?;
    Ok(Json(node))
}

async fn cluster_status(State(state): State<ApiState>) -> impl IntoResponse {
    Json(state.cluster.status().await)
}
