//! The command line: `orion <command>`. Server commands run a node; every other command is a
//! client of the HTTP API at `--addr` / `ORION_ADDR`.
//!
//! Aliases keep the muscle memory of similar tools working: `start` (a node, or a spec file when
//! given one), `run`, `stop`, `get`, `list` and `list-nodes`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Default API address of a local node.
pub const DEFAULT_API_ADDR: &str = "127.0.0.1:8000";
/// Default Raft address of a local node.
pub const DEFAULT_RAFT_ADDR: &str = "127.0.0.1:7000";
/// Default gossip address of a local node.
pub const DEFAULT_GOSSIP_ADDR: &str = "127.0.0.1:6000";

/// `--help` heading of the options every client command takes.
const CLIENT_OPTIONS: &str = "Client options";
/// `--help` heading of the logging and tracing options (nodes and clients).
const LOG_OPTIONS: &str = "Logging options";

#[derive(Debug, Parser)]
#[command(
    name = "orion",
    version,
    about = "Orion: a network-aware container orchestrator in one binary",
    propagate_version = true
)]
pub struct Cli {
    /// API of the node to talk to (client commands).
    #[arg(long, global = true, help_heading = CLIENT_OPTIONS, env = "ORION_ADDR", default_value = DEFAULT_API_ADDR)]
    pub addr: String,

    /// API token of client commands (prefer the ORION_TOKEN variable: a flag shows in `ps`).
    #[arg(long, global = true, help_heading = CLIENT_OPTIONS, env = "ORION_TOKEN", hide_env_values = true)]
    pub token: Option<String>,

    /// Credentials file holding the API token (default: ./orion-data/credentials, then
    /// ~/.config/orion/credentials); it must be mode 0600.
    #[arg(long, global = true, help_heading = CLIENT_OPTIONS, env = "ORION_CREDENTIALS")]
    pub credentials: Option<PathBuf>,

    /// The cluster CA certificate (PEM) to trust for the API's TLS (default: keys/ca.crt next
    /// to the credentials file, then ~/.config/orion/ca.crt); with one, an --addr without a
    /// scheme is reached over https.
    #[arg(long, global = true, help_heading = CLIENT_OPTIONS, env = "ORION_CA")]
    pub ca: Option<PathBuf>,

    /// Output format of client commands: table (cells cut to the terminal's width), wide (a
    /// table with every cell whole), json or yaml.
    #[arg(short = 'o', long, global = true, help_heading = CLIENT_OPTIONS, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,

    /// How long to wait (100ms to 24h): for each request (default 30s), or, for `apply`,
    /// `deploy`, `run` and `scale`, for the whole rollout (default 5m); `dns lookup`: for the
    /// answer (default 2s, at most 60s).
    #[arg(long, global = true, help_heading = CLIENT_OPTIONS, value_name = "DURATION", value_parser = crate::client::parse_timeout)]
    pub timeout: Option<std::time::Duration>,

    /// Log level (off, error, warn, info, debug, trace) or a tracing filter such as
    /// `info,orion_core=debug`; anything else is refused.
    #[arg(long, global = true, help_heading = LOG_OPTIONS, env = "ORION_LOG", default_value = "info")]
    pub log_level: String,

    /// Log format on stderr: text (coloured only on a terminal) or json (one object per line).
    #[arg(long, global = true, help_heading = LOG_OPTIONS, env = "ORION_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Cluster of client commands, from the client config file (`orion context`); default:
    /// its current context.
    #[arg(long, global = true, help_heading = CLIENT_OPTIONS, env = "ORION_CONTEXT")]
    pub context: Option<String>,

