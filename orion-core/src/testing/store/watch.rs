//! Watch, snapshot and durability properties of the [`Store`] suite (see the parent module).

use std::future::Future;
use std::sync::Arc;

use futures::StreamExt;

use super::{WAIT, assert_empty, next_event, put};
use crate::error::Error;
use crate::store::{EventKind, Revision, Store, Txn, WatchEvent};

/// Concurrent writers; a live watcher and a lagging one (reading only after all writes) each see
/// every event exactly once, in strictly increasing revision order.
pub async fn concurrent_writers_watch<S: Store>(store: S) {
    const WRITERS: usize = 4;
    const PUTS: usize = 50;
    let what = "concurrent_writers_watch";
    let base = assert_empty(&store, what).await;
    let store = Arc::new(store);
    let live = store.watch("/w/", base + 1).await.unwrap();
    let mut lagging = store.watch("/w/", base + 1).await.unwrap();
    let live = tokio::spawn(async move {
        let mut live = live;
        let mut events = Vec::new();
        for _ in 0..WRITERS * PUTS {
            events.push(next_event(&mut live, "concurrent_writers_watch (live)").await);
        }
        events
    });
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let store = Arc::clone(&store);
        writers.push(tokio::spawn(async move {
            let mut revisions = Vec::new();
            for i in 0..PUTS {
                let key = format!("/w/{w}/{i:03}");
                revisions.push((store.put(&key, vec![w as u8]).await.unwrap(), key));
            }
            revisions
        }));
    }
    let mut written = Vec::new();
    for writer in writers {
        written.extend(writer.await.expect("writer task"));
    }
    written.sort();
    store.put("/w/end", Vec::new()).await.unwrap();

    let check = |events: Vec<WatchEvent>, who: &str| {
        let got: Vec<(Revision, String)> = events
            .into_iter()
            .map(|e| (e.revision(), e.kv.key))
            .collect();
        assert!(
            got.windows(2).all(|p| p[0].0 < p[1].0),
            "{what} ({who}): revisions strictly increase"
        );
        assert_eq!(got, written, "{what} ({who}): every write exactly once");
    };
    check(live.await.expect("live watcher"), "live");
    let mut events = Vec::new();
    for _ in 0..WRITERS * PUTS {
        events.push(next_event(&mut lagging, what).await);
    }
    check(events, "lagging");
    let end = next_event(&mut lagging, what).await;
    assert_eq!(
        end.kv.key, "/w/end",
        "{what}: nothing extra after the writes"
    );
}

/// `watch(prefix, 0)` starts at the next write; older writes are not replayed.
pub async fn watch_from_next_write<S: Store>(store: S) {
    let what = "watch_from_next_write";
    assert_empty(&store, what).await;
    store.put("x/1", b"old".to_vec()).await.unwrap();
    let mut watch = store.watch("x/", 0).await.unwrap();
    store.put("y/1", b"other prefix".to_vec()).await.unwrap();
    let rev = store.put("x/2", b"new".to_vec()).await.unwrap();
    let event = next_event(&mut watch, what).await;
    assert_eq!(
        (event.kind, event.kv.key.as_str(), event.revision()),
        (EventKind::Put, "x/2", rev),
        "{what}"
    );
    assert_eq!(event.kv.value, b"new", "{what}");
}

