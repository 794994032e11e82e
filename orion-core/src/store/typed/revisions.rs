//! [`KeyRevisions`]: the `mod_revision` of every task, replica-slot and rollout key of a
//! [`ClusterState`](super::ClusterState).

use std::collections::BTreeMap;

use super::keys;
use super::sorted::{Changes, merge_sorted};
use crate::model::CompactString;
use crate::store::Revision;

/// The prefixes whose keys are tracked, in the order of [`KeyRevisions::kinds`].
const TRACKED: [&str; 3] = [keys::TASKS, keys::SLOTS, keys::ROLLOUTS];

/// One key without its prefix, and its revision.
type Slot = (CompactString, Revision);

/// The `mod_revision` of every task key, replica-slot key ([`keys::slot`]) and rollout key
/// ([`keys::rollout`]) at a state's revision: what a controller compares against when it acts on
/// that state. Keys are given and returned whole; other keys are never tracked.
///
/// A leader keeps two entries per task (its task and slot keys), so each kind is one sorted list
/// of the keys without their prefix, kept inline when they fit in 24 bytes (task ids and slot
/// keys usually do): 32 bytes per key, no allocation per key, no tree nodes. Lookups are binary
/// searches; [`KeyRevisions::apply`] patches a batch of changes in one pass, while one
/// [`KeyRevisions::insert`] or [`KeyRevisions::remove`] of a new key moves the keys after it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyRevisions {
    /// Sorted by key without its prefix, one list per prefix of [`TRACKED`].
    kinds: [Vec<Slot>; 3],
}

impl KeyRevisions {
    /// True for the keys a state tracks (task, slot and rollout keys).
    pub fn tracks(key: &str) -> bool {
        split(key).is_some()
    }

    /// The `mod_revision` of `key`, if it is tracked and exists.
    pub fn get(&self, key: &str) -> Option<Revision> {
        let (kind, rest) = split(key)?;
        let list = &self.kinds[kind];
        let i = list.binary_search_by(|(k, _)| k.as_str().cmp(rest)).ok()?;
        Some(list[i].1)
    }

    /// Records `key`'s `mod_revision`; a key that is not tracked is ignored.
    pub fn insert(&mut self, key: &str, revision: Revision) {
        if let Some((kind, rest)) = split(key) {
            let list = &mut self.kinds[kind];
            match list.binary_search_by(|(k, _)| k.as_str().cmp(rest)) {
                Ok(i) => list[i].1 = revision,
                Err(i) => list.insert(i, (CompactString::from(rest), revision)),
            }
        }
    }

    /// Forgets `key`.
    pub fn remove(&mut self, key: &str) {
        if let Some((kind, rest)) = split(key) {
            let list = &mut self.kinds[kind];
            if let Ok(i) = list.binary_search_by(|(k, _)| k.as_str().cmp(rest)) {
                list.remove(i);
            }
        }
    }

    /// Applies a batch of changes (whole key -> its new `mod_revision`, or `None` when deleted)
    /// in one pass per kind; keys that are not tracked are ignored.
    pub fn apply(&mut self, changes: BTreeMap<String, Option<Revision>>) {
        let mut per_kind: [Changes<Slot>; 3] = Default::default();
        for (key, revision) in changes {
            if let Some((kind, rest)) = split(&key) {
                let value = revision.map(|r| (CompactString::from(rest), r));
                per_kind[kind].insert(rest.to_owned(), value);
            }
        }
        for (list, changes) in self.kinds.iter_mut().zip(per_kind) {
            if !changes.is_empty() {
                merge_sorted(list, changes, |(k, _)| k.as_str());
            }
        }
    }

    /// The replica-slot keys, without their prefix ([`keys::SLOTS`]): `<service>/<slot>`, in
    /// order.
    pub fn slots(&self) -> impl Iterator<Item = &str> {
        self.kinds[1].iter().map(|(k, _)| k.as_str())
    }

    /// How many keys are tracked.
    pub fn len(&self) -> usize {
        self.kinds.iter().map(Vec::len).sum()
    }

    /// True when no key is tracked.
    pub fn is_empty(&self) -> bool {
        self.kinds.iter().all(Vec::is_empty)
    }
}

