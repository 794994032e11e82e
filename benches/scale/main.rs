//! The control plane at scale (issue 16 §3): thousands of simulated nodes in this process
//! against a real 3-node Raft cluster on loopback. Prints a table (docs/benchmarks.md); asserts
//! nothing about speed.
//!
//! `cargo bench --bench scale` runs 10,000 nodes and 1,000,000 tasks; `-- --nodes N --tasks M`
//! picks a size; `-- --max-creates C` the reconciler's `max_creates_per_round` (default
//! 100,000); `-- --snapshot-every E` the members' `RaftConfig::snapshot_every` (default 10,000,
//! the binary's); `-- --limit-min L` the longest the run may take (default 15); `-- --test` (or `ORION_BENCH_QUICK=1`) runs 200 nodes and
//! 5,000 tasks, for CI.
//!
//! - The 3 voters are child processes (`raft_child`); the leader among them runs the
//!   `ReconcileController` under the `Fence`. Only the reconciler runs: the liveness
//!   controller, GC and autoscaler have nothing to do here (no membership changes, no finished
//!   tasks, no scale policies), so no `StaticMembership` is needed.
//! - This process joins as a Raft learner (recorded as a worker, so it is never promoted),
//!   registers the nodes, writes the services, and runs the simulated nodes (`sim`) on its
//!   replica, with writes forwarded to the leader.
//! - Services have 1,000 replicas each (the last one the remainder), under the default
//!   `maxReplicas` (10,000); each node has room for twice its share of tasks.

mod fanout;
#[path = "../support/proc_stats.rs"]
mod proc_stats;
mod raft_child;
mod sim;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use orion_consensus::raft::{RaftConfig, RaftNode, ReadMode};
use orion_core::model::spec::{SpecFormat, parse_spec};
use orion_core::model::{Resources, ServiceSpec};
use orion_core::store::{ClusterStore, MemoryStore, Store, keys};

use raft_child::{ChildArgs, RaftChild, field};
use sim::{Progress, since};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const REPLICAS_PER_SERVICE: usize = 1_000;
const MAX_NODES: usize = 50_000;
const MAX_TASKS: usize = 2_000_000;
const MAX_CREATES: usize = 1_000_000;
const MAX_LIMIT_MIN: u64 = 240;
const MAX_SNAPSHOT_EVERY: usize = 10_000_000;
/// The Raft id of this process (the voters are 1, 2 and 3).
const SIM_ID: u64 = 4;
const TASK_CPU: u64 = 10;
const TASK_MEMORY: u64 = 16 << 20;
/// When the idle leader's RSS is read again, after all tasks run.
const IDLE_SAMPLES: [Duration; 3] = [
    Duration::from_secs(1),
    Duration::from_secs(5),
    Duration::from_secs(15),
];

struct Options {
    nodes: usize,
    tasks: usize,
    max_creates: usize,
    snapshot_every: u64,
    limit: Duration,
    quick: bool,
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some(raft_child::ROLE_ARG) {
        raft_child::child_main(raft_child::parse_child_args(&args[1..]));
        return;
    }
    let options = match parse_options(&args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("scale bench: {e}");
            std::process::exit(2);
        }
    };
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    if let Err(e) = runtime.block_on(run(&options)) {
        eprintln!("scale bench failed: {e}");
        std::process::exit(1);
    }
}

