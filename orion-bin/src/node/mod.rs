//! Running a node: the store, membership and runtime it is made of, wired to the library's
//! [`orion_core::node::Node`] (the agent every node runs and the controllers the leader runs),
//! and the API it serves.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use orion_core::membership::{Member, MemberState, Membership};
use orion_core::model::{NodeAddresses, Resources, ZONE_LABEL};
use orion_core::node::{Leadership, Node};
use orion_core::runtime::Runtime;
use orion_core::scheduler::Scheduler;
use orion_core::store::ClusterStore;
use tokio::sync::watch;
use tracing::info;

pub use crate::api::SharedStore;
use crate::api::{self, ApiState, ClusterInfo};
use crate::cli::{
    DEFAULT_API_ADDR, DEFAULT_GOSSIP_ADDR, DEFAULT_RAFT_ADDR, RuntimeKind, ServerArgs,
};
use crate::config::{Config, ContainerDns};
use crate::metrics::{self, Metrics, TimedStore};

mod cluster;
mod container_dns;
mod network_probe;
pub(crate) mod security;
mod single;

/// Revisions of history a node keeps for watches to resume from (older ones are compacted).
pub const WATCH_HISTORY: u64 = 10_000;

/// Single-node (`orion up`) or member of a cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Single,
    Cluster,
}

/// Everything a node is started with, after flags, config file and defaults are combined.
#[derive(Debug, Clone)]
pub struct Settings {
    pub node_id: String,
    pub cluster_id: String,
    pub data_dir: PathBuf,
    pub api_addr: SocketAddr,
    pub raft_addr: SocketAddr,
    pub gossip_addr: SocketAddr,
    pub bootstrap: bool,
    pub join: Option<String>,
    /// The join token, needed the first time this node joins (`--join-token`).
    pub join_token: Option<String>,
    pub runtime: RuntimeKind,
    pub labels: BTreeMap<String, String>,
    pub capacity: Resources,
    pub config: Config,
    /// The DNS server's address and what it serves; `None` when turned off.
    pub dns: Option<(SocketAddr, orion_dns::DnsConfig)>,
    /// Where containers are given the DNS server (`dns.containers`).
    pub container_dns: ContainerDns,
}

fn parse_addr(flag: &str, value: Option<String>, default: &str) -> Result<SocketAddr> {
    let text = value.unwrap_or_else(|| default.to_owned());
    text.parse()
        .with_context(|| format!("--{flag} {text:?}: expected IP:PORT, e.g. {default}"))
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_lowercase())
        .ok()
        .filter(|s| orion_core::model::spec::validate::is_dns_label(s))
        .unwrap_or_else(|| "node1".to_owned())
}

/// The machine's CPU (millicores) and memory (bytes).
fn machine_capacity() -> Resources {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get() as u64);
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(1 << 30, |kb| kb * 1024);
    Resources::new(cpus * 1000, memory)
}

