//! `orion`: one binary per machine. `orion server` runs a node; every other command is a client
//! of a node's HTTP API.

use std::io::IsTerminal;
use std::process::ExitCode;

use tracing_subscriber::EnvFilter;

mod api;
mod chaos;
mod chaos_cli;
mod cli;
mod client;
mod commands;
mod config;
mod context_cli;
mod credentials;
mod describe_cli;
mod diff_cli;
mod dns_cli;
mod events;
mod metrics;
mod network_cli;
mod node;
#[cfg(feature = "otel")]
mod otel;
mod output;
mod progress;
mod prompt;
mod rollout_cli;
mod secret_cli;
mod selector;
mod shell_cli;
mod token_cli;
mod token_recover;
mod top;
mod verbs_cli;
mod write_cli;

use cli::{Cli, Command, LogFormat, StartMode};
use client::Client;

/// mimalloc instead of the system allocator: the Raft commit path allocates and frees many small
/// objects across threads, where glibc's malloc costs about a fifth of the node's CPU
/// (docs/benchmarks.md, "Raft").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Levels `--log-level` takes as a single word.
const LOG_LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];

/// The filter of `--log-level` (or `ORION_LOG`): a level, or a tracing filter with directives
/// (`info,orion_core=debug`). A single word that is not a level is refused rather than read as
/// a target name, so a typo does not silence the logs.
fn log_filter(level: &str) -> Result<EnvFilter, String> {
    let level = level.trim();
    let hint = "expected off, error, warn, info, debug, trace, or a tracing filter such as \
                info,orion_core=debug";
    if !level.contains(['=', ',']) && !LOG_LEVELS.contains(&level.to_lowercase().as_str()) {
        return Err(format!("--log-level {level:?}: {hint}"));
    }
    let filter =
        EnvFilter::try_new(level).map_err(|e| format!("--log-level {level:?}: {e}; {hint}"))?;
    // hickory-server logs every DNS query at info: one line per query would flood the log.
    if level.contains("hickory_server") {
        Ok(filter)
    } else {
        Ok(filter.add_directive(QUIET_DNS_QUERIES.parse().expect("a valid directive")))
    }
}

/// Added to every log filter that does not name `hickory_server` itself.
const QUIET_DNS_QUERIES: &str = "hickory_server=warn";

/// Logs to stderr as text or as one JSON object per line. Text has ANSI colours only when
/// stderr is a terminal; JSON never has them.
pub(crate) fn init_tracing(filter: EnvFilter, format: LogFormat) {
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().with_ansi(false).init(),
        LogFormat::Text => builder.with_ansi(std::io::stderr().is_terminal()).init(),
    }
}

/// Whether `command` talks to a node's API, so needs a token and the CA to trust (the node
/// commands, local checks and client-side helpers do not).
fn calls_the_api(command: &Command) -> bool {
    !matches!(
        command,
        Command::Server(_)
            | Command::Up(_)
            | Command::Validate(_)
            | Command::Dns { .. }
            | Command::Completions { .. }
            | Command::Man { .. }
            | Command::Context { .. }
            | Command::Token {
                action: token_cli::TokenAction::Recover { .. },
            }
    ) && !matches!(command, Command::Start(start) if start.file.is_none())
}

