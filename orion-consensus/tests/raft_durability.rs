//! The Raft log, vote and snapshot are fdatasync'd before they are acknowledged, observed on a
//! real process under `strace`; and a log whose last record was torn by a crash reopens.
//!
//! The observed process is this test binary itself, re-run with `ORION_DURABILITY_CHILD` set so
//! that only [`durability_child`] does anything. The child marks the start and the end of each
//! acknowledged operation with a `getppid()` call (a syscall nothing else here makes), and the
//! parent checks that an fsync or fdatasync of the right file lies between the two marks.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use openraft::storage::RaftLogStorage;
use orion_consensus::raft::{FileLogStore, RaftConfig, RaftNode};
use orion_core::store::{MemoryStore as MemStore, Store};

const CHILD_ENV: &str = "ORION_DURABILITY_CHILD";

/// One mark in the child's trace.
fn mark() {
    let _ = std::os::unix::process::parent_id();
}

/// Runs in the re-executed process only: start a node, and for each of vote, append and
/// snapshot: mark, do it and wait for its acknowledgement, mark.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn durability_child() {
    let Some(dir) = std::env::var_os(CHILD_ENV) else {
        return; // Not the re-executed child: nothing to do.
    };
    let config = RaftConfig::new(
        1,
        "durable",
        Path::new(&dir),
        "127.0.0.1:0".parse().unwrap(),
    );
    let node = RaftNode::start(config, MemStore::new()).await.unwrap();
    // 1: the vote (bootstrap elects this node, which saves its vote).
    mark();
    node.bootstrap().await.unwrap();
    node.wait_for_leader(Duration::from_secs(10)).await.unwrap();
    mark();
    // 2: an acknowledged write (committed only once the leader's log append is persisted).
    let store = node.store();
    store.put("k", b"v".to_vec()).await.unwrap();
    mark();
    store.put("k2", b"v".to_vec()).await.unwrap();
    mark();
    // 3: a snapshot, acknowledged when openraft reports it built.
    mark();
    node.raft().trigger().snapshot().await.unwrap();
    node.raft()
        .wait(Some(Duration::from_secs(10)))
        .metrics(|m| m.snapshot.is_some(), "snapshot built")
        .await
        .unwrap();
    mark();
    node.shutdown().await.unwrap();
}

/// The syscalls of the child, in order: `Mark`, or a sync of the named path.
#[derive(Debug, PartialEq)]
enum Event {
    Mark,
    Sync { call: String, path: String },
}

fn parse(trace: &str) -> Vec<Event> {
    let mut events = Vec::new();
    for line in trace.lines() {
        // "[pid 12] fdatasync(9</tmp/x/raft/log/000.seg>) = 0", or without the pid prefix;
        // a call split by another thread shows as "... <unfinished ...>" then "resumed".
        let line = line.trim_start_matches(|c: char| c.is_ascii_digit() || c == ' ');
        let call = line.split('(').next().unwrap_or("");
        if call == "getppid" {
            events.push(Event::Mark);
        } else if matches!(call, "fsync" | "fdatasync" | "sync_file_range") {
            let path = line
                .split_once('<')
                .and_then(|(_, rest)| rest.split_once('>'))
                .map_or(String::new(), |(p, _)| p.to_owned());
            events.push(Event::Sync {
                call: call.to_owned(),
                path,
            });
        }
    }
    events
}

/// The syncs between the `n`-th and `n+1`-th marks (0-based).
fn between(events: &[Event], n: usize) -> Vec<(&str, &str)> {
    let marks: Vec<usize> = events
        .iter()
        .enumerate()
        .filter(|(_, e)| **e == Event::Mark)
        .map(|(i, _)| i)
        .collect();
    assert!(
        marks.len() > n + 1,
        "the child made {} marks: {events:?}",
        marks.len()
    );
    events[marks[n]..marks[n + 1]]
        .iter()
        .filter_map(|e| match e {
            Event::Sync { call, path } => Some((call.as_str(), path.as_str())),
            Event::Mark => None,
        })
        .collect()
}

