//! `MemoryStore`: the in-memory [`Store`](super::Store).

use std::borrow::Borrow;
use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;

use super::engine::{ReadKv, plan_txn};
use super::hub::{EventHub, HistoryStorage};
use super::{
    EventKind, KeyValue, RangeResult, Revision, SharedKv, Store, StoreSnapshot, Txn, TxnResult,
    WatchEvent, WatchStream,
};
use crate::error::Result;

/// An in-memory store: fast, not durable. For tests, simulations and single-process embedding.
///
/// A write is acknowledged once it is visible to every reader. History (revision -> events) is
/// kept until [`Store::compact`] discards it, or, with [`MemoryStore::with_history_limit`], only
/// the newest revisions are kept (the rules are the shared watch hub's, as in `SledStore`).
/// Clones share the same state.
///
/// ```
/// # #[tokio::main] async fn main() -> orion_core::Result<()> {
/// use futures::StreamExt;
/// use orion_core::store::{MemoryStore, Store};
/// let store = MemoryStore::new();
/// let first = store.put("/app/a", b"1".to_vec()).await?;
/// store.put("/other", b"x".to_vec()).await?;
/// // Replay from a past revision, filtered by prefix.
/// let mut watch = store.watch("/app/", first).await?;
/// let event = watch.next().await.expect("an event")?;
/// assert_eq!((event.kv.key.as_str(), event.revision()), ("/app/a", first));
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct MemoryStore {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    /// Compaction point, history limit and epoch of `history`.
    hub: EventHub,
    /// The most events the history keeps, whatever the revision limit says (see
    /// [`MemoryStore::with_history_bounds`]).
    max_history_events: Option<usize>,
}

/// The state. Memory matters (the leader holds every task here), so each key/value is stored
/// once, as a [`SharedKv`]: the key set, the history and snapshots share it, and a put's history
/// entry shares its new value with the key set and its previous value with the entry before it.
/// Reads copy out.
#[derive(Debug)]
struct State {
    kvs: BTreeSet<Entry>,
    revision: Revision,
    /// Events per revision, from the hub's compaction point on.
    history: BTreeMap<Revision, Vec<StoredEvent>>,
    /// Events in `history`, all revisions together.
    history_events: usize,
}

/// A live key/value, ordered (and looked up) by its key's bytes alone (the order of the keys).
#[derive(Debug, Clone)]
struct Entry(SharedKv);

impl Borrow<[u8]> for Entry {
    fn borrow(&self) -> &[u8] {
        self.0.key_bytes()
    }
}
impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        self.0.key_bytes() == other.0.key_bytes()
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Entry {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.key_bytes().cmp(other.0.key_bytes())
    }
}

/// A [`WatchEvent`] as kept in the history, sharing its key/values.
#[derive(Debug)]
struct StoredEvent {
    kind: EventKind,
    kv: SharedKv,
    prev: Option<SharedKv>,
}

impl StoredEvent {
    fn to_event(&self) -> WatchEvent {
        WatchEvent {
            kind: self.kind,
            kv: self.kv.to_key_value(),
            prev: self.prev.as_ref().map(SharedKv::to_key_value),
        }
    }
}

impl ReadKv for State {
    fn get_kv(&self, key: &str) -> Result<Option<KeyValue>> {
        Ok(self
            .kvs
            .get(key.as_bytes())
            .map(|entry| entry.0.to_key_value()))
    }
    fn scan_prefix(&self, prefix: &str) -> Result<Vec<KeyValue>> {
        let prefix = prefix.as_bytes();
        Ok(self
            .kvs
            .range::<[u8], _>((Bound::Included(prefix), Bound::Unbounded))
            .take_while(|entry| entry.0.key_bytes().starts_with(prefix))
            .map(|entry| entry.0.to_key_value())
            .collect())
    }
}

impl State {
    /// Drops the history of revisions before `point` (the hub's new compaction point).
    fn discard_before(&mut self, point: Revision) {
        // Usually one entry per write (history limit): popping is cheaper than `split_off`.
        while self
            .history
            .first_key_value()
            .is_some_and(|(&oldest, _)| oldest < point)
        {
            if let Some((_, events)) = self.history.pop_first() {
                self.history_events -= events.len();
            }
        }
    }

