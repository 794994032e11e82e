//! Pipeline tests: rejection reasons, explanations, determinism, sampling, weights, safety.

use super::filters::test_support::*;
use super::*;
use crate::model::spec::ScoringWeights;
use crate::model::{NodeStatus, ZONE_LABEL};

/// `n` heterogeneous nodes over 4 zones: sizes cycle through 3 shapes.
fn cluster(n: usize) -> Vec<Node> {
    (0..n)
        .map(|i| {
            let (cpu, mem) = [(2000, 2048), (4000, 8192), (8000, 16384)][i % 3];
            node(&format!("n{i:04}"), cpu, mem).with_label(ZONE_LABEL, format!("z{}", i % 4))
        })
        .collect()
}

fn place_many(s: &Scheduler, v: &mut ClusterView, spec: &ServiceSpec, count: usize) -> Vec<String> {
    (0..count)
        .map(|i| {
            let id = format!("{}-{i}", spec.name);
            let req = PlacementRequest::new(spec, &id);
            match s.place(&req, v) {
                PlacementOutcome::Placed(p) => {
                    v.assign_request(&p.node, &req);
                    p.node
                }
                PlacementOutcome::Unplaceable { .. } => "-".to_owned(),
            }
        })
        .collect()
}

fn sampled(seed: u64, sample: Sample) -> SchedulerConfig {
    SchedulerConfig {
        seed,
        sample,
        full_scan_up_to: 0,
        ..SchedulerConfig::default()
    }
}

#[test]
fn unplaceable_reports_grouped_reasons() {
    let mut nodes: Vec<Node> = (0..3).map(|i| node(&format!("n{i}"), 4000, 128)).collect();
    let mut drain = node("n3", 4000, 4096);
    drain.status = NodeStatus::Draining;
    nodes.push(drain);
    let v = view(nodes, &[]);
    let s = Scheduler::default_pipeline(SchedulerConfig::default());
    let spec = spec("web", 100, 512);
    let out = s.place(&PlacementRequest::new(&spec, "web-0"), &v);
    let PlacementOutcome::Unplaceable { rejections } = &out else {
        panic!("expected unplaceable, got {out:?}");
    };
    assert_eq!(rejections.len(), 4);
    let summary = out.summary().unwrap();
    assert_eq!(summary.groups.len(), 2);
    assert_eq!(
        (summary.groups[0].filter, summary.groups[0].nodes),
        ("resources", 3)
    );
    let text = out.to_string();
    assert_eq!(
        text,
        "no feasible node (4 nodes rejected): \
         3 nodes: insufficient memory (needs 512 MiB, 128 MiB free) on n0, n1, n2; \
         1 node: node not ready (draining; only ready nodes take new tasks) on n3"
    );
    assert_eq!(
        summary.groups[0].kind,
        crate::scheduler::reasons::INSUFFICIENT_MEMORY
    );
    assert!(summary.groups.iter().all(|g| g.transient));
}

#[test]
fn a_placement_keeps_every_scorer_score_and_explains_itself() {
    let v = view(cluster(6), &[]);
    let s = Scheduler::default_pipeline(SchedulerConfig::default());
    let spec = spec("web", 500, 512);
    let out = s.place(&PlacementRequest::new(&spec, "web-0"), &v);
    let p = out.placement().expect("placed");
    assert_eq!(p.candidates.len(), 6);
    assert_eq!(p.candidates[0].node, p.node);
    assert_eq!((p.visited, p.nodes, p.feasible), (6, 6, 6));
    let names: Vec<_> = p.weights.iter().map(|(n, _)| *n).collect();
    assert_eq!(
        names,
        [
            "least_allocated_cpu",
            "least_allocated_memory",
            "spread",
            "zone_affinity"
        ]
    );
    for c in &p.candidates {
        let weighted: f64 = c
            .by_scorer
            .iter()
            .zip(&p.weights)
            .map(|((_, s), (_, w))| s * w)
            .sum();
        assert!((weighted - c.total).abs() < 1e-9);
    }
    assert!(p.candidates.windows(2).all(|w| w[0].total >= w[1].total));
    // The biggest nodes (8000m, 16 GiB) are n0002 and n0005.
    assert!(["n0002", "n0005"].contains(&p.node.as_str()), "{}", p.node);
    let table = p.explain();
    assert!(table.contains("least_allocated_cpu x0.30"), "{table}");
    assert!(
        table.contains("visited 6 of 6 nodes, 6 feasible"),
        "{table}"
    );
    assert_eq!(table.lines().count(), 2 + 6, "{table}");
}

