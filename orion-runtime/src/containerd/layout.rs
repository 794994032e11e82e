//! Reading an unpacked image tarball: an OCI image layout (`index.json`, `blobs/`) or a
//! `docker save` archive (`manifest.json`), into images ready to upload.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use containerd_client::types::Descriptor;
use orion_core::error::ValidationErrors;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::error::{Result, RuntimeError};

use super::content::{MAX_METADATA_BLOB, WRITE_CHUNK, hex};

pub(crate) const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub(crate) const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar";
const NAME_ANNOTATION: &str = "io.containerd.image.name";
const REF_ANNOTATION: &str = "org.opencontainers.image.ref.name";

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct JsonDescriptor {
    #[serde(default)]
    pub(crate) media_type: String,
    pub(crate) digest: String,
    pub(crate) size: i64,
    #[serde(default)]
    pub(crate) annotations: HashMap<String, String>,
    #[serde(default)]
    pub(crate) platform: Option<JsonPlatform>,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct JsonPlatform {
    #[serde(default)]
    pub(crate) architecture: String,
    #[serde(default)]
    pub(crate) os: String,
}

#[derive(Debug, Deserialize)]
pub(crate) struct JsonIndex {
    pub(crate) manifests: Vec<JsonDescriptor>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct JsonManifest {
    #[serde(default)]
    pub(crate) media_type: String,
    pub(crate) config: JsonDescriptor,
    pub(crate) layers: Vec<JsonDescriptor>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct DockerSaveEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

/// A blob to upload: where it is staged and how it is described.
#[derive(Debug, Clone)]
pub(crate) struct StagedBlob {
    pub(crate) path: PathBuf,
    pub(crate) descriptor: Descriptor,
}

/// One image of the tarball, ready to upload.
#[derive(Debug)]
pub(crate) struct PlannedImage {
    pub(crate) names: Vec<String>,
    pub(crate) manifest: Vec<u8>,
    pub(crate) manifest_media_type: String,
    pub(crate) config: StagedBlob,
    pub(crate) layers: Vec<StagedBlob>,
}

pub(crate) fn to_descriptor(d: &JsonDescriptor) -> Descriptor {
    Descriptor {
        media_type: d.media_type.clone(),
        digest: d.digest.clone(),
        size: d.size,
        annotations: HashMap::new(),
    }
}

pub(crate) fn invalid(
    path: &str,
    value: impl std::fmt::Display,
    expected: impl Into<String>,
) -> RuntimeError {
    let mut errors = ValidationErrors::default();
    errors.push(path, value, expected);
    RuntimeError::InvalidFields(errors)
}

pub(crate) fn sha256_file(path: &Path) -> Result<(String, i64)> {
    let io = |e| RuntimeError::io(format!("reading {}", path.display()), e);
    let mut file = std::fs::File::open(path).map_err(io)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; WRITE_CHUNK];
    let mut size = 0i64;
    loop {
        let n = file.read(&mut buf).map_err(io)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        size += n as i64;
    }
    Ok((format!("sha256:{}", hex(&hasher.finalize())), size))
}

pub(crate) fn read_limited(path: &Path) -> Result<Vec<u8>> {
    let io = |e| RuntimeError::io(format!("reading {}", path.display()), e);
    let len = std::fs::metadata(path).map_err(io)?.len();
    if len > MAX_METADATA_BLOB as u64 {
        return Err(invalid(
            "image metadata blob",
            path.display(),
            format!("at most {MAX_METADATA_BLOB} bytes"),
        ));
    }
    std::fs::read(path).map_err(io)
}

/// The architecture name OCI uses for this machine.
pub(crate) fn oci_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "arm" => "arm",
        "powerpc64" => "ppc64le",
        "s390x" => "s390x",
        other => other,
    }
}

pub(crate) fn choose_platform(manifests: &[JsonDescriptor]) -> Option<&JsonDescriptor> {
    manifests
        .iter()
        .find(|m| {
            m.platform
                .as_ref()
                .is_some_and(|p| p.os == "linux" && p.architecture == oci_arch())
        })
        .or_else(|| manifests.iter().find(|m| m.platform.is_none()))
        .or_else(|| manifests.first())
}

