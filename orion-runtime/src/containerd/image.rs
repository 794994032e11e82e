//! Images: import from a tarball through the content store, unpack into a snapshot chain,
//! resolve a reference to its config and top snapshot.
//!
//! containerd 1.6 has no Transfer service, so an import is done by hand, as `ctr import` does:
//! every blob is written with the content Write API (under a lease, so GC leaves it alone until
//! the image record references it), with the GC labels that tie manifest -> config/layers and
//! config -> top snapshot; then the image record is created; then each layer's diff is applied
//! onto a snapshot keyed by its chain id (Prepare, Diff.Apply, Commit).

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use containerd_client::services::v1::snapshots::{
    CommitSnapshotRequest, PrepareSnapshotRequest, RemoveSnapshotRequest, StatSnapshotRequest,
};
use containerd_client::services::v1::{
    ApplyRequest, CreateImageRequest, GetImageRequest, Image, InfoRequest, ReadContentRequest,
    UpdateImageRequest, WriteAction, WriteContentRequest,
};
use containerd_client::services::v1::{CreateRequest as LeaseCreate, DeleteRequest as LeaseDelete};
use containerd_client::types::Descriptor;
use futures::StreamExt;
use orion_core::Error;
use orion_core::error::{Result, ValidationErrors};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use tokio::io::AsyncReadExt;

use super::ContainerdRuntime;
use super::errors::{is_gone, on};
use super::oci::{ImageConfigFile, chain_ids};

const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar";
const NAME_ANNOTATION: &str = "io.containerd.image.name";
const REF_ANNOTATION: &str = "org.opencontainers.image.ref.name";
/// Manifests and configs are small; anything bigger is not one.
const MAX_METADATA_BLOB: usize = 16 << 20;
const WRITE_CHUNK: usize = 1 << 20;
/// How long an import's lease outlives a crashed importer.
const IMPORT_LEASE_TTL: std::time::Duration = std::time::Duration::from_secs(3600);

/// One image an import created or updated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportedImage {
    /// The image name (reference) it is stored under.
    pub name: String,
    /// Digest of its manifest.
    pub manifest_digest: String,
    /// Chain id of its top layer: the snapshot containers start from.
    pub chain_id: String,
}

