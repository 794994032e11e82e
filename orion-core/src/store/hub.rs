//! The watch machinery shared by the local stores, and the one place where the rules of watch
//! history live.
//!
//! A store keeps its history (revision -> events) in its own storage and only reads it back
//! ([`HistoryStorage::read_events`]); the [`EventHub`] decides everything else:
//!
//! - **Compaction point**: the oldest watchable revision. [`EventHub::compact`] clamps a request
//!   to "everything written so far" (`current + 1`), never moves backwards, and moves the point
//!   *before* the store discards anything, returning the revisions the store must then drop.
//!   With a history limit, [`EventHub::compact_for_write`] does the same after each write so
//!   that only the newest `limit` revisions stay.
//! - **Epoch**: [`EventHub::restore`] starts a new epoch before the store replaces its state, and
//!   announces it afterwards (even when the replacement failed); cursors of the old epoch end.
//! - **Reads**: a cursor checks epoch and compaction point before *and after* reading the store,
//!   so a read that overlapped a compaction or a restore ends the stream with
//!   [`Error::Compacted`] instead of delivering a range with holes.
//! - **Announcements**: [`EventHub::publish`] tells cursors the newest *acknowledged* revision.
//!
//! Every watch stream is a cursor that reads the history from its next revision up to the
//! announced one, then sleeps until the next announcement. There is no per-watcher buffer to
//! overflow: a slow watcher simply reads more history when it wakes up, and if compaction removed
//! what it still needed, its stream ends with [`Error::Compacted`].

use std::collections::VecDeque;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use tokio::sync::watch;

use super::{Revision, WatchEvent, WatchStream};
use crate::error::{Error, Result};

/// How many revisions a cursor reads from history at once (bounds its memory).
const READ_BATCH: u64 = 256;

/// The newest acknowledged revision, and the epoch it belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Published {
    epoch: u64,
    revision: Revision,
}

/// A store's history storage, as read by watch cursors.
pub(crate) trait HistoryStorage: Send + Sync + 'static {
    /// The hub that holds this store's compaction point and epoch.
    fn hub(&self) -> &EventHub;

    /// The stored events under `prefix` with revisions in `from..=to` (`from <= to`), in
    /// revision order. No compaction or epoch check: the hub does those around the call, so a
    /// read that races with a compaction or a restore may return anything, even an error.
    fn read_events(&self, from: Revision, to: Revision, prefix: &str) -> Result<Vec<WatchEvent>>;
}

/// The compaction point, epoch and announcements of one store's watch history.
#[derive(Debug)]
pub(crate) struct EventHub {
    tx: watch::Sender<Published>,
    /// The oldest watchable revision.
    compacted: AtomicU64,
    /// The epoch of the stored history: bumped when a restore starts, before the storage is
    /// replaced; the published epoch follows when it ends.
    epoch: AtomicU64,
    /// Keep at most this many revisions (`None`: until compacted explicitly).
    history_limit: Option<u64>,
}

impl EventHub {
    /// A hub in epoch 0 whose newest acknowledged revision is `revision`, whose oldest watchable
    /// revision is `compacted` (at least 1), keeping at most `history_limit` revisions (at
    /// least 1) when given.
    pub fn new(revision: Revision, compacted: Revision, history_limit: Option<u64>) -> Self {
        let (tx, _) = watch::channel(Published { epoch: 0, revision });
        EventHub {
            tx,
            compacted: AtomicU64::new(compacted.max(1)),
            epoch: AtomicU64::new(0),
            history_limit: history_limit.map(|limit| limit.max(1)),
        }
    }

    /// The oldest revision a watch can start from.
    pub fn compacted(&self) -> Revision {
        self.compacted.load(Ordering::SeqCst)
    }

    /// Announces that every revision up to `revision` is acknowledged. Announcements may arrive
    /// out of order from concurrent writers; the announced revision never goes backwards.
    pub fn publish(&self, revision: Revision) {
        self.tx.send_if_modified(|p| {
            if revision > p.revision {
                p.revision = revision;
                true
            } else {
                false
            }
        });
    }