    /// Whether `--addr` or `ORION_ADDR` was given (set after parsing; a context's address
    /// applies only otherwise).
    #[arg(skip)]
    pub addr_given: bool,
    /// OTLP/HTTP endpoint a node exports its traces to, e.g. http://127.0.0.1:4318 (feature
    /// `otel`; spans go to <endpoint>/v1/traces). Unset: no traces.
    #[cfg(feature = "otel")]
    #[arg(long, global = true, help_heading = LOG_OPTIONS, env = "OTEL_EXPORTER_OTLP_ENDPOINT")]
    pub otel_endpoint: Option<String>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Table,
    /// A table whose cells are never cut.
    Wide,
    Json,
    Yaml,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RuntimeKind {
    Docker,
    Containerd,
    Process,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StartMode {
    /// A single-node cluster with embedded defaults (same as `orion up`).
    Single,
    /// A node of a multi-node cluster (`--bootstrap` or `--join`).
    Cluster,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a node: agent on every node, controllers on the Raft leader.
    Server(ServerArgs),
    /// Run a node (`--mode=single` for a one-node cluster), or apply a spec file: `start FILE`.
    Start(StartArgs),
    /// Start a single-node cluster with embedded defaults (data in ./orion-data).
    Up(ServerArgs),

    /// Deploy an image as a service (created, or replaced), then follow its rollout.
    Deploy(DeployArgs),
    /// Run an image as a service named after it (`run --image nginx --replicas 3`).
    Run(RunArgs),
    /// Create or update the services in a spec file (YAML or JSON); `--dry-run` shows the diff.
    Apply(ApplyArgs),
    /// Check a spec file without sending it anywhere.
    Validate(FileArg),
    /// Services and their replicas, or one service in detail.
    Status {
        /// The service to show in detail; without it, every service.
        service: Option<String>,
        /// Only services whose labels match (`key=value,key!=value,key,!key`).
        #[arg(short = 'l', long = "selector", value_name = "SELECTOR", conflicts_with = "service", value_parser = crate::selector::parse_arg)]
        selector: Option<crate::selector::Selector>,
    },
    /// Tasks (alias: `list`).
    #[command(alias = "list")]
    Ps {
        /// Only this service's tasks.
        #[arg(long)]
        service: Option<String>,
        /// Include stopped, failed and lost tasks.
        #[arg(short, long)]
        all: bool,
        /// Only tasks of services whose labels match (`key=value,key!=value,key,!key`).
        #[arg(short = 'l', long = "selector", value_name = "SELECTOR", value_parser = crate::selector::parse_arg)]
        selector: Option<crate::selector::Selector>,
    },
    /// One task (or service) in detail, or the services matching `-l`.
    Get {
        /// A task id, or a service name.
        #[arg(required_unless_present = "selector")]
        id: Option<String>,
        /// The services whose labels match (`key=value,key!=value,key,!key`).
        #[arg(short = 'l', long = "selector", value_name = "SELECTOR", conflicts_with = "id", value_parser = crate::selector::parse_arg)]
        selector: Option<crate::selector::Selector>,
    },
    /// Nodes (alias: `list-nodes`).
    #[command(alias = "list-nodes")]
    Nodes,
    /// Latency, loss and bandwidth between the nodes, measured and estimated (heat map in a
    /// terminal, `-o json` for scripts).
    Network,
    /// A service's logs, from every node that runs it.
    Logs(crate::verbs_cli::LogsArgs),
    /// Set a service's replica count.
    Scale {
        /// The service to scale.
        service: String,
        /// The replica count wanted (within `scale_policy`'s bounds when it has one).
        replicas: u32,
        /// Return once the change is accepted instead of waiting for the rollout.
        #[arg(long)]
        detach: bool,
    },
    /// Remove a service and stop its tasks; or the services of a file (`-f`) or selector (`-l`).
    #[command(alias = "delete")]
    Rm {
        /// The service to remove.
        #[arg(required_unless_present_any = ["file", "selector"], conflicts_with_all = ["file", "selector"])]
        service: Option<String>,
        /// Remove the services a spec or Compose file defines (`-` for standard input).
        #[arg(short = 'f', long = "file", conflicts_with = "selector")]
        file: Option<PathBuf>,
        /// Remove every service whose labels match (`key=value,key!=value,key,!key`).
        #[arg(short = 'l', long = "selector", value_name = "SELECTOR", value_parser = crate::selector::parse_arg)]
        selector: Option<crate::selector::Selector>,
    },
    /// Stop a task (it is replaced if its service still wants it) or remove a service (asks
    /// first on a terminal; `--yes` to skip the question, needed off a terminal).
    Stop {
        /// A task id, or a service name.
        id: String,
        /// Remove a service without asking.
        #[arg(short = 'y', long)]
        yes: bool,
    },
    /// Move every task off a node and stop scheduling onto it (undo with `undrain`).
    Drain {
        /// The node's id.
        node: String,
    },
    /// Make a drained node schedulable again; rebalancing then moves replicas back to it
    /// gradually (`scheduler.rebalance` in orion.yaml).
    #[command(alias = "uncordon")]
    Undrain {
        /// The node's id.
        node: String,
    },
    /// Leader, members and Raft state; `cluster remove NODE` removes a member from Raft.
    Cluster {
        #[command(subcommand)]
        action: Option<ClusterAction>,
    },
    /// API tokens: create, list, revoke (admin role).
    Token {
        #[command(subcommand)]
        action: crate::token_cli::TokenAction,
    },
    /// Inject faults into the cluster's node-to-node links; they end by themselves.
    Chaos {
        #[command(subcommand)]
        action: crate::chaos_cli::ChaosAction,
    },
    /// Dry run: how the scheduler would place a spec file's service, node by node.
    Plan(FileArg),
    /// Secrets: create (value from stdin or a file), list names, remove.
    Secret {
        #[command(subcommand)]
        action: crate::secret_cli::SecretAction,
    },
    /// Service discovery: ask the node's DNS server.
    Dns {
        #[command(subcommand)]
        action: DnsAction,
    },
    /// A service's rollout: status, history, undo, pause, resume, promote (a canary).
    Rollout {
        #[command(subcommand)]
        action: crate::rollout_cli::RolloutAction,
    },
    /// Replace every replica of a service under its update strategy, without a spec change.
    Restart {
        /// The service whose replicas are replaced.
        service: String,
    },
    /// A service, task or node in detail, with its recent events.
    Describe(crate::describe_cli::DescribeArgs),
    /// Cluster events: task states, placements, failures, moves, nodes, rollouts (`-w` to watch).
    Events(crate::describe_cli::EventsArgs),
    /// Run a command in a running task's container: `exec TASK -- CMD ARGS...`; exits with its
    /// exit code.
    Exec(crate::verbs_cli::ExecArgs),
    /// Print the shell completion script for SHELL (`source <(orion completions bash)`).
    Completions {
        /// The shell: bash, zsh or fish.
        #[arg(value_enum)]
        shell: crate::shell_cli::CompletionShell,
    },
    /// Clusters of the client config file: list, use, set, delete.
    Context {
        #[command(subcommand)]
        action: crate::context_cli::ContextAction,
    },
    /// Write man pages (`orion.1` and one per subcommand) into a directory.
    Man {
        /// An existing directory to write the pages into.
        #[arg(long)]
        dir: PathBuf,
    },
    /// A live terminal dashboard: nodes, services, tasks, events and the network (`?` for keys).
    Top(crate::top::TopArgs),
}

/// `orion dns ...`.
#[derive(Debug, Subcommand)]
pub enum DnsAction {
    /// Query the node's own DNS server (UDP, then TCP if truncated) and print the answer.
    /// A NAME without a dot is taken in the zone: `web` asks `web.orion.`.
    Lookup {
        /// The name to look up: `web`, `web.orion.` or a name to forward.
        name: String,
        /// Record type.
        #[arg(long = "type", value_enum, default_value_t = DnsType::A)]
        qtype: DnsType,
        /// The DNS server; default: the `--addr` node's IP, port 5353.
        #[arg(long, value_name = "IP:PORT")]
        server: Option<String>,
        /// The zone a NAME without a dot is completed with.
        #[arg(long, default_value = "orion.")]
        zone: String,
    },
}

/// Record types `orion dns lookup` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DnsType {
    A,
    Aaaa,
    Srv,
    Soa,
    Ns,
}

/// `orion cluster ...`.
#[derive(Debug, Subcommand)]
pub enum ClusterAction {
    /// Remove a node from the Raft voters and learners (a dead node the autopilot keeps, or one
    /// being retired). Refused for the current leader and for the last voter. A removed node
    /// that starts again joins as a new learner.
    Remove {
        /// The node's id (`orion cluster` lists the members).
        node: String,
    },
}

#[derive(Debug, Clone, Args)]
pub struct ServerArgs {
    /// This node's id (a DNS label); defaults to the host name.
    #[arg(long, env = "ORION_NODE_ID")]
    pub node_id: Option<String>,
    /// Where state is kept.
    #[arg(long, env = "ORION_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// HTTP API address.
    #[arg(long)]
    pub api_addr: Option<String>,
    /// Raft RPC address.
    #[arg(long)]
    pub raft_addr: Option<String>,
    /// Gossip (UDP) address.
    #[arg(long)]
    pub gossip_addr: Option<String>,
    /// Start a new cluster with this node as its first member.
    #[arg(long, conflicts_with = "join")]
    pub bootstrap: bool,
    /// Join the cluster through a member's Raft address (HOST:PORT). The first time, this
    /// node is admitted there with --join-token; later starts use its stored certificate.
    #[arg(long)]
    pub join: Option<String>,
    /// The voter or worker join token (printed at bootstrap, or by `orion token rotate`);
    /// used only the first time a node joins (later starts use its stored certificate). Prefer
    /// ORION_JOIN_TOKEN: a flag shows in `ps`.
    #[arg(long, env = "ORION_JOIN_TOKEN", hide_env_values = true)]
    pub join_token: Option<String>,
    /// Serve the API in plain HTTP on its loopback address instead of TLS (`api.plainLoopback`);
    /// refused when --api-addr is not loopback.
    #[arg(long, env = "ORION_API_PLAIN_LOOPBACK")]
    pub api_plain_loopback: bool,
    /// Container backend.
    #[arg(long, value_enum)]
    pub runtime: Option<RuntimeKind>,
    /// Cluster, network and runtime settings (orion.yaml).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Node labels, `key=value` (repeatable); `zone=` names the zone.
    #[arg(long = "label", value_name = "KEY=VALUE")]
    pub labels: Vec<String>,
    /// DNS server address, UDP and TCP (overrides `dns.listen`; default: the API's IP, port 5353).
    #[arg(long, value_name = "IP:PORT")]
    pub dns_addr: Option<String>,
    /// DNS zone served (overrides `dns.zone`; default `orion.`).
    #[arg(long, value_name = "ZONE")]
    pub dns_zone: Option<String>,
    /// The resolver containers get (overrides `dns.containers`): `auto` (the Docker bridge
    /// gateway, port 53), `off`, or an IP of this host.
    #[arg(long, value_name = "auto|off|IP")]
    pub dns_containers: Option<String>,
    /// Forward names outside the zone to this upstream, `IP` or `IP:PORT` (repeatable, at most
    /// 4; replaces `dns.forward`). Without it, such names are refused.
    #[arg(long = "dns-forward", value_name = "IP[:PORT]")]
    pub dns_forward: Vec<String>,
    /// Serve no DNS on this node (overrides `dns.enabled`).
    #[arg(long, conflicts_with_all = ["dns_addr", "dns_zone", "dns_containers", "dns_forward"])]
    pub no_dns: bool,
}

#[derive(Debug, Clone, Args)]
pub struct StartArgs {
    /// A spec file to apply (seed-style `start FILE`); without it, a node is started.
    pub file: Option<PathBuf>,
    /// `single` starts a one-node cluster like `up`; `cluster` a node like `server`.
    #[arg(long, value_enum, default_value_t = StartMode::Cluster)]
    pub mode: StartMode,
    /// Cluster id (recorded in the data dir; a node refuses another cluster's data).
    #[arg(long)]
    pub cluster_id: Option<String>,
    /// Shorthand for `--raft-addr` (`--bind` in similar tools).
    #[arg(long)]
    pub bind: Option<String>,
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Debug, Clone, Args)]
#[command(group(clap::ArgGroup::new("the_image").required(true).args(["image_flag", "image"])))]
pub struct DeployArgs {
    /// The image (also as the first positional argument).
    #[arg(long = "image", value_name = "IMAGE")]
    pub image_flag: Option<String>,
    /// The image: `orion deploy IMAGE [-- COMMAND ARGS...]`.
    #[arg(value_name = "IMAGE", conflicts_with = "image_flag")]
    pub image: Option<String>,
    /// Service name; defaults to the image's name.
    #[arg(long)]
    pub name: Option<String>,
    /// How many replicas to run.
    #[arg(long, default_value_t = 1)]
    pub replicas: u32,
    /// `CONTAINER`, `HOST:CONTAINER` or `HOST:CONTAINER/udp` (repeatable; HOST 0 = dynamic).
    #[arg(long = "port")]
    pub ports: Vec<String>,
    /// `KEY=value` (repeatable).
    #[arg(long = "env")]
    pub env: Vec<String>,
    /// CPU reserved: millicores (`500`, `500m`) or cores (`0.5`, `0.5cpu`, `2cores`).
    #[arg(long)]
    pub cpu: Option<String>,
    /// CPU cap: `reserved` (the default: capped at --cpu), `none`, or an amount as for --cpu.
    #[arg(long)]
    pub cpu_limit: Option<String>,
    /// Memory: bytes, or with a unit (`64Mi`, `1Gi`, `500M`).
    #[arg(long)]
    pub memory: Option<String>,
    /// Prefer this zone (`--network-affinity` in similar tools).
    #[arg(long)]
    pub network_affinity: Option<String>,
    /// Return once the service is accepted instead of waiting for the rollout.
    #[arg(long)]
    pub detach: bool,
    /// The command instead of the image's, as one string split like a shell would (no shell
    /// runs it): `--command "httpd -f -p 8080"`.
    #[arg(long, conflicts_with = "args")]
    pub command: Option<String>,
    /// The command instead of the image's: everything after `--`.
    #[arg(last = true, value_name = "COMMAND")]
    pub args: Vec<String>,
}

