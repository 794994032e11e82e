//! `orion.yaml`: cluster, network and runtime settings (the shape of the Deployment form's config), plus the
//! node's own settings. Every field has a default; command-line flags override the file.
//!
//! ```yaml
//! cluster:
//!   id: production-cluster
//!   consensus: { electionTimeout: 1000ms, heartbeatInterval: 100ms, snapshotInterval: 1h }
//! network:
//!   monitoring: { enabled: true, scanInterval: 30s, latencyProbes: 10, peersPerRound: 3, minPublishInterval: 30s }
//!   scoring: { weights: { cpu: 0.3, memory: 0.3, network: 0.4 } }
//!   limits: { maxReplicas: 10000 }    # bound on a service's replicas (spec and scale)
//! scheduler:                          # the placement pipeline (see docs/scheduling.md)
//!   networkAware: true                # default: standard filters + network_rules; default scorers + network
//!   # or compose it by names (both lists, instead of networkAware and network.scoring.scorer):
//!   # filters: [node_status, constraints, max_tasks, host_ports, resources, network_rules]
//!   # scorers: [{name: least_allocated_cpu, weight: 0.3}, {name: network, weight: 0.4}]
//!   replacement: { enabled: true, tolerancePercent: 20, cooldown: 60s, maxInFlight: 2 }
//!   rebalance: { enabled: true, minSpread: 2, maxInFlight: 2, cooldown: 60s }
//! runtime:
//!   containerBackend: docker          # docker | containerd | process
//!   resourceLimits: { maxContainersPerNode: 100 }
//! api:
//!   headerReadTimeout: 10s            # a connection that sends no full request head is closed
//!   requestTimeout: 30s               # a request without a response by then gets a 408
//!   maxConnections: 0                 # 0: derived from the open-file limit (see api::server)
//!   proxyTimeout: 10s                 # connecting to / first answer of another node's API
//!   metricsWithoutToken: false        # true: /metrics answers without a token
//!   allowedHosts: []                  # Host names accepted besides IPs and localhost
//!   allowedOrigins: []                # browser origins accepted besides the API's own
//!   plainLoopback: false              # true: plain HTTP instead of TLS, on a loopback address only
//! hostAccess:                         # what specs may ask of this host (admin tokens only)
//!   paths: []                         # host directories that may be bind-mounted
//!   features: []                      # hostNetwork, engineSocket
//! security: { certRotation: 24h }   # node certificate lifetime, at least 1h; externalCa (config/security.rs)
//! dns: { enabled: true, zone: orion., listen: "", ttl: 5, containers: auto, forward: [] }   # config/dns.rs
//! agent: { maxInFlight: 16 }          # task starts/stops at once, 1 to 256 (config/agent.rs)
//! ```

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use orion_core::model::spec::{DEFAULT_MAX_REPLICAS, HostAccessPolicy, ScoringWeights, SpecLimits};
use orion_core::node::ControllerConfig;
use serde::{Deserialize, Serialize};

use crate::cli::RuntimeKind;

mod agent;
mod api;
mod autoscale;
mod dns;
mod rebalance;
mod scheduler;
mod security;
pub use agent::AgentSection;
pub use api::ApiConfig;
pub use autoscale::AutoscaleSection;
pub use dns::{ContainerDns, DnsSection};
pub use scheduler::SchedulerSection;
pub use security::SecuritySection;

