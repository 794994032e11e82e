//! `ProcessRuntime`: host programs as supervised children, like Nomad's `raw_exec`.
//!
//! - `image` is the program's path and `command` its arguments; `env` is added to the agent's
//!   environment; `workdir` defaults to the process's own state directory.
//! - Each program runs under a tiny `/bin/sh` supervisor ([`SUPERVISOR`]) in its own process
//!   group. The supervisor records the exit code in the state directory, so the code survives an
//!   agent restart. If the supervisor itself is killed while no Orion process is its parent, the
//!   code is lost and `inspect` reports `Exited { code: -1 }`.
//! - Every process's record (pid, start time, labels, spec) is JSON in `<state_dir>/<id>/`; a new
//!   `ProcessRuntime` over the same directory lists and adopts them. Liveness is "pid exists, is
//!   not a zombie, and its `/proc` start time matches the record", so a reused pid is never taken
//!   for the process.
//! - `stop` sends SIGTERM to every process of the group but the supervisor, waits up to the grace
//!   period for the program to end, then SIGKILLs whatever is left of the group.
//! - Logs are `stdout.log` / `stderr.log` in the state directory (no rotation).
//! - No isolation: the program shares the host's network, filesystem and users. There is no
//!   port mapping: the program binds its host port itself, given in `$PORT` (the first port) and
//!   `$ORION_PORT_<container_port>`; host port 0 makes the runtime choose a port free at start
//!   ([`ports`]). Mounts, network mode `none`, named networks, dns and extra hosts are
//!   `Unsupported`.
//! - CPU and memory limits are enforced through cgroup v2 when the host offers it
//!   ([`LimitSupport`], [`cgroup`]); otherwise the process runs without them and a warning naming
//!   the reason is logged once per task (or, with [`ProcessRuntime::require_resource_limits`],
//!   the spec is `Unsupported`).
//! - `exec` runs the command on the host, in the process's working directory, with its env; it
//!   is killed when the caller stops waiting (a health check's timeout).

pub mod cgroup;
mod control;
mod logs;
mod ports;
mod procfs;
mod record;
mod secrets;

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use orion_core::model::PublishedPort;
use orion_core::model::spec::NetworkMode;
use orion_core::runtime::{
    ContainerInfo, ContainerSpec, ContainerStats, ContainerStatus, ExecOutput, LogOptions,
    LogStreamBox, Runtime, labels,
};

use crate::error::{Result, RuntimeError};
pub use cgroup::LimitSupport;
use record::{ProcessRecord, STDERR_FILE, STDOUT_FILE};

/// The runtime's short name.
pub const NAME: &str = "process";

/// The supervisor script, run as `sh -c SUPERVISOR orion-supervisor <exit file> <program> <args>`.
/// It first waits for its stdin to close (the runtime closes it once the supervisor is in its
/// cgroup, so the program is born there), then starts the program, waits for it, and writes its
/// exit code to the exit file (via a temp file and `mv`, so readers never see half a number). It
/// sets no traps, so the program starts with default signal dispositions; `stop` signals every
/// process of the group but this one.
pub const SUPERVISOR: &str = r#"exit_file=$1; shift
read -r _ || :
"$@" </dev/null &
wait "$!"
code=$?
echo "$code" > "$exit_file.tmp" && mv -f "$exit_file.tmp" "$exit_file"
exit "$code"
"#;

/// The shell that runs [`SUPERVISOR`].
const SUPERVISOR_SHELL: &str = "/bin/sh";
/// How often `stop` checks whether the process group has ended.
const STOP_POLL: Duration = Duration::from_millis(20);
/// How long `stop` waits for the group to die after SIGKILL.
const KILL_WAIT: Duration = Duration::from_secs(5);
/// The interval over which `stats` measures CPU use.
const STATS_INTERVAL: Duration = Duration::from_millis(250);
/// How long `create_and_start` waits for the supervisor to have forked the program.
const FORK_WAIT: Duration = Duration::from_secs(2);
/// Tasks remembered as already warned about unenforced limits (then the memory starts afresh).
const MAX_WARNED: usize = 10_000;

/// Supervised host processes, with their state in one directory.
#[derive(Debug)]
pub struct ProcessRuntime {
    state_dir: PathBuf,
    limits: LimitSupport,
    require_limits: bool,
    /// Tasks (or names) already warned about limits that are not enforced.
    warned: Mutex<HashSet<String>>,
    counter: AtomicU64,
    /// Serializes the name check and the record write of concurrent starts.
    create_lock: tokio::sync::Mutex<()>,
}

