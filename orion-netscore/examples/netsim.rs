//! `netsim`: replays a network, from a file of measured RTTs, through Orion's network code.
//!
//! ```text
//! cargo run -p orion-netscore --example netsim --release -- vivaldi --rtt FILE [--seed S] [--rounds R] [--neighbors K] [--near K]
//! cargo run -p orion-netscore --example netsim --release -- placement --rtt FILE --graph FILE [--seed S]
//! cargo run -p orion-netscore --example netsim --release -- generate --kind grid|clustered|tiv [--nodes N] [--missing F] [--seed S]
//! ```
//!
//! `vivaldi` and `placement` print a human summary, then the result as one JSON object on the
//! last line of stdout. `generate` writes a synthetic RTT file to stdout. The RTT file format is described in
//! `orion_netscore::rtt_file`. To add a subcommand, add a variant to `Command`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand, ValueEnum};
use orion_netscore::placement_sim::{self, Graph};
use orion_netscore::rtt_file::{MAX_NODES, RttMatrix};
use orion_netscore::synthetic;
use orion_netscore::vivaldi::{self, SimulationParams, VivaldiConfig};

/// The largest RTT file read, in bytes (10,000 nodes of up to 10 characters each, with room).
const MAX_FILE_BYTES: u64 = 1 << 30;

#[derive(Debug, Parser)]
#[command(
    name = "netsim",
    about = "Replay a measured network through Orion's network code"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run Orion's Vivaldi on an RTT matrix; print median and p90 relative error.
    Vivaldi(VivaldiArgs),
    /// Place a service graph on the matrix's nodes with the network-aware and the resource-only
    /// pipelines; print the mean RTT of the graph's calls for each and their ratio.
    Placement(PlacementArgs),
    /// Write a synthetic RTT matrix to stdout.
    Generate(GenerateArgs),
}

#[derive(Debug, clap::Args)]
struct PlacementArgs {
    /// The RTT matrix: milliseconds, one row per line, whitespace-separated, <= 0 = unmeasured.
    #[arg(long)]
    rtt: PathBuf,
    /// The service graph: `{"services": [name | {name, replicas, cpu_millicores,
    /// memory_bytes}], "edges": [["caller", "callee"], ...]}`.
    #[arg(long)]
    graph: PathBuf,
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

#[derive(Debug, clap::Args)]
struct VivaldiArgs {
    /// The RTT matrix: milliseconds, one row per line, whitespace-separated, <= 0 = unmeasured.
    #[arg(long)]
    rtt: PathBuf,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Rounds, each one sample per node (1 to 100000).
    #[arg(long, default_value_t = vivaldi::DEFAULT_ROUNDS)]
    rounds: u32,
    /// Measured peers each node samples from (1 to 1024).
    #[arg(long, default_value_t = vivaldi::DEFAULT_NEIGHBORS)]
    neighbors: usize,
    /// How many of the neighbors are each node's nearest measured peers, the rest being random
    /// (0 to --neighbors; default: half of --neighbors).
    #[arg(long)]
    near: Option<usize>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Kind {
    /// Nodes on a square grid, 5 ms apart.
    Grid,
    /// Zones of 20 nodes, 1-6 ms within a zone, up to ~200 ms between zones.
    Clustered,
    /// Random points where a tenth of the pairs take a detour: triangle-inequality violations.
    Tiv,
}

#[derive(Debug, clap::Args)]
struct GenerateArgs {
    #[arg(long, value_enum)]
    kind: Kind,
    /// Nodes (grid: rounded down to a square), 2 to 10000.
    #[arg(long, default_value_t = 100)]
    nodes: usize,
    /// Fraction of pairs left unmeasured, 0 to 1.
    #[arg(long, default_value_t = 0.0)]
    missing: f64,
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            let unknown = matches!(
                error.kind(),
                clap::error::ErrorKind::InvalidSubcommand
                    | clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            );
            let _ = error.print();
            if unknown {
                eprintln!("accepted subcommands: {}", subcommand_names().join(", "));
            }
            return ExitCode::from(2);
        }
    };
    let outcome = match cli.command {
        Command::Vivaldi(args) => run_vivaldi(&args),
        Command::Placement(args) => run_placement(&args),
        Command::Generate(args) => run_generate(&args),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("netsim: {message}");
            ExitCode::FAILURE
        }
    }
}

