//! `resources`: the request must fit in the node's free cpu, memory and disk.

use super::human_bytes;
use crate::model::Resources;
use crate::scheduler::{ClusterView, Filter, NodeView, PlacementRequest, Rejection, reasons};

/// The filter's name.
pub const NAME: &str = "resources";

/// Rejects nodes whose [`NodeView::free`] resources are below the request in any dimension.
#[derive(Debug, Clone, Copy, Default)]
pub struct ResourcesFilter;

impl Filter for ResourcesFilter {
    fn name(&self) -> &'static str {
        NAME
    }

    /// The reason names the first short dimension (cpu, then memory, then disk), e.g.
    /// `insufficient memory (needs 512 MiB, 128 MiB free)`.
    fn check(
        &self,
        req: &PlacementRequest<'_>,
        node: &NodeView,
        _view: &ClusterView,
    ) -> Result<(), Rejection> {
        let need = req.resources;
        let free = node.free();
        if need.fits_in(&free) {
            return Ok(());
        }
        Err(shortage(need, free))
    }

    fn feasible(&self, req: &PlacementRequest<'_>, node: &NodeView, _view: &ClusterView) -> bool {
        req.resources.fits_in(&node.free())
    }
}

fn shortage(need: Resources, free: Resources) -> Rejection {
    let (kind, detail) = if need.cpu_millicores > free.cpu_millicores {
        (
            reasons::INSUFFICIENT_CPU,
            format!(
                "needs {}m, {}m free",
                need.cpu_millicores, free.cpu_millicores
            ),
        )
    } else if need.memory_bytes > free.memory_bytes {
        (
            reasons::INSUFFICIENT_MEMORY,
            format!(
                "needs {}, {} free",
                human_bytes(need.memory_bytes),
                human_bytes(free.memory_bytes)
            ),
        )
    } else {
        (
            reasons::INSUFFICIENT_DISK,
            format!(
                "needs {}, {} free",
                human_bytes(need.disk_bytes),
                human_bytes(free.disk_bytes)
            ),
        )
    };
    Rejection::new(NAME, kind).detail(detail).transient()
}

impl ResourcesFilter {
    /// The filter.
    pub fn new() -> Self {
        ResourcesFilter
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::filters::test_support::*;

    #[test]
    fn fits_only_where_every_dimension_fits() {
        let busy = running("other", "small", Resources::new(0, 896 * MIB));
        let v = view(
            vec![node("big", 4000, 4096), node("small", 4000, 1024)],
            &[busy],
        );
        let s = spec("web", 500, 512);
        let req = PlacementRequest::new(&s, "t");
        let f = ResourcesFilter::new();
        assert!(f.check(&req, &v.nodes()[0], &v).is_ok());
        let r = f.check(&req, &v.nodes()[1], &v).unwrap_err();
        assert_eq!(
            r.reason(),
            "insufficient memory (needs 512 MiB, 128 MiB free)"
        );
        assert!(!f.feasible(&req, &v.nodes()[1], &v));
    }

    #[test]
    fn cpu_and_disk_shortages_are_named() {
        let mut n = node("n", 200, 4096);
        n.capacity.disk_bytes = MIB;
        let v = view(vec![n], &[]);
        let mut s = spec("web", 500, 64);
        let f = ResourcesFilter::new();
        let r = f
            .check(&PlacementRequest::new(&s, "t"), &v.nodes()[0], &v)
            .unwrap_err();
        assert_eq!(r.reason(), "insufficient cpu (needs 500m, 200m free)");
        s.resources.cpu_millicores = 100;
        s.resources.disk_bytes = 2 * MIB;
        let r = f
            .check(&PlacementRequest::new(&s, "t"), &v.nodes()[0], &v)
            .unwrap_err();
        assert_eq!(r.reason(), "insufficient disk (needs 2 MiB, 1 MiB free)");
    }

    #[test]
    fn an_exact_fit_is_feasible() {
        let v = view(vec![node("n", 500, 512)], &[]);
        let s = spec("web", 500, 512);
        assert!(ResourcesFilter::new().feasible(
            &PlacementRequest::new(&s, "t"),
            &v.nodes()[0],
            &v
        ));
    }
}
