//! One operation per route of the route table, for the OpenAPI document: the parameters, the
//! body and the answers of each handler. These functions are never called; utoipa reads their
//! attributes. A unit test checks that they and the route table name the same routes.

#![allow(dead_code)]

use crate::api::join_tokens::RotatedJoinToken;
use crate::api::rollout::{RolloutStatus, UndoRequest};
use crate::api::secrets::SecretInfo;
use crate::api::tokens::{CreatedToken, TokenInfo, TokenRequest};
use crate::api::types::{ClusterStatus, ScaleRequest, ServiceStatus, SimpleTaskRequest};
use crate::api::verbs::{ExecRequest, ExecResponse};
use crate::chaos::{LatencyRequest, MonkeyRequest, NodeFailureRequest, PartitionRequest};

// ---- meta ----

#[utoipa::path(get, path = "/healthz", tag = "meta",
    responses((status = 200, description = "`ok` once the node serves", body = String, content_type = "text/plain")))]
fn healthz() {}

#[utoipa::path(get, path = "/v1/healthz", tag = "meta",
    responses((status = 200, description = "`ok` once the node serves", body = String, content_type = "text/plain")))]
fn healthz_v1() {}

#[utoipa::path(get, path = "/metrics", tag = "meta",
    description = "Prometheus metrics: OpenMetrics text when `Accept` asks for it, Prometheus 0.0.4 text otherwise. Needs a token unless `api.metricsWithoutToken` is set.",
    responses((status = 200, description = "the node's metrics", body = String, content_type = "text/plain")))]
fn metrics() {}

#[utoipa::path(get, path = "/v1/openapi.json", tag = "meta",
    responses((status = 200, description = "this document (OpenAPI 3.1)", body = Object)))]
fn openapi() {}

// ---- services ----

#[utoipa::path(get, path = "/v1/services", tag = "services",
    responses((status = 200, description = "every service with its replica counts", body = Vec<ServiceStatus>)))]
fn list_services() {}

#[utoipa::path(post, path = "/v1/services", tag = "services",
    description = "Creates a service from a spec (docs/spec.md) in JSON or YAML; 409 if it exists.",
    request_body(description = "a service spec", content((Object = "application/json"), (String = "application/yaml"))),
    responses((status = 201, description = "created; `ETag` is its revision", body = ServiceStatus)))]
fn create_service() {}

#[utoipa::path(get, path = "/v1/services/{name}", tag = "services",
    params(("name" = String, Path, description = "service name", example = "web")),
    responses((status = 200, description = "the service; `ETag` is its revision", body = ServiceStatus)))]
fn get_service() {}

#[utoipa::path(put, path = "/v1/services/{name}", tag = "services",
    description = "Creates or replaces; the body's name must match the path. With `If-Match` only that revision is replaced.",
    params(("name" = String, Path, description = "service name", example = "web"),
           ("If-Match" = Option<String>, Header, description = "a revision: `\"17\"`, `17` or `W/\"17\"`")),
    request_body(description = "a service spec", content((Object = "application/json"), (String = "application/yaml"))),
    responses((status = 200, description = "replaced", body = ServiceStatus),
              (status = 201, description = "created", body = ServiceStatus)))]
fn put_service() {}

#[utoipa::path(delete, path = "/v1/services/{name}", tag = "services",
    params(("name" = String, Path, description = "service name", example = "web")),
    responses((status = 200, description = "`{\"deleted\": name}`; its tasks are stopped", body = Object)))]
fn delete_service() {}

#[utoipa::path(post, path = "/v1/services/{name}/scale", tag = "services",
    params(("name" = String, Path, description = "service name", example = "web")),
    request_body = ScaleRequest,
    responses((status = 200, description = "the service", body = ServiceStatus)))]
fn scale_service() {}

#[utoipa::path(get, path = "/v1/services/{name}/logs", tag = "services",
    params(("name" = String, Path, description = "service name", example = "web"),
           ("follow" = Option<bool>, Query, description = "keep streaming"),
           ("tail" = Option<usize>, Query, description = "the last N lines of each task")),
    responses((status = 200, description = "lines of every live task, prefixed with the task id", body = String, content_type = "text/plain")))]
fn service_logs() {}

#[utoipa::path(get, path = "/v1/services/{name}/rollout", tag = "rollouts",
    params(("name" = String, Path, description = "service name", example = "web")),
    responses((status = 200, description = "the rollout", body = RolloutStatus)))]
fn rollout_status() {}

#[utoipa::path(post, path = "/v1/services/{name}/rollout/pause", tag = "rollouts",
    params(("name" = String, Path, description = "service name", example = "web")),
    responses((status = 200, description = "the rollout (409 unless progressing)", body = RolloutStatus)))]
fn rollout_pause() {}