/// A watch replays from a past revision in order (deletes carry the previous value), follows live
/// writes, filters by prefix, and resumes from where a dropped stream stopped.
pub async fn watch_order_and_resume<S: Store>(store: S) {
    let what = "watch_order_and_resume";
    assert_empty(&store, what).await;
    let mut revs = Vec::new();
    for i in 1..=5 {
        revs.push(store.put(&format!("a/{i}"), vec![i]).await.unwrap());
        store.put(&format!("b/{i}"), vec![i]).await.unwrap();
    }
    let delete_rev = store.delete("a/1").await.unwrap().expect("a/1 existed");

    let mut watch = store.watch("a/", revs[2]).await.unwrap();
    for (i, rev) in [(3u8, revs[2]), (4, revs[3]), (5, revs[4])] {
        let event = next_event(&mut watch, what).await;
        assert_eq!(
            (
                event.kind,
                event.kv.key.clone(),
                event.kv.value.clone(),
                event.revision()
            ),
            (EventKind::Put, format!("a/{i}"), vec![i], rev),
            "{what}: replay"
        );
    }
    let event = next_event(&mut watch, what).await;
    assert_eq!(
        (event.kind, event.kv.key.as_str(), event.revision()),
        (EventKind::Delete, "a/1", delete_rev),
        "{what}: delete event"
    );
    let prev = event.prev.expect("a delete carries the previous value");
    assert_eq!(
        (prev.value, prev.mod_revision),
        (vec![1], revs[0]),
        "{what}"
    );

    store.put("b/live", Vec::new()).await.unwrap();
    let live = store.put("a/live", b"L".to_vec()).await.unwrap();
    let event = next_event(&mut watch, what).await;
    assert_eq!(
        (event.kv.key.as_str(), event.revision()),
        ("a/live", live),
        "{what}"
    );
    drop(watch);

    let missed = store.put("a/missed", Vec::new()).await.unwrap();
    let mut resumed = store.watch("a/", live + 1).await.unwrap();
    let event = next_event(&mut resumed, what).await;
    assert_eq!(
        (event.kv.key.as_str(), event.revision()),
        ("a/missed", missed),
        "{what}"
    );
}

/// Watching from before the compaction point fails with [`Error::Compacted`]; from the point on it
/// works; compacting backwards is a no-op; a lagging stream either catches up in order or ends
/// with [`Error::Compacted`], never skipping silently.
pub async fn watch_compacted<S: Store>(store: S) {
    let what = "watch_compacted";
    assert_empty(&store, what).await;
    let mut revs = Vec::new();
    for i in 0..6u8 {
        revs.push(store.put(&format!("k/{i}"), vec![i]).await.unwrap());
    }
    let mut lagging = store.watch("k/", revs[1]).await.unwrap();
    store.compact(revs[3]).await.unwrap();
    store.compact(revs[0]).await.unwrap(); // backwards: no-op

    match store.watch("k/", revs[2]).await {
        Err(Error::Compacted {
            requested,
            compacted,
        }) => assert_eq!((requested, compacted), (revs[2], revs[3]), "{what}"),
        Err(other) => panic!("{what}: expected Compacted, got {other}"),
        Ok(_) => panic!("{what}: watch from a compacted revision must fail"),
    }
    let mut ok = store.watch("k/", revs[3]).await.unwrap();
    assert_eq!(
        next_event(&mut ok, what).await.revision(),
        revs[3],
        "{what}"
    );

    let mut expected = revs[1];
    loop {
        match tokio::time::timeout(WAIT, lagging.next()).await {
            Ok(Some(Ok(event))) => {
                assert_eq!(event.revision(), expected, "{what}: lagging stream skipped");
                expected += 1;
                if expected > revs[5] {
                    break;
                }
            }
            Ok(Some(Err(Error::Compacted { .. }))) => {
                let after = tokio::time::timeout(WAIT, lagging.next()).await;
                assert!(
                    matches!(after, Ok(None)),
                    "{what}: the error is the last item"
                );
                break;
            }
            Ok(Some(Err(other))) => panic!("{what}: unexpected error {other}"),
            Ok(None) => panic!("{what}: lagging stream ended without an error"),
            Err(_) => panic!("{what}: lagging stream stalled"),
        }
    }

    // Compacting past the end discards all history; new writes are still watchable.
    store.compact(revs[5] + 1000).await.unwrap();
    let next = store.revision().await.unwrap() + 1;
    let mut fresh = store.watch("k/", next).await.unwrap();
    let rev = store.put("k/new", Vec::new()).await.unwrap();
    assert_eq!(next_event(&mut fresh, what).await.revision(), rev, "{what}");
}

