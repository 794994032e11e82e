//! `ContainerdRuntime`: containers through containerd's gRPC API, in their own namespace.
//!
//! What it does, and where it differs from Docker (see `docs/containerd.md`):
//! - Images are never pulled. [`ContainerdRuntime::import_image_tar`] imports an OCI image layout
//!   tarball (`index.json`) or a `docker save` tarball (`manifest.json`) through the content
//!   store, creates the image record and unpacks the layers into a snapshot chain.
//! - Networking has no CNI: only [`NetworkMode::Host`] (the host's network namespace) and
//!   [`NetworkMode::None`] (an empty one) exist. Bridge networks, named networks and published
//!   ports are [`RuntimeError::Unsupported`], never silently ignored.
//! - Output of every container goes to two log files under the state directory, written by a
//!   small logger the containerd shim runs (so logs survive a restart of the caller).
//! - OOM kills are read from the cgroup's OOM-kill counter while the stopped task still exists.
//! - Like the other runtimes, everything inside returns [`RuntimeError`]; the [`Runtime`]
//!   methods convert it into [`orion_core::Error`] (the same conversion for every backend).
//!
//! ```no_run
//! use orion_core::model::spec::NetworkMode;
//! use orion_core::runtime::{ContainerSpec, Runtime};
//! use orion_runtime::containerd::{ContainerdConfig, ContainerdRuntime};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let rt = ContainerdRuntime::connect(ContainerdConfig::default()).await?;
//! // No pulls: bring the image in from an OCI layout (or `docker save`) tarball.
//! rt.import_image_tar(std::fs::File::open("busybox.oci.tar")?, Some("busybox:latest"))
//!     .await?;
//! let info = rt
//!     .create_and_start(&ContainerSpec {
//!         name: "orion-hello".into(),
//!         image: "busybox:latest".into(),
//!         command: vec!["echo".into(), "hello".into()],
//!         network_mode: NetworkMode::None,
//!         ..ContainerSpec::default()
//!     })
//!     .await?;
//! rt.remove(&info.id).await?;
//! # Ok(())
//! # }
//! ```

mod content;
mod errors;
mod exec;
mod image;
mod io;
mod layout;
mod name_files;
mod oci;
mod stats;
mod task;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use containerd_client::services::v1::containers_client::ContainersClient;
use containerd_client::services::v1::content_client::ContentClient;
use containerd_client::services::v1::diff_client::DiffClient;
use containerd_client::services::v1::images_client::ImagesClient;
use containerd_client::services::v1::leases_client::LeasesClient;
use containerd_client::services::v1::snapshots::snapshots_client::SnapshotsClient;
use containerd_client::services::v1::tasks_client::TasksClient;
use containerd_client::services::v1::version_client::VersionClient;
use containerd_client::tonic::transport::Channel;
use containerd_client::tonic::{self, Request};
use orion_core::error::ValidationErrors;
use orion_core::model::spec::NetworkMode;
use orion_core::runtime::{
    ContainerInfo, ContainerSpec, ContainerStats, ExecOutput, LogOptions, LogStreamBox, Runtime,
};

pub use image::ImportedImage;

use crate::error::{Result, RuntimeError};

/// The runtime's name, as returned by [`Runtime::name`].
pub const NAME: &str = "containerd";

/// Where containerd's socket usually is: its own service first, then the one dockerd starts.
pub const SOCKET_CANDIDATES: [&str; 2] = [
    "/run/containerd/containerd.sock",
    "/var/run/docker/containerd/containerd.sock",
];

/// Environment variable that overrides socket detection (when [`ContainerdConfig::socket`] is unset).
pub const SOCKET_ENV: &str = "ORION_CONTAINERD_SOCKET";

/// How to reach containerd and where to keep local state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerdConfig {
    /// The gRPC socket; `None` tries [`SOCKET_ENV`], then [`SOCKET_CANDIDATES`] in order.
    pub socket: Option<PathBuf>,
    /// containerd namespace holding Orion's images and containers (Docker's is `moby`).
    pub namespace: String,
    /// Snapshotter for image layers and container root filesystems.
    pub snapshotter: String,
    /// The shim runtime.
    pub runtime: String,
    /// Log files, named volumes and import staging live here.
    pub state_dir: PathBuf,
}

impl Default for ContainerdConfig {
    fn default() -> Self {
        ContainerdConfig {
            socket: None,
            namespace: "orion".to_string(),
            snapshotter: "overlayfs".to_string(),
            runtime: "io.containerd.runc.v2".to_string(),
            state_dir: PathBuf::from("/var/lib/orion/containerd"),
        }
    }
}

