//! Network-aware placement benches: time per placement of the network-aware pipeline
//! (`orion_netscore::scoring::network_aware_pipeline`) next to the default one, at 1k and 5k
//! nodes, plus the 3-zone placement-quality figure printed once before the timings.
//!
//! ```text
//! cargo bench --bench network                       # full run
//! cargo bench --bench network -- --warm-up-time 1 --measurement-time 2
//! cargo bench --bench network -- --test             # CI: every bench once, and the figure
//! ```
//!
//! The synthetic cluster: `n` nodes of four shapes across 8 zones, each loaded to a
//! pseudo-random 20-80 %. Two dependencies, `db` and `cache`, run 10 replicas each; every node
//! has a measurement to every node running them (1 ms within a zone, 30 ms across, 0.1 % loss,
//! 1 or 10 Gbit/s). The 20 placed services all depend on both, and one in four also has a hard
//! `maxLatency: 50ms` rule to `db`, so both the filter and the scorer do their work.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput};
use orion_core::model::spec::AffinityRule;
use orion_core::model::{
    NetworkMatrix, NetworkMeasurement, Node, Resources, ServiceSpec, ZONE_LABEL,
};
use orion_core::scheduler::{
    ClusterView, PlacementOutcome, PlacementRequest, Scheduler, SchedulerConfig,
};
use orion_netscore::placement_sim::{Graph, simulate, zoned_matrix};
use orion_netscore::scoring::network_aware_pipeline;

const MIB: u64 = 1024 * 1024;
const ZONES: usize = 8;
const SIZES: [usize; 2] = [1_000, 5_000];
const DEP_REPLICAS: usize = 10;

/// A tiny deterministic generator for the synthetic data.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
}

fn zone_of(i: usize) -> usize {
    i % ZONES
}

/// `n` half-loaded nodes, `db` and `cache` running, and the measurements to their nodes.
fn view(n: usize) -> ClusterView {
    const SHAPES: [(u64, u64); 4] = [
        (4_000, 8_192),
        (8_000, 16_384),
        (16_000, 32_768),
        (32_000, 65_536),
    ];
    let nodes: Vec<Node> = (0..n)
        .map(|i| {
            let (cpu, mem) = SHAPES[(i * 7 + i / 3) % SHAPES.len()];
            Node::new(format!("node-{i:05}"), Resources::new(cpu, mem * MIB))
                .with_label(ZONE_LABEL, format!("zone-{}", zone_of(i)))
        })
        .collect();
    let mut rng = Lcg(42);
    let dep_nodes: Vec<(usize, &str)> = (0..2 * DEP_REPLICAS)
        .map(|k| {
            let node = rng.below(n as u64) as usize;
            (node, if k % 2 == 0 { "db" } else { "cache" })
        })
        .collect();
    let mut net = NetworkMatrix::new();
    for &(d, _) in &dep_nodes {
        for i in 0..n {
            if i == d {
                continue;
            }
            let same = zone_of(i) == zone_of(d);
            net.insert(NetworkMeasurement {
                from: nodes[i].id.clone(),
                to: nodes[d].id.clone(),
                rtt_ms: if same { 1.0 } else { 30.0 } + (i % 10) as f64 * 0.1,
                jitter_ms: 0.1,
                loss: 0.001,
                bandwidth_mbps: Some(if same { 10_000.0 } else { 1_000.0 }),
                measured_at: 0,
                ..NetworkMeasurement::default()
            });
        }
    }
    let loads: Vec<(String, Resources)> = nodes
        .iter()
        .map(|node| {
            let pct = 20 + rng.below(61);
            let c = node.capacity;
            (
                node.id.clone(),
                Resources::new(c.cpu_millicores * pct / 100, c.memory_bytes * pct / 100),
            )
        })
        .collect();
    let ids: Vec<String> = nodes.iter().map(|n| n.id.clone()).collect();
    let mut view = ClusterView::new(nodes, &[], net);
    for (i, (id, load)) in loads.iter().enumerate() {
        view.assign(id, &format!("background-{}", i % 16), *load);
    }
    for (d, service) in dep_nodes {
        view.assign(&ids[d], service, Resources::new(100, 64 * MIB));
    }
    view
}

