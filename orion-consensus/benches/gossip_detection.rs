//! Failure-detection bench for the gossip membership, with real processes over loopback UDP at
//! default timings. Prints a table:
//!
//! - detection time after `kill -9` (time until *every* survivor reports `Dead`), p50/p99/max
//!   over N trials, for 3, 5 and 10 members; each trial restarts the victim with the same id and
//!   waits until everyone reports it `Joined` again;
//! - false positives: `Suspect`/`Dead` events about live members, during the trials and during
//!   an idle run.
//!
//! `cargo bench -p orion-consensus --bench gossip_detection` runs the full bench (about 4 min);
//! `-- --test`, `ORION_BENCH_QUICK=1` or `cargo test --benches` run a quick bounded pass (CI).

#[path = "../tests/gossip_support/process_cluster.rs"]
mod process_cluster;

use std::thread;
use std::time::{Duration, Instant};

use process_cluster::{NodeProcess, start_cluster, wait_until};

const BOUND: Duration = Duration::from_secs(20);

struct Plan {
    sizes: Vec<usize>,
    trials: usize,
    idle_members: usize,
    idle: Duration,
}

fn plan() -> Plan {
    // `cargo bench` passes `--bench`; `cargo test --benches` does not, and gets the quick pass.
    let args: Vec<String> = std::env::args().collect();
    let quick = !args.iter().any(|arg| arg == "--bench")
        || args.iter().any(|arg| arg == "--test")
        || std::env::var("ORION_BENCH_QUICK").is_ok_and(|v| v == "1");
    if quick {
        Plan {
            sizes: vec![3],
            trials: 2,
            idle_members: 3,
            idle: Duration::from_secs(2),
        }
    } else {
        Plan {
            sizes: vec![3, 5, 10],
            trials: 30,
            idle_members: 10,
            idle: Duration::from_secs(30),
        }
    }
}

/// Nearest-rank percentile of sorted samples.
fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ms(d: Duration) -> String {
    format!("{:.0}", d.as_secs_f64() * 1000.0)
}

/// Suspect/Dead events about any member other than `except` since `since`, over all nodes.
fn false_positives(nodes: &[NodeProcess], except: Option<&str>, since: Instant) -> usize {
    nodes
        .iter()
        .map(|node| {
            node.events()
                .iter()
                .filter(|seen| seen.at >= since)
                .filter_map(|seen| seen.kind_and_node())
                .filter(|(kind, about)| {
                    matches!(*kind, "Suspect" | "Dead") && Some(*about) != except
                })
                .count()
        })
        .sum()
}

struct Row {
    size: usize,
    samples: Vec<Duration>,
    false_positives: usize,
}

fn detection_trials(size: usize, trials: usize) -> Result<Row, String> {
    let mut nodes = start_cluster(&format!("b{size}x"), size, BOUND)?;
    let mut samples = Vec::with_capacity(trials);
    let mut false_positive_count = 0;
    for trial in 0..trials {
        let victim_index = 1 + trial % (size - 1);
        let mut victim = nodes.remove(victim_index);
        let (id, addr) = (victim.id.clone(), victim.addr);
        let killed_at = Instant::now();
        victim.kill_9();
        drop(victim);
        wait_until(BOUND, &format!("every survivor reports {id} dead"), || {
            nodes
                .iter()
                .all(|node| node.first_since("Dead", &id, killed_at).is_some())
        })?;
        let last = nodes
            .iter()
            .filter_map(|node| node.first_since("Dead", &id, killed_at))
            .max()
            .unwrap_or(killed_at);
        samples.push(last - killed_at);
        false_positive_count += false_positives(&nodes, Some(&id), killed_at);
        let restarted_at = Instant::now();
        let back = NodeProcess::start(&id, addr, &[nodes[0].addr])?;
        nodes.insert(victim_index, back);
        wait_until(
            BOUND,
            &format!("every member reports {id} joined again"),
            || {
                nodes
                    .iter()
                    .filter(|node| node.id != id)
                    .all(|node| node.first_since("Joined", &id, restarted_at).is_some())
            },
        )?;
        // Let the restarted member learn the whole roster before the next kill.
        thread::sleep(Duration::from_millis(300));
    }
    samples.sort();
    Ok(Row {
        size,
        samples,
        false_positives: false_positive_count,
    })
}

fn idle_run(members: usize, idle: Duration) -> Result<usize, String> {
    let nodes = start_cluster("idle", members, BOUND)?;
    let since = Instant::now();
    thread::sleep(idle);
    Ok(false_positives(&nodes, None, since))
}

fn main() -> Result<(), String> {
    let plan = plan();
    let mut rows = Vec::new();
    for &size in &plan.sizes {
        eprintln!(
            "gossip_detection: {size} members, {} kill -9 trials...",
            plan.trials
        );
        rows.push(detection_trials(size, plan.trials)?);
    }
    eprintln!(
        "gossip_detection: idle run, {} members for {:?}...",
        plan.idle_members, plan.idle
    );
    let idle_false_positives = idle_run(plan.idle_members, plan.idle)?;

    println!(
        "\nDetection after kill -9 (until every survivor reports Dead), default timings, UDP loopback"
    );
    println!("| members | trials | p50 ms | p99 ms | max ms | false Suspect/Dead during trials |");
    println!("|---:|---:|---:|---:|---:|---:|");
    for row in &rows {
        println!(
            "| {} | {} | {} | {} | {} | {} |",
            row.size,
            row.samples.len(),
            ms(percentile(&row.samples, 50.0)),
            ms(percentile(&row.samples, 99.0)),
            ms(row.samples.last().copied().unwrap_or_default()),
            row.false_positives
        );
    }
    println!(
        "\nIdle run: {} members for {:?}: {} false Suspect/Dead events",
        plan.idle_members, plan.idle, idle_false_positives
    );
    Ok(())
}