/// A [`Runtime`] over containerd. Cheap to clone; all state lives in containerd and the state dir,
/// so a new value (after a restart) sees every container an earlier one created.
#[derive(Debug, Clone)]
pub struct ContainerdRuntime {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    channel: Channel,
    config: ContainerdConfig,
    socket: PathBuf,
    counter: AtomicU64,
}

impl ContainerdRuntime {
    /// Connects with [`ContainerdConfig::default`] (socket detected).
    pub async fn connect_default() -> Result<Self> {
        Self::connect(ContainerdConfig::default()).await
    }

    /// Connects to containerd and checks that it answers.
    ///
    /// Errors: [`RuntimeError::InvalidFields`] for a bad namespace, snapshotter or state
    /// directory (every bad field at once); [`RuntimeError::BackendUnavailable`] when no socket is
    /// found or containerd does not answer on it.
    pub async fn connect(config: ContainerdConfig) -> Result<Self> {
        validate_config(&config)?;
        let socket = detect_socket(config.socket.as_deref())?;
        let channel = containerd_client::connect(&socket).await.map_err(|e| {
            RuntimeError::BackendUnavailable {
                backend: NAME,
                reason: format!("cannot connect to {}: {e}", socket.display()),
            }
        })?;
        let runtime = ContainerdRuntime {
            inner: Arc::new(Inner {
                channel,
                config,
                socket,
                counter: AtomicU64::new(0),
            }),
        };
        runtime.version().await?;
        Ok(runtime)
    }

    /// The server's version string (for example `1.6.20`); [`RuntimeError::BackendUnavailable`]
    /// when containerd does not answer.
    pub async fn version(&self) -> Result<String> {
        let response = VersionClient::new(self.channel())
            .version(())
            .await
            .map_err(|status| RuntimeError::BackendUnavailable {
                backend: NAME,
                reason: format!(
                    "no answer at {}: {}",
                    self.inner.socket.display(),
                    status.message()
                ),
            })?;
        Ok(response.into_inner().version)
    }

    /// The socket in use.
    pub fn socket(&self) -> &Path {
        &self.inner.socket
    }

    /// The configuration in use.
    pub fn config(&self) -> &ContainerdConfig {
        &self.inner.config
    }

    fn channel(&self) -> Channel {
        self.inner.channel.clone()
    }

    fn namespace(&self) -> &str {
        &self.inner.config.namespace
    }

    fn snapshotter(&self) -> &str {
        &self.inner.config.snapshotter
    }

    fn state_dir(&self) -> &Path {
        &self.inner.config.state_dir
    }

    fn containers(&self) -> ContainersClient<Channel> {
        ContainersClient::new(self.channel())
    }

    fn content(&self) -> ContentClient<Channel> {
        ContentClient::new(self.channel())
            .max_decoding_message_size(64 << 20)
            .max_encoding_message_size(64 << 20)
    }

    fn diff(&self) -> DiffClient<Channel> {
        DiffClient::new(self.channel())
    }

    fn images(&self) -> ImagesClient<Channel> {
        ImagesClient::new(self.channel())
    }

    fn leases(&self) -> LeasesClient<Channel> {
        LeasesClient::new(self.channel())
    }

    fn snapshots(&self) -> SnapshotsClient<Channel> {
        SnapshotsClient::new(self.channel())
    }

    fn tasks(&self) -> TasksClient<Channel> {
        TasksClient::new(self.channel())
    }

    /// A request in Orion's namespace.
    fn request<T>(&self, message: T) -> Request<T> {
        self.request_with_lease(message, None)
    }

    /// A request in Orion's namespace, optionally under a lease (protects new content from GC).
    fn request_with_lease<T>(&self, message: T, lease: Option<&str>) -> Request<T> {
        let mut request = Request::new(message);
        insert_metadata(&mut request, "containerd-namespace", self.namespace());
        if let Some(lease) = lease {
            insert_metadata(&mut request, "containerd-lease", lease);
        }
        request
    }

    /// A name unique in this process and across processes (pid + counter + clock).
    fn unique(&self, prefix: &str) -> String {
        let n = self.inner.counter.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        format!("{prefix}-{}-{n}-{nanos}", std::process::id())
    }
}