impl Settings {
    /// Combines flags, the config file and defaults; every bad value is named.
    pub fn resolve(args: ServerArgs, mode: Mode, cluster_id: Option<String>) -> Result<Settings> {
        let mut config = match &args.config {
            Some(path) => Config::load(path)?,
            None => Config::default(),
        };
        if args.api_plain_loopback {
            config.api.plain_loopback = true;
        }
        let node_id = args.node_id.unwrap_or_else(host_name);
        if !orion_core::model::spec::validate::is_dns_label(&node_id) {
            bail!("--node-id {node_id:?}: expected a DNS label (a-z, 0-9 and '-', at most 63)");
        }
        let mut labels = BTreeMap::new();
        for l in &args.labels {
            let Some((k, v)) = l.split_once('=') else {
                bail!("--label {l:?}: expected KEY=VALUE, e.g. zone=eu-1");
            };
            labels.insert(k.to_owned(), v.to_owned());
        }
        let runtime = match args.runtime {
            Some(r) => r,
            None => config.runtime_kind()?,
        };
        let data_dir = args.data_dir.unwrap_or_else(|| match mode {
            Mode::Single => PathBuf::from("orion-data"),
            Mode::Cluster => PathBuf::from("orion-data").join(&node_id),
        });
        let api_addr = parse_addr("api-addr", args.api_addr, DEFAULT_API_ADDR)?;
        let mut container_dns = ContainerDns::Off;
        let dns = if args.no_dns || !config.dns.enabled {
            None
        } else {
            let mut section = config.dns.clone();
            if let Some(zone) = args.dns_zone {
                section.zone = zone;
            }
            if let Some(c) = &args.dns_containers {
                section.containers = c.clone();
            }
            if !args.dns_forward.is_empty() {
                section.forward = args.dns_forward.clone();
            }
            container_dns = section.container_dns().context("--dns-containers")?;
            let addr = match args.dns_addr {
                Some(a) => a.parse().with_context(|| {
                    format!("--dns-addr {a:?}: expected IP:PORT, e.g. 127.0.0.1:5353")
                })?,
                None => section.listen_addr(api_addr.ip())?,
            };
            let server = section
                .server_config(&node_id)
                .context("--dns-zone / --dns-forward / dns section of the config")?;
            Some((addr, server))
        };
        Ok(Settings {
            cluster_id: cluster_id.unwrap_or_else(|| config.cluster.id.clone()),
            node_id,
            data_dir,
            api_addr,
            raft_addr: parse_addr("raft-addr", args.raft_addr, DEFAULT_RAFT_ADDR)?,
            gossip_addr: parse_addr("gossip-addr", args.gossip_addr, DEFAULT_GOSSIP_ADDR)?,
            bootstrap: args.bootstrap || mode == Mode::Single,
            join: args.join,
            join_token: args.join_token,
            runtime,
            labels,
            capacity: machine_capacity(),
            config,
            dns,
            container_dns,
        })
    }

    /// This node as a membership entry.
    pub fn local_member(&self) -> Member {
        Member {
            id: self.node_id.clone(),
            addresses: NodeAddresses {
                api: self.api_addr.to_string(),
                raft: self.raft_addr.to_string(),
                gossip: self.gossip_addr.to_string(),
            },
            labels: self.labels.clone(),
            capacity: self.capacity,
            state: MemberState::Alive,
            incarnation: 0,
        }
    }

    /// The host address published ports bind to: the API's IP (loopback in a local cluster).
    pub fn publish_ip(&self) -> String {
        let ip = self.api_addr.ip();
        if ip.is_unspecified() {
            "0.0.0.0".into()
        } else {
            ip.to_string()
        }
    }

    fn zone(&self) -> Option<&str> {
        self.labels.get(ZONE_LABEL).map(String::as_str)
    }
}