impl ProcessRuntime {
    /// A runtime keeping its state in `state_dir` (created if absent). Processes recorded there
    /// by an earlier runtime are listed and adopted. Limits go to cgroup v2 under
    /// [`cgroup::DEFAULT_CGROUP_ROOT`] when the host offers it (see [`Self::limit_support`]).
    pub fn new(state_dir: impl Into<PathBuf>) -> Result<Self> {
        let state_dir = state_dir.into();
        std::fs::create_dir_all(&state_dir)
            .map_err(|e| RuntimeError::io(format!("creating {}", state_dir.display()), e))?;
        Ok(Self {
            state_dir,
            limits: LimitSupport::prepare(
                Path::new(cgroup::DEFAULT_CGROUP_ROOT),
                cgroup::DEFAULT_CGROUP_PARENT,
            ),
            require_limits: false,
            warned: Mutex::new(HashSet::new()),
            counter: AtomicU64::new(0),
            create_lock: tokio::sync::Mutex::new(()),
        })
    }

    /// Uses the cgroup v2 hierarchy at `root`, with the runtime's own parent cgroup `parent` (one
    /// directory name) under it, instead of the default. Checked at once: see
    /// [`Self::limit_support`].
    pub fn with_cgroup_root(mut self, root: impl AsRef<Path>, parent: &str) -> Self {
        self.limits = LimitSupport::prepare(root.as_ref(), parent);
        self
    }

    /// With `true`, a spec with CPU or memory limits is `Unsupported` when the limits cannot be
    /// enforced here. Off by default: such a process runs without limits (the scheduler still
    /// reserves them) and a warning naming the reason is logged once per task.
    pub fn require_resource_limits(mut self, require: bool) -> Self {
        self.require_limits = require;
        self
    }

    /// Whether CPU and memory limits are enforced on this host, and if not, why.
    pub fn limit_support(&self) -> &LimitSupport {
        &self.limits
    }

