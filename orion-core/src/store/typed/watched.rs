//! [`WatchedState`]: the [`ClusterState`] of [`ClusterStore::load_state`], loaded once and then
//! kept current from a watch, decoding only the values that changed.
//!
//! **Contract.** After it has applied every write up to revision `R`, the state equals
//! `load_state()` read at `R` (`tests/store_watched_state.rs` checks this against random
//! writes, compactions and restores). [`WatchedState::at_least`] never hands out a state older
//! than the revision asked for: it applies what the watch has delivered, waits (at most
//! [`WatchedState::wait_limit`]) for the rest, and reads the whole state again with `load_state`
//! when the wait runs out, when the watch fails ([`Error::Compacted`]: the history it needed was
//! compacted away, or the store was restored from a snapshot, which starts a new epoch and ends
//! every watch), or when the watch ends. [`WatchedState::current`] asks for the store's current
//! revision (under Raft, the latest committed one this node knows).
//!
//! **Why a stale read does no harm.** Controllers act on a state with fenced compare-and-swap
//! writes (the fence, and the `mod_revision` of every task, slot and rollout key the plan relied
//! on): had the state been stale, the writes would fail and the round would only be wasted.
//!
//! **Cost.** A batch of `k` changes costs `k` JSON decodes; the sorted task, service and node
//! lists are patched in place (`O(k log n)`) when only existing values change, and merged once
//! (`O(n)` moves, no decoding, no clones) when values were created or deleted. A change of the
//! per-link measurement records, a deleted per-node record or one that dropped links rebuilds
//! the network matrix from the decoded records kept here (no decoding).
//!
//! Delivery: every write changes at least one key, so a watch of every key reports every
//! revision. The watch is read on its own task as events come (`WatchPump`), so it keeps up with
//! the store's bounded history while a round holds the state for seconds; the stores' watches
//! (`EventHub` cursors) deliver all events of one revision in one read, so its batches always end
//! at the end of a revision.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use super::sorted::{Changes, merge_sorted};
use super::watch_pump::{Pumped, WatchPump};
use super::{ClusterState, ClusterStore, VersionedService, decode, keys};
use crate::error::{Error, Result};
use crate::model::{NetworkMatrix, NetworkMeasurement, NodeLinks, ServiceSpec};
use crate::store::{EventKind, KeyValue, Revision, Store, WatchEvent};

/// How long [`WatchedState::at_least`] waits by default for the watch before reading everything.
pub const DEFAULT_WAIT_LIMIT: Duration = Duration::from_secs(2);
/// Longest accepted [`WatchedState::with_wait_limit`].
pub const MAX_WAIT_LIMIT: Duration = Duration::from_secs(60);
/// Most events applied as one batch, unless a revision goes on past it (a longer backlog is
/// applied in several).
const MAX_APPLY: usize = 65_536;
/// Most attempts to read the state and open a watch after it before giving up (each fails only
/// when compaction overtakes the fresh read).
const MAX_RELOAD_ATTEMPTS: usize = 8;

/// The cluster state kept current from a watch (see the module docs). Its reads must run on a
/// tokio runtime: the watch is read on a task of its own.
pub struct WatchedState<S> {
    store: ClusterStore<S>,
    state: ClusterState,
    /// Every spec-version key, by service name (kept when the service is deleted).
    versions: HashMap<String, u64>,
    /// The per-link measurement records, by key.
    per_link: BTreeMap<String, NetworkMeasurement>,
    /// The per-node measurement records, by key.
    rows: BTreeMap<String, NodeLinks>,
    /// The watch of every key from `state.revision + 1`, read on its own task so that it keeps
    /// up with the store's bounded history between reads; `None`: read everything next time.
    watch: Option<WatchPump>,
    wait_limit: Duration,
    reloads: u64,
    applied: u64,
}

impl<S> std::fmt::Debug for WatchedState<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WatchedState")
            .field("revision", &self.state.revision)
            .field("watching", &self.watch.is_some())
            .field("reloads", &self.reloads)
            .field("applied", &self.applied)
            .finish()
    }
}

