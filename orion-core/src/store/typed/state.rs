//! Decoding a range of the whole typed layer into a [`ClusterState`] (`load_state`, and the
//! full reads of `WatchedState`).

use std::collections::HashMap;

use super::{ClusterState, VersionedService, decode, keys, links};
use crate::error::Result;
use crate::store::{KeyValue, RangeResult};

/// The [`ClusterState`] in `range`, a range of [`keys::ROOT`] (what `load_state` decodes).
/// Consumes the range, freeing each value once decoded: at a million tasks the range is most of
/// a gigabyte, and memory freed while decoding is reused by the decoded state instead of
/// staying with the allocator beside it.
pub(super) fn state_from(range: RangeResult) -> Result<ClusterState> {
    let mut rows = Vec::new();
    // Exact capacities: a leader keeps this state (`WatchedState`), so no slack.
    let count = |prefix: &str| {
        range
            .kvs
            .iter()
            .filter(|kv| kv.key.starts_with(prefix))
            .count()
    };
    let tasks = count(keys::TASKS);
    let mut state = ClusterState {
        revision: range.revision,
        services: services_from(&range.kvs)?,
        tasks: Vec::with_capacity(tasks),
        nodes: Vec::with_capacity(count(keys::NODES)),
        // Collected from keys in order: the sorted lists need no sorting.
        revisions: (range.kvs.iter())
            .map(|kv| (kv.key.as_str(), kv.mod_revision))
            .collect(),
        ..ClusterState::default()
    };
    for kv in range.kvs {
        let kv = &kv;
        if kv.key.starts_with(keys::TASKS) {
            state.tasks.push(decode(kv)?);
        } else if let Some(name) = kv.key.strip_prefix(keys::ROLLOUTS) {
            state.rollouts.insert(name.to_owned(), decode(kv)?);
        } else if kv.key.starts_with(keys::NODES) {
            state.nodes.push(decode(kv)?);
        } else if kv.key.starts_with(keys::NETWORK) {
            state.network.insert(decode(kv)?);
        } else if kv.key.starts_with(keys::LINKS) {
            rows.push(kv.clone());
        }
    }
    // Per-node records after the per-link ones: the newer layout wins for a pair in both.
    for kv in &rows {
        links::add_row(&mut state.network, kv)?;
    }
    Ok(state)
}

/// Joins the service specs and spec versions among `kvs` (any order, other keys ignored).
pub(super) fn services_from(kvs: &[KeyValue]) -> Result<Vec<VersionedService>> {
    let mut versions: HashMap<&str, u64> = HashMap::new();
    for kv in kvs {
        if let Some(name) = kv.key.strip_prefix(keys::SERVICE_VERSIONS) {
            versions.insert(name, decode(kv)?);
        }
    }
    let mut services = Vec::new();
    for kv in kvs {
        if let Some(name) = kv.key.strip_prefix(keys::SERVICES) {
            services.push(VersionedService {
                spec: decode(kv)?,
                spec_version: versions.get(name).copied().unwrap_or(0),
                mod_revision: kv.mod_revision,
            });
        }
    }
    Ok(services)
}
