//! Containers on one node.
//!
//! A [`Runtime`] turns a [`ContainerSpec`] into a running container and reports on it. Orion, not
//! the engine, decides about restarts: implementations keep the engine's own restart policy off.
//! Every container Orion creates carries the labels in [`labels`], so an agent that restarts can
//! find (`list`) and adopt what is still running instead of starting a second copy.
//!
//! Implementations: Docker, containerd and plain processes in `orion-runtime`; [`FakeRuntime`]
//! (feature `testing`) for unit tests and simulations. All pass `orion_core::testing::runtime`.

use std::collections::BTreeMap;
use std::pin::Pin;
use std::time::Duration;

use async_trait::async_trait;
use futures::Stream;
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::model::PublishedPort;
use crate::model::spec::{NetworkMode, Protocol};

#[cfg(any(test, feature = "testing"))]
mod fake;

#[cfg(any(test, feature = "testing"))]
pub use fake::{FakeRuntime, FaultPlan};

/// Label keys every Orion container carries.
pub mod labels {
    /// Always `"true"` on containers Orion created.
    pub const MANAGED: &str = "io.orion.managed";
    /// The task id.
    pub const TASK: &str = "io.orion.task";
    /// The service name.
    pub const SERVICE: &str = "io.orion.service";
    /// The node id.
    pub const NODE: &str = "io.orion.node";
}

/// A runtime's container id.
pub type ContainerId = String;

/// A port to publish. `host_port` 0 asks for a free port, read back in [`ContainerInfo::ports`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortBinding {
    pub container_port: u16,
    pub host_port: u16,
    pub protocol: Protocol,
    /// The host address to bind; Orion's default is `127.0.0.1` in tests, `0.0.0.0` in clusters.
    pub host_ip: String,
}

/// A mount. `source` starting with `/` is a bind mount, otherwise a named volume.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mount {
    pub source: String,
    pub target: String,
    pub read_only: bool,
}

/// Everything needed to create and start one container.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ContainerSpec {
    /// Container name; unique on the node (Orion uses `orion-<task id>`).
    pub name: String,
    /// Image reference (for the process runtime: the program).
    pub image: String,
    /// Command and arguments; empty keeps the image's default.
    pub command: Vec<String>,
    /// Replaces the image's entrypoint, and then its default command too (Docker's rule); `None`
    /// keeps both. Runtimes that cannot replace it refuse the spec.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    /// Environment, `KEY=value`.
    pub env: Vec<String>,
    /// Working directory; empty keeps the image's default.
    pub workdir: String,
    pub ports: Vec<PortBinding>,
    pub mounts: Vec<Mount>,
    /// CPU limit in millicores (0 = unlimited).
    pub cpu_millicores: u64,
    /// CPU reserved for it in millicores: its weight against other containers when the CPU is
    /// contended (CPU shares, `cpu.weight`), whatever the limit. 0 keeps the runtime's default
    /// weight.
    #[serde(default)]
    pub cpu_reserved_millicores: u64,
    /// Memory limit in bytes (0 = unlimited).
    pub memory_bytes: u64,
    pub network_mode: NetworkMode,
    /// A named network to join (Docker).
    pub network: Option<String>,
    pub dns: Vec<String>,
    /// DNS search domains for the container (`orion`, so `web` resolves as `web.orion.`).
    #[serde(default)]
    pub dns_search: Vec<String>,
    /// `name:ip` entries for `/etc/hosts`.
    pub extra_hosts: Vec<String>,
    /// Labels; [`labels`] keys are set by the agent.
    pub labels: BTreeMap<String, String>,
    /// Secrets the agent opened for this container, each for `env` or a file (mode 0400, on
    /// tmpfs where the runtime can). Never serialized (a runtime that records specs keeps no
    /// plaintext) and redacted in `Debug`. A runtime that cannot deliver one the way asked
    /// answers [`crate::Error::Unsupported`] naming it; it never drops one.
    #[serde(skip)]
    pub secrets: Vec<crate::secrets::SecretDelivery>,
}

impl ContainerSpec {
    /// The CPU shares (cgroup v1, Docker's `CpuShares`) for its reservation: 1024 per core, as
    /// Kubernetes converts a request, bounded to 2..=262144; `None` when nothing is reserved.
    pub fn cpu_shares(&self) -> Option<u64> {
        (self.cpu_reserved_millicores > 0)
            .then(|| (self.cpu_reserved_millicores.saturating_mul(1024) / 1000).clamp(2, 262_144))
    }

