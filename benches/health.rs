//! Health check bench: a real `orion` node and the real Docker engine; prints a table.
//!
//! Measures a health check's detection time: a replica with an `http` check (interval 1 s,
//! retries 0) goes bad (its page is deleted with `docker exec`, httpd answers 404) until it is
//! marked unhealthy, until it is restarted in place (its container stopped with the 10 s grace
//! period, which httpd as pid 1 ignores), and until the new container passes its check again.
//!
//! `cargo bench -p orion-bin --bench health` takes 5 samples; quick mode (1 sample) runs under
//! `-- --test` or with `ORION_BENCH_QUICK=1`, so CI can run it once. Every wait is bounded.

#[path = "../tests/support/mod.rs"]
mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use orion_core::model::{Task, TaskHealth};
use support::{TestCluster, http_spec, wait_for};

const LIMIT: Duration = Duration::from_secs(120);
/// How often the bench polls the API: the resolution of the figures.
const POLL: Duration = Duration::from_millis(20);

fn spec() -> String {
    let mut spec: serde_json::Value =
        serde_json::from_str(&http_spec("probe", 1)).expect("valid JSON");
    spec["health_check"] = serde_json::json!({
        "type": "http", "http_path": "/index.html", "port": 8080, "interval": 1, "retries": 0,
    });
    spec.to_string()
}

async fn the_task(c: &TestCluster) -> Result<Task, String> {
    match c.tasks(0, "probe").await?.as_slice() {
        [t] => Ok(t.clone()),
        other => Err(format!("{} tasks", other.len())),
    }
}

async fn healthy(c: &TestCluster) -> Task {
    wait_for("the replica to pass its check", LIMIT, || async {
        let t = the_task(c).await?;
        if t.health == TaskHealth::Healthy {
            Ok(t)
        } else {
            Err(format!("{:?} {:?}", t.state, t.health))
        }
    })
    .await
}

/// Polls every [`POLL`] until `done` holds, at most [`LIMIT`].
async fn until(c: &TestCluster, what: &str, done: impl Fn(&Task) -> bool) {
    let started = Instant::now();
    while started.elapsed() < LIMIT {
        if the_task(c).await.is_ok_and(|t| done(&t)) {
            return;
        }
        tokio::time::sleep(POLL).await;
    }
    panic!("timed out after {LIMIT:?} waiting for {what}");
}

fn main() {
    let quick = std::env::args().any(|a| a == "--test")
        || std::env::var("ORION_BENCH_QUICK").is_ok_and(|v| v == "1");
    let samples = if quick { 1 } else { 5 };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let (mut marked, mut detect, mut serve) = (Vec::new(), Vec::new(), Vec::new());
    rt.block_on(async {
        let c = TestCluster::single("healthbench").await;
        c.deploy(0, &spec()).await;
        for _ in 0..samples {
            let before = healthy(&c).await;
            let container = before.container_id.clone().expect("container id");
            let t = Instant::now();
            let out = Command::new("docker")
                .args(["exec", &container, "rm", "/www/index.html"])
                .output()
                .expect("run the docker CLI");
            assert!(out.status.success(), "docker exec: {out:?}");
            until(&c, "the replica to be marked unhealthy", |t| {
                t.health == TaskHealth::Unhealthy || t.restarts > before.restarts
            })
            .await;
            marked.push(t.elapsed());
            until(&c, "the unhealthy replica to be restarted", |t| {
                t.restarts > before.restarts
            })
            .await;
            detect.push(t.elapsed());
            until(&c, "the restarted replica to pass again", |t| {
                t.restarts > before.restarts
                    && t.health == TaskHealth::Healthy
                    && t.container_id.as_ref() != Some(&container)
            })
            .await;
            serve.push(t.elapsed());
        }
    });
    let median = |v: &mut Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    let ms = |d: Duration| format!("{:.0} ms", d.as_secs_f64() * 1000.0);
    println!(
        "\norion health bench ({} mode, {samples} sample(s), check interval 1 s, retries 0, poll {} ms)",
        if quick { "quick" } else { "full" },
        POLL.as_millis()
    );
    println!(
        "replica goes bad -> marked unhealthy (median): {}",
        ms(median(&mut marked))
    );
    println!(
        "replica goes bad -> marked unhealthy and restarted (median, includes the 10 s stop grace httpd ignores as pid 1): {}",
        ms(median(&mut detect))
    );
    println!(
        "replica goes bad -> restarted replica healthy again (median): {}",
        ms(median(&mut serve))
    );
}