/// `snapshot` of one store restored into another gives the same keys (revisions included) and
/// revision; writes continue from there; history is gone and open watches end with
/// [`Error::Compacted`]. The snapshot survives a serde round trip.
pub async fn snapshot_restore<S: Store>(source: S, target: S) {
    let what = "snapshot_restore";
    assert_empty(&source, what).await;
    assert_empty(&target, what).await;
    for i in 0..10u8 {
        source.put(&format!("s/{i}"), vec![i; 3]).await.unwrap();
    }
    source.put("s/3", b"again".to_vec()).await.unwrap();
    source.delete("s/5").await.unwrap();
    target
        .put("stale", b"gone after restore".to_vec())
        .await
        .unwrap();
    let mut open_watch = target.watch("", 0).await.unwrap();

    let snapshot = source.snapshot().await.unwrap();
    let bytes = serde_json::to_vec(&snapshot).expect("snapshot serializes");
    let decoded = serde_json::from_slice(&bytes).expect("snapshot deserializes");
    assert_eq!(snapshot, decoded, "{what}: serde round trip");
    target.restore(decoded).await.unwrap();

    let (want, got) = (
        source.range("").await.unwrap(),
        target.range("").await.unwrap(),
    );
    assert_eq!(got, want, "{what}: same keys, values, revisions");
    assert_eq!(
        target.revision().await.unwrap(),
        snapshot.revision,
        "{what}"
    );
    match tokio::time::timeout(WAIT, open_watch.next()).await {
        Ok(Some(Err(Error::Compacted { .. }))) => {}
        other => panic!("{what}: an open watch must end with Compacted, got {other:?}"),
    }
    assert!(
        matches!(
            target.watch("", snapshot.revision).await,
            Err(Error::Compacted { .. })
        ),
        "{what}: history before the snapshot is gone"
    );
    let mut watch = target.watch("s/", snapshot.revision + 1).await.unwrap();
    let rev = target.put("s/3", b"after".to_vec()).await.unwrap();
    assert_eq!(
        rev,
        snapshot.revision + 1,
        "{what}: writes continue the revision"
    );
    let kv = target.get("s/3").await.unwrap().unwrap();
    assert_eq!(kv.version, 3, "{what}: versions continue");
    assert_eq!(next_event(&mut watch, what).await.revision(), rev, "{what}");
}

/// A durable store reopened after being dropped keeps its keys, revision, compaction point and
/// watch history, and keeps counting revisions. `open` must reopen the same place each time, and
/// the first call must give an empty store.
pub async fn reopen<S, F, Fut>(open: F)
where
    S: Store,
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
{
    let what = "reopen";
    let store = open().await;
    let base = assert_empty(&store, what).await;
    for i in 0..5u8 {
        store.put(&format!("r/{i}"), vec![i]).await.unwrap();
    }
    store.delete("r/0").await.unwrap();
    store
        .txn(
            Txn::new()
                .and_then(put("r/1", "x"))
                .and_then(put("r/9", "y")),
        )
        .await
        .unwrap();
    store.compact(base + 2).await.unwrap();
    let before = store.range("").await.unwrap();
    let revision = store.revision().await.unwrap();
    let mut history = Vec::new();
    let mut watch = store.watch("r/", base + 2).await.unwrap();
    for _ in 0..7 {
        history.push(next_event(&mut watch, what).await);
    }
    drop(watch);
    drop(store);

    let store = open().await;
    assert_eq!(
        store.revision().await.unwrap(),
        revision,
        "{what}: revision"
    );
    assert_eq!(store.range("").await.unwrap(), before, "{what}: keys");
    assert!(
        matches!(
            store.watch("r/", base + 1).await,
            Err(Error::Compacted { .. })
        ),
        "{what}: the compaction point survives"
    );
    let mut watch = store.watch("r/", base + 2).await.unwrap();
    for (i, expected) in history.iter().enumerate() {
        let event = next_event(&mut watch, what).await;
        assert_eq!(&event, expected, "{what}: history event {i}");
    }
    let rev = store.put("r/after", Vec::new()).await.unwrap();
    assert_eq!(rev, revision + 1, "{what}: revisions keep growing");
    assert_eq!(next_event(&mut watch, what).await.revision(), rev, "{what}");
}

