//! Rolling update bench: a real `orion` node and the real Docker engine; prints a table.
//!
//! 10 replicas with an http check (interval 1 s), `parallelism: 2`, `delay_seconds: 1`. Each
//! sample changes the spec (an env var) and measures, from the API's answer to the change until
//! every replica is of the new version and healthy (the old ones may still be stopping). It
//! compares that with the reference: for each batch of 2, the slower replica's own start (from
//! first seen `starting` or `running` to first seen healthy, polled every 20 ms: the engine's
//! start and the first check), summed over the batches, plus the configured delays between
//! batches. The goal is a ratio of at most 1.2. The replicas' shell stops httpd on SIGTERM (as
//! pid 1 httpd ignores it, and every stop would wait for the engine's 10 s grace period).
//!
//! `cargo bench -p orion --bench rollout` takes 3 samples of 10 replicas; quick mode (1 sample
//! of 4 replicas) runs under `-- --test` or with `ORION_BENCH_QUICK=1`. Every wait is bounded.

#[path = "../tests/support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use orion_core::model::{TaskState, now_millis};
use reqwest::Method;
use serde_json::{Value, json};
use support::{TestCluster, http_spec};

const LIMIT: Duration = Duration::from_secs(300);
/// How often the bench polls the API: the resolution of the figures.
const POLL: Duration = Duration::from_millis(20);
const PARALLELISM: u32 = 2;
const DELAY_SECONDS: u64 = 1;

fn spec(replicas: u32, release: usize) -> Value {
    let mut spec: Value = serde_json::from_str(&http_spec("roll", replicas)).expect("valid JSON");
    spec["health_check"] = json!({
        "type": "http", "http_path": "/index.html", "port": 8080, "interval": 1, "retries": 1,
    });
    spec["update_strategy"] = json!({"parallelism": PARALLELISM, "delay_seconds": DELAY_SECONDS});
    spec["env"] = json!({ "RELEASE": release.to_string() });
    spec["command"] = json!([
        "sh",
        "-c",
        "trap 'kill $P; exit 0' TERM; httpd -f -p 8080 -h /www & P=$!; wait"
    ]);
    spec
}

/// One measured update.
struct Sample {
    total: Duration,
    reference: Duration,
}

/// Applies release `release` and waits until `replicas` replicas of the new version serve.
async fn update(c: &TestCluster, replicas: u32, release: usize) -> Sample {
    let body = spec(replicas, release).to_string().into_bytes();
    let (status, answer) = c
        .request(
            0,
            Method::PUT,
            "/v1/services/roll",
            Some(("application/json", body)),
        )
        .await;
    assert!(status.is_success(), "PUT: {status} {answer}");
    let applied = Instant::now();
    let applied_ms = now_millis();
    let version = answer["version"].as_u64().expect("a version in the answer");
    // Task id -> (first seen starting or running, first seen serving), ms since the epoch.
    let mut started: BTreeMap<String, u64> = BTreeMap::new();
    let mut seen: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    while applied.elapsed() < LIMIT {
        let tasks = c.tasks(0, "roll").await.unwrap_or_default();
        let now = now_millis();
        for t in tasks.iter().filter(|t| t.spec_version == version) {
            if matches!(t.state, TaskState::Starting | TaskState::Running) {
                started.entry(t.id.to_string()).or_insert(now);
            }
            if t.is_serving()
                && let Some(&start) = started.get(t.id.as_str())
            {
                seen.entry(t.id.to_string()).or_insert((start, now));
            }
        }
        let fresh_serving = tasks
            .iter()
            .filter(|t| t.spec_version == version && t.is_serving())
            .count();
        if fresh_serving == replicas as usize {
            let total = applied.elapsed();
            return Sample {
                total,
                reference: reference(&seen, applied_ms),
            };
        }
        tokio::time::sleep(POLL).await;
    }
    panic!("release {release} did not roll out within {LIMIT:?}");
}

/// The batches' own start times (the slower of each batch of [`PARALLELISM`], in start
/// order) plus the delays between batches.
fn reference(seen: &BTreeMap<String, (u64, u64)>, applied_ms: u64) -> Duration {
    let mut starts: Vec<(u64, u64)> = seen.values().copied().collect();
    starts.sort_unstable();
    let batches: Vec<u64> = starts
        .chunks(PARALLELISM as usize)
        .map(|batch| {
            batch
                .iter()
                .map(|&(start, serving)| serving.saturating_sub(start.max(applied_ms)))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let delays = (batches.len() as u64).saturating_sub(1) * DELAY_SECONDS * 1000;
    Duration::from_millis(batches.iter().sum::<u64>() + delays)
}

fn main() {
    let quick = std::env::args().any(|a| a == "--test")
        || std::env::var("ORION_BENCH_QUICK").is_ok_and(|v| v == "1");
    let (samples, replicas) = if quick { (1, 4) } else { (3, 10) };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let results = rt.block_on(async {
        let c = TestCluster::single("rolloutbench").await;
        c.deploy(0, &spec(replicas, 0).to_string()).await;
        c.wait_serving(0, "roll", replicas as usize, LIMIT).await;
        let mut results = Vec::new();
        for release in 1..=samples {
            results.push(update(&c, replicas, release).await);
            // The old replicas finish stopping before the next sample.
            c.wait_serving(0, "roll", replicas as usize, LIMIT).await;
        }
        results
    });
    let s = |d: Duration| format!("{:.2} s", d.as_secs_f64());
    println!(
        "\norion rolling update bench ({} mode: {replicas} replicas, parallelism {PARALLELISM}, \
         delay {DELAY_SECONDS} s, http check every 1 s, poll {} ms)",
        if quick { "quick" } else { "full" },
        POLL.as_millis()
    );
    println!(
        "| sample | apply -> all new and healthy | reference (batch starts + delays) | ratio |"
    );
    println!("|---|---|---|---|");
    for (i, r) in results.iter().enumerate() {
        println!(
            "| {} | {} | {} | {:.2} |",
            i + 1,
            s(r.total),
            s(r.reference),
            r.total.as_secs_f64() / r.reference.as_secs_f64().max(0.001)
        );
    }
}
