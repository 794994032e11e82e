//! Test helpers (feature `testing`): a busybox image built without any registry, the real-engine
//! requirement, and the fixtures that run `orion_core::testing::runtime` on this crate's runtimes.
//!
//! Tests that need Docker call [`require_docker`] (or [`ensure_test_image`], which calls it):
//! it fails the test when the engine is unreachable; it never skips.

mod rootfs;

use std::collections::BTreeMap;

use bollard::Docker;
use bollard::query_parameters::CreateImageOptions;
use futures::StreamExt;
use orion_core::model::spec::{NetworkMode, Protocol};
use orion_core::runtime::{ContainerSpec, PortBinding};
use orion_core::testing::runtime::{PortSupport, RuntimeFixture};

use crate::docker::{connect, is_status};
use crate::error::{Result, RuntimeError};

pub use rootfs::{APPLETS, BUSYBOX_PATHS, INDEX_HTML, busybox_rootfs_tar, find_busybox};

/// The repository of the test image.
pub const TEST_IMAGE_REPO: &str = "orion-test/busybox";
/// The tag of the test image.
pub const TEST_IMAGE_TAG: &str = "1";
/// The test image reference: busybox, its applets in `/bin`, `/www/index.html`; `CMD ["sh"]`.
pub const TEST_IMAGE: &str = "orion-test/busybox:1";
/// The port [`http_server_spec`] serves on inside the container.
pub const HTTP_PORT: u16 = 8080;
/// Set to `1` (as CI does) to state that the Docker engine must be present.
pub const REQUIRE_DOCKER_ENV: &str = "ORION_REQUIRE_DOCKER";

/// Connects to the local Docker engine, or panics with what to do.
///
/// Tests needing Docker fail when it is missing, with or without `ORION_REQUIRE_DOCKER=1`
/// (the variable only changes the message); they never skip.
pub async fn require_docker() -> Docker {
    match connect().await {
        Ok(docker) => docker,
        Err(e) => {
            let required = std::env::var(REQUIRE_DOCKER_ENV).is_ok_and(|v| v == "1");
            if required {
                panic!("{REQUIRE_DOCKER_ENV}=1 but the Docker engine is unreachable: {e}");
            }
            panic!(
                "this test needs the real Docker engine, which is unreachable: {e}. \
                 Tests needing Docker fail rather than skip; start the engine (API >= 1.41)."
            );
        }
    }
}

/// Makes sure [`TEST_IMAGE`] is in the engine, importing [`busybox_rootfs_tar`] if it is not.
///
/// Idempotent and safe when many test processes call it at once: an in-process once-cell plus an
/// exclusive lock file in the temp directory serialize the check-and-import.
pub async fn ensure_test_image() -> Result<()> {
    static DONE: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    DONE.get_or_try_init(|| async {
        let docker = require_docker().await;
        let lock = tokio::task::spawn_blocking(lock_image_file)
            .await
            .map_err(|e| RuntimeError::io("locking the test image", std::io::Error::other(e)))??;
        let result = import_if_missing(&docker).await;
        drop(lock);
        result
    })
    .await
    .map(|_| ())
}