/// The accepted subcommands, from the parser itself so a new one is listed without more code.
fn subcommand_names() -> Vec<String> {
    Cli::command()
        .get_subcommands()
        .map(|c| c.get_name().to_string())
        .filter(|name| name != "help")
        .collect()
}

fn run_vivaldi(args: &VivaldiArgs) -> Result<(), String> {
    let matrix = read_matrix(&args.rtt)?;
    let params = SimulationParams {
        seed: args.seed,
        rounds: args.rounds,
        neighbors: args.neighbors,
        near_neighbors: args.near.unwrap_or(args.neighbors / 2),
        config: VivaldiConfig::default(),
    };
    let report = vivaldi::simulate(&matrix, params).map_err(|e| e.to_string())?;
    let e = report.errors;
    println!(
        "vivaldi: {} nodes, {} rounds, {} neighbors, {} samples, {} pairs evaluated",
        report.nodes, report.rounds, report.neighbors, report.samples, e.pairs
    );
    println!(
        "relative error: median {:.4}, p90 {:.4}, mean {:.4}",
        e.median, e.p90, e.mean
    );
    let json = serde_json::json!({
        "command": "vivaldi",
        "nodes": report.nodes,
        "rounds": report.rounds,
        "neighbors": report.neighbors,
        "near": args.near.unwrap_or(args.neighbors / 2),
        "seed": args.seed,
        "pairs": e.pairs,
        "median_relative_error": e.median,
        "p90_relative_error": e.p90,
        "mean_relative_error": e.mean,
    });
    println!("{json}");
    Ok(())
}

fn run_placement(args: &PlacementArgs) -> Result<(), String> {
    let matrix = read_matrix(&args.rtt)?;
    let text = read_bounded(&args.graph)?;
    let graph = Graph::parse(&text).map_err(|e| format!("{}: {e}", args.graph.display()))?;
    let n = matrix.len();
    let rtt: Vec<Vec<Option<f64>>> = (0..n)
        .map(|i| {
            (0..n)
                .map(|j| if i == j { Some(0.0) } else { matrix.rtt(i, j) })
                .collect()
        })
        .collect();
    let report = placement_sim::simulate(&rtt, &graph, args.seed).map_err(|e| e.to_string())?;
    for (name, r) in [
        ("network-aware", &report.network_aware),
        ("resource-only", &report.resource_only),
    ] {
        println!(
            "{name}: mean call RTT {:.3} ms over {} calls ({} unmeasured), {} unplaced, {} nodes used",
            r.mean_rtt_ms, r.calls, r.unmeasured_calls, r.unplaced, r.nodes_used
        );
    }
    match report.ratio {
        Some(ratio) => println!("ratio (network-aware / resource-only): {ratio:.4}"),
        None => println!("ratio: undefined (the resource-only mean is 0 ms)"),
    }
    let mut json = serde_json::to_value(&report).map_err(|e| e.to_string())?;
    json["command"] = "placement".into();
    println!("{json}");
    Ok(())
}

fn run_generate(args: &GenerateArgs) -> Result<(), String> {
    if !(2..=MAX_NODES).contains(&args.nodes) {
        return Err(format!("--nodes {}: accepted 2 to {MAX_NODES}", args.nodes));
    }
    if !(0.0..=1.0).contains(&args.missing) {
        return Err(format!("--missing {}: accepted 0 to 1", args.missing));
    }
    let matrix = match args.kind {
        Kind::Grid => synthetic::grid((args.nodes as f64).sqrt() as usize, 5.0),
        Kind::Clustered => synthetic::clustered(args.nodes.div_ceil(20), 20, args.seed),
        Kind::Tiv => synthetic::with_triangle_violations(args.nodes, args.seed),
    }
    .and_then(|m| synthetic::with_missing(&m, args.missing, args.seed ^ 1))
    .map_err(|e| e.to_string())?;
    print!("{}", matrix.to_text());
    Ok(())
}

fn read_matrix(path: &Path) -> Result<RttMatrix, String> {
    let text = read_bounded(path)?;
    RttMatrix::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// The file's text, refusing files over [`MAX_FILE_BYTES`].
fn read_bounded(path: &Path) -> Result<String, String> {
    let size = std::fs::metadata(path)
        .map_err(|e| format!("{}: {e}", path.display()))?
        .len();
    if size > MAX_FILE_BYTES {
        return Err(format!(
            "{}: {size} bytes; at most {MAX_FILE_BYTES} bytes are read",
            path.display()
        ));
    }
    std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))
}
