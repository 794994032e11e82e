//! `MemoryStore`: the in-memory [`Store`](super::Store).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;

use super::engine::{ReadKv, plan_txn};
use super::hub::{EventHub, History};
use super::{
    EventKind, KeyValue, RangeResult, Revision, Store, StoreSnapshot, Txn, TxnResult, WatchEvent,
    WatchStream,
};
use crate::error::{Error, Result};

/// An in-memory store: fast, not durable. For tests, simulations and single-process embedding.
///
/// A write is acknowledged once it is visible to every reader. History (revision -> events) is
/// kept until [`Store::compact`] discards it, or, with [`MemoryStore::with_history_limit`], only
/// the newest revisions are kept. Clones share the same state.
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
    hub: EventHub,
    /// Keep at most this many revisions of history (`None`: until compacted explicitly).
    history_limit: Option<u64>,
}

#[derive(Debug)]
struct State {
    kvs: BTreeMap<String, KeyValue>,
    revision: Revision,
    /// The oldest revision still watchable.
    compacted: Revision,
    epoch: u64,
    history: BTreeMap<Revision, Vec<WatchEvent>>,
}

impl ReadKv for State {
    fn get_kv(&self, key: &str) -> Result<Option<KeyValue>> {
        Ok(self.kvs.get(key).cloned())
    }
    fn scan_prefix(&self, prefix: &str) -> Result<Vec<KeyValue>> {
        Ok(self
            .kvs
            .range(prefix.to_owned()..)
            .take_while(|(key, _)| key.starts_with(prefix))
            .map(|(_, kv)| kv.clone())
            .collect())
    }
}

impl State {
    /// Drops history before `revision` (clamped to "everything written so far").
    fn compact(&mut self, revision: Revision) {
        let revision = revision.min(self.revision + 1);
        if revision <= self.compacted {
            return;
        }
        self.compacted = revision;
        // Usually one entry per write (history limit): popping is cheaper than `split_off`.
        while self
            .history
            .first_key_value()
            .is_some_and(|(&oldest, _)| oldest < revision)
        {
            self.history.pop_first();
        }
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStore {
    /// An empty store at revision 0 that keeps history until compacted explicitly.
    pub fn new() -> Self {
        Self::build(None)
    }

    /// An empty store that keeps only the newest `revisions` revisions of history (at least 1):
    /// watches from older revisions fail with [`Error::Compacted`].
    pub fn with_history_limit(revisions: u64) -> Self {
        Self::build(Some(revisions.max(1)))
    }

    fn build(history_limit: Option<u64>) -> Self {
        MemoryStore {
            shared: Arc::new(Shared {
                state: Mutex::new(State {
                    kvs: BTreeMap::new(),
                    revision: 0,
                    compacted: 1,
                    epoch: 0,
                    history: BTreeMap::new(),
                }),
                hub: EventHub::new(0),
                history_limit,
            }),
        }
    }

    /// The oldest revision a watch can still start from.
    pub fn compacted_revision(&self) -> Revision {
        self.shared.lock().compacted
    }
}

impl Shared {
    /// Locks the state. A poisoned lock is recovered: the state is only mutated after a write
    /// was fully planned, so it is consistent at every await-free point a panic could occur.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
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
        let state = self.lock();
        if epoch != state.epoch || from < state.compacted {
            return Err(Error::Compacted {
                requested: from,
                compacted: state.compacted,
            });
        }
        if from > to {
            return Ok(Vec::new());
        }
        Ok(state
            .history
            .range(from..=to)
            .flat_map(|(_, events)| events.iter())
            .filter(|event| event.kv.key.starts_with(prefix))
            .cloned()
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
        for event in &plan.events {
            match event.kind {
                EventKind::Put => {
                    state.kvs.insert(event.kv.key.clone(), event.kv.clone());
                }
                EventKind::Delete => {
                    state.kvs.remove(&event.kv.key);
                }
            }
        }
        state.history.insert(revision, plan.events);
        state.revision = revision;
        if let Some(limit) = self.shared.history_limit {
            state.compact((revision + 1).saturating_sub(limit));
        }
        // Announced under the lock, so announcements are in revision order.
        self.shared.hub.publish(revision);
        Ok(TxnResult {
            succeeded: plan.succeeded,
            revision,
        })
    }

    async fn watch(&self, prefix: &str, from_revision: Revision) -> Result<WatchStream> {
        let (epoch, next) = {
            let state = self.shared.lock();
            self.shared
                .hub
                .start_revision(from_revision, state.compacted)?
        };
        Ok(self.shared.hub.stream(&self.shared, prefix, epoch, next))
    }

    async fn compact(&self, revision: Revision) -> Result<()> {
        self.shared.lock().compact(revision);
        Ok(())
    }

    async fn revision(&self) -> Result<Revision> {
        Ok(self.shared.lock().revision)
    }

    async fn snapshot(&self) -> Result<StoreSnapshot> {
        let state = self.shared.lock();
        Ok(StoreSnapshot {
            revision: state.revision,
            compacted: state.revision + 1,
            kvs: state.kvs.values().cloned().collect(),
        })
    }

    async fn restore(&self, snapshot: StoreSnapshot) -> Result<()> {
        let mut state = self.shared.lock();
        state.kvs = snapshot
            .kvs
            .into_iter()
            .map(|kv| (kv.key.clone(), kv))
            .collect();
        state.revision = snapshot.revision;
        state.compacted = snapshot.compacted.max(snapshot.revision + 1);
        state.history.clear();
        state.epoch += 1;
        self.shared.hub.reset(snapshot.revision);
        Ok(())
    }
}
