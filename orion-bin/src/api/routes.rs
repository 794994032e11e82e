//! Routes and handlers.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::Method;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json, Router};
use orion_core::model::spec::{HostAccessPolicy, ServiceSpec, SpecLimits, parse_port};
use orion_core::model::{DesiredState, NetworkMatrix, Node, NodeStatus, Task};
use orion_core::runtime::Runtime;
use orion_core::scheduler::ClusterView;
use orion_core::store::{ClusterStore, Revision, VersionedService};
use serde::Deserialize;

use super::SharedStore;
use super::access::{Access, RouteTable, check_spec_for};
use super::errors::{self, ApiResult, HttpError};
use super::guard::ForgeryGuard;
use super::logs;
pub(super) use super::spec_body::spec_from_body;
use super::tokens::Caller;
use super::types::{ClusterStatus, ScaleRequest, ServiceStatus, SimpleTaskRequest};
use crate::config::Config;

/// Largest request body accepted (a spec file is a few KiB).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// What the API needs from the node about the cluster (Raft and membership).
#[async_trait::async_trait]
pub trait ClusterInfo: Send + Sync + 'static {
    async fn status(&self) -> ClusterStatus;

    /// Removes the node named `node` from the Raft membership (`orion cluster remove`).
    /// Errors: `NotFound` when it is not a member, `Conflict` for the leader itself or the last
    /// voter, `Unavailable` without a quorum. Not supported by a single-node cluster.
    async fn remove_member(&self, node: &str) -> orion_core::Result<()> {
        Err(orion_core::Error::Conflict(format!(
            "cannot remove {node:?}: this is a single-node cluster without Raft membership"
        )))
    }
}

/// Shared state of every handler.
#[derive(Clone)]
pub struct ApiState {
    pub store: ClusterStore<SharedStore>,
    /// The same store read locally as applied so far (stale reads, no quorum round trip), for
    /// what every request checks: its token. A token revoked or created is seen once this node
    /// has applied the change (milliseconds behind the leader when connected).
    pub local_store: SharedStore,
    pub node_id: String,
    pub runtime: Arc<dyn Runtime>,
    pub cluster: Arc<dyn ClusterInfo>,
    /// Client for other nodes' APIs (log proxy); build it with [`proxy_client`].
    pub http: reqwest::Client,
    pub settings: ApiSettings,
    /// The pipeline the leader places with, for `POST /v1/plan` (built from the same config).
    pub scheduler: Arc<orion_core::scheduler::Scheduler>,
    /// The node's metrics, served at `/metrics`; the API's own requests are recorded in them.
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Seals the secrets this node is given (`POST /v1/secrets/{name}`); `None`: refused (501).
    pub secrets: Option<Arc<orion_core::secrets::SecretSealer>>,
    /// The cluster events this node derived from the store (`GET /v1/events`).
    pub events: Arc<crate::events::EventLog>,
}

/// The API's bounds and access rules, from orion.yaml.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiSettings {
    /// Bounds every written spec and scale request is checked against.
    pub limits: SpecLimits,
    /// A request without a response by then is answered 408.
    pub request_timeout: Duration,
    /// Bound on another node's API answering (log proxy): response headers, and the whole
    /// response when not following.
    pub proxy_timeout: Duration,
    /// `api.metricsWithoutToken`: `/metrics` answers without a token.
    pub metrics_without_token: bool,
    /// `hostAccess`: what specs may ask of the hosts (admin tokens only).
    pub host_access: HostAccessPolicy,
    /// `api.allowedHosts` / `api.allowedOrigins`.
    pub forgery: ForgeryGuard,
    /// How other nodes' APIs are reached (log proxy): `https`, or `http` with
    /// `api.plainLoopback` (nodes of one cluster are expected to agree).
    pub peer_scheme: &'static str,
}

impl ApiSettings {
    /// The settings of `config` (`cluster.limits` and `api`).
    pub fn from_config(config: &Config) -> Self {
        ApiSettings {
            limits: config.cluster.limits.spec_limits(),
            request_timeout: config.api.request_timeout,
            proxy_timeout: config.api.proxy_timeout,
            metrics_without_token: config.api.metrics_without_token,
            host_access: config.host_access.clone(),
            forgery: config.api.forgery_guard(),
            peer_scheme: if config.api.plain_loopback {
                "http"
            } else {
                "https"
            },
        }
    }
}

