//! Watch fan-out cost on this process's replica: K independent watchers (each decodes every
//! event as a `Task`, as a per-node agent's typed watch would, and counts it) against a burst of
//! task-sized writes under a prefix of their own (so the controllers and the simulated nodes
//! ignore them). The cost per delivered event is this process's CPU time (user + system, 10 ms
//! ticks) for the burst with K watchers, minus the same burst with none (the learner applying
//! the entries), divided by K x events.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use orion_core::model::Task;
use orion_core::store::{Op, Store, Txn, decode_value};

/// Outside `/orion/`, which the leader's reconcile loop watches: these writes start no round.
const PREFIX: &str = "/scale-bench/fanout/";
const PUTS_PER_TXN: usize = 100;
/// The longest one burst may take to reach every watcher.
const BURST_LIMIT: Duration = Duration::from_secs(300);

/// One row: K watchers, CPU seconds for the burst, CPU per delivered event (ns).
pub struct FanoutRow {
    pub watchers: usize,
    pub cpu_s: f64,
    pub per_event_ns: f64,
    pub wall_s: f64,
}

/// This process's CPU time (user + system), in seconds.
pub fn process_cpu_s() -> f64 {
    crate::proc_stats::cpu_seconds("/proc/self/stat")
}

/// Measures each count of `watchers` (0 first, as the baseline) with `events` writes of
/// `value` (a stored task's JSON) through `writer`, watched on `replica`.
pub async fn measure<W: Store, R: Store>(
    writer: &W,
    replica: &R,
    value: &[u8],
    events: usize,
    watchers: &[usize],
) -> Result<Vec<FanoutRow>, String> {
    let base = burst(writer, replica, value, events, 0, 0).await?;
    let mut rows = Vec::new();
    for (round, &k) in watchers.iter().enumerate() {
        let (cpu_s, wall_s) = burst(writer, replica, value, events, k, round + 1).await?;
        rows.push(FanoutRow {
            watchers: k,
            cpu_s,
            per_event_ns: (cpu_s - base.0).max(0.0) / (k * events) as f64 * 1e9,
            wall_s,
        });
    }
    Ok(rows)
}

/// One burst with `k` watchers; returns (CPU seconds, wall seconds) until every watcher had
/// every event (or, with none, until the replica applied the last write).
async fn burst<W: Store, R: Store>(
    writer: &W,
    replica: &R,
    value: &[u8],
    events: usize,
    k: usize,
    round: usize,
) -> Result<(f64, f64), String> {
    let err = |e: orion_core::Error| format!("fan-out burst: {e}");
    let from = replica.revision().await.map_err(err)? + 1;
    let seen = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::with_capacity(k);
    for _ in 0..k {
        let mut watch = replica.watch(PREFIX, from).await.map_err(err)?;
        let seen = seen.clone();
        tasks.push(tokio::spawn(async move {
            while let Some(Ok(event)) = watch.next().await {
                if decode_value::<Task>(&event.kv.key, &event.kv.value).is_ok() {
                    seen.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    let cpu0 = process_cpu_s();
    let started = Instant::now();
    let mut last = 0;
    for first in (0..events).step_by(PUTS_PER_TXN) {
        let mut txn = Txn::new();
        for i in first..(first + PUTS_PER_TXN).min(events) {
            txn = txn.and_then(Op::Put(format!("{PREFIX}{round}/{i}"), value.to_vec()));
        }
        last = writer.txn(txn).await.map_err(err)?.revision;
    }
    let want = (k * events) as u64;
    loop {
        let done = if k == 0 {
            replica.revision().await.map_err(err)? >= last
        } else {
            seen.load(Ordering::Relaxed) >= want
        };
        if done {
            break;
        }
        if started.elapsed() > BURST_LIMIT {
            return Err(format!(
                "fan-out with {k} watchers: {} of {want} deliveries within {BURST_LIMIT:?}",
                seen.load(Ordering::Relaxed)
            ));
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let result = (process_cpu_s() - cpu0, started.elapsed().as_secs_f64());
    for t in tasks {
        t.abort();
    }
    writer
        .txn(Txn::new().and_then(Op::DeletePrefix(PREFIX.to_owned())))
        .await
        .map_err(err)?;
    Ok(result)
}