/// The whole file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub cluster: ClusterConfig,
    pub network: NetworkConfig,
    pub runtime: RuntimeConfig,
    pub api: ApiConfig,
    pub scheduler: SchedulerSection,
    pub dns: DnsSection,
    /// What specs may ask of this node's host (bind mounts, host network, the engine socket);
    /// nothing by default, and only admin tokens may use what is allowed. See docs/security.md.
    #[serde(alias = "hostAccess")]
    pub host_access: HostAccessPolicy,
    /// Node-to-node security (certificate rotation period).
    pub security: SecuritySection,
    /// How this node's agent works its tasks (operations at once).
    pub agent: AgentSection,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterConfig {
    /// Cluster id; a data dir of another cluster is refused.
    pub id: String,
    pub consensus: ConsensusConfig,
    /// How often the leader's controllers reconcile even without a change.
    #[serde(with = "humantime_serde_compat", alias = "reconcileInterval")]
    pub reconcile_interval: Duration,
    /// How long a node must stay dead (after gossip detects it) before it is marked down and
    /// its tasks are replaced (default 250 ms; at most 10 min).
    #[serde(with = "humantime_serde_compat", alias = "downGrace")]
    pub down_grace: Duration,
    /// Nodes marked down per minute at most (default 5; 1 to 1000).
    #[serde(alias = "maxNodesDownPerMinute")]
    pub max_nodes_down_per_minute: u32,
    /// How long finished task records are kept (default 1h; 1 s to 30 days).
    #[serde(with = "humantime_serde_compat", alias = "taskRetention")]
    pub task_retention: Duration,
    /// Finished task records kept per service at most (default 50; 1 to 10,000).
    #[serde(alias = "taskHistoryPerService")]
    pub task_history_per_service: usize,
    /// Spec versions kept per service for `orion rollout history` and `undo` (default 10; 1 to
    /// 100).
    #[serde(alias = "specHistoryPerService")]
    pub spec_history_per_service: usize,
    /// Bounds on what a spec may ask for.
    pub limits: ClusterLimits,
    /// Autoscaling's sample and evaluate intervals.
    pub autoscale: AutoscaleSection,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        let liveness = orion_core::node::LivenessConfig::default();
        let gc = orion_core::node::GcConfig::default();
        ClusterConfig {
            id: "orion".into(),
            consensus: ConsensusConfig::default(),
            reconcile_interval: Duration::from_secs(2),
            down_grace: liveness.down_grace,
            max_nodes_down_per_minute: liveness.max_down_per_minute,
            task_retention: gc.retention,
            task_history_per_service: gc.history_per_service,
            spec_history_per_service: orion_core::store::DEFAULT_SPEC_HISTORY,
            limits: ClusterLimits::default(),
            autoscale: AutoscaleSection::default(),
        }
    }
}

/// Bounds on what a spec may ask for (see `SpecLimits`; the reconciler must apply them too).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterLimits {
    /// Most replicas of one service, 1 to 1,000,000 (default 10,000).
    #[serde(alias = "maxReplicas")]
    pub max_replicas: u32,
}

impl Default for ClusterLimits {
    fn default() -> Self {
        ClusterLimits {
            max_replicas: DEFAULT_MAX_REPLICAS,
        }
    }
}

/// Largest `cluster.limits.maxReplicas` accepted.
pub const MAX_REPLICAS_CEILING: u32 = 1_000_000;

impl ClusterLimits {
    /// The limits specs are validated against.
    pub fn spec_limits(&self) -> SpecLimits {
        SpecLimits {
            max_replicas: self.max_replicas,
        }
    }
}

