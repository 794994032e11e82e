//! `orion.yaml`: cluster, network and runtime settings (the shape of seed 000's config), plus the
//! node's own settings. Every field has a default; command-line flags override the file.
//!
//! ```yaml
//! cluster:
//!   id: production-cluster
//!   consensus: { electionTimeout: 1000ms, heartbeatInterval: 100ms, snapshotInterval: 1h }
//! network:
//!   monitoring: { enabled: true, scanInterval: 30s, latencyProbes: 10 }
//!   scoring: { weights: { cpu: 0.3, memory: 0.3, network: 0.4 } }
//! runtime:
//!   containerBackend: docker          # docker | containerd | process
//!   resourceLimits: { maxContainersPerNode: 100 }
//! ```

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use orion_core::model::spec::ScoringWeights;
use serde::{Deserialize, Serialize};

use crate::cli::RuntimeKind;

/// The whole file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub cluster: ClusterConfig,
    pub network: NetworkConfig,
    pub runtime: RuntimeConfig,
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
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            id: "orion".into(),
            consensus: ConsensusConfig::default(),
            reconcile_interval: Duration::from_secs(2),
        }
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
}

impl Default for MonitoringConfig {
    fn default() -> Self {
        MonitoringConfig {
            enabled: true,
            scan_interval: Duration::from_secs(30),
            latency_probes: 10,
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
    /// `docker`, `containerd` or `process` (seed 000's `native` means `process`).
    #[serde(alias = "containerBackend")]
    pub container_backend: String,
    /// Accepted for compatibility with seed 000; every backend here runs OCI images.
    #[serde(alias = "ociCompliant")]
    pub oci_compliant: bool,
    #[serde(alias = "resourceLimits")]
    pub resource_limits: ResourceLimits,
    /// containerd socket; empty = detect.
    #[serde(alias = "containerdSocket")]
    pub containerd_socket: String,
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
            .runtime_kind()
            .with_context(|| format!("invalid config file {}", path.display()))?;
        Ok(config)
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
}
