//! The Raft state machine: applies [`Command`]s, in log order, to any inner [`Store`].
//!
//! Determinism: only `Command` entries touch the inner store (blank and membership entries do
//! not), so every node applying the same log from the same snapshot reaches the same revisions.
//!
//! Persistence ("persistent snapshot" mode in openraft's terms): the inner store is not trusted
//! to match the log after a restart, because its writes and the applied log id cannot be made
//! atomic for an arbitrary `Store`. Instead every snapshot (inner state + last applied log id +
//! membership) is saved durably (written, fdatasync'd and renamed into place) in the file
//! `<data dir>/raft/snapshot` before openraft is told it exists, and on start the inner store is
//! restored from it (or emptied when there is none); openraft then re-applies the log after the
//! snapshot. A restarted node therefore never applies an entry twice. Only the current
//! snapshot's meta stays in memory; its data (the whole store, encoded) is read back from that
//! file when openraft asks for it, to send it to a follower.

// openraft's trait methods return `StorageError`, which is large; the helpers here return it too.
#![allow(clippy::result_large_err)]

use std::collections::{HashMap, VecDeque};
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{
    BasicNode, Entry, EntryPayload, LogId, OptionalSend, RaftSnapshotBuilder, SnapshotMeta,
    StorageError, StorageIOError, StoredMembership,
};
use orion_core::store::{Store, StoreSnapshot, TxnResult};
use serde::{Deserialize, Serialize};

use super::{
    Command, CommandResponse, DEDUP_WINDOW, NodeId, RequestId, TypeConfig, WireError, durable,
};
use crate::codec;
use crate::error::Result;

type StorageResult<T> = std::result::Result<T, StorageError<NodeId>>;

const SNAPSHOT_FILE: &str = "snapshot";

fn sm_write_err(e: impl ToString) -> StorageError<NodeId> {
    StorageIOError::write_state_machine(openraft::AnyError::error(e)).into()
}

fn snap_err(e: impl ToString) -> StorageError<NodeId> {
    StorageIOError::write_snapshot(None, openraft::AnyError::error(e)).into()
}

/// The result a command had, as remembered for its request id.
type Outcome = std::result::Result<TxnResult, WireError>;

/// What a snapshot's data holds: the inner store's state and the request ids applied so far
/// (oldest first), so that a node restored from it deduplicates retries like the others.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SnapshotState {
    pub store: StoreSnapshot,
    pub applied_requests: Vec<(RequestId, Outcome)>,
}

/// The last [`DEDUP_WINDOW`] request ids applied and their results, evicted oldest first (the
/// same on every node, since entries are applied in the same order).
#[derive(Debug, Default)]
struct Dedup {
    order: VecDeque<RequestId>,
    results: HashMap<RequestId, Outcome>,
}

impl Dedup {
    fn from_list(list: Vec<(RequestId, Outcome)>) -> Self {
        let mut d = Dedup::default();
        for (id, outcome) in list {
            d.record(id, outcome);
        }
        d
    }

    fn record(&mut self, id: RequestId, outcome: Outcome) {
        if self.results.insert(id, outcome).is_none() {
            self.order.push_back(id);
        }
        while self.order.len() > DEDUP_WINDOW {
            if let Some(old) = self.order.pop_front() {
                self.results.remove(&old);
            }
        }
    }

    fn to_list(&self) -> Vec<(RequestId, Outcome)> {
        self.order
            .iter()
            .filter_map(|id| self.results.get(id).map(|o| (*id, o.clone())))
            .collect()
    }
}

/// A snapshot as stored and as sent: its meta and the encoded [`SnapshotState`].
#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredSnapshot {
    meta: SnapshotMeta<NodeId, BasicNode>,
    data: Vec<u8>,
}

type Meta = SnapshotMeta<NodeId, BasicNode>;

/// The current snapshot, shared by the state machine and its builders. Only its meta stays in
/// memory: the data (the whole store, encoded) lives in its file, written durably before the
/// snapshot becomes current, and is read back when openraft asks for it (to send it to a
/// follower that needs it). A snapshot is only replaced by a newer one.
#[derive(Debug, Clone)]
struct SnapshotSlot {
    dir: PathBuf,
    /// Serializes saves and reads, so an older snapshot's file never lands after a newer one's
    /// and a read never sees a file newer than the meta it checks against.
    saving: Arc<tokio::sync::Mutex<()>>,
    current: Arc<Mutex<Option<Meta>>>,
}