#[test]
fn preferred_zones_win_when_resources_tie() {
    let v = view(cluster(8), &[]);
    let mut spec = spec("web", 100, 64);
    spec.scheduling.affinity = vec![crate::model::spec::AffinityRule::Zone {
        zones: vec!["z1".into()],
        required: false,
    }];
    let s = Scheduler::default_pipeline(SchedulerConfig::with_seed(3));
    let out = s.place(&PlacementRequest::new(&spec, "web-0"), &v);
    let node = out.node().unwrap();
    assert_eq!(v.node(node).unwrap().node.zone(), Some("z1"), "{node}");
}

#[test]
fn explanation_is_capped_to_the_top_candidates() {
    let v = view(cluster(40), &[]);
    let config = SchedulerConfig {
        explain_top: 3,
        ..SchedulerConfig::default()
    };
    let spec = spec("web", 500, 512);
    let p = Scheduler::default_pipeline(config)
        .place(&PlacementRequest::new(&spec, "web-0"), &v)
        .placement()
        .cloned()
        .unwrap();
    assert_eq!(p.candidates.len(), 3);
    assert_eq!(p.feasible, 40);
    assert_eq!(p.candidates[0].node, p.node);
}

#[test]
fn same_seed_same_sequence_over_1000_tasks() {
    let spec = spec("web", 50, 32);
    let run = |seed| {
        let mut v = view(cluster(300), &[]);
        let s = Scheduler::default_pipeline(sampled(seed, Sample::Log2));
        place_many(&s, &mut v, &spec, 1000)
    };
    let a = run(7);
    assert_eq!(a.len(), 1000);
    assert!(a.iter().all(|n| n != "-"));
    assert_eq!(a, run(7));
    assert_ne!(a, run(8));
}

