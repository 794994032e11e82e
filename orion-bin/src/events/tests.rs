use std::sync::Arc;

use orion_core::model::{Node, NodeStatus, Resources, ServiceSpec, Task, TaskState};
use orion_core::store::{ClusterStore, MemoryStore, Store, keys};

use super::*;

fn store() -> Arc<dyn Store> {
    Arc::new(MemoryStore::new())
}

/// Waits (bounded in attempts) until `log` holds `n` events after `since`.
async fn events(log: &EventLog, n: usize) -> Vec<ClusterEvent> {
    for _ in 0..200 {
        let got = log.since(0);
        if got.len() >= n {
            return got;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("expected {n} events, have {:?}", log.since(0));
}

#[tokio::test]
async fn store_changes_become_events_with_their_revisions() {
    let shared = store();
    let typed = ClusterStore::new(shared.clone());
    let log = Arc::new(EventLog::default());
    let (_stop, stop_rx) = tokio::sync::watch::channel(false);
    // A change made before the recorder starts is replayed from the store's history.
    typed
        .put_service(&ServiceSpec::new("web", "nginx", 1))
        .await
        .unwrap();
    tokio::spawn(record(shared.clone(), log.clone(), stop_rx));

    let mut task = Task::new("web", 0, 1, Resources::default());
    typed.put_task(&task).await.unwrap();
    task.node = Some("n1".into());
    task.state = TaskState::Starting;
    typed.put_task(&task).await.unwrap();
    task.state = TaskState::Failed;
    task.exit_code = Some(3);
    task.error = Some("exited".into());
    typed.put_task(&task).await.unwrap();
    typed
        .put_node(&Node::new("n2", Resources::default()))
        .await
        .unwrap();

    let got = events(&log, 6).await;
    let reasons: Vec<&str> = got.iter().map(|e| e.reason.as_str()).collect();
    assert_eq!(
        reasons,
        [
            "created", "created", "placed", "starting", "failed", "joined"
        ],
        "{got:#?}"
    );
    let failed = &got[4];
    assert_eq!(failed.severity, Severity::Warning);
    assert!(failed.message.contains("exit code 3: exited"), "{failed:?}");
    assert_eq!(
        (
            failed.service.as_deref(),
            failed.node.as_deref(),
            failed.name.as_str()
        ),
        (Some("web"), Some("n1"), task.id.as_str())
    );
    assert!(got.windows(2).all(|w| w[0].revision <= w[1].revision));
    let after = log.since(got[3].revision);
    assert_eq!(after.len(), 2, "since is exclusive: {after:?}");
}

#[test]
fn the_ring_is_bounded() {
    let log = EventLog::default();
    for i in 0..(EVENT_CAPACITY as u64 + 10) {
        log.push(ClusterEvent {
            revision: i + 1,
            time: 0,
            severity: Severity::Normal,
            reason: "x".into(),
            kind: "node".into(),
            name: "n".into(),
            service: None,
            node: None,
            message: String::new(),
        });
    }
    let kept = log.since(0);
    assert_eq!(kept.len(), EVENT_CAPACITY);
    assert_eq!(kept[0].revision, 11);
}

#[test]
fn a_node_going_down_is_a_warning() {
    let mut old = Node::new("n1", Resources::default());
    let kv = |node: &Node, rev| orion_core::store::KeyValue {
        key: keys::node("n1"),
        value: serde_json::to_vec(node).unwrap(),
        create_revision: 1,
        mod_revision: rev,
        version: rev,
    };
    let prev = kv(&old, 1);
    old.status = NodeStatus::Down;
    let change = orion_core::store::WatchEvent {
        kind: orion_core::store::EventKind::Put,
        kv: kv(&old, 2),
        prev: Some(prev),
    };
    let got = derive(&change);
    assert_eq!(got.len(), 1);
    assert_eq!((got[0].reason.as_str(), got[0].revision), ("down", 2));
    assert_eq!(got[0].severity, Severity::Warning);
}
