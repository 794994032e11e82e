//! `SledStore`: a durable single-node [`Store`](super::Store) on sled.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionError};

use super::engine::{ReadKv, plan_txn};
use super::hub::{EventHub, HistoryStorage};
use super::sled_codec::{decode_entry, decode_events, decode_u64, encode_entry, encode_events};
use super::{
    EventKind, KeyValue, RangeResult, Revision, SharedKv, Store, StoreSnapshot, Txn, TxnResult,
    WatchEvent, WatchStream,
};
use crate::error::{Error, Result};

const META_REVISION: &[u8] = b"revision";
const META_COMPACTED: &[u8] = b"compacted";
/// Present while a restore is replacing the trees; found at open, it means a crash interrupted one.
const META_RESTORING: &[u8] = b"restoring";

/// A store on sled that flushes before acknowledging a write.
///
/// Layout: tree `kv` holds the keys, tree `history` the events of every uncompacted revision
/// (keyed by big-endian revision, so a watch resumes from a revision across a reopen), tree
/// `meta` the revision and the compaction point. Each write is one sled transaction over the
/// three trees, made by a single writer at a time; the write is acknowledged (and announced to
/// watchers) only after the flush returned, so concurrent writers share flushes. The compaction
/// point, history limit and restore epoch follow the shared watch hub's rules (as in
/// `MemoryStore`); this store only persists the point and deletes what it drops.
/// If the flush fails, the write stays applied but is reported as failed ([`Error::Backend`]):
/// re-read before retrying. Reads (`get`, `range`) see the newest applied write, which may
/// still be flushing.
/// `restore` replaces the trees in several steps; if the process dies in the middle, the next
/// `open` refuses the directory with [`Error::Corrupt`] instead of serving half a snapshot.
///
/// ```
/// # #[tokio::main] async fn main() -> orion_core::Result<()> {
/// use orion_core::store::{SledStore, Store};
/// let dir = tempfile::tempdir()?;
/// let store = SledStore::open(dir.path())?;
/// let rev = store.put("/greeting", b"hello".to_vec()).await?; // flushed when this returns
/// drop(store);
/// let store = SledStore::open(dir.path())?;
/// assert_eq!(store.get("/greeting").await?.map(|kv| kv.mod_revision), Some(rev));
/// # Ok(()) }
/// ```
///
/// sled's page cache bound (its default is 1 GiB): cluster state is small, and a node's memory
/// is better spent on containers.
pub const CACHE_BYTES: u64 = 32 * 1024 * 1024;

/// Clones share the same database. Dropping the last clone closes it (watch streams end).
#[derive(Debug, Clone)]
pub struct SledStore {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    path: PathBuf,
    db: sled::Db,
    kv: sled::Tree,
    history: sled::Tree,
    meta: sled::Tree,
    /// Serializes writers; holds the newest applied revision.
    writer: Mutex<Revision>,
    /// Compaction point (persisted in `meta`), history limit and epoch of `history`.
    hub: EventHub,
}

/// Wraps a sled error with what was being done and where.
fn sled_err(path: &Path, what: &str, err: sled::Error) -> Error {
    Error::backend(format!("sled store at {}: {what}", path.display()), err)
}

fn tx_err(path: &Path, err: TransactionError<()>) -> Error {
    match err {
        TransactionError::Storage(e) => sled_err(path, "write transaction", e),
        TransactionError::Abort(()) => Error::Unavailable(format!(
            "sled store at {}: write transaction aborted",
            path.display()
        )),
    }
}