fn parse_options(args: &[String]) -> Result<Options, String> {
    let quick = args.iter().any(|a| a == "--test")
        || std::env::var("ORION_BENCH_QUICK").is_ok_and(|v| v == "1");
    let mut o = Options {
        nodes: if quick { 200 } else { 10_000 },
        tasks: if quick { 5_000 } else { 1_000_000 },
        max_creates: 100_000,
        snapshot_every: 10_000,
        limit: Duration::from_secs(if quick { 300 } else { 900 }),
        quick,
    };
    let mut i = 0;
    while i < args.len() {
        let arg = args[i].as_str();
        let bounded = |max: usize| -> Result<usize, String> {
            let v = args
                .get(i + 1)
                .ok_or_else(|| format!("{arg} needs a value"))?;
            match v.parse::<usize>() {
                Ok(n) if (1..=max).contains(&n) => Ok(n),
                _ => Err(format!(
                    "{arg} {v}: expected a whole number from 1 to {max}"
                )),
            }
        };
        match arg {
            "--bench" | "--test" => {}
            "--nodes" => o.nodes = bounded(MAX_NODES)?,
            "--tasks" => o.tasks = bounded(MAX_TASKS)?,
            "--max-creates" => o.max_creates = bounded(MAX_CREATES)?,
            "--snapshot-every" => o.snapshot_every = bounded(MAX_SNAPSHOT_EVERY)? as u64,
            "--limit-min" => {
                o.limit = Duration::from_secs(60 * bounded(MAX_LIMIT_MIN as usize)? as u64)
            }
            other => {
                return Err(format!(
                    "unknown argument {other:?}; accepted: --test, --nodes N (1..={MAX_NODES}), \
                     --tasks M (1..={MAX_TASKS}), --max-creates C (1..={MAX_CREATES}), \
                     --snapshot-every E (1..={MAX_SNAPSHOT_EVERY}), --limit-min L (1..={MAX_LIMIT_MIN})"
                ));
            }
        }
        i += if matches!(arg, "--bench" | "--test") {
            1
        } else {
            2
        };
    }
    Ok(o)
}

/// The services: 1,000 replicas each, the last one the remainder.
fn services(tasks: usize) -> Vec<ServiceSpec> {
    let count = tasks.div_ceil(REPLICAS_PER_SERVICE);
    (0..count)
        .map(|s| {
            let replicas = REPLICAS_PER_SERVICE.min(tasks - s * REPLICAS_PER_SERVICE);
            let yaml = format!(
                "name: svc-{s:04}\nimage: sim/app-{s:04}:1.0.0\nreplicas: {replicas}\n\
                 env:\n  - LOG_LEVEL=info\nports: [8080]\nrestart_policy: always\n\
                 resources:\n  cpu_millicores: {TASK_CPU}\n  memory_bytes: 16Mi\n",
            );
            parse_spec(&yaml, SpecFormat::Yaml).expect("bench spec")
        })
        .collect()
}

struct Timeline {
    first_assigned: Option<f64>,
    p10: Option<f64>,
    p90: Option<f64>,
    all_assigned: Option<f64>,
    all_running: Option<f64>,
}