/// Open watch streams end (after delivering what was written) once the store is dropped.
pub async fn watch_ends_when_store_dropped<S: Store>(store: S) {
    let what = "watch_ends_when_store_dropped";
    assert_empty(&store, what).await;
    let mut watch = store.watch("", 0).await.unwrap();
    let rev = store.put("last", Vec::new()).await.unwrap();
    drop(store);
    let mut items = 0;
    loop {
        match tokio::time::timeout(WAIT, watch.next()).await {
            Ok(None) => break,
            Ok(Some(Ok(event))) => {
                assert_eq!(event.revision(), rev, "{what}: only the last write");
                items += 1;
                assert!(items <= 1, "{what}: one event expected");
            }
            Ok(Some(Err(err))) => panic!("{what}: unexpected error {err}"),
            Err(_) => panic!("{what}: the stream did not end after the store was dropped"),
        }
    }
}

/// A replay longer than any internal batch: 600 revisions, every other one under the watched
/// prefix, all delivered in order.
pub async fn watch_replays_long_history<S: Store>(store: S) {
    let what = "watch_replays_long_history";
    let base = assert_empty(&store, what).await;
    for i in 0..600u32 {
        let prefix = if i % 2 == 0 { "even" } else { "odd" };
        store
            .put(&format!("{prefix}/{i:04}"), Vec::new())
            .await
            .unwrap();
    }
    let mut watch = store.watch("even/", base + 1).await.unwrap();
    for i in (0..600u64).step_by(2) {
        let event = next_event(&mut watch, what).await;
        assert_eq!(
            (event.revision(), event.kv.key),
            (base + 1 + i, format!("even/{i:04}")),
            "{what}"
        );
    }
}

/// Every event carries the value the key had before it (`prev`), also when one transaction
/// touches several keys, replaces a key it deleted by prefix, or deletes a key twice over.
pub async fn watch_events_carry_previous_values<S: Store>(store: S) {
    let what = "watch_events_carry_previous_values";
    let base = assert_empty(&store, what).await;
    let first = store.put("p/a", b"a1".to_vec()).await.unwrap();
    let b = store.put("p/b", b"b1".to_vec()).await.unwrap();
    let c = store.put("p/c", b"c1".to_vec()).await.unwrap();
    let txn = store
        .txn(
            Txn::new()
                .and_then(put("p/a", "a2"))
                .and_then(crate::store::Op::DeletePrefix("p/b".into()))
                .and_then(put("p/b", "b2"))
                .and_then(crate::store::Op::Delete("p/c".into()))
                .and_then(crate::store::Op::DeletePrefix("p/c".into()))
                .and_then(put("p/new", "n1")),
        )
        .await
        .unwrap();
    let mut watch = store.watch("p/", base + 1).await.unwrap();
    for _ in 0..3 {
        let event = next_event(&mut watch, what).await;
        assert_eq!(event.prev, None, "{what}: a created key has no prev");
    }
    let mut got = Vec::new();
    for _ in 0..4 {
        let event = next_event(&mut watch, what).await;
        assert_eq!(event.revision(), txn.revision, "{what}: one revision");
        let prev = event.prev.map(|p| (p.value, p.mod_revision));
        got.push((event.kind, event.kv.key, event.kv.value, prev));
    }
    let want = vec![
        (
            EventKind::Put,
            "p/a".to_owned(),
            b"a2".to_vec(),
            Some((b"a1".to_vec(), first)),
        ),
        (
            EventKind::Put,
            "p/b".to_owned(),
            b"b2".to_vec(),
            Some((b"b1".to_vec(), b)),
        ),
        (
            EventKind::Delete,
            "p/c".to_owned(),
            Vec::new(),
            Some((b"c1".to_vec(), c)),
        ),
        (EventKind::Put, "p/new".to_owned(), b"n1".to_vec(), None),
    ];
    assert_eq!(got, want, "{what}");
    let rev = store.put("p/a", b"a3".to_vec()).await.unwrap();
    let event = next_event(&mut watch, what).await;
    assert_eq!(
        (
            event.revision(),
            event.prev.map(|p| (p.value, p.mod_revision))
        ),
        (rev, Some((b"a2".to_vec(), txn.revision))),
        "{what}: the transaction's value is the next prev"
    );
}
