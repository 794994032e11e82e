//! `constraints`: label and zone rules of `spec.scheduling`.

use crate::model::spec::{AffinityRule, AntiAffinityRule, Scheduling};
use crate::scheduler::{ClusterView, Filter, NodeView, PlacementRequest, Rejection, reasons};

/// The filter's name.
pub const NAME: &str = "constraints";

/// Rejects a node that breaks a hard placement rule of the spec:
/// - `node_selector`: every `key: value` must be a label of the node;
/// - `zones`: the node's zone must be one of them (a node without a zone label fails);
/// - `avoid_zones`: the node's zone must be none of them;
/// - `affinity: [{type: zone, zones, required: true}]`: as `zones`;
/// - `anti_affinity: [{type: network-zone, avoid}]`: the zone must not match `avoid` (see
///   [`avoid_matches`]: `edge-zones` covers `edge-1`);
/// - `anti_affinity: [{type: service, service}]`: the node must run no task of `service`.
///
/// Preferred (non-required) zone affinity is not a filter's business.
#[derive(Debug, Clone, Copy, Default)]
pub struct ConstraintsFilter;

impl Filter for ConstraintsFilter {
    fn name(&self) -> &'static str {
        NAME
    }

    fn check(
        &self,
        req: &PlacementRequest<'_>,
        node: &NodeView,
        _view: &ClusterView,
    ) -> Result<(), Rejection> {
        match first_violation(&req.spec.scheduling, node) {
            None => Ok(()),
            Some(r) => Err(r),
        }
    }

    fn feasible(&self, req: &PlacementRequest<'_>, node: &NodeView, _view: &ClusterView) -> bool {
        let s = &req.spec.scheduling;
        // Fast path: most specs have no rule at all.
        (s.node_selector.is_empty()
            && s.zones.is_empty()
            && s.avoid_zones.is_empty()
            && s.affinity.is_empty()
            && s.anti_affinity.is_empty())
            || first_violation(s, node).is_none()
    }
}

fn zone_text(zone: Option<&str>) -> String {
    match zone {
        Some(z) => format!("zone {z:?}"),
        None => "no zone label".to_owned(),
    }
}

/// True when anti-affinity `avoid` covers `zone`: the zone is `avoid` or starts with it; an
/// `avoid` ending in `-zones` or `-zone` (`edge-zones`) covers the zones that start
/// with its stem (`edge`, so `edge`, `edge-1`, `edge-paris`).
pub fn avoid_matches(avoid: &str, zone: &str) -> bool {
    let stem = avoid
        .strip_suffix("-zones")
        .or_else(|| avoid.strip_suffix("-zone"))
        .filter(|s| !s.is_empty());
    zone.starts_with(avoid) || stem.is_some_and(|s| zone.starts_with(s))
}

/// The first rule `node` breaks.
fn first_violation(s: &Scheduling, node: &NodeView) -> Option<Rejection> {
    let reject = |kind, detail: String| Some(Rejection::new(NAME, kind).detail(detail));
    let labels = &node.node.labels;
    for (key, want) in &s.node_selector {
        let have = labels.get(key);
        if have != Some(want) {
            return reject(
                reasons::NODE_SELECTOR,
                match have {
                    Some(v) => format!("needs {key}={want}, node has {key}={v}"),
                    None => format!("needs {key}={want}, node has no {key} label"),
                },
            );
        }
    }
    let zone = node.node.zone();
    let in_zones = |zones: &[String]| zone.is_some_and(|z| zones.iter().any(|w| w == z));
    if !s.zones.is_empty() && !in_zones(&s.zones) {
        return reject(
            reasons::OUTSIDE_ZONES,
            format!(
                "zones: {}; node has {}",
                s.zones.join(", "),
                zone_text(zone)
            ),
        );
    }
    if let Some(z) = zone
        && s.avoid_zones.iter().any(|a| a == z)
    {
        return reject(reasons::AVOIDED_ZONE, format!("avoid_zones lists {z:?}"));
    }
    for rule in &s.affinity {
        if let AffinityRule::Zone {
            zones,
            required: true,
        } = rule
            && !in_zones(zones)
        {
            return reject(
                reasons::ZONE_AFFINITY,
                format!(
                    "required zones: {}; node has {}",
                    zones.join(", "),
                    zone_text(zone)
                ),
            );
        }
    }
    for rule in &s.anti_affinity {
        match rule {
            AntiAffinityRule::NetworkZone { avoid } => {
                if let Some(z) = zone
                    && avoid_matches(avoid, z)
                {
                    return reject(
                        reasons::ZONE_ANTI_AFFINITY,
                        format!("zone {z:?} matches avoided {avoid:?}"),
                    );
                }
            }
            AntiAffinityRule::Service { service } => {
                let here = node.count_of(service);
                if here > 0 {
                    // The other service's tasks may move or stop: this can resolve by itself.
                    return Some(
                        Rejection::new(NAME, reasons::SERVICE_ANTI_AFFINITY)
                            .detail(format!("node runs {here} task(s) of {service:?}"))
                            .transient(),
                    );
                }
            }
        }
    }
    None
}