/// A reference resolved to what a container needs.
#[derive(Debug, Clone)]
pub(crate) struct ResolvedImage {
    pub name: String,
    pub config: ImageConfigFile,
    pub chain_id: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct JsonDescriptor {
    #[serde(default)]
    media_type: String,
    digest: String,
    size: i64,
    #[serde(default)]
    annotations: HashMap<String, String>,
    #[serde(default)]
    platform: Option<JsonPlatform>,
}

#[derive(Debug, Clone, Deserialize)]
struct JsonPlatform {
    #[serde(default)]
    architecture: String,
    #[serde(default)]
    os: String,
}

#[derive(Debug, Deserialize)]
struct JsonIndex {
    manifests: Vec<JsonDescriptor>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct JsonManifest {
    #[serde(default)]
    media_type: String,
    config: JsonDescriptor,
    layers: Vec<JsonDescriptor>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerSaveEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

/// A blob to upload: where it is staged and how it is described.
#[derive(Debug, Clone)]
struct StagedBlob {
    path: PathBuf,
    descriptor: Descriptor,
}

/// One image of the tarball, ready to upload.
#[derive(Debug)]
struct PlannedImage {
    names: Vec<String>,
    manifest: Vec<u8>,
    manifest_media_type: String,
    config: StagedBlob,
    layers: Vec<StagedBlob>,
}

impl ContainerdRuntime {
    /// Imports every image in a tarball: an OCI image layout (`index.json`, `blobs/`) or a
    /// `docker save` archive (`manifest.json`).
    ///
    /// Names come from the `io.containerd.image.name` or `org.opencontainers.image.ref.name`
    /// annotations (OCI) or `RepoTags` (docker save); `name`, when given, names the single image
    /// of the tarball instead. Re-importing an image is harmless. Multi-platform indexes import
    /// the manifest for this machine's platform.
    ///
    /// Errors: [`Error::Invalid`] for a tarball that is neither format, names no image, or is
    /// inconsistent; [`Error::Io`] for a read failure; backend errors from containerd.
    pub async fn import_image_tar<R>(
        &self,
        reader: R,
        name: Option<&str>,
    ) -> Result<Vec<ImportedImage>>
    where
        R: Read + Send + 'static,
    {
        let staging = self.state_dir().join("import").join(self.unique("tar"));
        std::fs::create_dir_all(&staging)?;
        let result = self.import_staged(reader, name, &staging).await;
        if let Err(e) = tokio::fs::remove_dir_all(&staging).await {
            tracing::warn!(dir = %staging.display(), error = %e, "cannot remove import staging dir");
        }
        result
    }

    async fn import_staged<R>(
        &self,
        reader: R,
        name: Option<&str>,
        staging: &Path,
    ) -> Result<Vec<ImportedImage>>
    where
        R: Read + Send + 'static,
    {
        let dir = staging.to_path_buf();
        let plans = tokio::task::spawn_blocking(move || -> Result<Vec<PlannedImage>> {
            tar::Archive::new(reader).unpack(&dir).map_err(|e| {
                invalid(
                    "image tarball",
                    "unreadable tar",
                    format!("a tar archive ({e})"),
                )
            })?;
            plan_images(&dir)
        })
        .await
        .map_err(|e| Error::backend("import task failed", e))??;
        let plans = apply_name_override(plans, name)?;

        let lease = self.unique("orion-import");
        self.leases()
            .create(self.request(LeaseCreate {
                id: lease.clone(),
                // Should this process die mid-import, containerd drops the lease by itself.
                labels: HashMap::from([(
                    "containerd.io/gc.expire".to_string(),
                    rfc3339_utc(std::time::SystemTime::now() + IMPORT_LEASE_TTL),
                )]),
            }))
            .await
            .map_err(on("create", "lease", &lease))?;
        let mut imported = Vec::new();
        let mut outcome = Ok(());
        for plan in plans {
            match self.import_one(plan, &lease).await {
                Ok(mut images) => imported.append(&mut images),
                Err(e) => {
                    outcome = Err(e);
                    break;
                }
            }
        }
        let deleted = self
            .leases()
            .delete(self.request(LeaseDelete {
                id: lease.clone(),
                sync: false,
            }))
            .await;
        if let Err(status) = deleted {
            tracing::warn!(lease, error = %status, "cannot delete import lease");
        }
        outcome.map(|()| imported)
    }

    async fn import_one(&self, plan: PlannedImage, lease: &str) -> Result<Vec<ImportedImage>> {
        let config_bytes = read_limited(&plan.config.path)?;
        let config: ImageConfigFile = serde_json::from_slice(&config_bytes).map_err(|e| {
            invalid(
                "image config",
                plan.config.path.display(),
                format!("image config JSON ({e})"),
            )
        })?;
        let diff_ids = &config.rootfs.diff_ids;
        if diff_ids.len() != plan.layers.len() {
            return Err(invalid(
                "image config rootfs.diff_ids",
                diff_ids.len(),
                format!("one diff id per manifest layer ({})", plan.layers.len()),
            ));
        }
        let chains = chain_ids(diff_ids);
        let top = chains
            .last()
            .cloned()
            .ok_or_else(|| invalid("image manifest layers", "none", "at least one layer"))?;

        for (layer, diff_id) in plan.layers.iter().zip(diff_ids) {
            let labels =
                HashMap::from([("containerd.io/uncompressed".to_string(), diff_id.clone())]);
            self.write_blob(
                lease,
                BlobSource::File(&layer.path),
                &layer.descriptor,
                labels,
            )
            .await?;
        }
        let config_labels = HashMap::from([(
            format!("containerd.io/gc.ref.snapshot.{}", self.snapshotter()),
            top.clone(),
        )]);
        self.write_blob(
            lease,
            BlobSource::Bytes(&config_bytes),
            &plan.config.descriptor,
            config_labels,
        )
        .await?;
        let mut manifest_labels = HashMap::from([(
            "containerd.io/gc.ref.content.config".to_string(),
            plan.config.descriptor.digest.clone(),
        )]);
        for (i, layer) in plan.layers.iter().enumerate() {
            manifest_labels.insert(
                format!("containerd.io/gc.ref.content.l.{i}"),
                layer.descriptor.digest.clone(),
            );
        }
        let manifest_descriptor = Descriptor {
            media_type: plan.manifest_media_type.clone(),
            digest: sha256_digest(&plan.manifest),
            size: plan.manifest.len() as i64,
            annotations: HashMap::new(),
        };
        self.write_blob(
            lease,
            BlobSource::Bytes(&plan.manifest),
            &manifest_descriptor,
            manifest_labels,
        )
        .await?;

        let layers: Vec<Descriptor> = plan.layers.iter().map(|l| l.descriptor.clone()).collect();
        self.unpack(&layers, diff_ids, Some(lease)).await?;

        let mut out = Vec::new();
        for name in plan.names {
            self.put_image_record(&name, &manifest_descriptor, lease)
                .await?;
            out.push(ImportedImage {
                name,
                manifest_digest: manifest_descriptor.digest.clone(),
                chain_id: top.clone(),
            });
        }
        Ok(out)
    }

    async fn put_image_record(&self, name: &str, target: &Descriptor, lease: &str) -> Result<()> {
        let image = Image {
            name: name.to_string(),
            labels: HashMap::new(),
            target: Some(target.clone()),
            created_at: None,
            updated_at: None,
        };
        let created = self
            .images()
            .create(self.request_with_lease(
                CreateImageRequest {
                    image: Some(image.clone()),
                    source_date_epoch: None,
                },
                Some(lease),
            ))
            .await;
        match created {
            Ok(_) => Ok(()),
            Err(status) if status.code() == containerd_client::tonic::Code::AlreadyExists => self
                .images()
                .update(self.request_with_lease(
                    UpdateImageRequest {
                        image: Some(image),
                        update_mask: None,
                        source_date_epoch: None,
                    },
                    Some(lease),
                ))
                .await
                .map(|_| ())
                .map_err(on("update", "image", name)),
            Err(status) => Err(on("create", "image", name)(status)),
        }
    }

    /// Writes one blob into the content store unless it is there; sets `labels` either way.
    async fn write_blob(
        &self,
        lease: &str,
        source: BlobSource<'_>,
        descriptor: &Descriptor,
        labels: HashMap<String, String>,
    ) -> Result<()> {
        let digest = descriptor.digest.clone();
        let present = self
            .content()
            .info(self.request(InfoRequest {
                digest: digest.clone(),
            }))
            .await;
        match present {
            Ok(_) => return self.label_blob(&digest, labels).await,
            Err(status) if is_gone(&status) => {}
            Err(status) => return Err(on("stat", "blob", &digest)(status)),
        }
        let reference = self.unique("orion-write");
        let total = descriptor.size;
        let chunks: Vec<WriteContentRequest> = match source {
            BlobSource::Bytes(bytes) => bytes
                .chunks(WRITE_CHUNK)
                .scan(0i64, |offset, chunk| {
                    let request = write_request(&reference, total, &digest, *offset, chunk);
                    *offset += chunk.len() as i64;
                    Some(request)
                })
                .collect(),
            BlobSource::File(_) => Vec::new(),
        };
        // The commit carries the final offset: an offset of 0 would make containerd truncate.
        let commit = WriteContentRequest {
            action: WriteAction::Commit as i32,
            r#ref: reference.clone(),
            total,
            expected: digest.clone(),
            offset: total,
            data: Vec::new(),
            labels,
        };
        let stream: futures::stream::BoxStream<'static, WriteContentRequest> = match source {
            BlobSource::Bytes(_) => futures::stream::iter(chunks)
                .chain(futures::stream::iter([commit]))
                .boxed(),
            BlobSource::File(path) => {
                let file = tokio::fs::File::open(path).await?;
                let (reference, expected) = (reference.clone(), digest.clone());
                futures::stream::unfold(
                    (Some(file), 0i64, Some(commit)),
                    move |(file, offset, commit)| {
                        let (reference, expected) = (reference.clone(), expected.clone());
                        async move {
                            let mut file = match file {
                                Some(f) => f,
                                None => return commit.map(|c| (c, (None, offset, None))),
                            };
                            let mut buf = vec![0u8; WRITE_CHUNK];
                            match file.read(&mut buf).await {
                                Ok(n) if n > 0 => {
                                    buf.truncate(n);
                                    let r =
                                        write_request(&reference, total, &expected, offset, &buf);
                                    Some((r, (Some(file), offset + n as i64, commit)))
                                }
                                // End of file, or a read error: commit; containerd then rejects a
                                // short blob with a size/digest mismatch.
                                _ => commit.map(|c| (c, (None, offset, None))),
                            }
                        }
                    },
                )
                .boxed()
            }
        };
        let response = self
            .content()
            .write(self.request_with_lease(stream, Some(lease)))
            .await;
        let mut responses = match response {
            Ok(r) => r.into_inner(),
            Err(status) if status.code() == containerd_client::tonic::Code::AlreadyExists => {
                return Ok(());
            }
            Err(status) => return Err(on("write", "blob", &digest)(status)),
        };
        loop {
            match responses.message().await {
                Ok(Some(_)) => continue,
                Ok(None) => return Ok(()),
                Err(status) if status.code() == containerd_client::tonic::Code::AlreadyExists => {
                    return Ok(());
                }
                Err(status) => return Err(on("write", "blob", &digest)(status)),
            }
        }
    }

    async fn label_blob(&self, digest: &str, labels: HashMap<String, String>) -> Result<()> {
        use containerd_client::services::v1::{Info, UpdateRequest};
        if labels.is_empty() {
            return Ok(());
        }
        let paths = labels.keys().map(|k| format!("labels.{k}")).collect();
        self.content()
            .update(self.request(UpdateRequest {
                info: Some(Info {
                    digest: digest.to_string(),
                    size: 0,
                    created_at: None,
                    updated_at: None,
                    labels,
                }),
                update_mask: Some(prost_types::FieldMask { paths }),
            }))
            .await
            .map(|_| ())
            .map_err(on("label", "blob", digest))
    }

    /// Applies each layer onto the snapshot chain; layers already unpacked are skipped.
    pub(crate) async fn unpack(
        &self,
        layers: &[Descriptor],
        diff_ids: &[String],
        lease: Option<&str>,
    ) -> Result<()> {
        let chains = chain_ids(diff_ids);
        let mut parent = String::new();
        for (layer, chain) in layers.iter().zip(&chains) {
            if !self.snapshot_exists(chain).await? {
                self.apply_layer(layer, chain, &parent, lease).await?;
            }
            parent = chain.clone();
        }
        Ok(())
    }

    pub(crate) async fn snapshot_exists(&self, key: &str) -> Result<bool> {
        let stat = self
            .snapshots()
            .stat(self.request(StatSnapshotRequest {
                snapshotter: self.snapshotter().to_string(),
                key: key.to_string(),
            }))
            .await;
        match stat {
            Ok(_) => Ok(true),
            Err(status) if is_gone(&status) => Ok(false),
            Err(status) => Err(on("stat", "snapshot", key)(status)),
        }
    }

    async fn apply_layer(
        &self,
        layer: &Descriptor,
        chain: &str,
        parent: &str,
        lease: Option<&str>,
    ) -> Result<()> {
        let key = self.unique("orion-extract");
        let prepared = self
            .snapshots()
            .prepare(self.request_with_lease(
                PrepareSnapshotRequest {
                    snapshotter: self.snapshotter().to_string(),
                    key: key.clone(),
                    parent: parent.to_string(),
                    labels: HashMap::new(),
                },
                lease,
            ))
            .await
            .map_err(on("prepare", "snapshot", &key))?
            .into_inner();
        let applied = self
            .diff()
            .apply(self.request_with_lease(
                ApplyRequest {
                    diff: Some(layer.clone()),
                    mounts: prepared.mounts,
                    payloads: HashMap::new(),
                    sync_fs: false,
                },
                lease,
            ))
            .await
            .map_err(on("apply", "layer", &layer.digest));
        let committed = match applied {
            Ok(_) => self
                .snapshots()
                .commit(self.request_with_lease(
                    CommitSnapshotRequest {
                        snapshotter: self.snapshotter().to_string(),
                        name: chain.to_string(),
                        key: key.clone(),
                        labels: HashMap::new(),
                    },
                    lease,
                ))
                .await
                .map(|_| ())
                .map_err(on("commit", "snapshot", chain)),
            Err(e) => Err(e),
        };
        match committed {
            Ok(()) => Ok(()),
            // Someone else unpacked the same layer meanwhile: theirs is as good as ours.
            Err(Error::Conflict(_)) => {
                self.remove_snapshot(&key).await;
                Ok(())
            }
            Err(e) => {
                self.remove_snapshot(&key).await;
                Err(e)
            }
        }
    }

    /// Best-effort removal (cleanup paths).
    pub(crate) async fn remove_snapshot(&self, key: &str) {
        let removed = self
            .snapshots()
            .remove(self.request(RemoveSnapshotRequest {
                snapshotter: self.snapshotter().to_string(),
                key: key.to_string(),
            }))
            .await;
        if let Err(status) = removed
            && !is_gone(&status)
        {
            tracing::warn!(key, error = %status, "cannot remove snapshot");
        }
    }

    /// Finds `image` (exactly, or in Docker's normalized form) and makes sure it is unpacked.
    ///
    /// Absent: [`Error::ImageUnavailable`] naming it; this backend never pulls.
    pub(crate) async fn resolve_image(&self, image: &str) -> Result<ResolvedImage> {
        let mut found = None;
        for candidate in name_candidates(image) {
            let got = self
                .images()
                .get(self.request(GetImageRequest {
                    name: candidate.clone(),
                }))
                .await;
            match got {
                Ok(response) => {
                    found = response.into_inner().image;
                    break;
                }
                Err(status) if is_gone(&status) => continue,
                Err(status) => return Err(on("get", "image", image)(status)),
            }
        }
        let Some(record) = found else {
            return Err(Error::ImageUnavailable {
                image: image.to_string(),
                reason: format!(
                    "it is not in containerd namespace {:?}, and the containerd backend does not \
                     pull from registries; import it first (ContainerdRuntime::import_image_tar)",
                    self.namespace()
                ),
            });
        };
        let target = record.target.ok_or_else(|| Error::ImageUnavailable {
            image: image.to_string(),
            reason: "its image record has no target".to_string(),
        })?;
        let manifest_desc = self.platform_manifest(target).await?;
        let manifest: JsonManifest = self.read_json(&manifest_desc.digest).await?;
        let config: ImageConfigFile = self.read_json(&manifest.config.digest).await?;
        let diff_ids = config.rootfs.diff_ids.clone();
        let top = chain_ids(&diff_ids)
            .pop()
            .ok_or_else(|| Error::ImageUnavailable {
                image: image.to_string(),
                reason: "its config lists no layers".to_string(),
            })?;
        if !self.snapshot_exists(&top).await? {
            let layers: Vec<Descriptor> = manifest.layers.iter().map(to_descriptor).collect();
            self.unpack(&layers, &diff_ids, None).await?;
        }
        Ok(ResolvedImage {
            name: record.name,
            config,
            chain_id: top,
        })
    }

    /// An index resolves to the manifest for this platform; a manifest is itself.
    async fn platform_manifest(&self, target: Descriptor) -> Result<Descriptor> {
        if target.media_type != OCI_INDEX && target.media_type != DOCKER_LIST {
            return Ok(target);
        }
        let index: JsonIndex = self.read_json(&target.digest).await?;
        choose_platform(&index.manifests)
            .map(to_descriptor)
            .ok_or_else(|| Error::ImageUnavailable {
                image: target.digest.clone(),
                reason: "its index lists no manifest".to_string(),
            })
    }

    async fn read_json<T: serde::de::DeserializeOwned>(&self, digest: &str) -> Result<T> {
        let bytes = self.read_blob(digest).await?;
        serde_json::from_slice(&bytes).map_err(|e| Error::Corrupt {
            key: digest.to_string(),
            reason: format!("not the expected JSON: {e}"),
        })
    }

    async fn read_blob(&self, digest: &str) -> Result<Vec<u8>> {
        let mut stream = self
            .content()
            .read(self.request(ReadContentRequest {
                digest: digest.to_string(),
                offset: 0,
                size: 0,
            }))
            .await
            .map_err(on("read", "blob", digest))?
            .into_inner();
        let mut out = Vec::new();
        while let Some(chunk) = stream.message().await.map_err(on("read", "blob", digest))? {
            out.extend_from_slice(&chunk.data);
            if out.len() > MAX_METADATA_BLOB {
                return Err(Error::Corrupt {
                    key: digest.to_string(),
                    reason: format!("larger than {MAX_METADATA_BLOB} bytes for a manifest/config"),
                });
            }
        }
        Ok(out)
    }
}

#[derive(Debug, Clone, Copy)]
enum BlobSource<'a> {
    Bytes(&'a [u8]),
    File(&'a Path),
}

fn write_request(
    reference: &str,
    total: i64,
    expected: &str,
    offset: i64,
    data: &[u8],
) -> WriteContentRequest {
    WriteContentRequest {
        action: WriteAction::Write as i32,
        r#ref: reference.to_string(),
        total,
        expected: expected.to_string(),
        offset,
        data: data.to_vec(),
        labels: HashMap::new(),
    }
}

fn to_descriptor(d: &JsonDescriptor) -> Descriptor {
    Descriptor {
        media_type: d.media_type.clone(),
        digest: d.digest.clone(),
        size: d.size,
        annotations: HashMap::new(),
    }
}

fn invalid(path: &str, value: impl std::fmt::Display, expected: impl Into<String>) -> Error {
    let mut errors = ValidationErrors::default();
    errors.push(path, value, expected);
    Error::Invalid(errors)
}

pub(crate) fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex(&Sha256::digest(bytes)))
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `YYYY-MM-DDTHH:MM:SSZ` (civil-from-days, proleptic Gregorian calendar).
fn rfc3339_utc(t: std::time::SystemTime) -> String {
    let secs = t
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn sha256_file(path: &Path) -> Result<(String, i64)> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; WRITE_CHUNK];
    let mut size = 0i64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        size += n as i64;
    }
    Ok((format!("sha256:{}", hex(&hasher.finalize())), size))
}

