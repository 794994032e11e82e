//! `DockerRuntime`: containers through the Docker engine API (bollard).
//!
//! The engine's restart policy is always `no` (Orion decides about restarts). Ports are published
//! on `PortBinding::host_ip`; host port 0 gets a free port, read back by inspecting the container.
//! A failed start removes what was created.

mod convert;
mod secrets;
mod stats;

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use async_trait::async_trait;
use bollard::Docker;
use bollard::container::LogOutput;
use bollard::errors::Error as BollardError;
use bollard::exec::{StartExecOptions, StartExecResults};
use bollard::models::ExecConfig;
use bollard::query_parameters::{
    CreateContainerOptions, CreateImageOptions, EventsOptions, KillContainerOptions,
    ListContainersOptions, LogsOptions, RemoveContainerOptions, StatsOptions, StopContainerOptions,
};
use futures::{StreamExt, TryStreamExt};
use orion_core::runtime::{
    ContainerInfo, ContainerSpec, ContainerStats, ExecOutput, ExitStream, LogLine, LogOptions,
    LogStream, LogStreamBox, Runtime, append_bounded,
};

use crate::error::{Result, RuntimeError};
use crate::lines::LineSplitter;

pub use convert::MIN_MEMORY_BYTES;

/// The runtime's short name.
pub const NAME: &str = "docker";

/// The HTTP timeout of the exit feed (a long-lived request): after it the feed ends and the
/// caller subscribes again.
const EVENT_FEED_TIMEOUT: Duration = Duration::from_secs(24 * 3600);

/// Time allowed on top of the grace period for the engine to kill and report a stop.
const STOP_MARGIN: Duration = Duration::from_secs(30);

/// What [`DockerRuntime::ensure_image`](Runtime::ensure_image) does about an absent image.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PullPolicy {
    /// Pull it from its registry (the default).
    #[default]
    IfNotPresent,
    /// Never contact a registry: an absent image is `ImageUnavailable` at once.
    Never,
}

/// Containers on the local Docker engine.
#[derive(Debug, Clone)]
pub struct DockerRuntime {
    docker: Docker,
    pull: PullPolicy,
    /// Where secret files are staged (a tmpfs), see [`crate::secret_files`].
    secrets_dir: std::path::PathBuf,
}

/// Connects to the local engine (`DOCKER_HOST` or the default socket) and negotiates the API
/// version down to the engine's (Debian's 20.10 speaks 1.41).
pub async fn connect() -> Result<Docker> {
    let unavailable = |e: BollardError| RuntimeError::EngineUnavailable {
        reason: e.to_string(),
    };
    Docker::connect_with_local_defaults()
        .map_err(unavailable)?
        .negotiate_version()
        .await
        .map_err(unavailable)
}

/// True when `e` is the engine answering with HTTP `status`.
pub(crate) fn is_status(e: &BollardError, status: u16) -> bool {
    matches!(e, BollardError::DockerResponseServerError { status_code, .. } if *status_code == status)
}

/// Maps an engine error about container `id` to the variant the caller acts on.
fn container_error(id: &str, context: &str, e: BollardError) -> RuntimeError {
    match &e {
        BollardError::DockerResponseServerError {
            status_code: 404, ..
        } => RuntimeError::NotFound(id.to_owned()),
        BollardError::DockerResponseServerError {
            status_code: 409,
            message,
        } => RuntimeError::Conflict {
            id: id.to_owned(),
            reason: message.clone(),
        },
        BollardError::HyperResponseError { .. }
        | BollardError::IOError { .. }
        | BollardError::RequestTimeoutError => RuntimeError::EngineUnavailable {
            reason: e.to_string(),
        },
        _ => RuntimeError::Docker {
            context: format!("{context} {id}"),
            source: e,
        },
    }
}