    /// Moves the compaction point to `requested`, clamped to `current + 1` (`current` being the
    /// store's newest applied revision). Returns the revisions whose history the store must now
    /// discard, or `None` when the point would not advance (compacting backwards is a no-op).
    ///
    /// The point has moved when this returns, so cursors stop trusting those revisions before
    /// any of them is gone. Call with the store's write lock held.
    pub fn compact(&self, current: Revision, requested: Revision) -> Option<Range<Revision>> {
        let point = requested.min(current.saturating_add(1));
        let old = self.compacted.load(Ordering::SeqCst);
        if point <= old {
            return None;
        }
        self.compacted.store(point, Ordering::SeqCst);
        Some(old..point)
    }

    /// The history limit's compaction after the write of `revision`: keeps the newest `limit`
    /// revisions, as [`EventHub::compact`]. `None` without a limit or when nothing drops out.
    pub fn compact_for_write(&self, revision: Revision) -> Option<Range<Revision>> {
        let limit = self.history_limit?;
        self.compact(revision, revision.saturating_add(1).saturating_sub(limit))
    }

    /// The compaction point a snapshot of the state at `revision` carries: history is not part
    /// of a snapshot, so nothing before the next write is watchable after restoring it.
    pub fn snapshot_compacted(revision: Revision) -> Revision {
        revision.saturating_add(1)
    }

    /// Restores a snapshot at `revision` whose compaction point is `compacted`: starts a new
    /// epoch and moves the point to `max(compacted, revision + 1)`, then lets `replace` swap the
    /// store's state (it receives the new point, to persist if the store is durable), then
    /// announces the new epoch at `revision`. Every open cursor ends with [`Error::Compacted`],
    /// also when `replace` fails (the store is then in no state to follow). Call with the
    /// store's write lock held.
    pub fn restore(
        &self,
        revision: Revision,
        compacted: Revision,
        replace: impl FnOnce(Revision) -> Result<()>,
    ) -> Result<()> {
        let epoch = self.epoch.fetch_add(1, Ordering::SeqCst) + 1;
        let point = compacted.max(Self::snapshot_compacted(revision));
        self.compacted.store(point, Ordering::SeqCst);
        let replaced = replace(point);
        self.tx.send_modify(|p| {
            p.epoch = epoch;
            if replaced.is_ok() {
                p.revision = revision;
            }
        });
        replaced
    }

    /// Fails with [`Error::Compacted`] unless a cursor of `epoch` can still read from `from`.
    fn check(&self, epoch: u64, from: Revision) -> Result<()> {
        let compacted = self.compacted();
        if epoch != self.epoch.load(Ordering::SeqCst) || from < compacted {
            return Err(Error::Compacted {
                requested: from,
                compacted,
            });
        }
        Ok(())
    }

    /// Opens a watch from `from` (0: from the next acknowledged write) under `prefix`, reading
    /// from `storage`. Fails with [`Error::Compacted`] when `from` is older than the compaction
    /// point. Call with the store's write lock held, so no restore is half done. The stream holds
    /// `storage` weakly: it ends when the store is dropped.
    pub fn watch<H: HistoryStorage>(
        &self,
        storage: &Arc<H>,
        prefix: &str,
        from: Revision,
    ) -> Result<WatchStream> {
        let epoch = self.epoch.load(Ordering::SeqCst);
        let next = if from == 0 {
            self.tx.borrow().revision + 1
        } else {
            self.check(epoch, from)?;
            from
        };
        let cursor = Cursor {
            storage: Arc::downgrade(storage),
            rx: self.tx.subscribe(),
            epoch,
            next,
            prefix: prefix.to_owned(),
            buffer: VecDeque::new(),
            finished: false,
        };
        Ok(Box::pin(futures::stream::unfold(cursor, Cursor::step)))
    }

    /// Reads `from..=to` under `prefix` for a cursor of `epoch`, checking before and after.
    fn read<H: HistoryStorage>(
        &self,
        storage: &H,
        epoch: u64,
        from: Revision,
        to: Revision,
        prefix: &str,
    ) -> Result<Vec<WatchEvent>> {
        self.check(epoch, from)?;
        let events = if from <= to {
            storage.read_events(from, to, prefix)
        } else {
            Ok(Vec::new())
        };
        // Compaction and restore move their marks before the storage changes: a read that
        // overlapped one fails here (even if the storage itself failed) instead of delivering a
        // range with holes.
        self.check(epoch, from)?;
        events
    }
}

