//! Sorted lists patched in batches: the kept state's tasks, nodes and services, and the key
//! revisions.

use std::collections::BTreeMap;

/// The changes of one batch to one sorted list: id -> new value, or `None` for a deletion.
pub(super) type Changes<T> = BTreeMap<String, Option<T>>;

/// Applies `changes` to `items`, sorted by `id` with unique ids: values of existing ids are
/// replaced in place; when some ids are new or deleted, the list is rebuilt in one merge pass.
pub(super) fn merge_sorted<T>(items: &mut Vec<T>, changes: Changes<T>, id: impl Fn(&T) -> &str) {
    let mut deleted = Vec::new();
    let mut inserted = Vec::new();
    for (key, change) in changes {
        match (items.binary_search_by(|t| id(t).cmp(&key)), change) {
            (Ok(i), Some(value)) => items[i] = value,
            (Ok(i), None) => deleted.push(i),
            (Err(_), Some(value)) => inserted.push(value),
            (Err(_), None) => {}
        }
    }
    if deleted.is_empty() && inserted.is_empty() {
        return;
    }
    // `changes` iterates in id order, so `deleted` and `inserted` are sorted.
    let old = std::mem::take(items);
    let mut out = Vec::with_capacity(old.len() + inserted.len() - deleted.len());
    let mut deleted = deleted.into_iter().peekable();
    let mut inserted = inserted.into_iter().peekable();
    for (i, item) in old.into_iter().enumerate() {
        if deleted.next_if_eq(&i).is_some() {
            continue;
        }
        while let Some(new) = inserted.next_if(|n| id(n) < id(&item)) {
            out.push(new);
        }
        out.push(item);
    }
    out.extend(inserted);
    *items = out;
}

#[cfg(test)]
mod tests {
    use super::merge_sorted;
    use std::collections::BTreeMap;

    fn ids(items: &[String]) -> Vec<&str> {
        items.iter().map(String::as_str).collect()
    }

    #[test]
    fn merge_replaces_inserts_and_deletes_keeping_the_order() {
        let mut items: Vec<String> = ["b", "d", "f"].map(String::from).to_vec();
        let changes = BTreeMap::from([
            ("a".to_owned(), Some("a".to_owned())),
            ("d".to_owned(), None),
            ("e".to_owned(), Some("e".to_owned())),
            ("f".to_owned(), Some("f".to_owned())),
            ("g".to_owned(), Some("g".to_owned())),
            ("z".to_owned(), None),
        ]);
        merge_sorted(&mut items, changes, |s| s.as_str());
        assert_eq!(ids(&items), ["a", "b", "e", "f", "g"]);
    }

    #[test]
    fn merge_of_replacements_only_keeps_the_list() {
        let mut items: Vec<String> = ["b", "d"].map(String::from).to_vec();
        merge_sorted(
            &mut items,
            BTreeMap::from([("d".to_owned(), Some("d".to_owned()))]),
            |s| s.as_str(),
        );
        assert_eq!(ids(&items), ["b", "d"]);
    }
}
