//! A store wrapper that times every write until it is committed.

use std::sync::Arc;
use std::time::Instant;

use orion_core::Result;
use orion_core::store::{
    KeyValue, RangeResult, Revision, Store, StoreSnapshot, Txn, TxnResult, WatchStream,
};

use super::Metrics;

/// `inner`, with the time of every write (`put`, `delete`, `txn`) observed in
/// `orion_raft_commit_latency_seconds`, failed writes included. Reads pass straight through.
/// A write returns once committed (the [`Store`] contract), so this is the commit latency as the
/// node's writers see it.
#[derive(Clone)]
pub struct TimedStore {
    inner: Arc<dyn Store>,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for TimedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TimedStore").finish_non_exhaustive()
    }
}

impl TimedStore {
    pub fn new(inner: Arc<dyn Store>, metrics: Arc<Metrics>) -> Self {
        TimedStore { inner, metrics }
    }
}

#[async_trait::async_trait]
impl Store for TimedStore {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>> {
        self.inner.get(key).await
    }

    async fn range(&self, prefix: &str) -> Result<RangeResult> {
        self.inner.range(prefix).await
    }

    async fn put(&self, key: &str, value: Vec<u8>) -> Result<Revision> {
        let start = Instant::now();
        let r = self.inner.put(key, value).await;
        self.metrics.commit(start.elapsed());
        r
    }

    async fn delete(&self, key: &str) -> Result<Option<Revision>> {
        let start = Instant::now();
        let r = self.inner.delete(key).await;
        self.metrics.commit(start.elapsed());
        r
    }

    async fn txn(&self, txn: Txn) -> Result<TxnResult> {
        let start = Instant::now();
        let r = self.inner.txn(txn).await;
        self.metrics.commit(start.elapsed());
        r
    }

    async fn watch(&self, prefix: &str, from_revision: Revision) -> Result<WatchStream> {
        self.inner.watch(prefix, from_revision).await
    }

    async fn compact(&self, revision: Revision) -> Result<()> {
        self.inner.compact(revision).await
    }

    async fn revision(&self) -> Result<Revision> {
        self.inner.revision().await
    }

    async fn snapshot(&self) -> Result<StoreSnapshot> {
        self.inner.snapshot().await
    }

    async fn restore(&self, snapshot: StoreSnapshot) -> Result<()> {
        self.inner.restore(snapshot).await
    }
}
