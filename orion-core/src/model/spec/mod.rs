//! The service spec: what a user asks Orion to run.
//!
//! Field names follow the snake_case config forms (`service_name`, `cpu_millicores`, `memory_bytes`, ...),
//! and parsing is strict: an unknown field is an error with a "did you mean" hint, and
//! [`ServiceSpec::validate`] reports every problem with its field path, value and what is
//! accepted. See `docs/spec.md` for the reference.
//!
//! Parsing lives in [`parse`], validation in [`validate`], quantities with units in [`units`].
//! Multi-word fields also accept their camelCase spelling (`restartPolicy`, `containerPort`).
//!
//! ```
//! use orion_core::Error;
//! use orion_core::model::spec::{SpecFormat, parse_spec};
//!
//! let spec = parse_spec(
//!     "name: web\nimage: nginx:alpine\nreplicas: 3\nports: [\"8080:80\"]\nenv: {MODE: prod}\n",
//!     SpecFormat::Yaml,
//! )?;
//! assert_eq!((spec.ports[0].host_port, spec.ports[0].container_port), (8080, 80));
//! assert_eq!(spec.env, ["MODE=prod"]);
//! assert_eq!(parse_spec(&spec.to_yaml()?, SpecFormat::Yaml)?, spec);
//!
//! // A typo gets a hint and the path of the field.
//! let Err(Error::Parse(e)) = parse_spec("name: web\nimage: nginx\nreplica: 3\n", SpecFormat::Yaml)
//! else { unreachable!() };
//! assert_eq!(e.path, "replica");
//! assert!(e.message.contains("did you mean `replicas`?"));
//!
//! // Validation reports every problem at once.
//! let Err(Error::Invalid(errs)) = parse_spec("name: Web\nimage: ''\n", SpecFormat::Yaml)
//! else { unreachable!() };
//! assert_eq!(errs.0.len(), 2);
//! # Ok::<(), Error>(())
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::secrets::SecretRef;

pub mod compose;
mod cpu_limit;
mod forms;
mod kinds;
mod locate;
pub mod parse;
pub mod safety;
pub mod units;
pub mod validate;
mod validate_lifecycle;
mod validate_secrets;
mod wrapper;

pub use cpu_limit::CpuLimit;
pub use forms::{parse_port, parse_volume};
pub use parse::{SpecFormat, parse_spec, parse_spec_with, parse_specs};
pub use safety::{HostAccess, HostAccessPolicy, HostFeature};
pub use validate::{
    DEFAULT_MAX_REPLICAS, MAX_STABILIZATION_SECONDS, MIN_COOLDOWN_SECONDS, SpecLimits,
};
pub use wrapper::API_VERSION;

