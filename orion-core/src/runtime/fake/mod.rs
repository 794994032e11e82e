//! `FakeRuntime`: containers in memory, with fault knobs ([`FaultPlan`]). For unit tests and
//! simulations only; it honours the whole [`Runtime`] contract without running anything.
//!
//! A container runs until stopped, except a command ending in `-c "echo ...; exit N"` (see
//! `script`): that one prints its lines and exits with `N` at once, as a real shell would.

mod script;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::watch;

use super::{
    ContainerId, ContainerInfo, ContainerSpec, ContainerStats, ContainerStatus, ExecOutput,
    LogLine, LogOptions, LogStream, LogStreamBox, Runtime,
};
use crate::error::{Error, Result, ValidationErrors};
use crate::model::PublishedPort;
use crate::model::spec::Protocol;

/// First port handed out for `host_port: 0`, as Linux's default ephemeral range.
const DYNAMIC_PORTS: std::ops::RangeInclusive<u16> = 32768..=60999;
/// Exit code of a container stopped by `stop` (128 + SIGTERM).
const STOPPED_CODE: i64 = 143;
/// Exit code of a running container removed without a stop (128 + SIGKILL).
const KILLED_CODE: i64 = 137;

/// A crash: the container exits with `exit_code` `after` it started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Crash {
    after: Duration,
    exit_code: i64,
}

/// Faults a [`FakeRuntime`] injects. Build with the methods; the default injects nothing.
#[derive(Debug, Clone, Default)]
pub struct FaultPlan {
    fail_every_start: bool,
    fail_start_images: BTreeSet<String>,
    unknown_images: BTreeSet<String>,
    crash_all: Option<Crash>,
    crash_images: BTreeMap<String, Crash>,
    start_delay: Option<Duration>,
    exec_exit_codes: BTreeMap<String, i64>,
    exec_delay: Option<Duration>,
}

impl FaultPlan {
    /// No faults.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every `create_and_start` fails (nothing is left behind).
    pub fn fail_every_start(mut self) -> Self {
        self.fail_every_start = true;
        self
    }

    /// `create_and_start` of `image` fails.
    pub fn fail_start_for(mut self, image: impl Into<String>) -> Self {
        self.fail_start_images.insert(image.into());
        self
    }

    /// `image` is absent and cannot be obtained: [`Error::ImageUnavailable`].
    pub fn unknown_image(mut self, image: impl Into<String>) -> Self {
        self.unknown_images.insert(image.into());
        self
    }

    /// Every container exits with `exit_code` `after` it started.
    pub fn crash_after(mut self, after: Duration, exit_code: i64) -> Self {
        self.crash_all = Some(Crash { after, exit_code });
        self
    }

    /// Containers of `image` exit with `exit_code` `after` they started (overrides
    /// [`FaultPlan::crash_after`] for that image).
    pub fn crash_image_after(
        mut self,
        image: impl Into<String>,
        after: Duration,
        exit_code: i64,
    ) -> Self {
        self.crash_images
            .insert(image.into(), Crash { after, exit_code });
        self
    }

    /// `create_and_start` takes `delay` before it returns.
    pub fn slow_start(mut self, delay: Duration) -> Self {
        self.start_delay = Some(delay);
        self
    }

    /// Every `exec` takes `delay` before it returns (a slow or hanging health check).
    pub fn slow_exec(mut self, delay: Duration) -> Self {
        self.exec_delay = Some(delay);
        self
    }

    /// `exec` of a command whose program (first word) is `program` exits with `exit_code`
    /// (others exit 0).
    pub fn exec_exit_code(mut self, program: impl Into<String>, exit_code: i64) -> Self {
        self.exec_exit_codes.insert(program.into(), exit_code);
        self
    }

    fn crash_for(&self, image: &str) -> Option<Crash> {
        self.crash_images.get(image).copied().or(self.crash_all)
    }
}

/// An in-memory runtime for unit tests and simulation only.
///
/// Clones share one state, like a real engine that outlives the `Runtime` value: drop one and
/// `list` on another still finds its containers. Besides the [`Runtime`] methods it has knobs:
/// [`FakeRuntime::exit`], [`FakeRuntime::write_log`], [`FakeRuntime::set_stats`],
/// [`FakeRuntime::set_faults`].
#[derive(Debug, Clone, Default)]
pub struct FakeRuntime {
    shared: Arc<Mutex<State>>,
    exec_load: Arc<ExecLoad>,
}

