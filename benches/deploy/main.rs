//! Deploy speed on one node (issue 16): Orion, the engine floor and Docker Swarm, measured in one
//! run on the same engine with the same tiny image; prints a table and the traced timeline of
//! Orion's deploy.
//!
//! `cargo bench --bench deploy` measures in release mode. `ORION_BENCH_MAX_IN_FLIGHT=N` runs the
//! node with `agent.maxInFlight: N` (1 to 256; unset: the binary's default). Quick mode
//! (`-- --test` or `ORION_BENCH_QUICK=1`, for CI): 3 -> 6 replicas, no Swarm, uncapped CPU only.
//! `ORION_BENCH_SWARM=0` skips Swarm in the full mode too. `ORION_BENCH_CPU=capped|uncapped`
//! measures one [`CpuMode`] (unset: both in the full mode). Goals are printed next to the
//! figures, never asserted. Every wait is bounded; the bench removes every container and
//! service it made, and when it initialised a swarm it always leaves it (`docker swarm leave
//! --force`).
//!
//! The three sides run the same containers: the busybox test image serving HTTP on 8080,
//! published on a free port of 127.0.0.1, 10 millicores reserved (capped or not, see
//! [`CpuMode`]) and 64 MiB each. "Runs" means the engine reports the container running (for
//! Orion: the task is `running` in the API, which the agent writes once the engine has started
//! it).

#[path = "../../tests/support/mod.rs"]
mod support;

mod floor;
mod orion;
mod replace;
mod swarm;
mod timeline;

use std::time::Duration;

/// Every wait of the bench ends within this.
pub const LIMIT: Duration = Duration::from_secs(180);
/// How often the bench polls for "all run".
pub const POLL: Duration = Duration::from_millis(10);
/// The CPU request of each replica: 50 fit one node (the default request is 100m).
pub const CPU_MILLICORES: u64 = 10;
/// The memory request (and limit) of each replica: the spec's default.
pub const MEMORY_BYTES: u64 = 64 << 20;

/// How every side sets the replicas' CPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CpuMode {
    /// 10 millicores reserved and capped there: a 1 % CFS quota (Orion's default `cpu_limit`,
    /// Swarm's `--limit-cpu 0.01`). The containers' own start-up runs under that quota.
    Capped,
    /// 10 millicores reserved, no cap (Orion's `cpu_limit: none`, Swarm's `--reserve-cpu 0.01`).
    Uncapped,
}

impl CpuMode {
    /// Orion's `resources.cpu_limit` for this mode.
    pub fn cpu_limit(self) -> orion_core::model::spec::CpuLimit {
        match self {
            CpuMode::Capped => orion_core::model::spec::CpuLimit::Reserved,
            CpuMode::Uncapped => orion_core::model::spec::CpuLimit::None,
        }
    }

    /// Swarm's flag for the same CPU amount.
    pub fn swarm_flag(self) -> &'static str {
        match self {
            CpuMode::Capped => "--limit-cpu",
            CpuMode::Uncapped => "--reserve-cpu",
        }
    }

    fn describe(self) -> &'static str {
        match self {
            CpuMode::Capped => {
                "CPU capped: 10 millicores reserved and capped (orion cpu_limit: reserved, swarm --limit-cpu 0.01)"
            }
            CpuMode::Uncapped => {
                "CPU uncapped: 10 millicores reserved, no cap (orion cpu_limit: none, swarm --reserve-cpu 0.01)"
            }
        }
    }

    /// The modes to measure: `ORION_BENCH_CPU`, else both (uncapped only in quick mode).
    fn chosen(quick: bool) -> Vec<CpuMode> {
        match std::env::var("ORION_BENCH_CPU").as_deref() {
            Ok("capped") => vec![CpuMode::Capped],
            Ok("uncapped") => vec![CpuMode::Uncapped],
            Ok(other) => panic!("ORION_BENCH_CPU: got {other:?}, expected capped or uncapped"),
            Err(_) if quick => vec![CpuMode::Uncapped],
            Err(_) => vec![CpuMode::Uncapped, CpuMode::Capped],
        }
    }
}

/// How many replicas a run deploys, then scales to.
#[derive(Debug, Clone, Copy)]
pub struct Sizes {
    pub deploy: usize,
    pub scale_to: usize,
}

