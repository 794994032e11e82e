//! The agent's status writes are group-committed (issue 16): updates made while a write is under
//! way go together in the next transaction, and a failed compare of one task in a batch loses
//! none of the others' updates.

mod agent_support;

use std::sync::Arc;
use std::sync::atomic::Ordering;

use agent_support::{GatedRuntime, HeldStore, eventually, scheduled};
use orion_core::model::{ServiceSpec, Task, TaskState};
use orion_core::node::{Agent, SystemClock};
use orion_core::store::{ClusterStore, Store};

const TASKS: u32 = 5;

type HeldAgent = Agent<Arc<HeldStore>, GatedRuntime>;

/// Five tasks whose starts the engine holds, started by a pass of their agent; returns when the
/// five starts have returned and their `running` writes wait in the held store (the first one
/// inside its transaction, the others queued behind it).
async fn five_running_writes_waiting() -> (
    Arc<HeldStore>,
    ClusterStore<Arc<HeldStore>>,
    Vec<Task>,
    tokio::task::JoinHandle<orion_core::Result<()>>,
) {
    let held = Arc::new(HeldStore::new());
    let store = ClusterStore::new(held.clone());
    store
        .put_service(&ServiceSpec::new("web", "busybox", TASKS))
        .await
        .unwrap();
    let tasks: Vec<Task> = (0..TASKS).map(|i| scheduled("web", i, "n1")).collect();
    for t in &tasks {
        store.put_task(t).await.unwrap();
    }
    let rt = Arc::new(GatedRuntime::holding(&["busybox"]));
    let agent: Arc<HeldAgent> = Arc::new(Agent::new(
        "n1",
        store.clone(),
        rt.clone(),
        Arc::new(SystemClock),
        "127.0.0.1",
    ));
    let pass = tokio::spawn(async move { agent.sync().await });
    eventually("the five starts are held", || async {
        rt.starts_of("busybox") == TASKS as usize
    })
    .await;
    held.hold();
    rt.open();
    // On this single-threaded runtime, an operation queues its status write in the same poll
    // that sees its start return.
    eventually("the five starts returned", || async {
        rt.returned.load(Ordering::SeqCst) == TASKS as usize
    })
    .await;
    eventually("the first write waits in its transaction", || async {
        held.waited.load(Ordering::SeqCst) == 1
    })
    .await;
    (held, store, tasks, pass)
}

async fn all_running(store: &ClusterStore<Arc<HeldStore>>, tasks: &[Task]) {
    for t in tasks {
        let now = store.get_task(&t.id).await.unwrap().unwrap();
        assert_eq!(now.state, TaskState::Running, "{}", t.id);
        assert!(now.container_id.is_some(), "{}", t.id);
    }
}

#[tokio::test]
async fn status_changes_made_together_land_in_fewer_revisions_than_changes() {
    let (held, store, tasks, pass) = five_running_writes_waiting().await;
    let before = held.revision().await.unwrap();
    held.allow(TASKS as usize);
    pass.await.unwrap().unwrap();
    all_running(&store, &tasks).await;
    let revisions = held.revision().await.unwrap() - before;
    assert!(
        revisions < u64::from(TASKS),
        "{TASKS} running writes took {revisions} revisions"
    );
    assert_eq!(held.failed.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_failed_compare_in_a_batch_loses_none_of_the_other_updates() {
    let (held, store, tasks, pass) = five_running_writes_waiting().await;
    // The first write goes; the next batch (the four others) reads and waits in its transaction.
    held.allow(1);
    eventually("the batch of the others waits", || async {
        held.waited.load(Ordering::SeqCst) == 2
    })
    .await;
    // One task of that batch changes behind the agent's back (not through the held store).
    let bypass = ClusterStore::new(held.memory.clone());
    let mut changed = None;
    for t in &tasks {
        if bypass.get_task(&t.id).await.unwrap().unwrap().state == TaskState::Starting {
            changed = Some(t.id.clone());
            break;
        }
    }
    let changed = changed.expect("a task of the waiting batch");
    bypass
        .update_task(&changed, |t| {
            t.exit_code = Some(7);
            Ok(())
        })
        .await
        .unwrap();

    held.allow(100);
    pass.await.unwrap().unwrap();
    assert!(
        held.failed.load(Ordering::SeqCst) >= 1,
        "the batch's compare failed"
    );
    all_running(&store, &tasks).await;
    let kept = store.get_task(&changed).await.unwrap().unwrap();
    assert_eq!(kept.exit_code, Some(7), "the other writer's change is kept");
}
