//! Typed rejections: which filter turned a node down, the kind of reason (a named constant from
//! [`reasons`]), the detail, and whether the reason can go away without anyone acting.

use std::fmt;

/// The kinds of reason the built-in filters give. A kind is stable text, used to group
/// rejections in summaries (`orion status`, `orion ps`, `orion plan`); the detail carries the
/// numbers.
pub mod reasons {
    /// `node_status`: the node is draining or down.
    pub const NODE_NOT_READY: &str = "node not ready";
    /// `resources`: too little free cpu.
    pub const INSUFFICIENT_CPU: &str = "insufficient cpu";
    /// `resources`: too little free memory.
    pub const INSUFFICIENT_MEMORY: &str = "insufficient memory";
    /// `resources`: too little free disk.
    pub const INSUFFICIENT_DISK: &str = "insufficient disk";
    /// `max_tasks`: the node holds `node.max_tasks` tasks.
    pub const NODE_TASK_LIMIT: &str = "node task limit reached";
    /// `max_tasks`: the node holds `scheduling.max_per_node` tasks of the service.
    pub const SERVICE_PER_NODE_LIMIT: &str = "service per-node limit reached";
    /// `host_ports`: a fixed host port is already held on the node.
    pub const HOST_PORT_IN_USE: &str = "host port in use";
    /// `constraints`: a `node_selector` label does not match.
    pub const NODE_SELECTOR: &str = "node selector mismatch";
    /// `constraints`: the node's zone is not in `zones`.
    pub const OUTSIDE_ZONES: &str = "outside allowed zones";
    /// `constraints`: the node's zone is in `avoid_zones`.
    pub const AVOIDED_ZONE: &str = "avoided zone";
    /// `constraints`: a required zone affinity is not met.
    pub const ZONE_AFFINITY: &str = "zone affinity not met";
    /// `constraints`: a `network-zone` anti-affinity matches the node's zone.
    pub const ZONE_ANTI_AFFINITY: &str = "zone anti-affinity";
    /// `constraints`: the node runs a service the spec keeps away from.
    pub const SERVICE_ANTI_AFFINITY: &str = "service anti-affinity";
    /// Network rules: the measured RTT to the target is above `max_latency_ms`.
    pub const LATENCY_TOO_HIGH: &str = "latency too high";
    /// Network rules: the measured bandwidth is below `min_bandwidth_mbps`.
    pub const BANDWIDTH_TOO_LOW: &str = "bandwidth too low";
    /// Network rules: the measured loss is above `max_loss`.
    pub const LOSS_TOO_HIGH: &str = "loss too high";
    /// Network rules: a hard rule needs a measurement that does not exist (yet).
    pub const UNMEASURED: &str = "network not measured";
    /// The node is not in the view.
    pub const UNKNOWN_NODE: &str = "unknown node";
}

/// Why a filter turned a node down. Not an error: the scheduler collects these to explain why a
/// task could not be placed.
///
/// `kind` is short stable text (a constant of [`reasons`] for the built-in filters) that
/// summaries group by; `detail` says what was measured or needed. `transient` is true when the
/// reason can go away by itself (resources freed, a node back to ready, a new measurement), and
/// false when someone must change the spec or the nodes (labels, zones).
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Rejection {
    /// The filter's name.
    pub filter: &'static str,
    /// The kind of reason, e.g. [`reasons::INSUFFICIENT_MEMORY`].
    pub kind: &'static str,
    /// What exactly, e.g. `"needs 512 MiB, 128 MiB free"`; may be empty.
    pub detail: String,
    /// True when the reason can resolve by itself, without a change of spec or node labels.
    pub transient: bool,
}

impl Rejection {
    /// A rejection by `filter` of kind `kind`, with no detail, not transient.
    pub fn new(filter: &'static str, kind: &'static str) -> Self {
        Rejection {
            filter,
            kind,
            detail: String::new(),
            transient: false,
        }
    }

    /// With `detail`.
    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = detail.into();
        self
    }

    /// Marked as able to resolve by itself (see [`Rejection::transient`]).
    pub fn transient(mut self) -> Self {
        self.transient = true;
        self
    }

    /// The human reason: `kind (detail)`, or `kind` alone without a detail.
    pub fn reason(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for Rejection {
    /// `kind (detail)`, or `kind` without a detail.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.detail.is_empty() {
            f.write_str(self.kind)
        } else {
            write!(f, "{} ({})", self.kind, self.detail)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reason_joins_kind_and_detail() {
        let r = Rejection::new("resources", reasons::INSUFFICIENT_CPU)
            .detail("needs 500m, 100m free")
            .transient();
        assert_eq!(r.reason(), "insufficient cpu (needs 500m, 100m free)");
        assert!(r.transient);
        assert_eq!(Rejection::new("f", "k").reason(), "k");
    }
}
