//! `network`: prefer nodes close to the services a spec depends on.

use std::any::Any;

use orion_core::scheduler::{
    ClusterView, Link, NodeView, PlacementRequest, Prepared, Scorer, ScorerWeightClass,
};

/// The scorer's name.
pub const NAME: &str = "network";

/// The score of a node about which nothing is known: no dependency runs yet, or no pair to
/// the dependency's nodes was measured.
pub const NEUTRAL: f64 = 0.5;

/// RTT at which the latency term is 0.5 (`REF / (REF + rtt)`), milliseconds.
pub const LATENCY_REF_MS: f64 = 5.0;
/// Bandwidth at which the bandwidth term is 0.5 (`bw / (bw + REF)`), Mbit/s.
pub const BANDWIDTH_REF_MBPS: f64 = 100.0;
/// Loss at which the loss term reaches 0 (`1 - loss / LOSS_ZERO`, clamped).
pub const LOSS_ZERO: f64 = 0.1;

/// Scores a candidate node by the measured network to the nodes running the spec's
/// dependencies ([`orion_core::model::ServiceSpec::dependencies`]: `depends_on` and the targets
/// of its network rules).
///
/// For each dependency that has running tasks, the node's *link score* to its best node: 1 on a
/// node that runs the dependency; else, from the measurement,
/// `0.7 * 5/(5 + rtt_ms) + 0.15 * bw/(bw + 100) + 0.15 * (1 - loss/0.1)` (an unmeasured
/// bandwidth counts 0.5); an unmeasured pair counts [`NEUTRAL`]. The score is the mean over
/// those dependencies, and [`NEUTRAL`] when there are none (a spec with no dependency, or
/// dependencies not running yet): so the term never ranks nodes it knows nothing about.
///
/// Soft network rules (`required: false` on a latency, bandwidth or loss rule) add one term
/// each per running target to that mean: 1 when the node meets the rule, 0.5 when the pair is
/// not measured, 0 when it breaks it.
///
/// Class [`ScorerWeightClass::Network`]: weighted by `weights.network` (the `c` of
/// `score = a*cpu + b*memory + c*network`).
#[derive(Debug, Clone, Copy, Default)]
pub struct NetworkScorer;

/// True when `spec` has something to be near (dependencies or network rules) and has not opted
/// out with `scheduling.network_aware: false`.
fn wants_network_scoring(spec: &orion_core::model::ServiceSpec) -> bool {
    spec.scheduling.network_aware != Some(false)
        && !(spec.depends_on.is_empty() && spec.scheduling.affinity.is_empty())
}

impl Scorer for NetworkScorer {
    fn name(&self) -> &'static str {
        NAME
    }

    fn score(&self, req: &PlacementRequest<'_>, node: &NodeView, view: &ClusterView) -> f64 {
        let spec = req.spec;
        if !wants_network_scoring(spec) {
            return NEUTRAL;
        }
        let Some(me) = view.index_of(node) else {
            return NEUTRAL;
        };
        let (mut sum, mut counted) = (0.0, 0u32);
        for dep in spec.dependencies() {
            let mut best: Option<f64> = None;
            for (other, _) in view.service_nodes(dep) {
                let Some(at) = view.position(other) else {
                    continue;
                };
                let s = if at == me {
                    1.0
                } else {
                    view.link(me, at).map_or(NEUTRAL, link_score)
                };
                best = Some(best.map_or(s, |b: f64| b.max(s)));
                if s >= 1.0 {
                    break;
                }
            }
            if let Some(b) = best {
                sum += b;
                counted += 1;
            }
        }
        let (soft, soft_terms) = super::rules::soft_rule_terms(req, node, view);
        let terms = counted + soft_terms;
        if terms == 0 {
            NEUTRAL
        } else {
            (sum + soft) / f64::from(terms)
        }
    }

    fn weight_class(&self) -> ScorerWeightClass {
        ScorerWeightClass::Network
    }

    /// Resolves, once per placement, the positions of the nodes running each dependency.
    fn prepare(&self, req: &PlacementRequest<'_>, view: &ClusterView) -> Option<Prepared> {
        let spec = req.spec;
        if !wants_network_scoring(spec) {
            return None;
        }
        let lists = spec
            .dependencies()
            .into_iter()
            .filter_map(|d| {
                let mut at: Vec<u32> = view
                    .service_nodes(d)
                    .filter_map(|(id, _)| view.position(id))
                    .filter_map(|p| u32::try_from(p).ok())
                    .collect();
                at.sort_unstable();
                (!at.is_empty()).then_some(at)
            })
            .collect();
        Some(Box::new(DependencyNodes(lists)))
    }

    /// The same score as [`Scorer::score`], merging the candidate's sorted links with each
    /// dependency's sorted node positions.
    fn score_prepared(
        &self,
        prepared: &(dyn Any + Send + Sync),
        req: &PlacementRequest<'_>,
        node: &NodeView,
        view: &ClusterView,
    ) -> f64 {
        let Some(DependencyNodes(lists)) = prepared.downcast_ref::<DependencyNodes>() else {
            return self.score(req, node, view);
        };
        if super::rules::has_soft_rule(req.spec) {
            // Soft rules are rare: the plain path scores them with the dependencies.
            return self.score(req, node, view);
        }
        let Some(me) = view.index_of(node) else {
            return NEUTRAL;
        };
        if lists.is_empty() {
            return NEUTRAL;
        }
        let (peers, links) = view.links_of(me);
        let sum: f64 = lists.iter().map(|l| best_link(l, me, peers, links)).sum();
        sum / lists.len() as f64
    }
}

