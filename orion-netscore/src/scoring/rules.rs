//! `network_rules`: the hard network rules of `scheduling.affinity` (latency, bandwidth, loss).

use orion_core::model::spec::AffinityRule;
use orion_core::scheduler::{
    ClusterView, Filter, Link, NodeView, PlacementRequest, Rejection, reasons,
};

/// The filter's name.
pub const NAME: &str = "network_rules";

/// Rejects a node that breaks a network rule of the spec:
///
/// - `{type: latency, target, max_latency_ms}`: the node must be within `max_latency_ms` RTT of
///   at least one node running `target`;
/// - `{type: bandwidth, min_bandwidth_mbps, target?}`: at least that bandwidth to one node
///   running `target`; without a target, to one node of each running dependency
///   ([`orion_core::model::ServiceSpec::dependencies`]);
/// - `{type: loss, max_loss, target?}`: at most that loss, likewise.
///
/// Contract:
/// - A node that runs the target meets every rule to it (0 ms, no loss, no link to share).
/// - **A target with no running task does not constrain**: the rule passes, so two services
///   whose rules name each other are placed one after the other instead of waiting for each
///   other forever. Once the target runs, later placements (and re-placements) honour the rule.
/// - **A pair that was never measured does not meet a hard rule**: the node is rejected with
///   [`reasons::UNMEASURED`], marked transient (a probe round may measure it). Neither is an
///   unmeasured bandwidth. The network scorer, by contrast, treats unmeasured pairs as neutral.
/// - Every rejection here is transient: measurements change.
/// - Rules with `required: false` are not filtered here: the `network` scorer scores them.
/// - [`Filter::recheck`] (should a running task move?) applies the same rules with the bound
///   widened by the tolerance, and never rejects for a pair that is not measured.
#[derive(Debug, Clone, Copy, Default)]
pub struct NetworkRulesFilter;

/// The measured value a rule compares, for one link.
#[derive(Clone, Copy)]
enum Metric {
    Latency(f64),
    Bandwidth(f64),
    Loss(f64),
}

impl Metric {
    /// The link's value, `None` when unmeasured; a node with itself is ideal.
    fn of(self, m: Option<&Link>, same: bool) -> Option<f64> {
        if same {
            return Some(match self {
                Metric::Latency(_) | Metric::Loss(_) => 0.0,
                Metric::Bandwidth(_) => f64::INFINITY,
            });
        }
        let m = m?;
        match self {
            Metric::Latency(_) => Some(m.rtt_ms),
            Metric::Bandwidth(_) => m.bandwidth_mbps,
            Metric::Loss(_) => Some(m.loss),
        }
    }

    /// Does `v` meet the rule, its bound widened by the factor `slack` (1.0: the bound itself)?
    fn ok(self, v: f64, slack: f64) -> bool {
        match self {
            Metric::Latency(max) | Metric::Loss(max) => v <= max * slack,
            Metric::Bandwidth(min) => v >= min / slack,
        }
    }

    /// Is `a` a better value than `b`?
    fn better(self, a: f64, b: f64) -> bool {
        match self {
            Metric::Latency(_) | Metric::Loss(_) => a < b,
            Metric::Bandwidth(_) => a > b,
        }
    }

    fn rejection(self, target: &str, best: Option<f64>) -> Rejection {
        let (kind, detail) = match (self, best) {
            (Metric::Latency(_), None) | (Metric::Bandwidth(_), None) | (Metric::Loss(_), None) => {
                (
                    reasons::UNMEASURED,
                    format!(
                        "{} to {target:?}: no pair measured to a node running it",
                        self.what()
                    ),
                )
            }
            (Metric::Latency(max), Some(v)) => (
                reasons::LATENCY_TOO_HIGH,
                format!("best RTT to {target:?} is {v:.1} ms, max_latency_ms {max}"),
            ),
            (Metric::Bandwidth(min), Some(v)) => (
                reasons::BANDWIDTH_TOO_LOW,
                format!("best bandwidth to {target:?} is {v:.1} Mbit/s, min_bandwidth_mbps {min}"),
            ),
            (Metric::Loss(max), Some(v)) => (
                reasons::LOSS_TOO_HIGH,
                format!("lowest loss to {target:?} is {v:.3}, max_loss {max}"),
            ),
        };
        Rejection::new(NAME, kind).detail(detail).transient()
    }

