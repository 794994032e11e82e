//! Shared by the containerd tests and bench: a busybox image built here (no registry), and a
//! runtime connected to the real containerd in a test namespace.
#![allow(dead_code)]

use std::io::Write;
use std::path::Path;

use orion_core::model::spec::NetworkMode;
use orion_core::testing::runtime::{PortSupport, RuntimeFixture};
use orion_runtime::containerd::{ContainerdConfig, ContainerdRuntime};
use orion_runtime::testing::busybox_rootfs_tar;
use sha2::{Digest, Sha256};

/// The test image's name (OCI layout import).
pub const IMAGE: &str = "orion-test/busybox:latest";
/// The same image imported from the `docker save` form.
pub const SAVED_IMAGE: &str = "orion-test/busybox-saved:latest";
/// Test namespace, apart from the production `orion` one.
pub const NAMESPACE: &str = "orion-test";
/// An image the tests never import.
pub const MISSING_IMAGE: &str = "orion-test/absent:0";

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{:x}", Sha256::digest(bytes))
}

fn append_dir<W: Write>(b: &mut tar::Builder<W>, path: &str, mode: u32) {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Directory);
    h.set_mode(mode);
    h.set_size(0);
    b.append_data(&mut h, path, std::io::empty()).unwrap();
}

fn append_file<W: Write>(b: &mut tar::Builder<W>, path: &str, mode: u32, data: &[u8]) {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mode(mode);
    h.set_size(data.len() as u64);
    b.append_data(&mut h, path, data).unwrap();
}

/// The image's only layer: the busybox root filesystem the Docker tests import too
/// ([`busybox_rootfs_tar`]: the host's static busybox, its applets, `/www/index.html`).
pub fn rootfs_layer() -> Vec<u8> {
    busybox_rootfs_tar()
        .unwrap_or_else(|e| panic!("the containerd tests need the busybox rootfs: {e}"))
}

fn config_json(diff_id: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {
            "Env": ["PATH=/bin", "ORION_IMAGE=busybox"],
            "Cmd": ["sh"],
            "WorkingDir": "/",
        },
        "rootfs": { "type": "layers", "diff_ids": [diff_id] },
    }))
    .unwrap()
}

/// An OCI image layout tarball (oci-layout, index.json, blobs/sha256/...) named [`IMAGE`].
pub fn oci_layout_tar() -> Vec<u8> {
    let layer = rootfs_layer();
    let layer_digest = sha256(&layer);
    let config = config_json(&layer_digest);
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": sha256(&config),
            "size": config.len(),
        },
        "layers": [{
            "mediaType": "application/vnd.oci.image.layer.v1.tar",
            "digest": layer_digest,
            "size": layer.len(),
        }],
    }))
    .unwrap();
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": sha256(&manifest),
            "size": manifest.len(),
            "annotations": {
                "io.containerd.image.name": IMAGE,
                "org.opencontainers.image.ref.name": "latest",
            },
        }],
    }))
    .unwrap();
    let mut b = tar::Builder::new(Vec::new());
    append_file(
        &mut b,
        "oci-layout",
        0o644,
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    );
    append_file(&mut b, "index.json", 0o644, &index);
    append_dir(&mut b, "blobs", 0o755);
    append_dir(&mut b, "blobs/sha256", 0o755);
    for blob in [&layer, &config, &manifest] {
        let hex = sha256(blob).trim_start_matches("sha256:").to_string();
        append_file(&mut b, &format!("blobs/sha256/{hex}"), 0o644, blob);
    }
    b.into_inner().unwrap()
}

/// The same image as `docker save` writes it (manifest.json, <id>.json, <dir>/layer.tar).
pub fn docker_save_tar() -> Vec<u8> {
    let layer = rootfs_layer();
    let config = config_json(&sha256(&layer));
    let config_name = format!("{}.json", sha256(&config).trim_start_matches("sha256:"));
    let manifest = serde_json::to_vec(&serde_json::json!([{
        "Config": config_name,
        "RepoTags": [SAVED_IMAGE],
        "Layers": ["layer0/layer.tar"],
    }]))
    .unwrap();
    let mut b = tar::Builder::new(Vec::new());
    append_file(&mut b, "manifest.json", 0o644, &manifest);
    append_file(&mut b, &config_name, 0o644, &config);
    append_dir(&mut b, "layer0", 0o755);
    append_file(&mut b, "layer0/layer.tar", 0o644, &layer);
    b.into_inner().unwrap()
}

/// A runtime on the real containerd (socket detected), state under `state_dir`.
/// Panics (fails the test) when containerd is unreachable: these tests never skip.
pub async fn runtime(state_dir: &Path) -> ContainerdRuntime {
    let config = ContainerdConfig {
        namespace: NAMESPACE.to_string(),
        state_dir: state_dir.to_path_buf(),
        ..ContainerdConfig::default()
    };
    ContainerdRuntime::connect(config)
        .await
        .expect("containerd must be reachable for these tests (they never skip)")
}

/// A runtime with the busybox image imported.
pub async fn runtime_with_image(state_dir: &Path) -> ContainerdRuntime {
    let rt = runtime(state_dir).await;
    rt.import_image_tar(std::io::Cursor::new(oci_layout_tar()), None)
        .await
        .expect("import the busybox test image");
    rt
}

/// The conformance fixture for [`ContainerdRuntime`] with [`IMAGE`] (see [`runtime_with_image`]).
///
/// Containers run with `NetworkMode::None` (containerd here has no CNI: bridge networking and
/// published ports are `Unsupported`); the HTTP server runs on the host's network at `$PORT`.
pub fn fixture() -> RuntimeFixture {
    RuntimeFixture {
        image: IMAGE.to_owned(),
        shell: vec!["sh".into(), "-c".into()],
        missing_image: MISSING_IMAGE.to_owned(),
        bad_command: (IMAGE.to_owned(), vec!["/no/such/orion-command".into()]),
        ports: PortSupport::HostNetwork {
            command: ["sh", "-c", "exec httpd -f -p 127.0.0.1:$PORT -h /www"]
                .map(String::from)
                .to_vec(),
        },
        network_mode: NetworkMode::None,
        cannot_honour: Vec::new(),
    }
}