/// One service: an image run as `replicas` identical tasks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceSpec {
    /// Unique name; must be a DNS label (it is served as `<name>.service.orion`).
    #[serde(alias = "service_name")]
    pub name: String,
    /// Container image reference (or, for the process runtime, the program to run).
    pub image: String,
    /// Desired number of tasks.
    #[serde(default = "one")]
    pub replicas: u32,
    /// Overrides the image's command (numbers in the list are taken as text).
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "forms::string_list"
    )]
    pub command: Vec<String>,
    /// Replaces the image's entrypoint (Docker's `--entrypoint`, Compose's `entrypoint`); the
    /// image's default command is then not used either, only [`ServiceSpec::command`]. Unset
    /// keeps the image's. At least one element when set. Not available on the process runtime,
    /// whose `image` is already the program.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "forms::optional_string_list"
    )]
    pub entrypoint: Option<Vec<String>>,
    /// Environment as `KEY=value` strings (a YAML/JSON map is accepted too).
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "forms::env"
    )]
    pub env: Vec<String>,
    /// Secrets to deliver, each as an env variable or a file (see [`crate::secrets`]). The
    /// spec holds names only; values are stored sealed and opened by the agent at start.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<SecretRef>,
    /// Ports to publish.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<PortSpec>,
    /// Volumes: `/host:/ctr`, `name:/ctr`, `/host:/ctr:ro`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<VolumeSpec>,
    /// A named container network to join.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<String>,
    /// `bridge` (default), `host` or `none`.
    #[serde(default, alias = "networkMode")]
    pub network_mode: NetworkMode,
    /// DNS servers for the container.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dns: Vec<String>,
    /// Extra `/etc/hosts` entries, `name:ip`.
    #[serde(default, skip_serializing_if = "Vec::is_empty", alias = "extraHosts")]
    pub extra_hosts: Vec<String>,
    /// What to do when a task exits or turns unhealthy (default `always`).
    #[serde(default, alias = "restartPolicy")]
    pub restart_policy: RestartPolicy,
    /// Restarts in place on one node before the task is failed and rescheduled, preferably onto
    /// another node (1 to [`MAX_RESCHEDULE_AFTER`]; default [`DEFAULT_RESCHEDULE_AFTER`]).
    #[serde(default = "default_reschedule_after", alias = "rescheduleAfter")]
    pub reschedule_after: u32,
    /// The per-task request (and limit).
    #[serde(default, deserialize_with = "forms::mapping")]
    pub resources: ResourceSpec,
    /// How to tell whether a task is healthy.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        alias = "healthCheck",
        deserialize_with = "forms::optional_mapping"
    )]
    pub health_check: Option<HealthCheck>,
    /// Autoscaling bounds and targets.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        alias = "scalePolicy",
        deserialize_with = "forms::optional_mapping"
    )]
    pub scale_policy: Option<ScalePolicy>,
    /// How a changed spec rolls out.
    #[serde(default, alias = "updateStrategy", deserialize_with = "forms::mapping")]
    pub update_strategy: UpdateStrategy,
    /// Where tasks may and should go.
    #[serde(default, deserialize_with = "forms::mapping")]
    pub scheduling: Scheduling,
    /// Services this one talks to (`depends_on: [db]`): the network scorer prefers nodes close
    /// to their running tasks. At most [`MAX_DEPENDENCIES`], each a service name other than this
    /// one's; a dependency need not exist or run yet (see `docs/spec.md`).
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        alias = "dependsOn",
        deserialize_with = "forms::string_list"
    )]
    pub depends_on: Vec<String>,
    /// Free-form labels, copied onto containers.
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "forms::string_map"
    )]
    pub labels: BTreeMap<String, String>,
    /// Seconds after which a node that has lost the cluster (its agent cannot reach the store)
    /// stops this service's tasks, so that at most one copy of a singleton runs across a
    /// partition (Nomad's `stop_after_client_disconnect`). 0 (the default) keeps them running.
    #[serde(
        default,
        skip_serializing_if = "is_zero",
        with = "forms::seconds",
        alias = "stopAfterDisconnect"
    )]
    pub stop_after_disconnect: u64,
}

fn one() -> u32 {
    1
}

/// Default of [`ServiceSpec::reschedule_after`].
pub const DEFAULT_RESCHEDULE_AFTER: u32 = 5;
/// Largest accepted [`ServiceSpec::reschedule_after`].
pub const MAX_RESCHEDULE_AFTER: u32 = 100;

fn default_reschedule_after() -> u32 {
    DEFAULT_RESCHEDULE_AFTER
}

/// `required: true` is the default of a network rule, so it is not written out.
fn is_true(v: &bool) -> bool {
    *v
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

/// A port to publish. Deserializes from a container port number (`8080`), a string
/// `[host_port:]container_port[/tcp|udp]` (`"8080:80/udp"`) or the full object; serializes as the
/// object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PortSpec {
    /// Port inside the container, 1-65535.
    pub container_port: u16,
    /// Port on the host; 0 (or absent) picks a free one, read back once running.
    pub host_port: u16,
    /// `tcp` (default) or `udp`.
    pub protocol: Protocol,
    /// Optional name, a DNS label that is not all digits (`http`): DNS serves the port's SRV
    /// records as `_<name>._<protocol>.<service>.<zone>`; an unnamed port answers under its
    /// container port number (`_8080._tcp.web.orion.`). Unique per protocol within a service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// Transport protocol of a port.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    #[default]
    Tcp,
    Udp,
}

impl Protocol {
    /// `"tcp"` or `"udp"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        }
    }
}

/// A volume mount, written `source:target[:ro]`: it serializes as that string, and deserializes
/// from it (`:rw` is accepted too) or from an object `{source, target, read_only}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeSpec {
    /// A host path (starts with `/`) for a bind mount, otherwise a named volume.
    pub source: String,
    /// Absolute path inside the container.
    pub target: String,
    /// Mounted read-only (`:ro`).
    pub read_only: bool,
}