fn full_sync_of(syncs: &[(&str, &str)], path_part: &str) -> bool {
    syncs
        .iter()
        .any(|(call, path)| matches!(*call, "fsync" | "fdatasync") && path.contains(path_part))
}

#[test]
fn votes_appends_and_snapshots_are_fdatasynced_before_they_are_acknowledged() {
    let strace = Command::new("strace").arg("-V").output();
    assert!(
        strace.is_ok_and(|o| o.status.success()),
        "this test needs strace (Debian package `strace`, in the Makefile's APT_PACKAGES)"
    );
    let dir = tempfile::tempdir().unwrap();
    let trace_file = dir.path().join("trace");
    let data = dir.path().join("node");
    let out = Command::new("strace")
        .args([
            "-f",
            "-y",
            "-qq",
            "-e",
            "trace=fsync,fdatasync,sync_file_range,getppid",
            "-o",
        ])
        .arg(&trace_file)
        .arg(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "durability_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, &data)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the child failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let events = parse(&std::fs::read_to_string(&trace_file).unwrap());
    let vote = between(&events, 0);
    assert!(
        full_sync_of(&vote, "raft/log/meta"),
        "vote not fdatasync'd before the ack: {vote:?}"
    );
    for n in [1, 2] {
        let write = between(&events, n);
        assert!(
            full_sync_of(&write, "raft/log/") && full_sync_of(&write, ".seg"),
            "write {n} not fdatasync'd before its ack: {write:?}"
        );
    }
    let snapshot = between(&events, 4);
    assert!(
        full_sync_of(&snapshot, "raft/snapshot"),
        "snapshot not fdatasync'd before openraft was told: {snapshot:?}"
    );
}

fn entry(index: u64) -> openraft::Entry<orion_consensus::raft::TypeConfig> {
    use orion_consensus::raft::Command as RaftCommand;
    use orion_core::store::{Op, Txn};
    openraft::Entry {
        log_id: openraft::LogId::new(openraft::CommittedLeaderId::new(1, 1), index),
        payload: openraft::EntryPayload::Normal(RaftCommand::Txn(
            Txn::new().and_then(Op::Put(format!("k{index}"), vec![7; 100])),
        )),
    }
}

#[tokio::test]
async fn a_log_with_a_torn_last_record_reopens_without_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log");
    {
        let mut log = FileLogStore::open(&path).unwrap();
        log.append_synced((1..=3).map(entry).collect()).unwrap();
    }
    let segment = std::fs::read_dir(&path)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "seg"))
        .unwrap();
    let len = std::fs::metadata(&segment).unwrap().len();
    // A crash in the middle of writing entry 3: its record is cut short.
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&segment)
        .unwrap();
    file.set_len(len - 10).unwrap();
    drop(file);

    let mut log = FileLogStore::open(&path).unwrap();
    let state = log.get_log_state().await.unwrap();
    assert_eq!(state.last_log_id.map(|l| l.index), Some(2));
    // Appending after the cut continues the log, and a reopen reads it all back.
    log.append_synced(vec![entry(3), entry(4)]).unwrap();
    drop(log);
    let mut log = FileLogStore::open(&path).unwrap();
    let state = log.get_log_state().await.unwrap();
    assert_eq!(state.last_log_id.map(|l| l.index), Some(4));
    use openraft::RaftLogReader;
    let entries = log.try_get_log_entries(1..=4).await.unwrap();
    assert_eq!(entries, (1..=4).map(entry).collect::<Vec<_>>());

    // The same damage in a segment that is not the last one is corruption: refused, named.
    let middle = dir.path().join("log2");
    std::fs::create_dir_all(&middle).unwrap();
    std::fs::copy(&segment, middle.join("00000000000000000001.seg")).unwrap();
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(middle.join("00000000000000000001.seg"))
        .unwrap();
    f.set_len(std::fs::metadata(&segment).unwrap().len() - 10)
        .unwrap();
    drop(f);
    std::fs::write(middle.join("00000000000000000099.seg"), b"").unwrap();
    let err = FileLogStore::open(&middle).unwrap_err().to_string();
    assert!(
        err.contains("00000000000000000001.seg") && err.contains("corrupt"),
        "{err}"
    );
}