    /// The state directory.
    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    fn dir_of(&self, id: &str) -> Result<PathBuf> {
        // Ids are hex; anything else (a path, "..") is simply not one of ours.
        if id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(RuntimeError::NotFound(id.to_owned()));
        }
        Ok(self.state_dir.join(id))
    }

    fn load(&self, id: &str) -> Result<(PathBuf, ProcessRecord)> {
        let dir = self.dir_of(id)?;
        match ProcessRecord::load(&dir)? {
            Some(record) => Ok((dir, record)),
            None => Err(RuntimeError::NotFound(id.to_owned())),
        }
    }

    fn new_id(&self) -> String {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        format!("{nanos:x}{:x}{n:x}", std::process::id())
    }

    /// Everything in `spec` this runtime cannot honour, as an error naming it.
    fn check_spec(&self, spec: &ContainerSpec) -> Result<()> {
        let unsupported = |feature: &str, hint: &str| RuntimeError::Unsupported {
            backend: NAME,
            feature: feature.to_owned(),
            hint: hint.to_owned(),
        };
        for (i, env) in spec.env.iter().enumerate() {
            if env.split_once('=').is_none_or(|(k, _)| k.is_empty()) {
                return Err(RuntimeError::InvalidSpec {
                    field: format!("env[{i}]"),
                    value: env.clone(),
                    expected: "KEY=value".to_owned(),
                });
            }
        }
        secrets::check(spec)?;
        if spec.entrypoint.is_some() {
            return Err(unsupported(
                "entrypoint",
                "the image is the program to run; put the program in `image` and its arguments in `command`",
            ));
        }
        if !spec.mounts.is_empty() {
            return Err(unsupported(
                "mounts",
                "the program sees the host filesystem; pass paths in env or command instead",
            ));
        }
        if spec.network_mode == NetworkMode::None || spec.network.is_some() {
            return Err(unsupported(
                "network isolation (network mode none, named networks)",
                "processes share the host network; use bridge or host mode",
            ));
        }
        if !spec.dns.is_empty() || !spec.dns_search.is_empty() || !spec.extra_hosts.is_empty() {
            return Err(unsupported(
                "dns, dns search domains and extra_hosts",
                "processes use the host's resolver and /etc/hosts",
            ));
        }
        let wants_limits = spec.cpu_millicores > 0 || spec.memory_bytes > 0;
        if let (true, true, LimitSupport::NotEnforced { reason }) =
            (wants_limits, self.require_limits, &self.limits)
        {
            return Err(unsupported(
                "CPU and memory limits",
                &format!(
                    "{reason}; set cpu_millicores and memory_bytes to 0, or allow running without limits (require_resource_limits(false))"
                ),
            ));
        }
        Ok(())
    }

    /// The parent cgroup for `spec`'s process, or `None` when it has no limits or they cannot
    /// be enforced (then warns, once per task).
    fn cgroup_parent_for(&self, spec: &ContainerSpec) -> Option<PathBuf> {
        if spec.cpu_millicores == 0 && spec.memory_bytes == 0 {
            return None;
        }
        match &self.limits {
            LimitSupport::Enforced { parent } => Some(parent.clone()),
            LimitSupport::NotEnforced { reason } => {
                let task = spec.labels.get(labels::TASK).unwrap_or(&spec.name);
                if first_warning(&self.warned, task) {
                    tracing::warn!(
                        task = %task,
                        cpu_millicores = spec.cpu_millicores,
                        memory_bytes = spec.memory_bytes,
                        reason = %reason,
                        "process runtime: CPU and memory limits are not enforced for this task"
                    );
                }
                None
            }
        }
    }

    async fn ensure_image_inner(&self, image: &str) -> Result<()> {
        let unavailable = |reason: String| RuntimeError::ImageUnavailable {
            image: image.to_owned(),
            reason,
        };
        if !image.starts_with('/') {
            return Err(unavailable(
                "the process runtime needs an absolute program path, such as /usr/bin/python3"
                    .to_owned(),
            ));
        }
        let meta = tokio::fs::metadata(image)
            .await
            .map_err(|e| unavailable(format!("cannot read it: {e}")))?;
        if !meta.is_file() {
            return Err(unavailable("not a regular file".to_owned()));
        }
        use std::os::unix::fs::PermissionsExt;
        if meta.permissions().mode() & 0o111 == 0 {
            return Err(unavailable(format!(
                "not executable (mode {:o})",
                meta.permissions().mode() & 0o7777
            )));
        }
        Ok(())
    }

    async fn create_and_start_inner(&self, spec: &ContainerSpec) -> Result<ContainerInfo> {
        self.check_spec(spec)?;
        self.ensure_image_inner(&spec.image).await?;
        let _guard = self.create_lock.lock().await;
        let records = self.records()?;
        if !spec.name.is_empty()
            && let Some((_, existing)) = records.iter().find(|(_, r)| r.name == spec.name)
        {
            return Err(RuntimeError::Conflict {
                id: existing.id.clone(),
                reason: format!(
                    "the name {:?} is already in use; remove it first",
                    spec.name
                ),
            });
        }
        let taken: HashSet<u16> = records
            .iter()
            .filter(|(dir, r)| Self::status(dir, r).is_running())
            .flat_map(|(_, r)| r.ports.iter().map(|p| p.host_port))
            .collect();
        let mut spec = spec.clone();
        ports::choose_free_ports(&mut spec, &taken)?;
        let id = self.new_id();
        let dir = self.dir_of(&id)?;
        std::fs::create_dir(&dir)
            .map_err(|e| RuntimeError::io(format!("creating {}", dir.display()), e))?;
        let cgroup = match self.cgroup_parent_for(&spec) {
            Some(parent) => {
                match cgroup::create(
                    &parent,
                    &id,
                    spec.cpu_millicores,
                    spec.cpu_weight(),
                    spec.memory_bytes,
                ) {
                    Ok(cgroup) => Some(cgroup),
                    Err(e) => {
                        let _ = std::fs::remove_dir_all(&dir);
                        return Err(e);
                    }
                }
            }
            None => None,
        };
        match self.spawn(&id, &dir, &spec, cgroup.clone()) {
            Ok(record) => {
                wait_for_program(&dir, &record).await;
                Ok(self.info(&dir, &record))
            }
            Err(e) => {
                let _ = std::fs::remove_dir_all(&dir);
                if let Some(cgroup) = &cgroup {
                    cgroup::remove(cgroup);
                }
                Err(e)
            }
        }
    }

    fn spawn(
        &self,
        id: &str,
        dir: &Path,
        spec: &ContainerSpec,
        cgroup: Option<PathBuf>,
    ) -> Result<ProcessRecord> {
        let workdir = if spec.workdir.is_empty() {
            dir.to_path_buf()
        } else {
            PathBuf::from(&spec.workdir)
        };
        let open = |file: &str| {
            std::fs::File::create(dir.join(file))
                .map_err(|e| RuntimeError::io(format!("creating {file} in {}", dir.display()), e))
        };
        let mut command = tokio::process::Command::new(SUPERVISOR_SHELL);
        command
            .arg("-c")
            .arg(SUPERVISOR)
            .arg("orion-supervisor")
            .arg(dir.join(record::EXIT_FILE))
            .arg(&spec.image)
            .args(&spec.command)
            .envs(spec.env.iter().filter_map(|e| e.split_once('=')))
            .envs(ports::port_env(spec))
            .envs(secrets::env(spec))
            .current_dir(&workdir)
            .stdin(Stdio::piped())
            .stdout(open(STDOUT_FILE)?)
            .stderr(open(STDERR_FILE)?)
            .process_group(0)
            .kill_on_drop(false);
        let mut child = command.spawn().map_err(|e| RuntimeError::StartFailed {
            name: spec.name.clone(),
            reason: format!("spawning {} in {}: {e}", spec.image, workdir.display()),
        })?;
        let pid = child.id().ok_or_else(|| RuntimeError::StartFailed {
            name: spec.name.clone(),
            reason: "the supervisor exited before it got a pid".to_owned(),
        })?;
        // Not reaped until the task below waits, so /proc/<pid> exists now.
        let start_ticks = procfs::read_stat(pid).map_or(0, |s| s.start_ticks);
        // The supervisor waits for its stdin to close before it starts the program: join the
        // cgroup first, so that the program is born limited.
        let gate = child.stdin.take();
        if let Some(cgroup) = &cgroup
            && let Err(e) = cgroup::add_process(cgroup, pid)
        {
            let _ = killpg(Pid::from_raw(pid as i32), Signal::SIGKILL);
            return Err(RuntimeError::StartFailed {
                name: spec.name.clone(),
                reason: format!("cannot apply its CPU and memory limits: {e}"),
            });
        }
        drop(gate);
        let exit_dir = dir.to_path_buf();
        tokio::spawn(async move {
            if let Ok(status) = child.wait().await {
                use std::os::unix::process::ExitStatusExt;
                let code = status
                    .code()
                    .map(i64::from)
                    .or_else(|| status.signal().map(|s| 128 + i64::from(s)))
                    .unwrap_or(-1);
                if let Err(e) = record::record_exit_code_once(&exit_dir, code) {
                    tracing::warn!(error = %e, "recording a process exit code");
                }
            }
        });
        let record = ProcessRecord {
            id: id.to_owned(),
            name: if spec.name.is_empty() {
                id.to_owned()
            } else {
                spec.name.clone()
            },
            pid,
            start_ticks,
            started_at_unix: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            workdir,
            ports: spec
                .ports
                .iter()
                .map(|p| PublishedPort {
                    container_port: p.container_port,
                    host_port: p.host_port,
                    protocol: p.protocol.as_str().into(),
                    host_ip: if p.host_ip.is_empty() {
                        "0.0.0.0".into()
                    } else {
                        p.host_ip.as_str().into()
                    },
                })
                .collect(),
            labels: spec.labels.clone(),
            spec: spec.clone(),
            cgroup,
        };
        if let Err(e) = record.save(dir) {
            let _ = killpg(Pid::from_raw(pid as i32), Signal::SIGKILL);
            return Err(e);
        }
        Ok(record)
    }

    /// Every record in the state directory, with its directory. Corrupt ones are logged and
    /// skipped so that one bad file does not hide the rest.
    fn records(&self) -> Result<Vec<(PathBuf, ProcessRecord)>> {
        let entries = std::fs::read_dir(&self.state_dir)
            .map_err(|e| RuntimeError::io(format!("reading {}", self.state_dir.display()), e))?;
        let mut records = Vec::new();
        for entry in entries.flatten() {
            let dir = entry.path();
            match ProcessRecord::load(&dir) {
                Ok(Some(record)) => records.push((dir, record)),
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "skipping a process record"),
            }
        }
        Ok(records)
    }

    fn status(dir: &Path, record: &ProcessRecord) -> ContainerStatus {
        let exited = |code: i64| ContainerStatus::Exited {
            code,
            // The kernel's count lives as long as the cgroup, i.e. until `remove`.
            oom_killed: code != 0 && record.cgroup.as_deref().is_some_and(cgroup::oom_killed),
        };
        if let Some(code) = record::read_exit_code(dir) {
            return exited(code);
        }
        if procfs::is_alive(record.pid, record.start_ticks) {
            return ContainerStatus::Running;
        }
        // It may have written its code between the two checks.
        exited(record::read_exit_code(dir).unwrap_or(-1))
    }

    fn info(&self, dir: &Path, record: &ProcessRecord) -> ContainerInfo {
        let status = Self::status(dir, record);
        ContainerInfo {
            id: record.id.clone(),
            name: record.name.clone(),
            image: record.spec.image.clone(),
            pid: status.is_running().then_some(record.pid),
            status,
            ports: record.ports.clone(),
            labels: record.labels.clone(),
        }
    }
}