impl ClusterConfig {
    /// The controllers' settings, with every bound checked (the error names the field).
    pub fn controllers(&self, max_tasks: Option<u32>) -> anyhow::Result<ControllerConfig> {
        let check = |ok: bool, field: &str, accepted: &str| {
            if ok {
                Ok(())
            } else {
                Err(anyhow::anyhow!("cluster.{field}: expected {accepted}"))
            }
        };
        check(
            self.down_grace <= Duration::from_secs(600),
            "downGrace",
            "at most 10m",
        )?;
        check(
            (1..=1000).contains(&self.max_nodes_down_per_minute),
            "maxNodesDownPerMinute",
            "1 to 1000",
        )?;
        check(
            (Duration::from_secs(1)..=Duration::from_secs(30 * 86_400))
                .contains(&self.task_retention),
            "taskRetention",
            "1s to 30 days",
        )?;
        check(
            (1..=10_000).contains(&self.task_history_per_service),
            "taskHistoryPerService",
            "1 to 10000",
        )?;
        check(
            (1..=orion_core::store::MAX_SPEC_HISTORY).contains(&self.spec_history_per_service),
            "specHistoryPerService",
            "1 to 100",
        )?;
        check(
            (Duration::from_millis(100)..=Duration::from_secs(3600))
                .contains(&self.reconcile_interval),
            "reconcileInterval",
            "100ms to 1h",
        )?;
        let mut c = ControllerConfig {
            reconcile_interval: self.reconcile_interval,
            ..ControllerConfig::default()
        };
        c.liveness.down_grace = self.down_grace;
        c.liveness.max_down_per_minute = self.max_nodes_down_per_minute;
        c.liveness.max_tasks = max_tasks;
        c.gc.retention = self.task_retention;
        c.gc.history_per_service = self.task_history_per_service;
        c.policy.limits = self.limits.spec_limits();
        c.autoscale = self.autoscale.config()?;
        Ok(c)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConsensusConfig {
    /// A follower that hears no leader for a random time between half this and this starts an
    /// election (default 300 ms: failover well under a second on a LAN).
    #[serde(with = "humantime_serde_compat", alias = "electionTimeout")]
    pub election_timeout: Duration,
    /// How often the leader sends heartbeats; below half the election timeout.
    #[serde(with = "humantime_serde_compat", alias = "heartbeatInterval")]
    pub heartbeat_interval: Duration,
    /// Raft builds a snapshot this often when anything changed (and also every 10,000 entries);
    /// at least 1s.
    #[serde(with = "humantime_serde_compat", alias = "snapshotInterval")]
    pub snapshot_interval: Duration,
}

impl Default for ConsensusConfig {
    fn default() -> Self {
        ConsensusConfig {
            election_timeout: Duration::from_millis(300),
            heartbeat_interval: Duration::from_millis(50),
            snapshot_interval: Duration::from_secs(3600),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NetworkConfig {
    pub monitoring: MonitoringConfig,
    pub scoring: ScoringConfig,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MonitoringConfig {
    pub enabled: bool,
    /// Time between probe rounds to every peer.
    #[serde(with = "humantime_serde_compat", alias = "scanInterval")]
    pub scan_interval: Duration,
    /// Probes per peer per round.
    #[serde(alias = "latencyProbes")]
    pub latency_probes: u32,
    /// Peers probed per round (a random subset, so the cost does not grow with the cluster).
    #[serde(alias = "peersPerRound")]
    pub peers_per_round: usize,
    /// Least time between two publications of this node's record of links and coordinate (one
    /// Raft write; a link going up or down is published at once): bounds the prober's writes to
    /// one per node per interval.
    #[serde(with = "humantime_serde_compat", alias = "minPublishInterval")]
    pub min_publish_interval: Duration,
}

impl MonitoringConfig {
    /// Bounds: `scanInterval` 100ms to 10m, `latencyProbes` 1 to 16, `peersPerRound` 1 to 64,
    /// `minPublishInterval` 100ms to 1h.
    pub fn check(&self) -> anyhow::Result<()> {
        if !(Duration::from_millis(100)..=Duration::from_secs(3600))
            .contains(&self.min_publish_interval)
        {
            anyhow::bail!(
                "network.monitoring.minPublishInterval: got {}, expected 100ms to 1h",
                humantime::format_duration(self.min_publish_interval)
            );
        }
        let (lo, hi) = (Duration::from_millis(100), Duration::from_secs(600));
        if self.scan_interval < lo || self.scan_interval > hi {
            anyhow::bail!(
                "network.monitoring.scanInterval: got {}, expected 100ms to 10m",
                humantime::format_duration(self.scan_interval)
            );
        }
        if !(1..=16).contains(&self.latency_probes) {
            anyhow::bail!(
                "network.monitoring.latencyProbes: got {}, expected 1 to 16",
                self.latency_probes
            );
        }
        if !(1..=64).contains(&self.peers_per_round) {
            anyhow::bail!(
                "network.monitoring.peersPerRound: got {}, expected 1 to 64",
                self.peers_per_round
            );
        }
        Ok(())
    }
}

impl Default for MonitoringConfig {
    fn default() -> Self {
        MonitoringConfig {
            enabled: true,
            scan_interval: Duration::from_secs(30),
            latency_probes: 10,
            peers_per_round: 3,
            min_publish_interval: Duration::from_secs(30),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScoringConfig {
    /// `score = cpu*S_cpu + memory*S_mem + network*S_net`.
    pub weights: ScoringWeights,
    /// Scorer preset: `default`, `least_allocated`, `most_allocated`, `round_robin`, `epvm`, `spread`.
    pub scorer: String,
    /// Seed for deterministic tie-breaking.
    pub seed: u64,
}

impl Default for ScoringConfig {
    fn default() -> Self {
        ScoringConfig {
            weights: ScoringWeights::default(),
            scorer: "default".into(),
            seed: 0,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RuntimeConfig {
    /// `docker`, `containerd` or `process` (`native` means `process`).
    #[serde(alias = "containerBackend")]
    pub container_backend: String,
    /// Accepted for compatibility with the Deployment form's config; every backend here runs OCI images.
    #[serde(alias = "ociCompliant")]
    pub oci_compliant: bool,
    #[serde(alias = "resourceLimits")]
    pub resource_limits: ResourceLimits,
    /// containerd's socket (an absolute path) for `containerBackend: containerd`; empty =
    /// detect (`ORION_CONTAINERD_SOCKET`, then the usual paths).
    #[serde(alias = "containerdSocket")]
    pub containerd_socket: String,
}

impl RuntimeConfig {
    /// The configured containerd socket; `None` when empty (detect).
    pub fn containerd_socket_path(&self) -> Option<std::path::PathBuf> {
        (!self.containerd_socket.is_empty()).then(|| self.containerd_socket.clone().into())
    }

    /// Checks the runtime keys that have a shape: an absolute containerd socket path.
    fn check(&self) -> anyhow::Result<()> {
        if let Some(path) = self.containerd_socket_path()
            && !path.is_absolute()
        {
            anyhow::bail!(
                "runtime.containerdSocket: got {:?}, expected an absolute path such as \
                 /run/containerd/containerd.sock (or empty to detect it)",
                self.containerd_socket
            );
        }
        Ok(())
    }
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            container_backend: "docker".into(),
            oci_compliant: true,
            resource_limits: ResourceLimits::default(),
            containerd_socket: String::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ResourceLimits {
    #[serde(alias = "maxContainersPerNode")]
    pub max_containers_per_node: u32,
}

impl Default for ResourceLimits {
    fn default() -> Self {
        ResourceLimits {
            max_containers_per_node: 100,
        }
    }
}

impl Config {
    /// Reads and checks a config file.
    pub fn load(path: &Path) -> anyhow::Result<Config> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config file {}", path.display()))?;
        let config: Config = serde_saphyr::from_str(&text)
            .with_context(|| format!("invalid config file {}", path.display()))?;
        config
            .check()
            .with_context(|| format!("invalid config file {}", path.display()))?;
        Ok(config)
    }

    /// The leader's controllers' settings: `cluster`, `scheduler.replacement` and
    /// `scheduler.rebalance`, every bound checked.
    pub fn controllers(&self, max_tasks: Option<u32>) -> anyhow::Result<ControllerConfig> {
        let mut c = self.cluster.controllers(max_tasks)?;
        self.scheduler.replacement.apply(&mut c.policy)?;
        self.scheduler.rebalance.apply(&mut c.policy)?;
        Ok(c)
    }

    /// Checks the values serde cannot: backend names and bounds.
    pub fn check(&self) -> anyhow::Result<()> {
        self.runtime_kind()?;
        self.scheduler()?;
        self.controllers(None)?;
        self.runtime.check()?;
        self.dns.check()?;
        let max = self.cluster.limits.max_replicas;
        if !(1..=MAX_REPLICAS_CEILING).contains(&max) {
            anyhow::bail!(
                "cluster.limits.maxReplicas: got {max}, expected 1 to {MAX_REPLICAS_CEILING}"
            );
        }
        self.api.check()?;
        self.host_access
            .check()
            .map_err(|e| anyhow::anyhow!("hostAccess.{e}"))?;
        self.network.monitoring.check()?;
        self.security.check()?;
        self.agent.check()?;
        Ok(())
    }

    /// The configured backend.
    pub fn runtime_kind(&self) -> anyhow::Result<RuntimeKind> {
        match self.runtime.container_backend.as_str() {
            "docker" => Ok(RuntimeKind::Docker),
            "containerd" => Ok(RuntimeKind::Containerd),
            "process" | "native" => Ok(RuntimeKind::Process),
            other => anyhow::bail!(
                "runtime.containerBackend: got {other:?}, expected docker, containerd or process"
            ),
        }
    }
}

/// Durations written the human way (`100ms`, `30s`, `1h`).
mod humantime_serde_compat {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(*d).to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_duration(&text).map_err(|e| {
            serde::de::Error::custom(format!(
                "{text:?} is not a duration ({e}); write e.g. 100ms, 30s or 1h"
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED_CONFIG: &str = r#"
cluster:
  id: production-cluster
  consensus:
    electionTimeout: 1000ms
    heartbeatInterval: 100ms
    snapshotInterval: 1h
network:
  monitoring:
    enabled: true
    scanInterval: 30s
    latencyProbes: 10
  scoring:
    weights:
      cpu: 0.3
      memory: 0.3
      network: 0.4
runtime:
  containerBackend: native
  ociCompliant: true
  resourceLimits:
    maxContainersPerNode: 100
"#;

    #[test]
    fn the_seed_config_parses() {
        let c: Config = serde_saphyr::from_str(SEED_CONFIG).unwrap();
        assert_eq!(c.cluster.id, "production-cluster");
        assert_eq!(
            c.cluster.consensus.heartbeat_interval,
            Duration::from_millis(100)
        );
        assert_eq!(
            c.cluster.consensus.snapshot_interval,
            Duration::from_secs(3600)
        );
        assert_eq!(c.network.monitoring.scan_interval, Duration::from_secs(30));
        assert_eq!(c.network.scoring.weights.network, 0.4);
        assert_eq!(c.runtime.resource_limits.max_containers_per_node, 100);
        assert_eq!(c.runtime_kind().unwrap(), RuntimeKind::Process);
    }

    #[test]
    fn unknown_fields_and_bad_values_are_refused_with_a_reason() {
        let err = serde_saphyr::from_str::<Config>("cluster:\n  idd: x\n").unwrap_err();
        assert!(err.to_string().contains("idd"), "{err}");
        let err =
            serde_saphyr::from_str::<Config>("cluster:\n  consensus:\n    electionTimeout: soon\n")
                .unwrap_err();
        assert!(err.to_string().contains("not a duration"), "{err}");
        let c: Config = serde_saphyr::from_str("runtime:\n  containerBackend: podman\n").unwrap();
        assert!(c.runtime_kind().unwrap_err().to_string().contains("podman"));
    }

    #[test]
    fn containerd_socket_is_read_and_must_be_absolute() {
        let c: Config =
            serde_saphyr::from_str("runtime:\n  containerdSocket: /run/x/containerd.sock\n")
                .unwrap();
        assert_eq!(
            c.runtime.containerd_socket_path(),
            Some("/run/x/containerd.sock".into())
        );
        assert_eq!(Config::default().runtime.containerd_socket_path(), None);
        let c: Config =
            serde_saphyr::from_str("runtime:\n  containerdSocket: containerd.sock\n").unwrap();
        let err = c.runtime.check().unwrap_err().to_string();
        assert!(err.contains("runtime.containerdSocket"), "{err}");
        assert!(err.contains("absolute"), "{err}");
    }

    #[test]
    fn limits_and_api_settings_parse_and_are_bounded() {
        let c = Config::default();
        assert_eq!(c.cluster.limits.max_replicas, DEFAULT_MAX_REPLICAS);
        c.check().unwrap();
        let c: Config = serde_saphyr::from_str(
            "cluster:\n  limits: { maxReplicas: 50 }\napi:\n  headerReadTimeout: 2s\n  maxConnections: 64\n",
        )
        .unwrap();
        c.check().unwrap();
        assert_eq!(c.cluster.limits.spec_limits().max_replicas, 50);
        assert_eq!(c.api.header_read_timeout, Duration::from_secs(2));
        assert_eq!(c.api.max_connections, 64);
        for (text, named) in [
            ("cluster:\n  limits: { maxReplicas: 0 }\n", "maxReplicas"),
            (
                "cluster:\n  limits: { maxReplicas: 4294967295 }\n",
                "maxReplicas",
            ),
            ("api:\n  headerReadTimeout: 0s\n", "headerReadTimeout"),
            ("api:\n  requestTimeout: 2h\n", "requestTimeout"),
        ] {
            let c: Config = serde_saphyr::from_str(text).unwrap();
            let err = c.check().unwrap_err().to_string();
            assert!(err.contains(named), "{text}: {err}");
        }
    }

    #[test]
    fn network_monitoring_is_bounded() {
        let mut c = Config::default();
        assert_eq!(c.network.monitoring.peers_per_round, 3);
        assert!(c.check().is_ok());
        c.network.monitoring.peers_per_round = 0;
        let e = c.check().unwrap_err().to_string();
        assert!(e.contains("peersPerRound") && e.contains("1 to 64"), "{e}");
        c.network.monitoring.peers_per_round = 3;
        c.network.monitoring.scan_interval = Duration::from_millis(10);
        let e = c.check().unwrap_err().to_string();
        assert!(e.contains("scanInterval"), "{e}");
        c.network.monitoring.scan_interval = Duration::from_secs(30);
        c.network.monitoring.latency_probes = 100;
        let e = c.check().unwrap_err().to_string();
        assert!(e.contains("latencyProbes"), "{e}");
    }
}
