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
use std::path::Path;

use containerd_client::services::v1::{
    CreateImageRequest, GetImageRequest, Image, UpdateImageRequest,
};
use containerd_client::services::v1::{CreateRequest as LeaseCreate, DeleteRequest as LeaseDelete};
use containerd_client::types::Descriptor;

use super::ContainerdRuntime;
use super::content::{BlobSource, sha256_digest};
use super::errors::{is_gone, on};
use super::layout::{
    DOCKER_LIST, JsonIndex, JsonManifest, OCI_INDEX, PlannedImage, apply_name_override,
    choose_platform, invalid, plan_images, read_limited, to_descriptor,
};
use super::oci::{ImageConfigFile, chain_ids};
use crate::error::{Result, RuntimeError};

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

impl ContainerdRuntime {
    /// Imports every image in a tarball: an OCI image layout (`index.json`, `blobs/`) or a
    /// `docker save` archive (`manifest.json`).
    ///
    /// Names come from the `io.containerd.image.name` or `org.opencontainers.image.ref.name`
    /// annotations (OCI) or `RepoTags` (docker save); `name`, when given, names the single image
    /// of the tarball instead. Re-importing an image is harmless. Multi-platform indexes import
    /// the manifest for this machine's platform.
    ///
    /// Errors: [`RuntimeError::InvalidFields`] for a tarball that is neither format, names no
    /// image, or is inconsistent; [`RuntimeError::Io`] for a local read or write failure;
    /// [`RuntimeError::BackendUnavailable`] or [`RuntimeError::Backend`] when containerd fails.
    pub async fn import_image_tar<R>(
        &self,
        reader: R,
        name: Option<&str>,
    ) -> Result<Vec<ImportedImage>>
    where
        R: Read + Send + 'static,
    {
        let staging = self.state_dir().join("import").join(self.unique("tar"));
        std::fs::create_dir_all(&staging)
            .map_err(|e| RuntimeError::io(format!("creating {}", staging.display()), e))?;
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
        .map_err(|e| RuntimeError::backend("import task failed", e))??;
        let plans = apply_name_override(plans, name)?;

        let lease = self.unique("orion-import");
        self.with_lease(&lease, async {
            let mut imported = Vec::new();
            for plan in plans {
                imported.append(&mut self.import_one(plan, &lease).await?);
            }
            Ok(imported)
        })
        .await
    }

    /// Runs `work` under a new lease (content and snapshots it creates are safe from GC until
    /// it ends), then deletes the lease. The lease expires by itself should this process die.
    async fn with_lease<T>(
        &self,
        lease: &str,
        work: impl std::future::Future<Output = Result<T>>,
    ) -> Result<T> {
        self.leases()
            .create(self.request(LeaseCreate {
                id: lease.to_string(),
                labels: HashMap::from([(
                    "containerd.io/gc.expire".to_string(),
                    rfc3339_utc(std::time::SystemTime::now() + IMPORT_LEASE_TTL),
                )]),
            }))
            .await
            .map_err(on("create", "lease", lease))?;
        let outcome = work.await;
        let deleted = self
            .leases()
            .delete(self.request(LeaseDelete {
                id: lease.to_string(),
                sync: false,
            }))
            .await;
        if let Err(status) = deleted {
            tracing::warn!(lease, error = %status, "cannot delete lease");
        }
        outcome
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

    /// Finds `image` (exactly, or in Docker's normalized form) and makes sure it is unpacked.
    ///
    /// Absent: [`RuntimeError::ImageUnavailable`] naming it; this backend never pulls.
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
            return Err(RuntimeError::ImageUnavailable {
                image: image.to_string(),
                reason: format!(
                    "it is not in containerd namespace {:?}, and the containerd backend does not \
                     pull from registries; import it first (ContainerdRuntime::import_image_tar)",
                    self.namespace()
                ),
            });
        };
        let target = record
            .target
            .ok_or_else(|| RuntimeError::ImageUnavailable {
                image: image.to_string(),
                reason: "its image record has no target".to_string(),
            })?;
        let manifest_desc = self.platform_manifest(target).await?;
        let manifest: JsonManifest = self.read_json(&manifest_desc.digest).await?;
        let config: ImageConfigFile = self.read_json(&manifest.config.digest).await?;
        let diff_ids = config.rootfs.diff_ids.clone();
        let top = chain_ids(&diff_ids)
            .pop()
            .ok_or_else(|| RuntimeError::ImageUnavailable {
                image: image.to_string(),
                reason: "its config lists no layers".to_string(),
            })?;
        if !self.snapshot_exists(&top).await? {
            let layers: Vec<Descriptor> = manifest.layers.iter().map(to_descriptor).collect();
            // Unpacked again (GC'd, or another snapshotter than at import): keep it referenced.
            let lease = self.unique("orion-unpack");
            self.with_lease(&lease, async {
                self.unpack(&layers, &diff_ids, Some(&lease)).await?;
                let label = format!("containerd.io/gc.ref.snapshot.{}", self.snapshotter());
                self.label_blob(
                    &manifest.config.digest,
                    HashMap::from([(label, top.clone())]),
                )
                .await
            })
            .await?;
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
            .ok_or_else(|| RuntimeError::ImageUnavailable {
                image: target.digest.clone(),
                reason: "its index lists no manifest".to_string(),
            })
    }
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
}