impl VolumeSpec {
    /// True when `source` is a host path (bind mount) rather than a volume name.
    pub fn is_bind(&self) -> bool {
        self.source.starts_with('/')
    }
}

/// Container networking.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NetworkMode {
    #[default]
    Bridge,
    Host,
    None,
}

/// When an exited (or unhealthy) task is restarted in place by its agent, and whether the
/// reconciler refills its slot once the agent gives up.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RestartPolicy {
    /// Never: an exited or unhealthy task stays ended (available, not the default).
    No,
    /// Whatever the exit (the default, as in Swarm and Kubernetes).
    #[default]
    Always,
    /// Only after a non-zero exit or a failed health check.
    OnFailure,
    /// As `always`, except after a container stopped from outside Orion (`docker stop`, `kill`:
    /// exit by SIGTERM or SIGKILL without the OOM killer), which stays stopped.
    UnlessStopped,
}

impl RestartPolicy {
    /// Whether a task that ended with `exit_code` (None: unhealthy, or the container vanished)
    /// is restarted under this policy.
    pub fn restarts(self, exit_code: Option<i64>, oom_killed: bool) -> bool {
        match self {
            RestartPolicy::Always => true,
            RestartPolicy::UnlessStopped => !stopped_from_outside(exit_code, oom_killed),
            RestartPolicy::OnFailure => exit_code != Some(0),
            RestartPolicy::No => false,
        }
    }
}

/// True for an exit by SIGTERM (143) or SIGKILL (137) that the OOM killer did not cause: the
/// container was stopped from outside Orion.
pub fn stopped_from_outside(exit_code: Option<i64>, oom_killed: bool) -> bool {
    !oom_killed && matches!(exit_code, Some(137 | 143))
}

/// Per-task resources. The scheduler reserves them; the runtime enforces the memory as a limit,
/// and the CPU as `cpu_limit` says (by default, capped at the reservation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceSpec {
    /// CPU in millicores, at least 5 (`500`, `"500m"` or `"0.5cpu"`).
    #[serde(
        default = "default_cpu",
        with = "forms::millicores",
        alias = "cpuMillicores"
    )]
    pub cpu_millicores: u64,
    /// Memory in bytes, at least 16 MiB (`268435456` or `"256Mi"`).
    #[serde(
        default = "default_memory",
        with = "forms::bytes",
        alias = "memoryBytes"
    )]
    pub memory_bytes: u64,
    /// Disk in bytes (0 = not reserved).
    #[serde(default, with = "forms::bytes", alias = "diskBytes")]
    pub disk_bytes: u64,
    /// The CPU cap the runtime enforces: by default the reservation (`cpu_millicores`); `none`
    /// or a higher number of millicores lets the replica use idle CPU (see [`CpuLimit`]).
    #[serde(
        default,
        skip_serializing_if = "CpuLimit::is_reserved",
        alias = "cpuLimit"
    )]
    pub cpu_limit: CpuLimit,
}

fn default_cpu() -> u64 {
    100
}
fn default_memory() -> u64 {
    64 * 1024 * 1024
}

impl Default for ResourceSpec {
    fn default() -> Self {
        ResourceSpec {
            cpu_millicores: default_cpu(),
            memory_bytes: default_memory(),
            disk_bytes: 0,
            cpu_limit: CpuLimit::Reserved,
        }
    }
}

impl From<ResourceSpec> for super::Resources {
    fn from(r: ResourceSpec) -> Self {
        super::Resources {
            cpu_millicores: r.cpu_millicores,
            memory_bytes: r.memory_bytes,
            disk_bytes: r.disk_bytes,
        }
    }
}

/// Health check kinds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HealthCheckType {
    #[default]
    Http,
    Tcp,
    Command,
}