impl Default for ApiSettings {
    fn default() -> Self {
        Self::from_config(&Config::default())
    }
}

/// The HTTP client the API uses to reach other nodes: connects within `proxy_timeout`, and
/// notices dead peers of long streams by TCP keepalive.
pub fn proxy_client(settings: &ApiSettings) -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .connect_timeout(settings.proxy_timeout)
        .tcp_keepalive(Duration::from_secs(15))
        .build()?)
}

/// Every route with the access it needs (see [`super::access`]): the one list the router is
/// built from and the authorization tests walk.
pub fn route_table() -> RouteTable {
    use Access::{Admin, Metrics, Open, Operate, Read};
    use Method as M;
    RouteTable::default()
        .add(M::GET, "/metrics", Metrics, metrics_text)
        .add(M::GET, "/healthz", Open, healthz)
        .add(M::GET, "/v1/healthz", Open, healthz)
        .add(M::GET, "/v1/openapi.json", Open, super::openapi::serve)
        .add(M::GET, "/v1/services", Read, list_services)
        .add(M::POST, "/v1/services", Operate, create_service)
        .add(M::GET, "/v1/services/{name}", Read, get_service)
        .add(M::PUT, "/v1/services/{name}", Operate, put_service)
        .add(M::DELETE, "/v1/services/{name}", Operate, delete_service)
        .add(M::POST, "/v1/services/{name}/scale", Operate, scale_service)
        .add(M::GET, "/v1/services/{name}/logs", Read, logs::service_logs)
        .add(M::GET, "/v1/tasks", Read, list_tasks)
        .add(M::GET, "/v1/tasks/{id}", Read, get_task)
        .add(M::DELETE, "/v1/tasks/{id}", Operate, stop_task)
        .add(M::GET, "/v1/tasks/{id}/logs", Read, logs::task_logs)
        .add(M::POST, "/tasks", Operate, simple_task)
        .add(M::GET, "/v1/nodes", Read, list_nodes)
        .add(M::GET, "/v1/nodes/{id}", Read, get_node)
        .add(M::POST, "/v1/nodes/{id}/drain", Operate, drain_node)
        .add(M::POST, "/v1/nodes/{id}/undrain", Operate, undrain_node)
        .add(M::GET, "/v1/cluster", Read, cluster_status)
        .add(M::GET, "/v1/network", Read, super::network::network)
        .add(
            M::DELETE,
            "/v1/cluster/members/{node}",
            Admin,
            remove_member,
        )
        .add(M::POST, "/v1/plan", Operate, super::plan::plan)
        .merge(super::chaos::routes())
        .merge(super::rollout::routes())
        .merge(super::secrets::routes())
        .merge(super::token_routes::routes())
        .merge(super::verbs::routes())
        .merge(super::join_tokens::routes())
}

/// The API's routes (from [`route_table`], each behind its access check), with the
/// browser-forgery guard, the request timeout of `state.settings`, JSON errors for everything
/// (unknown routes and methods included) and request metrics by matched route.
pub fn router(state: ApiState) -> Router {
    let timeout = super::server::request_timeout_layer(state.settings.request_timeout);
    let metrics = state.metrics.clone();
    let guard = Arc::new(state.settings.forgery.clone());
    let (routes, _) = route_table().finish(&state);
    routes
        .fallback(errors::unknown_route)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(timeout)
        .layer(axum::middleware::from_fn_with_state(
            guard,
            super::guard::refuse_forgeries,
        ))
        .layer(axum::middleware::from_fn(errors::json_errors))
        .layer(axum::middleware::from_fn_with_state(
            metrics,
            crate::metrics::track_requests,
        ))
        .with_state(state)
}

/// `GET /metrics`: every metric of the node, in the OpenMetrics text format when the `Accept`
/// header asks for `application/openmetrics-text` (as Prometheus does), in Prometheus' 0.0.4
/// text format otherwise. Raft, membership and pending-task gauges are read now; a store that
/// does not answer leaves the pending counts as they were.
async fn metrics_text(State(state): State<ApiState>, headers: HeaderMap) -> Response {
    let status = state.cluster.status().await;
    let tasks = state.store.list_tasks().await.ok();
    state.metrics.refresh(&status, tasks.as_deref());
    let openmetrics = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("application/openmetrics-text"));
    let (content_type, body) = if openmetrics {
        (crate::metrics::CONTENT_TYPE, state.metrics.encode())
    } else {
        (
            crate::metrics::CONTENT_TYPE_TEXT,
            state.metrics.encode_prometheus_text(),
        )
    };
    ([(header::CONTENT_TYPE, content_type)], body).into_response()
}