#[test]
fn ties_are_broken_by_the_seed_not_by_node_order() {
    // Identical empty nodes: every score ties, so only the seed decides.
    let nodes: Vec<Node> = (0..20)
        .map(|i| node(&format!("n{i:02}"), 1000, 1024))
        .collect();
    let v = view(nodes, &[]);
    let spec = spec("web", 10, 16);
    let winners: std::collections::BTreeSet<String> = (0..10)
        .map(|seed| {
            Scheduler::default_pipeline(SchedulerConfig::with_seed(seed))
                .place(&PlacementRequest::new(&spec, "web-0"), &v)
                .node()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert!(winners.len() > 1, "{winners:?}");
}

#[test]
fn sampling_visits_the_expected_number_of_nodes() {
    let v = view(cluster(1000), &[]);
    let spec = spec("web", 10, 16);
    let req = PlacementRequest::new(&spec, "web-0");
    let visit = |sample| {
        let p = Scheduler::default_pipeline(sampled(1, sample))
            .place(&req, &v)
            .placement()
            .cloned()
            .unwrap();
        (p.visited, p.feasible)
    };
    assert_eq!(visit(Sample::Log2), (10, 10)); // ceil(log2 1000) = 10
    assert_eq!(visit(Sample::Fixed(5)), (5, 5));
    assert_eq!(visit(Sample::All), (1000, 1000));
    assert_eq!(Sample::Log2.limit(5000), 13);
    assert_eq!(Sample::Log2.limit(3), 2);
    assert_eq!(Sample::Log2.limit(1), 1);
    assert_eq!(Sample::Fixed(0).limit(10), 1);
    // Below the full-scan threshold every node is scored.
    let full = SchedulerConfig::default().sample_limit(100);
    assert_eq!(full, 100);
}

#[test]
fn sampling_counts_only_feasible_nodes() {
    // Every other node is draining: Log2 still finds 10 feasible ones, visiting about twice.
    let nodes: Vec<Node> = cluster(1000)
        .into_iter()
        .enumerate()
        .map(|(i, mut n)| {
            if i % 2 == 1 {
                n.status = NodeStatus::Draining;
            }
            n
        })
        .collect();
    let v = view(nodes, &[]);
    let spec = spec("web", 10, 16);
    let p = Scheduler::default_pipeline(sampled(3, Sample::Log2))
        .place(&PlacementRequest::new(&spec, "web-0"), &v)
        .placement()
        .cloned()
        .unwrap();
    assert_eq!(p.feasible, 10);
    assert_eq!(
        p.visited,
        10 + p.filtered.iter().map(|(_, c)| *c as usize).sum::<usize>()
    );
    assert_eq!(p.filtered, [("node_status", (p.visited - 10) as u32)]);
    assert!((19..=20).contains(&p.visited), "{}", p.visited);
}

#[test]
fn weights_change_the_winner() {
    // "cpu" has cpu to spare, "mem" has memory to spare.
    let v = view(
        vec![node("cpu", 16000, 2048), node("mem", 2000, 16384)],
        &[],
    );
    let mut spec = spec("web", 500, 512);
    let s = Scheduler::default_pipeline(SchedulerConfig::default());
    spec.scheduling.weights = Some(ScoringWeights {
        cpu: 1.0,
        memory: 0.0,
        network: 0.0,
    });
    assert_eq!(
        s.place(&PlacementRequest::new(&spec, "t"), &v).node(),
        Some("cpu")
    );
    spec.scheduling.weights = Some(ScoringWeights {
        cpu: 0.0,
        memory: 1.0,
        network: 0.0,
    });
    let out = s.place(&PlacementRequest::new(&spec, "t"), &v);
    assert_eq!(out.node(), Some("mem"));
    let p = out.placement().unwrap();
    assert_eq!(p.weights[0], ("least_allocated_cpu", 0.0));
    assert_eq!(
        p.weights[2],
        ("spread", 0.3),
        "fixed scorers keep their weight"
    );
    // Cluster weights from the config act the same when the spec has none.
    spec.scheduling.weights = None;
    let config = SchedulerConfig {
        weights: ScoringWeights {
            cpu: 0.9,
            memory: 0.1,
            network: 0.0,
        },
        ..SchedulerConfig::default()
    };
    let s = Scheduler::default_pipeline(config);
    assert_eq!(
        s.place(&PlacementRequest::new(&spec, "t"), &v).node(),
        Some("cpu")
    );
}

#[test]
fn never_places_on_an_infeasible_node_and_fills_up() {
    let mut nodes = cluster(24);
    for (i, n) in nodes.iter_mut().enumerate() {
        n.max_tasks = Some(3 + (i % 4) as u32);
        if i % 7 == 0 {
            n.status = NodeStatus::Draining;
        }
    }
    let mut v = view(nodes, &[]);
    let mut web = spec("web", 700, 900);
    web.scheduling.avoid_zones = vec!["z3".into()];
    web.scheduling.max_per_node = Some(2);
    let s = Scheduler::default_pipeline(sampled(11, Sample::Fixed(4)));
    let all = filters::standard();
    let mut placed = 0;
    for i in 0..300 {
        let id = format!("web-{i}");
        let req = PlacementRequest::new(&web, &id);
        match s.place(&req, &v) {
            PlacementOutcome::Placed(p) => {
                let nv = v.node(&p.node).unwrap();
                for f in &all {
                    assert!(
                        f.check(&req, nv, &v).is_ok(),
                        "{} broke {}",
                        p.node,
                        f.name()
                    );
                }
                v.assign_request(&p.node, &req);
                placed += 1;
            }
            PlacementOutcome::Unplaceable { rejections } => {
                assert_eq!(rejections.len(), 24, "every node was checked");
                break;
            }
        }
    }
    assert!(placed > 10, "{placed}");
    assert!(placed < 300, "the cluster must fill up");
}

#[test]
fn presets_and_names() {
    let s = Scheduler::with_scorer("epvm", SchedulerConfig::default()).unwrap();
    assert_eq!(s.scorer_weights(), [("epvm", 1.0)]);
    assert_eq!(s.filter_names(), filters::NAMES);
    assert!(Scheduler::with_scorer("nope", SchedulerConfig::default()).is_err());
    let err = Scheduler::from_names(
        &["resources", "gpu"],
        &[("spread", 1.0), ("least_loaded", f64::NAN)],
        SchedulerConfig::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("scheduler.filters[1]: got \"gpu\""), "{err}");
    assert!(
        err.contains("scheduler.scorers[1].weight: got NaN"),
        "{err}"
    );
    assert!(
        err.contains("scheduler.scorers[1].name: got \"least_loaded\""),
        "{err}"
    );
    let ok = Scheduler::from_names(
        &["resources"],
        &[("spread", 2.0)],
        SchedulerConfig::default(),
    )
    .unwrap();
    assert_eq!(ok.scorer_weights(), [("spread", 2.0)]);
}

#[test]
fn config_validation_and_sanitised_weights() {
    let bad = SchedulerConfig {
        weights: ScoringWeights {
            cpu: -1.0,
            memory: f64::INFINITY,
            network: 0.4,
        },
        sample: Sample::Fixed(0),
        ..SchedulerConfig::default()
    };
    let errs = bad.validate().unwrap_err();
    assert_eq!(errs.0.len(), 3, "{errs}");
    assert!(SchedulerConfig::default().validate().is_ok());
    let s = Scheduler::default_pipeline(bad);
    assert_eq!(s.scorer_weights()[0], ("least_allocated_cpu", 0.0));
}

/// A scorer that misbehaves: NaN for one node, out of range for the other.
#[derive(Debug)]
struct Wild;

impl Scorer for Wild {
    fn name(&self) -> &'static str {
        "wild"
    }
    fn score(&self, _req: &PlacementRequest<'_>, node: &NodeView, _view: &ClusterView) -> f64 {
        if node.id() == "a" { f64::NAN } else { 7.0 }
    }
}

#[test]
fn scores_are_clamped_and_nan_counts_as_zero() {
    let v = view(vec![node("a", 1000, 1024), node("b", 1000, 1024)], &[]);
    let s = Scheduler::new(
        vec![],
        vec![(Box::new(Wild), 1.0)],
        SchedulerConfig::default(),
    );
    let spec = spec("web", 1, 1);
    let p = s
        .place(&PlacementRequest::new(&spec, "t"), &v)
        .placement()
        .cloned()
        .unwrap();
    assert_eq!(p.node, "b");
    assert_eq!(p.candidates[0].by_scorer, [("wild", 1.0)]);
    assert_eq!(p.candidates[1].by_scorer, [("wild", 0.0)]);
}

#[test]
fn many_distinct_details_are_capped() {
    let nodes: Vec<Node> = (0..5)
        .map(|i| node(&format!("n{i}"), 4000, 100 + i))
        .collect();
    let v = view(nodes, &[]);
    let spec = spec("web", 100, 512);
    let out = Scheduler::default_pipeline(SchedulerConfig::default())
        .place(&PlacementRequest::new(&spec, "t"), &v);
    let summary = out.summary().unwrap();
    assert_eq!(summary.groups[0].details.len(), 3);
    assert_eq!(summary.groups[0].examples, ["n0", "n1", "n2"]);
    let text = out.to_string();
    assert!(
        text.ends_with("102 MiB free; ...) on n0, n1, n2, ..."),
        "{text}"
    );
}

#[test]
fn an_empty_view_is_unplaceable_without_panicking() {
    let v = view(vec![], &[]);
    let spec = spec("web", 1, 1);
    let out = Scheduler::default_pipeline(SchedulerConfig::default())
        .place(&PlacementRequest::new(&spec, "t"), &v);
    assert_eq!(out, PlacementOutcome::Unplaceable { rejections: vec![] });
    assert_eq!(out.to_string(), "no feasible node (0 nodes rejected)");
}

#[test]
fn spread_and_zones_work_together_in_the_default_pipeline() {
    let mut v = view(cluster(8), &[]);
    let spec = spec("web", 100, 64);
    let s = Scheduler::default_pipeline(SchedulerConfig::with_seed(5));
    let placed = place_many(&s, &mut v, &spec, 8);
    let per_zone = v.service_counts_by_label("web", ZONE_LABEL);
    assert_eq!(per_zone.len(), 4, "{placed:?} {per_zone:?}");
    assert!(per_zone.values().all(|c| *c == 2), "{per_zone:?}");
}

#[test]
fn config_reads_from_a_file_with_defaults_for_the_rest() {
    let c: SchedulerConfig =
        serde_json::from_str(r#"{"seed": 3, "sample": {"fixed": 8}, "weights": {"cpu": 1.0}}"#)
            .unwrap();
    assert_eq!(c.seed, 3);
    assert_eq!(c.sample, Sample::Fixed(8));
    assert_eq!(c.weights.cpu, 1.0);
    assert_eq!(
        c.weights.memory, 0.0,
        "an omitted weight is 0, as in a spec"
    );
    assert_eq!(
        c.full_scan_up_to,
        SchedulerConfig::default().full_scan_up_to
    );
    let log2: SchedulerConfig = serde_json::from_str(r#"{"sample": "log2"}"#).unwrap();
    assert_eq!(log2.sample, Sample::Log2);
    let err = serde_json::from_str::<SchedulerConfig>(r#"{"sampel": "all"}"#).unwrap_err();
    assert!(err.to_string().contains("unknown field `sampel`"), "{err}");
}
