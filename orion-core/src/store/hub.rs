//! The watch machinery shared by the local stores.
//!
//! A store keeps its history (revision -> events) itself; the [`EventHub`] only announces which
//! revision is the newest *acknowledged* one. Every watch stream is a cursor that reads the
//! history from its next revision up to the announced one, then sleeps until the next
//! announcement. There is no per-watcher buffer to overflow: a slow watcher simply reads more
//! history when it wakes up, and if compaction removed what it still needed, its stream ends with
//! [`Error::Compacted`]. Restoring a snapshot starts a new *epoch*; cursors of the old epoch end
//! with [`Error::Compacted`] too.

use std::collections::VecDeque;
use std::sync::{Arc, Weak};

use tokio::sync::watch;

use super::{Revision, WatchEvent, WatchStream};
use crate::error::{Error, Result};

/// How many revisions a cursor reads from history at once (bounds its memory).
const READ_BATCH: u64 = 256;

/// The newest acknowledged revision, and the epoch it belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Published {
    pub epoch: u64,
    pub revision: Revision,
}

/// A store's history, as read by watch cursors.
pub(crate) trait History: Send + Sync + 'static {
    /// Events under `prefix` with revisions in `from..=to`, in revision order.
    ///
    /// Fails with [`Error::Compacted`] when `epoch` is not the current one (a snapshot was
    /// restored) or when `from` is older than the compaction point.
    fn read_history(
        &self,
        epoch: u64,
        from: Revision,
        to: Revision,
        prefix: &str,
    ) -> Result<Vec<WatchEvent>>;
}

/// Announces acknowledged revisions to every watch cursor of one store.
#[derive(Debug)]
pub(crate) struct EventHub {
    tx: watch::Sender<Published>,
}

impl EventHub {
    /// A hub whose newest acknowledged revision is `revision`, in epoch 0.
    pub fn new(revision: Revision) -> Self {
        let (tx, _) = watch::channel(Published { epoch: 0, revision });
        EventHub { tx }
    }

    /// The newest acknowledged revision and the current epoch.
    pub fn published(&self) -> Published {
        *self.tx.borrow()
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

    /// Starts a new epoch at `revision` (after a restore): every open cursor ends with
    /// [`Error::Compacted`].
    pub fn reset(&self, revision: Revision) {
        self.tx.send_modify(|p| {
            p.epoch += 1;
            p.revision = revision;
        });
    }

    /// Where a watch from `from` starts: the next revision for `from == 0`, else `from`, which
    /// must not be older than `compacted` (the oldest watchable revision).
    pub fn start_revision(&self, from: Revision, compacted: Revision) -> Result<(u64, Revision)> {
        let published = self.published();
        if from == 0 {
            return Ok((published.epoch, published.revision + 1));
        }
        if from < compacted {
            return Err(Error::Compacted {
                requested: from,
                compacted,
            });
        }
        Ok((published.epoch, from))
    }

    /// A stream of the events under `prefix` from revision `next` on, read from `source`.
    /// The stream holds `source` weakly: it ends when the store is dropped.
    pub fn stream<H: History>(
        &self,
        source: &Arc<H>,
        prefix: &str,
        epoch: u64,
        next: Revision,
    ) -> WatchStream {
        let cursor = Cursor {
            source: Arc::downgrade(source),
            rx: self.tx.subscribe(),
            epoch,
            next,
            prefix: prefix.to_owned(),
            buffer: VecDeque::new(),
            finished: false,
        };
        Box::pin(futures::stream::unfold(cursor, Cursor::step))
    }
}

/// One watcher's position in the history.
struct Cursor<H> {
    source: Weak<H>,
    rx: watch::Receiver<Published>,
    epoch: u64,
    /// The next revision to read.
    next: Revision,
    prefix: String,
    buffer: VecDeque<WatchEvent>,
    /// Set after an error item: the stream ends after it.
    finished: bool,
}

impl<H: History> Cursor<H> {
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
                let source = self.source.upgrade()?;
                let to = published
                    .revision
                    .min(self.next.saturating_add(READ_BATCH - 1));
                match source.read_history(self.epoch, self.next, to, &self.prefix) {
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
