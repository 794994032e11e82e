//! The Raft log and vote on sled.
//!
//! Layout (one sled db per node, `<data dir>/raft`): tree `log` maps the big-endian log index to
//! the entry; tree `meta` holds `vote`, `last_purged` and `committed`. Values are encoded with
//! [`codec`](crate::codec) (postcard).
//!
//! Durability: `save_vote` flushes before returning. `append` writes the entries (readable at
//! once) and hands the callback to a flusher task, which drains every pending callback, runs one
//! `flush_async` for all of them, and only then reports them persisted: concurrent appends share
//! one flush (group commit).

// openraft's trait methods return `StorageError`, which is large; the helpers here return it too.
#![allow(clippy::result_large_err)]

use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use openraft::storage::{LogFlushed, RaftLogStorage};
use openraft::{
    Entry, LogId, LogState, OptionalSend, RaftLogReader, StorageError, StorageIOError, Vote,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::mpsc;

use super::{NodeId, TypeConfig};
use crate::codec;
use crate::error::{Error as ConsensusError, Result};

const VOTE: &[u8] = b"vote";
const LAST_PURGED: &[u8] = b"last_purged";
const COMMITTED: &[u8] = b"committed";

type StorageResult<T> = std::result::Result<T, StorageError<NodeId>>;

fn read_err(e: impl ToString) -> StorageError<NodeId> {
    StorageIOError::read_logs(openraft::AnyError::error(e)).into()
}

fn write_err(e: impl ToString) -> StorageError<NodeId> {
    StorageIOError::write_logs(openraft::AnyError::error(e)).into()
}

fn decode<T: DeserializeOwned>(bytes: &[u8]) -> StorageResult<T> {
    codec::from_bytes(bytes).map_err(read_err)
}

fn encode<T: Serialize>(value: &T) -> StorageResult<Vec<u8>> {
    codec::to_bytes(value).map_err(write_err)
}

/// Reads log entries; cheap to clone, shared by openraft's replication tasks.
#[derive(Debug, Clone)]
pub struct SledLogReader {
    log: sled::Tree,
}

impl RaftLogReader<TypeConfig> for SledLogReader {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> StorageResult<Vec<Entry<TypeConfig>>> {
        read_range(&self.log, range)
    }
}

fn read_range(
    log: &sled::Tree,
    range: impl RangeBounds<u64>,
) -> StorageResult<Vec<Entry<TypeConfig>>> {
    let start = match range.start_bound() {
        Bound::Included(i) => Bound::Included(i.to_be_bytes()),
        Bound::Excluded(i) => Bound::Excluded(i.to_be_bytes()),
        Bound::Unbounded => Bound::Unbounded,
    };
    let end = match range.end_bound() {
        Bound::Included(i) => Bound::Included(i.to_be_bytes()),
        Bound::Excluded(i) => Bound::Excluded(i.to_be_bytes()),
        Bound::Unbounded => Bound::Unbounded,
    };
    log.range::<[u8; 8], _>((start, end))
        .map(|item| item.map_err(read_err).and_then(|(_, v)| decode(&v)))
        .collect()
}

/// The Raft log and vote of one node, on sled.
#[derive(Debug)]
pub struct SledLogStore {
    db: sled::Db,
    log: sled::Tree,
    meta: sled::Tree,
    flusher: mpsc::UnboundedSender<LogFlushed<TypeConfig>>,
    committed_index: Arc<AtomicU64>,
}

impl SledLogStore {
    /// Opens (or creates) the log trees in `db`. Must be called inside a tokio runtime: it
    /// starts the flusher task, which ends when the store is dropped.
    pub fn open(db: &sled::Db) -> Result<Self> {
        let log = db
            .open_tree("log")
            .map_err(|e| ConsensusError::sled("open tree log", e))?;
        let meta = db
            .open_tree("meta")
            .map_err(|e| ConsensusError::sled("open tree meta", e))?;
        let committed = meta
            .get(COMMITTED)
            .map_err(|e| ConsensusError::sled("read committed", e))?
            .and_then(|v| codec::from_bytes::<Option<LogId<NodeId>>>(&v).ok())
            .flatten()
            .map_or(0, |id| id.index);
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(flush_loop(db.clone(), rx));
        Ok(Self {
            db: db.clone(),
            log,
            meta,
            flusher: tx,
            committed_index: Arc::new(AtomicU64::new(committed)),
        })
    }

    /// The last committed index this node knows of, shared with [`super::RaftNode::status`].
    pub fn committed_index(&self) -> Arc<AtomicU64> {
        self.committed_index.clone()
    }

    fn get_meta<T: DeserializeOwned>(&self, key: &[u8]) -> StorageResult<Option<T>> {
        match self.meta.get(key).map_err(read_err)? {
            Some(v) => decode(&v).map(Some),
            None => Ok(None),
        }
    }

    async fn flush(&self) -> StorageResult<()> {
        self.db.flush_async().await.map(|_| ()).map_err(write_err)
    }
}

/// Group commit: one flush for every append that arrived while the previous flush ran.
async fn flush_loop(db: sled::Db, mut rx: mpsc::UnboundedReceiver<LogFlushed<TypeConfig>>) {
    let mut pending = Vec::new();
    while rx.recv_many(&mut pending, 1024).await > 0 {
        let result = db.flush_async().await;
        for callback in pending.drain(..) {
            callback.log_io_completed(match &result {
                Ok(_) => Ok(()),
                Err(e) => Err(std::io::Error::other(e.to_string())),
            });
        }
    }
}

impl RaftLogReader<TypeConfig> for SledLogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> StorageResult<Vec<Entry<TypeConfig>>> {
        read_range(&self.log, range)
    }
}