impl DockerRuntime {
    /// The host's IPv4 address on the engine's default `bridge` network (docker0, usually
    /// 172.17.0.1): the address a bridge-network container reaches this host at. It is the
    /// network's IPAM gateway, or, when the engine does not report one, the first address of
    /// its subnet (the engine's own choice). `None` when the engine has no IPv4 bridge network.
    pub async fn bridge_gateway(&self) -> Result<Option<std::net::Ipv4Addr>> {
        let network = match self.docker.inspect_network("bridge", None).await {
            Ok(n) => n,
            Err(e) if is_status(&e, 404) => return Ok(None),
            Err(e) => return Err(container_error("bridge", "inspecting network", e)),
        };
        let configs = network.ipam.and_then(|i| i.config).unwrap_or_default();
        for c in configs {
            if let Some(gw) = c.gateway.as_deref().and_then(|g| g.parse().ok()) {
                return Ok(Some(gw));
            }
            let net = c
                .subnet
                .as_deref()
                .and_then(|s| s.split_once('/'))
                .and_then(|(ip, _)| ip.parse::<std::net::Ipv4Addr>().ok());
            if let Some(net) = net {
                return Ok(Some(std::net::Ipv4Addr::from(u32::from(net) + 1)));
            }
        }
        Ok(None)
    }

    /// Connects to the local engine (see [`connect`]); pulls absent images.
    pub async fn connect() -> Result<Self> {
        Ok(Self::from_client(connect().await?))
    }

    /// Wraps an already connected (and version-negotiated) client.
    pub fn from_client(docker: Docker) -> Self {
        Self {
            docker,
            pull: PullPolicy::IfNotPresent,
            secrets_dir: crate::secret_files::DEFAULT_SECRETS_DIR.into(),
        }
    }

    /// Stages secret files under `dir` (default [`crate::secret_files::DEFAULT_SECRETS_DIR`]);
    /// it must be on a tmpfs, or a container with secret files is refused.
    pub fn with_secrets_dir(mut self, dir: impl Into<std::path::PathBuf>) -> Self {
        self.secrets_dir = dir.into();
        self
    }

    /// Sets what happens to absent images.
    pub fn with_pull_policy(mut self, pull: PullPolicy) -> Self {
        self.pull = pull;
        self
    }

    /// The underlying client, for what the trait does not cover.
    pub fn client(&self) -> &Docker {
        &self.docker
    }

    async fn ensure_image_inner(&self, image: &str) -> Result<()> {
        match self.docker.inspect_image(image).await {
            Ok(_) => return Ok(()),
            Err(e) if is_status(&e, 404) => {}
            Err(e) => return Err(container_error(image, "inspecting image", e)),
        }
        if self.pull == PullPolicy::Never {
            return Err(RuntimeError::ImageUnavailable {
                image: image.to_owned(),
                reason: "absent from the engine and the pull policy is Never".to_owned(),
            });
        }
        // Without a tag the engine would pull every tag of the repository.
        let (repository, tag) = split_reference(image);
        let options = CreateImageOptions {
            from_image: Some(repository.to_owned()),
            tag: Some(tag.to_owned()),
            ..CreateImageOptions::default()
        };
        self.docker
            .create_image(Some(options), None, None)
            .try_for_each(|_| async { Ok(()) })
            .await
            .map_err(|e| RuntimeError::ImageUnavailable {
                image: image.to_owned(),
                reason: format!("absent from the engine and the pull failed: {e}"),
            })
    }

    async fn create_and_start_inner(&self, spec: &ContainerSpec) -> Result<ContainerInfo> {
        let mut body = convert::create_body(spec)?;
        let staged = crate::secret_files::stage(NAME, &self.secrets_dir, &spec.secrets)?;
        let created = match secrets::apply(&mut body, spec, staged.as_ref()) {
            Ok(()) => self.create_and_start_body(spec, body).await,
            Err(e) => Err(e),
        };
        if let (Err(_), Some(staged)) = (&created, &staged) {
            staged.discard();
        }
        created
    }

