//! Behaviour specific to the local stores: history limits, compaction points, corrupt sled data.

use std::time::Duration;

use futures::StreamExt;
use orion_core::Error;
use orion_core::store::{MemoryStore, SledStore, Store};

const WAIT: Duration = Duration::from_secs(30);

async fn write_n<S: Store>(store: &S, n: u8) {
    for i in 0..n {
        store.put(&format!("k/{i}"), vec![i]).await.unwrap();
    }
}

fn assert_compacted(result: orion_core::Result<impl Sized>, requested: u64, oldest: u64) {
    match result {
        Err(Error::Compacted {
            requested: r,
            compacted: c,
        }) => assert_eq!((r, c), (requested, oldest)),
        Err(other) => panic!("expected Compacted, got {other}"),
        Ok(_) => panic!("expected Compacted, got a watch"),
    }
}

#[tokio::test]
async fn memory_history_limit_keeps_the_newest_revisions() {
    let store = MemoryStore::with_history_limit(3);
    write_n(&store, 10).await;
    assert_eq!(store.compacted_revision(), 8);
    assert_compacted(store.watch("k/", 7).await, 7, 8);
    let mut watch = store.watch("k/", 8).await.unwrap();
    let first = tokio::time::timeout(WAIT, watch.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!((first.kv.key.as_str(), first.revision()), ("k/7", 8));
}

#[tokio::test]
async fn memory_history_bound_in_events_compacts_whole_revisions() {
    use orion_core::store::{Op, Txn};
    let store = MemoryStore::with_history_bounds(100, 10);
    // Five revisions of four writes each: 20 events, 10 allowed.
    for r in 0..5 {
        let mut txn = Txn::new();
        for i in 0..4 {
            txn.success.push(Op::Put(format!("k/{r}-{i}"), vec![1]));
        }
        store.txn(txn).await.unwrap();
    }
    // Revisions 4 and 5 (8 events) are kept; adding revision 3 would make 12.
    assert_eq!(store.compacted_revision(), 4);
    assert_compacted(store.watch("k/", 3).await, 3, 4);
    let mut watch = store.watch("k/", 4).await.unwrap();
    let first = tokio::time::timeout(WAIT, watch.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!((first.kv.key.as_str(), first.revision()), ("k/3-0", 4));
    // One revision larger than the bound is kept whole, on its own.
    let mut big = Txn::new();
    for i in 0..20 {
        big.success.push(Op::Put(format!("k/big-{i}"), vec![2]));
    }
    store.txn(big).await.unwrap();
    assert_eq!(store.compacted_revision(), 6);
    assert!(store.watch("k/", 6).await.is_ok());
}

#[tokio::test]
async fn sled_history_limit_and_compaction_point_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    {
        let store = SledStore::open_with_history_limit(&path, 4).unwrap();
        write_n(&store, 10).await;
        assert_eq!(store.compacted_revision(), 7);
        assert_eq!(store.path(), path.as_path());
    }
    let store = SledStore::open(&path).unwrap();
    assert_eq!(store.compacted_revision(), 7);
    assert_compacted(store.watch("k/", 6).await, 6, 7);
    let mut watch = store.watch("k/", 7).await.unwrap();
    let first = tokio::time::timeout(WAIT, watch.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!((first.kv.key.as_str(), first.revision()), ("k/6", 7));
    assert!(store.size_on_disk().unwrap() > 0);
}

#[tokio::test]
async fn sled_undecodable_entries_are_corrupt_errors_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    {
        let store = SledStore::open(&path).unwrap();
        store.put("good", b"v".to_vec()).await.unwrap();
    }
    {
        // Damage the files behind the store's back: a kv entry too short for its header.
        let db = raw_sled_open(&path);
        db.open_tree("kv")
            .unwrap()
            .insert("bad", &b"short"[..])
            .unwrap();
        db.flush().unwrap();
    }
    let store = SledStore::open(&path).unwrap();
    assert_eq!(store.get("good").await.unwrap().unwrap().value, b"v");
    for err in [
        store.get("bad").await.unwrap_err(),
        store.range("").await.unwrap_err(),
    ] {
        match err {
            Error::Corrupt { key, reason } => {
                assert_eq!(key, "bad");
                assert!(reason.contains("truncated"), "{reason}");
            }
            other => panic!("expected Corrupt, got {other}"),
        }
    }
}

#[tokio::test]
async fn sled_open_on_a_file_path_is_a_backend_error_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, b"plain file").unwrap();
    let err = SledStore::open(&file).unwrap_err();
    assert!(matches!(err, Error::Backend { .. }), "{err}");
    assert!(err.to_string().contains("not-a-dir"), "{err}");
}

/// Opens the db under a `SledStore` directly. The store dropped just before can hold sled's file
/// lock for a moment (its background jobs end on their own; `SledStore::open` retries for the
/// same reason), so a lock conflict is retried for up to 2 s, as there.
fn raw_sled_open(path: &std::path::Path) -> sled::Db {
    for _ in 0..40 {
        match sled::open(path) {
            Err(sled::Error::Io(e)) if e.to_string().contains("acquire lock") => {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            other => return other.unwrap(),
        }
    }
    panic!("sled's lock on {} was not released in 2 s", path.display());
}

#[tokio::test]
async fn sled_refuses_a_directory_left_by_an_interrupted_restore() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    drop(SledStore::open(&path).unwrap());
    {
        // What a crash in the middle of `restore` leaves behind: the marker.
        let db = raw_sled_open(&path);
        db.open_tree("meta")
            .unwrap()
            .insert("restoring", &[1u8][..])
            .unwrap();
        db.flush().unwrap();
    }
    let err = SledStore::open(&path).unwrap_err();
    assert!(matches!(err, Error::Corrupt { .. }), "{err}");
    assert!(err.to_string().contains("restore was interrupted"), "{err}");
}

#[test]
fn sled_store_works_outside_a_tokio_runtime() {
    let dir = tempfile::tempdir().unwrap();
    let store = SledStore::open(dir.path()).unwrap();
    let rev = futures::executor::block_on(store.put("k", b"v".to_vec())).unwrap();
    let kv = futures::executor::block_on(store.get("k"))
        .unwrap()
        .unwrap();
    assert_eq!((kv.value.as_slice(), kv.mod_revision), (&b"v"[..], rev));
}
