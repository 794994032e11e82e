//! Network-aware placement: the [`NetworkScorer`] and the [`NetworkRulesFilter`], over orion-core's
//! [`Filter`](orion_core::scheduler::Filter) and [`Scorer`] traits, and the pipelines that use
//! them.
//!
//! ```
//! use orion_core::model::{NetworkMatrix, NetworkMeasurement, Node, Resources, ServiceSpec};
//! use orion_core::scheduler::{ClusterView, PlacementRequest, SchedulerConfig};
//! use orion_netscore::scoring::network_aware_pipeline;
//!
//! let nodes: Vec<Node> = ["near", "far", "db-node"]
//!     .into_iter()
//!     .map(|id| Node::new(id, Resources::new(4000, 8 << 30)))
//!     .collect();
//! let mut net = NetworkMatrix::new();
//! for (to, rtt_ms) in [("near", 1.0), ("far", 40.0)] {
//!     net.insert(NetworkMeasurement {
//!         from: "db-node".into(), to: to.into(), rtt_ms,
//!         jitter_ms: 0.0, loss: 0.0, bandwidth_mbps: None, measured_at: 0,
//!         ..NetworkMeasurement::default()
//!     });
//! }
//! let mut view = ClusterView::new(nodes, &[], net);
//! let db = ServiceSpec::new("db", "postgres", 1);
//! view.assign_request("db-node", &PlacementRequest::new(&db, "db-0"));
//!
//! let mut api = ServiceSpec::new("api", "api:1", 1);
//! api.depends_on = vec!["db".into()];
//! api.resources.cpu_millicores = 3950; // db-node has 3900m free: too small
//! let scheduler = network_aware_pipeline(SchedulerConfig::default());
//! let outcome = scheduler.place(&PlacementRequest::new(&api, "api-0"), &view);
//! assert_eq!(outcome.node(), Some("near"));
//! ```

mod network;
mod rules;

pub use network::{
    BANDWIDTH_REF_MBPS, LATENCY_REF_MS, LOSS_ZERO, NEUTRAL, NetworkScorer, link_score,
};
pub use rules::NetworkRulesFilter;

use orion_core::scheduler::{Catalog, Scheduler, SchedulerConfig, filters};

/// The network scorer's name (`network`).
pub const NETWORK: &str = network::NAME;
/// The network rules filter's name (`network_rules`).
pub const NETWORK_RULES: &str = rules::NAME;

const WHY_RULES: &str = "hard network rules: max latency, min bandwidth, max loss to a target";
const WHY_NETWORK: &str = "the formula's network term: near the services it depends on";

/// orion-core's [`Catalog::builtin`] plus `network_rules` and `network`, for pipelines composed
/// by name in `orion.yaml`.
pub fn catalog() -> Catalog {
    let mut c = Catalog::builtin();
    c.add_filter(NETWORK_RULES, WHY_RULES, |_| {
        Box::new(NetworkRulesFilter::new())
    });
    c.add_scorer(NETWORK, WHY_NETWORK, |_| Box::new(NetworkScorer::new()));
    c
}

/// The network-aware pipeline: orion-core's standard filters then `network_rules`; the default
/// scorers (`least_allocated_cpu` x `a`, `least_allocated_memory` x `b`, `spread`,
/// `zone_affinity`) plus `network` x `c` = `config.weights.network` (0.4 by default), so
/// `score = a*cpu + b*memory + c*network` (+ spread and preferred zones). Nodes without a `zone`
/// label get one from measured latency ([`crate::zones::LatencyZones`]).
pub fn network_aware_pipeline(config: SchedulerConfig) -> Scheduler {
    let builtin = Catalog::builtin();
    let mut b = Scheduler::builder(config.clone());
    for f in filters::standard() {
        let why = builtin.filter_why(f.name()).unwrap_or("");
        b = b.filter(f, why);
    }
    b = b.filter(Box::new(NetworkRulesFilter::new()), WHY_RULES);
    for (s, w) in Scheduler::default_scorers(&config) {
        let why = builtin.scorer_why(s.name()).unwrap_or("");
        b = b.scorer(s, w, why);
    }
    b.scorer(
        Box::new(NetworkScorer::new()),
        config.weights.network,
        WHY_NETWORK,
    )
    .build()
    .with_annotator(std::sync::Arc::new(crate::zones::LatencyZones::default()))
}

#[cfg(test)]
pub(crate) mod test_support {
    //! A 3-zone cluster: a1-a3, b1-b3, c1-c3 (1 ms, no loss, 1000 Mbit/s within a zone; 30 ms,
    //! 2 % loss, 100 Mbit/s between zones) and `x`, which has no zone and no measurement.
    use orion_core::model::{NetworkMatrix, NetworkMeasurement, Node, Resources, Task, TaskState};
    use orion_core::scheduler::ClusterView;

