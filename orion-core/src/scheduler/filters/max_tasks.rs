//! `max_tasks`: a node's `max_tasks` and a service's `scheduling.max_per_node`.

use crate::scheduler::{ClusterView, Filter, NodeView, PlacementRequest, Rejection, reasons};

/// The filter's name.
pub const NAME: &str = "max_tasks";

/// Rejects nodes already holding `node.max_tasks` tasks, or `spec.scheduling.max_per_node`
/// tasks of the service being placed.
#[derive(Debug, Clone, Copy, Default)]
pub struct MaxTasksFilter;

impl Filter for MaxTasksFilter {
    fn name(&self) -> &'static str {
        NAME
    }

    fn check(
        &self,
        req: &PlacementRequest<'_>,
        node: &NodeView,
        _view: &ClusterView,
    ) -> Result<(), Rejection> {
        if let Some(max) = node.node.max_tasks
            && node.task_count >= max
        {
            return Err(Rejection::new(NAME, reasons::NODE_TASK_LIMIT)
                .detail(format!("{} of max_tasks {max}", node.task_count))
                .transient());
        }
        if let Some(max) = req.spec.scheduling.max_per_node {
            let here = node.count_of(&req.spec.name);
            if here >= max {
                return Err(Rejection::new(NAME, reasons::SERVICE_PER_NODE_LIMIT)
                    .detail(format!(
                        "{here} tasks of {}, max_per_node {max}",
                        req.spec.name
                    ))
                    .transient());
            }
        }
        Ok(())
    }

    fn feasible(&self, req: &PlacementRequest<'_>, node: &NodeView, _view: &ClusterView) -> bool {
        node.node.max_tasks.is_none_or(|max| node.task_count < max)
            && req
                .spec
                .scheduling
                .max_per_node
                .is_none_or(|max| node.count_of(&req.spec.name) < max)
    }
}

impl MaxTasksFilter {
    /// The filter.
    pub fn new() -> Self {
        MaxTasksFilter
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Resources;
    use crate::scheduler::filters::test_support::*;

    #[test]
    fn node_limit_counts_every_service() {
        let mut n = node("n", 4000, 4096);
        n.max_tasks = Some(2);
        let tasks = [
            running("a", "n", Resources::new(10, MIB)),
            running("b", "n", Resources::new(10, MIB)),
        ];
        let v = view(vec![n, node("m", 4000, 4096)], &tasks);
        let s = spec("web", 100, 64);
        let req = PlacementRequest::new(&s, "t");
        let r = MaxTasksFilter::new()
            .check(&req, &v.nodes()[0], &v)
            .unwrap_err();
        assert!(r.reason().contains("max_tasks 2"), "{}", r.reason());
        assert!(MaxTasksFilter::new().feasible(&req, &v.nodes()[1], &v));
    }

    #[test]
    fn per_service_limit_counts_only_that_service() {
        let tasks = [
            running("web", "n", Resources::new(10, MIB)),
            running("db", "n", Resources::new(10, MIB)),
        ];
        let v = view(vec![node("n", 4000, 4096)], &tasks);
        let mut s = spec("web", 100, 64);
        s.scheduling.max_per_node = Some(1);
        let f = MaxTasksFilter::new();
        let r = f
            .check(&PlacementRequest::new(&s, "t"), &v.nodes()[0], &v)
            .unwrap_err();
        assert!(r.reason().contains("max_per_node 1"), "{}", r.reason());
        s.scheduling.max_per_node = Some(2);
        assert!(
            f.check(&PlacementRequest::new(&s, "t"), &v.nodes()[0], &v)
                .is_ok()
        );
    }
}
