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
/// `/orion/tasks/<id>` -> `Task` (JSON).
pub const TASKS: &str = "/orion/tasks/";
/// `/orion/nodes/<id>` -> `Node` (JSON).
pub const NODES: &str = "/orion/nodes/";
/// `/orion/net/<from>/<to>` -> `NetworkMeasurement` (JSON).
pub const NETWORK: &str = "/orion/net/";

/// The key of service `name`.
pub fn service(name: &str) -> String {
    format!("{SERVICES}{name}")
}
/// The key of service `name`'s spec version.
pub fn service_version(name: &str) -> String {
    format!("{SERVICE_VERSIONS}{name}")
}
/// The key of task `id`.
pub fn task(id: &str) -> String {
    format!("{TASKS}{id}")
}
/// The key of node `id`.
pub fn node(id: &str) -> String {
    format!("{NODES}{id}")
}
/// The key of the measurement from `from` to `to`.
pub fn measurement(from: &str, to: &str) -> String {
    format!("{NETWORK}{from}/{to}")
}