/// Opens the sled db. A store dropped a moment ago in this process can still hold sled's file
/// lock briefly (seen once as a failure of the reopen conformance test in CI; which clone kept
/// the db alive is not yet known), so a lock conflict is retried for up to 2 s. A lock held by
/// another process still fails after that, with sled's error.
fn open_db(path: &Path) -> Result<sled::Db> {
    let mut attempts = 0;
    loop {
        // Writes flush explicitly before they are acknowledged; no background flusher needed.
        let opened = sled::Config::new()
            .path(path)
            .cache_capacity(CACHE_BYTES)
            .flush_every_ms(None)
            .open();
        match opened {
            Err(sled::Error::Io(e)) if e.to_string().contains("acquire lock") && attempts < 40 => {
                attempts += 1;
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            other => return other.map_err(|e| sled_err(path, "open", e)),
        }
    }
}

impl SledStore {
    /// Opens (or creates) the store in directory `path`. Reopening keeps every key, the revision
    /// (which keeps growing from where it was), the compaction point and the watch history.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::open_inner(path.as_ref(), None)
    }

    /// Like [`SledStore::open`], keeping only the newest `revisions` revisions of history (at
    /// least 1); watches from older revisions fail with [`Error::Compacted`].
    pub fn open_with_history_limit(path: impl AsRef<Path>, revisions: u64) -> Result<Self> {
        Self::open_inner(path.as_ref(), Some(revisions.max(1)))
    }

    fn open_inner(path: &Path, history_limit: Option<u64>) -> Result<Self> {
        let db = open_db(path)?;
        let open_tree = |name: &str| {
            db.open_tree(name)
                .map_err(|e| sled_err(path, &format!("open tree {name}"), e))
        };
        let (kv, history, meta) = (open_tree("kv")?, open_tree("history")?, open_tree("meta")?);
        let read_meta = |name: &[u8], default: u64| -> Result<u64> {
            match meta.get(name).map_err(|e| sled_err(path, "read meta", e))? {
                Some(bytes) => decode_u64(&String::from_utf8_lossy(name), &bytes),
                None => Ok(default),
            }
        };
        if meta
            .contains_key(META_RESTORING)
            .map_err(|e| sled_err(path, "read meta", e))?
        {
            return Err(Error::Corrupt {
                key: format!("{}/meta/restoring", path.display()),
                reason: "a snapshot restore was interrupted, so the store holds part of a \
                         snapshot; restore a snapshot again into a fresh directory, or delete \
                         this one"
                    .into(),
            });
        }
        let revision = read_meta(META_REVISION, 0)?;
        let compacted = read_meta(META_COMPACTED, 1)?;
        Ok(SledStore {
            shared: Arc::new(Shared {
                path: path.to_owned(),
                kv,
                history,
                meta,
                db,
                writer: Mutex::new(revision),
                hub: EventHub::new(revision, compacted, history_limit),
            }),
        })
    }

    /// The directory the store lives in.
    pub fn path(&self) -> &Path {
        &self.shared.path
    }

    /// The oldest revision a watch can still start from.
    pub fn compacted_revision(&self) -> Revision {
        self.shared.hub.compacted()
    }

    /// Bytes the database occupies on disk (as sled reports it).
    pub fn size_on_disk(&self) -> Result<u64> {
        let shared = &self.shared;
        shared
            .db
            .size_on_disk()
            .map_err(|e| sled_err(&shared.path, "size on disk", e))
    }
}

impl Shared {
    fn writer(&self) -> MutexGuard<'_, Revision> {
        // The guarded revision is only updated after a successful transaction.
        self.writer.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Flushes every write applied so far to disk.
    ///
    /// Runs sled's blocking `flush` on tokio's blocking pool rather than `flush_async`: the
    /// latter runs on sled's own small thread pool, where concurrent flushes that wait on sled's
    /// process-wide lock (taken by every transaction) can starve the pool jobs that complete the
    /// flush, a deadlock seen with several stores (or a Raft log on sled) in one process.
    ///
    /// Outside a tokio runtime (another executor), it flushes on the calling thread instead.
    async fn flush(&self) -> Result<()> {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return self
                .db
                .flush()
                .map(drop)
                .map_err(|e| sled_err(&self.path, "flush", e));
        };
        let db = self.db.clone();
        runtime
            .spawn_blocking(move || db.flush())
            .await
            .map_err(|e| {
                Error::backend(
                    format!("sled store at {}: flush task", self.path.display()),
                    e,
                )
            })?
            .map(drop)
            .map_err(|e| sled_err(&self.path, "flush", e))
    }

    /// Persists the compaction point `point` (already moved by the hub) and drops older history.
    /// Call with the writer lock held.
    fn discard_before(&self, point: Revision) -> Result<()> {
        self.meta
            .insert(META_COMPACTED, &point.to_be_bytes())
            .map_err(|e| sled_err(&self.path, "write compaction point", e))?;
        let mut batch = sled::Batch::default();
        for entry in self.history.range(..point.to_be_bytes()) {
            let (key, _) = entry.map_err(|e| sled_err(&self.path, "scan history", e))?;
            batch.remove(key);
        }
        self.history
            .apply_batch(batch)
            .map_err(|e| sled_err(&self.path, "compact history", e))
    }
}

impl ReadKv for Shared {
    fn get_kv(&self, key: &str) -> Result<Option<KeyValue>> {
        match self
            .kv
            .get(key.as_bytes())
            .map_err(|e| sled_err(&self.path, "read", e))?
        {
            Some(bytes) => Ok(Some(decode_entry(key.as_bytes(), &bytes)?)),
            None => Ok(None),
        }
    }

    fn scan_prefix(&self, prefix: &str) -> Result<Vec<KeyValue>> {
        self.kv
            .scan_prefix(prefix.as_bytes())
            .map(|entry| {
                let (key, value) = entry.map_err(|e| sled_err(&self.path, "range", e))?;
                decode_entry(&key, &value)
            })
            .collect()
    }
}

impl HistoryStorage for Shared {
    fn hub(&self) -> &EventHub {
        &self.hub
    }

