//! [`RaftStore`]: the replicated [`Store`].

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use orion_core::Result;
use orion_core::store::{
    KeyValue, RangeResult, Revision, Store, StoreSnapshot, Txn, TxnResult, WatchStream,
};

use super::leader::{LeaderRequest, LeaderResponse};
use super::node::{Core, ReadMode};
use super::{Command, NodeId, RaftStatus, RequestId};
use crate::error::Error as ConsensusError;
use tokio::time::Instant;

/// A [`Store`] whose state is replicated by Raft. Cheap to clone; usable on any node.
///
/// - Writes (`put`, `delete`, `txn`, `compact`, `restore`) are committed through the Raft log,
///   forwarded to the leader when this node is not it, and acknowledged once applied. Each
///   carries a request id ([`Command::Tagged`]) that the state machine applies at most once, so
///   a write whose leader changed while it was in flight (or whose answer was lost) is retried
///   against the new leader until the request timeout. Without a quorum it then fails with
///   `Error::Unavailable`.
/// - Reads (`get`, `range`, `revision`, `snapshot`) are linearizable in
///   [`ReadMode::Linearizable`] (the default): the leader confirms it still leads (read index)
///   and this node waits to have applied that far. In [`ReadMode::Stale`] they read local state.
/// - Watches are served from the local inner store as it applies the log; revisions are the
///   same on every node, so a watch can resume on any node. Compaction follows the inner store.
#[derive(Debug)]
pub struct RaftStore<S: Store> {
    core: Arc<Core<S>>,
    read_mode: ReadMode,
}

impl<S: Store> Clone for RaftStore<S> {
    fn clone(&self) -> Self {
        Self {
            core: self.core.clone(),
            read_mode: self.read_mode,
        }
    }
}

impl<S: Store> RaftStore<S> {
    pub(crate) fn new(core: Arc<Core<S>>) -> Self {
        let read_mode = core.read_mode;
        Self { core, read_mode }
    }

    /// The same store with another read mode.
    pub fn with_read_mode(mut self, mode: ReadMode) -> Self {
        self.read_mode = mode;
        self
    }

    /// The id of the node this handle is on.
    pub fn node_id(&self) -> NodeId {
        self.core.id
    }

    /// The node's view of the cluster.
    pub fn status(&self) -> RaftStatus {
        self.core.status()
    }

    /// The local inner store. Read-only use: writing to it directly breaks replication.
    pub fn local(&self) -> &Arc<S> {
        &self.core.inner
    }

    /// Commits `command` under a new request id. An attempt is abandoned, and the same tagged
    /// command sent again, when this node learns of another leader (the old one may be frozen
    /// with the request) or when an attempt fails as unavailable (no leader, answer lost); all
    /// within one request timeout. Retrying is safe because the state machine applies a request
    /// id once and answers repeats with the first result.
    async fn write(&self, command: Command) -> Result<TxnResult> {
        let req = LeaderRequest::Write(Command::Tagged(
            RequestId::new(self.core.id),
            Box::new(command),
        ));
        let timeout = self.core.router.request_timeout();
        let deadline = Instant::now() + timeout;
        let mut metrics = self.core.raft.metrics();
        let mut last = String::from("no attempt finished");
        let mut backoff = Duration::from_millis(10);
        loop {
            let seen = {
                let m = metrics.borrow_and_update();
                (m.current_leader, m.current_term)
            };
            let attempt = tokio::time::timeout_at(deadline, self.core.router.route(req.clone()));
            let outcome = tokio::select! {
                outcome = attempt => outcome,
                () = another_leader(&mut metrics, seen) => {
                    last = "the leader changed while the write was in flight".into();
                    continue;
                }
            };
            match outcome {
                Err(_) => {
                    return Err(ConsensusError::Unavailable(format!(
                        "no quorum: the write did not commit within {timeout:?} (last: {last});                          check that a majority of voters is up and reachable"
                    ))
                    .into());
                }
                Ok(Ok(LeaderResponse::Written(resp))) => return resp.result.map_err(Into::into),
                Ok(Ok(other)) => {
                    return Err(ConsensusError::Raft(format!(
                        "unexpected answer to a write: {other:?}"
                    ))
                    .into());
                }
                Ok(Err(ConsensusError::Unavailable(msg))) if Instant::now() < deadline => {
                    last = msg;
                    tokio::time::sleep_until((Instant::now() + backoff).min(deadline)).await;
                    backoff = (backoff * 2).min(Duration::from_millis(100));
                }
                Ok(Err(e)) => return Err(e.into()),
            }
        }
    }

    /// Waits until a read started now would see every acknowledged write.
    async fn read_barrier(&self) -> Result<()> {
        if self.read_mode == ReadMode::Stale {
            return Ok(());
        }
        let index = match self.core.router.route(LeaderRequest::ReadIndex).await? {
            LeaderResponse::ReadIndex(i) => i,
            other => {
                return Err(ConsensusError::Raft(format!(
                    "unexpected answer to a read: {other:?}"
                ))
                .into());
            }
        };
        self.core
            .raft
            .wait(Some(self.core.router.request_timeout()))
            .applied_index_at_least(Some(index), "linearizable read")
            .await
            .map_err(|e| {
                orion_core::Error::Unavailable(format!(
                    "this node has not applied up to the read index {index}: {e}"
                ))
            })?;
        Ok(())
    }
}

/// Returns once this node knows a leader other than the one in `seen` (leader, term).
async fn another_leader(
    metrics: &mut tokio::sync::watch::Receiver<openraft::RaftMetrics<NodeId, openraft::BasicNode>>,
    seen: (Option<NodeId>, u64),
) {
    loop {
        if metrics.changed().await.is_err() {
            return std::future::pending().await; // Raft stopped: the attempt will end by itself.
        }
        let m = metrics.borrow_and_update();
        if m.current_leader.is_some() && (m.current_leader, m.current_term) != seen {
            return;
        }
    }
}

#[async_trait]
impl<S: Store> Store for RaftStore<S> {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>> {
        self.read_barrier().await?;
        self.core.inner.get(key).await
    }

    async fn range(&self, prefix: &str) -> Result<RangeResult> {
        self.read_barrier().await?;
        self.core.inner.range(prefix).await
    }

    async fn txn(&self, txn: Txn) -> Result<TxnResult> {
        self.write(Command::Txn(txn)).await
    }

    async fn watch(&self, prefix: &str, from_revision: Revision) -> Result<WatchStream> {
        self.core.inner.watch(prefix, from_revision).await
    }

    async fn compact(&self, revision: Revision) -> Result<()> {
        self.write(Command::Compact(revision)).await.map(|_| ())
    }

    async fn revision(&self) -> Result<Revision> {
        self.read_barrier().await?;
        self.core.inner.revision().await
    }

    async fn snapshot(&self) -> Result<StoreSnapshot> {
        self.read_barrier().await?;
        self.core.inner.snapshot().await
    }

    async fn restore(&self, snapshot: StoreSnapshot) -> Result<()> {
        self.write(Command::Restore(snapshot)).await.map(|_| ())
    }
}
