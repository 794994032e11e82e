//! Cluster bench: real `orion` processes and the real Docker engine; prints a table.
//!
//! `cargo bench -p orion-bin --bench cluster` measures in release mode. Quick mode (small sizes,
//! fewer samples) runs under `-- --test` or with `ORION_BENCH_QUICK=1`, so CI can run it once.
//! Goals are reported next to the figures, never asserted. Every wait is bounded.

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use support::{
    FAST_NETWORK_YAML, NodeProc, Role, TestCluster, docker_kill, http_spec, http_spec_restart,
    near_but_not_on_spec, wait_for,
};

const LIMIT: Duration = Duration::from_secs(180);

struct Row {
    name: String,
    value: String,
    goal: &'static str,
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

struct Sizes {
    deploy: u32,
    scale_to: u32,
    ready_samples: usize,
}

async fn deploy_and_scale(sizes: &Sizes, rows: &mut Vec<Row>) {
    let c = TestCluster::single("bench").await;
    let t = Instant::now();
    // 10 millicores each, so 50 replicas fit one node (the default request is 100m).
    let mut spec: serde_json::Value =
        serde_json::from_str(&http_spec_restart("bench", sizes.deploy, "always")).expect("JSON");
    spec["resources"] = serde_json::json!({ "cpu_millicores": 10 });
    c.deploy(0, &spec.to_string()).await;
    let tasks = c
        .wait_serving(0, "bench", sizes.deploy as usize, LIMIT)
        .await;
    rows.push(Row {
        name: format!("deploy {} replicas until all serve", sizes.deploy),
        value: ms(t.elapsed()),
        goal: "-",
    });

    let t = Instant::now();
    c.scale(0, "bench", sizes.scale_to).await;
    c.wait_serving(0, "bench", sizes.scale_to as usize, LIMIT)
        .await;
    rows.push(Row {
        name: format!(
            "scale {} -> {} until all serve",
            sizes.deploy, sizes.scale_to
        ),
        value: ms(t.elapsed()),
        goal: "-",
    });

    let killed = tasks[0].container_id.clone().expect("container id");
    let t = Instant::now();
    docker_kill(&killed);
    wait_for("the killed container's replacement", LIMIT, || async {
        let tasks = c.serving_now(0, "bench", sizes.scale_to as usize).await?;
        if tasks
            .iter()
            .any(|t| t.container_id.as_deref() == Some(killed.as_str()))
        {
            Err("killed container still listed".to_owned())
        } else {
            Ok(())
        }
    })
    .await;
    rows.push(Row {
        name: "killed container until it serves again (restart: always)".into(),
        value: ms(t.elapsed()),
        goal: "-",
    });
}

async fn idle_rss_and_ready(sizes: &Sizes, rows: &mut Vec<Row>) {
    let mut c = TestCluster::single("idle").await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let rss = c.nodes[0].rss_kib().expect("VmRSS of the node");
    rows.push(Row {
        name: "idle node RSS (VmRSS after 3 s idle)".into(),
        value: format!("{:.1} MB", rss as f64 / 1024.0),
        goal: "<= 30 MB",
    });

    let mut samples = Vec::new();
    for _ in 0..sizes.ready_samples {
        // kill -9, so a sample does not wait for a graceful shutdown of the previous process.
        c.nodes[0].kill9();
        c.nodes[0].spawn();
        let started = c.nodes[0].started_at.expect("spawned");
        let url = c.nodes[0].url("/healthz");
        let mut ready = None;
        for _ in 0..5000 {
            if let Ok(r) = c.http.get(&url).send().await
                && r.status() == StatusCode::OK
            {
                ready = Some(started.elapsed());
                break;
            }
            if started.elapsed() > Duration::from_secs(20) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        samples.push(ready.expect("node answered /healthz within 20 s"));
    }
    samples.sort();
    rows.push(Row {
        name: format!(
            "process start until /healthz answers (median of {})",
            samples.len()
        ),
        value: ms(samples[samples.len() / 2]),
        goal: "<= 50 ms",
    });
}

/// True when `orion server --bootstrap` stays up and answers /healthz (cluster mode exists).
async fn cluster_mode_available() -> bool {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut n = NodeProc::new(
        format!("probe-{}", std::process::id()),
        dir.path().to_path_buf(),
        Role::Bootstrap,
    );
    n.spawn();
    let http = reqwest::Client::new();
    let mut ok = false;
    for _ in 0..100 {
        if !n.is_running() {
            break;
        }
        if let Ok(r) = http.get(n.url("/healthz")).send().await
            && r.status() == StatusCode::OK
        {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    n.kill9();
    ok
}

async fn node_kill(rows: &mut Vec<Row>) {
    let name = "node killed until its replacements serve (3 nodes, 6 replicas)";
    if !cluster_mode_available().await {
        rows.push(Row {
            name: name.into(),
            value: "n/a (no cluster mode)".into(),
            goal: "<= 2000 ms",
        });
        return;
    }
    let mut c = TestCluster::three("benchn").await;
    c.deploy(0, &http_spec("nk", 6)).await;
    let tasks = c.wait_serving(0, "nk", 6, LIMIT).await;
    let (_, cluster) = c
        .request(0, reqwest::Method::GET, "/v1/cluster", None)
        .await;
    let leader = cluster["leader"].as_str().unwrap_or_default().to_owned();
    let victim = (0..3)
        .find(|&i| {
            c.nodes[i].id != leader
                && tasks
                    .iter()
                    .any(|t| t.node.as_deref() == Some(c.nodes[i].id.as_str()))
        })
        .expect("a non-leader node with tasks");
    let victim_id = c.nodes[victim].id.clone();
    let api = (0..3).find(|&i| i != victim).expect("another node");
    let t = Instant::now();
    c.nodes[victim].kill9();
    wait_for("replacements of the killed node's tasks", LIMIT, || async {
        let tasks = c.serving_now(api, "nk", 6).await?;
        if tasks
            .iter()
            .any(|t| t.node.as_deref() == Some(victim_id.as_str()))
        {
            Err("tasks still on the killed node".to_owned())
        } else {
            Ok(())
        }
    })
    .await;
    rows.push(Row {
        name: name.into(),
        value: ms(t.elapsed()),
        goal: "<= 2000 ms",
    });
}

/// Latency injected on the node of a replica with a 5 ms rule to `db` (`orion chaos latency
/// +15ms`) until a replacement serves on a node within the rule. The replica has run past its
/// 1 s cooldown first, so this is detection, decision and start, not the cooldown.
async fn link_degraded(rows: &mut Vec<Row>) {
    let name = "link degraded until the replica serves elsewhere (3 nodes)";
    if !cluster_mode_available().await {
        rows.push(Row {
            name: name.into(),
            value: "n/a (no cluster mode)".into(),
            goal: "reported",
        });
        return;
    }
    let c = TestCluster::three_configured("benchl", Some(FAST_NETWORK_YAML)).await;
    c.deploy(0, &http_spec("db", 1)).await;
    let db = c.wait_serving(0, "db", 1, LIMIT).await;
    c.deploy(0, &near_but_not_on_spec("web", "db", 5.0)).await;
    let web = c.wait_serving(0, "web", 1, LIMIT).await;
    let (db_node, slow) = (db[0].node.clone(), web[0].node.clone().unwrap_or_default());
    tokio::time::sleep(Duration::from_millis(1500)).await; // past the cooldown
    let t = Instant::now();
    let out = c.cli(
        0,
        &[
            "chaos",
            "latency",
            "--increase",
            "15ms",
            "--nodes",
            &slow,
            "--duration",
            "60s",
        ],
    );
    assert!(out.status.success(), "chaos latency failed: {out:?}");
    wait_for("web serving on another node", LIMIT, || async {
        let tasks = c.tasks(0, "web").await?;
        let moved = tasks.iter().find(|t| {
            t.state == orion_core::model::TaskState::Running
                && t.node.as_deref().is_some_and(|n| n != slow)
                && t.node != db_node
        });
        match moved.and_then(support::host_port) {
            Some(port) => support::http_get_ok(&c.http, port).await,
            None => Err("not moved yet".to_owned()),
        }
    })
    .await;
    rows.push(Row {
        name: name.into(),
        value: ms(t.elapsed()),
        goal: "reported (probe 300 ms, publish 500 ms)",
    });
    let _ = c.cli(0, &["chaos", "stop"]);
}

fn main() {
    let quick = std::env::args().any(|a| a == "--test")
        || std::env::var("ORION_BENCH_QUICK").is_ok_and(|v| v == "1");
    let sizes = if quick {
        Sizes {
            deploy: 3,
            scale_to: 6,
            ready_samples: 3,
        }
    } else {
        Sizes {
            deploy: 10,
            scale_to: 50,
            ready_samples: 15,
        }
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let mut rows = Vec::new();
    rt.block_on(async {
        deploy_and_scale(&sizes, &mut rows).await;
        idle_rss_and_ready(&sizes, &mut rows).await;
        node_kill(&mut rows).await;
        link_degraded(&mut rows).await;
    });
    let width = rows.iter().map(|r| r.name.len()).max().unwrap_or(10);
    println!(
        "\norion cluster bench ({} mode, binary {})",
        if quick { "quick" } else { "full" },
        support::ORION_BIN.display()
    );
    println!("{:<width$}  {:>22}  goal", "measurement", "value");
    println!("{}", "-".repeat(width + 34));
    for r in &rows {
        println!("{:<width$}  {:>22}  {}", r.name, r.value, r.goal);
    }
}
