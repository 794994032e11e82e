//! `SledStore`: a durable single-node [`Store`](super::Store) on sled.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionError};

use super::engine::{ReadKv, plan_txn};
use super::hub::{EventHub, History};
use super::sled_codec::{decode_entry, decode_events, decode_u64, encode_entry, encode_events};
use super::{
    EventKind, KeyValue, RangeResult, Revision, Store, StoreSnapshot, Txn, TxnResult, WatchEvent,
    WatchStream,
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
/// watchers) only after `flush_async` returned, so concurrent writers share flushes.
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
    /// The oldest revision still watchable.
    compacted: AtomicU64,
    /// Bumped by `restore` before the state is replaced; the hub's epoch follows once it is
    /// (both under the writer lock), so a cursor reading during a restore fails its check.
    epoch: AtomicU64,
    hub: EventHub,
    history_limit: Option<u64>,
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
                compacted: AtomicU64::new(compacted),
                epoch: AtomicU64::new(0),
                hub: EventHub::new(revision),
                history_limit,
            }),
        })
    }

    /// The directory the store lives in.
    pub fn path(&self) -> &Path {
        &self.shared.path
    }

    /// The oldest revision a watch can still start from.
    pub fn compacted_revision(&self) -> Revision {
        self.shared.compacted.load(Ordering::SeqCst)
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

    /// Moves the compaction point to `revision` (clamped to `current + 1`) and drops older
    /// history. Call with the writer lock held.
    fn compact_locked(&self, current: Revision, revision: Revision) -> Result<()> {
        let revision = revision.min(current + 1);
        if revision <= self.compacted.load(Ordering::SeqCst) {
            return Ok(());
        }
        // Point first, then delete: a cursor that read an entry being deleted sees the new point.
        self.compacted.store(revision, Ordering::SeqCst);
        self.meta
            .insert(META_COMPACTED, &revision.to_be_bytes())
            .map_err(|e| sled_err(&self.path, "write compaction point", e))?;
        let mut batch = sled::Batch::default();
        for entry in self.history.range(..revision.to_be_bytes()) {
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

impl History for Shared {
    fn read_history(
        &self,
        epoch: u64,
        from: Revision,
        to: Revision,
        prefix: &str,
    ) -> Result<Vec<WatchEvent>> {
        let check = || {
            let compacted = self.compacted.load(Ordering::SeqCst);
            if epoch != self.epoch.load(Ordering::SeqCst) || from < compacted {
                Err(Error::Compacted {
                    requested: from,
                    compacted,
                })
            } else {
                Ok(())
            }
        };
        check()?;
        let mut events = Vec::new();
        if from <= to {
            for entry in self.history.range(from.to_be_bytes()..=to.to_be_bytes()) {
                let (key, value) = entry.map_err(|e| sled_err(&self.path, "read history", e))?;
                let revision = decode_u64("history key", &key)?;
                events.extend(
                    decode_events(revision, &value)?
                        .into_iter()
                        .filter(|event| event.kv.key.starts_with(prefix)),
                );
            }
        }
        // Compaction and restore change their marker before deleting anything.
        check()?;
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
            // The history limit drops the oldest revisions in the same transaction. The
            // compaction point moves first, so cursors never read a half-deleted range.
            let old_compacted = shared.compacted.load(Ordering::SeqCst);
            let new_compacted = shared
                .history_limit
                .map(|limit| (revision + 1).saturating_sub(limit))
                .filter(|&point| point > old_compacted);
            if let Some(point) = new_compacted {
                shared.compacted.store(point, Ordering::SeqCst);
            }
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
                    if let Some(point) = new_compacted {
                        for old in old_compacted..point {
                            history.remove(&old.to_be_bytes())?;
                        }
                        meta.insert(META_COMPACTED, &point.to_be_bytes())?;
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
        // Under the writer lock, so no restore is half done: the hub's epoch equals `epoch`.
        let (epoch, next) = {
            let _writer = shared.writer();
            shared
                .hub
                .start_revision(from_revision, shared.compacted.load(Ordering::SeqCst))?
        };
        Ok(shared.hub.stream(shared, prefix, epoch, next))
    }

    async fn compact(&self, revision: Revision) -> Result<()> {
        let shared = &self.shared;
        {
            let current = shared.writer();
            shared.compact_locked(*current, revision)?;
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
            compacted: *revision + 1,
            kvs: shared.scan_prefix("")?,
        })
    }

    async fn restore(&self, snapshot: StoreSnapshot) -> Result<()> {
        let shared = &self.shared;
        {
            let mut current = shared.writer();
            // Mark first: cursors reading concurrently see the new epoch after their read.
            shared.epoch.fetch_add(1, Ordering::SeqCst);
            let compacted = snapshot.compacted.max(snapshot.revision + 1);
            shared.compacted.store(compacted, Ordering::SeqCst);
            let what = |e| sled_err(&shared.path, "restore", e);
            // Not one sled transaction (snapshots can be large): a marker brackets the
            // replacement, so a crash in the middle is detected at the next open.
            shared.meta.insert(META_RESTORING, &[1u8]).map_err(what)?;
            shared.kv.clear().map_err(what)?;
            shared.history.clear().map_err(what)?;
            let mut batch = sled::Batch::default();
            for kv in &snapshot.kvs {
                batch.insert(kv.key.as_bytes(), encode_entry(kv));
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
            *current = snapshot.revision;
            shared.hub.reset(snapshot.revision);
        }
        shared.flush().await
    }
}
