//! The [`Filter`] and [`Scorer`] contracts, checked over a set of views and requests:
//!
//! - a filter's `feasible` agrees with `check(..).is_ok()`, and its rejections name the filter
//!   and have a non-empty kind;
//! - a scorer's score is a number in `[0, 1]`, and `score_prepared` (after `prepare`) gives
//!   the same score;
//! - both give the same answer twice for the same inputs, and never panic.
//!
//! [`views`] and [`specs`] are a stock set of inputs (empty, loaded, zoned, with network
//! measurements, draining nodes, rules of every kind); pass your own too.
//!
//! ```
//! use orion_core::scheduler::{filters, scorers};
//! use orion_core::testing::scheduler::{check_filter, check_scorer, specs, views};
//!
//! let (views, specs) = (views(), specs());
//! for f in filters::standard() {
//!     check_filter(f.as_ref(), &views, &specs);
//! }
//! check_scorer(&scorers::Spread::new(), &views, &specs);
//! ```

use crate::model::spec::{AffinityRule, AntiAffinityRule};
use crate::model::{
    NetworkMatrix, NetworkMeasurement, Node, NodeStatus, Resources, ServiceSpec, Task, TaskState,
};
use crate::scheduler::{ClusterView, Filter, PlacementRequest, Scorer};

/// Checks the [`Filter`] contract on every node of every view for every spec. Panics with the
/// filter, node and spec on a breach.
pub fn check_filter(filter: &dyn Filter, views: &[ClusterView], specs: &[ServiceSpec]) {
    for view in views {
        for spec in specs {
            let req = PlacementRequest::new(spec, "conformance-0");
            for node in view.nodes() {
                let at = format!("{} on {} for {}", filter.name(), node.id(), spec.name);
                let checked = filter.check(&req, node, view);
                assert_eq!(
                    filter.feasible(&req, node, view),
                    checked.is_ok(),
                    "{at}: feasible != check"
                );
                assert_eq!(
                    checked,
                    filter.check(&req, node, view),
                    "{at}: not deterministic"
                );
                if let Err(r) = checked {
                    assert_eq!(
                        r.filter,
                        filter.name(),
                        "{at}: the rejection names another filter"
                    );
                    assert!(!r.kind.is_empty(), "{at}: empty kind");
                }
            }
        }
    }
}

/// Checks the [`Scorer`] contract on every node of every view for every spec. Panics with the
/// scorer, node and spec on a breach.
pub fn check_scorer(scorer: &dyn Scorer, views: &[ClusterView], specs: &[ServiceSpec]) {
    for view in views {
        for spec in specs {
            let req = PlacementRequest::new(spec, "conformance-0");
            let prepared = scorer.prepare(&req, view);
            for node in view.nodes() {
                let at = format!("{} on {} for {}", scorer.name(), node.id(), spec.name);
                let s = scorer.score(&req, node, view);
                if let Some(p) = &prepared {
                    let with = scorer.score_prepared(p.as_ref(), &req, node, view);
                    assert_eq!(
                        s.to_bits(),
                        with.to_bits(),
                        "{at}: score_prepared {with} != score {s}"
                    );
                }
                assert!((0.0..=1.0).contains(&s), "{at}: score {s} outside [0, 1]");
                assert_eq!(
                    s.to_bits(),
                    scorer.score(&req, node, view).to_bits(),
                    "{at}: not deterministic"
                );
            }
        }
    }
}

/// The ids of `view`'s nodes that `filter` lets through for `spec`, in view order, after
/// asserting on each that `feasible` agrees with `check(..).is_ok()`.
pub fn passing_nodes(filter: &dyn Filter, spec: &ServiceSpec, view: &ClusterView) -> Vec<String> {
    let req = PlacementRequest::new(spec, "t");
    view.nodes()
        .iter()
        .filter(|n| {
            let ok = filter.feasible(&req, n, view);
            assert_eq!(
                ok,
                filter.check(&req, n, view).is_ok(),
                "{}: feasible and check agree on {}",
                filter.name(),
                n.id()
            );
            ok
        })
        .map(|n| n.id().to_owned())
        .collect()
}

