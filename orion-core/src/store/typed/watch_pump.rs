//! [`WatchPump`]: a watch read continuously on its own task, so that a reader that only looks now
//! and then (the leader's kept state, between rounds that can take seconds) does not fall behind
//! the store's bounded history.
//!
//! A store's watch is a cursor over its history: it buffers nothing, so a cursor that is not read
//! while the history moves on past its bound ends with `Compacted`, and its reader must read the
//! whole store again. At a million tasks that is seconds of decoding and a gigabyte of transient
//! memory, and a leader planning for ten seconds while the agents report thousands of tasks per
//! second fell behind the 100,000 events the binary keeps in nearly every round. The pump reads
//! the cursor as events come and queues them, up to [`MAX_QUEUED`] events; past that it stops
//! and the reader reads everything, as before.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use futures::{FutureExt, StreamExt};
use tokio::sync::mpsc;

use crate::store::{WatchEvent, WatchStream};

/// Most events queued for the reader; past it the pump stops (the reader then reads the whole
/// state again). About 300 MB of task events at worst.
pub const MAX_QUEUED: usize = 1 << 19;
/// Most events in one batch, unless a revision's events go on past it (a batch always ends at
/// the end of a revision).
const MAX_BATCH: usize = 65_536;

/// What the reader gets from the pump.
#[derive(Debug)]
pub(super) enum Pumped {
    /// Whole revisions, in order.
    Batch(Vec<WatchEvent>),
    /// Nothing ready now.
    Empty,
    /// The watch ended (compacted, restored, the store gone) or the queue overflowed: after
    /// what was queued before it, nothing more comes.
    Ended,
}

/// A watch read on its own task (see the module docs). Dropping it stops the task.
#[derive(Debug)]
pub(super) struct WatchPump {
    batches: mpsc::UnboundedReceiver<Vec<WatchEvent>>,
    queued: Arc<AtomicUsize>,
}

impl WatchPump {
    /// Starts reading `watch` on a task of the current tokio runtime.
    pub(super) fn start(watch: WatchStream) -> Self {
        let (tx, batches) = mpsc::unbounded_channel();
        let queued = Arc::new(AtomicUsize::new(0));
        tokio::spawn(pump(watch, tx, queued.clone()));
        WatchPump { batches, queued }
    }

    /// The next queued batch, without waiting.
    pub(super) fn try_next(&mut self) -> Pumped {
        match self.batches.try_recv() {
            Ok(batch) => self.taken(batch),
            Err(mpsc::error::TryRecvError::Empty) => Pumped::Empty,
            Err(mpsc::error::TryRecvError::Disconnected) => Pumped::Ended,
        }
    }

    /// The next batch, waiting for it.
    pub(super) async fn next(&mut self) -> Pumped {
        match self.batches.recv().await {
            Some(batch) => self.taken(batch),
            None => Pumped::Ended,
        }
    }

    fn taken(&self, batch: Vec<WatchEvent>) -> Pumped {
        self.queued.fetch_sub(batch.len(), Ordering::Relaxed);
        Pumped::Batch(batch)
    }
}

/// Reads `watch` into `tx` in batches of whole revisions until the watch ends, the reader goes,
/// or more than [`MAX_QUEUED`] events wait.
async fn pump(
    mut watch: WatchStream,
    tx: mpsc::UnboundedSender<Vec<WatchEvent>>,
    queued: Arc<AtomicUsize>,
) {
    let mut carried: Option<WatchEvent> = None;
    loop {
        let first = match carried.take() {
            Some(event) => event,
            None => tokio::select! {
                _ = tx.closed() => return,
                item = watch.next() => match item {
                    Some(Ok(event)) => event,
                    Some(Err(_)) | None => return,
                },
            },
        };
        // A store delivers all events of a revision in one read: what is ready completes it.
        let mut batch = vec![first];
        let mut ended = false;
        loop {
            match watch.next().now_or_never() {
                Some(Some(Ok(event))) => {
                    let last = batch.last().map(WatchEvent::revision);
                    if batch.len() >= MAX_BATCH && last != Some(event.revision()) {
                        carried = Some(event);
                        break;
                    }
                    batch.push(event);
                }
                Some(Some(Err(_)) | None) => {
                    ended = true;
                    break;
                }
                None => break,
            }
        }
        let len = batch.len();
        if queued.fetch_add(len, Ordering::Relaxed) + len > MAX_QUEUED || tx.send(batch).is_err() {
            return;
        }
        if ended {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{MemoryStore, Op, Store, Txn};

    async fn drain(pump: &mut WatchPump) -> (Vec<Vec<u64>>, bool) {
        let mut batches = Vec::new();
        loop {
            match tokio::time::timeout(std::time::Duration::from_millis(200), pump.next()).await {
                Ok(Pumped::Batch(b)) => batches.push(b.iter().map(WatchEvent::revision).collect()),
                Ok(Pumped::Ended) => return (batches, true),
                Ok(Pumped::Empty) | Err(_) => return (batches, false),
            }
        }
    }

    #[tokio::test]
    async fn batches_hold_whole_revisions_in_order() {
        let store = MemoryStore::new();
        let mut pump = WatchPump::start(store.watch("", 1).await.unwrap());
        for r in 0..20u8 {
            let mut txn = Txn::new();
            for k in 0..3u8 {
                txn = txn.and_then(Op::Put(format!("/k/{r}/{k}"), vec![k]));
            }
            store.txn(txn).await.unwrap();
        }
        let (batches, ended) = drain(&mut pump).await;
        assert!(!ended);
        let all: Vec<u64> = batches.iter().flatten().copied().collect();
        assert_eq!(all.len(), 60);
        assert!(all.windows(2).all(|w| w[0] <= w[1]), "{all:?}");
        for pair in batches.windows(2) {
            assert_ne!(
                pair[0].last(),
                pair[1].first(),
                "a revision split: {batches:?}"
            );
        }
    }

    #[tokio::test]
    async fn a_compacted_watch_ends_the_pump_after_what_it_queued() {
        let store = MemoryStore::with_history_limit(2);
        let mut pump = WatchPump::start(store.watch("", 1).await.unwrap());
        store.put("/a", b"1".to_vec()).await.unwrap();
        let (first, _) = drain(&mut pump).await;
        assert_eq!(first, vec![vec![1]]);
        // The reader goes away: the pump stops, so nothing holds the watch.
        drop(pump);
        let mut pump = WatchPump::start(store.watch("", 2).await.unwrap());
        store.restore(Default::default()).await.unwrap();
        assert!(matches!(pump.next().await, Pumped::Ended));
    }
}