/// Per running dependency, the sorted positions of its nodes.
#[derive(Debug)]
struct DependencyNodes(Vec<Vec<u32>>);

/// The best link score from node `me` (whose sorted links are `peers`/`links`) to one of
/// `nodes` (sorted, non-empty): 1 when `me` is one of them, an unmeasured one counts
/// [`NEUTRAL`].
fn best_link(nodes: &[u32], me: usize, peers: &[u32], links: &[Link]) -> f64 {
    let Ok(me) = u32::try_from(me) else {
        return NEUTRAL;
    };
    if nodes.binary_search(&me).is_ok() {
        return 1.0;
    }
    let mut best = f64::NEG_INFINITY;
    if peers.len() > 16 * nodes.len() {
        for n in nodes {
            let s = peers
                .binary_search(n)
                .map_or(NEUTRAL, |i| link_score(&links[i]));
            best = best.max(s);
        }
        return best;
    }
    let (mut i, mut j) = (0, 0);
    while i < nodes.len() {
        if j >= peers.len() || nodes[i] < peers[j] {
            best = best.max(NEUTRAL);
            i += 1;
        } else if nodes[i] > peers[j] {
            j += 1;
        } else {
            best = best.max(link_score(&links[j]));
            i += 1;
            j += 1;
        }
    }
    best
}

/// The score of one measured link, in `[0, 1]` (see [`NetworkScorer`]).
pub fn link_score(m: &Link) -> f64 {
    let rtt = if m.rtt_ms.is_finite() {
        m.rtt_ms.max(0.0)
    } else {
        f64::INFINITY
    };
    let latency = LATENCY_REF_MS / (LATENCY_REF_MS + rtt);
    let bandwidth = match m.bandwidth_mbps {
        Some(bw) if bw.is_finite() && bw >= 0.0 => bw / (bw + BANDWIDTH_REF_MBPS),
        Some(bw) if bw == f64::INFINITY => 1.0,
        _ => NEUTRAL,
    };
    let loss = if m.loss.is_finite() {
        (1.0 - m.loss / LOSS_ZERO).clamp(0.0, 1.0)
    } else {
        0.0
    };
    let s = 0.7 * latency + 0.15 * bandwidth + 0.15 * loss;
    if s.is_nan() { 0.0 } else { s.clamp(0.0, 1.0) }
}

