//! Cluster events (`orion events`, `GET /v1/events`): task state changes, placements and
//! failures, moves, node joins and deaths, service changes and rollouts.
//!
//! Events cost no write of their own: every node derives them from the store changes it
//! applies anyway (a watch on the whole key space, each change compared with the value it
//! replaced, see [`derive`]), and keeps the newest [`EVENT_CAPACITY`] of them in memory. Every
//! node applies the same writes in the same order, so every node derives the same events with
//! the same store revisions: `?since=REVISION` means the same on every node. A node keeps only
//! what it derived since it started (plus the recent history the store still had then).

mod derive;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use orion_core::model::Millis;
use orion_core::store::{Revision, keys};
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, watch};
use tracing::{debug, warn};

pub use derive::derive;

use crate::api::SharedStore;

/// How many events a node keeps (the oldest go first).
pub const EVENT_CAPACITY: usize = 2000;
/// How many store revisions before its start a node replays, when the store still has them.
const REPLAY_REVISIONS: Revision = 5000;
/// Events buffered per watcher; a watcher further behind is ended (it reconnects with `since`).
pub const WATCH_BUFFER: usize = 256;

/// How much an event matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Normal,
    Warning,
}

/// One cluster event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterEvent {
    /// The store revision of the change it was derived from (`?since=` takes it back).
    pub revision: Revision,
    /// When it happened (the record's own time when it has one), ms since the Unix epoch.
    pub time: Millis,
    pub severity: Severity,
    /// What happened, one word: `created`, `placed`, `running`, `failed`, `moved`, `joined`,
    /// `down`, `rollout`...
    pub reason: String,
    /// `service`, `task` or `node`: the kind of object it is about.
    pub kind: String,
    /// The object's name or id.
    pub name: String,
    /// The service it concerns, if any (a task's service).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// The node it concerns, if any (where a task was placed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// For humans.
    pub message: String,
}

/// The newest events, and a feed of new ones for watchers.
pub struct EventLog {
    ring: Mutex<VecDeque<ClusterEvent>>,
    feed: broadcast::Sender<ClusterEvent>,
}

impl Default for EventLog {
    fn default() -> Self {
        EventLog {
            ring: Mutex::new(VecDeque::with_capacity(EVENT_CAPACITY)),
            feed: broadcast::channel(WATCH_BUFFER).0,
        }
    }
}

impl EventLog {
    /// Keeps `event` (dropping the oldest beyond [`EVENT_CAPACITY`]) and sends it to watchers.
    pub fn push(&self, event: ClusterEvent) {
        {
            let mut ring = self.ring.lock().expect("event ring poisoned");
            if ring.len() == EVENT_CAPACITY {
                ring.pop_front();
            }
            ring.push_back(event.clone());
        }
        let _ = self.feed.send(event);
    }

    /// The kept events after revision `since`, oldest first.
    pub fn since(&self, since: Revision) -> Vec<ClusterEvent> {
        let ring = self.ring.lock().expect("event ring poisoned");
        ring.iter()
            .filter(|e| e.revision > since)
            .cloned()
            .collect()
    }

    /// A receiver of every event pushed from now on. Subscribe before reading [`Self::since`]
    /// and skip what was already read, so nothing falls between the two.
    pub fn subscribe(&self) -> broadcast::Receiver<ClusterEvent> {
        self.feed.subscribe()
    }
}

/// Derives events from every change of `store` into `log` until `shutdown` turns true. A
/// broken watch (compaction, a snapshot installed) is resumed from the store's current
/// revision: the events in between are lost, never made up.
pub async fn record(store: SharedStore, log: Arc<EventLog>, mut shutdown: watch::Receiver<bool>) {
    let mut from = match store.revision().await {
        Ok(current) => current.saturating_sub(REPLAY_REVISIONS).max(1),
        Err(_) => 1,
    };
    loop {
        let stream = match store.watch(keys::ROOT, from).await {
            Ok(s) => Some(s),
            Err(e) => {
                debug!(error = %e, from, "events: cannot watch from here; starting at the present");
                match store.revision().await {
                    Ok(current) => {
                        from = current + 1;
                        store.watch(keys::ROOT, from).await.ok()
                    }
                    Err(_) => None,
                }
            }
        };
        if let Some(mut stream) = stream {
            loop {
                tokio::select! {
                    _ = shutdown.changed() => return,
                    item = stream.next() => match item {
                        Some(Ok(change)) => {
                            from = change.revision() + 1;
                            for event in derive(&change) {
                                log.push(event);
                            }
                        }
                        Some(Err(e)) => {
                            warn!(error = %e, "events: the store's watch ended; resuming");
                            break;
                        }
                        None => break,
                    }
                }
            }
        }
        if *shutdown.borrow() {
            return;
        }
        tokio::select! {
            _ = shutdown.changed() => return,
            _ = tokio::time::sleep(std::time::Duration::from_millis(500)) => {}
        }
    }
}

#[cfg(test)]
mod tests;