/// SIGKILLs the group of every live process recorded under `state_dir` (see
/// `testing::kill_recorded_processes`); returns how many.
#[cfg(feature = "testing")]
pub(crate) fn kill_recorded(state_dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(state_dir) else {
        return 0;
    };
    let mut killed = 0;
    for entry in entries.flatten() {
        if let Ok(Some(record)) = ProcessRecord::load(&entry.path())
            && procfs::is_alive(record.pid, record.start_ticks)
            && killpg(Pid::from_raw(record.pid as i32), Signal::SIGKILL).is_ok()
        {
            killed += 1;
        }
    }
    killed
}

/// True the first time `task` is seen (so its warning is logged once); the memory is bounded
/// by [`MAX_WARNED`].
fn first_warning(warned: &Mutex<HashSet<String>>, task: &str) -> bool {
    let mut warned = warned
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if warned.contains(task) {
        return false;
    }
    if warned.len() >= MAX_WARNED {
        warned.clear();
    }
    warned.insert(task.to_owned())
}

/// Waits (bounded by [`FORK_WAIT`]) until the supervisor has forked the program, or it has all
/// ended already, so that a `stop` right after the start reaches the program.
async fn wait_for_program(dir: &Path, record: &ProcessRecord) {
    let deadline = tokio::time::Instant::now() + FORK_WAIT;
    while tokio::time::Instant::now() < deadline {
        let forked = procfs::group_members(record.pid)
            .iter()
            .any(|(pid, _)| *pid != record.pid);
        if forked
            || record::read_exit_code(dir).is_some()
            || !procfs::is_alive(record.pid, record.start_ticks)
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

#[async_trait]
impl Runtime for ProcessRuntime {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn ensure_image(&self, image: &str) -> orion_core::Result<()> {
        Ok(self.ensure_image_inner(image).await?)
    }

    async fn create_and_start(&self, spec: &ContainerSpec) -> orion_core::Result<ContainerInfo> {
        Ok(self.create_and_start_inner(spec).await?)
    }

    async fn stop(&self, id: &str, grace: Duration) -> orion_core::Result<()> {
        Ok(self.stop_inner(id, grace).await?)
    }

    async fn remove(&self, id: &str) -> orion_core::Result<()> {
        Ok(self.remove_inner(id).await?)
    }

    async fn inspect(&self, id: &str) -> orion_core::Result<ContainerInfo> {
        let (dir, record) = self.load(id)?;
        Ok(self.info(&dir, &record))
    }

    async fn list(
        &self,
        labels: &BTreeMap<String, String>,
    ) -> orion_core::Result<Vec<ContainerInfo>> {
        let mut infos: Vec<ContainerInfo> = self
            .records()?
            .iter()
            .filter(|(_, r)| labels.iter().all(|(k, v)| r.labels.get(k) == Some(v)))
            .map(|(dir, r)| self.info(dir, r))
            .collect();
        infos.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(infos)
    }

    async fn logs(&self, id: &str, options: LogOptions) -> orion_core::Result<LogStreamBox> {
        let (dir, record) = self.load(id)?;
        options.refuse_times(self.name())?;
        let status_dir = dir.clone();
        Ok(logs::stream_logs(&dir, options, move || {
            Self::status(&status_dir, &record).is_running()
        }))
    }

    async fn stats(&self, id: &str) -> orion_core::Result<ContainerStats> {
        Ok(self.stats_inner(id).await?)
    }

    async fn exec(&self, id: &str, command: &[String]) -> orion_core::Result<ExecOutput> {
        Ok(self.exec_inner(id, command).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_unenforced_limits_warning_is_once_per_task() {
        let warned = Mutex::new(HashSet::new());
        assert!(first_warning(&warned, "web-0"));
        assert!(!first_warning(&warned, "web-0"));
        assert!(first_warning(&warned, "web-1"));
    }
}