impl SnapshotSlot {
    fn current_meta(&self) -> Option<Meta> {
        self.current
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The current snapshot, its data read back from its file (on a blocking thread). An error
    /// when the file is gone or holds another snapshot than the current one (never written so
    /// by this slot: someone changed the data dir).
    async fn get(&self) -> StorageResult<Option<StoredSnapshot>> {
        let _saving = self.saving.lock().await;
        let Some(meta) = self.current_meta() else {
            return Ok(None);
        };
        let dir = self.dir.clone();
        let read = tokio::task::spawn_blocking(move || {
            durable::read::<StoredSnapshot>(&dir, SNAPSHOT_FILE)
        })
        .await
        .map_err(|e| read_snap_err(&meta, e))?
        .map_err(|e| read_snap_err(&meta, e))?;
        match read {
            Some(snap) if snap.meta == meta => Ok(Some(snap)),
            Some(snap) => Err(read_snap_err(
                &meta,
                format!(
                    "the snapshot file holds snapshot {}, not the current one",
                    snap.meta.snapshot_id
                ),
            )),
            None => Err(read_snap_err(&meta, "the snapshot file is missing")),
        }
    }

    /// Saves `snap` durably (fdatasync'd before this returns) unless a snapshot at least as new
    /// is already there; only then does it become the current one. Hands `snap` back.
    async fn save(&self, snap: StoredSnapshot) -> StorageResult<StoredSnapshot> {
        let _saving = self.saving.lock().await;
        let newer_exists = self
            .current_meta()
            .is_some_and(|existing| existing.last_log_id > snap.meta.last_log_id);
        if newer_exists {
            return Ok(snap);
        }
        let dir = self.dir.clone();
        let snap = tokio::task::spawn_blocking(move || {
            durable::replace(&dir, SNAPSHOT_FILE, &snap).map(|()| snap)
        })
        .await
        .map_err(snap_err)?
        .map_err(snap_err)?;
        *self.current.lock().unwrap_or_else(|p| p.into_inner()) = Some(snap.meta.clone());
        Ok(snap)
    }
}

fn read_snap_err(meta: &Meta, e: impl ToString) -> StorageError<NodeId> {
    StorageIOError::read_snapshot(Some(meta.signature()), openraft::AnyError::error(e)).into()
}

/// Applies committed commands to the inner store `S`; builds and installs snapshots.
#[derive(Debug)]
pub struct StateMachine<S: Store> {
    inner: Arc<S>,
    last_applied: Option<LogId<NodeId>>,
    membership: StoredMembership<NodeId, BasicNode>,
    snapshots: SnapshotSlot,
    snapshot_seq: u64,
    dedup: Dedup,
}

impl<S: Store> StateMachine<S> {
    /// Opens the state machine whose snapshot lives in `dir` over `inner`, restoring `inner`
    /// from the saved snapshot (or emptying it when there is none and it is not empty already).
    pub async fn open(dir: &Path, inner: Arc<S>) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(|e| crate::error::Error::Io {
            path: dir.to_owned(),
            source: e,
        })?;
        let saved: Option<StoredSnapshot> = durable::read(dir, SNAPSHOT_FILE)?;
        let (last_applied, membership, dedup) = match &saved {
            Some(snap) => {
                let state: SnapshotState = codec::from_bytes(&snap.data)?;
                inner.restore(state.store).await?;
                (
                    snap.meta.last_log_id,
                    snap.meta.last_membership.clone(),
                    Dedup::from_list(state.applied_requests),
                )
            }
            None => {
                if inner.revision().await? != 0 {
                    inner.restore(StoreSnapshot::default()).await?;
                }
                (None, StoredMembership::default(), Dedup::default())
            }
        };
        Ok(Self {
            inner,
            last_applied,
            membership,
            snapshots: SnapshotSlot {
                dir: dir.to_owned(),
                saving: Arc::default(),
                current: Arc::new(Mutex::new(saved.map(|s| s.meta))),
            },
            snapshot_seq: 0,
            dedup,
        })
    }

    /// The inner store (read it for local reads and watches; never write it directly).
    pub fn inner(&self) -> &Arc<S> {
        &self.inner
    }

    async fn apply_command(&mut self, command: Command) -> StorageResult<CommandResponse> {
        let Command::Batch(commands) = command else {
            return self.apply_one(command).await;
        };
        let mut batch = Vec::with_capacity(commands.len());
        for command in commands {
            let result = match command {
                Command::Batch(_) => Err(WireError::Other(
                    "a batch cannot contain a batch; send the commands flat".into(),
                )),
                single => self.apply_one(single).await?.result,
            };
            batch.push(result);
        }
        let result = match batch.last() {
            Some(last) => last.clone(),
            None => Ok(self.current_result().await.map_err(sm_write_err)?),
        };
        Ok(CommandResponse { result, batch })
    }

    /// Applies a tagged command once: a repeated request id gets the recorded result.
    async fn apply_one(&mut self, command: Command) -> StorageResult<CommandResponse> {
        let Command::Tagged(id, command) = command else {
            return self.apply_plain(command).await;
        };
        if let Some(outcome) = self.dedup.results.get(&id) {
            return Ok(CommandResponse::single(outcome.clone()));
        }
        let response = match *command {
            Command::Tagged(..) | Command::Batch(_) => CommandResponse::single(Err(
                WireError::Other("a tagged command must be a single write".into()),
            )),
            single => self.apply_plain(single).await?,
        };
        self.dedup.record(id, response.result.clone());
        Ok(response)
    }