impl ConstraintsFilter {
    /// The filter.
    pub fn new() -> Self {
        ConstraintsFilter
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Resources;
    use crate::scheduler::filters::test_support::*;

    fn nodes() -> Vec<crate::model::Node> {
        vec![
            node("a", 1000, 1024)
                .with_label("zone", "us-1")
                .with_label("disk", "ssd"),
            node("b", 1000, 1024).with_label("zone", "edge-2"),
            node("c", 1000, 1024),
        ]
    }

    /// Which of a, b, c pass for `spec`.
    fn passing(s: &crate::model::ServiceSpec, v: &ClusterView) -> Vec<String> {
        crate::testing::scheduler::passing_nodes(&ConstraintsFilter::new(), s, v)
    }

    #[test]
    fn no_rules_pass_everything() {
        let v = view(nodes(), &[]);
        assert_eq!(passing(&spec("web", 1, 1), &v), ["a", "b", "c"]);
    }

    #[test]
    fn node_selector_needs_every_label() {
        let v = view(nodes(), &[]);
        let mut s = spec("web", 1, 1);
        s.scheduling
            .node_selector
            .insert("disk".into(), "ssd".into());
        assert_eq!(passing(&s, &v), ["a"]);
        let r = ConstraintsFilter::new()
            .check(&PlacementRequest::new(&s, "t"), &v.nodes()[1], &v)
            .unwrap_err();
        assert_eq!(
            r.reason(),
            "node selector mismatch (needs disk=ssd, node has no disk label)"
        );
    }

    #[test]
    fn zones_and_avoid_zones() {
        let v = view(nodes(), &[]);
        let mut s = spec("web", 1, 1);
        s.scheduling.zones = vec!["edge-2".into(), "us-1".into()];
        assert_eq!(passing(&s, &v), ["a", "b"]);
        s.scheduling.avoid_zones = vec!["us-1".into()];
        assert_eq!(passing(&s, &v), ["b"]);
        let mut s = spec("web", 1, 1);
        s.scheduling.avoid_zones = vec!["us-1".into()];
        assert_eq!(passing(&s, &v), ["b", "c"]);
    }

    #[test]
    fn required_zone_affinity_filters_preferred_does_not() {
        let v = view(nodes(), &[]);
        let mut s = spec("web", 1, 1);
        s.scheduling.affinity = vec![AffinityRule::Zone {
            zones: vec!["us-1".into()],
            required: false,
        }];
        assert_eq!(passing(&s, &v), ["a", "b", "c"]);
        s.scheduling.affinity = vec![AffinityRule::Zone {
            zones: vec!["us-1".into()],
            required: true,
        }];
        assert_eq!(passing(&s, &v), ["a"]);
    }

    #[test]
    fn anti_affinity_by_zone_prefix_and_by_service() {
        let tasks = [running("db", "a", Resources::new(10, MIB))];
        let v = view(nodes(), &tasks);
        let mut s = spec("web", 1, 1);
        s.scheduling.anti_affinity = vec![AntiAffinityRule::NetworkZone {
            avoid: "edge".into(),
        }];
        assert_eq!(passing(&s, &v), ["a", "c"]);
        s.scheduling.anti_affinity = vec![AntiAffinityRule::NetworkZone {
            avoid: "edge-zones".into(),
        }];
        assert_eq!(passing(&s, &v), ["a", "c"], "`edge-zones` avoids edge-2");
        s.scheduling.anti_affinity = vec![AntiAffinityRule::Service {
            service: "db".into(),
        }];
        assert_eq!(passing(&s, &v), ["b", "c"]);
    }
}

#[cfg(test)]
mod avoid_tests {
    use super::avoid_matches;

    #[test]
    fn avoid_covers_prefixes_and_the_zones_plural() {
        assert!(avoid_matches("edge", "edge-1"));
        assert!(avoid_matches("edge-zones", "edge-1"));
        assert!(avoid_matches("edge-zones", "edge"));
        assert!(avoid_matches("edge-zone", "edge-paris"));
        assert!(!avoid_matches("edge-zones", "core-1"));
        assert!(!avoid_matches("-zones", "core-1"));
        assert!(avoid_matches("-zones", "-zones-x"));
    }
}