fn insert_metadata<T>(request: &mut Request<T>, key: &'static str, value: &str) {
    // Values were validated as ASCII names, so parsing cannot fail; a failure would only drop
    // the header, which containerd then reports as an error naming the missing namespace.
    if let Ok(value) = value.parse::<tonic::metadata::MetadataValue<_>>() {
        request.metadata_mut().insert(key, value);
    }
}

/// containerd's identifier rule (namespaces, container ids, leases).
pub(crate) fn is_valid_identifier(s: &str) -> bool {
    if s.is_empty() || s.len() > 76 {
        return false;
    }
    let bytes = s.as_bytes();
    let alnum = |b: u8| b.is_ascii_alphanumeric();
    if !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
        return false;
    }
    bytes.windows(2).all(|w| alnum(w[0]) || alnum(w[1]))
        && bytes.iter().all(|&b| alnum(b) || b"._-".contains(&b))
}

fn validate_config(config: &ContainerdConfig) -> Result<()> {
    let mut errors = ValidationErrors::default();
    if !is_valid_identifier(&config.namespace) {
        errors.push(
            "containerd.namespace",
            format!("{:?}", config.namespace),
            "letters and digits, separated by single '.', '_' or '-' (at most 76 characters)",
        );
    }
    if config.snapshotter.is_empty() {
        errors.push(
            "containerd.snapshotter",
            "\"\"",
            "a snapshotter name such as overlayfs or native",
        );
    }
    if !config.state_dir.is_absolute() {
        errors.push(
            "containerd.state_dir",
            config.state_dir.display(),
            "an absolute path",
        );
    }
    Ok(errors.into_result()?)
}

fn detect_socket(configured: Option<&Path>) -> Result<PathBuf> {
    if let Some(path) = configured {
        return Ok(path.to_path_buf());
    }
    if let Some(path) = std::env::var_os(SOCKET_ENV).filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(path));
    }
    SOCKET_CANDIDATES
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .ok_or_else(|| RuntimeError::BackendUnavailable {
            backend: NAME,
            reason: format!(
                "no socket found (tried {}); start containerd, or set {SOCKET_ENV} or \
                 ContainerdConfig::socket",
                SOCKET_CANDIDATES.join(", ")
            ),
        })
}

/// `spec.env` followed by the env secrets (`VAR=value`); a file secret is `Unsupported` (not
/// built for containerd yet: secret files need a host tmpfs staged and bind-mounted, as the
/// docker runtime does), and an env value must be UTF-8 without NUL.
fn with_secret_env(spec: &ContainerSpec) -> Result<Vec<String>> {
    use orion_core::secrets::SecretTarget;
    let mut env = spec.env.clone();
    for secret in &spec.secrets {
        match &secret.target {
            SecretTarget::File(path) => {
                return Err(RuntimeError::Unsupported {
                    backend: NAME,
                    feature: format!("secret {:?} as the file {path}", secret.name),
                    hint: "secret files are delivered by the docker runtime only; deliver it \
                           as env (secrets: [{name, env}]) or use the docker runtime"
                        .to_string(),
                });
            }
            SecretTarget::Env(var) => {
                let text = std::str::from_utf8(secret.value.expose())
                    .ok()
                    .filter(|t| !t.contains('\0'))
                    .ok_or_else(|| RuntimeError::Unsupported {
                        backend: NAME,
                        feature: format!("secret {:?}: a binary value in env {var}", secret.name),
                        hint: "env holds UTF-8 text without NUL".to_string(),
                    })?;
                env.push(format!("{var}={text}"));
            }
        }
    }
    Ok(env)
}

/// Rejects what this backend cannot do, before anything is created.
fn check_supported(spec: &ContainerSpec) -> Result<()> {
    if !spec.ports.is_empty() {
        return Err(RuntimeError::Unsupported {
            backend: NAME,
            feature: "port publishing".to_string(),
            hint: "there is no CNI here; use network_mode host and listen on the host's ports \
                   directly, or use the docker runtime"
                .to_string(),
        });
    }
    if spec.network_mode == NetworkMode::Bridge {
        return Err(RuntimeError::Unsupported {
            backend: NAME,
            feature: "network mode bridge".to_string(),
            hint: "there is no CNI here; accepted modes are host (the host's network) and none \
                   (loopback only)"
                .to_string(),
        });
    }
    if let Some(network) = &spec.network {
        return Err(RuntimeError::Unsupported {
            backend: NAME,
            feature: format!("named network {network:?}"),
            hint: "there is no CNI here; leave network unset and use network_mode host or none"
                .to_string(),
        });
    }
    Ok(())
}

