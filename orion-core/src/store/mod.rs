//! The cluster state: an ordered key/value store with a revision per write (the etcd model).
//!
//! Every successful write (a `put`, a `delete` that removed something, or a transaction that
//! changed at least one key) advances the store's revision by exactly one, and every key it
//! touched carries that revision as its `mod_revision`. Watches replay history from any revision
//! that compaction has not removed, then follow live writes, in revision order with no gaps.
//!
//! Implementations: [`MemoryStore`], [`SledStore`] (feature `sled`) and, in `orion-consensus`,
//! `RaftStore`. All of them pass `orion_core::testing::store` (feature `testing`). The typed layer
//! [`ClusterStore`] stores the model (services, tasks, nodes, measurements) on any of them.

use std::pin::Pin;

use async_trait::async_trait;
use futures::Stream;
use serde::{Deserialize, Serialize};

use crate::error::Result;

mod engine;
mod hub;
mod memory;
mod shared_kv;
#[cfg(feature = "sled")]
mod sled_codec;
#[cfg(feature = "sled")]
mod sled_store;
mod typed;

pub use memory::{DEFAULT_HISTORY_EVENTS, MemoryStore};
pub use shared_kv::SharedKv;
#[cfg(feature = "sled")]
pub use sled_store::SledStore;
pub use typed::{
    ClusterState, ClusterStore, DEFAULT_SPEC_HISTORY, DEFAULT_WAIT_LIMIT, KeyRevisions,
    MAX_CAS_ATTEMPTS, MAX_SPEC_HISTORY, MAX_WAIT_LIMIT, SpecRevision, TASK_RECORD_V1, TypedEvent,
    TypedWatch, VersionedService, WatchedState, decode_value, keys,
};

/// A store revision. 0 means "before the first write"; the first write makes revision 1.
pub type Revision = u64;

/// A key with its value and revisions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyValue {
    pub key: String,
    #[serde(with = "serde_bytes")]
    pub value: Vec<u8>,
    /// Revision of the write that created the key (since it last did not exist).
    pub create_revision: Revision,
    /// Revision of the last write to the key.
    pub mod_revision: Revision,
    /// Number of writes since creation; 1 after the first put.
    pub version: u64,
}

/// The result of a prefix range: the matching keys in key order, and the store's revision at
/// the moment they were read (watch from `revision + 1` to see everything after).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RangeResult {
    pub kvs: Vec<KeyValue>,
    pub revision: Revision,
}

/// What a watch reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventKind {
    Put,
    Delete,
}

/// One change to one key. For a delete, `kv.value` is empty and `kv.mod_revision` is the delete's
/// revision; `prev` holds the value before, when the store still has it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatchEvent {
    pub kind: EventKind,
    pub kv: KeyValue,
    pub prev: Option<KeyValue>,
}

impl WatchEvent {
    /// The revision of the write that produced this event.
    pub fn revision(&self) -> Revision {
        self.kv.mod_revision
    }
}

/// A stream of watch events, in revision order. It ends only when the store is dropped; an
/// `Err` item (for example [`crate::Error::Compacted`] after falling too far behind) is the last.
pub type WatchStream = Pin<Box<dyn Stream<Item = Result<WatchEvent>> + Send + 'static>>;

/// A condition on one key, checked atomically at the start of a transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Compare {
    /// The key exists.
    Exists(String),
    /// The key does not exist.
    Missing(String),
    /// The key's `mod_revision` equals the given one (0 means "does not exist").
    ModRevision(String, Revision),
    /// The key's `version` equals the given one (0 means "does not exist").
    Version(String, u64),
    /// The key exists and its value equals the given bytes.
    Value(String, #[serde(with = "serde_bytes")] Vec<u8>),
}

/// A write inside a transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    Put(String, #[serde(with = "serde_bytes")] Vec<u8>),
    Delete(String),
    /// Deletes every key that starts with the prefix.
    DeletePrefix(String),
}

/// A transaction: if every compare holds, apply `success`, otherwise apply `failure`. All ops of
/// the chosen branch share one revision and are applied atomically.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Txn {
    pub compare: Vec<Compare>,
    pub success: Vec<Op>,
    pub failure: Vec<Op>,
}

impl Txn {
    /// An empty transaction (always succeeds, writes nothing).
    pub fn new() -> Self {
        Self::default()
    }
    /// Adds a condition.
    pub fn when(mut self, c: Compare) -> Self {
        self.compare.push(c);
        self
    }
    /// Adds a write to the success branch.
    pub fn and_then(mut self, op: Op) -> Self {
        self.success.push(op);
        self
    }
    /// Adds a write to the failure branch.
    pub fn or_else(mut self, op: Op) -> Self {
        self.failure.push(op);
        self
    }
}