/// A staged blob `blobs/<algorithm>/<hex>` of an OCI layout, checked to exist.
pub(crate) fn layout_blob(root: &Path, descriptor: &JsonDescriptor) -> Result<StagedBlob> {
    let (algorithm, hex) = descriptor
        .digest
        .split_once(':')
        .ok_or_else(|| invalid("descriptor.digest", &descriptor.digest, "<algorithm>:<hex>"))?;
    if !hex.chars().all(|c| c.is_ascii_hexdigit())
        || !algorithm.chars().all(|c| c.is_ascii_alphanumeric())
    {
        return Err(invalid(
            "descriptor.digest",
            &descriptor.digest,
            "<algorithm>:<hex>",
        ));
    }
    let path = root.join("blobs").join(algorithm).join(hex);
    if !is_file_inside(root, &path) {
        return Err(invalid(
            "image layout",
            format!("missing blob {}", descriptor.digest),
            "every referenced blob under blobs/",
        ));
    }
    Ok(StagedBlob {
        path,
        descriptor: to_descriptor(descriptor),
    })
}

/// True for a regular file that is inside `root` once symlinks are resolved (a tarball's
/// symlink must not make the import read a host file).
pub(crate) fn is_file_inside(root: &Path, path: &Path) -> bool {
    match (root.canonicalize(), path.canonicalize()) {
        (Ok(root), Ok(path)) => path.starts_with(root) && path.is_file(),
        _ => false,
    }
}

/// Reads the unpacked tarball's index (OCI layout) or manifest.json (docker save).
pub(crate) fn plan_images(root: &Path) -> Result<Vec<PlannedImage>> {
    if root.join("index.json").is_file() {
        plan_oci_layout(root)
    } else if root.join("manifest.json").is_file() {
        plan_docker_save(root)
    } else {
        Err(invalid(
            "image tarball",
            "neither index.json nor manifest.json at its root",
            "an OCI image layout tarball or a `docker save` tarball",
        ))
    }
}

pub(crate) fn plan_oci_layout(root: &Path) -> Result<Vec<PlannedImage>> {
    let index: JsonIndex = serde_json::from_slice(&read_limited(&root.join("index.json"))?)
        .map_err(|e| {
            invalid(
                "index.json",
                "unparseable",
                format!("an OCI image index ({e})"),
            )
        })?;
    let mut plans = Vec::new();
    for entry in &index.manifests {
        let names: Vec<String> = entry
            .annotations
            .get(NAME_ANNOTATION)
            .or_else(|| entry.annotations.get(REF_ANNOTATION))
            .cloned()
            .into_iter()
            .collect();
        let mut descriptor = entry.clone();
        if descriptor.media_type == OCI_INDEX || descriptor.media_type == DOCKER_LIST {
            let nested = layout_blob(root, &descriptor)?;
            let nested: JsonIndex =
                serde_json::from_slice(&read_limited(&nested.path)?).map_err(|e| {
                    invalid(
                        "nested index",
                        &descriptor.digest,
                        format!("an index ({e})"),
                    )
                })?;
            descriptor = choose_platform(&nested.manifests)
                .cloned()
                .ok_or_else(|| invalid("nested index", &entry.digest, "at least one manifest"))?;
        }
        let manifest_blob = layout_blob(root, &descriptor)?;
        let manifest_bytes = read_limited(&manifest_blob.path)?;
        let manifest: JsonManifest = serde_json::from_slice(&manifest_bytes).map_err(|e| {
            invalid(
                "manifest",
                &descriptor.digest,
                format!("an image manifest ({e})"),
            )
        })?;
        let media_type = if descriptor.media_type.is_empty() {
            manifest.media_type.clone()
        } else {
            descriptor.media_type.clone()
        };
        plans.push(PlannedImage {
            names,
            config: layout_blob(root, &manifest.config)?,
            layers: manifest
                .layers
                .iter()
                .map(|l| layout_blob(root, l))
                .collect::<Result<_>>()?,
            manifest: manifest_bytes,
            manifest_media_type: media_type,
        });
    }
    Ok(plans)
}

