//! The [`Store`] conformance suite: one async function per property of the trait contract, and
//! [`run_all`] to run them all on stores from a factory. Every implementation runs it: see
//! `orion-core/tests/store_conformance.rs` for `MemoryStore` and `SledStore`.
//!
//! Each property takes freshly made, empty stores and panics (like `assert!`) on a violation,
//! naming the property. Revisions are checked relative to the store's starting revision, so a
//! store whose first write is not revision 1 can run the suite too. Waiting on a watch is bounded
//! by [`WAIT`]; the bound is a guard against hanging, never a timing assertion. Properties that
//! write concurrently spawn tokio tasks: run them on a multi-thread runtime to exercise real
//! parallelism.
//!
//! Durable stores also run [`reopen`], which needs a factory that reopens the same place.
//!
//! ```no_run
//! # async fn demo() {
//! use orion_core::store::MemoryStore;
//! orion_core::testing::store::run_all(|| async { MemoryStore::new() }).await;
//! # }
//! ```

use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;

use crate::store::{
    Compare, EventKind, KeyValue, Op, Revision, Store, Txn, WatchEvent, WatchStream,
};

mod watch;

pub use watch::{
    concurrent_writers_watch, reopen, snapshot_restore, watch_compacted,
    watch_ends_when_store_dropped, watch_events_carry_previous_values, watch_from_next_write,
    watch_order_and_resume, watch_replays_long_history,
};

/// The longest the suite waits for one watch item before failing.
pub const WAIT: Duration = Duration::from_secs(30);

/// Runs every property except [`reopen`], each on fresh stores from `make`.
pub async fn run_all<S, F, Fut>(make: F)
where
    S: Store,
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
{
    put_get_delete(make().await).await;
    range_by_prefix(make().await).await;
    txn_compares(make().await).await;
    txn_atomicity(make().await).await;
    cas_conflict(make().await).await;
    concurrent_cas_increments(make().await).await;
    concurrent_writers_watch(make().await).await;
    watch_from_next_write(make().await).await;
    watch_order_and_resume(make().await).await;
    watch_events_carry_previous_values(make().await).await;
    watch_replays_long_history(make().await).await;
    watch_compacted(make().await).await;
    snapshot_restore(make().await, make().await).await;
    watch_ends_when_store_dropped(make().await).await;
}

/// The next watch item, which must be an event.
pub async fn next_event(stream: &mut WatchStream, what: &str) -> WatchEvent {
    match tokio::time::timeout(WAIT, stream.next()).await {
        Ok(Some(Ok(event))) => event,
        Ok(Some(Err(err))) => panic!("{what}: watch failed: {err}"),
        Ok(None) => panic!("{what}: watch ended early"),
        Err(_) => panic!("{what}: no watch event within {WAIT:?}"),
    }
}

async fn assert_empty<S: Store>(store: &S, what: &str) -> Revision {
    let all = store.range("").await.expect("range");
    assert!(
        all.kvs.is_empty(),
        "{what}: the factory must make an empty store"
    );
    store.revision().await.expect("revision")
}

fn put(key: &str, value: &str) -> Op {
    Op::Put(key.to_owned(), value.as_bytes().to_vec())
}