async fn dispatch(mut cli: Cli) -> anyhow::Result<()> {
    context_cli::apply_to(&mut cli)?;
    let (token, ca) = if calls_the_api(&cli.command) {
        (
            credentials::resolve_token(cli.token.as_deref(), cli.credentials.as_deref())?,
            credentials::resolve_ca(cli.ca.as_deref(), cli.credentials.as_deref())?,
        )
    } else {
        (None, None)
    };
    let client = Client::new(&cli.addr)
        .with_token(token)
        .with_ca(ca.as_deref(), &cli.addr)?
        .with_timeout(cli.timeout.unwrap_or(client::DEFAULT_REQUEST_TIMEOUT));
    output::check_format(&cli.command, cli.output)?;
    let format = output::table_or(cli.output);
    let watch = |detach| progress::Watch::new(cli.timeout, detach, format);
    match cli.command {
        Command::Server(args) => node::serve(args, node::Mode::Cluster).await,
        Command::Up(args) => node::serve(args, node::Mode::Single).await,
        Command::Start(start) => match (&start.file, start.mode) {
            (Some(file), _) => write_cli::apply(&client, file, &watch(false)).await,
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
        Command::Deploy(args) => write_cli::deploy(&client, &args, &watch(args.detach)).await,
        Command::Run(args) => write_cli::run(&client, &args, &watch(args.detach)).await,
        Command::Apply(a) if a.dry_run => {
            diff_cli::apply_dry_run(&client, &a.file.file, format).await
        }
        Command::Apply(a) => write_cli::apply(&client, &a.file.file, &watch(a.detach)).await,
        Command::Validate(f) => commands::validate(&f.file, format),
        Command::Status {
            selector: Some(sel),
            ..
        } => verbs_cli::services_selected(&client, &sel, format).await,
        Command::Status { service, .. } => {
            commands::status(&client, service.as_deref(), format).await
        }
        Command::Ps {
            service,
            all,
            selector: Some(sel),
        } => verbs_cli::ps_selected(&client, service.as_deref(), all, &sel, format).await,
        Command::Ps { service, all, .. } => {
            commands::ps(&client, service.as_deref(), all, format).await
        }
        Command::Get {
            selector: Some(sel),
            ..
        } => verbs_cli::services_selected(&client, &sel, format).await,
        Command::Get { id, .. } => {
            commands::get(&client, id.as_deref().unwrap_or(""), format).await
        }
        Command::Nodes => commands::nodes(&client, format).await,
        Command::Network => network_cli::network(&client, format).await,
        Command::Logs(args) => verbs_cli::logs(&client, &args).await,
        Command::Scale {
            service,
            replicas,
            detach,
        } => write_cli::scale(&client, &service, replicas, &watch(detach)).await,
        Command::Rm {
            service,
            file,
            selector,
        } => {
            verbs_cli::delete(
                &client,
                service.as_deref(),
                file.as_deref(),
                selector.as_ref(),
                format,
            )
            .await
        }
        Command::Stop { id, yes } => commands::stop(&client, &id, yes, format).await,
        Command::Drain { node } => commands::drain(&client, &node, format).await,
        Command::Undrain { node } => commands::undrain(&client, &node, format).await,
        Command::Cluster { action: None } => commands::cluster(&client, format).await,
        Command::Cluster {
            action: Some(cli::ClusterAction::Remove { node }),
        } => commands::cluster_remove(&client, &node, format).await,
        Command::Token { action } => token_cli::token(&client, action, format).await,
        Command::Chaos { action } => chaos_cli::chaos(&client, action, format).await,
        Command::Plan(f) => chaos_cli::plan(&client, &f.file, format).await,
        Command::Dns { action } => dns_cli::dns(&cli.addr, action, format, cli.timeout).await,
        Command::Rollout { action } => rollout_cli::rollout(&client, action, format).await,
        Command::Restart { service } => rollout_cli::restart(&client, &service, format).await,
        Command::Secret { action } => secret_cli::secret(&client, action, format).await,
        Command::Describe(args) => describe_cli::describe(&client, &args, format).await,
        Command::Events(args) => describe_cli::events(&client, &args, format).await,
        Command::Exec(args) => verbs_cli::exec(&client, &args, cli.timeout, format).await,
        Command::Completions { shell } => shell_cli::completions(shell),
        Command::Man { dir } => shell_cli::man(&dir),
        Command::Context { action } => context_cli::context(action),
        Command::Top(args) => top::top(&client, &cli.addr, &args).await,
    }
}

/// The command line, with [`Cli::addr_given`] set.
fn parse() -> Cli {
    use clap::{CommandFactory, FromArgMatches};
    let matches = Cli::command().get_matches();
    let mut cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    cli.addr_given = matches!(
        matches.value_source("addr"),
        Some(clap::parser::ValueSource::CommandLine | clap::parser::ValueSource::EnvVariable)
    );
    cli
}

fn main() -> ExitCode {
    let cli = parse();
    match log_filter(&cli.log_level) {
        #[cfg(not(feature = "otel"))]
        Ok(filter) => init_tracing(filter, cli.log_format),
        #[cfg(feature = "otel")]
        Ok(filter) => {
            if let Err(e) = otel::init(&cli, filter, cli.log_format) {
                eprintln!("error: {e}");
                return ExitCode::from(client::exit::USAGE);
            }
        }
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(client::exit::USAGE);
        }
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(client::exit::FAILURE);
        }
    };
    let outcome = runtime.block_on(dispatch(cli));
    #[cfg(feature = "otel")]
    otel::shutdown();
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(commands::exit_code(&err))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_queries_are_not_logged_one_line_each_unless_asked() {
        let quiet = log_filter("info").unwrap().to_string();
        assert!(quiet.contains(QUIET_DNS_QUERIES), "{quiet}");
        let asked = log_filter("info,hickory_server=info").unwrap().to_string();
        assert!(!asked.contains(QUIET_DNS_QUERIES), "{asked}");
        assert!(log_filter("inf").is_err(), "a typo is refused");
    }
}
