//! The leader's cost per task: process RSS growth and reconcile round time with 1k, 10k and 100k
//! tasks in the store. Prints a table (docs/benchmarks.md); asserts nothing about speed.
//!
//! `cargo bench --bench leader` measures; `-- --test` (or `ORION_BENCH_QUICK=1`) runs 1k tasks
//! for 3 rounds only, so CI checks that the bench works.
//!
//! Each size runs in its own child process (this program re-run with `ORION_LEADER_BENCH_TASKS`),
//! so one size's freed memory cannot hide the next size's growth. The child uses mimalloc, as the
//! `orion` binary does, and a `MemoryStore` with the binary's watch history limit (the leader's
//! store under Raft). It reads its RSS from `/proc/self/status`, loads realistic state through
//! `ClusterStore` (100 services with env, a port and an HTTP health check; every task running and
//! healthy on a ready node with a container id, a published port and its replica-slot record, as
//! the reconciler writes them; 4 network measurements per node), reads it once into a
//! `WatchedState` (the controller's decoded copy, counted in the RSS), then measures reconcile
//! rounds as the controller runs them: `CHURN` task writes by "agents" (not timed), then
//! `WatchedState::current` (applying those changes: the *apply* column) + `reconcile` with the
//! default scheduler pipeline + `apply_plan` (the plan is empty at this steady state: the bench
//! prints its size). For comparison it then times the same rounds the old way, from
//! `ClusterStore::load_state` (the *full-read round* columns). Not counted: the Raft log and
//! snapshots the cluster mode also keeps.
//!
//! Under callgrind, `kept_round` and `full_read_round` are never inlined, so their inclusive
//! instruction counts divided by the rounds (plus the warm-up round) are the cost per round.

#[path = "support/proc_stats.rs"]
mod proc_stats;

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use orion_core::model::spec::{SpecFormat, parse_spec};
use orion_core::model::{
    NetworkMeasurement, Node, NodeAddresses, PublishedPort, Resources, Task, TaskHealth, TaskState,
};
use orion_core::reconciler::{ReconcilePolicy, apply_plan, reconcile_state};
use orion_core::scheduler::{Scheduler, SchedulerConfig};
use orion_core::store::{ClusterState, ClusterStore, MemoryStore, Store, WatchedState, keys};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Set in a child: how many tasks to load.
const CHILD_TASKS: &str = "ORION_LEADER_BENCH_TASKS";
/// Set in a child: how many measured rounds to run.
const CHILD_ROUNDS: &str = "ORION_LEADER_BENCH_ROUNDS";
/// The `orion` binary's watch history limit (`orion_bin::node::WATCH_HISTORY`).
const WATCH_HISTORY: u64 = 10_000;
const SERVICES: usize = 100;
const ZONES: usize = 8;
const PEERS_MEASURED: usize = 4;
/// Task writes made by "agents" before each kept-state round: one round's worth of changes (as
/// many as the reconciler's default creation bound, 1,000 per round), capped at the task count.
const CHURN: usize = 1_000;
/// The longest one child may run before it is killed and the bench fails.
const CHILD_LIMIT: Duration = Duration::from_secs(900);
const NOW: u64 = 1_800_000_000_000;