/// Connects the configured container backend, with a message that says what to do when it is
/// not there. containerd's socket comes from `runtime.containerdSocket` (detected when empty); a
/// configured path that is missing or does not answer is an error naming the path and the
/// setting. The process runtime keeps its state in `<data dir>/processes` and enforces CPU and
/// memory limits through cgroup v2 when the host offers it (logged at start either way).
pub async fn build_runtime(settings: &Settings) -> Result<Arc<dyn Runtime>> {
    match settings.runtime {
        RuntimeKind::Docker => match orion_runtime::DockerRuntime::connect().await {
            Ok(r) => Ok(Arc::new(r)),
            Err(e) => bail!(
                "cannot reach the Docker engine: {e}\n\
                 start Docker, or run host programs instead of containers: --runtime process"
            ),
        },
        RuntimeKind::Containerd => {
            use orion_runtime::containerd::{
                ContainerdConfig, ContainerdRuntime, SOCKET_CANDIDATES,
            };
            let socket = settings.config.runtime.containerd_socket_path();
            if let Some(path) = &socket
                && !path.exists()
            {
                bail!(
                    "runtime.containerdSocket: {} does not exist; set it to containerd's socket \
                     (usually {}), or leave it empty to detect it",
                    path.display(),
                    SOCKET_CANDIDATES.join(" or ")
                );
            }
            let config = ContainerdConfig {
                socket: socket.clone(),
                ..ContainerdConfig::default()
            };
            let r = ContainerdRuntime::connect(config)
                .await
                .with_context(|| match &socket {
                    Some(path) => format!(
                        "cannot reach containerd at {} (runtime.containerdSocket)",
                        path.display()
                    ),
                    None => "cannot reach containerd at a detected socket \
                             (set runtime.containerdSocket in orion.yaml)"
                        .to_owned(),
                })?;
            info!(socket = %r.socket().display(), "containerd runtime connected");
            Ok(Arc::new(r))
        }
        RuntimeKind::Process => {
            let dir = settings.data_dir.join("processes");
            let r = orion_runtime::ProcessRuntime::new(&dir)
                .with_context(|| format!("cannot use {} for process state", dir.display()))?;
            match r.limit_support() {
                orion_runtime::process::LimitSupport::Enforced { parent } => info!(
                    cgroup = %parent.display(),
                    "process runtime: CPU and memory limits enforced through cgroup v2"
                ),
                orion_runtime::process::LimitSupport::NotEnforced { reason } => tracing::warn!(
                    %reason,
                    "process runtime: CPU and memory limits are NOT enforced on this host \
                     (each task with limits is warned about once)"
                ),
            }
            Ok(Arc::new(r))
        }
    }
}

/// What a running node is made of, whatever the mode.
pub struct Parts {
    pub store: SharedStore,
    /// The same store read locally, as applied so far (no quorum round trip): for the checks
    /// every API request makes (tokens).
    pub local_store: SharedStore,
    pub membership: Arc<dyn Membership>,
    /// Whether (and in which term) this node should run the controllers.
    pub leader: watch::Receiver<Leadership>,
    /// The Raft leader's id as this node sees it (`None` on a single node: no Raft).
    pub raft_leader: Option<watch::Receiver<Option<u64>>>,
    /// The cluster CA's digest, for the join tokens (`None` on a single node: nobody joins).
    pub ca_digest: Option<orion_consensus::security::CaDigest>,
    /// This node's certificate (kept current by its renewal), for the API's TLS.
    pub tls: orion_consensus::security::NodeTls,
    pub cluster: Arc<dyn ClusterInfo>,
}

/// Runs a node until interrupted.
pub async fn serve(args: ServerArgs, mode: Mode) -> Result<()> {
    serve_with_cluster_id(args, mode, None).await
}

/// Runs a node, recording `cluster_id` in a new data dir.
pub async fn serve_with_cluster_id(
    args: ServerArgs,
    mode: Mode,
    cluster_id: Option<String>,
) -> Result<()> {
    let signals = ShutdownSignals::install()?;
    let settings = Settings::resolve(args, mode, cluster_id)?;
    std::fs::create_dir_all(&settings.data_dir)
        .with_context(|| format!("cannot create data dir {}", settings.data_dir.display()))?;
    let runtime = build_runtime(&settings).await?;
    let parts = match mode {
        Mode::Single => single::start(&settings).await?,
        Mode::Cluster => cluster::start(&settings).await?,
    };
    run(settings, runtime, parts, signals).await
}