/// How the agent decides a running task is healthy.
///
/// When `type` is left out it is inferred: `command` when a command is given, else `http` when
/// an `http_path` is, else `tcp` when a `port` is, else `http`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "forms::MapOnly<kinds::RawHealthCheck>")]
pub struct HealthCheck {
    #[serde(rename = "type")]
    pub kind: HealthCheckType,
    /// For `http`: the path to GET; healthy on [`HealthCheck::expected_status`], else on any
    /// 2xx/3xx. Only for `http`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_path: Option<String>,
    /// For `http`: the one status code that counts as healthy (100-599). Only for `http`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected_status: Option<u16>,
    /// For `http`/`tcp`: the container port to check. It must be published by `ports` (the agent
    /// reaches it through its host port), or the service must use network mode `host`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// For `command`: run inside the container; exit 0 is healthy. Only for `command`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
    /// Seconds between checks, 1 to [`MAX_HEALTH_SECONDS`] (`30` or `"30s"`; default 10).
    pub interval: u64,
    /// Seconds before one check counts as failed, at most the interval (0, the default, means
    /// the interval).
    pub timeout: u64,
    /// Failed checks in a row tolerated: the task turns unhealthy at failure `retries + 1`
    /// (0 to [`MAX_HEALTH_RETRIES`]; default 0).
    pub retries: u32,
    /// Seconds after a start during which failed checks do not count (a passing check ends it
    /// early); 0 to [`MAX_HEALTH_SECONDS`], default 0.
    #[serde(skip_serializing_if = "is_zero")]
    pub start_period: u64,
}

/// Longest accepted health check interval and start period, in seconds (one hour).
pub const MAX_HEALTH_SECONDS: u64 = 3600;
/// Most accepted health check `retries`.
pub const MAX_HEALTH_RETRIES: u32 = 100;

impl HealthCheck {
    /// The timeout of one check (the interval when `timeout` is 0).
    pub fn effective_timeout(&self) -> std::time::Duration {
        let secs = if self.timeout == 0 {
            self.interval
        } else {
            self.timeout
        };
        std::time::Duration::from_secs(secs.max(1))
    }
}

fn default_interval() -> u64 {
    10
}

/// Autoscaling: bounds and targets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScalePolicy {
    /// Fewest replicas, at least 1.
    #[serde(default = "one", alias = "minReplicas")]
    pub min_replicas: u32,
    /// Most replicas, at least `min_replicas`.
    #[serde(default = "one", alias = "maxReplicas")]
    pub max_replicas: u32,
    /// Target CPU utilisation, percent (5-100).
    #[serde(default, skip_serializing_if = "Option::is_none", alias = "targetCpu")]
    pub target_cpu: Option<f64>,
    /// Target memory utilisation, percent (10-100).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        alias = "targetMemory"
    )]
    pub target_memory: Option<f64>,
    /// Seconds between scaling actions, at least 30 (`120` or `"2m"`).
    #[serde(
        default = "default_cooldown",
        with = "forms::seconds",
        alias = "cooldownSeconds"
    )]
    pub cooldown_seconds: u64,
    /// Scale-down stabilization window, seconds (0-3600, default 300; `"5m"` too): a scale-down
    /// goes only as low as the highest recommendation made over this window, so a dip does
    /// not remove replicas a peak just added. Scale-ups are not delayed.
    #[serde(
        default = "default_stabilization",
        with = "forms::seconds",
        alias = "stabilizationSeconds"
    )]
    pub stabilization_seconds: u64,
}

fn default_cooldown() -> u64 {
    60
}

fn default_stabilization() -> u64 {
    300
}

/// What a rollout does when a new replica fails (see `orion_core::reconciler::rollout`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FailureAction {
    /// Go back to the previous spec version, by itself.
    #[default]
    Rollback,
    /// Stop the rollout where it is, until `orion rollout resume` (or `undo`).
    Pause,
    /// Ignore and carry on.
    Continue,
}