#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// The image to run; the service is named after it unless `--name` is given.
    #[arg(short, long)]
    pub image: String,
    /// How many replicas to run.
    #[arg(short, long, default_value_t = 1)]
    pub replicas: u32,
    /// Service name; defaults to the image's name.
    #[arg(long)]
    pub name: Option<String>,
    /// Return once the service is accepted instead of waiting for the rollout.
    #[arg(long)]
    pub detach: bool,
}

/// `apply -f FILE [--detach | --dry-run]`.
#[derive(Debug, Clone, Args)]
pub struct ApplyArgs {
    #[command(flatten)]
    pub file: FileArg,
    /// Return once every service is accepted instead of waiting for the rollouts.
    #[arg(long, conflicts_with = "dry_run")]
    pub detach: bool,
    /// Show what would change against what is stored (added, changed and removed services and
    /// fields); write nothing.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Clone, Args)]
pub struct FileArg {
    /// The spec file (`-` for standard input).
    #[arg(short = 'f', long = "file")]
    pub file: PathBuf,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    /// `--help` explains every flag and positional of every command (clap's own `--help`,
    /// `--version` and `help` subcommand aside).
    #[test]
    fn every_argument_of_every_command_has_help_text() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for arg in cmd.get_arguments() {
                let id = arg.get_id().as_str();
                let undocumented = arg.get_help().is_none() && arg.get_long_help().is_none();
                if undocumented && !arg.is_hide_set() && !matches!(id, "help" | "version") {
                    missing.push(format!("{path} {id}"));
                }
            }
            for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
                walk(sub, &format!("{path} {}", sub.get_name()), missing);
            }
        }
        let mut cmd = Cli::command();
        cmd.build();
        let mut missing = Vec::new();
        walk(&cmd, "orion", &mut missing);
        assert!(
            missing.is_empty(),
            "arguments without help text: {missing:?}"
        );
    }

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn seed_aliases_parse() {
        for argv in [
            &["orion", "list"][..],
            &["orion", "list-nodes"],
            &["orion", "start", "specs.json"],
            &["orion", "start", "--mode", "single"],
            &["orion", "run", "--image", "nginx", "--replicas", "3"],
            &["orion", "stop", "web-0-abc"],
            &["orion", "get", "web-0-abc"],
            &[
                "orion",
                "deploy",
                "--image=nginx:latest",
                "--name=web",
                "--replicas=3",
                "--port=80",
            ],
        ] {
            Cli::try_parse_from(argv).unwrap_or_else(|e| panic!("{argv:?}: {e}"));
        }
    }

    #[test]
    fn cluster_alone_shows_status_and_cluster_remove_takes_a_node() {
        let cli = Cli::try_parse_from(["orion", "cluster"]).unwrap();
        assert!(matches!(cli.command, Command::Cluster { action: None }));
        let cli = Cli::try_parse_from(["orion", "cluster", "remove", "n2"]).unwrap();
        assert!(matches!(
            cli.command,
            Command::Cluster { action: Some(ClusterAction::Remove { node }) } if node == "n2"
        ));
        assert!(Cli::try_parse_from(["orion", "cluster", "remove"]).is_err());
    }

    #[test]
    fn token_commands_take_a_role_and_an_id() {
        let cli = Cli::try_parse_from([
            "orion",
            "token",
            "create",
            "--name",
            "ci",
            "--role",
            "read-only",
            "--scope",
            "web",
        ])
        .unwrap();
        assert!(matches!(cli.command, Command::Token { .. }));
        assert!(
            Cli::try_parse_from(["orion", "token", "create", "--name", "ci", "--role", "root"])
                .is_err()
        );
        assert!(Cli::try_parse_from(["orion", "token", "revoke"]).is_err());
        assert!(Cli::try_parse_from(["orion", "token", "list"]).is_ok());
        assert!(Cli::try_parse_from(["orion", "token", "recover", "--data-dir", "d"]).is_ok());
        assert!(Cli::try_parse_from(["orion", "token", "recover"]).is_err());
    }

    #[test]
    fn verbs_parse_and_bad_selectors_are_usage_errors() {
        let cli =
            Cli::try_parse_from(["orion", "exec", "web-0", "--", "sh", "-c", "exit 3"]).unwrap();
        assert!(matches!(cli.command, Command::Exec(a) if a.command == ["sh", "-c", "exit 3"]));
        assert!(Cli::try_parse_from(["orion", "exec", "web-0"]).is_err());
        for argv in [
            &["orion", "delete", "-f", "app.yaml"][..],
            &["orion", "delete", "-l", "tier=web"],
            &["orion", "delete", "web"],
            &["orion", "ps", "-l", "tier=web,!canary"],
            &["orion", "get", "-l", "team"],
            &["orion", "status", "-l", "env!=prod"],
            &["orion", "describe", "node", "n1"],
            &["orion", "events", "-w", "--since", "12"],
            &["orion", "apply", "-f", "app.yaml", "--dry-run"],
            &[
                "orion",
                "logs",
                "web",
                "--since",
                "10m",
                "--timestamps",
                "--tail",
                "5",
            ],
            &["orion", "logs", "web", "--previous"],
        ] {
            Cli::try_parse_from(argv).unwrap_or_else(|e| panic!("{argv:?}: {e}"));
        }
        let e = Cli::try_parse_from(["orion", "ps", "-l", "env in (a)"]).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().contains("not supported"), "{e}");
        assert!(Cli::try_parse_from(["orion", "delete", "web", "-f", "x.yaml"]).is_err());
        assert!(Cli::try_parse_from(["orion", "delete"]).is_err());
        assert!(Cli::try_parse_from(["orion", "describe", "pod", "x"]).is_err());
        assert!(Cli::try_parse_from(["orion", "logs", "web", "-f", "--previous"]).is_err());
    }

    #[test]
    fn bootstrap_and_join_conflict() {
        let err = Cli::try_parse_from(["orion", "server", "--bootstrap", "--join", "x:1"]);
        assert!(err.is_err());
    }
}