async fn healthz() -> &'static str {
    "ok"
}

async fn status_of(state: &ApiState, svc: VersionedService) -> ApiResult<ServiceStatus> {
    let tasks = state.store.tasks_of_service(&svc.spec.name).await?;
    let autoscale = match svc.spec.scale_policy {
        Some(_) => state
            .store
            .get_autoscale(&svc.spec.name)
            .await?
            .map(|r| r.0),
        None => None,
    };
    let mut status = ServiceStatus::new(svc.spec, svc.spec_version, &tasks).at(svc.mod_revision);
    status.autoscale = autoscale;
    Ok(status)
}

/// `status` as JSON with its revision as the ETag (what `If-Match` takes back).
fn tagged(code: StatusCode, status: ServiceStatus) -> Response {
    let etag = format!("\"{}\"", status.revision);
    (code, [(header::ETAG, etag)], Json(status)).into_response()
}

/// The revision an `If-Match` header names (`"17"`, `17` or `W/"17"`), if there is one.
pub(super) fn if_match(headers: &HeaderMap) -> ApiResult<Option<Revision>> {
    let Some(value) = headers.get(header::IF_MATCH) else {
        return Ok(None);
    };
    let text = value.to_str().unwrap_or("");
    let tag = text.trim().trim_start_matches("W/").trim_matches('"');
    tag.parse().map(Some).map_err(|_| {
        HttpError::bad_request(format!(
            "If-Match: got {text:?}, expected the revision from a service's ETag, e.g. \"17\""
        ))
    })
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
                    .at(s.mod_revision)
            })
            .collect(),
    ))
}

/// `POST /v1/services`: create-if-missing, atomically (409 when the name is taken).
async fn create_service(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    body: String,
) -> ApiResult<Response> {
    let spec = spec_from_body(&state, &caller, &headers, &body)?;
    super::secrets::check_references(&state, &spec).await?;
    let stored = super::traced::write(
        &state,
        &spec.name,
        Some(&headers),
        state.store.create_service(&spec),
    )
    .await?;
    Ok(tagged(
        StatusCode::CREATED,
        status_of(&state, stored).await?,
    ))
}

/// `PUT /v1/services/{name}`: create or replace; with `If-Match`, replace only the revision
/// named (409 when it changed since, 404 when it does not exist).
async fn put_service(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: String,
) -> ApiResult<Response> {
    let expected = if_match(&headers)?;
    let spec = spec_from_body(&state, &caller, &headers, &body)?;
    if spec.name != name {
        return Err(HttpError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!(
                "name: the body names service {:?} but the path names {name:?}; they must match",
                spec.name
            ),
        ));
    }
    super::secrets::check_references(&state, &spec).await?;
    let write = async {
        match expected {
            Some(revision) => state.store.put_service_if(&spec, revision).await,
            None => state.store.put_service(&spec).await,
        }
    };
    let stored = super::traced::write(&state, &name, Some(&headers), write).await?;
    Ok(tagged(StatusCode::OK, status_of(&state, stored).await?))
}