    fn read_events(&self, from: Revision, to: Revision, prefix: &str) -> Result<Vec<WatchEvent>> {
        let mut events = Vec::new();
        for entry in self.history.range(from.to_be_bytes()..=to.to_be_bytes()) {
            let (key, value) = entry.map_err(|e| sled_err(&self.path, "read history", e))?;
            let revision = decode_u64("history key", &key)?;
            events.extend(
                decode_events(revision, &value)?
                    .into_iter()
                    .filter(|event| event.kv.key.starts_with(prefix)),
            );
        }
        Ok(events)
    }
}

#[async_trait]
impl Store for SledStore {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>> {
        self.shared.get_kv(key)
    }

    async fn range(&self, prefix: &str) -> Result<RangeResult> {
        // Hold the writer lock so the revision matches the keys read.
        let shared = &self.shared;
        let revision = shared.writer();
        Ok(RangeResult {
            kvs: shared.scan_prefix(prefix)?,
            revision: *revision,
        })
    }

    async fn txn(&self, txn: Txn) -> Result<TxnResult> {
        let shared = &self.shared;
        let (succeeded, revision) = {
            let mut current = shared.writer();
            let revision = *current + 1;
            let plan = plan_txn(&**shared, &txn, revision)?;
            if plan.events.is_empty() {
                return Ok(TxnResult {
                    succeeded: plan.succeeded,
                    revision: *current,
                });
            }
            let history_value = encode_events(&plan.events);
            // The history limit drops the oldest revisions in the same transaction; the hub has
            // moved the compaction point already, so cursors never trust a half-deleted range.
            let dropped = shared.hub.compact_for_write(revision);
            (&shared.kv, &shared.history, &shared.meta)
                .transaction(|(kv, history, meta)| {
                    for event in &plan.events {
                        match event.kind {
                            EventKind::Put => {
                                kv.insert(event.kv.key.as_bytes(), encode_entry(&event.kv))?;
                            }
                            EventKind::Delete => {
                                kv.remove(event.kv.key.as_bytes())?;
                            }
                        }
                    }
                    history.insert(&revision.to_be_bytes(), history_value.as_slice())?;
                    meta.insert(META_REVISION, &revision.to_be_bytes())?;
                    if let Some(dropped) = &dropped {
                        for old in dropped.clone() {
                            history.remove(&old.to_be_bytes())?;
                        }
                        meta.insert(META_COMPACTED, &dropped.end.to_be_bytes())?;
                    }
                    Ok::<_, ConflictableTransactionError<()>>(())
                })
                .map_err(|e| tx_err(&shared.path, e))?;
            *current = revision;
            (plan.succeeded, revision)
        };
        shared.flush().await?;
        shared.hub.publish(revision);
        Ok(TxnResult {
            succeeded,
            revision,
        })
    }

    async fn watch(&self, prefix: &str, from_revision: Revision) -> Result<WatchStream> {
        let shared = &self.shared;
        // Under the writer lock, so no restore is half done.
        let _writer = shared.writer();
        shared.hub.watch(shared, prefix, from_revision)
    }

    async fn compact(&self, revision: Revision) -> Result<()> {
        let shared = &self.shared;
        {
            let current = shared.writer();
            if let Some(dropped) = shared.hub.compact(*current, revision) {
                shared.discard_before(dropped.end)?;
            }
        }
        shared.flush().await
    }

    async fn revision(&self) -> Result<Revision> {
        Ok(*self.shared.writer())
    }

    async fn snapshot(&self) -> Result<StoreSnapshot> {
        let shared = &self.shared;
        let revision = shared.writer();
        Ok(StoreSnapshot {
            revision: *revision,
            compacted: EventHub::snapshot_compacted(*revision),
            kvs: shared
                .scan_prefix("")?
                .into_iter()
                .map(SharedKv::from)
                .collect(),
        })
    }

    async fn restore(&self, snapshot: StoreSnapshot) -> Result<()> {
        let shared = &self.shared;
        {
            let mut current = shared.writer();
            let what = |e| sled_err(&shared.path, "restore", e);
            shared
                .hub
                .restore(snapshot.revision, snapshot.compacted, |compacted| {
                    // Not one sled transaction (snapshots can be large): a marker brackets the
                    // replacement, so a crash in the middle is detected at the next open.
                    shared.meta.insert(META_RESTORING, &[1u8]).map_err(what)?;
                    shared.kv.clear().map_err(what)?;
                    shared.history.clear().map_err(what)?;
                    let mut batch = sled::Batch::default();
                    for kv in &snapshot.kvs {
                        batch.insert(kv.key_bytes(), encode_entry(&kv.to_key_value()));
                    }
                    shared.kv.apply_batch(batch).map_err(what)?;
                    shared
                        .meta
                        .insert(META_REVISION, &snapshot.revision.to_be_bytes())
                        .map_err(what)?;
                    shared
                        .meta
                        .insert(META_COMPACTED, &compacted.to_be_bytes())
                        .map_err(what)?;
                    shared.meta.remove(META_RESTORING).map_err(what)?;
                    Ok(())
                })?;
            *current = snapshot.revision;
        }
        shared.flush().await
    }
}