    fn what(self) -> &'static str {
        match self {
            Metric::Latency(_) => "latency",
            Metric::Bandwidth(_) => "bandwidth",
            Metric::Loss(_) => "loss",
        }
    }
}

/// How a rule is applied: to place a task (`slack` 1.0, an unmeasured pair fails), or to
/// recheck a running one (the bound widened by `slack`, an unmeasured pair passes).
#[derive(Clone, Copy)]
struct Mode {
    slack: f64,
    unmeasured_passes: bool,
}

const PLACE: Mode = Mode {
    slack: 1.0,
    unmeasured_passes: false,
};

/// `Ok` when the node meets `metric` to one node running `target`, or `target` runs nowhere.
fn check_target(
    metric: Metric,
    target: &str,
    node: &NodeView,
    view: &ClusterView,
    mode: Mode,
) -> Result<(), Rejection> {
    let mut best: Option<f64> = None;
    let me = view.index_of(node);
    for (other, _) in view.service_nodes(target) {
        let at = view.position(other);
        let same = at.is_some() && at == me;
        let link = me.zip(at).and_then(|(a, b)| view.link(a, b));
        let Some(v) = metric.of(link, same) else {
            continue;
        };
        if metric.ok(v, mode.slack) {
            return Ok(());
        }
        if best.is_none_or(|b| metric.better(v, b)) {
            best = Some(v);
        }
    }
    if best.is_none() && (mode.unmeasured_passes || view.service_nodes(target).next().is_none()) {
        return Ok(()); // Not running yet, or not measured on a recheck: see the contract.
    }
    Err(metric.rejection(target, best))
}

/// A latency, bandwidth or loss rule as `(metric, target, required)`; `None` for zone rules.
fn network_rule(rule: &AffinityRule) -> Option<(Metric, Option<&String>, bool)> {
    match rule {
        AffinityRule::Latency {
            target,
            max_latency_ms,
            required,
        } => Some((Metric::Latency(*max_latency_ms), Some(target), *required)),
        AffinityRule::Bandwidth {
            target,
            min_bandwidth_mbps,
            required,
        } => Some((
            Metric::Bandwidth(*min_bandwidth_mbps),
            target.as_ref(),
            *required,
        )),
        AffinityRule::Loss {
            target,
            max_loss,
            required,
        } => Some((Metric::Loss(*max_loss), target.as_ref(), *required)),
        AffinityRule::Zone { .. } => None,
    }
}

fn first_violation(
    req: &PlacementRequest<'_>,
    node: &NodeView,
    view: &ClusterView,
    mode: Mode,
) -> Option<Rejection> {
    for rule in &req.spec.scheduling.affinity {
        let Some((metric, target, true)) = network_rule(rule) else {
            continue;
        };
        let result = match target {
            Some(t) => check_target(metric, t, node, view, mode),
            None => req
                .spec
                .dependencies()
                .into_iter()
                .try_for_each(|d| check_target(metric, d, node, view, mode)),
        };
        if let Err(r) = result {
            return Some(r);
        }
    }
    None
}

/// The soft rules (`required: false`) of the spec, scored on `node` as `(sum, terms)`: one term
/// per rule and running target (a rule without a target: per running dependency), 1.0 when the
/// node meets it, 0.5 when the pair is not measured, 0.0 when it breaks it. Targets that run
/// nowhere give no term. The network scorer averages these with its dependency terms.
pub(crate) fn soft_rule_terms(
    req: &PlacementRequest<'_>,
    node: &NodeView,
    view: &ClusterView,
) -> (f64, u32) {
    let (mut sum, mut terms) = (0.0, 0u32);
    for rule in &req.spec.scheduling.affinity {
        let Some((metric, target, false)) = network_rule(rule) else {
            continue;
        };
        let targets: Vec<&str> = match target {
            Some(t) => vec![t.as_str()],
            None => req.spec.dependencies(),
        };
        for t in targets {
            if view.service_nodes(t).next().is_none() {
                continue;
            }
            sum += match check_target(metric, t, node, view, PLACE) {
                Ok(()) => 1.0,
                Err(r) if r.kind == reasons::UNMEASURED => 0.5,
                Err(_) => 0.0,
            };
            terms += 1;
        }
    }
    (sum, terms)
}

/// Whether the spec has a soft network rule.
pub(crate) fn has_soft_rule(spec: &orion_core::model::ServiceSpec) -> bool {
    spec.scheduling
        .affinity
        .iter()
        .any(|r| matches!(network_rule(r), Some((_, _, false))))
}