fn main() {
    if let Ok(tasks) = std::env::var(CHILD_TASKS) {
        let tasks = tasks.parse().expect("task count");
        let rounds = std::env::var(CHILD_ROUNDS)
            .ok()
            .and_then(|r| r.parse().ok())
            .unwrap_or(10);
        child(tasks, rounds);
        return;
    }
    let quick = std::env::args().any(|a| a == "--test")
        || std::env::var("ORION_BENCH_QUICK").is_ok_and(|v| v == "1");
    let sizes: &[(usize, usize)] = if quick {
        &[(1_000, 3)]
    } else {
        &[(1_000, 50), (10_000, 30), (100_000, 10)]
    };
    println!(
        "| tasks | nodes | RSS growth | per task | tasks only, per task | peak RSS | round p50 | round p99 | round CPU (mean) | apply p50 | reconcile p50 | full-read round p50 | full-read CPU (mean) | plan | rounds |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for &(tasks, rounds) in sizes {
        let out = run_child(tasks, rounds);
        let field = |name: &str| -> f64 {
            out.split_whitespace()
                .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
                .unwrap_or_else(|| panic!("child output without {name}: {out}"))
                .parse()
                .expect("a number")
        };
        let growth = field("rss_loaded") - field("rss_start");
        let task_growth = field("rss_loaded") - field("rss_fixtures");
        println!(
            "| {tasks} | {} | {:.1} MB | {:.0} B | {:.0} B | {:.1} MB | {:.2} ms | {:.2} ms | {:.1} ms | {:.2} ms | {:.2} ms | {:.2} ms | {:.1} ms | {} actions | {rounds} |",
            field("nodes"),
            growth / 1e6,
            growth / tasks as f64,
            task_growth / tasks as f64,
            field("rss_peak") / 1e6,
            field("round_p50"),
            field("round_p99"),
            field("round_cpu"),
            field("apply_p50"),
            field("reconcile_p50"),
            field("full_p50"),
            field("full_cpu"),
            field("actions"),
        );
        println!(
            "  ({tasks} tasks: loaded in {:.0} ms; first full read into the kept state {:.0} ms; values {:.0} B/task of JSON; the kept state adds {:.0} B/task; {} changes applied per round; RSS after the rounds {:.1} MB)",
            field("load_ms"),
            field("first_read_ms"),
            field("value_bytes") / tasks as f64,
            (field("rss_loaded") - field("rss_stored")) / tasks as f64,
            field("churn"),
            field("rss_after") / 1e6,
        );
    }
}

