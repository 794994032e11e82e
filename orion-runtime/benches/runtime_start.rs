//! Container start latency: `DockerRuntime::create_and_start` against `docker run -d` (the CLI,
//! same engine, same image, same command), plus `ProcessRuntime` for scale. Prints a table.
//!
//! `cargo bench -p orion-runtime --bench runtime_start` runs 20 starts per row;
//! with `-- --test` (the CI smoke run) one start per row. Every container is removed.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use orion_core::runtime::{ContainerSpec, Runtime};
use orion_runtime::testing::{TEST_IMAGE, ensure_test_image, require_docker, shell_spec};
use orion_runtime::{DockerRuntime, ProcessRuntime};

const ITERATIONS: usize = 20;
const COMMAND: &str = "sleep 300";
const BENCH_LABEL: &str = "io.orion.bench";

#[tokio::main]
async fn main() {
    let smoke = std::env::args().any(|a| a == "--test");
    let iterations = if smoke { 1 } else { ITERATIONS };
    ensure_test_image()
        .await
        .expect("the busybox test image loads");
    let docker = DockerRuntime::from_client(require_docker().await);
    let run = format!("{:x}", std::process::id());
    let labels = BTreeMap::from([(BENCH_LABEL.to_owned(), run.clone())]);

    let mut rows = Vec::new();
    let mut samples = Vec::new();
    for i in 0..iterations {
        let spec = shell_spec(&format!("orion-bench-{run}-rt-{i}"), COMMAND, &labels);
        let started = Instant::now();
        let info = docker.create_and_start(&spec).await.expect("start");
        samples.push(started.elapsed());
        docker.remove(&info.id).await.expect("remove");
    }
    rows.push(("DockerRuntime::create_and_start", samples));

    let mut samples = Vec::new();
    for i in 0..iterations {
        let name = format!("orion-bench-{run}-cli-{i}");
        let started = Instant::now();
        let status = tokio::process::Command::new("docker")
            .args(["run", "-d", "--name", &name, "--label"])
            .arg(format!("{BENCH_LABEL}={run}"))
            .args([TEST_IMAGE, "sh", "-c", COMMAND])
            .stdout(std::process::Stdio::null())
            .status()
            .await
            .expect("the docker CLI runs");
        samples.push(started.elapsed());
        assert!(status.success(), "docker run -d failed: {status}");
        let _ = tokio::process::Command::new("docker")
            .args(["rm", "-f", &name])
            .stdout(std::process::Stdio::null())
            .status()
            .await;
    }
    rows.push(("docker run -d (CLI)", samples));

    let state = tempfile::tempdir().expect("a temp dir");
    let process = ProcessRuntime::new(state.path()).expect("state dir");
    let mut samples = Vec::new();
    for i in 0..iterations {
        let spec = ContainerSpec {
            name: format!("bench-{i}"),
            image: "/bin/sh".into(),
            command: vec!["-c".into(), COMMAND.into()],
            ..ContainerSpec::default()
        };
        let started = Instant::now();
        let info = process.create_and_start(&spec).await.expect("start");
        samples.push(started.elapsed());
        process.remove(&info.id).await.expect("remove");
    }
    rows.push(("ProcessRuntime::create_and_start", samples));

    print_table(iterations, &rows);
}

fn print_table(iterations: usize, rows: &[(&str, Vec<Duration>)]) {
    println!("\ncontainer start latency, {iterations} start(s) per row (ms)");
    println!(
        "{:<34} {:>9} {:>9} {:>9} {:>9}",
        "what", "min", "median", "p90", "max"
    );
    let mut medians = Vec::new();
    for (name, samples) in rows {
        let mut sorted = samples.clone();
        sorted.sort();
        let at = |q: f64| sorted[((sorted.len() - 1) as f64 * q).round() as usize];
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        println!(
            "{name:<34} {:>9.1} {:>9.1} {:>9.1} {:>9.1}",
            ms(sorted[0]),
            ms(at(0.5)),
            ms(at(0.9)),
            ms(sorted[sorted.len() - 1])
        );
        medians.push(ms(at(0.5)));
    }
    if medians.len() >= 2 && medians[1] > 0.0 {
        println!(
            "DockerRuntime / docker run -d (median): {:.2}",
            medians[0] / medians[1]
        );
    }
}
