//! The Store conformance suite on `MemoryStore` and `SledStore` (sled in temporary directories).

use std::path::PathBuf;

use orion_core::store::{MemoryStore, SledStore};
use orion_core::testing::store as suite;
use tempfile::TempDir;

/// A `SledStore` that owns its temporary directory, so the directory outlives the store.
struct TempSled {
    // Field order matters: the store closes before its directory is removed.
    store: SledStore,
    _dir: TempDir,
}

fn temp_sled() -> TempSled {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SledStore::open(dir.path().join("db")).expect("open sled store");
    TempSled { store, _dir: dir }
}

/// Forwards the Store trait to the inner SledStore.
mod forward {
    use super::TempSled;
    use orion_core::Result;
    use orion_core::store::*;

    #[async_trait::async_trait]
    impl Store for TempSled {
        async fn get(&self, key: &str) -> Result<Option<KeyValue>> {
            self.store.get(key).await
        }
        async fn range(&self, prefix: &str) -> Result<RangeResult> {
            self.store.range(prefix).await
        }
        async fn txn(&self, txn: Txn) -> Result<TxnResult> {
            self.store.txn(txn).await
        }
        async fn watch(&self, prefix: &str, from: Revision) -> Result<WatchStream> {
            self.store.watch(prefix, from).await
        }
        async fn compact(&self, revision: Revision) -> Result<()> {
            self.store.compact(revision).await
        }
        async fn revision(&self) -> Result<Revision> {
            self.store.revision().await
        }
        async fn snapshot(&self) -> Result<StoreSnapshot> {
            self.store.snapshot().await
        }
        async fn restore(&self, snapshot: StoreSnapshot) -> Result<()> {
            self.store.restore(snapshot).await
        }
    }
}

macro_rules! conformance {
    ($module:ident, $make:expr) => {
        mod $module {
            use super::*;

            #[tokio::test]
            async fn put_get_delete() {
                suite::put_get_delete($make).await;
            }
            #[tokio::test]
            async fn range_by_prefix() {
                suite::range_by_prefix($make).await;
            }
            #[tokio::test]
            async fn txn_compares() {
                suite::txn_compares($make).await;
            }
            #[tokio::test]
            async fn txn_atomicity() {
                suite::txn_atomicity($make).await;
            }
            #[tokio::test]
            async fn cas_conflict() {
                suite::cas_conflict($make).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn concurrent_cas_increments() {
                suite::concurrent_cas_increments($make).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn concurrent_writers_watch() {
                suite::concurrent_writers_watch($make).await;
            }
            #[tokio::test]
            async fn watch_from_next_write() {
                suite::watch_from_next_write($make).await;
            }
            #[tokio::test]
            async fn watch_order_and_resume() {
                suite::watch_order_and_resume($make).await;
            }
            #[tokio::test]
            async fn watch_events_carry_previous_values() {
                suite::watch_events_carry_previous_values($make).await;
            }
            #[tokio::test]
            async fn watch_replays_long_history() {
                suite::watch_replays_long_history($make).await;
            }
            #[tokio::test]
            async fn watch_compacted() {
                suite::watch_compacted($make).await;
            }
            #[tokio::test]
            async fn snapshot_restore() {
                suite::snapshot_restore($make, $make).await;
            }
            #[tokio::test]
            async fn watch_ends_when_store_dropped() {
                suite::watch_ends_when_store_dropped($make).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn run_all() {
                suite::run_all(|| async { $make }).await;
            }
        }
    };
}

conformance!(memory, MemoryStore::new());
conformance!(
    memory_with_history_limit,
    MemoryStore::with_history_limit(10_000)
);
conformance!(
    memory_with_history_bounds,
    MemoryStore::with_history_bounds(10_000, 1_000)
);
conformance!(sled, temp_sled());

#[tokio::test]
async fn sled_reopen_keeps_data_revision_and_history() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path: PathBuf = dir.path().join("db");
    suite::reopen(|| {
        let path = path.clone();
        async move { SledStore::open(&path).expect("reopen sled store") }
    })
    .await;
}
