//! Content store and snapshots: writing blobs with their GC labels, reading them back, and
//! unpacking layers onto a snapshot chain keyed by chain id (Prepare, Diff.Apply, Commit).

use std::collections::HashMap;
use std::path::Path;

use containerd_client::services::v1::snapshots::{
    CommitSnapshotRequest, PrepareSnapshotRequest, RemoveSnapshotRequest, StatSnapshotRequest,
};
use containerd_client::services::v1::{
    ApplyRequest, InfoRequest, ReadContentRequest, WriteAction, WriteContentRequest,
};
use containerd_client::types::Descriptor;
use futures::StreamExt;
use sha2::{Digest, Sha256};
use tokio::io::AsyncReadExt;

use super::ContainerdRuntime;
use super::errors::{is_gone, on};
use super::oci::chain_ids;
use crate::error::{Result, RuntimeError};

/// Manifests and configs are small; anything bigger is not one.
pub(crate) const MAX_METADATA_BLOB: usize = 16 << 20;
pub(crate) const WRITE_CHUNK: usize = 1 << 20;

impl ContainerdRuntime {
    /// Writes one blob into the content store unless it is there; sets `labels` either way.
    pub(crate) async fn write_blob(
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
                let file = tokio::fs::File::open(path)
                    .await
                    .map_err(|e| RuntimeError::io(format!("opening {}", path.display()), e))?;
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

    pub(crate) async fn label_blob(
        &self,
        digest: &str,
        labels: HashMap<String, String>,
    ) -> Result<()> {
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
            Err(RuntimeError::ObjectConflict { .. }) => {
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

    pub(crate) async fn read_json<T: serde::de::DeserializeOwned>(
        &self,
        digest: &str,
    ) -> Result<T> {
        let bytes = self.read_blob(digest).await?;
        serde_json::from_slice(&bytes).map_err(|e| RuntimeError::CorruptRecord {
            kind: "content blob",
            path: digest.to_string(),
            reason: format!("not the expected JSON: {e}"),
        })
    }

    pub(crate) async fn read_blob(&self, digest: &str) -> Result<Vec<u8>> {
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
                return Err(RuntimeError::CorruptRecord {
                    kind: "content blob",
                    path: digest.to_string(),
                    reason: format!("larger than {MAX_METADATA_BLOB} bytes for a manifest/config"),
                });
            }
        }
        Ok(out)
    }
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum BlobSource<'a> {
    Bytes(&'a [u8]),
    File(&'a Path),
}

pub(crate) fn write_request(
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

pub(crate) fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex(&Sha256::digest(bytes)))
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