/// One watcher's position in the history.
struct Cursor<H> {
    storage: Weak<H>,
    rx: watch::Receiver<Published>,
    epoch: u64,
    /// The next revision to read.
    next: Revision,
    prefix: String,
    buffer: VecDeque<WatchEvent>,
    /// Set after an error item: the stream ends after it.
    finished: bool,
}

impl<H: HistoryStorage> Cursor<H> {
    async fn step(mut self) -> Option<(Result<WatchEvent>, Self)> {
        loop {
            if let Some(event) = self.buffer.pop_front() {
                return Some((Ok(event), self));
            }
            if self.finished {
                return None;
            }
            let published = *self.rx.borrow_and_update();
            if published.revision >= self.next || published.epoch != self.epoch {
                let storage = self.storage.upgrade()?;
                let to = published
                    .revision
                    .min(self.next.saturating_add(READ_BATCH - 1));
                let read = storage
                    .hub()
                    .read(&*storage, self.epoch, self.next, to, &self.prefix);
                match read {
                    Ok(events) => {
                        self.next = to + 1;
                        self.buffer.extend(events);
                        continue;
                    }
                    Err(err) => {
                        self.finished = true;
                        return Some((Err(err), self));
                    }
                }
            }
            if self.rx.changed().await.is_err() {
                return None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Mutex;
    use std::time::Duration;

    use futures::StreamExt;

    use super::*;
    use crate::store::{EventKind, KeyValue};

    /// What [`FakeStorage`] runs in the middle of its next read.
    type Hook = Box<dyn FnOnce(&FakeStorage) + Send>;

    /// The rules' only unit test double: history in a map, and a hook run in the middle of the
    /// next read (to interleave a compaction or a restore with it deterministically).
    struct FakeStorage {
        hub: EventHub,
        history: Mutex<BTreeMap<Revision, Vec<WatchEvent>>>,
        during_read: Mutex<Option<Hook>>,
    }

    impl HistoryStorage for FakeStorage {
        fn hub(&self) -> &EventHub {
            &self.hub
        }
        fn read_events(
            &self,
            from: Revision,
            to: Revision,
            prefix: &str,
        ) -> Result<Vec<WatchEvent>> {
            let events: Vec<WatchEvent> = self
                .history
                .lock()
                .unwrap()
                .range(from..=to)
                .flat_map(|(_, events)| events.iter())
                .filter(|event| event.kv.key.starts_with(prefix))
                .cloned()
                .collect();
            let hook = self.during_read.lock().unwrap().take();
            if let Some(hook) = hook {
                hook(self);
            }
            Ok(events)
        }
    }

    fn event(revision: Revision) -> WatchEvent {
        WatchEvent {
            kind: EventKind::Put,
            kv: KeyValue {
                key: format!("k/{revision}"),
                value: Vec::new(),
                create_revision: revision,
                mod_revision: revision,
                version: 1,
            },
            prev: None,
        }
    }

    /// A storage holding revisions `1..=revisions`, all published.
    fn storage(revisions: Revision, history_limit: Option<u64>) -> Arc<FakeStorage> {
        let storage = FakeStorage {
            hub: EventHub::new(revisions, 1, history_limit),
            history: Mutex::new((1..=revisions).map(|r| (r, vec![event(r)])).collect()),
            during_read: Mutex::new(None),
        };
        Arc::new(storage)
    }

    async fn next(stream: &mut WatchStream) -> Option<Result<WatchEvent>> {
        tokio::time::timeout(Duration::from_secs(30), stream.next())
            .await
            .expect("a watch item within 30 s")
    }

    fn is_compacted(item: Option<Result<WatchEvent>>) -> bool {
        matches!(item, Some(Err(Error::Compacted { .. })))
    }

    #[test]
    fn compaction_is_clamped_never_moves_back_and_names_what_to_drop() {
        let hub = EventHub::new(5, 1, None);
        assert_eq!(hub.compact(5, 3), Some(1..3));
        assert_eq!(hub.compact(5, 2), None, "backwards is a no-op");
        assert_eq!(hub.compact(5, 1000), Some(3..6), "clamped to current + 1");
        assert_eq!(hub.compacted(), 6);
        assert_eq!(hub.compact_for_write(6), None, "no history limit");
    }

    #[test]
    fn history_limit_keeps_the_newest_revisions() {
        let hub = EventHub::new(0, 1, Some(3));
        assert_eq!(hub.compact_for_write(3), None, "three revisions fit");
        assert_eq!(hub.compact_for_write(4), Some(1..2));
        assert_eq!(hub.compact_for_write(10), Some(2..8));
        assert_eq!(hub.compacted(), 8);
        let at_least_one = EventHub::new(0, 1, Some(0));
        assert_eq!(at_least_one.compact_for_write(4), Some(1..4));
    }

    #[tokio::test]
    async fn a_watch_from_before_the_compaction_point_fails() {
        let storage = storage(6, None);
        storage.hub.compact(6, 4);
        match storage.hub.watch(&storage, "k/", 3) {
            Err(Error::Compacted {
                requested,
                compacted,
            }) => assert_eq!((requested, compacted), (3, 4)),
            Err(other) => panic!("expected Compacted, got {other}"),
            Ok(_) => panic!("expected Compacted, got a watch"),
        }
        let mut watch = storage.hub.watch(&storage, "k/", 4).unwrap();
        assert_eq!(next(&mut watch).await.unwrap().unwrap().revision(), 4);
    }

    #[tokio::test]
    async fn a_read_overlapping_a_compaction_ends_the_stream_instead_of_skipping() {
        let storage = storage(6, None);
        let mut watch = storage.hub.watch(&storage, "k/", 2).unwrap();
        // The read returns revisions 2..=6, but a compaction to 4 lands while it runs.
        *storage.during_read.lock().unwrap() = Some(Box::new(|s: &FakeStorage| {
            s.hub.compact(6, 4);
        }));
        assert!(is_compacted(next(&mut watch).await), "no partial range");
        assert!(
            next(&mut watch).await.is_none(),
            "the error is the last item"
        );
    }

    #[tokio::test]
    async fn a_read_overlapping_a_restore_ends_the_stream() {
        let storage = storage(3, None);
        let mut watch = storage.hub.watch(&storage, "k/", 1).unwrap();
        *storage.during_read.lock().unwrap() = Some(Box::new(|s: &FakeStorage| {
            s.hub.restore(3, 0, |_| Ok(())).unwrap();
        }));
        assert!(is_compacted(next(&mut watch).await));
        assert!(next(&mut watch).await.is_none());
    }

    #[tokio::test]
    async fn restore_ends_open_cursors_even_when_replacing_fails() {
        for outcome in [Ok(()), Err(Error::Unavailable("disk gone".into()))] {
            let storage = storage(3, None);
            let mut live = storage.hub.watch(&storage, "", 0).unwrap();
            let failed = outcome.is_err();
            let mut point = 0;
            let restored = storage.hub.restore(9, 5, |p| {
                point = p;
                outcome
            });
            assert_eq!(restored.is_err(), failed);
            assert_eq!(point, 10, "max(snapshot's point, revision + 1)");
            assert_eq!(storage.hub.compacted(), 10);
            assert!(is_compacted(next(&mut live).await), "failed: {failed}");
        }
    }

    #[tokio::test]
    async fn a_watch_from_zero_starts_at_the_next_publication_and_ends_with_the_store() {
        let storage = storage(3, None);
        let mut watch = storage.hub.watch(&storage, "k/", 0).unwrap();
        storage.history.lock().unwrap().insert(4, vec![event(4)]);
        storage.hub.publish(4);
        storage.hub.publish(2); // late, out of order: ignored
        assert_eq!(next(&mut watch).await.unwrap().unwrap().revision(), 4);
        drop(storage);
        assert!(next(&mut watch).await.is_none());
    }
}