async fn get_service(
    State(state): State<ApiState>,
    Path(name): Path<String>,
) -> ApiResult<Response> {
    let svc = state
        .store
        .get_service(&name)
        .await?
        .ok_or_else(|| HttpError::not_found("service", &name))?;
    Ok(tagged(StatusCode::OK, status_of(&state, svc).await?))
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

/// `POST /v1/services/{name}/scale`: changes `replicas` only, by compare-and-swap on the
/// stored spec, so a concurrent update of anything else is kept.
pub(super) async fn scale_service(
    State(state): State<ApiState>,
    Path(name): Path<String>,
    body: Option<Json<ScaleRequest>>,
) -> ApiResult<Response> {
    let Some(Json(req)) = body else {
        return Err(HttpError::bad_request(
            "body: expected JSON {\"replicas\": N}",
        ));
    };
    let limits = state.settings.limits;
    if req.replicas > limits.max_replicas {
        return Err(HttpError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!(
                "replicas: got {}, expected at most {} (the cluster's replica limit, \
                 cluster.limits.maxReplicas)",
                req.replicas, limits.max_replicas
            ),
        ));
    }
    let write = state.store.update_service(&name, |spec| {
        spec.replicas = req.replicas;
        spec.validate_with(&limits).map_err(orion_core::Error::from)
    });
    let stored = super::traced::write(&state, &name, None, write).await?;
    Ok(tagged(StatusCode::OK, status_of(&state, stored).await?))
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
            .filter(|t| {
                q.node
                    .as_deref()
                    .is_none_or(|n| t.node.as_deref() == Some(n))
            })
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

/// The `POST /tasks` form: a one-replica service from an image, memory and port bindings.
/// Create-if-missing like `POST /v1/services`: an existing service is never replaced (409).
async fn simple_task(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    body: Option<Json<SimpleTaskRequest>>,
) -> ApiResult<Response> {
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
    spec.validate_with(&state.settings.limits)
        .map_err(orion_core::Error::from)?;
    check_spec_for(&state, &caller, &spec)?;
    let stored =
        super::traced::write(&state, &spec.name, None, state.store.create_service(&spec)).await?;
    Ok(tagged(
        StatusCode::CREATED,
        status_of(&state, stored).await?,
    ))
}

/// `nodes` with `allocated` summed from what their tasks hold, as the scheduler sees it.
fn with_allocation(nodes: Vec<Node>, tasks: &[Task]) -> Vec<Node> {
    let view = ClusterView::new(nodes, tasks, NetworkMatrix::new());
    view.nodes()
        .iter()
        .map(|nv| Node {
            allocated: nv.allocated,
            ..nv.node.clone()
        })
        .collect()
}

async fn list_nodes(State(state): State<ApiState>) -> ApiResult<Json<Vec<Node>>> {
    let nodes = state.store.list_nodes().await?;
    let tasks = state.store.list_tasks().await?;
    Ok(Json(with_allocation(nodes, &tasks)))
}

/// `GET /v1/nodes/{id}`: the node with its allocation, computed as for `GET /v1/nodes`.
pub(super) async fn get_node(
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Node>> {
    let node = state
        .store
        .get_node(&id)
        .await?
        .ok_or_else(|| HttpError::not_found("node", &id))?;
    let tasks = state.store.tasks_on_node(&id).await?;
    let node = with_allocation(vec![node], &tasks)
        .pop()
        .expect("one node in, one node out");
    Ok(Json(node))
}

/// `POST /v1/nodes/{id}/drain`: a ready node is `Draining` (nothing new is placed on it, and its
/// tasks move elsewhere); a node in any other state is answered as it is.
pub(super) async fn drain_node(
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Node>> {
    change_status(&state, &id, NodeStatus::Ready, NodeStatus::Draining).await
}

/// `POST /v1/nodes/{id}/undrain`: a draining node is `Ready` again (schedulable); a node in any
/// other state is answered as it is. Rebalancing moves replicas back to it gradually.
pub(super) async fn undrain_node(
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Node>> {
    change_status(&state, &id, NodeStatus::Draining, NodeStatus::Ready).await
}

/// Sets node `id`'s status to `to` if it is `from` (a compare-and-swap on the node record);
/// 404 for an unknown node.
async fn change_status(
    state: &ApiState,
    id: &str,
    from: NodeStatus,
    to: NodeStatus,
) -> ApiResult<Json<Node>> {
    if state.store.get_node(id).await?.is_none() {
        return Err(HttpError::not_found("node", id));
    }
    let node = state
        .store
        .update_node(id, |n| {
            if n.status == from {
                n.status = to;
            }
            Ok(())
        })
        .await?;
    Ok(Json(node))
}

async fn cluster_status(State(state): State<ApiState>) -> impl IntoResponse {
    Json(state.cluster.status().await)
}

/// `DELETE /v1/cluster/members/{node}`: removes a node from the Raft membership; answers the
/// cluster status after the change.
async fn remove_member(
    State(state): State<ApiState>,
    Path(node): Path<String>,
) -> ApiResult<Json<ClusterStatus>> {
    state.cluster.remove_member(&node).await?;
    Ok(Json(state.cluster.status().await))
}
