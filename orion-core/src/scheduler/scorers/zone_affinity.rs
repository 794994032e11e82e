//! `zone_affinity`: preferred (not required) zones of `scheduling.affinity`.

use crate::model::spec::AffinityRule;
use crate::scheduler::{ClusterView, NodeView, PlacementRequest, Scorer};

/// The scorer's name.
pub const NAME: &str = "zone_affinity";

/// The fraction of the spec's preferred zone rules (`{type: zone, zones, required: false}`)
/// whose zones include the node's zone: 1 in a preferred zone, 0 outside. A spec without such
/// a rule scores every node 1, so the scorer never changes its ranking. Required zone rules
/// are the `constraints` filter's business.
#[derive(Debug, Clone, Copy, Default)]
pub struct ZoneAffinity;

impl Scorer for ZoneAffinity {
    fn name(&self) -> &'static str {
        NAME
    }

    fn score(&self, req: &PlacementRequest<'_>, node: &NodeView, _view: &ClusterView) -> f64 {
        let zone = node.node.zone();
        let (mut rules, mut met) = (0u32, 0u32);
        for rule in &req.spec.scheduling.affinity {
            if let AffinityRule::Zone {
                zones,
                required: false,
            } = rule
            {
                rules += 1;
                if zone.is_some_and(|z| zones.iter().any(|w| w == z)) {
                    met += 1;
                }
            }
        }
        if rules == 0 {
            1.0
        } else {
            f64::from(met) / f64::from(rules)
        }
    }
}

impl ZoneAffinity {
    /// The scorer.
    pub fn new() -> Self {
        ZoneAffinity
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::filters::test_support::*;

    #[test]
    fn preferred_zones_score_higher_and_no_rule_is_neutral() {
        let v = view(
            vec![
                node("a", 1000, 1024).with_label("zone", "eu"),
                node("b", 1000, 1024).with_label("zone", "us"),
                node("c", 1000, 1024),
            ],
            &[],
        );
        let mut s = spec("web", 10, 16);
        let sc = ZoneAffinity::new();
        let scores = |s: &crate::model::ServiceSpec| {
            let req = PlacementRequest::new(s, "t");
            [0, 1, 2].map(|i| sc.score(&req, &v.nodes()[i], &v))
        };
        assert_eq!(scores(&s), [1.0, 1.0, 1.0]);
        s.scheduling.affinity = vec![
            AffinityRule::Zone {
                zones: vec!["eu".into()],
                required: false,
            },
            AffinityRule::Zone {
                zones: vec!["eu".into(), "us".into()],
                required: false,
            },
            AffinityRule::Zone {
                zones: vec!["us".into()],
                required: true,
            },
        ];
        assert_eq!(scores(&s), [1.0, 0.5, 0.0]);
    }
}