/// `docker save`: layers are plain tars; a Docker schema 2 manifest is made for them.
pub(crate) fn plan_docker_save(root: &Path) -> Result<Vec<PlannedImage>> {
    let entries: Vec<DockerSaveEntry> =
        serde_json::from_slice(&read_limited(&root.join("manifest.json"))?).map_err(|e| {
            invalid(
                "manifest.json",
                "unparseable",
                format!("a docker save manifest ({e})"),
            )
        })?;
    let staged = |relative: &str, media_type: &str| -> Result<StagedBlob> {
        let path = root.join(relative);
        if !is_file_inside(root, &path) {
            return Err(invalid(
                "manifest.json",
                relative,
                "paths of files inside the tarball",
            ));
        }
        let (digest, size) = sha256_file(&path)?;
        Ok(StagedBlob {
            path,
            descriptor: Descriptor {
                media_type: media_type.to_string(),
                digest,
                size,
                annotations: HashMap::new(),
            },
        })
    };
    let mut plans = Vec::new();
    for entry in entries {
        let config = staged(&entry.config, DOCKER_CONFIG)?;
        let layers = entry
            .layers
            .iter()
            .map(|l| staged(l, DOCKER_LAYER))
            .collect::<Result<Vec<_>>>()?;
        let descriptor_json = |b: &StagedBlob| {
            serde_json::json!({
                "mediaType": b.descriptor.media_type,
                "digest": b.descriptor.digest,
                "size": b.descriptor.size,
            })
        };
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": DOCKER_MANIFEST,
            "config": descriptor_json(&config),
            "layers": layers.iter().map(descriptor_json).collect::<Vec<_>>(),
        });
        plans.push(PlannedImage {
            names: entry.repo_tags.unwrap_or_default(),
            manifest: serde_json::to_vec(&manifest)
                .map_err(|e| RuntimeError::backend("encode manifest", e))?,
            manifest_media_type: DOCKER_MANIFEST.to_string(),
            config,
            layers,
        });
    }
    Ok(plans)
}

pub(crate) fn apply_name_override(
    mut plans: Vec<PlannedImage>,
    name: Option<&str>,
) -> Result<Vec<PlannedImage>> {
    if let Some(name) = name {
        if plans.len() != 1 {
            return Err(invalid(
                "name",
                name,
                format!("no name override for a tarball of {} images", plans.len()),
            ));
        }
        plans[0].names = vec![name.to_string()];
    }
    if let Some(unnamed) = plans.iter().position(|p| p.names.is_empty()) {
        return Err(invalid(
            format!("image {unnamed} of the tarball").as_str(),
            "no name",
            "a name annotation (io.containerd.image.name), RepoTags, or a name passed to import",
        ));
    }
    Ok(plans)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_picks_this_platform() {
        let d = |digest: &str, arch: &str| JsonDescriptor {
            media_type: String::new(),
            digest: digest.into(),
            size: 1,
            annotations: HashMap::new(),
            platform: Some(JsonPlatform {
                architecture: arch.into(),
                os: "linux".into(),
            }),
        };
        let list = [d("sha256:a", "riscv-none"), d("sha256:b", oci_arch())];
        assert_eq!(choose_platform(&list).unwrap().digest, "sha256:b");
    }

    #[test]
    fn blobs_must_stay_inside_the_tarball() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir_all(root.join("layer")).unwrap();
        std::fs::write(root.join("layer/layer.tar"), b"x").unwrap();
        std::fs::write(dir.path().join("outside"), b"secret").unwrap();
        std::os::unix::fs::symlink("../outside", root.join("escape")).unwrap();
        std::os::unix::fs::symlink("layer/layer.tar", root.join("alias")).unwrap();
        assert!(is_file_inside(&root, &root.join("layer/layer.tar")));
        assert!(is_file_inside(&root, &root.join("alias")));
        assert!(!is_file_inside(&root, &root.join("escape")));
        assert!(!is_file_inside(&root, &root.join("layer")));
        assert!(!is_file_inside(&root, &root.join("missing")));
    }

    #[test]
    fn a_directory_without_index_or_manifest_is_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let err = plan_images(dir.path()).unwrap_err();
        assert!(err.to_string().contains("OCI image layout"), "{err}");
    }
}