impl Filter for NetworkRulesFilter {
    fn name(&self) -> &'static str {
        NAME
    }

    fn check(
        &self,
        req: &PlacementRequest<'_>,
        node: &NodeView,
        view: &ClusterView,
    ) -> Result<(), Rejection> {
        match first_violation(req, node, view, PLACE) {
            None => Ok(()),
            Some(r) => Err(r),
        }
    }

    fn feasible(&self, req: &PlacementRequest<'_>, node: &NodeView, view: &ClusterView) -> bool {
        // Fast path: most specs have no network rule.
        !has_network_rule(req) || first_violation(req, node, view, PLACE).is_none()
    }

    fn recheck(
        &self,
        req: &PlacementRequest<'_>,
        node: &NodeView,
        view: &ClusterView,
        tolerance: f64,
    ) -> Result<(), Rejection> {
        if !has_network_rule(req) {
            return Ok(());
        }
        let mode = Mode {
            slack: 1.0 + tolerance.max(0.0),
            unmeasured_passes: true,
        };
        match first_violation(req, node, view, mode) {
            None => Ok(()),
            Some(r) => Err(r),
        }
    }
}

/// Whether the spec has a rule this filter applies (most have none).
fn has_network_rule(req: &PlacementRequest<'_>) -> bool {
    req.spec
        .scheduling
        .affinity
        .iter()
        .any(|r| matches!(network_rule(r), Some((_, _, true))))
}

impl NetworkRulesFilter {
    /// The filter.
    pub fn new() -> Self {
        NetworkRulesFilter
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scoring::test_support::*;
    use orion_core::model::ServiceSpec;

    fn latency_spec(max: f64) -> ServiceSpec {
        let mut s = ServiceSpec::new("api", "img", 1);
        s.scheduling.affinity = vec![AffinityRule::Latency {
            target: "db".into(),
            max_latency_ms: max,
            required: true,
        }];
        s
    }

    fn passing(spec: &ServiceSpec, v: &ClusterView) -> Vec<String> {
        orion_core::testing::scheduler::passing_nodes(&NetworkRulesFilter, spec, v)
    }

    #[test]
    fn max_latency_keeps_nodes_within_the_bound_of_the_target() {
        let v = three_zone_view(&[("db", "a1")]);
        assert_eq!(passing(&latency_spec(5.0), &v), ["a1", "a2", "a3"]);
        assert_eq!(passing(&latency_spec(50.0), &v).len(), 9, "x is unmeasured");
        let r = NetworkRulesFilter
            .check(
                &PlacementRequest::new(&latency_spec(5.0), "t"),
                v.node("b1").unwrap(),
                &v,
            )
            .unwrap_err();
        assert_eq!(r.kind, reasons::LATENCY_TOO_HIGH);
        assert!(r.transient);
        assert!(r.detail.contains("30.0 ms"), "{}", r.detail);
    }

    #[test]
    fn an_unmeasured_pair_fails_a_hard_rule() {
        let v = three_zone_view(&[("db", "a1")]);
        let r = NetworkRulesFilter
            .check(
                &PlacementRequest::new(&latency_spec(50.0), "t"),
                v.node("x").unwrap(),
                &v,
            )
            .unwrap_err();
        assert_eq!(r.kind, reasons::UNMEASURED);
    }

    #[test]
    fn a_target_not_running_yet_does_not_constrain() {
        let v = three_zone_view(&[]);
        assert_eq!(passing(&latency_spec(1.0), &v).len(), 10);
    }

    #[test]
    fn bandwidth_and_loss_without_target_apply_to_every_running_dependency() {
        let v = three_zone_view(&[("db", "a1"), ("cache", "b1")]);
        let mut s = ServiceSpec::new("api", "img", 1);
        s.depends_on = vec!["db".into(), "cache".into(), "later".into()];
        s.scheduling.affinity = vec![AffinityRule::Loss {
            target: None,
            max_loss: 0.01,
            required: true,
        }];
        // Loss is 0 in zone, 0.02 across zones: no node is in both a and b.
        assert_eq!(passing(&s, &v), Vec::<String>::new());
        s.scheduling.affinity = vec![AffinityRule::Bandwidth {
            target: Some("db".into()),
            min_bandwidth_mbps: 500.0,
            required: true,
        }];
        // 1000 Mbit/s in zone, 100 across.
        assert_eq!(passing(&s, &v), ["a1", "a2", "a3"]);
    }
}
