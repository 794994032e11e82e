//! Key layout of the typed layer.

/// Prefix of every key Orion writes.
pub const ROOT: &str = "/orion/";
/// `/orion/services/<name>` -> `ServiceSpec` (JSON).
pub const SERVICES: &str = "/orion/services/";
/// `/orion/service-versions/<name>` -> the service's `spec_version` (JSON number). Kept
/// when the service is deleted.
pub const SERVICE_VERSIONS: &str = "/orion/service-versions/";
/// The common prefix of [`SERVICES`] and [`SERVICE_VERSIONS`]: one range reads both.
pub const SERVICE_ANY: &str = "/orion/service";
/// `/orion/tasks/<id>` -> `Task` (a binary record, `decode_value` reads it).
pub const TASKS: &str = "/orion/tasks/";
/// `/orion/nodes/<id>` -> `Node` (JSON).
pub const NODES: &str = "/orion/nodes/";
/// `/orion/net/<from>/<to>` -> `NetworkMeasurement` (JSON).
pub const NETWORK: &str = "/orion/net/";
/// `/orion/links/<from>` -> `NodeLinks` (JSON): every link node `from`'s prober publishes, in one
/// record. Read together with the per-link [`NETWORK`] records (which a row overrides).
pub const LINKS: &str = "/orion/links/";
/// `/orion/coords/<node>` -> `NetworkCoordinate` (JSON): the node's Vivaldi coordinate.
pub const COORDINATES: &str = "/orion/coords/";
/// `/orion/slots/<service>/<slot>` -> the id of the latest task created in that replica slot
/// (JSON string). Creating a task compares this key's revision with the one the plan saw, so two
/// controllers can never both fill one slot.
pub const SLOTS: &str = "/orion/slots/";
/// `/orion/rollouts/<service>` -> the service's latest `Rollout` record (JSON): phase, canary,
/// batch pacing, rollback reason. Kept in the store so a new leader resumes it.
pub const ROLLOUTS: &str = "/orion/rollouts/";
/// `/orion/spec-history/<service>/<version, 20 digits>` -> the `ServiceSpec` first stored at that
/// version, the newest `ClusterStore::with_spec_history` of them per service (for `rollout
/// history` and `undo`). Kept when the service is deleted, like its version counter.
pub const SPEC_HISTORY: &str = "/orion/spec-history/";
/// `/orion/secrets/<name>` -> `SealedSecret` (JSON): the value sealed, never the plaintext.
pub const SECRETS: &str = "/orion/secrets/";
/// `/orion/usage/<service>/<node>` -> `UsageReport` (JSON): the node's latest sample of the
/// service's CPU and memory use (`orion_core::autoscale`).
pub const USAGE: &str = "/orion/usage/";
/// `/orion/autoscale/<service>` -> `AutoscaleRecord` (JSON): the autoscaler's latest decisions.
pub const AUTOSCALE: &str = "/orion/autoscale/";
/// `/orion/traces/<service>` -> the W3C `traceparent` of the service's latest traced API write
/// (JSON string); written only when tracing is installed ([`crate::trace`]).
pub const TRACES: &str = "/orion/traces/";
/// `/orion/leader` -> the controllers' leadership record (`orion_core::node::LeaderRecord`).
/// Every controller write compares its revision, so a deposed leader's writes fail.
pub const LEADER: &str = "/orion/leader";

/// The key of service `name`.
pub fn service(name: &str) -> String {
    format!("{SERVICES}{name}")
}
/// The key of service `name`'s spec version.
pub fn service_version(name: &str) -> String {
    format!("{SERVICE_VERSIONS}{name}")
}
/// The key of service `name`'s trace context.
pub fn trace(name: &str) -> String {
    format!("{TRACES}{name}")
}
/// The key of secret `name`.
pub fn secret(name: &str) -> String {
    format!("{SECRETS}{name}")
}
/// The key of task `id`.
pub fn task(id: &str) -> String {
    format!("{TASKS}{id}")
}
/// The key of node `id`'s network coordinate.
pub fn coordinate(id: &str) -> String {
    format!("{COORDINATES}{id}")
}
/// The key of node `from`'s [`LINKS`] record.
pub fn links(from: &str) -> String {
    format!("{LINKS}{from}")
}
/// The key of node `id`.
pub fn node(id: &str) -> String {
    format!("{NODES}{id}")
}
/// The key of replica slot `slot` of service `service`.
pub fn slot(service: &str, slot: u32) -> String {
    format!("{SLOTS}{service}/{slot}")
}
/// The prefix of every slot key of service `service`.
pub fn slots_of(service: &str) -> String {
    format!("{SLOTS}{service}/")
}
/// The key of the measurement from `from` to `to`.
pub fn measurement(from: &str, to: &str) -> String {
    format!("{NETWORK}{from}/{to}")
}
/// The key of service `service`'s rollout record.
pub fn rollout(service: &str) -> String {
    format!("{ROLLOUTS}{service}")
}
/// The key of service `service`'s spec at `version` in its history.
pub fn spec_history(service: &str, version: u64) -> String {
    format!("{SPEC_HISTORY}{service}/{version:020}")
}
/// The prefix of every history key of service `service`.
pub fn spec_history_of(service: &str) -> String {
    format!("{SPEC_HISTORY}{service}/")
}
/// The key of node `node`'s usage report of service `service`.
pub fn usage(service: &str, node: &str) -> String {
    format!("{USAGE}{service}/{node}")
}
/// The key of service `service`'s autoscale record.
pub fn autoscale(service: &str) -> String {
    format!("{AUTOSCALE}{service}")
}