#[utoipa::path(post, path = "/v1/services/{name}/rollout/resume", tag = "rollouts",
    params(("name" = String, Path, description = "service name", example = "web")),
    responses((status = 200, description = "the rollout (409 unless paused)", body = RolloutStatus)))]
fn rollout_resume() {}

#[utoipa::path(post, path = "/v1/services/{name}/rollout/promote", tag = "rollouts",
    params(("name" = String, Path, description = "service name", example = "web")),
    responses((status = 200, description = "the rollout (409 when no canary waits)", body = RolloutStatus)))]
fn rollout_promote() {}

#[utoipa::path(post, path = "/v1/services/{name}/rollout/undo", tag = "rollouts",
    params(("name" = String, Path, description = "service name", example = "web")),
    request_body(content = Option<UndoRequest>, description = "optional: the version to go back to"),
    responses((status = 200, description = "the rollout", body = RolloutStatus)))]
fn rollout_undo() {}

#[utoipa::path(post, path = "/v1/services/{name}/restart", tag = "rollouts",
    params(("name" = String, Path, description = "service name", example = "web")),
    responses((status = 200, description = "the rollout of the new spec version", body = RolloutStatus)))]
fn restart() {}

// ---- tasks ----

#[utoipa::path(get, path = "/v1/tasks", tag = "tasks",
    params(("service" = Option<String>, Query, description = "only this service's tasks"),
           ("node" = Option<String>, Query, description = "only this node's tasks"),
           ("all" = Option<bool>, Query, description = "terminal tasks too")),
    responses((status = 200, description = "tasks", body = Vec<Object>)))]
fn list_tasks() {}

#[utoipa::path(get, path = "/v1/tasks/{id}", tag = "tasks",
    params(("id" = String, Path, description = "task id")),
    responses((status = 200, description = "the task", body = Object)))]
fn get_task() {}

#[utoipa::path(delete, path = "/v1/tasks/{id}", tag = "tasks",
    params(("id" = String, Path, description = "task id")),
    responses((status = 200, description = "the task, stopping", body = Object)))]
fn stop_task() {}

#[utoipa::path(get, path = "/v1/tasks/{id}/logs", tag = "tasks",
    params(("id" = String, Path, description = "task id"),
           ("follow" = Option<bool>, Query, description = "keep streaming"),
           ("tail" = Option<usize>, Query, description = "the last N lines"),
           ("since" = Option<String>, Query, description = "lines since a duration ago (`10m`) or an RFC 3339 time (Docker only)"),
           ("timestamps" = Option<bool>, Query, description = "prefix each line with its time (Docker only)")),
    responses((status = 200, description = "the task's lines", body = String, content_type = "text/plain")))]
fn task_logs() {}

#[utoipa::path(post, path = "/v1/tasks/{id}/exec", tag = "tasks",
    description = "Run a command in a running task's container, on its node; bounded in size and time.",
    params(("id" = String, Path, description = "task id")),
    request_body = ExecRequest,
    responses((status = 200, description = "the command's exit code and output", body = ExecResponse)))]
fn exec_task() {}

#[utoipa::path(get, path = "/v1/events", tag = "cluster",
    params(("since" = Option<u64>, Query, description = "only events after this store revision"),
           ("service" = Option<String>, Query, description = "only this service's events"),
           ("task" = Option<String>, Query, description = "only this task's events"),
           ("node" = Option<String>, Query, description = "only this node's events"),
           ("limit" = Option<usize>, Query, description = "at most this many, 1 to 2000"),
           ("watch" = Option<bool>, Query, description = "stream new events as NDJSON"),
           ("timeout" = Option<String>, Query, description = "how long a watch lasts, 1s to 1h")),
    responses((status = 200, description = "cluster events, oldest first", body = Vec<Object>)))]
fn events() {}

#[utoipa::path(post, path = "/tasks", tag = "tasks",
    description = "The `POST /tasks` form: a one-replica service named after the image (or `name`); 409 if it exists.",
    request_body = SimpleTaskRequest,
    responses((status = 201, description = "the service created", body = ServiceStatus)))]
fn simple_task() {}

// ---- nodes and cluster ----

#[utoipa::path(get, path = "/v1/nodes", tag = "nodes",
    responses((status = 200, description = "nodes with their allocations", body = Vec<Object>)))]
fn list_nodes() {}

#[utoipa::path(get, path = "/v1/nodes/{id}", tag = "nodes",
    params(("id" = String, Path, description = "node id")),
    responses((status = 200, description = "the node", body = Object)))]
fn get_node() {}

#[utoipa::path(post, path = "/v1/nodes/{id}/drain", tag = "nodes",
    params(("id" = String, Path, description = "node id")),
    responses((status = 200, description = "the node, draining", body = Object)))]
fn drain_node() {}