impl RaftLogStorage<TypeConfig> for SledLogStore {
    type LogReader = SledLogReader;

    async fn get_log_state(&mut self) -> StorageResult<LogState<TypeConfig>> {
        let last_purged: Option<LogId<NodeId>> = self.get_meta(LAST_PURGED)?.flatten();
        let last = match self.log.last().map_err(read_err)? {
            Some((_, v)) => Some(decode::<Entry<TypeConfig>>(&v)?.log_id),
            None => last_purged,
        };
        Ok(LogState {
            last_purged_log_id: last_purged,
            last_log_id: last,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        SledLogReader {
            log: self.log.clone(),
        }
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> StorageResult<()> {
        self.meta
            .insert(VOTE, encode(vote)?)
            .map_err(|e| StorageIOError::write_vote(openraft::AnyError::error(e)))?;
        self.flush().await
    }

    async fn read_vote(&mut self) -> StorageResult<Option<Vote<NodeId>>> {
        self.get_meta(VOTE)
    }

    async fn save_committed(&mut self, committed: Option<LogId<NodeId>>) -> StorageResult<()> {
        self.committed_index
            .store(committed.map_or(0, |c| c.index), Ordering::Relaxed);
        // Not flushed: losing it only means re-learning the commit index from the leader.
        self.meta
            .insert(COMMITTED, encode(&committed)?)
            .map_err(write_err)?;
        Ok(())
    }

    async fn read_committed(&mut self) -> StorageResult<Option<LogId<NodeId>>> {
        Ok(self.get_meta(COMMITTED)?.flatten())
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<TypeConfig>) -> StorageResult<()>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut batch = sled::Batch::default();
        for entry in entries {
            batch.insert(&entry.log_id.index.to_be_bytes(), encode(&entry)?);
        }
        self.log.apply_batch(batch).map_err(write_err)?;
        if let Err(mpsc::error::SendError(callback)) = self.flusher.send(callback) {
            // The flusher only stops when the store is dropped; flush inline to stay correct.
            let result = self.db.flush_async().await;
            callback.log_io_completed(result.map(|_| ()).map_err(std::io::Error::other));
        }
        Ok(())
    }

    async fn truncate(&mut self, log_id: LogId<NodeId>) -> StorageResult<()> {
        let mut batch = sled::Batch::default();
        for key in self.log.range(log_id.index.to_be_bytes()..).keys() {
            batch.remove(key.map_err(write_err)?);
        }
        self.log.apply_batch(batch).map_err(write_err)?;
        self.flush().await
    }

    async fn purge(&mut self, log_id: LogId<NodeId>) -> StorageResult<()> {
        self.meta
            .insert(LAST_PURGED, encode(&Some(log_id))?)
            .map_err(write_err)?;
        let mut batch = sled::Batch::default();
        for key in self.log.range(..=log_id.index.to_be_bytes()).keys() {
            batch.remove(key.map_err(write_err)?);
        }
        self.log.apply_batch(batch).map_err(write_err)?;
        self.flush().await
    }
}