#[async_trait]
impl Runtime for ContainerdRuntime {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn ensure_image(&self, image: &str) -> orion_core::Result<()> {
        self.resolve_image(image).await?;
        Ok(())
    }

    async fn create_and_start(&self, spec: &ContainerSpec) -> orion_core::Result<ContainerInfo> {
        Ok(self.create_and_start_task(spec).await?)
    }

    async fn stop(&self, id: &str, grace: Duration) -> orion_core::Result<()> {
        Ok(self.stop_task(id, grace).await?)
    }

    async fn remove(&self, id: &str) -> orion_core::Result<()> {
        Ok(self.remove_container(id).await?)
    }

    async fn inspect(&self, id: &str) -> orion_core::Result<ContainerInfo> {
        Ok(self.inspect_container(id).await?)
    }

    async fn list(
        &self,
        labels: &BTreeMap<String, String>,
    ) -> orion_core::Result<Vec<ContainerInfo>> {
        Ok(self.list_containers(labels).await?)
    }

    async fn logs(&self, id: &str, options: LogOptions) -> orion_core::Result<LogStreamBox> {
        options.refuse_times(self.name())?;
        Ok(self.container_logs(id, options).await?)
    }

    async fn stats(&self, id: &str) -> orion_core::Result<ContainerStats> {
        Ok(self.container_stats(id).await?)
    }

    async fn exec(&self, id: &str, command: &[String]) -> orion_core::Result<ExecOutput> {
        Ok(self.exec_in(id, command).await?)
    }
}

/// Labels as containerd wants them.
fn to_hash_map(labels: &BTreeMap<String, String>) -> HashMap<String, String> {
    labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_follow_containerd_rules() {
        for ok in ["orion", "orion-t1", "a.b_c-d", "x1"] {
            assert!(is_valid_identifier(ok), "{ok}");
        }
        for bad in ["", "-a", "a-", "a--b", "a b", "a/b", &"x".repeat(77)] {
            assert!(!is_valid_identifier(bad), "{bad}");
        }
    }

    #[test]
    fn bad_config_names_each_field() {
        let config = ContainerdConfig {
            namespace: "bad ns".into(),
            snapshotter: String::new(),
            state_dir: PathBuf::from("relative"),
            ..ContainerdConfig::default()
        };
        let Err(RuntimeError::InvalidFields(errors)) = validate_config(&config) else {
            panic!("expected InvalidFields");
        };
        let paths: Vec<_> = errors.0.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "containerd.namespace",
                "containerd.snapshotter",
                "containerd.state_dir"
            ]
        );
    }

    #[test]
    fn unsupported_features_are_errors() {
        let spec = ContainerSpec {
            network_mode: NetworkMode::Bridge,
            ..ContainerSpec::default()
        };
        assert!(matches!(
            check_supported(&spec),
            Err(RuntimeError::Unsupported { .. })
        ));
        let spec = ContainerSpec {
            network_mode: NetworkMode::Host,
            ports: vec![orion_core::runtime::PortBinding {
                container_port: 80,
                host_port: 0,
                protocol: orion_core::model::spec::Protocol::Tcp,
                host_ip: "127.0.0.1".into(),
            }],
            ..ContainerSpec::default()
        };
        let err = check_supported(&spec).unwrap_err();
        assert!(err.to_string().contains("port publishing"), "{err}");
        let spec = ContainerSpec {
            network_mode: NetworkMode::None,
            ..ContainerSpec::default()
        };
        assert!(check_supported(&spec).is_ok());
    }

    #[test]
    fn env_secrets_are_added_and_file_secrets_refused_naming_them() {
        use orion_core::secrets::{SecretDelivery, SecretTarget, SecretValue};
        let with = |target| ContainerSpec {
            env: vec!["A=1".into()],
            secrets: vec![SecretDelivery {
                name: "db".into(),
                target,
                value: SecretValue::new(b"pw".to_vec()).unwrap(),
            }],
            ..ContainerSpec::default()
        };
        let env = with_secret_env(&with(SecretTarget::Env("DB".into()))).unwrap();
        assert_eq!(env, ["A=1", "DB=pw"]);
        let err = with_secret_env(&with(SecretTarget::File("/run/secrets/db".into())))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("\"db\"") && err.contains("/run/secrets/db"),
            "{err}"
        );
    }
}