/// Serves the API, runs the agent, and runs the controllers while leader, until SIGINT/SIGTERM.
async fn run(
    settings: Settings,
    runtime: Arc<dyn Runtime>,
    parts: Parts,
    signals: ShutdownSignals,
) -> Result<()> {
    let metrics = Arc::new(Metrics::new());
    let timed: SharedStore = Arc::new(TimedStore::new(parts.store.clone(), metrics.clone()));
    let store = ClusterStore::new(timed)
        .with_spec_history(settings.config.cluster.spec_history_per_service)
        .context("cluster.specHistoryPerService")?;
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    if settings.bootstrap {
        tokio::spawn(security::bootstrap_credentials(
            store.inner().clone(),
            settings.data_dir.clone(),
            parts.ca_digest.clone(),
        ));
    }
    // `orion token recover`: requests left in the data dir (see crate::token_recover).
    tokio::spawn(crate::token_recover::serve_requests(
        store.inner().clone(),
        settings.data_dir.clone(),
    ));
    tokio::spawn(metrics::watch_cluster_events(
        metrics.clone(),
        parts.raft_leader.clone(),
        parts.membership.clone(),
        shutdown_rx.clone(),
    ));
    tokio::spawn(metrics::sample_containers(
        metrics.clone(),
        store.clone(),
        runtime.clone(),
        settings.node_id.clone(),
        shutdown_rx.clone(),
    ));

    let api_tls = api_tls(&settings, &parts.tls)?;
    let listener = tokio::net::TcpListener::bind(settings.api_addr)
        .await
        .with_context(|| format!("cannot listen on --api-addr {}", settings.api_addr))?;
    let api_settings = api::ApiSettings::from_config(&settings.config);
    // Secrets are sealed with a key derived from the cluster key, the one the node-to-node
    // layer (orion_consensus::security) will deliver to joining nodes.
    let cluster_key = orion_consensus::security::ClusterKey::load_or_create(&settings.data_dir)
        .context("the cluster key")?;
    let sealer = Arc::new(orion_core::secrets::SecretSealer::new(
        cluster_key.derive("secrets-at-rest"),
    ));
    info!(key_id = sealer.key_id(), "secrets: cluster key loaded");
    let events = Arc::new(crate::events::EventLog::default());
    tokio::spawn(crate::events::record(
        parts.local_store.clone(),
        events.clone(),
        shutdown_rx.clone(),
    ));
    let app = api::router(ApiState {
        store: store.clone(),
        local_store: parts.local_store.clone(),
        node_id: settings.node_id.clone(),
        runtime: runtime.clone(),
        cluster: parts.cluster.clone(),
        http: match api_tls {
            Some(_) => security::peer_client(&api_settings, &parts.tls)?,
            None => api::proxy_client(&api_settings)?,
        },
        settings: api_settings,
        scheduler: Arc::new(build_scheduler(&settings.config)?),
        metrics: metrics.clone(),
        secrets: Some(sealer.clone()),
        events,
    });
    let (_dns, runtime) = start_dns(&settings, &store, runtime, metrics.clone()).await?;
    let mut api_shutdown = shutdown_rx.clone();
    let api_config = settings.config.api.clone();
    let api_task = tokio::spawn(async move {
        api::server::serve(listener, app, &api_config, api_tls, async move {
            let _ = api_shutdown.wait_for(|s| *s).await;
        })
        .await
    });
    info!(
        node = %settings.node_id,
        api = %settings.api_addr,
        api_tls = !settings.config.api.plain_loopback,
        runtime = runtime.name(),
        zone = settings.zone().unwrap_or("-"),
        data = %settings.data_dir.display(),
        "node ready"
    );

    let scheduler = build_scheduler(&settings.config)?;
    let max_tasks = Some(
        settings
            .config
            .runtime
            .resource_limits
            .max_containers_per_node,
    );
    let node = Node::builder(
        settings.node_id.clone(),
        store.clone(),
        parts.membership.clone(),
        runtime.clone(),
    )
    .scheduler(scheduler)
    .config(settings.config.controllers(max_tasks)?)
    .publish_ip(settings.publish_ip())
    .leadership(parts.leader.clone())
    .observer(metrics)
    .secrets(sealer)
    .max_in_flight(settings.config.agent.max_in_flight)
    .context("agent.maxInFlight")?
    .build();
    let node_task = tokio::spawn(node.run(shutdown_rx.clone()));

    signals.wait().await;
    info!("shutting down; containers keep running and are adopted on restart");
    let _ = shutdown_tx.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        let _ = node_task.await;
        let _ = api_task.await;
    })
    .await;
    Ok(())
}

