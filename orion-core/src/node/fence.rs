//! Fencing the controllers: a leadership record in the store that every controller write
//! compares.
//!
//! When a node becomes leader (of Raft term `term`), its controllers [`Fence::claim`] the record at
//! [`keys::LEADER`]. Every write they make afterwards carries [`Fence::compare`]: the record's
//! revision must still be the one they wrote. A new leader claims the record with its higher
//! term, so a deposed or paused leader that wakes up with a half-done plan has every write refused.
//! A claim never overwrites a record of a higher term: a stale leader cannot steal the fence back.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::model::{Millis, NodeId};
use crate::store::{ClusterStore, Compare, MAX_CAS_ATTEMPTS, Op, Revision, Store, Txn, keys};

/// Who runs the controllers, stored at [`keys::LEADER`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaderRecord {
    pub node: NodeId,
    /// The consensus term the node leads in (1 for a single node).
    pub term: u64,
    /// When it claimed.
    pub since: Millis,
}

/// A claimed leadership record: the compare that fences every controller write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fence {
    record: LeaderRecord,
    revision: Revision,
}

impl Fence {
    /// Claims the leadership record for `node` in `term`. Fails with [`Error::Conflict`] when a
    /// record of a higher term exists (this node is no longer the leader).
    pub async fn claim<S: Store>(
        store: &ClusterStore<S>,
        node: &str,
        term: u64,
        now: Millis,
    ) -> Result<Fence> {
        let record = LeaderRecord {
            node: node.to_owned(),
            term,
            since: now,
        };
        let value = serde_json::to_vec(&record).map_err(|e| Error::backend("leader record", e))?;
        for _ in 0..MAX_CAS_ATTEMPTS {
            let current = store.inner().get(keys::LEADER).await?;
            if let Some(kv) = &current
                && let Ok(held) = serde_json::from_slice::<LeaderRecord>(&kv.value)
                && held.term > term
            {
                return Err(Error::Conflict(format!(
                    "node {} leads in term {}, after this node's term {term}",
                    held.node, held.term
                )));
            }
            let seen = current.map_or(0, |kv| kv.mod_revision);
            let txn = Txn::new()
                .when(Compare::ModRevision(keys::LEADER.to_owned(), seen))
                .and_then(Op::Put(keys::LEADER.to_owned(), value.clone()));
            let result = store.inner().txn(txn).await?;
            if result.succeeded {
                return Ok(Fence {
                    record,
                    revision: result.revision,
                });
            }
        }
        Err(Error::Conflict(
            "the leadership record kept changing; gave up claiming it".into(),
        ))
    }

    /// The compare every fenced write carries.
    pub fn compare(&self) -> Compare {
        Compare::ModRevision(keys::LEADER.to_owned(), self.revision)
    }

    /// The record this fence claimed.
    pub fn record(&self) -> &LeaderRecord {
        &self.record
    }

    /// True while nobody has claimed the record since this fence did.
    pub async fn held<S: Store>(&self, store: &ClusterStore<S>) -> Result<bool> {
        Ok(store
            .inner()
            .get(keys::LEADER)
            .await?
            .is_some_and(|kv| kv.mod_revision == self.revision))
    }
}