impl<S: Store> WatchedState<S> {
    /// A state over `store`, read in full by the first [`WatchedState::at_least`] or
    /// [`WatchedState::current`].
    pub fn new(store: ClusterStore<S>) -> Self {
        WatchedState {
            store,
            state: ClusterState::default(),
            versions: HashMap::new(),
            per_link: BTreeMap::new(),
            rows: BTreeMap::new(),
            watch: None,
            wait_limit: DEFAULT_WAIT_LIMIT,
            reloads: 0,
            applied: 0,
        }
    }

    /// This state, waiting at most `limit` for the watch before reading everything again.
    /// [`Error::Invalid`] (naming `wait_limit`) beyond [`MAX_WAIT_LIMIT`].
    pub fn with_wait_limit(mut self, limit: Duration) -> Result<Self> {
        if limit > MAX_WAIT_LIMIT {
            let mut errors = crate::error::ValidationErrors::default();
            errors.push(
                "wait_limit",
                format!("{limit:?}"),
                format!("at most {MAX_WAIT_LIMIT:?}"),
            );
            return Err(errors.into());
        }
        self.wait_limit = limit;
        Ok(self)
    }

    /// How long [`WatchedState::at_least`] waits for the watch.
    pub fn wait_limit(&self) -> Duration {
        self.wait_limit
    }

    /// How many times the whole state was read (the first load included).
    pub fn reloads(&self) -> u64 {
        self.reloads
    }

    /// How many watch events were applied since creation.
    pub fn applied_events(&self) -> u64 {
        self.applied
    }

    /// The state as last brought up to date (possibly behind the store; empty before the first
    /// load).
    pub fn state(&self) -> &ClusterState {
        &self.state
    }

    /// Drops the state and the watch (the next call reads everything): what a node that stops
    /// leading does to give the memory back.
    pub fn forget(&mut self) {
        self.state = ClusterState::default();
        self.versions = HashMap::new();
        self.per_link = BTreeMap::new();
        self.rows = BTreeMap::new();
        self.watch = None;
    }

    /// The state at the store's current revision or later (see [`WatchedState::at_least`]).
    pub async fn current(&mut self) -> Result<&mut ClusterState> {
        let target = self.store.inner().revision().await?;
        if self.state.revision > target {
            // The store went back: restored from an older snapshot. Its watch ends, but the task
            // reading it may not have seen that yet.
            self.watch = None;
        }
        self.at_least(target).await
    }

    /// The state at revision `target` or later: applies what the watch has delivered, waits up
    /// to the wait limit for the rest, and reads everything again if the watch cannot deliver
    /// it. Callers may change the state they get only to record their own successful writes
    /// (the watch later delivers the same values); anything else would last until the next
    /// reload.
    ///
    /// Errors: the store's, [`Error::Corrupt`] for a value `load_state` could not decode either
    /// (everything is read again on the next call), and [`Error::Unavailable`] when `target` is
    /// beyond the store's revision even after a full read.
    pub async fn at_least(&mut self, target: Revision) -> Result<&mut ClusterState> {
        let deadline = tokio::time::Instant::now() + self.wait_limit;
        let mut reads = 0;
        loop {
            if self.watch.is_none() {
                reads += 1;
                if reads > MAX_RELOAD_ATTEMPTS {
                    return Err(Error::Unavailable(format!(
                        "the watch kept failing right after {MAX_RELOAD_ATTEMPTS} full reads"
                    )));
                }
                self.reload().await?;
                if self.state.revision < target {
                    return Err(Error::Unavailable(format!(
                        "asked for revision {target}, but the store is at {}",
                        self.state.revision
                    )));
                }
            }
            // Decoding a large batch of changes takes long: keep the runtime's other tasks moving.
            crate::blocking::cpu_bound(|| self.apply_ready(Vec::new()))?;
            // A watch that ended (compaction, restore) says nothing about the state it left:
            // it may even be ahead of a store restored to an older snapshot. Read everything.
            let Some(watch) = self.watch.as_mut() else {
                continue;
            };
            if self.state.revision >= target {
                return Ok(&mut self.state);
            }
            match tokio::time::timeout_at(deadline, watch.next()).await {
                Ok(Pumped::Batch(batch)) => {
                    crate::blocking::cpu_bound(|| self.apply_ready(batch))?;
                }
                // Compacted (or restored), the store is gone, or too much queued: read everything.
                Ok(Pumped::Ended | Pumped::Empty) | Err(_) => self.watch = None,
            }
        }
    }