/// Rolling update settings: how a new spec version replaces the running replicas (the rules are
/// in `orion_core::reconciler::rollout`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateStrategy {
    /// Replicas replaced at once (a batch), at least 1. A batch starts only when every new
    /// replica of the previous one serves.
    #[serde(default = "one")]
    pub parallelism: u32,
    /// Seconds between the end of one batch (all its replicas serve) and the next, at most
    /// [`MAX_UPDATE_SECONDS`].
    #[serde(default, with = "forms::seconds", alias = "delaySeconds")]
    pub delay_seconds: u64,
    /// Seconds a new replica has to serve, counted from its first health check (one
    /// `health_check.interval` after its creation; from its creation without a check), at most
    /// [`MAX_UPDATE_SECONDS`]. Past it, the replica has failed the update.
    #[serde(
        default = "default_health_wait",
        with = "forms::seconds",
        alias = "healthWaitSeconds"
    )]
    pub health_wait_seconds: u64,
    /// What to do when a new replica fails: fails, restarts, turns unhealthy or does not serve
    /// within the health wait.
    #[serde(default, alias = "failureAction")]
    pub failure_action: FailureAction,
    /// Replicas of a new version started first (0: none); the rest wait for `orion rollout
    /// promote`. At most `replicas`.
    #[serde(default)]
    pub canary: u32,
    /// Extra replicas an update may run at once: of the `parallelism` slots being replaced, at
    /// most this many start their new replica before the old one stops; the others stop the
    /// old replica first, then start the new one in its place (for fixed host ports or tight
    /// capacity). 0 stops every old replica first. Unset: `parallelism` (every slot starts its
    /// new replica first). At most `parallelism`; `max_surge` and `parallelism` cannot both be
    /// 0. Drains and moves always start the new replica first, on another node.
    #[serde(default, alias = "maxSurge", skip_serializing_if = "Option::is_none")]
    pub max_surge: Option<u32>,
}

impl UpdateStrategy {
    /// The extra replicas an update runs at once: `max_surge`, or `parallelism` when unset,
    /// never above `parallelism`.
    pub fn surge(&self) -> u32 {
        self.max_surge
            .unwrap_or(self.parallelism)
            .min(self.parallelism)
    }
}

/// Longest accepted `delay_seconds` and `health_wait_seconds` (one hour).
pub const MAX_UPDATE_SECONDS: u64 = 3600;

fn default_health_wait() -> u64 {
    30
}

impl Default for UpdateStrategy {
    fn default() -> Self {
        UpdateStrategy {
            parallelism: 1,
            delay_seconds: 0,
            health_wait_seconds: default_health_wait(),
            failure_action: FailureAction::Rollback,
            canary: 0,
            max_surge: None,
        }
    }
}

/// Placement rules.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scheduling {
    /// Overrides the cluster's scorer weights for this service.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "forms::optional_mapping"
    )]
    pub weights: Option<ScoringWeights>,
    /// The Deployment form's `networkAware`. Unset: the cluster's pipeline decides (the `orion` binary's
    /// default pipeline, `scheduler.networkAware` in `orion.yaml`, scores the network for every
    /// service with dependencies or network rules). `false`: this service opts out of network
    /// *scoring* (its hard network rules still filter). `true`: the service needs network
    /// scoring; the API refuses it when the cluster's pipeline has no `network` scorer.
    #[serde(
        default,
        alias = "networkAware",
        skip_serializing_if = "Option::is_none"
    )]
    pub network_aware: Option<bool>,
    /// Hard label constraints: every `key: value` must match the node's labels.
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        alias = "nodeSelector",
        deserialize_with = "forms::string_map"
    )]
    pub node_selector: BTreeMap<String, String>,
    /// Zones the tasks must run in (empty = any).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub zones: Vec<String>,
    /// Zones the tasks must avoid.
    #[serde(default, skip_serializing_if = "Vec::is_empty", alias = "avoidZones")]
    pub avoid_zones: Vec<String>,
    /// Spread replicas across values of this node label (usually `zone`).
    #[serde(default, skip_serializing_if = "Option::is_none", alias = "spreadBy")]
    pub spread_by: Option<String>,
    /// At most this many of this service's tasks on one node.
    #[serde(default, skip_serializing_if = "Option::is_none", alias = "maxPerNode")]
    pub max_per_node: Option<u32>,
    /// Network rules (the Deployment form's `affinityRules`).
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        alias = "affinityRules"
    )]
    pub affinity: Vec<AffinityRule>,
    /// Anti-affinity rules (the Deployment form's `antiAffinityRules`).
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        alias = "antiAffinityRules"
    )]
    pub anti_affinity: Vec<AntiAffinityRule>,
}

/// Weights of the score terms: `score = cpu*S_cpu + memory*S_mem + network*S_net`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScoringWeights {
    #[serde(default)]
    pub cpu: f64,
    #[serde(default)]
    pub memory: f64,
    #[serde(default)]
    pub network: f64,
}

impl Default for ScoringWeights {
    /// Defaults: 0.3 / 0.3 / 0.4.
    fn default() -> Self {
        ScoringWeights {
            cpu: 0.3,
            memory: 0.3,
            network: 0.4,
        }
    }
}

