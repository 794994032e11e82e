//! `ClusterView`: the immutable snapshot filters and scorers read.

use std::collections::HashMap;

use crate::model::{NetworkMatrix, Node, NodeId, Resources, Task};

/// One node as the scheduler sees it: the node plus what its tasks hold.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeView {
    pub node: Node,
    /// Resources held by the node's tasks (recomputed from tasks, not read from `node.allocated`).
    pub allocated: Resources,
    /// Tasks holding resources on the node.
    pub task_count: u32,
    /// Of those, how many per service.
    pub services: HashMap<String, u32>,
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
}

/// A consistent snapshot of nodes, their load and the network, taken once per scheduling pass.
///
/// Filters and scorers only read it. The scheduler records its own decisions with
/// [`ClusterView::assign`] so that later placements in the same pass see them.
#[derive(Debug, Clone, Default)]
pub struct ClusterView {
    nodes: Vec<NodeView>,
    index: HashMap<NodeId, usize>,
    network: NetworkMatrix,
    /// service -> node id -> active tasks of the service on that node.
    by_service: HashMap<String, HashMap<NodeId, u32>>,
    placements: u64,
}

impl ClusterView {
    /// Builds the view. Tasks that hold resources (see
    /// [`crate::model::TaskState::holds_resources`]) on a known node count toward its load;
    /// others are ignored.
    pub fn new(nodes: Vec<Node>, tasks: &[Task], network: NetworkMatrix) -> Self {
        let mut view = ClusterView {
            index: nodes
                .iter()
                .enumerate()
                .map(|(i, n)| (n.id.clone(), i))
                .collect(),
            nodes: nodes
                .into_iter()
                .map(|node| NodeView {
                    node,
                    allocated: Resources::default(),
                    task_count: 0,
                    services: HashMap::new(),
                })
                .collect(),
            network,
            by_service: HashMap::new(),
            placements: 0,
        };
        for t in tasks.iter().filter(|t| t.state.holds_resources()) {
            if let Some(i) = t.node.as_deref().and_then(|n| view.index.get(n).copied()) {
                view.add(i, &t.service, t.resources);
            }
        }
        view
    }

    fn add(&mut self, i: usize, service: &str, resources: Resources) {
        let nv = &mut self.nodes[i];
        nv.allocated = nv.allocated.saturating_add(resources);
        nv.task_count += 1;
        *nv.services.entry(service.to_owned()).or_default() += 1;
        *self
            .by_service
            .entry(service.to_owned())
            .or_default()
            .entry(nv.node.id.clone())
            .or_default() += 1;
    }

    /// Records that a task of `service` needing `resources` now runs on `node`. Unknown node ids
    /// are ignored. Used by the scheduler between placements of one pass.
    pub fn assign(&mut self, node: &str, service: &str, resources: Resources) {
        if let Some(&i) = self.index.get(node) {
            self.add(i, service, resources);
            self.placements += 1;
        }
    }

    /// Reverses one [`ClusterView::assign`] (or one task counted at construction), for a task
    /// being stopped in the same pass.
    pub fn release(&mut self, node: &str, service: &str, resources: Resources) {
        let Some(&i) = self.index.get(node) else {
            return;
        };
        let nv = &mut self.nodes[i];
        nv.allocated = nv.allocated.saturating_sub(resources);
        nv.task_count = nv.task_count.saturating_sub(1);
        if let Some(c) = nv.services.get_mut(service) {
            *c = c.saturating_sub(1);
        }
        if let Some(c) = self
            .by_service
            .get_mut(service)
            .and_then(|m| m.get_mut(node))
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

    /// Network measurements between nodes.
    pub fn network(&self) -> &NetworkMatrix {
        &self.network
    }

    /// Nodes running at least one active task of `service`, with how many.
    pub fn service_nodes(&self, service: &str) -> impl Iterator<Item = (&str, u32)> {
        self.by_service
            .get(service)
            .into_iter()
            .flat_map(|m| m.iter())
            .filter(|(_, c)| **c > 0)
            .map(|(n, c)| (n.as_str(), *c))
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

    /// How many placements were recorded with [`ClusterView::assign`].
    pub fn placements(&self) -> u64 {
        self.placements
    }
}
