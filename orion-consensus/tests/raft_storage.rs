//! openraft's storage suite on Orion's sled log store and state machine, and restart behaviour
//! of the state machine.

use std::sync::Arc;

use openraft::StorageError;
use openraft::testing::{StoreBuilder, Suite};
use orion_consensus::raft::{NodeId, SledLogStore, StateMachine, TypeConfig};
use orion_core::store::MemoryStore as MemStore;
use tempfile::TempDir;

struct Builder;

impl StoreBuilder<TypeConfig, SledLogStore, StateMachine<MemStore>, TempDir> for Builder {
    async fn build(
        &self,
    ) -> Result<(TempDir, SledLogStore, StateMachine<MemStore>), StorageError<NodeId>> {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::open(dir.path().join("raft")).unwrap();
        let log = SledLogStore::open(&db).unwrap();
        let sm = StateMachine::open(&db, Arc::new(MemStore::new()))
            .await
            .unwrap();
        Ok((dir, log, sm))
    }
}

#[test]
fn the_sled_log_store_passes_the_openraft_storage_suite() {
    Suite::test_all(Builder).unwrap();
}

/// Reopens a sled db whose previous handle was just dropped: sled's background thread may hold
/// the file lock for a moment (bounded wait).
async fn reopen(path: &std::path::Path) -> sled::Db {
    for _ in 0..100 {
        match sled::open(path) {
            Ok(db) => return db,
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
        }
    }
    panic!("{} stayed locked", path.display());
}

fn put_entry(index: u64, key: &str) -> openraft::Entry<TypeConfig> {
    use orion_consensus::raft::Command;
    use orion_core::store::{Op, Txn};
    openraft::Entry {
        log_id: openraft::LogId::new(openraft::CommittedLeaderId::new(1, 1), index),
        payload: openraft::EntryPayload::Normal(Command::Txn(
            Txn::new().and_then(Op::Put(key.into(), key.as_bytes().to_vec())),
        )),
    }
}

#[tokio::test]
async fn a_reopened_state_machine_resumes_from_its_snapshot_without_double_applying() {
    use openraft::storage::RaftStateMachine;
    use openraft::{RaftSnapshotBuilder, RaftTypeConfig};
    use orion_core::store::Store;

    let dir = tempfile::tempdir().unwrap();
    let inner = Arc::new(MemStore::new());
    {
        let db = sled::open(dir.path().join("raft")).unwrap();
        let mut sm = StateMachine::open(&db, inner.clone()).await.unwrap();
        let out = sm
            .apply(vec![put_entry(1, "a"), put_entry(2, "b")])
            .await
            .unwrap();
        let revisions: Vec<u64> = out
            .iter()
            .map(|r| r.result.clone().unwrap().revision)
            .collect();
        assert_eq!(revisions, vec![1, 2]);
        let mut builder = sm.get_snapshot_builder().await;
        let snap = builder.build_snapshot().await.unwrap();
        assert_eq!(snap.meta.last_log_id.map(|l| l.index), Some(2));
        sm.apply(vec![put_entry(3, "c")]).await.unwrap();
        assert_eq!(inner.revision().await.unwrap(), 3);
    }
    // The inner store kept entry 3 (as a durable store would), but the state machine restarts
    // from the snapshot at index 2, so replaying entry 3 gives the same revision, not 4.
    let db = reopen(&dir.path().join("raft")).await;
    let mut sm = StateMachine::open(&db, inner.clone()).await.unwrap();
    let (applied, _) = sm.applied_state().await.unwrap();
    assert_eq!(applied.map(|l| l.index), Some(2));
    assert_eq!(inner.revision().await.unwrap(), 2);
    assert!(inner.get("c").await.unwrap().is_none());
    let out = sm.apply(vec![put_entry(3, "c")]).await.unwrap();
    assert_eq!(out[0].result.clone().unwrap().revision, 3);
    let current = sm.get_current_snapshot().await.unwrap().unwrap();
    assert_eq!(current.meta.last_log_id.map(|l| l.index), Some(2));
    let _: Option<<TypeConfig as RaftTypeConfig>::NodeId> = None;
}
