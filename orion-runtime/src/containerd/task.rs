//! Containers and their tasks: create+start, stop, remove, inspect, list (exec is in `exec.rs`).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::Duration;

use containerd_client::services::v1::container::Runtime as ContainerRuntimeInfo;
use containerd_client::services::v1::snapshots::PrepareSnapshotRequest;
use containerd_client::services::v1::{
    Container, CreateContainerRequest, CreateTaskRequest, DeleteContainerRequest,
    DeleteTaskRequest, GetContainerRequest, GetRequest, KillRequest, ListContainersRequest,
    ListTasksRequest, StartRequest, WaitRequest,
};
use containerd_client::tonic::Status;
use containerd_client::types::v1::{Process, Status as ProcessStatus};
use orion_core::error::ValidationErrors;
use orion_core::runtime::{ContainerInfo, ContainerSpec, ContainerStatus};
use prost_types::Any;

use super::errors::{is_gone, on};
use super::io::{main_log, main_log_uri};
use super::name_files::NameFiles;
use super::oci::{self, BindMount, SPEC_TYPE_URL, SpecInput};
use super::{ContainerdRuntime, NAME, check_supported, is_valid_identifier, to_hash_map};
use crate::error::{Result, RuntimeError};

const SIGTERM: u32 = 15;
const SIGKILL: u32 = 9;
/// How long a SIGKILLed task may take to be reaped before `stop` gives up.
const KILL_WAIT: Duration = Duration::from_secs(10);

/// True for a task that has a process to signal (created, running or paused).
pub(crate) fn process_is_live(process: &Process) -> bool {
    matches!(
        ProcessStatus::try_from(process.status),
        Ok(ProcessStatus::Created
            | ProcessStatus::Running
            | ProcessStatus::Paused
            | ProcessStatus::Pausing)
    )
}

fn status_of(process: Option<&Process>) -> ContainerStatus {
    let Some(p) = process else {
        return ContainerStatus::Unknown(
            "the container has no task (containerd restarted, or it is being removed)".to_string(),
        );
    };
    match ProcessStatus::try_from(p.status) {
        Ok(ProcessStatus::Created) => ContainerStatus::Created,
        Ok(ProcessStatus::Running | ProcessStatus::Paused | ProcessStatus::Pausing) => {
            ContainerStatus::Running
        }
        Ok(ProcessStatus::Stopped) => ContainerStatus::Exited {
            code: i64::from(p.exit_status),
            oom_killed: false,
        },
        _ => ContainerStatus::Unknown(format!("task status {}", p.status)),
    }
}

fn info_of(container: Container, process: Option<&Process>) -> ContainerInfo {
    let status = status_of(process);
    let pid = process
        .filter(|p| process_is_live(p) && p.pid > 0)
        .map(|p| p.pid);
    ContainerInfo {
        name: container.id.clone(),
        id: container.id,
        image: container.image,
        status,
        ports: Vec::new(),
        labels: container.labels.into_iter().collect(),
        pid,
    }
}

/// A runc error that means the command itself is wrong (absent or not executable).
pub(super) fn is_bad_command(status: &Status) -> bool {
    let m = status.message();
    m.contains("executable file not found")
        || m.contains("no such file or directory")
        || m.contains("permission denied")
}

/// A label filter containerd can parse, when every key and value is plain.
fn label_filter(labels: &BTreeMap<String, String>) -> Option<String> {
    let plain = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-/:".contains(&b))
    };
    if labels.is_empty() || !labels.iter().all(|(k, v)| plain(k) && plain(v)) {
        return None;
    }
    Some(
        labels
            .iter()
            .map(|(k, v)| format!("labels.\"{k}\"==\"{v}\""))
            .collect::<Vec<_>>()
            .join(","),
    )
}

impl ContainerdRuntime {
    pub(crate) async fn get_container(&self, id: &str) -> Result<Container> {
        self.containers()
            .get(self.request(GetContainerRequest { id: id.to_string() }))
            .await
            .map_err(on("get", "container", id))?
            .into_inner()
            .container
            .ok_or_else(|| RuntimeError::NotFound(id.to_owned()))
    }