/// `get`/`put`/`delete` semantics: revisions, versions, create/mod revisions, odd keys.
pub async fn put_get_delete<S: Store>(store: S) {
    let what = "put_get_delete";
    let base = assert_empty(&store, what).await;
    assert_eq!(store.get("a").await.unwrap(), None, "{what}: missing key");

    assert_eq!(
        store.put("a", b"1".to_vec()).await.unwrap(),
        base + 1,
        "{what}"
    );
    let kv = store.get("a").await.unwrap().expect("a after put");
    let expected = KeyValue {
        key: "a".into(),
        value: b"1".to_vec(),
        create_revision: base + 1,
        mod_revision: base + 1,
        version: 1,
    };
    assert_eq!(kv, expected, "{what}: first put");

    assert_eq!(
        store.put("a", b"2".to_vec()).await.unwrap(),
        base + 2,
        "{what}"
    );
    let kv = store.get("a").await.unwrap().expect("a after 2nd put");
    assert_eq!(
        (
            kv.value.as_slice(),
            kv.create_revision,
            kv.mod_revision,
            kv.version
        ),
        (&b"2"[..], base + 1, base + 2, 2),
        "{what}: second put keeps create_revision and bumps version"
    );

    assert_eq!(store.delete("a").await.unwrap(), Some(base + 3), "{what}");
    assert_eq!(store.get("a").await.unwrap(), None, "{what}: deleted");
    assert_eq!(
        store.delete("a").await.unwrap(),
        None,
        "{what}: delete missing"
    );
    assert_eq!(
        store.revision().await.unwrap(),
        base + 3,
        "{what}: no-op delete"
    );

    store.put("a", b"3".to_vec()).await.unwrap();
    let kv = store.get("a").await.unwrap().expect("a recreated");
    assert_eq!(
        (kv.create_revision, kv.version),
        (base + 4, 1),
        "{what}: a recreated key starts over"
    );

    for (key, value) in [
        ("", &b"empty key"[..]),
        ("ключ/✓ é", b""),
        ("x\0y", b"\xff\x00"),
    ] {
        let rev = store.put(key, value.to_vec()).await.unwrap();
        let kv = store.get(key).await.unwrap().expect("odd key");
        assert_eq!(
            (kv.key.as_str(), kv.value.as_slice(), kv.mod_revision),
            (key, value, rev)
        );
    }
    assert_eq!(
        store.revision().await.unwrap(),
        base + 7,
        "{what}: final revision"
    );
}

/// `range(prefix)` returns exactly the keys under the prefix, in key (byte) order.
pub async fn range_by_prefix<S: Store>(store: S) {
    let what = "range_by_prefix";
    assert_empty(&store, what).await;
    for key in ["/b/2", "/a/1", "/b/1", "/b10", "/c", "/b/", "/b/é", "/b/10"] {
        store.put(key, key.as_bytes().to_vec()).await.unwrap();
    }
    let keys = |r: &crate::store::RangeResult| -> Vec<String> {
        r.kvs.iter().map(|kv| kv.key.clone()).collect()
    };
    let b = store.range("/b/").await.unwrap();
    assert_eq!(keys(&b), ["/b/", "/b/1", "/b/10", "/b/2", "/b/é"], "{what}");
    assert_eq!(
        b.revision,
        store.revision().await.unwrap(),
        "{what}: revision"
    );
    for kv in &b.kvs {
        assert_eq!(kv.value, kv.key.as_bytes(), "{what}: values match keys");
    }
    let all = store.range("").await.unwrap();
    let mut sorted = keys(&all);
    sorted.sort();
    assert_eq!(keys(&all), sorted, "{what}: all keys in order");
    assert_eq!(all.kvs.len(), 8, "{what}: all keys");
    assert!(
        store.range("/z").await.unwrap().kvs.is_empty(),
        "{what}: no match"
    );
    assert_eq!(keys(&store.range("/b1").await.unwrap()), ["/b10"], "{what}");
}

