//! `ClusterView`: the immutable snapshot filters and scorers read.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use super::links::{Link, LinkIndex};
use crate::hash::{StableBuildHasher, StableMap};
use crate::model::spec::{PortSpec, Protocol, ServiceSpec};
use crate::model::{NetworkMatrix, Node, NodeId, PublishedPort, Resources, Task};

/// One node as the scheduler sees it: the node plus what its tasks hold.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeView {
    pub node: Node,
    /// Resources held by the node's tasks (recomputed from tasks, not read from `node.allocated`).
    pub allocated: Resources,
    /// Tasks holding resources on the node.
    pub task_count: u32,
    /// Of those, how many per service (FNV-hashed: the view counts every task of a round). The
    /// names are shared with the view's other maps: building a view allocates no string per
    /// task.
    pub services: StableMap<Arc<str>, u32>,
    /// Host ports held by the node's tasks, one entry per use (a multiset): published ports of
    /// running tasks, and the fixed `host_port`s of the specs of tasks not yet running.
    pub host_ports: Vec<(u16, Protocol)>,
}

impl NodeView {
    /// The node's id.
    pub fn id(&self) -> &str {
        &self.node.id
    }

    /// Capacity not yet allocated.
    pub fn free(&self) -> Resources {
        self.node.capacity.saturating_sub(self.allocated)
    }

    /// Tasks of `service` on this node.
    pub fn count_of(&self, service: &str) -> u32 {
        self.services.get(service).copied().unwrap_or(0)
    }

    /// True when a task on this node holds host port `port` for `protocol`.
    pub fn port_in_use(&self, port: u16, protocol: Protocol) -> bool {
        self.host_ports.contains(&(port, protocol))
    }

    fn remove_port(&mut self, port: (u16, Protocol)) {
        if let Some(i) = self.host_ports.iter().position(|p| *p == port) {
            self.host_ports.swap_remove(i);
        }
    }
}

/// The fixed (non-zero) host ports of a spec.
pub(crate) fn fixed_host_ports(ports: &[PortSpec]) -> impl Iterator<Item = (u16, Protocol)> + '_ {
    ports
        .iter()
        .filter(|p| p.host_port != 0)
        .map(|p| (p.host_port, p.protocol))
}

fn published_port(p: &PublishedPort) -> Option<(u16, Protocol)> {
    let protocol = if p.protocol.eq_ignore_ascii_case("udp") {
        Protocol::Udp
    } else {
        Protocol::Tcp
    };
    (p.host_port != 0).then_some((p.host_port, protocol))
}

/// A consistent snapshot of nodes, their load and the network, taken once per scheduling pass.
///
/// Filters and scorers only read it. The scheduler records its own decisions with
/// [`ClusterView::assign`] so that later placements in the same pass see them.
#[derive(Debug, Clone, Default)]
pub struct ClusterView {
    nodes: Vec<NodeView>,
    index: StableMap<NodeId, usize>,
    network: NetworkMatrix,
    /// The matrix by node position (built once, with the view).
    links: LinkIndex,
    /// The service names seen, each allocated once per view and shared by the maps below and
    /// the nodes' `services` (a view of a million tasks counts each in three maps).
    names: HashSet<Arc<str>, StableBuildHasher>,
    /// service -> node position -> active tasks of the service on that node.
    by_service: StableMap<Arc<str>, StableMap<u32, u32>>,
    /// service -> zone label value -> active tasks of the service in that zone.
    by_zone: StableMap<Arc<str>, StableMap<String, u32>>,
    /// service -> its spec's fixed host ports (from [`ClusterView::with_specs`]).
    service_ports: StableMap<String, Vec<(u16, Protocol)>>,
    placements: u64,
    total_tasks: u64,
    last_assigned: Option<usize>,
}

impl ClusterView {
    /// Builds the view. Tasks that hold resources (see
    /// [`crate::model::TaskState::holds_resources`]) on a known node count toward its load;
    /// others are ignored. Host ports are taken from the tasks' published ports only; use
    /// [`ClusterView::with_specs`] to also account for scheduled tasks that are not running yet.
    pub fn new(nodes: Vec<Node>, tasks: &[Task], network: NetworkMatrix) -> Self {
        Self::with_specs(nodes, tasks, &[], network)
    }