/// Runs this program as a child for one size; returns its result line.
fn run_child(tasks: usize, rounds: usize) -> String {
    let exe = std::env::current_exe().expect("own path");
    let mut child = Command::new(exe)
        .env(CHILD_TASKS, tasks.to_string())
        .env(CHILD_ROUNDS, rounds.to_string())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the bench child");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the child") {
            break status;
        }
        if started.elapsed() > CHILD_LIMIT {
            child.kill().expect("kill the child");
            child.wait().expect("reap the child");
            panic!("{tasks} tasks: the child ran longer than {CHILD_LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut out = String::new();
    child
        .stdout
        .take()
        .expect("child stdout")
        .read_to_string(&mut out)
        .expect("read the child's output");
    assert!(
        status.success(),
        "{tasks} tasks: the child failed: {status}"
    );
    out.lines()
        .find(|l| l.starts_with("RESULT "))
        .unwrap_or_else(|| panic!("{tasks} tasks: no result from the child: {out}"))
        .to_owned()
}

/// `VmRSS` and `VmHWM` of this process, in bytes.
fn rss() -> (f64, f64) {
    proc_stats::rss_of("self").expect("/proc/self/status")
}

/// CPU time this thread has used (user + system), in ms, at the kernel's tick resolution
/// (10 ms): summed over many rounds it shows the cost of a round on a machine shared with other
/// work, where wall-clock times include waiting for a core.
fn thread_cpu_ms() -> f64 {
    proc_stats::cpu_seconds("/proc/thread-self/stat") * 1000.0
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn child(tasks: usize, rounds: usize) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(async {
        let (rss_start, _) = rss();
        let store = ClusterStore::new(MemoryStore::with_history_limit(WATCH_HISTORY));
        let started = Instant::now();
        let (nodes, rss_fixtures) = load(&store, tasks).await;
        let load_ms = started.elapsed().as_secs_f64() * 1e3;
        let (rss_stored, _) = rss();
        let value_bytes: usize = store
            .inner()
            .range("")
            .await
            .expect("range")
            .kvs
            .iter()
            .map(|kv| kv.value.len())
            .sum();
        let started = Instant::now();
        let mut kept = store.watched_state();
        kept.current().await.expect("first full read");
        let first_read_ms = started.elapsed().as_secs_f64() * 1e3;
        // The leader's whole state: the store and the controller's decoded copy.
        let (rss_loaded, _) = rss();

        let scheduler = Scheduler::default_pipeline(SchedulerConfig::default());
        let churn = CHURN.min(tasks);
        let mut times = Times::default();
        let mut actions = 0;
        let mut round_cpu = 0.0;
        let mut next_written = 0;
        // One warm-up round, not counted.
        for i in 0..=rounds {
            next_written = write_churn(&store, &kept, churn, i, next_written).await;
            // The agents' writes are not the leader's round: CPU is summed around rounds only.
            let cpu_start = thread_cpu_ms();
            let (apply, reconcile, total, n) = kept_round(&store, &mut kept, &scheduler).await;
            actions = n;
            if i > 0 {
                round_cpu += thread_cpu_ms() - cpu_start;
                times.round.push(total);
                times.apply.push(apply);
                times.reconcile.push(reconcile);
            }
        }
        let round_cpu = round_cpu / rounds as f64;
        // What the kept-state rounds left (their transient maps and plans, as the allocator keeps
        // them), before the full-read rounds add theirs.
        let (rss_rounds, _) = rss();
        let mut cpu_start = 0.0;
        for i in 0..=rounds {
            if i == 1 {
                cpu_start = thread_cpu_ms();
            }
            let total = full_read_round(&store, &scheduler).await;
            if i > 0 {
                times.full.push(total);
            }
        }
        let full_cpu = (thread_cpu_ms() - cpu_start) / rounds as f64;
        for v in [
            &mut times.round,
            &mut times.apply,
            &mut times.reconcile,
            &mut times.full,
        ] {
            v.sort_by(f64::total_cmp);
        }
        let (rss_after, rss_peak) = rss();
        println!(
            "RESULT nodes={nodes} rss_start={rss_start} rss_fixtures={rss_fixtures} \
             rss_stored={rss_stored} rss_loaded={rss_loaded} rss_rounds={rss_rounds} \
             rss_after={rss_after} \
             rss_peak={rss_peak} load_ms={load_ms:.1} first_read_ms={first_read_ms:.1} \
             value_bytes={value_bytes} churn={churn} \
             round_p50={:.3} round_p99={:.3} apply_p50={:.3} reconcile_p50={:.3} \
             full_p50={:.3} actions={actions} round_cpu={round_cpu:.3} full_cpu={full_cpu:.3}",
            percentile(&times.round, 0.5),
            percentile(&times.round, 0.99),
            percentile(&times.apply, 0.5),
            percentile(&times.reconcile, 0.5),
            percentile(&times.full, 0.5),
        );
    });
}

/// Round times in ms.
#[derive(Default)]
struct Times {
    round: Vec<f64>,
    apply: Vec<f64>,
    reconcile: Vec<f64>,
    full: Vec<f64>,
}

/// `churn` task writes as agents make them (a new `updated_at` on running tasks, which changes
/// no plan), spread over the tasks round after round. Returns the next task to write.
async fn write_churn<S: Store>(
    store: &ClusterStore<S>,
    kept: &WatchedState<S>,
    churn: usize,
    round: usize,
    next: usize,
) -> usize {
    let state = kept.state();
    let picked: Vec<_> = (0..churn)
        .map(|k| state.tasks[(next + k) % state.tasks.len()].clone())
        .collect();
    for mut task in picked {
        task.updated_at = NOW + 1 + round as u64;
        store.put_task(&task).await.expect("agent write");
    }
    next + churn
}

/// One round as the controller runs it: apply the watched changes, plan, apply the plan.
/// Returns the times of the first two steps and of the whole round (ms), and the plan's size.
#[inline(never)]
async fn kept_round<S: Store>(
    store: &ClusterStore<S>,
    kept: &mut WatchedState<S>,
    scheduler: &Scheduler,
) -> (f64, f64, f64, usize) {
    let t0 = Instant::now();
    let state = kept.current().await.expect("kept state");
    let t1 = Instant::now();
    let actions = plan_and_apply(store, state, scheduler).await;
    let t2 = Instant::now();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    (ms(t1 - t0), ms(t2 - t1), ms(t2 - t0), actions)
}

/// One round as it was before the kept state: read and decode everything, plan, apply.
#[inline(never)]
async fn full_read_round<S: Store>(store: &ClusterStore<S>, scheduler: &Scheduler) -> f64 {
    let t0 = Instant::now();
    let state = store.load_state().await.expect("load_state");
    plan_and_apply(store, &state, scheduler).await;
    t0.elapsed().as_secs_f64() * 1e3
}

/// `reconcile` and `apply_plan` on `state`; returns the plan's size.
async fn plan_and_apply<S: Store>(
    store: &ClusterStore<S>,
    state: &ClusterState,
    scheduler: &Scheduler,
) -> usize {
    let plan = reconcile_state(state, NOW, ReconcilePolicy::default(), scheduler);
    let report = apply_plan(store, &plan, state, None).await;
    assert!(
        report.failed.is_empty(),
        "applying the plan failed: {:?}",
        report.failed
    );
    plan.actions.len()
}

/// Nodes for `tasks` tasks: one per 10 tasks, between 100 and 1,000.
fn node_count(tasks: usize) -> usize {
    (tasks / 10).clamp(100, 1_000)
}

/// Loads the nodes, their measurements, 100 services and their `tasks` tasks (running,
/// healthy). Returns the number of nodes and the RSS before the first task was loaded.
async fn load<S: Store>(store: &ClusterStore<S>, tasks: usize) -> (usize, f64) {
    let node_count = node_count(tasks);
    let mut nodes = Vec::with_capacity(node_count);
    for i in 0..node_count {
        let node = Node {
            addresses: NodeAddresses {
                api: format!("127.0.0.1:{}", 10_000 + i),
                raft: format!("127.0.0.1:{}", 20_000 + i),
                gossip: format!("127.0.0.1:{}", 30_000 + i),
            },
            max_tasks: Some(500),
            updated_at: NOW,
            ..Node::new(format!("node-{i:04}"), Resources::new(64_000, 256 << 30))
                .with_label("zone", format!("zone-{}", i % ZONES))
                .with_label("tier", if i % 4 == 0 { "edge" } else { "core" })
        };
        store.put_node(&node).await.expect("put node");
        nodes.push(node.id);
    }
    for i in 0..node_count {
        for p in 1..=PEERS_MEASURED {
            let m = NetworkMeasurement {
                from: nodes[i].clone(),
                to: nodes[(i + p) % node_count].clone(),
                rtt_ms: 0.2 + p as f64 * 0.3,
                jitter_ms: 0.05,
                loss: 0.0,
                bandwidth_mbps: Some(1_000.0),
                measured_at: NOW,
                ..NetworkMeasurement::default()
            };
            store.put_measurement(&m).await.expect("put measurement");
        }
    }
    let mut specs = Vec::with_capacity(SERVICES);
    for s in 0..SERVICES {
        let replicas = tasks / SERVICES + usize::from(s < tasks % SERVICES);
        let yaml = format!(
            "name: svc-{s:03}\n\
             image: team-{team}/svc-{s:03}:1.{s}.0\n\
             replicas: {replicas}\n\
             env:\n  - LOG_LEVEL=info\n  - SERVICE_NAME=svc-{s:03}\n  - DATABASE_URL=postgresql://db-{team}:5432/app\n  - FEATURE_FLAGS=a,b,c\n\
             ports: [8080]\n\
             restart_policy: always\n\
             resources:\n  cpu_millicores: {cpu}\n  memory_bytes: {mem}Mi\n\
             health_check:\n  type: http\n  http_path: /healthz\n  port: 8080\n  interval: 10s\n",
            team = s % 10,
            cpu = 100 + (s % 4) * 50,
            mem = 128 + (s % 3) * 64,
        );
        let spec = parse_spec(&yaml, SpecFormat::Yaml).expect("bench spec");
        let service = store.put_service(&spec).await.expect("put service");
        specs.push((spec, service.spec_version, replicas));
    }
    let (rss_fixtures, _) = rss();
    let mut placed = 0;
    for (s, (spec, spec_version, replicas)) in specs.iter().enumerate() {
        for slot in 0..*replicas {
            let node = &nodes[(s * 7 + slot * 13 + slot / node_count) % node_count];
            let task = Task {
                id: format!("svc-{s:03}-{slot}-{:08x}", (s * 1_000_003 + slot) as u32).into(),
                node: Some(node.as_str().into()),
                state: TaskState::Running,
                container_id: Some(format!("{:064x}", (s as u128) << 64 | slot as u128)),
                ports: vec![PublishedPort {
                    container_port: 8080,
                    host_port: 32_768 + (placed % 20_000) as u16,
                    protocol: "tcp".into(),
                    host_ip: "0.0.0.0".into(),
                }],
                health: TaskHealth::Healthy,
                created_at: NOW,
                updated_at: NOW,
                ..Task::new(
                    &spec.name,
                    slot as u32,
                    *spec_version,
                    spec.resources.into(),
                )
            };
            store.put_task(&task).await.expect("put task");
            // The replica-slot record the reconciler writes with every task it creates.
            (store.inner())
                .put(&keys::slot(&task.service, task.slot), Vec::new())
                .await
                .expect("put slot record");
            placed += 1;
        }
    }
    (node_count, rss_fixtures)
}