/// Stock views: empty; one node with no capacity; three zones (`a`, `b`, `edge-1`) of loaded
/// nodes, one draining, one with `max_tasks`, `db` running in zone `a`, RTT measured between
/// some pairs (1 ms within a zone, 30 ms across) and not others.
pub fn views() -> Vec<ClusterView> {
    let gib = 1 << 30;
    let mut nodes = Vec::new();
    for (z, zone) in ["a", "b", "edge-1"].iter().enumerate() {
        for i in 0..3 {
            let mut n = Node::new(
                format!("{zone}-{i}"),
                Resources::new(2000 * (i + 1), 4 * gib),
            )
            .with_label("zone", *zone);
            if z == 1 && i == 0 {
                n.status = NodeStatus::Draining;
            }
            if z == 2 && i == 1 {
                n.max_tasks = Some(1);
            }
            nodes.push(n);
        }
    }
    let mut net = NetworkMatrix::new();
    for (i, a) in nodes.iter().enumerate() {
        for b in nodes.iter().skip(i + 1).step_by(2) {
            let same = a.zone() == b.zone();
            net.insert(NetworkMeasurement {
                from: a.id.clone(),
                to: b.id.clone(),
                rtt_ms: if same { 1.0 } else { 30.0 },
                jitter_ms: 0.2,
                loss: if same { 0.0 } else { 0.02 },
                bandwidth_mbps: (i % 2 == 0).then_some(if same { 1000.0 } else { 100.0 }),
                measured_at: 0,
                ..NetworkMeasurement::default()
            });
        }
    }
    let task = |service: &str, node: &str, cpu| {
        let mut t = Task::new(service, 0, 1, Resources::new(cpu, gib / 2));
        t.node = Some(node.into());
        t.state = TaskState::Running;
        t
    };
    let tasks = [
        task("db", "a-0", 500),
        task("db", "a-1", 500),
        task("web", "b-1", 1500),
        task("x", "edge-1-1", 100),
    ];
    vec![
        ClusterView::default(),
        ClusterView::new(
            vec![Node::new("empty", Resources::default())],
            &[],
            NetworkMatrix::new(),
        ),
        ClusterView::new(nodes, &tasks, net),
    ]
}

/// Stock specs: plain; large; with every kind of rule; depending on a service that runs and on
/// one that does not.
pub fn specs() -> Vec<ServiceSpec> {
    let plain = ServiceSpec::new("web", "img", 3);
    let mut large = ServiceSpec::new("big", "img", 1);
    large.resources.cpu_millicores = 3000;
    let mut rules = ServiceSpec::new("api", "img", 2);
    rules.depends_on = vec!["db".into(), "later".into()];
    rules.scheduling.max_per_node = Some(1);
    rules.scheduling.spread_by = Some("zone".into());
    rules.scheduling.affinity = vec![
        AffinityRule::Latency {
            target: "db".into(),
            max_latency_ms: 5.0,
            required: true,
        },
        AffinityRule::Bandwidth {
            target: None,
            min_bandwidth_mbps: 500.0,
            required: true,
        },
        AffinityRule::Loss {
            target: Some("db".into()),
            max_loss: 0.01,
            required: true,
        },
        AffinityRule::Zone {
            zones: vec!["a".into()],
            required: false,
        },
    ];
    rules.scheduling.anti_affinity = vec![
        AntiAffinityRule::NetworkZone {
            avoid: "edge-zones".into(),
        },
        AntiAffinityRule::Service {
            service: "web".into(),
        },
    ];
    let mut zoned = ServiceSpec::new("zoned", "img", 1);
    zoned.scheduling.zones = vec!["b".into()];
    zoned
        .scheduling
        .node_selector
        .insert("disk".into(), "ssd".into());
    zoned.depends_on = vec!["later".into()];
    vec![plain, large, rules, zoned]
}