/// `exec` calls in progress now, and the most at once so far.
#[derive(Debug, Default)]
struct ExecLoad {
    now: std::sync::atomic::AtomicUsize,
    peak: std::sync::atomic::AtomicUsize,
}

/// Counts one `exec` in progress while alive.
struct ExecGuard<'a>(&'a ExecLoad);

impl<'a> ExecGuard<'a> {
    fn enter(load: &'a ExecLoad) -> Self {
        use std::sync::atomic::Ordering::SeqCst;
        let now = load.now.fetch_add(1, SeqCst) + 1;
        load.peak.fetch_max(now, SeqCst);
        ExecGuard(load)
    }
}

impl Drop for ExecGuard<'_> {
    fn drop(&mut self) {
        self.0.now.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

#[derive(Debug, Default)]
struct State {
    faults: FaultPlan,
    images: BTreeSet<String>,
    containers: BTreeMap<ContainerId, Container>,
    /// `(host port, protocol)` held by running containers.
    ports: HashMap<(u16, Protocol), ContainerId>,
    next_port: u16,
    created: u64,
}

#[derive(Debug)]
struct Container {
    info: ContainerInfo,
    memory_limit: u64,
    logs: Vec<LogLine>,
    stats: Option<ContainerStats>,
    /// Bumped on every new log line and on exit; followers wait on it.
    changed: watch::Sender<u64>,
}

impl Container {
    fn bump(&self) {
        self.changed.send_modify(|v| *v += 1);
    }
}

impl State {
    fn get(&self, id: &str) -> Result<&Container> {
        self.containers
            .get(id)
            .ok_or_else(|| Error::not_found("container", id))
    }

    fn get_mut(&mut self, id: &str) -> Result<&mut Container> {
        self.containers
            .get_mut(id)
            .ok_or_else(|| Error::not_found("container", id))
    }

    /// Marks a running container exited and frees its ports; no-op otherwise.
    fn exit(&mut self, id: &str, code: i64) -> Result<()> {
        let c = self.get_mut(id)?;
        if c.info.status.is_running() {
            c.info.status = ContainerStatus::Exited {
                code,
                oom_killed: false,
            };
            c.info.pid = None;
            c.bump();
            self.ports.retain(|_, owner| owner != id);
        }
        Ok(())
    }

    fn free_port(&mut self, protocol: Protocol) -> Option<u16> {
        let span = u32::from(DYNAMIC_PORTS.end() - DYNAMIC_PORTS.start()) + 1;
        for _ in 0..span {
            let port = DYNAMIC_PORTS.start() + self.next_port;
            self.next_port = ((u32::from(self.next_port) + 1) % span) as u16;
            if !self.ports.contains_key(&(port, protocol)) {
                return Some(port);
            }
        }
        None
    }
}

impl FakeRuntime {
    /// An empty runtime with no faults.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty runtime with `faults`.
    pub fn with_faults(faults: FaultPlan) -> Self {
        let fake = Self::new();
        fake.set_faults(faults);
        fake
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Every update is completed under the lock before anything can panic.
        self.shared.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The most `exec` calls that were in progress at once so far.
    pub fn exec_peak(&self) -> usize {
        self.exec_load
            .peak
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Replaces the fault plan (for containers started from now on).
    pub fn set_faults(&self, faults: FaultPlan) {
        self.lock().faults = faults;
    }

    /// Simulates the container's main process exiting with `code`. A no-op if it is not running;
    /// [`Error::NotFound`] for an unknown id.
    pub fn exit(&self, id: &str, code: i64) -> Result<()> {
        self.lock().exit(id, code)
    }

    /// Appends a line to the container's output (seen by `logs`, including followers).
    pub fn write_log(&self, id: &str, stream: LogStream, line: impl Into<String>) -> Result<()> {
        let mut st = self.lock();
        let c = st.get_mut(id)?;
        c.logs.push(LogLine {
            stream,
            line: line.into(),
        });
        c.bump();
        Ok(())
    }

    /// Sets what `stats` reports for the container while it runs.
    pub fn set_stats(&self, id: &str, stats: ContainerStats) -> Result<()> {
        self.lock().get_mut(id)?.stats = Some(stats);
        Ok(())
    }

    fn arm_crash(&self, id: ContainerId, crash: Crash) {
        let weak: Weak<Mutex<State>> = Arc::downgrade(&self.shared);
        tokio::spawn(async move {
            tokio::time::sleep(crash.after).await;
            if let Some(shared) = weak.upgrade() {
                let mut st = shared.lock().unwrap_or_else(|e| e.into_inner());
                // The container may have been removed meanwhile: nothing to crash then.
                let _ = st.exit(&id, crash.exit_code);
            }
        });
    }
}

fn invalid(path: &str, value: impl std::fmt::Display, expected: &str) -> Error {
    let mut errs = ValidationErrors::default();
    errs.push(path, value, expected);
    errs.into()
}

#[async_trait]
impl Runtime for FakeRuntime {
    fn name(&self) -> &'static str {
        "fake"
    }

    async fn ensure_image(&self, image: &str) -> Result<()> {
        let mut st = self.lock();
        if st.faults.unknown_images.contains(image) {
            return Err(Error::ImageUnavailable {
                image: image.to_owned(),
                reason: "the fake runtime was told this image does not exist".to_owned(),
            });
        }
        st.images.insert(image.to_owned());
        Ok(())
    }

    async fn create_and_start(&self, spec: &ContainerSpec) -> Result<ContainerInfo> {
        if spec.image.is_empty() {
            return Err(invalid("image", "\"\"", "an image reference"));
        }
        self.ensure_image(&spec.image).await?;
        let delay = self.lock().faults.start_delay;
        if let Some(delay) = delay {
            tokio::time::sleep(delay).await;
        }
        let mut st = self.lock();
        if st.faults.fail_every_start || st.faults.fail_start_images.contains(&spec.image) {
            return Err(Error::backend(
                format!("fake: starting container {:?}", spec.name),
                "injected start failure (FaultPlan)",
            ));
        }
        st.created += 1;
        let n = st.created;
        let name = if spec.name.is_empty() {
            format!("fake-{n}")
        } else {
            spec.name.clone()
        };
        if let Some(other) = st.containers.values().find(|c| c.info.name == name) {
            return Err(Error::Conflict(format!(
                "container name {name:?} is already in use by {}; remove it or choose another name",
                other.info.id
            )));
        }
        let mut ports = Vec::with_capacity(spec.ports.len());
        let mut taken = HashSet::new();
        for (i, p) in spec.ports.iter().enumerate() {
            let key = (p.host_port, p.protocol);
            if p.host_port != 0 && (st.ports.contains_key(&key) || !taken.insert(key)) {
                return Err(Error::Conflict(format!(
                    "ports[{i}]: host port {}/{} is already allocated; choose another host_port, or 0 for a free one",
                    p.host_port,
                    p.protocol.as_str()
                )));
            }
            ports.push(p);
        }
        let mut published = Vec::with_capacity(ports.len());
        for p in ports {
            let host_port = if p.host_port == 0 {
                loop {
                    let Some(port) = st.free_port(p.protocol) else {
                        return Err(Error::Unavailable(
                            "fake: no free dynamic host port left".to_owned(),
                        ));
                    };
                    if taken.insert((port, p.protocol)) {
                        break port;
                    }
                }
            } else {
                p.host_port
            };
            published.push(PublishedPort {
                container_port: p.container_port,
                host_port,
                protocol: p.protocol.as_str().into(),
                host_ip: if p.host_ip.is_empty() {
                    "0.0.0.0".into()
                } else {
                    p.host_ip.as_str().into()
                },
            });
        }
        let id = container_id(n);
        for key in taken {
            st.ports.insert(key, id.clone());
        }
        let info = ContainerInfo {
            id: id.clone(),
            name,
            image: spec.image.clone(),
            status: ContainerStatus::Running,
            ports: published,
            labels: spec.labels.clone(),
            pid: Some(4000 + (n % 60000) as u32),
        };
        st.containers.insert(
            id.clone(),
            Container {
                info: info.clone(),
                memory_limit: spec.memory_bytes,
                logs: Vec::new(),
                stats: None,
                changed: watch::channel(0).0,
            },
        );
        let info = match script::parse(&spec.command) {
            Some(script) => {
                let c = st.get_mut(&id)?;
                c.logs.extend(script.output);
                st.exit(&id, script.exit_code)?;
                st.get(&id)?.info.clone()
            }
            None => info,
        };
        let crash = st.faults.crash_for(&spec.image);
        drop(st);
        if let Some(crash) = crash {
            self.arm_crash(id, crash);
        }
        Ok(info)
    }

    /// Stops at once (the fake has no process to wait for): exit code 143.
    async fn stop(&self, id: &str, _grace: Duration) -> Result<()> {
        self.lock().exit(id, STOPPED_CODE)
    }

    async fn remove(&self, id: &str) -> Result<()> {
        let mut st = self.lock();
        st.exit(id, KILLED_CODE)?;
        st.containers.remove(id);
        Ok(())
    }

    async fn inspect(&self, id: &str) -> Result<ContainerInfo> {
        Ok(self.lock().get(id)?.info.clone())
    }

    async fn list(&self, labels: &BTreeMap<String, String>) -> Result<Vec<ContainerInfo>> {
        let st = self.lock();
        let mut out: Vec<ContainerInfo> = st
            .containers
            .values()
            .filter(|c| labels.iter().all(|(k, v)| c.info.labels.get(k) == Some(v)))
            .map(|c| c.info.clone())
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    async fn logs(&self, id: &str, options: LogOptions) -> Result<LogStreamBox> {
        let (start, rx) = {
            let st = self.lock();
            let c = st.get(id)?;
            options.refuse_times(self.name())?;
            let len = c.logs.len();
            let start = options.tail.map_or(0, |t| len.saturating_sub(t));
            (start, c.changed.subscribe())
        };
        let follower = Follower {
            shared: Arc::clone(&self.shared),
            id: id.to_owned(),
            cursor: start,
            follow: options.follow,
            rx,
        };
        Ok(Box::pin(futures::stream::unfold(follower, Follower::next)))
    }

    async fn stats(&self, id: &str) -> Result<ContainerStats> {
        let st = self.lock();
        let c = st.get(id)?;
        let limit = (c.memory_limit > 0).then_some(c.memory_limit);
        if !c.info.status.is_running() {
            return Ok(ContainerStats {
                memory_limit_bytes: limit,
                ..ContainerStats::default()
            });
        }
        Ok(c.stats.unwrap_or(ContainerStats {
            cpu_percent: 0.5,
            memory_bytes: limit.map_or(8 << 20, |l| l.min(8 << 20)),
            memory_limit_bytes: limit,
        }))
    }

    /// Exit code from [`FaultPlan::exec_exit_code`]; otherwise a recognised script (`sh -c
    /// "echo ...; exit N"`) gives its outputs and code; otherwise 0, and `echo` prints its
    /// arguments.
    async fn exec(&self, id: &str, command: &[String]) -> Result<ExecOutput> {
        let _load = ExecGuard::enter(&self.exec_load);
        let delay = self.lock().faults.exec_delay;
        if let Some(delay) = delay {
            tokio::time::sleep(delay).await;
        }
        let st = self.lock();
        let c = st.get(id)?;
        let Some(program) = command.first() else {
            return Err(invalid("command", "[]", "a program and its arguments"));
        };
        if !c.info.status.is_running() {
            return Err(Error::Conflict(format!(
                "container {id} is not running; exec needs a running container"
            )));
        }
        let fault = st.faults.exec_exit_codes.get(program).copied();
        if let (None, Some(script)) = (fault, script::parse(command)) {
            return Ok(ExecOutput {
                exit_code: script.exit_code,
                stdout: script.text(LogStream::Stdout),
                stderr: script.text(LogStream::Stderr),
                truncated: false,
            });
        }
        let exit_code = fault.unwrap_or(0);
        let stdout = if program == "echo" {
            format!("{}\n", command[1..].join(" "))
        } else {
            String::new()
        };
        Ok(ExecOutput {
            exit_code,
            stdout,
            stderr: String::new(),
            truncated: false,
        })
    }
}

/// A 64-hex-digit id, like an engine's, distinct for each `n`.
fn container_id(n: u64) -> String {
    let mut x = n.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0x5851_f42d_4c95_7f2d;
    let mut id = String::with_capacity(64);
    for _ in 0..4 {
        x ^= x >> 31;
        x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
        id.push_str(&format!("{x:016x}"));
    }
    id
}

/// State of a `logs` stream.
struct Follower {
    shared: Arc<Mutex<State>>,
    id: String,
    cursor: usize,
    follow: bool,
    rx: watch::Receiver<u64>,
}

impl Follower {
    async fn next(mut self) -> Option<(Result<LogLine>, Self)> {
        loop {
            {
                let st = self.shared.lock().unwrap_or_else(|e| e.into_inner());
                let c = st.containers.get(&self.id)?;
                if let Some(line) = c.logs.get(self.cursor) {
                    let line = line.clone();
                    drop(st);
                    self.cursor += 1;
                    return Some((Ok(line), self));
                }
                if !self.follow || !c.info.status.is_running() {
                    return None;
                }
                self.rx.mark_unchanged();
            }
            // Sender dropped means the container was removed: the stream ends.
            self.rx.changed().await.ok()?;
        }
    }
}

#[cfg(test)]
mod tests;