    /// The cgroup v2 `cpu.weight` (1..=10000) for its reservation, mapped from the shares as
    /// the kernel's and Kubernetes' conversion does; `None` when nothing is reserved.
    pub fn cpu_weight(&self) -> Option<u64> {
        self.cpu_shares()
            .map(|shares| 1 + (shares - 2) * 9_999 / 262_142)
    }
}

/// Where a container is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContainerStatus {
    /// Created, not started.
    Created,
    Running,
    /// Exited, with its code and whether the kernel's OOM killer ended it.
    Exited {
        code: i64,
        oom_killed: bool,
    },
    /// The runtime cannot tell (for example, mid-removal).
    Unknown(String),
}

impl ContainerStatus {
    /// True while running.
    pub fn is_running(&self) -> bool {
        matches!(self, ContainerStatus::Running)
    }
}

/// A container as the runtime sees it now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContainerInfo {
    pub id: ContainerId,
    pub name: String,
    pub image: String,
    pub status: ContainerStatus,
    /// Ports as actually published.
    pub ports: Vec<PublishedPort>,
    pub labels: BTreeMap<String, String>,
    /// Process id of the main process, when known.
    pub pid: Option<u32>,
}

/// Options for [`Runtime::logs`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LogOptions {
    /// Keep streaming new lines until the container exits.
    pub follow: bool,
    /// Only the last `n` lines of what exists (None = all).
    pub tail: Option<usize>,
    /// Only lines written at or after this time, in seconds since the Unix epoch (None = all).
    /// A runtime that does not record when lines were written answers
    /// [`crate::Error::Unsupported`]; it never ignores it.
    pub since: Option<i64>,
    /// Starts each line with the time it was written (RFC 3339 with nanoseconds, then a
    /// space), as `docker logs --timestamps` does. Same rule as `since` for runtimes that do
    /// not record times.
    pub timestamps: bool,
}

impl LogOptions {
    /// [`crate::Error::Unsupported`] from `backend` when `since` or `timestamps` is asked
    /// for: what a runtime that does not record when lines were written answers.
    pub fn refuse_times(&self, backend: &'static str) -> Result<()> {
        if self.since.is_none() && !self.timestamps {
            return Ok(());
        }
        Err(crate::Error::Unsupported {
            backend,
            feature: "log times (since, timestamps)".to_owned(),
            hint: "this runtime does not record when each line was written; use tail".to_owned(),
        })
    }
}

/// Which stream a log line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogStream {
    Stdout,
    Stderr,
}

/// One line of output (without its trailing newline).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    pub stream: LogStream,
    pub line: String,
}

/// A stream of log lines; it ends when the logs end (or, with `follow`, when the container exits).
pub type LogStreamBox = Pin<Box<dyn Stream<Item = Result<LogLine>> + Send + 'static>>;

/// The ids of containers as they exit ([`Runtime::watch_exits`]). An `Err` item, or the end,
/// means the feed stopped: subscribe again.
pub type ExitStream = Pin<Box<dyn Stream<Item = Result<ContainerId>> + Send + 'static>>;

/// Resource usage at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct ContainerStats {
    /// CPU use in percent of one core (200.0 = two cores busy).
    pub cpu_percent: f64,
    pub memory_bytes: u64,
    /// The memory limit, if any.
    pub memory_limit_bytes: Option<u64>,
}

/// Each of an exec's stdout and stderr is cut at this many bytes ([`ExecOutput::truncated`]).
pub const MAX_EXEC_OUTPUT: usize = 1024 * 1024;

/// The result of [`Runtime::exec`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecOutput {
    pub exit_code: i64,
    pub stdout: String,
    pub stderr: String,
    /// True when stdout or stderr was cut at [`MAX_EXEC_OUTPUT`] bytes.
    #[serde(default)]
    pub truncated: bool,
}

/// Appends `chunk` to `buf` up to [`MAX_EXEC_OUTPUT`] bytes in all; true when some was dropped.
pub fn append_bounded(buf: &mut Vec<u8>, chunk: &[u8]) -> bool {
    let room = MAX_EXEC_OUTPUT.saturating_sub(buf.len());
    buf.extend_from_slice(&chunk[..chunk.len().min(room)]);
    chunk.len() > room
}

