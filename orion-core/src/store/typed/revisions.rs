//! [`KeyRevisions`]: the `mod_revision` of every task, replica-slot and rollout key of a
//! [`ClusterState`](super::ClusterState).

use std::collections::BTreeMap;

use super::keys;
use crate::model::CompactString;
use crate::store::Revision;

/// The prefixes whose keys are tracked, in the order of [`KeyRevisions::kinds`].
const TRACKED: [&str; 3] = [keys::TASKS, keys::SLOTS, keys::ROLLOUTS];

/// The `mod_revision` of every task key, replica-slot key ([`keys::slot`]) and rollout key
/// ([`keys::rollout`]) at a state's revision: what a controller compares against when it acts on
/// that state. Keys are given and returned whole; other keys are never tracked.
///
/// A leader keeps two entries per task (its task and slot keys), so each kind has its own B-tree
/// keyed by the key without its prefix, kept inline when it fits in 24 bytes (task ids and slot
/// keys usually do): no allocation per key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyRevisions {
    /// By key without its prefix, one map per prefix of [`TRACKED`].
    kinds: [BTreeMap<CompactString, Revision>; 3],
}

impl KeyRevisions {
    /// True for the keys a state tracks (task, slot and rollout keys).
    pub fn tracks(key: &str) -> bool {
        split(key).is_some()
    }

    /// The `mod_revision` of `key`, if it is tracked and exists.
    pub fn get(&self, key: &str) -> Option<Revision> {
        let (kind, rest) = split(key)?;
        self.kinds[kind].get(rest).copied()
    }

    /// Records `key`'s `mod_revision`; a key that is not tracked is ignored.
    pub fn insert(&mut self, key: &str, revision: Revision) {
        if let Some((kind, rest)) = split(key) {
            self.kinds[kind].insert(CompactString::from(rest), revision);
        }
    }

    /// Forgets `key`.
    pub fn remove(&mut self, key: &str) {
        if let Some((kind, rest)) = split(key) {
            self.kinds[kind].remove(rest);
        }
    }

    /// The replica-slot keys, without their prefix ([`keys::SLOTS`]): `<service>/<slot>`, in
    /// order.
    pub fn slots(&self) -> impl Iterator<Item = &str> {
        self.kinds[1].keys().map(CompactString::as_str)
    }

    /// How many keys are tracked.
    pub fn len(&self) -> usize {
        self.kinds.iter().map(BTreeMap::len).sum()
    }

    /// True when no key is tracked.
    pub fn is_empty(&self) -> bool {
        self.kinds.iter().all(BTreeMap::is_empty)
    }
}

impl<'a> FromIterator<(&'a str, Revision)> for KeyRevisions {
    /// From whole keys (the last of equal keys wins); untracked keys are skipped. The B-trees
    /// are built in bulk, with full nodes (inserting keys one by one in order leaves them about
    /// half full).
    fn from_iter<I: IntoIterator<Item = (&'a str, Revision)>>(iter: I) -> Self {
        let mut kinds: [Vec<(CompactString, Revision)>; 3] = Default::default();
        for (key, revision) in iter {
            if let Some((kind, rest)) = split(key) {
                kinds[kind].push((CompactString::from(rest), revision));
            }
        }
        KeyRevisions {
            kinds: kinds.map(BTreeMap::from_iter),
        }
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
}