impl<'a> FromIterator<(&'a str, Revision)> for KeyRevisions {
    /// From whole keys (the last of equal keys wins); untracked keys are skipped. Keys in order
    /// (a range read) need no sorting.
    fn from_iter<I: IntoIterator<Item = (&'a str, Revision)>>(iter: I) -> Self {
        let mut kinds: [Vec<Slot>; 3] = Default::default();
        for (key, revision) in iter {
            if let Some((kind, rest)) = split(key) {
                kinds[kind].push((CompactString::from(rest), revision));
            }
        }
        for list in &mut kinds {
            // Stable: equal keys stay in the given order, and the last one's revision is kept.
            list.sort_by(|a, b| a.0.cmp(&b.0));
            list.dedup_by(|later, kept| {
                let same = later.0 == kept.0;
                if same {
                    kept.1 = later.1;
                }
                same
            });
        }
        KeyRevisions { kinds }
    }
}

/// The kind of a tracked key and the key without its prefix.
fn split(key: &str) -> Option<(usize, &str)> {
    TRACKED
        .iter()
        .enumerate()
        .find_map(|(kind, prefix)| key.strip_prefix(prefix).map(|rest| (kind, rest)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_keys_in_and_out_and_untracked_keys_ignored() {
        let mut revisions: KeyRevisions = [
            (keys::task("web-0-a").as_str(), 3),
            (keys::slot("web", 0).as_str(), 4),
            (keys::rollout("web").as_str(), 5),
            (keys::node("n1").as_str(), 6),
        ]
        .into_iter()
        .collect();
        assert_eq!(revisions.len(), 3);
        assert_eq!(revisions.get(&keys::task("web-0-a")), Some(3));
        assert_eq!(revisions.get(&keys::slot("web", 0)), Some(4));
        assert_eq!(revisions.get(&keys::rollout("web")), Some(5));
        assert_eq!(revisions.get(&keys::node("n1")), None);
        assert!(!KeyRevisions::tracks(&keys::node("n1")));
        // The same rest under another prefix is another key.
        assert_eq!(revisions.get(&keys::task("web")), None);
        assert_eq!(revisions.slots().collect::<Vec<_>>(), ["web/0"]);

        revisions.insert(&keys::task("web-0-a"), 9);
        revisions.remove(&keys::slot("web", 0));
        revisions.insert(&keys::node("n1"), 1);
        assert_eq!(revisions.get(&keys::task("web-0-a")), Some(9));
        assert_eq!(revisions.get(&keys::slot("web", 0)), None);
        assert_eq!(revisions.len(), 2);
        revisions.remove(&keys::task("web-0-a"));
        revisions.remove(&keys::rollout("web"));
        assert!(revisions.is_empty());
    }

    #[test]
    fn a_batch_inserts_replaces_and_deletes_like_single_changes() {
        let start = ["web-1-b", "web-3-d", "web-5-f"].map(keys::task);
        let mut batched: KeyRevisions = (start.iter().zip([2, 4, 6]))
            .map(|(key, r)| (key.as_str(), r))
            .collect();
        let mut single = batched.clone();
        let changes = [
            (keys::task("web-0-a"), Some(9)),
            (keys::task("web-3-d"), None),
            (keys::task("web-5-f"), Some(10)),
            (keys::slot("web", 0), Some(9)),
            (keys::node("n1"), Some(9)),
            (keys::task("web-9-z"), None),
        ];
        for (key, revision) in &changes {
            match revision {
                Some(r) => single.insert(key, *r),
                None => single.remove(key),
            }
        }
        batched.apply(changes.into_iter().collect());
        assert_eq!(batched, single);
        assert_eq!(batched.len(), 4);
        assert_eq!(batched.get(&keys::task("web-0-a")), Some(9));
        assert_eq!(batched.get(&keys::task("web-3-d")), None);
        assert_eq!(batched.get(&keys::task("web-5-f")), Some(10));
        assert_eq!(batched.slots().collect::<Vec<_>>(), ["web/0"]);
    }

    #[test]
    fn from_unsorted_keys_the_last_of_equal_keys_wins() {
        let (b, a) = (keys::task("b"), keys::task("a"));
        let revisions: KeyRevisions = [(b.as_str(), 1), (a.as_str(), 2), (b.as_str(), 3)]
            .into_iter()
            .collect();
        assert_eq!(revisions.len(), 2);
        assert_eq!(revisions.get(&b), Some(3));
        assert_eq!(revisions.get(&a), Some(2));
    }
}