    /// Applies every batch the watch has queued, without waiting, joined into batches of up to
    /// [`MAX_APPLY`] events: a batch that creates or deletes tasks moves the whole sorted list
    /// once, so applying the queue's small batches one by one would cost O(all tasks) each.
    /// `first`: a batch already taken from the queue, applied with them.
    fn apply_ready(&mut self, mut first: Vec<WatchEvent>) -> Result<()> {
        loop {
            let Some(watch) = self.watch.as_mut() else {
                return self.apply_batch(first);
            };
            let mut joined = std::mem::take(&mut first);
            let mut more = true;
            while joined.len() < MAX_APPLY {
                match watch.try_next() {
                    Pumped::Batch(batch) if joined.is_empty() => joined = batch,
                    Pumped::Batch(batch) => joined.extend(batch),
                    Pumped::Empty => {
                        more = false;
                        break;
                    }
                    Pumped::Ended => {
                        self.watch = None;
                        more = false;
                        break;
                    }
                }
            }
            self.apply_batch(joined)?;
            if !more {
                return Ok(());
            }
        }
    }

    /// Reads everything with `load_state` and watches every key from the revision after it.
    async fn reload(&mut self) -> Result<()> {
        self.forget();
        let mut last = None;
        for _ in 0..MAX_RELOAD_ATTEMPTS {
            self.reloads += 1;
            let range = self.store.inner().range(keys::ROOT).await?;
            match self.store.inner().watch("", range.revision + 1).await {
                Ok(watch) => {
                    self.index_sources(&range.kvs)?;
                    self.state = crate::blocking::cpu_bound(|| super::state_from(range))?;
                    self.watch = Some(WatchPump::start(watch));
                    return Ok(());
                }
                Err(e @ Error::Compacted { .. }) => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| Error::Unavailable("no watch after a full read".into())))
    }

    /// Remembers the decoded sources the state joins: spec versions and measurement records.
    fn index_sources(&mut self, kvs: &[KeyValue]) -> Result<()> {
        for kv in kvs {
            if let Some(name) = kv.key.strip_prefix(keys::SERVICE_VERSIONS) {
                self.versions.insert(name.to_owned(), decode(kv)?);
            } else if kv.key.starts_with(keys::NETWORK) {
                self.per_link.insert(kv.key.clone(), decode(kv)?);
            } else if kv.key.starts_with(keys::LINKS) {
                self.rows.insert(kv.key.clone(), decode(kv)?);
            }
        }
        Ok(())
    }

    /// Applies one batch of events (in revision order). On an undecodable value the state is
    /// dropped, so the next call reads everything (and reports the same error if it persists).
    fn apply_batch(&mut self, events: Vec<WatchEvent>) -> Result<()> {
        if events.is_empty() {
            return Ok(());
        }
        let result = self.try_apply_batch(events);
        if result.is_err() {
            self.forget();
        }
        result
    }