fn read_limited(path: &Path) -> Result<Vec<u8>> {
    let len = std::fs::metadata(path)?.len();
    if len > MAX_METADATA_BLOB as u64 {
        return Err(invalid(
            "image metadata blob",
            path.display(),
            format!("at most {MAX_METADATA_BLOB} bytes"),
        ));
    }
    Ok(std::fs::read(path)?)
}

/// The architecture name OCI uses for this machine.
fn oci_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "arm" => "arm",
        "powerpc64" => "ppc64le",
        "s390x" => "s390x",
        other => other,
    }
}

fn choose_platform(manifests: &[JsonDescriptor]) -> Option<&JsonDescriptor> {
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
fn layout_blob(root: &Path, descriptor: &JsonDescriptor) -> Result<StagedBlob> {
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
fn is_file_inside(root: &Path, path: &Path) -> bool {
    match (root.canonicalize(), path.canonicalize()) {
        (Ok(root), Ok(path)) => path.starts_with(root) && path.is_file(),
        _ => false,
    }
}

/// Reads the unpacked tarball's index (OCI layout) or manifest.json (docker save).
fn plan_images(root: &Path) -> Result<Vec<PlannedImage>> {
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

fn plan_oci_layout(root: &Path) -> Result<Vec<PlannedImage>> {
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
fn plan_docker_save(root: &Path) -> Result<Vec<PlannedImage>> {
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
                .map_err(|e| Error::backend("encode manifest", e))?,
            manifest_media_type: DOCKER_MANIFEST.to_string(),
            config,
            layers,
        });
    }
    Ok(plans)
}

fn apply_name_override(
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

/// `image` as given, with `:latest` when untagged, and in Docker's normalized form.
pub(crate) fn name_candidates(image: &str) -> Vec<String> {
    let mut out = vec![image.to_string()];
    let last = image.rsplit('/').next().unwrap_or(image);
    let tagged = if last.contains(':') || image.contains('@') {
        image.to_string()
    } else {
        format!("{image}:latest")
    };
    let first = image.split('/').next().unwrap_or(image);
    let has_domain =
        image.contains('/') && (first.contains('.') || first.contains(':') || first == "localhost");
    let normalized = if has_domain {
        tagged.clone()
    } else if image.contains('/') {
        format!("docker.io/{tagged}")
    } else {
        format!("docker.io/library/{tagged}")
    };
    for candidate in [tagged, normalized] {
        if !out.contains(&candidate) {
            out.push(candidate);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_tried_as_given_then_normalized() {
        assert_eq!(
            name_candidates("busybox"),
            [
                "busybox",
                "busybox:latest",
                "docker.io/library/busybox:latest"
            ]
        );
        assert_eq!(
            name_candidates("orion/app:1"),
            ["orion/app:1", "docker.io/orion/app:1"]
        );
        assert_eq!(
            name_candidates("localhost:5000/app"),
            ["localhost:5000/app", "localhost:5000/app:latest"]
        );
    }

    #[test]
    fn lease_expiry_is_rfc3339() {
        let at = |s: u64| rfc3339_utc(std::time::UNIX_EPOCH + std::time::Duration::from_secs(s));
        assert_eq!(at(0), "1970-01-01T00:00:00Z");
        assert_eq!(at(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(at(1_700_000_000), "2023-11-14T22:13:20Z");
    }

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
