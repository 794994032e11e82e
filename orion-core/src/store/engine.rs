//! The transaction semantics every local store shares: evaluating compares and turning a branch of
//! ops into the per-key changes of one revision. Stores only provide reads ([`ReadKv`]) and apply
//! the resulting [`WatchEvent`]s, so `MemoryStore` and `SledStore` cannot disagree on semantics.

use std::collections::BTreeMap;

use super::{Compare, EventKind, KeyValue, Op, Revision, Txn, WatchEvent};
use crate::error::Result;

/// Read access to the current (committed) key/value state.
pub(crate) trait ReadKv {
    /// The entry at `key`, if any.
    fn get_kv(&self, key: &str) -> Result<Option<KeyValue>>;
    /// Every entry whose key starts with `prefix`, in key order.
    fn scan_prefix(&self, prefix: &str) -> Result<Vec<KeyValue>>;
}

/// What a transaction will do, before it is applied.
#[derive(Debug)]
pub(crate) struct TxnPlan {
    /// True when every compare held.
    pub succeeded: bool,
    /// One event per changed key, in key order, all at the planned revision. Empty when the
    /// chosen branch changes nothing (then the revision must not advance).
    pub events: Vec<WatchEvent>,
}

/// True when `compare` holds against `state`.
pub(crate) fn compare_holds(state: &impl ReadKv, compare: &Compare) -> Result<bool> {
    Ok(match compare {
        Compare::Exists(key) => state.get_kv(key)?.is_some(),
        Compare::Missing(key) => state.get_kv(key)?.is_none(),
        Compare::ModRevision(key, rev) => {
            state.get_kv(key)?.map_or(0, |kv| kv.mod_revision) == *rev
        }
        Compare::Version(key, version) => state.get_kv(key)?.map_or(0, |kv| kv.version) == *version,
        Compare::Value(key, value) => state.get_kv(key)?.is_some_and(|kv| kv.value == *value),
    })
}

/// Evaluates `txn` against `state` as the write of `revision`.
///
/// Ops of the chosen branch apply in order; changes are then coalesced per key, so a key touched
/// several times (say `DeletePrefix("/a/")` then `Put("/a/x")`) yields exactly one event: a `Put`
/// if it exists afterwards, a `Delete` if it existed before and not after. A `Put` always counts
/// as a change (its `version` grows even when the value is the same), as in etcd.
pub(crate) fn plan_txn(state: &impl ReadKv, txn: &Txn, revision: Revision) -> Result<TxnPlan> {
    let mut succeeded = true;
    for compare in &txn.compare {
        if !compare_holds(state, compare)? {
            succeeded = false;
            break;
        }
    }
    let ops = if succeeded {
        &txn.success
    } else {
        &txn.failure
    };

    // key -> (value before the txn, value after the ops so far)
    let mut touched: BTreeMap<String, (Option<KeyValue>, Option<Vec<u8>>)> = BTreeMap::new();
    for op in ops {
        match op {
            Op::Put(key, value) => {
                if let Some(entry) = touched.get_mut(key) {
                    entry.1 = Some(value.clone());
                } else {
                    let before = state.get_kv(key)?;
                    touched.insert(key.clone(), (before, Some(value.clone())));
                }
            }
            Op::Delete(key) => {
                if let Some(entry) = touched.get_mut(key) {
                    entry.1 = None;
                } else if let Some(before) = state.get_kv(key)? {
                    touched.insert(key.clone(), (Some(before), None));
                }
            }
            Op::DeletePrefix(prefix) => {
                for kv in state.scan_prefix(prefix)? {
                    touched
                        .entry(kv.key.clone())
                        .and_modify(|entry| entry.1 = None)
                        .or_insert((Some(kv), None));
                }
                // Keys put earlier in this txn under the prefix are deleted too.
                for (_, entry) in touched
                    .range_mut(prefix.clone()..)
                    .take_while(|(key, _)| key.starts_with(prefix.as_str()))
                {
                    entry.1 = None;
                }
            }
        }
    }

    let mut events = Vec::with_capacity(touched.len());
    for (key, (before, after)) in touched {
        match (before, after) {
            (before, Some(value)) => events.push(WatchEvent {
                kind: EventKind::Put,
                kv: KeyValue {
                    key,
                    value,
                    create_revision: before.as_ref().map_or(revision, |b| b.create_revision),
                    mod_revision: revision,
                    version: before.as_ref().map_or(1, |b| b.version + 1),
                },
                prev: before,
            }),
            (Some(before), None) => events.push(WatchEvent {
                kind: EventKind::Delete,
                kv: KeyValue {
                    key,
                    value: Vec::new(),
                    create_revision: 0,
                    mod_revision: revision,
                    version: 0,
                },
                prev: Some(before),
            }),
            (None, None) => {}
        }
    }
    Ok(TxnPlan { succeeded, events })
}
