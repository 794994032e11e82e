//! `node_status`: only `Ready` nodes take new tasks.

use crate::model::NodeStatus;
use crate::scheduler::{ClusterView, Filter, NodeView, PlacementRequest, Rejection, reasons};

/// The filter's name.
pub const NAME: &str = "node_status";

/// Rejects draining and down nodes.
#[derive(Debug, Clone, Copy, Default)]
pub struct NodeStatusFilter;

impl Filter for NodeStatusFilter {
    fn name(&self) -> &'static str {
        NAME
    }

    fn check(
        &self,
        req: &PlacementRequest<'_>,
        node: &NodeView,
        view: &ClusterView,
    ) -> Result<(), Rejection> {
        if self.feasible(req, node, view) {
            Ok(())
        } else {
            Err(Rejection::new(NAME, reasons::NODE_NOT_READY)
                .detail(format!(
                    "{}; only ready nodes take new tasks",
                    node.node.status
                ))
                .transient())
        }
    }

    fn feasible(&self, _req: &PlacementRequest<'_>, node: &NodeView, _view: &ClusterView) -> bool {
        node.node.status == NodeStatus::Ready
    }
}

impl NodeStatusFilter {
    /// The filter.
    pub fn new() -> Self {
        NodeStatusFilter
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::filters::test_support::*;

    #[test]
    fn only_ready_nodes_pass() {
        let mut draining = node("d", 1000, 1024);
        draining.status = NodeStatus::Draining;
        let mut down = node("x", 1000, 1024);
        down.status = NodeStatus::Down;
        let v = view(vec![node("r", 1000, 1024), draining, down], &[]);
        let s = spec("web", 100, 64);
        let req = PlacementRequest::new(&s, "t");
        let f = NodeStatusFilter::new();
        assert!(f.check(&req, &v.nodes()[0], &v).is_ok());
        let r = f.check(&req, &v.nodes()[1], &v).unwrap_err();
        assert_eq!(r.filter, NAME);
        assert_eq!(r.kind, reasons::NODE_NOT_READY);
        assert!(r.detail.starts_with("draining"), "{}", r.detail);
        assert!(r.transient);
        assert!(!f.feasible(&req, &v.nodes()[2], &v));
    }
}