/// A network affinity rule: where a task wants to be relative to the network.
///
/// Written as an object with a `type` (`latency`, `bandwidth`, `loss`, `zone`) and that type's
/// fields; the Deployment form's camelCase names (`maxLatency: 5ms`, `minBandwidth: 100Mbps`) are accepted.
/// A field that does not belong to the rule's type is an error naming the type's fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    tag = "type",
    rename_all = "lowercase",
    try_from = "forms::MapOnly<kinds::RawAffinityRule>"
)]
pub enum AffinityRule {
    /// Within `max_latency_ms` RTT of at least one running task of service `target`. A target
    /// that runs nowhere yet does not constrain; an unmeasured pair does not meet the rule
    /// (orion-netscore's `network_rules` filter enforces it). With `required: false` it is a
    /// preference instead, scored by `network_preferences`.
    Latency {
        target: String,
        max_latency_ms: f64,
        #[serde(skip_serializing_if = "is_true")]
        required: bool,
    },
    /// At least `min_bandwidth_mbps` measured to a node running the target (without one: to
    /// a node of each running dependency, see [`ServiceSpec::dependencies`]).
    Bandwidth {
        #[serde(skip_serializing_if = "Option::is_none")]
        target: Option<String>,
        min_bandwidth_mbps: f64,
        #[serde(skip_serializing_if = "is_true")]
        required: bool,
    },
    /// Packet loss at most `max_loss` (0.0-1.0) to a node running the target (without one: to
    /// a node of each running dependency).
    Loss {
        #[serde(skip_serializing_if = "Option::is_none")]
        target: Option<String>,
        max_loss: f64,
        #[serde(skip_serializing_if = "is_true")]
        required: bool,
    },
    /// Prefer (or require, with `required`) one of these zones.
    Zone { zones: Vec<String>, required: bool },
}

/// An anti-affinity rule: what a task must stay away from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    tag = "type",
    rename_all = "kebab-case",
    try_from = "forms::MapOnly<kinds::RawAntiAffinityRule>"
)]
pub enum AntiAffinityRule {
    /// Avoid nodes whose zone is or starts with `avoid` (`network-zone`, `edge-zones`).
    NetworkZone { avoid: String },
    /// Avoid nodes that already run a task of `service`.
    Service { service: String },
}

/// The most services a spec may name in `depends_on`.
pub const MAX_DEPENDENCIES: usize = 64;
/// The most rules a spec may give in `scheduling.affinity` and in `scheduling.anti_affinity`
/// (each).
pub const MAX_RULES: usize = 32;

impl ServiceSpec {
    /// The services this one depends on: `depends_on`, then the targets of its network rules,
    /// each once, in that order.
    pub fn dependencies(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        let targets = self.scheduling.affinity.iter().filter_map(|r| match r {
            AffinityRule::Latency { target, .. } => Some(target.as_str()),
            AffinityRule::Bandwidth { target, .. } | AffinityRule::Loss { target, .. } => {
                target.as_deref()
            }
            AffinityRule::Zone { .. } => None,
        });
        for d in self.depends_on.iter().map(String::as_str).chain(targets) {
            if !out.contains(&d) {
                out.push(d);
            }
        }
        out
    }

    /// A minimal spec: `replicas` copies of `image`, defaults elsewhere. Not validated.
    pub fn new(name: impl Into<String>, image: impl Into<String>, replicas: u32) -> Self {
        ServiceSpec {
            name: name.into(),
            image: image.into(),
            replicas,
            command: Vec::new(),
            entrypoint: None,
            env: Vec::new(),
            secrets: Vec::new(),
            ports: Vec::new(),
            volumes: Vec::new(),
            network: None,
            network_mode: NetworkMode::default(),
            dns: Vec::new(),
            extra_hosts: Vec::new(),
            restart_policy: RestartPolicy::default(),
            reschedule_after: DEFAULT_RESCHEDULE_AFTER,
            resources: ResourceSpec::default(),
            health_check: None,
            scale_policy: None,
            update_strategy: UpdateStrategy::default(),
            scheduling: Scheduling::default(),
            depends_on: Vec::new(),
            labels: BTreeMap::new(),
            stop_after_disconnect: 0,
        }
    }
}