    async fn create_and_start_body(
        &self,
        spec: &ContainerSpec,
        body: bollard::models::ContainerCreateBody,
    ) -> Result<ContainerInfo> {
        let options = CreateContainerOptions {
            name: Some(spec.name.clone()).filter(|n| !n.is_empty()),
            ..CreateContainerOptions::default()
        };
        // Create first: the engine answers 404 when the image is absent, and only then is it
        // obtained. A present image costs no separate check.
        let created = match self
            .docker
            .create_container(Some(options.clone()), body.clone())
            .await
        {
            Err(e) if is_status(&e, 404) => {
                self.ensure_image_inner(&spec.image).await?;
                self.docker.create_container(Some(options), body).await
            }
            other => other,
        }
        .map_err(|e| container_error(&spec.name, "creating container", e))?;
        let id = created.id;
        if let Err(e) = self.docker.start_container(&id, None).await {
            if let Err(cleanup) = self.remove_inner(&id).await {
                tracing::warn!(container = %id, error = %cleanup, "removing a container that failed to start");
            }
            return Err(RuntimeError::StartFailed {
                name: spec.name.clone(),
                reason: e.to_string(),
            });
        }
        self.inspect_inner(&id).await
    }

    async fn inspect_inner(&self, id: &str) -> Result<ContainerInfo> {
        let inspect = self
            .docker
            .inspect_container(id, None)
            .await
            .map_err(|e| container_error(id, "inspecting container", e))?;
        Ok(convert::container_info(inspect))
    }

    /// Removes the container, then its staged secret files (when it had any).
    async fn remove_inner(&self, id: &str) -> Result<()> {
        let staged = match self.docker.inspect_container(id, None).await {
            Ok(c) => c
                .config
                .and_then(|c| c.labels)
                .and_then(|mut l| l.remove(crate::secret_files::SECRETS_DIR_LABEL)),
            Err(_) => None,
        };
        let options = RemoveContainerOptions {
            force: true,
            v: true,
            ..RemoveContainerOptions::default()
        };
        self.docker
            .remove_container(id, Some(options))
            .await
            .map_err(|e| container_error(id, "removing container", e))?;
        // Only a directory of this runtime's secrets dir, whatever the label says.
        if let Some(dir) = staged.map(std::path::PathBuf::from)
            && dir.parent() == Some(self.secrets_dir.as_path())
        {
            crate::secret_files::remove_staged(&dir);
        }
        Ok(())
    }

    async fn stop_inner(&self, id: &str, grace: Duration) -> Result<()> {
        // Whole seconds, rounded up: a grace of 0.5 s must not become an immediate kill.
        let secs = grace.as_secs() + u64::from(grace.subsec_nanos() > 0);
        let options = StopContainerOptions {
            t: Some(i32::try_from(secs).unwrap_or(i32::MAX)),
            signal: None,
        };
        // The engine answers only after the grace period: keep the HTTP timeout above it.
        let client = if grace + STOP_MARGIN > self.docker.timeout() {
            self.docker.clone().with_timeout(grace + STOP_MARGIN)
        } else {
            self.docker.clone()
        };
        match client.stop_container(id, Some(options)).await {
            Ok(()) => Ok(()),
            // 304: already stopped.
            Err(e) if is_status(&e, 304) => Ok(()),
            Err(e) => {
                let err = container_error(id, "stopping container", e);
                if matches!(
                    err,
                    RuntimeError::NotFound(_) | RuntimeError::EngineUnavailable { .. }
                ) {
                    return Err(err);
                }
                // The engine gave up on the graceful stop: kill, and accept "not running".
                tracing::warn!(container = %id, error = %err, "stop failed; killing");
                match self
                    .docker
                    .kill_container(
                        id,
                        Some(KillContainerOptions {
                            signal: "KILL".into(),
                        }),
                    )
                    .await
                {
                    Ok(()) => Ok(()),
                    Err(e) if is_status(&e, 409) => Ok(()),
                    Err(e) => Err(container_error(id, "killing container", e)),
                }
            }
        }
    }

