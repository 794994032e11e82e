//! Create+start (and remove) latency through `ContainerdRuntime` on the real containerd.
//!
//! `cargo bench -p orion-runtime --features containerd --bench containerd_start` runs 10
//! iterations and prints a table; with `-- --test` or under `cargo test` it runs one iteration
//! as a smoke check. Each iteration starts `sleep 300` in namespace `orion-test` and removes it.

#[path = "../tests/containerd_support/mod.rs"]
mod containerd_support;

use std::time::{Duration, Instant};

use orion_core::model::spec::NetworkMode;
use orion_core::runtime::{ContainerSpec, Runtime};

const BENCH_ITERATIONS: usize = 10;

fn row(name: &str, samples: &mut [Duration]) {
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let mean = samples.iter().map(|d| ms(*d)).sum::<f64>() / samples.len() as f64;
    println!(
        "| {name:<16} | {:>3} | {:>8.1} | {:>8.1} | {:>8.1} | {:>8.1} |",
        samples.len(),
        ms(samples[0]),
        ms(samples[samples.len() / 2]),
        mean,
        ms(samples[samples.len() - 1]),
    );
}

#[tokio::main]
async fn main() {
    // `cargo bench` passes `--bench`; `-- --test` (smoke mode) and `cargo test` want one run.
    let args: Vec<String> = std::env::args().collect();
    let measuring = args.iter().any(|a| a == "--bench") && !args.iter().any(|a| a == "--test");
    let iterations = if measuring { BENCH_ITERATIONS } else { 1 };
    let state = tempfile::tempdir().expect("temp dir");
    let rt = containerd_support::runtime_with_image(state.path()).await;
    let name = format!("orion-bench-start-{}", std::process::id());
    let spec = ContainerSpec {
        name: name.clone(),
        image: containerd_support::IMAGE.to_string(),
        command: vec!["sleep".into(), "300".into()],
        network_mode: NetworkMode::None,
        ..ContainerSpec::default()
    };
    let (mut starts, mut removes) = (Vec::new(), Vec::new());
    for _ in 0..iterations {
        let t = Instant::now();
        let info = rt.create_and_start(&spec).await.expect("create_and_start");
        starts.push(t.elapsed());
        assert!(info.status.is_running(), "{:?}", info.status);
        let t = Instant::now();
        rt.remove(&name).await.expect("remove");
        removes.push(t.elapsed());
    }
    println!(
        "containerd {} at {}",
        rt.version().await.unwrap_or_default(),
        rt.socket().display()
    );
    println!("| operation        |   n |  min ms  |  p50 ms  | mean ms  |  max ms  |");
    println!("|------------------|-----|----------|----------|----------|----------|");
    row("create_and_start", &mut starts);
    row("remove (running)", &mut removes);
}