    /// Like [`ClusterView::new`], and also remembers each spec's fixed host ports: a task that
    /// has published no port yet holds its spec's fixed ports, and [`ClusterView::assign`] /
    /// [`ClusterView::release`] add and remove them for that service.
    pub fn with_specs(
        nodes: Vec<Node>,
        tasks: &[Task],
        specs: &[ServiceSpec],
        network: NetworkMatrix,
    ) -> Self {
        let index: StableMap<NodeId, usize> = nodes
            .iter()
            .enumerate()
            .map(|(i, n)| (n.id.clone(), i))
            .collect();
        let links = LinkIndex::build(nodes.len(), &index, &network);
        let mut view = ClusterView {
            links,
            index,
            nodes: nodes
                .into_iter()
                .map(|node| NodeView {
                    node,
                    allocated: Resources::default(),
                    task_count: 0,
                    services: StableMap::default(),
                    host_ports: Vec::new(),
                })
                .collect(),
            network,
            service_ports: specs
                .iter()
                .map(|s| (s.name.clone(), fixed_host_ports(&s.ports).collect()))
                .filter(|(_, p): &(String, Vec<_>)| !p.is_empty())
                .collect(),
            ..ClusterView::default()
        };
        for t in tasks.iter().filter(|t| t.state.holds_resources()) {
            if let Some(i) = t.node.as_deref().and_then(|n| view.index.get(n).copied()) {
                view.add(i, &t.service, t.resources);
                if t.ports.is_empty() {
                    view.add_service_ports(i, &t.service);
                } else {
                    let nv = &mut view.nodes[i];
                    nv.host_ports
                        .extend(t.ports.iter().filter_map(published_port));
                }
            }
        }
        view
    }

    /// `service`'s name as shared by this view's maps (allocated on first sight).
    fn name(&mut self, service: &str) -> Arc<str> {
        if let Some(name) = self.names.get(service) {
            return Arc::clone(name);
        }
        let name: Arc<str> = Arc::from(service);
        self.names.insert(Arc::clone(&name));
        name
    }

    fn add(&mut self, i: usize, service: &str, resources: Resources) {
        let name = self.name(service);
        let nv = &mut self.nodes[i];
        nv.allocated = nv.allocated.saturating_add(resources);
        nv.task_count += 1;
        self.total_tasks += 1;
        *nv.services.entry(Arc::clone(&name)).or_default() += 1;
        let position = u32::try_from(i).unwrap_or(u32::MAX);
        *(self.by_service.entry(Arc::clone(&name)).or_default())
            .entry(position)
            .or_default() += 1;
        if let Some(zone) = nv.node.zone() {
            bump(self.by_zone.entry(name).or_default(), zone);
        }
    }

    fn add_service_ports(&mut self, i: usize, service: &str) {
        if let Some(ports) = self.service_ports.get(service) {
            self.nodes[i].host_ports.extend_from_slice(ports);
        }
    }

    /// Records that a task of `service` needing `resources` now runs on `node`. Unknown node ids
    /// are ignored. Used by the scheduler between placements of one pass. The service's fixed
    /// host ports are recorded too when the view was built [`ClusterView::with_specs`].
    pub fn assign(&mut self, node: &str, service: &str, resources: Resources) {
        if let Some(&i) = self.index.get(node) {
            self.add(i, service, resources);
            self.add_service_ports(i, service);
            self.placements += 1;
            self.last_assigned = Some(i);
        }
    }

    /// [`ClusterView::assign`] for a placed request: records its resources and its spec's fixed
    /// host ports, remembering them for the service (so a later `release` removes them) when the
    /// view did not know the spec yet.
    pub fn assign_request(&mut self, node: &str, req: &super::PlacementRequest<'_>) {
        if !self.service_ports.contains_key(&req.spec.name) {
            let ports: Vec<_> = fixed_host_ports(&req.spec.ports).collect();
            if !ports.is_empty() {
                self.service_ports.insert(req.spec.name.clone(), ports);
            }
        }
        self.assign(node, &req.spec.name, req.resources);
    }

    /// Reverses one [`ClusterView::assign`] (or one task counted at construction), for a task
    /// being stopped in the same pass. Removes one use of each of the service's known fixed host
    /// ports; dynamic ports published by a running task are not tracked back.
    pub fn release(&mut self, node: &str, service: &str, resources: Resources) {
        let Some(&i) = self.index.get(node) else {
            return;
        };
        let nv = &mut self.nodes[i];
        nv.allocated = nv.allocated.saturating_sub(resources);
        if nv.task_count > 0 {
            nv.task_count -= 1;
            self.total_tasks = self.total_tasks.saturating_sub(1);
        }
        if let Some(c) = nv.services.get_mut(service) {
            *c = c.saturating_sub(1);
        }
        if let Some(ports) = self.service_ports.get(service) {
            for p in ports {
                nv.remove_port(*p);
            }
        }
        let position = u32::try_from(i).unwrap_or(u32::MAX);
        if let Some(c) = self
            .by_service
            .get_mut(service)
            .and_then(|m| m.get_mut(&position))
        {
            *c = c.saturating_sub(1);
        }
        if let Some(zone) = nv.node.zone()
            && let Some(c) = self.by_zone.get_mut(service).and_then(|m| m.get_mut(zone))
        {
            *c = c.saturating_sub(1);
        }
    }