    /// The compaction point that leaves at most `max` events in the history (always keeping the
    /// newest revision), or `None` when the history is within it.
    fn point_for_events(&self, max: usize) -> Option<Revision> {
        let mut excess = self.history_events.checked_sub(max).filter(|&n| n > 0)?;
        let newest = *self.history.last_key_value()?.0;
        for (&revision, events) in &self.history {
            if revision == newest {
                return Some(revision);
            }
            excess = excess.saturating_sub(events.len());
            if excess == 0 {
                return Some(revision + 1);
            }
        }
        None
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

/// The history bound in events the `orion` binary gives its Raft-replicated store
/// ([`MemoryStore::with_history_bounds`]): about 50 MB of task history at most.
pub const DEFAULT_HISTORY_EVENTS: usize = 100_000;

impl MemoryStore {
    /// An empty store at revision 0 that keeps history until compacted explicitly.
    pub fn new() -> Self {
        Self::build(None, None)
    }

    /// An empty store that keeps only the newest `revisions` revisions of history (at least 1):
    /// watches from older revisions fail with [`Error::Compacted`].
    pub fn with_history_limit(revisions: u64) -> Self {
        Self::build(Some(revisions.max(1)), None)
    }

    /// An empty store that keeps the newest `revisions` revisions of history (at least 1), and
    /// fewer when they hold more than `events` events (at least 1) in all: the oldest revisions
    /// are compacted until the rest fit, the newest always kept. A revision can be a transaction
    /// of hundreds of writes (a batched plan), so a revision count alone does not bound memory.
    pub fn with_history_bounds(revisions: u64, events: usize) -> Self {
        Self::build(Some(revisions.max(1)), Some(events.max(1)))
    }

    fn build(history_limit: Option<u64>, max_history_events: Option<usize>) -> Self {
        MemoryStore {
            shared: Arc::new(Shared {
                state: Mutex::new(State {
                    kvs: BTreeSet::new(),
                    revision: 0,
                    history: BTreeMap::new(),
                    history_events: 0,
                }),
                hub: EventHub::new(0, 1, history_limit),
                max_history_events,
            }),
        }
    }

    /// The oldest revision a watch can still start from.
    pub fn compacted_revision(&self) -> Revision {
        self.shared.hub.compacted()
    }
}

impl Shared {
    /// Locks the state. A poisoned lock is recovered: the state is only mutated after a write
    /// was fully planned, so it is consistent at every await-free point a panic could occur.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl HistoryStorage for Shared {
    fn hub(&self) -> &EventHub {
        &self.hub
    }

    fn read_events(&self, from: Revision, to: Revision, prefix: &str) -> Result<Vec<WatchEvent>> {
        let state = self.lock();
        Ok(state
            .history
            .range(from..=to)
            .flat_map(|(_, events)| events.iter())
            .filter(|event| event.kv.key_bytes().starts_with(prefix.as_bytes()))
            .map(StoredEvent::to_event)
            .collect())
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>> {
        self.shared.lock().get_kv(key)
    }

    async fn range(&self, prefix: &str) -> Result<RangeResult> {
        let state = self.shared.lock();
        Ok(RangeResult {
            kvs: state.scan_prefix(prefix)?,
            revision: state.revision,
        })
    }

    async fn txn(&self, txn: Txn) -> Result<TxnResult> {
        let mut state = self.shared.lock();
        let revision = state.revision + 1;
        let plan = plan_txn(&*state, &txn, revision)?;
        if plan.events.is_empty() {
            return Ok(TxnResult {
                succeeded: plan.succeeded,
                revision: state.revision,
            });
        }
        let mut stored = Vec::with_capacity(plan.events.len());
        for WatchEvent { kind, kv, prev: _ } in plan.events {
            // The plan's `prev` is a copy of the entry this replaces: keep the entry itself.
            let kv = SharedKv::from(kv);
            let prev = match kind {
                EventKind::Put => state.kvs.replace(Entry(kv.clone())),
                EventKind::Delete => state.kvs.take(kv.key_bytes()),
            };
            stored.push(StoredEvent {
                kind,
                kv,
                prev: prev.map(|entry| entry.0),
            });
        }
        state.history_events += stored.len();
        state.history.insert(revision, stored);
        state.revision = revision;
        if let Some(dropped) = self.shared.hub.compact_for_write(revision) {
            state.discard_before(dropped.end);
        }
        let over = self.shared.max_history_events;
        if let Some(point) = over.and_then(|max| state.point_for_events(max))
            && let Some(dropped) = self.shared.hub.compact(revision, point)
        {
            state.discard_before(dropped.end);
        }
        // Announced under the lock, so announcements are in revision order.
        self.shared.hub.publish(revision);
        Ok(TxnResult {
            succeeded: plan.succeeded,
            revision,
        })
    }

    async fn watch(&self, prefix: &str, from_revision: Revision) -> Result<WatchStream> {
        // Under the lock, so no restore is half done.
        let _state = self.shared.lock();
        self.shared.hub.watch(&self.shared, prefix, from_revision)
    }

    async fn compact(&self, revision: Revision) -> Result<()> {
        let mut state = self.shared.lock();
        if let Some(dropped) = self.shared.hub.compact(state.revision, revision) {
            state.discard_before(dropped.end);
        }
        Ok(())
    }

    async fn revision(&self) -> Result<Revision> {
        Ok(self.shared.lock().revision)
    }

    async fn snapshot(&self) -> Result<StoreSnapshot> {
        let state = self.shared.lock();
        Ok(StoreSnapshot {
            revision: state.revision,
            compacted: EventHub::snapshot_compacted(state.revision),
            kvs: state.kvs.iter().map(|entry| entry.0.clone()).collect(),
        })
    }

    async fn restore(&self, snapshot: StoreSnapshot) -> Result<()> {
        let mut state = self.shared.lock();
        let StoreSnapshot {
            revision,
            compacted,
            kvs,
        } = snapshot;
        self.shared.hub.restore(revision, compacted, |_| {
            state.kvs = kvs.into_iter().map(Entry).collect();
            state.revision = revision;
            state.history.clear();
            state.history_events = 0;
            Ok(())
        })
    }
}