impl NetworkScorer {
    /// The scorer.
    pub fn new() -> Self {
        NetworkScorer
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scoring::test_support::*;
    use orion_core::model::ServiceSpec;

    #[test]
    fn prefers_the_node_nearest_a_dependency() {
        let v = three_zone_view(&[("db", "a1")]);
        let mut spec = ServiceSpec::new("api", "img", 1);
        spec.depends_on = vec!["db".into()];
        let req = PlacementRequest::new(&spec, "api-0");
        let s = |id: &str| NetworkScorer.score(&req, v.node(id).unwrap(), &v);
        assert_eq!(s("a1"), 1.0, "the node running db");
        assert!(s("a2") > s("b1"), "same zone beats another zone");
        assert!(s("b1") > 0.0 && s("a2") < 1.0);
    }

    #[test]
    fn a_service_that_opts_out_is_scored_neutral_everywhere() {
        let v = three_zone_view(&[("db", "a1")]);
        let mut spec = ServiceSpec::new("api", "img", 1);
        spec.depends_on = vec!["db".into()];
        spec.scheduling.network_aware = Some(false);
        let req = PlacementRequest::new(&spec, "api-0");
        for id in ["a1", "a2", "b1"] {
            let node = v.node(id).unwrap();
            assert_eq!(NetworkScorer.score(&req, node, &v), NEUTRAL, "{id}");
            assert!(NetworkScorer.prepare(&req, &v).is_none());
        }
        spec.scheduling.network_aware = Some(true);
        let req = PlacementRequest::new(&spec, "api-0");
        assert_eq!(NetworkScorer.score(&req, v.node("a1").unwrap(), &v), 1.0);
    }

    #[test]
    fn neutral_without_running_dependencies_or_measurements() {
        let v = three_zone_view(&[]);
        let mut spec = ServiceSpec::new("api", "img", 1);
        let req = PlacementRequest::new(&spec, "api-0");
        assert_eq!(
            NetworkScorer.score(&req, v.node("a1").unwrap(), &v),
            NEUTRAL
        );
        spec.depends_on = vec!["db".into()];
        let req = PlacementRequest::new(&spec, "api-0");
        assert_eq!(
            NetworkScorer.score(&req, v.node("a1").unwrap(), &v),
            NEUTRAL
        );
        // db runs on "x", which has no measurement to anyone.
        let v = three_zone_view(&[("db", "x")]);
        assert_eq!(
            NetworkScorer.score(&req, v.node("a1").unwrap(), &v),
            NEUTRAL
        );
    }

    #[test]
    fn link_score_orders_latency_loss_and_bandwidth() {
        let m = |rtt, loss, bw| Link {
            rtt_ms: rtt,
            loss,
            bandwidth_mbps: bw,
        };
        assert!(link_score(&m(1.0, 0.0, None)) > link_score(&m(30.0, 0.0, None)));
        assert!(link_score(&m(1.0, 0.0, None)) > link_score(&m(1.0, 0.05, None)));
        assert!(link_score(&m(1.0, 0.0, Some(1000.0))) > link_score(&m(1.0, 0.0, Some(1.0))));
        for s in [
            link_score(&m(f64::NAN, f64::NAN, Some(f64::NAN))),
            link_score(&m(-1.0, -1.0, Some(f64::INFINITY))),
        ] {
            assert!((0.0..=1.0).contains(&s), "{s}");
        }
    }

    #[test]
    fn a_soft_rule_is_scored_not_filtered() {
        use orion_core::model::spec::AffinityRule;
        let v = three_zone_view(&[("db", "a1")]);
        let mut spec = orion_core::model::ServiceSpec::new("api", "img", 1);
        spec.scheduling.affinity = vec![AffinityRule::Latency {
            target: "db".into(),
            max_latency_ms: 5.0,
            required: false,
        }];
        let score = |node: &str| {
            NetworkScorer.score(
                &PlacementRequest::new(&spec, "t"),
                v.node(node).unwrap(),
                &v,
            )
        };
        assert!(
            score("a2") > score("b1"),
            "meeting the preference scores higher"
        );
        // Not a filter: every node stays feasible.
        let passing = orion_core::testing::scheduler::passing_nodes(
            &crate::scoring::NetworkRulesFilter,
            &spec,
            &v,
        );
        assert_eq!(passing.len(), 10, "{passing:?}");
    }
}