/// Every [`Compare`] kind, holding and not holding, picks the right branch.
pub async fn txn_compares<S: Store>(store: S) {
    let what = "txn_compares";
    assert_empty(&store, what).await;
    let rev = store.put("k", b"v".to_vec()).await.unwrap();
    let cases = [
        (Compare::Exists("k".into()), true),
        (Compare::Exists("nope".into()), false),
        (Compare::Missing("nope".into()), true),
        (Compare::Missing("k".into()), false),
        (Compare::ModRevision("k".into(), rev), true),
        (Compare::ModRevision("k".into(), rev + 5), false),
        (Compare::ModRevision("nope".into(), 0), true),
        (Compare::Version("k".into(), 1), true),
        (Compare::Version("k".into(), 2), false),
        (Compare::Version("nope".into(), 0), true),
        (Compare::Value("k".into(), b"v".to_vec()), true),
        (Compare::Value("k".into(), b"w".to_vec()), false),
        (Compare::Value("nope".into(), Vec::new()), false),
    ];
    for (i, (compare, holds)) in cases.into_iter().enumerate() {
        let (yes, no) = (format!("yes/{i}"), format!("no/{i}"));
        let result = store
            .txn(
                Txn::new()
                    .when(compare.clone())
                    .and_then(put(&yes, "1"))
                    .or_else(put(&no, "1")),
            )
            .await
            .unwrap();
        assert_eq!(result.succeeded, holds, "{what}: {compare:?}");
        let written = if holds { &yes } else { &no };
        let other = if holds { &no } else { &yes };
        assert!(
            store.get(written).await.unwrap().is_some(),
            "{what}: {compare:?}"
        );
        assert!(
            store.get(other).await.unwrap().is_none(),
            "{what}: {compare:?}"
        );
        assert_eq!(result.revision, store.revision().await.unwrap(), "{what}");
    }
    // All compares must hold.
    let result = store
        .txn(
            Txn::new()
                .when(Compare::Exists("k".into()))
                .when(Compare::Value("k".into(), b"other".to_vec()))
                .and_then(put("both", "1")),
        )
        .await
        .unwrap();
    assert!(
        !result.succeeded,
        "{what}: one failing compare fails the txn"
    );
    assert!(store.get("both").await.unwrap().is_none(), "{what}");
}

/// A branch applies atomically at one revision; changes coalesce per key; empty branches and
/// no-op deletes do not advance the revision.
pub async fn txn_atomicity<S: Store>(store: S) {
    let what = "txn_atomicity";
    let base = assert_empty(&store, what).await;
    for key in ["/p/1", "/p/2", "/q", "c"] {
        store.put(key, b"old".to_vec()).await.unwrap();
    }
    let mut watch = store.watch("", base + 5).await.unwrap();
    let result = store
        .txn(
            Txn::new()
                .and_then(put("a", "1"))
                .and_then(put("b", "1"))
                .and_then(Op::Delete("c".into()))
                .and_then(Op::DeletePrefix("/p/".into()))
                .and_then(put("/p/2", "new")),
        )
        .await
        .unwrap();
    assert!(result.succeeded, "{what}");
    assert_eq!(
        result.revision,
        base + 5,
        "{what}: one revision for the whole txn"
    );
    let range = store.range("").await.unwrap();
    let state: Vec<(&str, &[u8])> = range
        .kvs
        .iter()
        .map(|kv| (kv.key.as_str(), kv.value.as_slice()))
        .collect();
    assert_eq!(
        state,
        [
            ("/p/2", &b"new"[..]),
            ("/q", b"old"),
            ("a", b"1"),
            ("b", b"1")
        ],
        "{what}: state after the txn"
    );
    let p2 = store.get("/p/2").await.unwrap().unwrap();
    assert_eq!(
        (p2.mod_revision, p2.version),
        (base + 5, 2),
        "{what}: /p/2 updated once"
    );

    let mut seen = Vec::new();
    for _ in 0..5 {
        let event = next_event(&mut watch, what).await;
        assert_eq!(event.revision(), base + 5, "{what}: event revision");
        seen.push((event.kind, event.kv.key));
    }
    seen.sort_by(|x, y| x.1.cmp(&y.1));
    assert_eq!(
        seen,
        [
            (EventKind::Delete, "/p/1".to_owned()),
            (EventKind::Put, "/p/2".to_owned()),
            (EventKind::Put, "a".to_owned()),
            (EventKind::Put, "b".to_owned()),
            (EventKind::Delete, "c".to_owned()),
        ],
        "{what}: one event per changed key"
    );

    let noop = store
        .txn(Txn::new().and_then(Op::Delete("missing".into())))
        .await
        .unwrap();
    assert!(noop.succeeded, "{what}");
    assert_eq!(
        noop.revision,
        base + 5,
        "{what}: a no-op txn keeps the revision"
    );
    let empty = store
        .txn(Txn::new().when(Compare::Missing("a".into())))
        .await
        .unwrap();
    assert!(!empty.succeeded, "{what}");
    assert_eq!(
        empty.revision,
        base + 5,
        "{what}: an empty branch keeps the revision"
    );
    store.put("after", b"x".to_vec()).await.unwrap();
    let event = next_event(&mut watch, what).await;
    assert_eq!(
        (event.kv.key.as_str(), event.revision()),
        ("after", base + 6),
        "{what}: no event for no-op txns"
    );
}