    /// The task's main process; `None` when the container has no task.
    pub(crate) async fn task_process(&self, id: &str) -> Result<Option<Process>> {
        let got = self
            .tasks()
            .get(self.request(GetRequest {
                container_id: id.to_string(),
                exec_id: String::new(),
            }))
            .await;
        match got {
            Ok(r) => Ok(r.into_inner().process),
            Err(status) if is_gone(&status) => Ok(None),
            Err(status) => Err(on("get", "task", id)(status)),
        }
    }

    pub(crate) async fn create_and_start_task(
        &self,
        spec: &ContainerSpec,
    ) -> Result<ContainerInfo> {
        check_supported(spec)?;
        let id = spec.name.as_str();
        if !is_valid_identifier(id) {
            return Err(RuntimeError::InvalidSpec {
                field: "name".to_owned(),
                value: id.to_owned(),
                expected: "letters and digits, separated by single '.', '_' or '-' (at most 76 \
                           characters)"
                    .to_owned(),
            });
        }
        let image = self.resolve_image(&spec.image).await?;
        let env = super::with_secret_env(spec)?;
        let process = oci::process_input(
            &image.config,
            spec.entrypoint.as_deref(),
            &spec.command,
            &env,
            &spec.workdir,
        )?;
        let dir = self.container_dir(id);
        let mut mounts = self.resolve_mounts(spec)?;
        let name_files = NameFiles::for_spec(spec, &dir)?;
        mounts.extend(name_files.mounts());
        let runtime_spec = oci::runtime_spec(&SpecInput {
            id: id.to_string(),
            cgroup_parent: self.namespace().to_string(),
            process,
            network_mode: spec.network_mode,
            memory_bytes: spec.memory_bytes,
            cpu_millicores: spec.cpu_millicores,
            cpu_shares: spec.cpu_shares(),
            mounts,
        });
        let container = Container {
            id: id.to_string(),
            labels: to_hash_map(&spec.labels),
            image: image.name.clone(),
            runtime: Some(ContainerRuntimeInfo {
                name: self.config().runtime.clone(),
                options: None,
            }),
            spec: Some(Any {
                type_url: SPEC_TYPE_URL.to_string(),
                value: serde_json::to_vec(&runtime_spec)
                    .map_err(|e| RuntimeError::backend("encode runtime spec", e))?,
            }),
            snapshotter: self.snapshotter().to_string(),
            snapshot_key: id.to_string(),
            ..Container::default()
        };
        let created = self
            .containers()
            .create(self.request(CreateContainerRequest {
                container: Some(container),
            }))
            .await;
        if let Err(status) = created {
            return Err(
                if status.code() == containerd_client::tonic::Code::AlreadyExists {
                    RuntimeError::Conflict {
                        id: id.to_owned(),
                        reason: "the name is already in use; remove it first".to_owned(),
                    }
                } else {
                    on("create", "container", id)(status)
                },
            );
        }
        // The name is ours now: replace whatever an interrupted earlier container left there.
        let started = async {
            let io = |doing: &str, e| RuntimeError::io(format!("{doing} {}", dir.display()), e);
            match tokio::fs::remove_dir_all(&dir).await {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(io("removing", e));
                }
                _ => {}
            }
            tokio::fs::create_dir_all(&dir)
                .await
                .map_err(|e| io("creating", e))?;
            name_files
                .write()
                .map_err(|e| io("writing hosts and resolv.conf in", e))?;
            self.start_task(id, &image.chain_id, &dir, spec).await
        };
        match started.await {
            Ok(()) => self.inspect_container(id).await,
            Err(e) => {
                if let Err(cleanup) = self.cleanup(id).await {
                    tracing::warn!(id, error = %cleanup, "cleanup after a failed start failed");
                }
                Err(e)
            }
        }
    }

    async fn start_task(
        &self,
        id: &str,
        chain: &str,
        dir: &Path,
        spec: &ContainerSpec,
    ) -> Result<()> {
        let rootfs = self
            .snapshots()
            .prepare(self.request(PrepareSnapshotRequest {
                snapshotter: self.snapshotter().to_string(),
                key: id.to_string(),
                parent: chain.to_string(),
                labels: HashMap::new(),
            }))
            .await
            .map_err(on("prepare", "snapshot", id))?
            .into_inner()
            .mounts;
        let uri = main_log_uri(&main_log(dir));
        let bad_command = |status: Status| {
            if is_bad_command(&status) {
                let mut errors = ValidationErrors::default();
                errors.push(
                    "command",
                    format!("{:?}", spec.command),
                    format!(
                        "an executable present in image {:?} ({})",
                        spec.image,
                        status.message()
                    ),
                );
                RuntimeError::InvalidFields(errors)
            } else {
                on("start", "task", id)(status)
            }
        };
        self.tasks()
            .create(self.request(CreateTaskRequest {
                container_id: id.to_string(),
                rootfs,
                stdout: uri.clone(),
                stderr: uri,
                ..CreateTaskRequest::default()
            }))
            .await
            .map_err(bad_command)?;
        self.tasks()
            .start(self.request(StartRequest {
                container_id: id.to_string(),
                exec_id: String::new(),
            }))
            .await
            .map_err(bad_command)?;
        Ok(())
    }

    /// Bind mounts as given (the source must exist); named volumes become directories under
    /// `<state_dir>/volumes/<name>`.
    fn resolve_mounts(&self, spec: &ContainerSpec) -> Result<Vec<BindMount>> {
        let mut errors = ValidationErrors::default();
        let mut out = Vec::new();
        for (i, m) in spec.mounts.iter().enumerate() {
            if !m.target.starts_with('/') {
                errors.push(format!("mounts[{i}].target"), &m.target, "an absolute path");
                continue;
            }
            let source = if m.source.starts_with('/') {
                if !Path::new(&m.source).exists() {
                    errors.push(
                        format!("mounts[{i}].source"),
                        &m.source,
                        "an existing host path (bind mounts are not created)",
                    );
                    continue;
                }
                m.source.clone()
            } else {
                if !is_valid_identifier(&m.source) {
                    errors.push(
                        format!("mounts[{i}].source"),
                        format!("{:?}", m.source),
                        "an absolute host path, or a volume name of letters, digits, '.', '_', '-'",
                    );
                    continue;
                }
                let dir = self.state_dir().join("volumes").join(&m.source);
                std::fs::create_dir_all(&dir).map_err(|e| {
                    RuntimeError::io(format!("creating volume {}", dir.display()), e)
                })?;
                dir.to_string_lossy().into_owned()
            };
            out.push(BindMount {
                source,
                target: m.target.clone(),
                read_only: m.read_only,
            });
        }
        errors.into_result()?;
        Ok(out)
    }

    /// SIGTERM, then SIGKILL after `grace`. Without grace, SIGKILL at once: a SIGTERM the process
    /// has no time to act on can only race its start, and one that reaches runc's init before it
    /// has become the container's program ends the container with exit code 2 (Go's runtime,
    /// as PID 1, cannot die of the signal), not the 137 of a kill.
    pub(crate) async fn stop_task(&self, id: &str, grace: Duration) -> Result<()> {
        self.get_container(id).await?;
        match self.task_process(id).await? {
            Some(p) if process_is_live(&p) => {}
            _ => return Ok(()),
        }
        if !grace.is_zero() {
            self.kill(id, SIGTERM, false).await?;
            if tokio::time::timeout(grace, self.wait(id, "")).await.is_ok() {
                return Ok(());
            }
        }
        self.kill(id, SIGKILL, true).await?;
        match tokio::time::timeout(KILL_WAIT, self.wait(id, "")).await {
            Ok(result) => result.map(|_| ()),
            Err(_) => Err(RuntimeError::BackendUnavailable {
                backend: NAME,
                reason: format!("container {id:?} did not exit within {KILL_WAIT:?} of SIGKILL"),
            }),
        }
    }

    async fn kill(&self, id: &str, signal: u32, all: bool) -> Result<()> {
        let killed = self
            .tasks()
            .kill(self.request(KillRequest {
                container_id: id.to_string(),
                exec_id: String::new(),
                signal,
                all,
            }))
            .await;
        match killed {
            Ok(_) => Ok(()),
            // Already exited between the status check and the signal.
            Err(status) if is_gone(&status) => Ok(()),
            Err(status) => Err(on("signal", "task", id)(status)),
        }
    }

    /// Waits for a process to exit; returns its exit status.
    pub(super) async fn wait(&self, id: &str, exec_id: &str) -> Result<u32> {
        let waited = self
            .tasks()
            .wait(self.request(WaitRequest {
                container_id: id.to_string(),
                exec_id: exec_id.to_string(),
            }))
            .await;
        match waited {
            Ok(r) => Ok(r.into_inner().exit_status),
            Err(status) if is_gone(&status) => Ok(0),
            Err(status) => Err(on("wait for", "task", id)(status)),
        }
    }

    pub(crate) async fn remove_container(&self, id: &str) -> Result<()> {
        self.get_container(id).await?;
        self.cleanup(id).await
    }

    /// Kills and deletes the task, deletes the container, its snapshot and its files.
    async fn cleanup(&self, id: &str) -> Result<()> {
        if let Some(p) = self.task_process(id).await? {
            if process_is_live(&p) {
                self.kill(id, SIGKILL, true).await?;
                let _ = tokio::time::timeout(KILL_WAIT, self.wait(id, "")).await;
            }
            let deleted = self
                .tasks()
                .delete(self.request(DeleteTaskRequest {
                    container_id: id.to_string(),
                }))
                .await;
            if let Err(status) = deleted
                && !is_gone(&status)
            {
                return Err(on("delete", "task", id)(status));
            }
        }
        let deleted = self
            .containers()
            .delete(self.request(DeleteContainerRequest { id: id.to_string() }))
            .await;
        if let Err(status) = deleted
            && !is_gone(&status)
        {
            return Err(on("delete", "container", id)(status));
        }
        self.remove_snapshot(id).await;
        let dir = self.container_dir(id);
        match tokio::fs::remove_dir_all(&dir).await {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(RuntimeError::io(format!("removing {}", dir.display()), e))
            }
            _ => Ok(()),
        }
    }

    pub(crate) async fn inspect_container(&self, id: &str) -> Result<ContainerInfo> {
        let container = self.get_container(id).await?;
        let process = self.task_process(id).await?;
        Ok(self.with_oom(info_of(container, process.as_ref())).await)
    }

    /// A SIGKILLed exit (137) is checked against the cgroup's OOM-kill counter.
    async fn with_oom(&self, mut info: ContainerInfo) -> ContainerInfo {
        if let ContainerStatus::Exited {
            code: 137,
            oom_killed,
        } = &mut info.status
        {
            *oom_killed = self.oom_killed(&info.id).await;
        }
        info
    }

    pub(crate) async fn list_containers(
        &self,
        labels: &BTreeMap<String, String>,
    ) -> Result<Vec<ContainerInfo>> {
        let containers = self
            .containers()
            .list(self.request(ListContainersRequest {
                filters: label_filter(labels).into_iter().collect(),
            }))
            .await
            .map_err(on("list", "containers in namespace", self.namespace()))?
            .into_inner()
            .containers;
        let tasks: HashMap<String, Process> = self
            .tasks()
            .list(self.request(ListTasksRequest {
                filter: String::new(),
            }))
            .await
            .map_err(on("list", "tasks in namespace", self.namespace()))?
            .into_inner()
            .tasks
            .into_iter()
            .map(|p| (p.id.clone(), p))
            .collect();
        let mut out = Vec::new();
        for container in containers
            .into_iter()
            .filter(|c| labels.iter().all(|(k, v)| c.labels.get(k) == Some(v)))
        {
            let process = tasks.get(&container.id);
            out.push(self.with_oom(info_of(container, process)).await);
        }
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_labels_become_one_conjunctive_filter() {
        let labels = BTreeMap::from([
            ("io.orion.task".to_string(), "t1".to_string()),
            ("io.orion.managed".to_string(), "true".to_string()),
        ]);
        assert_eq!(
            label_filter(&labels).unwrap(),
            r#"labels."io.orion.managed"=="true",labels."io.orion.task"=="t1""#
        );
        let odd = BTreeMap::from([("k".to_string(), "has space".to_string())]);
        assert_eq!(label_filter(&odd), None);
    }

    #[test]
    fn statuses_map_to_container_states() {
        let p = |status: ProcessStatus, exit: u32| Process {
            status: status as i32,
            exit_status: exit,
            pid: 7,
            ..Process::default()
        };
        assert_eq!(
            status_of(Some(&p(ProcessStatus::Running, 0))),
            ContainerStatus::Running
        );
        assert_eq!(
            status_of(Some(&p(ProcessStatus::Stopped, 3))),
            ContainerStatus::Exited {
                code: 3,
                oom_killed: false
            }
        );
        assert!(matches!(status_of(None), ContainerStatus::Unknown(_)));
    }
}
