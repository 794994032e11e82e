//! Built-in filters: hard constraints a node must meet to take a task.
//!
//! | name | rejects a node when |
//! |---|---|
//! | [`node_status`](NodeStatusFilter) | it is not `Ready` (draining or down) |
//! | [`resources`](ResourcesFilter) | its free cpu, memory or disk is below the request |
//! | [`max_tasks`](MaxTasksFilter) | it is at `node.max_tasks`, or at the spec's `max_per_node` |
//! | [`host_ports`](HostPortsFilter) | a fixed `host_port` of the spec is already held there |
//! | [`constraints`](ConstraintsFilter) | labels/zones break `node_selector`, `zones`, `avoid_zones`, required zone affinity or anti-affinity |
//!
//! Each filter file is laid out the same way: its `NAME`, the type, the trait impl, the
//! constructor, the tests.

mod constraints;
mod host_ports;
mod max_tasks;
mod node_status;
mod resources;

pub use constraints::{ConstraintsFilter, avoid_matches};
pub use host_ports::HostPortsFilter;
pub use max_tasks::MaxTasksFilter;
pub use node_status::NodeStatusFilter;
pub use resources::ResourcesFilter;

use super::Filter;

/// `node_status`'s name.
pub const NODE_STATUS: &str = node_status::NAME;
/// `resources`' name.
pub const RESOURCES: &str = resources::NAME;
/// `max_tasks`' name.
pub const MAX_TASKS: &str = max_tasks::NAME;
/// `host_ports`' name.
pub const HOST_PORTS: &str = host_ports::NAME;
/// `constraints`' name.
pub const CONSTRAINTS: &str = constraints::NAME;

/// Names accepted by [`by_name`], in [`standard`] order.
pub const NAMES: [&str; 5] = [
    node_status::NAME,
    constraints::NAME,
    max_tasks::NAME,
    host_ports::NAME,
    resources::NAME,
];

/// Every built-in filter, cheapest and most selective first.
pub fn standard() -> Vec<Box<dyn Filter>> {
    NAMES.iter().filter_map(|n| by_name(n)).collect()
}

/// A built-in filter by its name (see [`NAMES`]), or `None`.
pub fn by_name(name: &str) -> Option<Box<dyn Filter>> {
    Some(match name {
        node_status::NAME => Box::new(NodeStatusFilter::new()),
        resources::NAME => Box::new(ResourcesFilter::new()),
        max_tasks::NAME => Box::new(MaxTasksFilter::new()),
        host_ports::NAME => Box::new(HostPortsFilter::new()),
        constraints::NAME => Box::new(ConstraintsFilter::new()),
        _ => return None,
    })
}

/// Renders bytes for humans in binary units: `512 MiB`, `1.5 GiB`, `300 B`.
pub(crate) fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 || value.fract() == 0.0 {
        format!("{value:.0} {}", UNITS[unit])
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
pub(crate) mod test_support {
    //! Small builders shared by the filter and scorer tests.
    use crate::model::spec::ServiceSpec;
    use crate::model::{NetworkMatrix, Node, Resources, Task, TaskState};
    use crate::scheduler::ClusterView;

    pub const MIB: u64 = 1024 * 1024;

    /// A ready node with `cpu` millicores and `mem_mib` MiB.
    pub fn node(id: &str, cpu: u64, mem_mib: u64) -> Node {
        Node::new(id, Resources::new(cpu, mem_mib * MIB))
    }

    /// A spec requesting `cpu` millicores and `mem_mib` MiB.
    pub fn spec(name: &str, cpu: u64, mem_mib: u64) -> ServiceSpec {
        let mut s = ServiceSpec::new(name, "img", 1);
        s.resources.cpu_millicores = cpu;
        s.resources.memory_bytes = mem_mib * MIB;
        s
    }

    /// A running task of `service` on `node` holding `res`.
    pub fn running(service: &str, node: &str, res: Resources) -> Task {
        let mut t = Task::new(service, 0, 1, res);
        t.node = Some(node.into());
        t.state = TaskState::Running;
        t
    }

    pub fn view(nodes: Vec<Node>, tasks: &[Task]) -> ClusterView {
        ClusterView::new(nodes, tasks, NetworkMatrix::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_builds_its_filter() {
        for name in NAMES {
            assert_eq!(by_name(name).map(|f| f.name()), Some(name));
        }
        assert!(by_name("nope").is_none());
        assert_eq!(standard().len(), NAMES.len());
    }

    #[test]
    fn human_bytes_uses_binary_units() {
        assert_eq!(human_bytes(300), "300 B");
        assert_eq!(human_bytes(512 * 1024 * 1024), "512 MiB");
        assert_eq!(human_bytes(1536 * 1024 * 1024), "1.5 GiB");
    }
}
