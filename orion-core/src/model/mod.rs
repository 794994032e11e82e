//! The domain model: what users ask for ([`ServiceSpec`]), what the cluster does about it
//! ([`Task`]), where it runs ([`Node`]) and what the network between nodes looks like
//! ([`NetworkMeasurement`]). Everything here is plain data with serde; behaviour lives in the
//! scheduler, reconciler and the trait implementations.

mod network;
mod node;
mod resources;
pub mod spec;
mod task;

/// The string type of a [`Task`]'s names (id, service, node, a port's protocol and host IP):
/// up to 24 bytes are kept inline, so a leader that keeps a million tasks allocates none of them.
pub use compact_str::CompactString;
pub use network::{
    MAX_LINKS_PER_RECORD, NetworkCoordinate, NetworkMatrix, NetworkMeasurement, NodeLinks,
};
pub use node::{Node, NodeAddresses, NodeStatus, ZONE_LABEL};
pub use resources::Resources;
pub use spec::ServiceSpec;
pub use task::{DesiredState, MAX_HEALTH_OUTPUT, PublishedPort, Task, TaskHealth, TaskState};

/// A node's identifier: stable across restarts, unique in a cluster (a DNS label).
pub type NodeId = String;

/// A task's identifier: `<service>-<slot>-<suffix>`, unique for the life of the cluster.
pub type TaskId = String;

/// Milliseconds since the Unix epoch; the model's timestamp (serde-friendly and total-ordered).
pub type Millis = u64;

/// Current wall-clock time in [`Millis`].
pub fn now_millis() -> Millis {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
