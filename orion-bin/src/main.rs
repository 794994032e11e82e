//! `orion`: one binary per machine. `orion server` runs a node; every other command is a client
//! of a node's HTTP API.

use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;

mod api;
mod chaos;
mod chaos_cli;
mod cli;
mod client;
mod commands;
mod config;
mod dns_cli;
mod network_cli;
mod node;
mod output;

use cli::{Cli, Command, LogFormat, StartMode};
use client::Client;

/// mimalloc instead of the system allocator: the Raft commit path allocates and frees many small
/// objects across threads, where glibc's malloc costs about a fifth of the node's CPU
/// (docs/benchmarks.md, "Raft").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn init_tracing(level: &str, format: LogFormat) {
    let filter = EnvFilter::try_new(level).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

async fn dispatch(cli: Cli) -> anyhow::Result<()> {
    let client = Client::new(&cli.addr);
    let format = cli.output;
    match cli.command {
        Command::Server(args) => node::serve(args, node::Mode::Cluster).await,
        Command::Up(args) => node::serve(args, node::Mode::Single).await,
        Command::Start(start) => match (&start.file, start.mode) {
            (Some(file), _) => commands::apply(&client, file, true).await,
            (None, mode) => {
                let mut args = start.server;
                if args.raft_addr.is_none() {
                    args.raft_addr = start.bind;
                }
                let mode = match mode {
                    StartMode::Single => node::Mode::Single,
                    StartMode::Cluster => node::Mode::Cluster,
                };
                node::serve_with_cluster_id(args, mode, start.cluster_id).await
            }
        },
        Command::Deploy(args) => commands::deploy(&client, &args).await,
        Command::Run(args) => commands::run(&client, &args).await,
        Command::Apply(f) => commands::apply(&client, &f.file, true).await,
        Command::Validate(f) => commands::validate(&f.file),
        Command::Status { service } => commands::status(&client, service.as_deref(), format).await,
        Command::Ps { service, all } => {
            commands::ps(&client, service.as_deref(), all, format).await
        }
        Command::Get { id } => commands::get(&client, &id, format).await,
        Command::Nodes => commands::nodes(&client, format).await,
        Command::Network => network_cli::network(&client, format).await,
        Command::Logs {
            service,
            follow,
            tail,
        } => commands::logs(&client, &service, follow, tail).await,
        Command::Scale {
            service,
            replicas,
            detach,
        } => commands::scale(&client, &service, replicas, !detach).await,
        Command::Rm { service } => commands::rm(&client, &service).await,
        Command::Stop { id } => commands::stop(&client, &id).await,
        Command::Drain { node } => commands::drain(&client, &node).await,
        Command::Cluster { action: None } => commands::cluster(&client, format).await,
        Command::Cluster {
            action: Some(cli::ClusterAction::Remove { node }),
        } => commands::cluster_remove(&client, &node, format).await,
        Command::Chaos { action } => chaos_cli::chaos(&client, action, format).await,
        Command::Plan(f) => chaos_cli::plan(&client, &f.file, format).await,
        Command::Dns { action } => dns_cli::dns(&cli.addr, action, format).await,
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(&cli.log_level, cli.log_format);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(client::exit::FAILURE);
        }
    };
    match runtime.block_on(dispatch(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(commands::exit_code(&err))
        }
    }
}