/// What a transaction did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxnResult {
    /// True when every compare held and `success` was applied.
    pub succeeded: bool,
    /// The store's revision after the transaction (unchanged if nothing was written).
    pub revision: Revision,
}

/// A full, self-contained copy of a store's state, used by Raft snapshots.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreSnapshot {
    /// The revision the snapshot reflects.
    pub revision: Revision,
    /// The oldest revision still watchable after restoring (history is not carried over).
    pub compacted: Revision,
    /// Every live key, in key order. Shared, not copied: [`MemoryStore`] hands out a snapshot
    /// of a million keys without copying one, while the Raft snapshot of it is encoded.
    pub kvs: Vec<SharedKv>,
}

/// An ordered, revisioned key/value store.
///
/// Contract for every implementation:
/// - A write is acknowledged only once it is durable to the implementation's standard (memory:
///   visible; sled: flushed; Raft: committed by a quorum).
/// - Revisions increase by one per write that changed something, and never go backwards, across
///   restarts included.
/// - `watch(prefix, from)` delivers every change to keys under `prefix` with revision `>= from`,
///   in revision order, exactly once; `from == 0` means "from the next write". Asking for a
///   revision older than the compaction point fails with [`crate::Error::Compacted`].
/// - Methods never panic on any input; keys are arbitrary UTF-8 strings.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// The value at `key`, if any.
    async fn get(&self, key: &str) -> Result<Option<KeyValue>>;

    /// Every key starting with `prefix` (all keys for `""`), in key order.
    async fn range(&self, prefix: &str) -> Result<RangeResult>;

    /// Sets `key` to `value`; returns the new revision.
    async fn put(&self, key: &str, value: Vec<u8>) -> Result<Revision> {
        let r = self
            .txn(Txn::new().and_then(Op::Put(key.to_owned(), value)))
            .await?;
        Ok(r.revision)
    }

    /// Removes `key`; returns the new revision, or `None` if the key did not exist (no write).
    async fn delete(&self, key: &str) -> Result<Option<Revision>> {
        let r = self
            .txn(
                Txn::new()
                    .when(Compare::Exists(key.to_owned()))
                    .and_then(Op::Delete(key.to_owned())),
            )
            .await?;
        Ok(r.succeeded.then_some(r.revision))
    }

    /// Runs a compare-and-swap transaction atomically.
    async fn txn(&self, txn: Txn) -> Result<TxnResult>;

    /// Streams changes under `prefix` from `from_revision` on (see the trait contract).
    async fn watch(&self, prefix: &str, from_revision: Revision) -> Result<WatchStream>;

    /// Discards history before `revision`; later watches from older revisions fail.
    /// Compacting to a revision at or below the current compaction point is a no-op.
    async fn compact(&self, revision: Revision) -> Result<()>;

    /// The current revision.
    async fn revision(&self) -> Result<Revision>;

    /// A copy of the whole state, for snapshots.
    async fn snapshot(&self) -> Result<StoreSnapshot>;

    /// Replaces the whole state with `snapshot` (its revision included). Open watches end with
    /// [`crate::Error::Compacted`], since the history they were following is gone.
    async fn restore(&self, snapshot: StoreSnapshot) -> Result<()>;
}

#[async_trait]
impl<S: Store + ?Sized> Store for std::sync::Arc<S> {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>> {
        (**self).get(key).await
    }
    async fn range(&self, prefix: &str) -> Result<RangeResult> {
        (**self).range(prefix).await
    }
    async fn put(&self, key: &str, value: Vec<u8>) -> Result<Revision> {
        (**self).put(key, value).await
    }
    async fn delete(&self, key: &str) -> Result<Option<Revision>> {
        (**self).delete(key).await
    }
    async fn txn(&self, txn: Txn) -> Result<TxnResult> {
        (**self).txn(txn).await
    }
    async fn watch(&self, prefix: &str, from_revision: Revision) -> Result<WatchStream> {
        (**self).watch(prefix, from_revision).await
    }
    async fn compact(&self, revision: Revision) -> Result<()> {
        (**self).compact(revision).await
    }
    async fn revision(&self) -> Result<Revision> {
        (**self).revision().await
    }
    async fn snapshot(&self) -> Result<StoreSnapshot> {
        (**self).snapshot().await
    }
    async fn restore(&self, snapshot: StoreSnapshot) -> Result<()> {
        (**self).restore(snapshot).await
    }
}
