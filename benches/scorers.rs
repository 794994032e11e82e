//! Scheduler benches: time per placement for each built-in scorer (with the standard filters)
//! and for the default pipeline at 100, 1k, 5k and 10k nodes, plus a placement-quality table
//! printed once before the timings.
//!
//! ```text
//! cargo bench --bench scorers                       # full run
//! cargo bench --bench scorers -- --warm-up-time 1 --measurement-time 2
//! cargo bench --bench scorers -- --test             # CI: every bench once, and the table
//! ```
//!
//! The synthetic cluster: nodes of four shapes (4 to 32 cores, 8 to 64 GiB) across 8 zones,
//! each loaded to a pseudo-random 20-80 % (half loaded on average). Everything is derived from
//! fixed seeds, so runs are comparable.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput};
use orion_core::model::{NetworkMatrix, Node, Resources, ServiceSpec, ZONE_LABEL};
use orion_core::scheduler::{
    ClusterView, PlacementOutcome, PlacementRequest, Sample, Scheduler, SchedulerConfig, scorers,
};

const MIB: u64 = 1024 * 1024;
const ZONES: usize = 8;
const SIZES: [usize; 4] = [100, 1_000, 5_000, 10_000];
/// Scorers benched alone (the cpu/memory halves of least_allocated behave like it).
const ALONE: [&str; 5] = [
    "least_allocated",
    "most_allocated",
    "round_robin",
    "epvm",
    "spread",
];

/// A tiny deterministic generator for the synthetic data (not the scheduler's own RNG).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// `n` empty nodes of four shapes across [`ZONES`] zones.
fn nodes(n: usize) -> Vec<Node> {
    const SHAPES: [(u64, u64); 4] = [
        (4_000, 8_192),
        (8_000, 16_384),
        (16_000, 32_768),
        (32_000, 65_536),
    ];
    (0..n)
        .map(|i| {
            let (cpu, mem) = SHAPES[(i * 7 + i / 3) % SHAPES.len()];
            Node::new(format!("node-{i:05}"), Resources::new(cpu, mem * MIB))
                .with_label(ZONE_LABEL, format!("zone-{}", i % ZONES))
        })
        .collect()
}

/// [`nodes`] with each node loaded to a pseudo-random 20-80 % by background services.
fn half_loaded_view(n: usize) -> ClusterView {
    let nodes = nodes(n);
    let loads: Vec<(String, Resources)> = {
        let mut rng = Lcg(42);
        nodes
            .iter()
            .map(|node| {
                let pct = 20 + rng.below(61);
                let c = node.capacity;
                let load = Resources::new(c.cpu_millicores * pct / 100, c.memory_bytes * pct / 100);
                (node.id.clone(), load)
            })
            .collect()
    };
    let mut view = ClusterView::new(nodes, &[], NetworkMatrix::new());
    for (i, (id, load)) in loads.iter().enumerate() {
        view.assign(id, &format!("background-{}", i % 16), *load);
    }
    view
}

/// Twenty services of four request sizes.
fn services() -> Vec<ServiceSpec> {
    const REQUESTS: [(u64, u64); 4] = [(100, 128), (250, 256), (500, 512), (1_000, 1_024)];
    (0..20)
        .map(|i| {
            let mut s = ServiceSpec::new(format!("svc-{i:02}"), "bench", 100);
            let (cpu, mem) = REQUESTS[i % REQUESTS.len()];
            s.resources.cpu_millicores = cpu;
            s.resources.memory_bytes = mem * MIB;
            s
        })
        .collect()
}

/// Task ids for `count` tasks interleaving the services: task `j` belongs to service `j % 20`.
fn task_ids(services: &[ServiceSpec], count: usize) -> Vec<(usize, String)> {
    (0..count)
        .map(|j| {
            let s = j % services.len();
            (
                s,
                format!("{}-{}-bench", services[s].name, j / services.len()),
            )
        })
        .collect()
}

fn pipelines() -> Vec<(String, Scheduler)> {
    let config = SchedulerConfig::with_seed(1);
    let mut out: Vec<(String, Scheduler)> = ALONE
        .iter()
        .map(|name| {
            let s = Scheduler::with_scorer(name, config.clone()).expect("a built-in scorer");
            (name.to_string(), s)
        })
        .collect();
    out.push((
        "default".into(),
        Scheduler::default_pipeline(config.clone()),
    ));
    out
}