fn lock_image_file() -> Result<std::fs::File> {
    let path = std::env::temp_dir().join("orion-test-image.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| RuntimeError::io(format!("opening {}", path.display()), e))?;
    file.lock()
        .map_err(|e| RuntimeError::io(format!("locking {}", path.display()), e))?;
    Ok(file)
}

async fn import_if_missing(docker: &Docker) -> Result<()> {
    match docker.inspect_image(TEST_IMAGE).await {
        Ok(_) => return Ok(()),
        Err(e) if is_status(&e, 404) => {}
        Err(source) => {
            return Err(RuntimeError::Docker {
                context: format!("inspecting {TEST_IMAGE}"),
                source,
            });
        }
    }
    let tar = tokio::task::spawn_blocking(busybox_rootfs_tar)
        .await
        .map_err(|e| RuntimeError::io("building the rootfs", std::io::Error::other(e)))??;
    let options = CreateImageOptions {
        from_src: Some("-".to_owned()),
        repo: Some(TEST_IMAGE_REPO.to_owned()),
        tag: Some(TEST_IMAGE_TAG.to_owned()),
        changes: vec![r#"CMD ["sh"]"#.to_owned()],
        ..CreateImageOptions::default()
    };
    let mut progress =
        docker.create_image(Some(options), Some(bollard::body_full(tar.into())), None);
    while let Some(item) = progress.next().await {
        item.map_err(|e| RuntimeError::ImageUnavailable {
            image: TEST_IMAGE.to_owned(),
            reason: format!("docker import of the busybox rootfs failed: {e}"),
        })?;
    }
    Ok(())
}

/// A spec for [`TEST_IMAGE`] running `sh -c script`, with `labels`.
pub fn shell_spec(name: &str, script: &str, labels: &BTreeMap<String, String>) -> ContainerSpec {
    ContainerSpec {
        name: name.to_owned(),
        image: TEST_IMAGE.to_owned(),
        command: vec!["sh".into(), "-c".into(), script.to_owned()],
        labels: labels.clone(),
        ..ContainerSpec::default()
    }
}

/// A spec for [`TEST_IMAGE`] serving `/www` over HTTP on [`HTTP_PORT`], published on
/// `127.0.0.1` at a dynamic host port (read it back from `ContainerInfo::ports`).
pub fn http_server_spec(name: &str, labels: &BTreeMap<String, String>) -> ContainerSpec {
    ContainerSpec {
        name: name.to_owned(),
        image: TEST_IMAGE.to_owned(),
        command: http_command(),
        ports: vec![PortBinding {
            container_port: HTTP_PORT,
            host_port: 0,
            protocol: Protocol::Tcp,
            host_ip: "127.0.0.1".to_owned(),
        }],
        labels: labels.clone(),
        ..ContainerSpec::default()
    }
}

fn http_command() -> Vec<String> {
    ["httpd", "-f", "-p", "8080", "-h", "/www"]
        .map(String::from)
        .to_vec()
}

/// The conformance fixture for [`crate::DockerRuntime`] with [`TEST_IMAGE`] (call
/// [`ensure_test_image`] first).
pub fn docker_fixture() -> RuntimeFixture {
    RuntimeFixture {
        image: TEST_IMAGE.to_owned(),
        shell: vec!["sh".into(), "-c".into()],
        missing_image: "orion-test/absent:0".to_owned(),
        bad_command: (TEST_IMAGE.to_owned(), vec!["/no/such/orion-command".into()]),
        ports: PortSupport::Dynamic {
            command: http_command(),
            container_port: HTTP_PORT,
        },
        network_mode: NetworkMode::Bridge,
        cannot_honour: Vec::new(),
    }
}

/// The conformance fixture for [`crate::ProcessRuntime`]: scripts run by the host's `/bin/sh`,
/// the HTTP server is the host's busybox `httpd` on 127.0.0.1 at the port given in `$PORT`.
#[cfg(feature = "process")]
pub fn process_fixture() -> RuntimeFixture {
    static BUSYBOX: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let busybox = BUSYBOX
        .get_or_init(|| {
            find_busybox()
                .map(|p| p.display().to_string())
                .unwrap_or_else(|e| panic!("{e}"))
        })
        .clone();
    RuntimeFixture {
        image: "/bin/sh".to_owned(),
        shell: vec!["-c".into()],
        missing_image: "/no/such/orion-program".to_owned(),
        bad_command: ("/etc/passwd".to_owned(), Vec::new()),
        ports: PortSupport::Dynamic {
            command: vec![
                "-c".into(),
                format!("exec {busybox} httpd -f -p 127.0.0.1:$PORT -h /tmp"),
            ],
            container_port: HTTP_PORT,
        },
        network_mode: NetworkMode::Bridge,
        cannot_honour: Vec::new(),
    }
}

/// Kills (SIGKILL to the process group) every process recorded in the process runtime's
/// `state_dir` that is still alive, and returns how many. Synchronous, for test clean-up in
/// `Drop` after the `orion` node that started them is gone. A record whose pid now belongs to
/// another process (its `/proc` start time differs) is left alone.
#[cfg(feature = "process")]
pub fn kill_recorded_processes(state_dir: &std::path::Path) -> usize {
    crate::process::kill_recorded(state_dir)
}