async fn run(o: &Options) -> Result<(), String> {
    let started = Instant::now();
    // Ctrl-C or SIGTERM ends the run through the error path, so the children are killed and
    // the temp dir removed.
    let interrupted = Arc::new(AtomicBool::new(false));
    let flag = interrupted.clone();
    tokio::spawn(async move {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(mut term) = signal(SignalKind::terminate()) else {
            return;
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        flag.store(true, Ordering::Relaxed);
    });
    let dir = tempfile::tempdir().map_err(|e| format!("temp dir: {e}"))?;
    let child_args = |id: u64, join: Option<String>| ChildArgs {
        id,
        dir: dir.path().join(format!("raft-{id}")),
        join,
        worker: SIM_ID,
        max_creates: o.max_creates,
        snapshot_every: o.snapshot_every,
    };
    // Dropped (killed) on every return below, before `dir` is removed.
    let mut voters = vec![RaftChild::spawn(&child_args(1, None))?];
    let first = voters[0].addr.clone();
    for id in 2..=3 {
        voters.push(RaftChild::spawn(&child_args(id, Some(first.clone())))?);
    }
    let mut config = RaftConfig::new(
        SIM_ID,
        raft_child::CLUSTER,
        dir.path().join("sim"),
        "127.0.0.1:0".parse().unwrap(),
    );
    config.request_timeout = Duration::from_secs(30);
    config.snapshot_every = o.snapshot_every;
    let raft = RaftNode::start(
        config,
        MemoryStore::with_history_limit(raft_child::WATCH_HISTORY),
    )
    .await
    .map_err(|e| format!("start this process's raft member: {e}"))?;
    raft.join(&first)
        .await
        .map_err(|e| format!("join as a learner: {e}"))?;
    let status = raft.status();
    if !status.learners.contains(&SIM_ID) || status.voters.len() != 3 {
        return Err(format!(
            "expected 3 voters and this process a learner: {status:?}"
        ));
    }
    let store = ClusterStore::new(raft.store().with_read_mode(ReadMode::Stale));
    let per_node = (2 * o.tasks.div_ceil(o.nodes)).max(4) as u32;
    let t = Instant::now();
    sim::register_nodes(
        &store,
        o.nodes,
        per_node,
        Resources::new(TASK_CPU, TASK_MEMORY),
    )
    .await
    .map_err(|e| format!("register nodes: {e}"))?;
    let register_s = since(t);

    let specs = services(o.tasks);
    let by_name: HashMap<String, ServiceSpec> =
        specs.iter().map(|s| (s.name.clone(), s.clone())).collect();
    let progress = Arc::new(Progress::default());
    let from = store.inner().revision().await.map_err(|e| e.to_string())? + 1;
    sim::start(
        store.clone(),
        o.nodes,
        Arc::new(by_name),
        from,
        progress.clone(),
    )
    .await
    .map_err(|e| format!("start the simulated nodes: {e}"))?;

    let leader = |raft: &RaftNode<MemoryStore>| -> Result<usize, String> {
        let id = raft.status().leader.ok_or("no leader")?;
        (1..=3)
            .contains(&id)
            .then_some(id as usize - 1)
            .ok_or_else(|| format!("leader {id} is not a voter child"))
    };
    let leader_at_start = leader(&raft)?;
    let (rss_before, _) = voters[leader_at_start].rss()?;
    let log_before = raft.status().last_log_index;

    // The specs.
    let t0 = Instant::now();
    let writes = futures::stream::iter(specs.iter().map(|s| store.put_service(s)))
        .buffer_unordered(8)
        .collect::<Vec<_>>()
        .await;
    if let Some(Err(e)) = writes.into_iter().find(Result::is_err) {
        return Err(format!("write a service: {e}"));
    }
    let specs_written = since(t0);

    let total = o.tasks as u64;
    let mut tl = Timeline {
        first_assigned: None,
        p10: None,
        p90: None,
        all_assigned: None,
        all_running: None,
    };
    let mut rss_peak: f64 = rss_before;
    let mut next_print = 0.0;
    while tl.all_running.is_none() {
        if interrupted.load(Ordering::Relaxed) {
            return Err("interrupted".into());
        }
        if started.elapsed() > o.limit {
            return Err(format!(
                "gave up after {:?}: {} of {total} tasks assigned, {} running",
                o.limit,
                progress.assigned.load(Ordering::Relaxed),
                progress.running.load(Ordering::Relaxed)
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        let now = since(t0);
        let assigned = progress.assigned.load(Ordering::Relaxed);
        let mark = |slot: &mut Option<f64>, reached: bool| {
            if slot.is_none() && reached {
                *slot = Some(now);
            }
        };
        mark(&mut tl.first_assigned, assigned > 0);
        mark(&mut tl.p10, assigned * 10 >= total);
        mark(&mut tl.p90, assigned * 10 >= total * 9);
        mark(&mut tl.all_assigned, assigned >= total);
        mark(
            &mut tl.all_running,
            progress.running.load(Ordering::Relaxed) >= total,
        );
        if let Ok((rss, _)) = voters[leader(&raft)?].rss() {
            rss_peak = rss_peak.max(rss);
        }
        if now >= next_print {
            let st = raft.status();
            eprintln!(
                "  {now:>6.1} s: {assigned} assigned, {} running; leader {:?} term {}, log {}, \
                 committed {}; {} report txns, {} conflicts",
                progress.running.load(Ordering::Relaxed),
                st.leader,
                st.term,
                st.last_log_index,
                st.commit_index,
                progress.report_txns.load(Ordering::Relaxed),
                progress.report_conflicts.load(Ordering::Relaxed),
            );
            next_print = now + if o.quick { 5.0 } else { 15.0 };
        }
    }
    let leader_now = leader(&raft)?;
    let (rss_after, rss_hwm) = voters[leader_now].rss()?;
    // The allocator hands freed pages back lazily: the leader's RSS again while it idles.
    let mut rss_idle = Vec::new();
    let started_idle = Instant::now();
    // Quick mode (CI) checks that the sampling works, without waiting 15 s for it.
    let idle_samples = if o.quick {
        &IDLE_SAMPLES[..1]
    } else {
        &IDLE_SAMPLES[..]
    };
    for &at in idle_samples {
        tokio::time::sleep(at.saturating_sub(started_idle.elapsed())).await;
        rss_idle.push((at, voters[leader_now].rss()?.0));
    }
    let log_after = raft.status().last_log_index;
    let log_bytes =
        dir_bytes(&voters[leader_now].dir.join("log")).max(dir_bytes(&voters[leader_now].dir));
    voters[leader_now].send("LOAD")?;
    let load = voters[leader_now].wait_line("LOAD ", Duration::from_secs(300))?;
    let rounds = voters[leader_now].lines("ROUND ");

    // Watch fan-out, on this process's replica.
    let sample = store
        .inner()
        .range(keys::TASKS)
        .await
        .map_err(|e| e.to_string())?
        .kvs
        .into_iter()
        .next()
        .ok_or("no task stored")?
        .value;
    let (events, ks): (usize, &[usize]) = if o.quick {
        (500, &[1, 10, 100])
    } else {
        (2_000, &[1, 10, 100, 1_000])
    };
    report(
        o,
        &Report {
            register_s,
            specs_written,
            tl,
            rss_before,
            rss_after,
            rss_idle,
            rss_peak: rss_peak.max(rss_hwm),
            log_entries: log_after - log_before,
            log_bytes,
            load,
            rounds,
            progress: &progress,
            leader_changed: leader_now != leader_at_start,
        },
    );
    // After the table above, so a failure here (a leader change under load) loses only this.
    let fan = fanout::measure(&raft.store(), store.inner(), &sample, events, ks).await?;
    report_fanout(&fan, events, sample.len());
    drop(voters);
    let _ = raft.shutdown().await;
    Ok(())
}

/// Bytes of the files under `path` (recursively; 0 when missing).
fn dir_bytes(path: &std::path::Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(path) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_bytes(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

struct Report<'a> {
    register_s: f64,
    specs_written: f64,
    tl: Timeline,
    rss_before: f64,
    rss_after: f64,
    /// (time since `rss_after`, RSS) while the leader idles.
    rss_idle: Vec<(Duration, f64)>,
    rss_peak: f64,
    log_entries: u64,
    log_bytes: u64,
    load: String,
    rounds: Vec<String>,
    progress: &'a Progress,
    leader_changed: bool,
}

fn report(o: &Options, r: &Report<'_>) {
    let n = o.tasks as f64;
    let s = |v: Option<f64>| v.unwrap_or(f64::NAN);
    let (first, all) = (s(r.tl.first_assigned), s(r.tl.all_assigned));
    let steady = 0.8 * n / (s(r.tl.p90) - s(r.tl.p10));
    let per_task = (r.rss_after - r.rss_before) / n;
    let num = |line: &str, name: &str| {
        field(line, name)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    let round_ms: Vec<f64> = r.rounds.iter().map(|l| num(l, "ms")).collect();
    let plan_ms: f64 = r.rounds.iter().map(|l| num(l, "plan_ms")).sum();
    let total_ms: f64 = round_ms.iter().sum();
    let max_ms = round_ms.iter().copied().fold(0.0, f64::max);
    let placed: f64 = r.rounds.iter().map(|l| num(l, "placed")).sum();
    println!();
    println!(
        "scale simulation: {} simulated nodes, {} tasks ({} services), 3 Raft voters (child \
         processes, plain HTTP on loopback) + this process as a learner; max_creates_per_round {}, \
         snapshot every {} entries",
        o.nodes,
        o.tasks,
        o.tasks.div_ceil(REPLICAS_PER_SERVICE),
        o.max_creates,
        o.snapshot_every
    );
    println!("| measure | value | goal |");
    println!("|---|---|---|");
    println!(
        "| nodes registered (one txn per 500) | {:.2} s | |",
        r.register_s
    );
    println!(
        "| specs written ({} services, 8 at a time) | {:.2} s | |",
        o.tasks.div_ceil(REPLICAS_PER_SERVICE),
        r.specs_written
    );
    println!(
        "| placements committed/s, spec writes to all assigned | {:.0} | >= 10,000 |",
        n / all
    );
    println!("| placements committed/s, 10% to 90% assigned | {steady:.0} | >= 10,000 |");
    println!("| spec writes to first task assigned | {first:.2} s | |");
    println!("| spec writes to all tasks assigned | {all:.2} s | 1M on 10k nodes <= 300 s |");
    println!(
        "| spec writes to all tasks running (simulated) | {:.2} s | |",
        s(r.tl.all_running)
    );
    println!(
        "| leader RSS before the specs | {:.1} MB | |",
        r.rss_before / 1e6
    );
    println!(
        "| leader RSS after all placed and running | {:.1} MB | |",
        r.rss_after / 1e6
    );
    println!(
        "| leader RSS peak (sampled / VmHWM) | {:.1} MB | |",
        r.rss_peak / 1e6
    );
    println!("| leader RSS growth per task | {per_task:.0} B | <= 1 KB |");
    for (at, rss) in &r.rss_idle {
        println!(
            "| leader RSS {} s later, idle / growth per task | {:.1} MB / {:.0} B | |",
            at.as_secs(),
            rss / 1e6,
            (rss - r.rss_before) / n
        );
    }
    println!(
        "| Raft log entries written (specs to all running) | {} | |",
        r.log_entries
    );
    println!(
        "| leader's Raft dir (log + snapshot) | {:.1} MB | |",
        r.log_bytes as f64 / 1e6
    );
    println!(
        "| reconcile rounds that acted / placed | {} / {placed:.0} | |",
        round_ms.len()
    );
    println!(
        "| round time: total / longest | {:.1} s / {:.0} ms | |",
        total_ms / 1e3,
        max_ms
    );
    println!("| of which planning (reconcile + scheduler) | {plan_ms:.0} ms | |");
    println!(
        "| load_state on the leader at the end | {} ms ({} tasks) | |",
        field(&r.load, "ms").unwrap_or("?"),
        field(&r.load, "tasks").unwrap_or("?")
    );
    let p = r.progress;
    println!(
        "| task events read by the one routed watch | {} | |",
        p.events.load(Ordering::Relaxed)
    );
    println!(
        "| status report txns (<= {} reports each, {} in flight) / conflicts / errors / resyncs | {} / {} / {} / {} | |",
        sim::MAX_REPORTS_PER_TXN,
        sim::WRITERS,
        p.report_txns.load(Ordering::Relaxed),
        p.report_conflicts.load(Ordering::Relaxed),
        p.report_errors.load(Ordering::Relaxed),
        p.resyncs.load(Ordering::Relaxed)
    );
    if r.leader_changed {
        println!("| NOTE | the leader changed during the run | |");
    }
    // The rounds, for where the time goes.
    if let (Some(f), Some(l)) = (r.rounds.first(), r.rounds.last()) {
        println!();
        println!("first round: {f}");
        println!("last round:  {l}");
    }
}

fn report_fanout(rows: &[fanout::FanoutRow], events: usize, sample_bytes: usize) {
    println!();
    println!(
        "watch fan-out on the learner's replica: {} task-sized writes ({} B), K watchers each decoding every event",
        events, sample_bytes
    );
    println!("| watchers | CPU for the burst | CPU per delivered event | wall |");
    println!("|---|---|---|---|");
    for row in rows {
        println!(
            "| {} | {:.2} s | {:.1} µs | {:.2} s |",
            row.watchers,
            row.cpu_s,
            row.per_event_ns / 1e3,
            row.wall_s
        );
    }
}