/// Two writers that read the same `mod_revision`: exactly one CAS wins, the loser writes nothing.
pub async fn cas_conflict<S: Store>(store: S) {
    let what = "cas_conflict";
    assert_empty(&store, what).await;
    store.put("k", b"0".to_vec()).await.unwrap();
    let seen = store.get("k").await.unwrap().unwrap();
    let cas = |value: &str| {
        Txn::new()
            .when(Compare::ModRevision("k".into(), seen.mod_revision))
            .and_then(put("k", value))
    };
    let first = store.txn(cas("first")).await.unwrap();
    assert!(first.succeeded, "{what}: first CAS");
    let second = store.txn(cas("second")).await.unwrap();
    assert!(!second.succeeded, "{what}: stale CAS must fail");
    assert_eq!(
        second.revision, first.revision,
        "{what}: loser writes nothing"
    );
    let kv = store.get("k").await.unwrap().unwrap();
    assert_eq!(kv.value, b"first", "{what}");
    let by_version = Txn::new()
        .when(Compare::Version("k".into(), seen.version))
        .and_then(put("k", "third"));
    assert!(
        !store.txn(by_version).await.unwrap().succeeded,
        "{what}: stale version"
    );
}

/// 8 tasks × 50 CAS increments of one counter: exact final count, unique consecutive revisions.
pub async fn concurrent_cas_increments<S: Store>(store: S) {
    const WRITERS: u64 = 8;
    const INCREMENTS: u64 = 50;
    const MAX_ATTEMPTS: u64 = 100_000;
    let what = "concurrent_cas_increments";
    assert_empty(&store, what).await;
    let start = store.put("counter", b"0".to_vec()).await.unwrap();
    let store = Arc::new(store);
    let mut handles = Vec::new();
    for _ in 0..WRITERS {
        let store = Arc::clone(&store);
        handles.push(tokio::spawn(async move {
            let mut revisions = Vec::new();
            let mut attempts = 0;
            while (revisions.len() as u64) < INCREMENTS {
                attempts += 1;
                assert!(attempts <= MAX_ATTEMPTS, "{what}: too many CAS retries");
                let kv = store.get("counter").await.unwrap().unwrap();
                let n: u64 = String::from_utf8_lossy(&kv.value).parse().unwrap();
                let txn = Txn::new()
                    .when(Compare::ModRevision("counter".into(), kv.mod_revision))
                    .and_then(put("counter", &(n + 1).to_string()));
                let result = store.txn(txn).await.unwrap();
                if result.succeeded {
                    revisions.push(result.revision);
                }
            }
            revisions
        }));
    }
    let mut all = HashSet::new();
    for handle in handles {
        for rev in handle.await.expect("writer task") {
            assert!(all.insert(rev), "{what}: revision {rev} given twice");
        }
    }
    let total = WRITERS * INCREMENTS;
    let kv = store.get("counter").await.unwrap().unwrap();
    assert_eq!(
        kv.value,
        total.to_string().as_bytes(),
        "{what}: lost an increment"
    );
    assert_eq!(kv.version, total + 1, "{what}: version counts every write");
    let expected: HashSet<Revision> = (start + 1..=start + total).collect();
    assert_eq!(
        all, expected,
        "{what}: revisions are exactly the next {total}"
    );
    assert_eq!(store.revision().await.unwrap(), start + total, "{what}");
}