/// Twenty services that depend on `db` and `cache`; one in four with `maxLatency: 50ms` to db.
fn services() -> Vec<ServiceSpec> {
    (0..20)
        .map(|i| {
            let mut s = ServiceSpec::new(format!("svc-{i:02}"), "bench", 100);
            s.resources.cpu_millicores = [100, 250, 500, 1_000][i % 4];
            s.resources.memory_bytes = [128, 256, 512, 1_024][i % 4] * MIB;
            s.depends_on = vec!["db".into(), "cache".into()];
            if i % 4 == 0 {
                s.scheduling.affinity = vec![AffinityRule::Latency {
                    target: "db".into(),
                    max_latency_ms: 50.0,
                    required: true,
                }];
            }
            s
        })
        .collect()
}

/// The issue's quality goal: 3 zones (1 ms inside, 30 ms across), frontend -> api -> db.
fn three_zone_report() {
    let graph = Graph::parse(
        r#"{"services": [{"name": "frontend", "replicas": 3}, {"name": "api", "replicas": 3},
            {"name": "db", "replicas": 3}], "edges": [["frontend", "api"], ["api", "db"]]}"#,
    )
    .expect("a valid graph");
    let rtt = zoned_matrix(3, 4, 1.0, 30.0);
    let mut ratios = Vec::new();
    for seed in 0..10 {
        let r = simulate(&rtt, &graph, seed).expect("a valid matrix");
        println!("{}", serde_json::to_string(&r).expect("serialisable"));
        ratios.extend(r.ratio);
    }
    let mean = ratios.iter().sum::<f64>() / ratios.len().max(1) as f64;
    let worst = ratios.iter().copied().fold(0.0, f64::max);
    println!(
        "3 zones x 4 nodes, frontend -> api -> db (3 replicas each), 10 seeds: mean ratio {mean:.3}, worst {worst:.3}\n"
    );
}

fn throughput_report(n: usize) {
    let services = services();
    let scheduler = network_aware_pipeline(SchedulerConfig::with_seed(1));
    let mut view = view(n);
    let ids: Vec<(usize, String)> = (0..20_000).map(|j| (j % 20, format!("t-{j}"))).collect();
    let started = std::time::Instant::now();
    let cpu_started = thread_cpu_ns();
    let (mut placed, mut visited) = (0u32, 0usize);
    for (s, id) in &ids {
        let req = PlacementRequest::new(&services[*s], id);
        if let PlacementOutcome::Placed(p) = scheduler.place(&req, &view) {
            view.assign_request(&p.node, &req);
            placed += 1;
            visited += p.visited;
        }
    }
    println!(
        "mean nodes visited per placement: {:.1}",
        visited as f64 / f64::from(placed.max(1))
    );
    let secs = started.elapsed().as_secs_f64();
    let cpu_secs = thread_cpu_ns()
        .zip(cpu_started)
        .map(|(end, start)| (end - start) as f64 / 1e9);
    println!(
        "network-aware pipeline, {n} half-loaded nodes: placed {placed} of {} tasks (place + assign) in {:.1} ms = {:.0} tasks/s",
        ids.len(),
        secs * 1e3,
        f64::from(placed) / secs
    );
    if let Some(cpu) = cpu_secs {
        println!(
            "  on one core (this thread's CPU time, {:.1} ms, so other processes do not count): {:.0} tasks/s\n",
            cpu * 1e3,
            f64::from(placed) / cpu
        );
    }
}

/// Nanoseconds this thread has run on a CPU (Linux's schedstat), when readable.
fn thread_cpu_ns() -> Option<u64> {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn bench_placements(c: &mut Criterion) {
    let services = services();
    let ids: Vec<(usize, String)> = (0..1_024).map(|j| (j % 20, format!("t-{j}"))).collect();
    let requests: Vec<PlacementRequest<'_>> = ids
        .iter()
        .map(|(s, id)| PlacementRequest::new(&services[*s], id))
        .collect();
    let config = SchedulerConfig::with_seed(1);
    let pipelines = [
        ("default", Scheduler::default_pipeline(config.clone())),
        ("network_aware", network_aware_pipeline(config)),
    ];
    for n in SIZES {
        let view = view(n);
        let mut group = c.benchmark_group(format!("network/{n}_nodes"));
        group.throughput(Throughput::Elements(1));
        for (name, scheduler) in &pipelines {
            group.bench_with_input(BenchmarkId::from_parameter(name), &view, |b, view| {
                let mut i = 0usize;
                b.iter(|| {
                    i = (i + 1) % requests.len();
                    black_box(scheduler.place(&requests[i], view))
                });
            });
        }
        group.finish();
    }
}

fn main() {
    three_zone_report();
    throughput_report(5_000);
    let mut c = Criterion::default().configure_from_args();
    bench_placements(&mut c);
    c.final_summary();
}