    async fn list_inner(&self, labels: &BTreeMap<String, String>) -> Result<Vec<ContainerInfo>> {
        let filter: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let mut filters = HashMap::new();
        if !filter.is_empty() {
            filters.insert("label".to_owned(), filter);
        }
        let options = ListContainersOptions {
            all: true,
            filters: Some(filters),
            ..ListContainersOptions::default()
        };
        let summaries = self
            .docker
            .list_containers(Some(options))
            .await
            .map_err(|e| container_error("*", "listing containers", e))?;
        // A running container is described by the list itself; only the others are inspected
        // (for their exit code and OOM flag), so a list costs one engine call when all run.
        let mut infos = Vec::new();
        let mut others = Vec::new();
        for summary in summaries {
            match convert::running_from_summary(&summary) {
                Some(info) => infos.push(info),
                None => others.extend(summary.id),
            }
        }
        let inspections = others
            .into_iter()
            .map(|id| async move { self.inspect_inner(&id).await });
        for result in futures::future::join_all(inspections).await {
            match result {
                Ok(info) => infos.push(info),
                // Removed between the list and the inspect.
                Err(RuntimeError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        infos.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(infos)
    }

    /// The engine's `die` events of containers carrying all of `labels`, as container ids.
    fn exits(&self, labels: &BTreeMap<String, String>) -> ExitStream {
        let mut filters = HashMap::from([
            ("type".to_owned(), vec!["container".to_owned()]),
            ("event".to_owned(), vec!["die".to_owned()]),
        ]);
        if !labels.is_empty() {
            let wanted = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
            filters.insert("label".to_owned(), wanted);
        }
        // The request is sent when the stream is first polled; `since` makes the feed start
        // now all the same (the engine replays what happened in between).
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let options = EventsOptions {
            since: Some(format!("{}.{:09}", now.as_secs(), now.subsec_nanos())),
            filters: Some(filters),
            ..EventsOptions::default()
        };
        // No request timeout: the feed stays open for as long as the engine keeps it.
        let events = self
            .docker
            .clone()
            .with_timeout(EVENT_FEED_TIMEOUT)
            .events(Some(options));
        Box::pin(events.filter_map(|event| async move {
            match event {
                Ok(e) => e.actor.and_then(|a| a.id).map(Ok),
                Err(e) => Some(Err(
                    container_error("*", "following engine events", e).into()
                )),
            }
        }))
    }

    async fn logs_inner(&self, id: &str, options: LogOptions) -> Result<LogStreamBox> {
        // Fail now for an unknown id, rather than as the stream's first item.
        self.inspect_inner(id).await?;
        let query = LogsOptions {
            follow: options.follow,
            stdout: true,
            stderr: true,
            tail: options
                .tail
                .map_or_else(|| "all".to_owned(), |n| n.to_string()),
            since: options
                .since
                .map_or(0, |t| i32::try_from(t.max(0)).unwrap_or(i32::MAX)),
            timestamps: options.timestamps,
            ..LogsOptions::default()
        };
        let id = id.to_owned();
        let chunks = self.docker.logs(&id, Some(query));
        let state = (
            Box::pin(chunks),
            LineSplitter::default(),
            LineSplitter::default(),
            Vec::new(),
            false,
        );
        let lines = futures::stream::unfold(state, move |mut st| {
            let id = id.clone();
            async move {
                let (chunks, out, err, ready, done) = &mut st;
                loop {
                    if !ready.is_empty() {
                        let line = ready.remove(0);
                        return Some((Ok(line), st));
                    }
                    if *done {
                        return None;
                    }
                    match chunks.next().await {
                        Some(Ok(LogOutput::StdErr { message })) => {
                            ready.extend(
                                err.push(&message)
                                    .into_iter()
                                    .map(|l| line(LogStream::Stderr, l)),
                            );
                        }
                        Some(Ok(chunk)) => {
                            let bytes = chunk.into_bytes();
                            ready.extend(
                                out.push(&bytes)
                                    .into_iter()
                                    .map(|l| line(LogStream::Stdout, l)),
                            );
                        }
                        Some(Err(e)) => {
                            *done = true;
                            let e: orion_core::Error =
                                container_error(&id, "reading logs of", e).into();
                            return Some((Err(e), st));
                        }
                        None => {
                            *done = true;
                            ready.extend(out.finish().map(|l| line(LogStream::Stdout, l)));
                            ready.extend(err.finish().map(|l| line(LogStream::Stderr, l)));
                        }
                    }
                }
            }
        });
        Ok(Box::pin(lines))
    }

    async fn stats_inner(&self, id: &str) -> Result<ContainerStats> {
        // stream=false, one-shot=false: the engine takes two samples, so precpu is filled.
        let options = StatsOptions {
            stream: false,
            one_shot: false,
        };
        let sample = self
            .docker
            .stats(id, Some(options))
            .next()
            .await
            .ok_or_else(|| RuntimeError::NotFound(id.to_owned()))?
            .map_err(|e| container_error(id, "reading stats of", e))?;
        Ok(stats::container_stats(&sample))
    }

    async fn exec_inner(&self, id: &str, command: &[String]) -> Result<ExecOutput> {
        if command.is_empty() {
            return Err(RuntimeError::InvalidSpec {
                field: "command".into(),
                value: String::new(),
                expected: "a program and its arguments".into(),
            });
        }
        let config = ExecConfig {
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            cmd: Some(command.to_vec()),
            ..ExecConfig::default()
        };
        let exec = self
            .docker
            .create_exec(id, config)
            .await
            .map_err(|e| container_error(id, "creating exec in", e))?;
        let started = self
            .docker
            .start_exec(&exec.id, Some(StartExecOptions::default()))
            .await
            .map_err(|e| container_error(id, "starting exec in", e))?;
        let (mut stdout, mut stderr, mut truncated) = (Vec::new(), Vec::new(), false);
        if let StartExecResults::Attached { mut output, .. } = started {
            while let Some(chunk) = output.next().await {
                truncated |=
                    match chunk.map_err(|e| container_error(id, "reading exec output of", e))? {
                        LogOutput::StdErr { message } => append_bounded(&mut stderr, &message),
                        other => append_bounded(&mut stdout, &other.into_bytes()),
                    };
            }
        }
        let inspect = self
            .docker
            .inspect_exec(&exec.id)
            .await
            .map_err(|e| container_error(id, "inspecting exec in", e))?;
        Ok(ExecOutput {
            exit_code: inspect.exit_code.unwrap_or(-1),
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
            truncated,
        })
    }
}

/// Splits an image reference into what the pull API wants: the repository, and the tag or
/// digest (`latest` when there is neither). A `:` before the last `/` is a registry port.
fn split_reference(image: &str) -> (&str, &str) {
    if let Some((repository, digest)) = image.split_once('@') {
        return (repository, digest);
    }
    let name_start = image.rfind('/').map_or(0, |i| i + 1);
    match image[name_start..].rfind(':') {
        Some(i) => (&image[..name_start + i], &image[name_start + i + 1..]),
        None => (image, "latest"),
    }
}

fn line(stream: LogStream, line: String) -> LogLine {
    LogLine { stream, line }
}

#[async_trait]
impl Runtime for DockerRuntime {
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
        Ok(self.inspect_inner(id).await?)
    }

    async fn list(
        &self,
        labels: &BTreeMap<String, String>,
    ) -> orion_core::Result<Vec<ContainerInfo>> {
        Ok(self.list_inner(labels).await?)
    }

    async fn watch_exits(
        &self,
        labels: &BTreeMap<String, String>,
    ) -> orion_core::Result<ExitStream> {
        Ok(self.exits(labels))
    }

    async fn logs(&self, id: &str, options: LogOptions) -> orion_core::Result<LogStreamBox> {
        Ok(self.logs_inner(id, options).await?)
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
    use super::split_reference;

    #[test]
    fn references_split_into_repository_and_tag() {
        assert_eq!(split_reference("nginx"), ("nginx", "latest"));
        assert_eq!(split_reference("nginx:1.27"), ("nginx", "1.27"));
        assert_eq!(
            split_reference("registry.local:5000/team/app"),
            ("registry.local:5000/team/app", "latest")
        );
        assert_eq!(
            split_reference("registry.local:5000/team/app:v2"),
            ("registry.local:5000/team/app", "v2")
        );
        assert_eq!(split_reference("app@sha256:abcd"), ("app", "sha256:abcd"));
    }
}
