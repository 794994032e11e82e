//! openraft's storage suite on Orion's file log store and state machine, restart behaviour of
//! the state machine, and the log's recovery from a torn last write.

use std::sync::Arc;

use openraft::StorageError;
use openraft::testing::{StoreBuilder, Suite};
use orion_consensus::raft::{FileLogStore, NodeId, StateMachine, TypeConfig};
use orion_core::store::MemoryStore as MemStore;
use tempfile::TempDir;

struct Builder;

impl StoreBuilder<TypeConfig, FileLogStore, StateMachine<MemStore>, TempDir> for Builder {
    async fn build(
        &self,
    ) -> Result<(TempDir, FileLogStore, StateMachine<MemStore>), StorageError<NodeId>> {
        let dir = tempfile::tempdir().unwrap();
        let raft = dir.path().join("raft");
        let log = FileLogStore::open(&raft.join("log")).unwrap();
        let sm = StateMachine::open(&raft, Arc::new(MemStore::new()))
            .await
            .unwrap();
        Ok((dir, log, sm))
    }
}

#[test]
fn the_file_log_store_passes_the_openraft_storage_suite() {
    Suite::test_all(Builder).unwrap();
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
        let mut sm = StateMachine::open(&dir.path().join("raft"), inner.clone())
            .await
            .unwrap();
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
    let mut sm = StateMachine::open(&dir.path().join("raft"), inner.clone())
        .await
        .unwrap();
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

#[tokio::test]
async fn a_tagged_write_proposed_twice_is_applied_once_even_after_a_snapshot_restore() {
    use openraft::storage::RaftStateMachine;
    use openraft::{RaftSnapshotBuilder, RaftTypeConfig};
    use orion_consensus::raft::{Command, RequestId};
    use orion_core::store::{Op, Store, Txn};

    let tagged = |index: u64, id: RequestId| openraft::Entry::<TypeConfig> {
        log_id: openraft::LogId::new(openraft::CommittedLeaderId::new(1, 1), index),
        payload: openraft::EntryPayload::Normal(Command::Batch(vec![Command::Tagged(
            id,
            Box::new(Command::Txn(
                Txn::new().and_then(Op::Put("k".into(), b"v".to_vec())),
            )),
        )])),
    };
    let id = RequestId::new(2);
    let dir = tempfile::tempdir().unwrap();
    let inner = Arc::new(MemStore::new());
    let mut sm = StateMachine::open(&dir.path().join("raft"), inner.clone())
        .await
        .unwrap();
    let first = sm.apply(vec![tagged(1, id)]).await.unwrap();
    // The old leader's entry committed after all, and the retry through the new leader too.
    let again = sm.apply(vec![tagged(2, id)]).await.unwrap();
    assert_eq!(first[0].batch, again[0].batch);
    assert_eq!(inner.revision().await.unwrap(), 1);
    assert_eq!(inner.get("k").await.unwrap().unwrap().version, 1);

    // A node that starts from a snapshot taken in between remembers the id too.
    let mut builder = sm.get_snapshot_builder().await;
    let snap = builder.build_snapshot().await.unwrap();
    let other_dir = tempfile::tempdir().unwrap();
    let other_inner = Arc::new(MemStore::new());
    let mut other = StateMachine::open(&other_dir.path().join("raft"), other_inner.clone())
        .await
        .unwrap();
    other
        .install_snapshot(&snap.meta, snap.snapshot)
        .await
        .unwrap();
    other.apply(vec![tagged(3, id)]).await.unwrap();
    assert_eq!(other_inner.revision().await.unwrap(), 1);
    let _: Option<<TypeConfig as RaftTypeConfig>::NodeId> = None;
}

#[tokio::test]
async fn the_current_snapshot_is_served_from_its_file_not_from_memory() {
    use openraft::RaftSnapshotBuilder;
    use openraft::storage::RaftStateMachine;

    let dir = tempfile::tempdir().unwrap();
    let raft = dir.path().join("raft");
    let mut sm = StateMachine::open(&raft, Arc::new(MemStore::new()))
        .await
        .unwrap();
    assert!(sm.get_current_snapshot().await.unwrap().is_none());
    sm.apply(vec![put_entry(1, "a"), put_entry(2, "b")])
        .await
        .unwrap();
    let built = sm
        .get_snapshot_builder()
        .await
        .build_snapshot()
        .await
        .unwrap();
    let data = built.snapshot.into_inner();
    let current = sm.get_current_snapshot().await.unwrap().unwrap();
    assert_eq!(current.meta, built.meta);
    assert_eq!(current.snapshot.into_inner(), data);

    // Served after a restart too, with the same bytes.
    drop(sm);
    let mut sm = StateMachine::open(&raft, Arc::new(MemStore::new()))
        .await
        .unwrap();
    let current = sm.get_current_snapshot().await.unwrap().unwrap();
    assert_eq!(current.meta, built.meta);
    assert_eq!(current.snapshot.into_inner(), data);

    // Memory holds only the meta: without its file the snapshot cannot be served.
    std::fs::remove_file(raft.join("snapshot")).unwrap();
    let err = sm.get_current_snapshot().await.unwrap_err();
    assert!(err.to_string().contains("missing"), "{err}");
}

#[tokio::test]
async fn an_installed_snapshot_is_served_from_its_file() {
    use openraft::RaftSnapshotBuilder;
    use openraft::storage::RaftStateMachine;
    use orion_core::store::Store;

    let leader_dir = tempfile::tempdir().unwrap();
    let mut leader = StateMachine::open(&leader_dir.path().join("raft"), Arc::new(MemStore::new()))
        .await
        .unwrap();
    leader.apply(vec![put_entry(1, "a")]).await.unwrap();
    let built = leader
        .get_snapshot_builder()
        .await
        .build_snapshot()
        .await
        .unwrap();
    let data = built.snapshot.get_ref().clone();

    let dir = tempfile::tempdir().unwrap();
    let inner = Arc::new(MemStore::new());
    let mut follower = StateMachine::open(&dir.path().join("raft"), inner.clone())
        .await
        .unwrap();
    follower
        .install_snapshot(&built.meta, built.snapshot)
        .await
        .unwrap();
    assert!(inner.get("a").await.unwrap().is_some());
    let current = follower.get_current_snapshot().await.unwrap().unwrap();
    assert_eq!(current.meta, built.meta);
    assert_eq!(current.snapshot.into_inner(), data);
    assert!(dir.path().join("raft").join("snapshot").exists());
}