    fn try_apply_batch(&mut self, events: Vec<WatchEvent>) -> Result<()> {
        let mut tasks: Changes<_> = BTreeMap::new();
        let mut nodes: Changes<_> = BTreeMap::new();
        let mut services: Changes<(ServiceSpec, Revision)> = BTreeMap::new();
        let mut versions_touched = BTreeSet::new();
        // Task, slot and rollout keys -> their revision, or `None` once deleted.
        let mut revisions = BTreeMap::new();
        let mut network = NetworkChange::None;
        self.applied += events.len() as u64;
        for event in events {
            let revision = event.revision();
            self.state.revision = self.state.revision.max(revision);
            let kv = event.kv;
            let put = event.kind == EventKind::Put;
            if let Some(id) = kv.key.strip_prefix(keys::TASKS) {
                let id = id.to_owned();
                tasks.insert(id, if put { Some(decode(&kv)?) } else { None });
                revisions.insert(kv.key, put.then_some(revision));
            } else if kv.key.starts_with(keys::SLOTS) {
                revisions.insert(kv.key, put.then_some(revision));
            } else if let Some(name) = kv.key.strip_prefix(keys::ROLLOUTS) {
                if put {
                    self.state.rollouts.insert(name.to_owned(), decode(&kv)?);
                } else {
                    self.state.rollouts.remove(name);
                }
                revisions.insert(kv.key, put.then_some(revision));
            } else if let Some(id) = kv.key.strip_prefix(keys::NODES) {
                nodes.insert(id.to_owned(), if put { Some(decode(&kv)?) } else { None });
            } else if let Some(name) = kv.key.strip_prefix(keys::SERVICES) {
                let value = if put {
                    Some((decode(&kv)?, revision))
                } else {
                    None
                };
                services.insert(name.to_owned(), value);
            } else if let Some(name) = kv.key.strip_prefix(keys::SERVICE_VERSIONS) {
                if put {
                    self.versions.insert(name.to_owned(), decode(&kv)?);
                } else {
                    self.versions.remove(name);
                }
                versions_touched.insert(name.to_owned());
            } else if kv.key.starts_with(keys::NETWORK) {
                if put {
                    let m = decode(&kv)?;
                    self.per_link.insert(kv.key, m);
                } else {
                    self.per_link.remove(&kv.key);
                }
                network = NetworkChange::Rebuild;
            } else if kv.key.starts_with(keys::LINKS) {
                network = network.max(self.apply_row(kv, put)?);
            }
        }
        merge_sorted(&mut self.state.tasks, tasks, |t| &t.id);
        self.state.revisions.apply(revisions);
        merge_sorted(&mut self.state.nodes, nodes, |n| &n.id);
        let versions = &self.versions;
        let services = services
            .into_iter()
            .map(|(name, change)| {
                let value = change.map(|(spec, mod_revision)| VersionedService {
                    spec_version: versions.get(&name).copied().unwrap_or(0),
                    spec,
                    mod_revision,
                });
                (name, value)
            })
            .collect();
        merge_sorted(&mut self.state.services, services, |s| &s.spec.name);
        for name in versions_touched {
            let found = (self.state.services).binary_search_by(|s| s.spec.name.as_str().cmp(&name));
            if let Ok(i) = found {
                self.state.services[i].spec_version = versions.get(&name).copied().unwrap_or(0);
            }
        }
        if network == NetworkChange::Rebuild {
            self.rebuild_network();
        }
        Ok(())
    }

    /// Applies a per-node measurement record: its links go straight into the matrix when the
    /// record only adds or replaces links of its own node; anything else asks for a rebuild.
    fn apply_row(&mut self, kv: KeyValue, put: bool) -> Result<NetworkChange> {
        if !put {
            self.rows.remove(&kv.key);
            return Ok(NetworkChange::Rebuild);
        }
        let row: NodeLinks = decode(&kv)?;
        let own = |r: &NodeLinks| r.links.iter().all(|m| m.from == r.from);
        let keeps_old = match self.rows.get(&kv.key) {
            None => true,
            Some(old) => {
                own(old)
                    && old.from == row.from
                    && old
                        .links
                        .iter()
                        .all(|o| row.links.iter().any(|m| m.to == o.to))
            }
        };
        let change = if keeps_old && own(&row) && kv.key == keys::links(&row.from) {
            for m in &row.links {
                self.state.network.insert(m.clone());
            }
            NetworkChange::None
        } else {
            NetworkChange::Rebuild
        };
        self.rows.insert(kv.key, row);
        Ok(change)
    }

    /// The matrix from the kept records, as `load_state` joins them (per-node records win).
    fn rebuild_network(&mut self) {
        let mut matrix = NetworkMatrix::new();
        for m in self.per_link.values() {
            matrix.insert(m.clone());
        }
        for row in self.rows.values() {
            for m in &row.links {
                matrix.insert(m.clone());
            }
        }
        self.state.network = matrix;
    }
}

/// What a batch did to the network matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum NetworkChange {
    /// Nothing, or changes already applied to the matrix.
    None,
    /// The matrix must be rebuilt from the kept records.
    Rebuild,
}

impl<S: Store> ClusterStore<S> {
    /// A [`WatchedState`] over this store (its first use reads everything).
    pub fn watched_state(&self) -> WatchedState<S>
    where
        S: Clone,
    {
        WatchedState::new(self.clone())
    }
}
