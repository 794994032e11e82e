//! The typed layer: services, tasks, nodes and network measurements on any [`Store`](super::Store).
//! (Skeleton, filled by the store work.)

/// Key layout of the typed layer.
pub mod keys {
    /// Prefix of every key Orion writes.
    pub const ROOT: &str = "/orion/";
    /// `/orion/services/<name>` -> `ServiceSpec` (JSON).
    pub const SERVICES: &str = "/orion/services/";
    /// `/orion/tasks/<id>` -> `Task` (JSON).
    pub const TASKS: &str = "/orion/tasks/";
    /// `/orion/nodes/<id>` -> `Node` (JSON).
    pub const NODES: &str = "/orion/nodes/";
    /// `/orion/net/<from>/<to>` -> `NetworkMeasurement` (JSON).
    pub const NETWORK: &str = "/orion/net/";
}

/// Typed access to the cluster state on a store `S`.
#[derive(Debug, Clone)]
pub struct ClusterStore<S> {
    store: S,
}

impl<S> ClusterStore<S> {
    /// Wraps `store`.
    pub fn new(store: S) -> Self {
        ClusterStore { store }
    }
    /// The underlying store.
    pub fn inner(&self) -> &S {
        &self.store
    }
}