    pub fn three_zone_view(running: &[(&str, &str)]) -> ClusterView {
        let mut nodes = Vec::new();
        for z in ["a", "b", "c"] {
            for i in 1..=3 {
                nodes.push(
                    Node::new(format!("{z}{i}"), Resources::new(4000, 8 << 30))
                        .with_label("zone", z),
                );
            }
        }
        let mut net = NetworkMatrix::new();
        for (i, a) in nodes.iter().enumerate() {
            for b in &nodes[i + 1..] {
                let same = a.zone() == b.zone();
                net.insert(NetworkMeasurement {
                    from: a.id.clone(),
                    to: b.id.clone(),
                    rtt_ms: if same { 1.0 } else { 30.0 },
                    jitter_ms: 0.0,
                    loss: if same { 0.0 } else { 0.02 },
                    bandwidth_mbps: Some(if same { 1000.0 } else { 100.0 }),
                    measured_at: 0,
                    ..NetworkMeasurement::default()
                });
            }
        }
        nodes.push(Node::new("x", Resources::new(4000, 8 << 30)));
        let tasks: Vec<Task> = running
            .iter()
            .map(|(service, node)| {
                let mut t = Task::new(service, 0, 1, Resources::new(100, 64 << 20));
                t.node = Some((*node).into());
                t.state = TaskState::Running;
                t
            })
            .collect();
        ClusterView::new(nodes, &tasks, net)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use orion_core::model::ServiceSpec;
    use orion_core::model::spec::AffinityRule;
    use orion_core::scheduler::{PlacementRequest, reasons};
    use test_support::three_zone_view;

    #[test]
    fn the_pipeline_weights_the_network_term_and_explains_every_stage() {
        let s = network_aware_pipeline(SchedulerConfig::default());
        assert_eq!(s.scorer_weights().last(), Some(&(NETWORK, 0.4)));
        assert_eq!(s.filter_names().last(), Some(&NETWORK_RULES));
        assert!(
            s.stages().iter().all(|st| !st.why.is_empty()),
            "{}",
            s.describe()
        );
    }

    #[test]
    fn dependencies_pull_replicas_into_their_zone() {
        let mut v = three_zone_view(&[("db", "b2")]);
        let s = network_aware_pipeline(SchedulerConfig::with_seed(3));
        let mut api = ServiceSpec::new("api", "img", 3);
        api.depends_on = vec!["db".into()];
        for i in 0..3 {
            let id = format!("api-{i}");
            let req = PlacementRequest::new(&api, &id);
            let node = s.place(&req, &v).node().expect("placed").to_owned();
            assert!(node.starts_with('b'), "replica {i} on {node}");
            v.assign_request(&node, &req);
        }
    }

    #[test]
    fn a_rule_no_node_meets_is_reported_by_kind() {
        let v = three_zone_view(&[("db", "x")]);
        let mut api = ServiceSpec::new("api", "img", 1);
        api.scheduling.affinity = vec![AffinityRule::Latency {
            target: "db".into(),
            max_latency_ms: 5.0,
            required: true,
        }];
        api.resources.cpu_millicores = 3950; // too big for x, which runs db
        let out = network_aware_pipeline(SchedulerConfig::default())
            .place(&PlacementRequest::new(&api, "api-0"), &v);
        let summary = out.summary().expect("unplaceable");
        let kinds: Vec<_> = summary.groups.iter().map(|g| g.kind).collect();
        assert_eq!(
            kinds,
            [reasons::UNMEASURED, reasons::INSUFFICIENT_CPU],
            "{summary}"
        );
        assert!(summary.groups[0].transient);
    }

    #[test]
    fn the_catalog_knows_the_network_names() {
        let c = catalog();
        let s = c
            .build(
                &["node_status", NETWORK_RULES],
                &[(NETWORK, 1.0)],
                SchedulerConfig::default(),
            )
            .unwrap();
        assert_eq!(s.filter_names(), ["node_status", NETWORK_RULES]);
        let err = c
            .build(&["netwrk_rules"], &[], SchedulerConfig::default())
            .unwrap_err();
        assert!(err.to_string().contains("network_rules"), "{err}");
    }
}

#[cfg(test)]
mod conformance {
    use super::*;
    use orion_core::testing::scheduler::{check_filter, check_scorer, specs, views};

    #[test]
    fn the_network_stages_meet_their_contracts() {
        let (mut views, specs) = (views(), specs());
        views.push(test_support::three_zone_view(&[
            ("db", "a1"),
            ("later", "x"),
        ]));
        check_filter(&NetworkRulesFilter::new(), &views, &specs);
        check_scorer(&NetworkScorer::new(), &views, &specs);
    }
}