/// The API's TLS configuration (the node's certificate), or `None` for plain HTTP with
/// `api.plainLoopback`, which only a loopback API address may use.
fn api_tls(
    settings: &Settings,
    tls: &orion_consensus::security::NodeTls,
) -> Result<Option<Arc<rustls::ServerConfig>>> {
    if !settings.config.api.plain_loopback {
        return Ok(Some(tls.server_config()));
    }
    if !settings.api_addr.ip().is_loopback() {
        bail!(
            "api.plainLoopback (--api-plain-loopback): the API address {} is not a loopback \
             address; plain HTTP is allowed on 127.0.0.1 or ::1 only. Remove the option to \
             serve the API over TLS, or listen on loopback",
            settings.api_addr
        );
    }
    tracing::warn!(api = %settings.api_addr, "the API is served in plain HTTP on loopback (api.plainLoopback)");
    Ok(None)
}

/// Starts the node's DNS server when it is on, with a second listener on port 53 for containers
/// when `dns.containers` gives one (then the returned runtime gives containers that resolver).
/// The server stops when the returned value is dropped. With `auto`, a container listener that
/// cannot be bound (port 53 taken, no privilege) is warned about and containers keep the
/// runtime's resolver; an explicit IP that cannot be bound fails the start.
async fn start_dns(
    settings: &Settings,
    store: &ClusterStore<SharedStore>,
    runtime: Arc<dyn Runtime>,
    metrics: Arc<Metrics>,
) -> Result<(Option<orion_dns::DnsServer>, Arc<dyn Runtime>)> {
    let Some((addr, config)) = &settings.dns else {
        info!("dns: turned off");
        return Ok((None, runtime));
    };
    let config = &config.clone().with_observer(metrics);
    let start = |listen: Vec<SocketAddr>| async move {
        orion_dns::DnsServer::start(store.clone(), config.clone(), &listen).await
    };
    let context =
        "cannot start the DNS server (set dns.listen or --dns-addr, or turn it off with --no-dns)";
    let for_containers =
        container_dns::container_dns_ip(settings.container_dns, settings.runtime).await?;
    let Some(ip) = for_containers else {
        return Ok((Some(start(vec![*addr]).await.context(context)?), runtime));
    };
    let extra = container_dns::container_listen(ip);
    match start(vec![*addr, extra]).await {
        Ok(server) => {
            let zone = config.zone.to_ascii();
            info!(%extra, "dns: containers get this resolver and search domain {zone}");
            let runtime = container_dns::ResolverDefaults::wrap(runtime, ip, &zone);
            Ok((Some(server), runtime))
        }
        Err(e @ orion_dns::Error::Bind { addr: failed, .. })
            if failed == extra && settings.container_dns == ContainerDns::Auto =>
        {
            tracing::warn!(error = %e, "dns: containers keep the runtime's resolver (dns.containers auto)");
            Ok((Some(start(vec![*addr]).await.context(context)?), runtime))
        }
        Err(e) => Err(e).context(context),
    }
}

fn build_scheduler(config: &Config) -> Result<Scheduler> {
    config.scheduler()
}

/// SIGINT and SIGTERM, listened for from the start, so a signal that arrives as soon as the API
/// answers still shuts the node down cleanly instead of killing it.
struct ShutdownSignals {
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
}

impl ShutdownSignals {
    fn install() -> Result<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(ShutdownSignals {
                term: signal(SignalKind::terminate()).context("cannot handle SIGTERM")?,
                int: signal(SignalKind::interrupt()).context("cannot handle SIGINT")?,
            })
        }
        #[cfg(not(unix))]
        Ok(ShutdownSignals {})
    }

    async fn wait(mut self) {
        #[cfg(unix)]
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.int.recv() => {}
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
    }
}