#[utoipa::path(post, path = "/v1/nodes/{id}/undrain", tag = "nodes",
    params(("id" = String, Path, description = "node id")),
    responses((status = 200, description = "the node", body = Object)))]
fn undrain_node() {}

#[utoipa::path(get, path = "/v1/cluster", tag = "cluster",
    responses((status = 200, description = "Raft and membership", body = ClusterStatus)))]
fn cluster_status() {}

#[utoipa::path(delete, path = "/v1/cluster/members/{node}", tag = "cluster",
    params(("node" = String, Path, description = "node id")),
    responses((status = 200, description = "the cluster status after the removal", body = ClusterStatus)))]
fn remove_member() {}

#[utoipa::path(get, path = "/v1/network", tag = "cluster",
    responses((status = 200, description = "`{nodes, pairs, estimates_omitted}`: measured and estimated latencies", body = Object)))]
fn network() {}

#[utoipa::path(post, path = "/v1/plan", tag = "services",
    description = "A dry run of a spec: where its replicas would go. Nothing is written.",
    request_body(description = "a service spec", content((Object = "application/json"), (String = "application/yaml"))),
    responses((status = 200, description = "`{service, replicas, weights, nodes, placements}`", body = Object)))]
fn plan() {}

// ---- chaos ----

#[utoipa::path(get, path = "/v1/chaos", tag = "chaos",
    responses((status = 200, description = "active and scheduled faults", body = Vec<Object>)))]
fn chaos_list() {}

#[utoipa::path(delete, path = "/v1/chaos", tag = "chaos",
    responses((status = 200, description = "`{stopped: [...]}`", body = Object)))]
fn chaos_stop() {}

#[utoipa::path(post, path = "/v1/chaos/latency", tag = "chaos",
    request_body = LatencyRequest,
    responses((status = 201, description = "the faults created", body = Vec<Object>)))]
fn chaos_latency() {}

#[utoipa::path(post, path = "/v1/chaos/network-partition", tag = "chaos",
    request_body = PartitionRequest,
    responses((status = 201, description = "the faults created", body = Vec<Object>)))]
fn chaos_partition() {}

#[utoipa::path(post, path = "/v1/chaos/node-failure", tag = "chaos",
    request_body = NodeFailureRequest,
    responses((status = 201, description = "the faults created", body = Vec<Object>)))]
fn chaos_node_failure() {}

#[utoipa::path(post, path = "/v1/chaos/monkey", tag = "chaos",
    request_body = MonkeyRequest,
    responses((status = 201, description = "the faults created (the whole schedule)", body = Vec<Object>)))]
fn chaos_monkey() {}

// ---- secrets ----

#[utoipa::path(get, path = "/v1/secrets", tag = "secrets",
    responses((status = 200, description = "every secret, never a value", body = Vec<SecretInfo>)))]
fn list_secrets() {}

#[utoipa::path(get, path = "/v1/secrets/{name}", tag = "secrets",
    params(("name" = String, Path, description = "secret name")),
    responses((status = 200, description = "the secret's metadata", body = SecretInfo)))]
fn get_secret() {}

#[utoipa::path(post, path = "/v1/secrets/{name}", tag = "secrets",
    params(("name" = String, Path, description = "secret name (a DNS label)")),
    request_body(description = "the value, 1 B to 64 KiB", content = Vec<u8>, content_type = "application/octet-stream"),
    responses((status = 201, description = "created", body = SecretInfo)))]
fn create_secret() {}

#[utoipa::path(delete, path = "/v1/secrets/{name}", tag = "secrets",
    params(("name" = String, Path, description = "secret name")),
    responses((status = 200, description = "`{\"deleted\": name}`", body = Object)))]
fn delete_secret() {}

// ---- tokens ----

#[utoipa::path(get, path = "/v1/tokens", tag = "tokens",
    responses((status = 200, description = "API tokens, never secrets", body = Vec<TokenInfo>)))]
fn list_tokens() {}

#[utoipa::path(post, path = "/v1/tokens", tag = "tokens",
    request_body = TokenRequest,
    responses((status = 201, description = "the token, shown only this once", body = CreatedToken)))]
fn create_token() {}

#[utoipa::path(delete, path = "/v1/tokens/{id}", tag = "tokens",
    params(("id" = String, Path, description = "token id")),
    responses((status = 200, description = "revoked", body = Object)))]
fn revoke_token() {}

#[utoipa::path(post, path = "/v1/join-tokens/{role}/rotate", tag = "tokens",
    description = "Replace the node join token of a role; the previous one is refused from then on.",
    params(("role" = String, Path, description = "`voter` or `worker`")),
    responses((status = 201, description = "the new join token, shown only this once", body = RotatedJoinToken)))]
fn rotate_join_token() {}