    /// All nodes, in the order given at construction.
    pub fn nodes(&self) -> &[NodeView] {
        &self.nodes
    }

    /// One node by id.
    pub fn node(&self, id: &str) -> Option<&NodeView> {
        self.index.get(id).map(|&i| &self.nodes[i])
    }

    /// Position of a node in [`ClusterView::nodes`].
    pub fn position(&self, id: &str) -> Option<usize> {
        self.index.get(id).copied()
    }

    /// Position of `node` in [`ClusterView::nodes`], in O(1) when `node` is borrowed from this
    /// view (found by address), else by id.
    pub fn index_of(&self, node: &NodeView) -> Option<usize> {
        let size = std::mem::size_of::<NodeView>();
        let start = self.nodes.as_ptr() as usize;
        let by_address = (std::ptr::from_ref(node) as usize)
            .checked_sub(start)
            .filter(|offset| offset % size == 0)
            .map(|offset| offset / size)
            .filter(|&i| i < self.nodes.len());
        by_address.or_else(|| self.position(node.id()))
    }

    /// Network measurements between nodes.
    pub fn network(&self) -> &NetworkMatrix {
        &self.network
    }

    /// The measured link between the nodes at positions `a` and `b` of [`ClusterView::nodes`]
    /// (either direction, as [`NetworkMatrix::get`]), without hashing ids: for network filters
    /// and scorers on the hot path. `None` when unmeasured, out of range, or `a == b` (a node is
    /// at zero distance from itself).
    pub fn link(&self, a: usize, b: usize) -> Option<&Link> {
        if a == b {
            return None;
        }
        self.links.get(a, b)
    }

    /// The measured links of the node at position `a`: its peers' positions, ascending, and
    /// the link to each (same length). Empty when it has none or `a` is out of range.
    pub fn links_of(&self, a: usize) -> (&[u32], &[Link]) {
        self.links.row(a)
    }

    /// Nodes running at least one active task of `service`, with how many.
    pub fn service_nodes(&self, service: &str) -> impl Iterator<Item = (&str, u32)> {
        self.by_service
            .get(service)
            .into_iter()
            .flat_map(|m| m.iter())
            .filter(|(_, c)| **c > 0)
            .map(|(&i, c)| (self.nodes[i as usize].id(), *c))
    }

    /// Active tasks of `service` per value of node label `label` (nodes without it count as `""`).
    pub fn service_counts_by_label(&self, service: &str, label: &str) -> HashMap<String, u32> {
        let mut out = HashMap::new();
        for (node, count) in self.service_nodes(service) {
            let value = self
                .node(node)
                .and_then(|nv| nv.node.labels.get(label).cloned())
                .unwrap_or_default();
            *out.entry(value).or_default() += count;
        }
        out
    }

    /// Active tasks of `service` in zone `zone` (the [`crate::model::ZONE_LABEL`] label), in
    /// O(1): kept up to date by [`ClusterView::assign`] and [`ClusterView::release`].
    pub fn service_count_in_zone(&self, service: &str, zone: &str) -> u32 {
        self.by_zone
            .get(service)
            .and_then(|m| m.get(zone))
            .copied()
            .unwrap_or(0)
    }

    /// The largest number of `service`'s active tasks in any one zone (0 when none), in
    /// O(zones).
    pub fn service_max_in_a_zone(&self, service: &str) -> u32 {
        self.by_zone
            .get(service)
            .and_then(|m| m.values().copied().max())
            .unwrap_or(0)
    }

    /// How many placements were recorded with [`ClusterView::assign`].
    pub fn placements(&self) -> u64 {
        self.placements
    }

    /// Tasks holding resources on all nodes, including those recorded with `assign`.
    pub fn total_tasks(&self) -> u64 {
        self.total_tasks
    }

    /// Position (in [`ClusterView::nodes`]) of the node of the latest `assign`, if any.
    pub fn last_assigned(&self) -> Option<usize> {
        self.last_assigned
    }
}

fn bump<K, S>(map: &mut HashMap<K, u32, S>, key: &str)
where
    K: std::borrow::Borrow<str> + std::hash::Hash + Eq + for<'a> From<&'a str>,
    S: std::hash::BuildHasher,
{
    match map.get_mut(key) {
        Some(c) => *c += 1,
        None => {
            map.insert(K::from(key), 1);
        }
    }
}