/// One side's three figures.
#[derive(Debug, Clone, Copy)]
pub struct Figures {
    /// From the request until `deploy` replicas run.
    pub deploy: Duration,
    /// From the scale request until `scale_to` replicas run.
    pub scale: Duration,
    /// From `docker kill` of one replica until its replacement runs.
    pub replace: Duration,
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

fn ratio(a: Duration, b: Duration) -> String {
    format!("{:.2}", a.as_secs_f64() / b.as_secs_f64().max(1e-9))
}

fn main() {
    let quick = std::env::args().any(|a| a == "--test")
        || std::env::var("ORION_BENCH_QUICK").is_ok_and(|v| v == "1");
    let with_swarm = !quick && !std::env::var("ORION_BENCH_SWARM").is_ok_and(|v| v == "0");
    let sizes = if quick {
        Sizes {
            deploy: 3,
            scale_to: 6,
        }
    } else {
        Sizes {
            deploy: 10,
            scale_to: 50,
        }
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(orion_runtime::testing::ensure_test_image())
        .expect("the test image loads into the engine");
    for mode in CpuMode::chosen(quick) {
        measure_and_print(&rt, quick, with_swarm, sizes, mode);
    }
}

/// Measures the three sides in `mode` and prints their table and Orion's traces.
fn measure_and_print(
    rt: &tokio::runtime::Runtime,
    quick: bool,
    with_swarm: bool,
    sizes: Sizes,
    mode: CpuMode,
) {
    let (orion, trace, replaced, floor, swarm) = rt.block_on(async {
        let floor = floor::measure(sizes, mode).await;
        let (orion, trace, replaced) = orion::measure(sizes, mode).await;
        let swarm = if with_swarm {
            swarm::measure(sizes, mode).await
        } else if quick {
            Err("skipped in quick mode".to_owned())
        } else {
            Err("skipped (ORION_BENCH_SWARM=0)".to_owned())
        };
        (orion, trace, replaced, floor, swarm)
    });
    println!(
        "\norion deploy bench, one node ({} mode, binary {}, agent.maxInFlight {}, {} containers started at once by the floor)\n{}",
        if quick { "quick" } else { "full" },
        support::ORION_BIN.display(),
        std::env::var(orion::MAX_IN_FLIGHT_ENV).unwrap_or_else(|_| "default".to_owned()),
        floor::PARALLEL,
        mode.describe()
    );
    let rows = [
        (
            format!("deploy {} replicas until all run", sizes.deploy),
            orion.deploy,
            floor.deploy,
            swarm.as_ref().ok().map(|s| s.deploy),
            "<= 0.5x swarm, <= 1.2x floor",
        ),
        (
            format!("scale {} -> {} until all run", sizes.deploy, sizes.scale_to),
            orion.scale,
            floor.scale,
            swarm.as_ref().ok().map(|s| s.scale),
            "<= 0.5x swarm, <= 1.2x floor",
        ),
        (
            "killed container until its replacement runs".to_owned(),
            orion.replace,
            floor.replace,
            swarm.as_ref().ok().map(|s| s.replace),
            "<= 0.2x swarm",
        ),
    ];
    println!(
        "{:<44} {:>9} {:>9} {:>9} {:>11} {:>11}  goal",
        "measurement", "orion", "floor", "swarm", "orion/floor", "orion/swarm"
    );
    println!("{}", "-".repeat(140));
    for (name, o, f, s, goal) in &rows {
        println!(
            "{:<44} {:>9} {:>9} {:>9} {:>11} {:>11}  {}",
            name,
            ms(*o),
            ms(*f),
            s.map_or_else(|| "-".to_owned(), ms),
            ratio(*o, *f),
            s.map_or_else(|| "-".to_owned(), |s| ratio(*o, s)),
            goal
        );
    }
    if let Err(reason) = &swarm {
        println!("swarm: unavailable ({reason})");
    }
    println!(
        "\ntimeline of Orion's deploy of {} replicas (ms after the API request; per task)",
        sizes.deploy
    );
    trace.print();
    println!(
        "\nOrion: one killed container until its replacement runs (ms after `docker kill` was run)"
    );
    replaced.print();
}
