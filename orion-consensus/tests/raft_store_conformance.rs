//! `RaftStore` runs the same `Store` conformance suite as `MemoryStore` and `SledStore`
//! (single-node clusters, one per property), and keeps its revisions across restarts with a
//! durable inner store.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use orion_consensus::raft::{RaftConfig, RaftNode, RaftStore};
use orion_core::store::{MemoryStore, SledStore, Store};
use tempfile::TempDir;

/// A fresh single-node cluster; the node handle is dropped, so the returned store is the last
/// handle and dropping it stops the node (as the suite's watch properties expect).
async fn single_node_store(dirs: Arc<Mutex<Vec<TempDir>>>) -> RaftStore<MemoryStore> {
    let dir = tempfile::tempdir().unwrap();
    let config = RaftConfig::new(1, "conformance", dir.path(), "127.0.0.1:0".parse().unwrap());
    let node = RaftNode::start(config, MemoryStore::new()).await.unwrap();
    node.bootstrap().await.unwrap();
    node.wait_for_leader(Duration::from_secs(10)).await.unwrap();
    dirs.lock().unwrap().push(dir);
    node.store()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_node_raft_store_passes_the_store_conformance_suite() {
    let dirs = Arc::new(Mutex::new(Vec::new()));
    orion_core::testing::store::run_all(move || single_node_store(dirs.clone())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_node_over_a_durable_sled_store_keeps_its_revisions() {
    let dir = tempfile::tempdir().unwrap();
    let start = |snapshot_every: u64| {
        let dir = dir.path().to_owned();
        async move {
            let mut config = RaftConfig::new(
                1,
                "durable",
                dir.join("raft-node"),
                "127.0.0.1:0".parse().unwrap(),
            );
            config.snapshot_every = snapshot_every;
            let inner = open_sled(&dir.join("inner")).await;
            let node = RaftNode::start(config, inner).await.unwrap();
            node.bootstrap().await.unwrap();
            node.wait_for_leader(Duration::from_secs(10)).await.unwrap();
            node
        }
    };
    // Enough writes for a snapshot in the middle, so the restart replays only the log after it.
    let node = start(5).await;
    let store = node.store();
    for i in 1..=12u64 {
        assert_eq!(
            store.put(&format!("k{i:02}"), vec![i as u8]).await.unwrap(),
            i
        );
    }
    drop(store);
    node.shutdown().await.unwrap();

    let node = start(5).await;
    let store = node.store();
    assert_eq!(
        store.revision().await.unwrap(),
        12,
        "no entry applied twice"
    );
    let all = store.range("k").await.unwrap();
    assert_eq!(all.kvs.len(), 12);
    assert!(
        all.kvs.iter().all(|kv| kv.version == 1),
        "every key written once"
    );
    assert_eq!(store.put("k13", vec![13]).await.unwrap(), 13);
    node.shutdown().await.unwrap();
}

/// Opens the inner SledStore; its previous instance may take a moment to release the file lock
/// after its node stopped (bounded wait).
async fn open_sled(path: &std::path::Path) -> SledStore {
    for _ in 0..100 {
        match SledStore::open(path) {
            Ok(store) => return store,
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    panic!("{} stayed locked", path.display());
}