/// Runs containers on one node.
///
/// Contract for every implementation:
/// - `create_and_start` returns only once the container runs (or has already exited); on error
///   nothing is left behind. An absent image that cannot be obtained is
///   [`crate::Error::ImageUnavailable`] naming it; a feature the backend lacks is
///   [`crate::Error::Unsupported`], never silently ignored.
/// - Restarts are never done by the backend; `stop` on a stopped container succeeds;
///   `remove` of an unknown id is [`crate::Error::NotFound`].
/// - `list` finds containers by label even after the `Runtime` value was dropped and recreated.
#[async_trait]
pub trait Runtime: Send + Sync + 'static {
    /// A short name: `docker`, `containerd`, `process`, `fake`.
    fn name(&self) -> &'static str;

    /// Makes sure `image` is present, obtaining it if possible.
    async fn ensure_image(&self, image: &str) -> Result<()>;

    /// Creates and starts a container; returns it with its real ports.
    async fn create_and_start(&self, spec: &ContainerSpec) -> Result<ContainerInfo>;

    /// Asks the container to stop, waits up to `grace`, then kills it.
    async fn stop(&self, id: &str, grace: Duration) -> Result<()>;

    /// Removes a stopped container (a running one is killed first).
    async fn remove(&self, id: &str) -> Result<()>;

    /// The container's current state.
    async fn inspect(&self, id: &str) -> Result<ContainerInfo>;

    /// Every container (running or not) whose labels include all of `labels`.
    async fn list(&self, labels: &BTreeMap<String, String>) -> Result<Vec<ContainerInfo>>;

    /// From now on, the id of each container whose labels include all of `labels` as it exits
    /// (however it ended: by itself, killed, out of memory). A hint to look again, not a record:
    /// a feed may drop events while it reconnects, so [`Runtime::list`] stays the truth. The
    /// default is [`crate::Error::Unsupported`]: callers then find exits by polling `list`.
    async fn watch_exits(&self, labels: &BTreeMap<String, String>) -> Result<ExitStream> {
        let _ = labels;
        Err(crate::Error::Unsupported {
            backend: self.name(),
            feature: "exit events".to_owned(),
            hint: "exits are found by listing containers".to_owned(),
        })
    }

    /// The container's output.
    async fn logs(&self, id: &str, options: LogOptions) -> Result<LogStreamBox>;

    /// Current CPU and memory use: one call is one sample (a backend may take a short interval
    /// to measure CPU). A container that is not running reports no CPU use; an unknown id is
    /// [`crate::Error::NotFound`]. The autoscaler (`orion_core::autoscale`) divides these by the
    /// task's requests, at most once per task per sample interval.
    async fn stats(&self, id: &str) -> Result<ContainerStats>;

    /// Runs `command` inside the running container and waits for it. Each of stdout and stderr
    /// is kept up to [`MAX_EXEC_OUTPUT`] bytes (the rest is dropped, and
    /// [`ExecOutput::truncated`] set), so a chatty command cannot exhaust the node's memory.
    async fn exec(&self, id: &str, command: &[String]) -> Result<ExecOutput>;
}

/// Default grace period for `stop`, as Docker's.
pub const DEFAULT_STOP_GRACE: Duration = Duration::from_secs(10);

#[cfg(test)]
mod cpu_weight_tests {
    use super::ContainerSpec;

    fn reserving(millicores: u64) -> ContainerSpec {
        ContainerSpec {
            cpu_reserved_millicores: millicores,
            ..ContainerSpec::default()
        }
    }

    #[test]
    fn shares_and_weight_follow_the_reservation_within_the_kernels_bounds() {
        assert_eq!(reserving(0).cpu_shares(), None);
        assert_eq!(reserving(0).cpu_weight(), None);
        assert_eq!(reserving(1000).cpu_shares(), Some(1024));
        assert_eq!(reserving(1000).cpu_weight(), Some(39));
        assert_eq!(reserving(1).cpu_shares(), Some(2));
        assert_eq!(reserving(1).cpu_weight(), Some(1));
        assert_eq!(reserving(u64::MAX).cpu_shares(), Some(262_144));
        assert_eq!(reserving(u64::MAX).cpu_weight(), Some(10_000));
        assert!(reserving(500).cpu_weight() < reserving(2000).cpu_weight());
    }
}