/// Placement quality: 2,000 tasks of mixed sizes over 100 empty nodes, per pipeline.
fn quality_report() {
    let services = services();
    let tasks = task_ids(&services, 2_000);
    println!(
        "\nplacement quality: 2000 tasks (20 services, 100m-1000m cpu) over 100 empty nodes, 8 zones"
    );
    println!(
        "{:<16} {:>6} {:>9} {:>9} {:>8} {:>14} {:>14} {:>9}",
        "pipeline",
        "nodes",
        "max load",
        "mean load",
        "stddev",
        "zone tasks",
        "svc zone skew",
        "unplaced"
    );
    let scorer_names = scorers::NAMES
        .iter()
        .copied()
        .filter(|n| !n.ends_with("_cpu") && !n.ends_with("_memory"));
    let config = SchedulerConfig::with_seed(1);
    let mut runs: Vec<(String, Scheduler)> = scorer_names
        .map(|n| {
            (
                n.to_string(),
                Scheduler::with_scorer(n, config.clone()).expect("built-in"),
            )
        })
        .collect();
    runs.push(("default".into(), Scheduler::default_pipeline(config)));
    for (name, scheduler) in runs {
        let mut view = ClusterView::new(nodes(100), &[], NetworkMatrix::new());
        let mut unplaced = 0;
        for (s, id) in &tasks {
            let req = PlacementRequest::new(&services[*s], id);
            match scheduler.place(&req, &view) {
                PlacementOutcome::Placed(p) => view.assign_request(&p.node, &req),
                PlacementOutcome::Unplaceable { .. } => unplaced += 1,
            }
        }
        let loads: Vec<f64> = view
            .nodes()
            .iter()
            .map(|nv| {
                let c = nv.node.capacity;
                let a = nv.allocated;
                50.0 * (a.cpu_millicores as f64 / c.cpu_millicores as f64
                    + a.memory_bytes as f64 / c.memory_bytes as f64)
            })
            .collect();
        let used = view.nodes().iter().filter(|nv| nv.task_count > 0).count();
        let mean = loads.iter().sum::<f64>() / loads.len() as f64;
        let max = loads.iter().copied().fold(0.0, f64::max);
        let stddev =
            (loads.iter().map(|l| (l - mean).powi(2)).sum::<f64>() / loads.len() as f64).sqrt();
        let mut per_zone = [0u32; ZONES];
        let mut skew = 0.0;
        for svc in &services {
            let counts = view.service_counts_by_label(&svc.name, ZONE_LABEL);
            let zone_counts: Vec<u32> = (0..ZONES)
                .map(|z| counts.get(&format!("zone-{z}")).copied().unwrap_or(0))
                .collect();
            for (total, c) in per_zone.iter_mut().zip(&zone_counts) {
                *total += c;
            }
            let (lo, hi) = (
                zone_counts.iter().min().unwrap_or(&0),
                zone_counts.iter().max().unwrap_or(&0),
            );
            skew += f64::from(hi - lo);
        }
        skew /= services.len() as f64;
        let zone_span = format!(
            "{}/{}",
            per_zone.iter().max().unwrap_or(&0),
            per_zone.iter().min().unwrap_or(&0)
        );
        println!(
            "{name:<16} {used:>6} {max:>8.1}% {mean:>8.1}% {stddev:>8.1} {zone_span:>14} {skew:>14.2} {unplaced:>9}"
        );
    }
    println!(
        "(nodes: nodes with a task; load: mean of cpu% and memory% per node; zone tasks: max/min \
         tasks per zone; svc zone skew: mean over services of max-min tasks per zone)\n"
    );
}

/// Sequential throughput of the default pipeline at 5k nodes: place and assign 20,000 tasks
/// (the view fills as it goes), timed as a whole. Target: at least 20,000 tasks/s on one core.
fn throughput_report() {
    let services = services();
    let tasks = task_ids(&services, 20_000);
    let scheduler = Scheduler::default_pipeline(SchedulerConfig::with_seed(1));
    let mut view = half_loaded_view(5_000);
    let started = std::time::Instant::now();
    let mut placed = 0u32;
    for (s, id) in &tasks {
        let req = PlacementRequest::new(&services[*s], id);
        if let PlacementOutcome::Placed(p) = scheduler.place(&req, &view) {
            view.assign_request(&p.node, &req);
            placed += 1;
        }
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "default pipeline, 5000 half-loaded nodes: placed {placed} of {} tasks (place + assign) \
         in {:.1} ms = {:.0} tasks/s\n",
        tasks.len(),
        secs * 1e3,
        f64::from(placed) / secs
    );
}

fn bench_placements(c: &mut Criterion) {
    let services = services();
    let tasks = task_ids(&services, 1_024);
    let requests: Vec<PlacementRequest<'_>> = tasks
        .iter()
        .map(|(s, id)| PlacementRequest::new(&services[*s], id))
        .collect();
    let mut full_scan = SchedulerConfig::with_seed(1);
    full_scan.sample = Sample::All;
    let mut all = pipelines();
    all.push((
        "default_full_scan".into(),
        Scheduler::default_pipeline(full_scan),
    ));
    for n in SIZES {
        let view = half_loaded_view(n);
        let mut group = c.benchmark_group(format!("place/{n}_nodes"));
        group.throughput(Throughput::Elements(1));
        for (name, scheduler) in &all {
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
    quality_report();
    throughput_report();
    let mut c = Criterion::default().configure_from_args();
    bench_placements(&mut c);
    c.final_summary();
}
