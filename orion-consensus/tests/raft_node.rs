//! A single Raft node: its Store behaviour, its data-dir identity, and its Raft port's
//! handling of malformed messages.

use std::time::Duration;

use orion_consensus::Error as ConsensusError;
use orion_consensus::codec;
use orion_consensus::raft::{RaftConfig, RaftNode};
use orion_core::store::MemoryStore as MemStore;
use orion_core::store::{Compare, Op, Store, Txn};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn config(dir: &std::path::Path, id: u64, cluster: &str) -> RaftConfig {
    RaftConfig::new(id, cluster, dir, "127.0.0.1:0".parse().unwrap())
}

async fn single_node(dir: &std::path::Path) -> RaftNode<MemStore> {
    let node = RaftNode::start(config(dir, 1, "c1"), MemStore::new())
        .await
        .unwrap();
    node.bootstrap().await.unwrap();
    node.wait_for_leader(Duration::from_secs(10)).await.unwrap();
    node
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_node_raft_store_reads_its_writes_and_runs_transactions() {
    let dir = tempfile::tempdir().unwrap();
    let node = single_node(dir.path()).await;
    let store = node.store();
    assert_eq!(store.put("a", b"1".to_vec()).await.unwrap(), 1);
    assert_eq!(store.put("b", b"2".to_vec()).await.unwrap(), 2);
    let kv = store.get("a").await.unwrap().unwrap();
    assert_eq!(
        (kv.value.as_slice(), kv.mod_revision, kv.version),
        (&b"1"[..], 1, 1)
    );

    let failed = store
        .txn(
            Txn::new()
                .when(Compare::Value("a".into(), b"nope".to_vec()))
                .and_then(Op::Put("a".into(), b"x".to_vec())),
        )
        .await
        .unwrap();
    assert!(!failed.succeeded);
    assert_eq!(failed.revision, 2);
    assert_eq!(store.delete("a").await.unwrap(), Some(3));
    assert_eq!(store.delete("a").await.unwrap(), None);
    let all = store.range("").await.unwrap();
    assert_eq!(all.revision, 3);
    assert_eq!(all.kvs.len(), 1);

    let status = node.status();
    assert_eq!(status.leader, Some(1));
    assert_eq!(status.voters, vec![1]);
    assert!(status.commit_index >= status.applied_index.min(1));
    assert!(
        status.applied_index >= 4,
        "blank + membership + writes applied: {status:?}"
    );
    node.shutdown().await.unwrap();

    // A restart resumes where it stopped: same data, same revision.
    let node = RaftNode::start(config(dir.path(), 1, "c1"), MemStore::new())
        .await
        .unwrap();
    node.wait_for_leader(Duration::from_secs(10)).await.unwrap();
    let store = node.store();
    assert_eq!(store.revision().await.unwrap(), 3);
    assert_eq!(store.get("b").await.unwrap().unwrap().value, b"2");
    assert_eq!(store.put("c", b"3".to_vec()).await.unwrap(), 4);
    node.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_data_dir_of_another_cluster_or_node_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let node = RaftNode::start(config(dir.path(), 1, "alpha"), MemStore::new())
        .await
        .unwrap();
    node.shutdown().await.unwrap();

    for (id, cluster) in [(1, "beta"), (2, "alpha")] {
        let err = RaftNode::start(config(dir.path(), id, cluster), MemStore::new())
            .await
            .unwrap_err();
        assert!(
            matches!(err, ConsensusError::IdentityMismatch { .. }),
            "got {err:?}"
        );
        let msg = err.to_string();
        assert!(msg.contains("\"alpha\" node 1"), "message: {msg}");
    }
    let bad = RaftConfig {
        heartbeat_interval: Duration::from_secs(2),
        ..config(dir.path(), 1, "alpha")
    };
    let err = RaftNode::start(bad, MemStore::new()).await.unwrap_err();
    assert!(matches!(
        err,
        ConsensusError::RaftConfig {
            field: "heartbeat_interval",
            ..
        }
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_interval_snapshots_a_slowly_written_log_and_is_checked() {
    let dir = tempfile::tempdir().unwrap();
    let too_often = RaftConfig {
        snapshot_interval: Some(Duration::from_millis(100)),
        ..config(dir.path(), 1, "c1")
    };
    let err = RaftNode::start(too_often, MemStore::new())
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            ConsensusError::RaftConfig {
                field: "snapshot_interval",
                ..
            }
        ),
        "got {err:?}"
    );

    let timed = RaftConfig {
        snapshot_every: 1_000_000,
        snapshot_interval: Some(Duration::from_secs(1)),
        ..config(dir.path(), 1, "c1")
    };
    let node = RaftNode::start(timed, MemStore::new()).await.unwrap();
    node.bootstrap().await.unwrap();
    node.wait_for_leader(Duration::from_secs(10)).await.unwrap();
    let store = node.store();
    for i in 0..5 {
        store.put(&format!("k{i}"), b"v".to_vec()).await.unwrap();
    }
    let applied = node.status().applied_index;
    // Far fewer entries than `snapshot_every`: only the timer can have built this snapshot.
    node.raft()
        .wait(Some(Duration::from_secs(10)))
        .metrics(
            |m| m.snapshot.is_some_and(|s| s.index >= applied),
            "a timed snapshot covering every write",
        )
        .await
        .unwrap();
    node.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_data_dir_in_an_older_storage_format_is_refused_and_left_intact() {
    let dir = tempfile::tempdir().unwrap();
    // What Orion wrote before the binary codec: no storage format in the identity.
    let identity = dir.path().join("identity.json");
    let old = br#"{"cluster_id":"alpha","node_id":1}"#;
    std::fs::write(&identity, old).unwrap();

    let err = RaftNode::start(config(dir.path(), 1, "alpha"), MemStore::new())
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            ConsensusError::StorageFormat {
                found: 0,
                expected: orion_consensus::codec::STORAGE_FORMAT,
                ..
            }
        ),
        "got {err:?}"
    );
    assert!(err.to_string().contains("empty one"), "{err}");
    assert_eq!(
        std::fs::read(&identity).unwrap(),
        old,
        "nothing was rewritten"
    );
}

/// Sends raw bytes; `hang_up` closes our sending side right after (for requests the server
/// would otherwise wait on).
async fn raw_exchange(addr: &str, bytes: &[u8], hang_up: bool) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(bytes).await.unwrap();
    if hang_up {
        stream.shutdown().await.unwrap();
    }
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut buf)).await;
    assert!(read.is_ok(), "the server kept the connection open");
    String::from_utf8_lossy(&buf).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_on_the_raft_port_is_rejected_and_the_node_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let node = single_node(dir.path()).await;
    let addr = node.addr().to_owned();

    let post = |path: &str, content_type: &str, body: &[u8]| {
        let mut req = format!(
            "POST {path} HTTP/1.1\r\nhost: x\r\ncontent-type: {content_type}\r\n\
             content-length: {}\r\nconnection: close\r\n\r\n",
            body.len()
        )
        .into_bytes();
        req.extend_from_slice(body);
        req
    };
    // A well-formed frame, but of a string: no Raft path takes that.
    let valid = codec::to_frame(&"not a raft message").unwrap();
    let mut flipped = valid.clone();
    flipped[0] ^= 0x10;
    for path in [
        "/raft/append",
        "/raft/vote",
        "/raft/snapshot",
        "/raft/leader",
    ] {
        // JSON (or any other content type): 415, naming the accepted one.
        let json = br#"{"vote":{"leader_id":{"term":1}}}"#;
        let resp = raw_exchange(&addr, &post(path, "application/json", json), false).await;
        assert!(resp.starts_with("HTTP/1.1 415"), "{path}: {resp}");
        assert!(resp.contains(codec::WIRE_CONTENT_TYPE), "{path}: {resp}");
        // Frames of the wrong message, truncated, corrupted, or garbage: 400 with the reason.
        for (what, body) in [
            ("wrong message", &valid[..]),
            ("truncated", &valid[..valid.len() - 1]),
            ("bit flip", &flipped[..]),
            ("garbage", &b"\xde\xad\xbe\xef\x00\x01"[..]),
        ] {
            let resp =
                raw_exchange(&addr, &post(path, codec::WIRE_CONTENT_TYPE, body), false).await;
            assert!(resp.starts_with("HTTP/1.1 400"), "{path} {what}: {resp}");
            assert!(resp.contains("malformed message"), "{path} {what}: {resp}");
        }
    }
    // Bytes that are not HTTP at all: the connection is refused with a 4xx or closed.
    let resp = raw_exchange(
        &addr,
        &[
            0xde, 0xad, 0xbe, 0xef, 0x00, 0xff, b'\r', b'\n', b'\r', b'\n',
        ],
        false,
    )
    .await;
    assert!(resp.is_empty() || resp.starts_with("HTTP/1.1 4"), "{resp}");
    // A body announcing more bytes than it sends, then hanging up.
    let resp = raw_exchange(
        &addr,
        b"POST /raft/append HTTP/1.1\r\nhost: x\r\ncontent-type: application/vnd.orion.raft.v1\r\n\
          content-length: 1000\r\n\r\n\x01\x02",
        true,
    )
    .await;
    assert!(!resp.starts_with("HTTP/1.1 2"), "{resp}");

    // The node is still the leader and still commits.
    let store = node.store();
    assert_eq!(store.put("after-garbage", b"ok".to_vec()).await.unwrap(), 1);
    assert_eq!(node.status().leader, Some(1));
    node.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writes_are_batched_yet_each_gets_its_own_revision() {
    let dir = tempfile::tempdir().unwrap();
    let node = single_node(dir.path()).await;
    let store = node.store();
    let mut tasks = Vec::new();
    for i in 0..100u32 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let key = format!("c/{i:03}");
            let rev = store.put(&key, i.to_be_bytes().to_vec()).await.unwrap();
            (key, rev)
        }));
    }
    let mut revisions = Vec::new();
    for t in tasks {
        let (key, rev) = t.await.unwrap();
        let kv = store.get(&key).await.unwrap().unwrap();
        assert_eq!(kv.mod_revision, rev, "{key}");
        revisions.push(rev);
    }
    revisions.sort();
    assert_eq!(revisions, (1..=100).collect::<Vec<u64>>());
    // Fewer log entries than writes: writes that arrived together shared an entry.
    let applied = node.status().applied_index;
    assert!(applied < 100 + 2, "applied index {applied}");
    node.shutdown().await.unwrap();
}
