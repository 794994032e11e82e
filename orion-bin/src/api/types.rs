//! JSON shapes of the HTTP API, shared by the server and the CLI client.

use std::collections::BTreeMap;

use orion_core::error::FieldError;
use orion_core::membership::Member;
use orion_core::model::{ServiceSpec, Task, TaskState};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A service with the state of its replicas.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ServiceStatus {
    /// The spec as stored (the format of docs/spec.md).
    #[schema(value_type = Object)]
    pub spec: ServiceSpec,
    /// Spec version: bumped when the tasks would change (not by scaling).
    pub version: u64,
    /// Store revision of the spec's last write, bumped by every change (scaling too); the
    /// response's ETag, and what `If-Match` on `PUT` takes back.
    #[serde(default)]
    pub revision: u64,
    pub desired: u32,
    /// Tasks serving ([`Task::is_serving`]): running, and healthy when a health check is set.
    pub running: u32,
    /// Active tasks by state.
    #[schema(value_type = BTreeMap<String, u32>)]
    pub by_state: BTreeMap<TaskState, u32>,
    /// The autoscaler's latest evaluation and changes (services with a `scale_policy`, in the
    /// single-service view only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub autoscale: Option<orion_core::autoscale::AutoscaleRecord>,
}

impl ServiceStatus {
    /// Summarises `tasks` (all tasks of the service) for `spec` at `version`.
    pub fn new(spec: ServiceSpec, version: u64, tasks: &[Task]) -> Self {
        let mut by_state = BTreeMap::new();
        for t in tasks.iter().filter(|t| t.is_active()) {
            *by_state.entry(t.state).or_insert(0) += 1;
        }
        ServiceStatus {
            desired: spec.replicas,
            running: tasks
                .iter()
                .filter(|t| t.is_active() && t.is_serving())
                .count() as u32,
            spec,
            version,
            revision: 0,
            by_state,
            autoscale: None,
        }
    }

    /// This status with the spec's store `revision`.
    pub fn at(mut self, revision: u64) -> Self {
        self.revision = revision;
        self
    }
}

/// Raft and membership as one node sees them.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct ClusterStatus {
    /// The configured cluster name.
    pub cluster_id: String,
    /// The random id minted when the cluster was bootstrapped (or a single node first started)
    /// and carried by every Raft frame and gossip datagram; `null` on a joining node that has
    /// not learned it yet.
    #[serde(default)]
    pub cluster_uuid: Option<String>,
    /// The node that answered.
    pub node_id: String,
    pub leader: Option<String>,
    pub term: u64,
    pub voters: Vec<String>,
    pub learners: Vec<String>,
    pub commit_index: u64,
    pub applied_index: u64,
    /// Gossip members with their state.
    #[schema(value_type = Vec<Object>)]
    pub members: Vec<Member>,
}

/// `POST /v1/services/{name}/scale`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScaleRequest {
    pub replicas: u32,
}

/// The `POST /tasks` form: `{"image": "nginx", "memory": 100000000, "portBindings": {"80/tcp": "8080"}}`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SimpleTaskRequest {
    pub image: String,
    #[serde(default)]
    pub name: Option<String>,
    /// Memory in bytes.
    #[serde(default)]
    pub memory: Option<u64>,
    /// `"<container port>/<proto>" -> "<host port>"`.
    #[serde(default)]
    pub port_bindings: BTreeMap<String, String>,
    #[serde(default)]
    pub env: Vec<String>,
    #[serde(default)]
    pub command: Vec<String>,
}

/// Every error body: a machine-readable code, what went wrong, and for bad input, which fields
/// and why.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct ApiError {
    /// The kind of error, one per status (`bad_request`, `not_found`, `method_not_allowed`,
    /// `payload_too_large`, `invalid`, `conflict`, `unavailable`, ...); see docs/api.md.
    #[serde(default)]
    pub code: String,
    pub error: String,
    /// The fields at fault, when bad input is the cause.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(value_type = Vec<FieldErrorDoc>)]
    pub fields: Vec<FieldError>,
}

/// One field at fault in an [`ApiError`]: the schema of `orion_core::error::FieldError` (a
/// unit test checks that they serialize alike).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = FieldError)]
pub struct FieldErrorDoc {
    /// The field's path as the caller wrote it (`resources.cpu_millicores`, `tail`).
    pub path: String,
    /// The value given (may be empty).
    pub value: String,
    /// What is accepted.
    pub expected: String,
}
