//! `host_ports`: a fixed host port can be published only once per node.

use crate::scheduler::view::fixed_host_ports;
use crate::scheduler::{ClusterView, Filter, NodeView, PlacementRequest, Rejection, reasons};

/// The filter's name.
pub const NAME: &str = "host_ports";

/// Rejects a node where one of the spec's non-zero `host_port`s is already held (see
/// [`NodeView::host_ports`]), or where a task of the same service already runs when the spec
/// has a fixed host port (every task of a service asks for the same port, even when the view
/// was built without specs). Dynamic ports (`host_port: 0`) never conflict.
#[derive(Debug, Clone, Copy, Default)]
pub struct HostPortsFilter;

impl Filter for HostPortsFilter {
    fn name(&self) -> &'static str {
        NAME
    }

    fn check(
        &self,
        req: &PlacementRequest<'_>,
        node: &NodeView,
        _view: &ClusterView,
    ) -> Result<(), Rejection> {
        let mut fixed = fixed_host_ports(&req.spec.ports).peekable();
        if fixed.peek().is_none() {
            return Ok(());
        }
        let same_service = node.count_of(&req.spec.name) > 0;
        for (port, protocol) in fixed {
            if same_service || node.port_in_use(port, protocol) {
                return Err(Rejection::new(NAME, reasons::HOST_PORT_IN_USE)
                    .detail(format!(
                        "{port}/{} is already published on this node",
                        protocol.as_str()
                    ))
                    .transient());
            }
        }
        Ok(())
    }

    fn feasible(&self, req: &PlacementRequest<'_>, node: &NodeView, _view: &ClusterView) -> bool {
        let mut fixed = fixed_host_ports(&req.spec.ports).peekable();
        fixed.peek().is_none()
            || (node.count_of(&req.spec.name) == 0
                && fixed.all(|(port, protocol)| !node.port_in_use(port, protocol)))
    }
}

impl HostPortsFilter {
    /// The filter.
    pub fn new() -> Self {
        HostPortsFilter
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::spec::{PortSpec, Protocol};
    use crate::model::{NetworkMatrix, PublishedPort, Resources, TaskState};
    use crate::scheduler::filters::test_support::*;

    fn with_port(mut s: crate::model::ServiceSpec, host_port: u16) -> crate::model::ServiceSpec {
        s.ports.push(PortSpec {
            container_port: 80,
            host_port,
            protocol: Protocol::Tcp,
            name: None,
        });
        s
    }

    #[test]
    fn a_published_port_blocks_the_same_port_and_protocol_only() {
        let mut t = running("other", "a", Resources::new(10, MIB));
        t.ports.push(PublishedPort {
            container_port: 80,
            host_port: 8080,
            protocol: "tcp".into(),
            host_ip: "127.0.0.1".into(),
        });
        let v = view(vec![node("a", 4000, 4096), node("b", 4000, 4096)], &[t]);
        let s = with_port(spec("web", 100, 64), 8080);
        let req = PlacementRequest::new(&s, "t");
        let f = HostPortsFilter::new();
        let r = f.check(&req, &v.nodes()[0], &v).unwrap_err();
        assert!(r.reason().contains("8080/tcp"), "{}", r.reason());
        assert!(f.feasible(&req, &v.nodes()[1], &v));
        let mut udp = with_port(spec("dns", 100, 64), 8080);
        udp.ports[0].protocol = Protocol::Udp;
        assert!(f.feasible(&PlacementRequest::new(&udp, "t"), &v.nodes()[0], &v));
    }

    #[test]
    fn scheduled_tasks_hold_their_spec_ports_and_assign_records_them() {
        let other = with_port(spec("other", 100, 64), 9000);
        let mut t = running("other", "a", Resources::new(10, MIB));
        t.state = TaskState::Scheduled;
        let mut v = ClusterView::with_specs(
            vec![node("a", 4000, 4096), node("b", 4000, 4096)],
            &[t],
            std::slice::from_ref(&other),
            NetworkMatrix::new(),
        );
        let s = with_port(spec("web", 100, 64), 9000);
        let req = PlacementRequest::new(&s, "t");
        let f = HostPortsFilter::new();
        assert!(!f.feasible(&req, &v.nodes()[0], &v));
        assert!(f.feasible(&req, &v.nodes()[1], &v));
        v.assign_request("b", &PlacementRequest::new(&other, "t2"));
        assert!(!f.feasible(&req, &v.nodes()[1], &v));
        v.release("b", "other", other.resources.into());
        assert!(f.feasible(&req, &v.nodes()[1], &v));
    }

    #[test]
    fn same_service_with_a_fixed_port_never_doubles_up() {
        let s = with_port(spec("web", 100, 64), 80);
        let mut v = view(vec![node("a", 4000, 4096)], &[]);
        let f = HostPortsFilter::new();
        assert!(f.feasible(&PlacementRequest::new(&s, "t"), &v.nodes()[0], &v));
        v.assign("a", "web", s.resources.into());
        assert!(
            f.check(&PlacementRequest::new(&s, "t"), &v.nodes()[0], &v)
                .is_err()
        );
    }

    #[test]
    fn dynamic_ports_never_conflict() {
        let s = with_port(spec("web", 100, 64), 0);
        let mut v = view(vec![node("a", 4000, 4096)], &[]);
        v.assign("a", "web", s.resources.into());
        assert!(HostPortsFilter::new().feasible(
            &PlacementRequest::new(&s, "t"),
            &v.nodes()[0],
            &v
        ));
    }
}