    async fn apply_plain(&self, command: Command) -> StorageResult<CommandResponse> {
        let outcome = match command {
            Command::Batch(_) => Err(orion_core::Error::Conflict("nested batch refused".into())),
            Command::Tagged(..) => Err(orion_core::Error::Conflict(
                "a tagged command cannot be nested".into(),
            )),
            Command::Txn(txn) => self.inner.txn(txn).await,
            Command::Compact(rev) => match self.inner.compact(rev).await {
                Ok(()) => self.current_result().await,
                Err(e) => Err(e),
            },
            Command::Restore(snap) => match self.inner.restore(snap).await {
                Ok(()) => self.current_result().await,
                Err(e) => Err(e),
            },
        };
        match outcome {
            Ok(result) => Ok(CommandResponse::single(Ok(result))),
            // A local failure (disk, backend) is not deterministic: stop rather than diverge.
            Err(e @ (orion_core::Error::Io(_) | orion_core::Error::Backend { .. })) => {
                Err(sm_write_err(e))
            }
            Err(e) => Ok(CommandResponse::single(Err(WireError::from(&e)))),
        }
    }

    async fn current_result(&self) -> orion_core::Result<TxnResult> {
        Ok(TxnResult {
            succeeded: true,
            revision: self.inner.revision().await?,
        })
    }
}

/// Builds a snapshot from the copy of the inner store taken when it was created.
#[derive(Debug)]
pub struct SnapshotBuilder {
    state: std::result::Result<SnapshotState, String>,
    meta: SnapshotMeta<NodeId, BasicNode>,
    slot: SnapshotSlot,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> StorageResult<Snapshot<TypeConfig>> {
        // Encoding a large store takes seconds: off the async workers, so heartbeats and
        // appends keep flowing meanwhile (a stalled worker under a big snapshot cost elections).
        let state = std::mem::replace(&mut self.state, Err("snapshot already built".into()))
            .map_err(snap_err)?;
        let data = tokio::task::spawn_blocking(move || codec::to_bytes(&state))
            .await
            .map_err(snap_err)?
            .map_err(snap_err)?;
        let stored = StoredSnapshot {
            meta: self.meta.clone(),
            data,
        };
        let stored = self.slot.save(stored).await?;
        Ok(Snapshot {
            meta: stored.meta,
            snapshot: Box::new(Cursor::new(stored.data)),
        })
    }
}

impl<S: Store> RaftStateMachine<TypeConfig> for StateMachine<S> {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(
        &mut self,
    ) -> StorageResult<(Option<LogId<NodeId>>, StoredMembership<NodeId, BasicNode>)> {
        Ok((self.last_applied, self.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> StorageResult<Vec<CommandResponse>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut responses = Vec::new();
        for entry in entries {
            self.last_applied = Some(entry.log_id);
            let response = match entry.payload {
                EntryPayload::Normal(command) => self.apply_command(command).await?,
                EntryPayload::Membership(m) => {
                    self.membership = StoredMembership::new(Some(entry.log_id), m);
                    CommandResponse::single(Ok(self
                        .current_result()
                        .await
                        .map_err(sm_write_err)?))
                }
                EntryPayload::Blank => CommandResponse::single(Ok(self
                    .current_result()
                    .await
                    .map_err(sm_write_err)?)),
            };
            responses.push(response);
        }
        Ok(responses)
    }

    async fn get_snapshot_builder(&mut self) -> SnapshotBuilder {
        // Copy the state now, while no entry can be applied, so that it matches last_applied.
        let state = self
            .inner
            .snapshot()
            .await
            .map(|store| SnapshotState {
                store,
                applied_requests: self.dedup.to_list(),
            })
            .map_err(|e| e.to_string());
        self.snapshot_seq += 1;
        let snapshot_id = match self.last_applied {
            Some(id) => format!("{}-{}-{}", id.leader_id.term, id.index, self.snapshot_seq),
            None => format!("none-{}", self.snapshot_seq),
        };
        SnapshotBuilder {
            state,
            meta: SnapshotMeta {
                last_log_id: self.last_applied,
                last_membership: self.membership.clone(),
                snapshot_id,
            },
            slot: self.snapshots.clone(),
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> StorageResult<Box<Cursor<Vec<u8>>>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, BasicNode>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> StorageResult<()> {
        let data = snapshot.into_inner();
        let state: SnapshotState = codec::from_bytes(&data).map_err(|e| {
            StorageError::from(StorageIOError::read_snapshot(
                Some(meta.signature()),
                openraft::AnyError::error(e),
            ))
        })?;
        self.inner
            .restore(state.store)
            .await
            .map_err(sm_write_err)?;
        self.dedup = Dedup::from_list(state.applied_requests);
        self.last_applied = meta.last_log_id;
        self.membership = meta.last_membership.clone();
        self.snapshots
            .save(StoredSnapshot {
                meta: meta.clone(),
                data,
            })
            .await
            .map(drop)
    }

    async fn get_current_snapshot(&mut self) -> StorageResult<Option<Snapshot<TypeConfig>>> {
        Ok(self.snapshots.get().await?.map(|s| Snapshot {
            meta: s.meta,
            snapshot: Box::new(Cursor::new(s.data)),
        }))
    }
}
