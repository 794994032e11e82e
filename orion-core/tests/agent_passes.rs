//! The agent's two kinds of pass: `sync_changed` converges only the tasks a watch batch named,
//! and the full pass (`sync`, run by the loop every resync interval) repairs what no event said.

mod agent_support;

use std::sync::Arc;

use agent_support::{agent_on_n1, eventually, scheduled, state_of};

use orion_core::model::{ServiceSpec, TaskState};
use orion_core::runtime::{FakeRuntime, Runtime};
use orion_core::store::{ClusterStore, MemoryStore};

async fn setup() -> (ClusterStore<MemoryStore>, Arc<FakeRuntime>) {
    let store = ClusterStore::new(MemoryStore::new());
    store
        .put_service(&ServiceSpec::new("web", "busybox", 2))
        .await
        .unwrap();
    (store, Arc::new(FakeRuntime::new()))
}

#[tokio::test]
async fn sync_changed_converges_only_the_named_tasks_of_this_node() {
    let (store, rt) = setup().await;
    let (a, b, elsewhere) = (
        scheduled("web", 0, "n1"),
        scheduled("web", 1, "n1"),
        scheduled("web", 2, "n2"),
    );
    for t in [&a, &b, &elsewhere] {
        store.put_task(t).await.unwrap();
    }
    let agent = agent_on_n1(&store, &rt);

    agent
        .sync_changed(vec![a.clone(), elsewhere.clone()])
        .await
        .unwrap();
    assert_eq!(state_of(&store, &a.id).await, TaskState::Running);
    assert_eq!(
        state_of(&store, &b.id).await,
        TaskState::Scheduled,
        "not named"
    );
    assert_eq!(
        state_of(&store, &elsewhere.id).await,
        TaskState::Scheduled,
        "another node's"
    );
    assert_eq!(rt.list(&Default::default()).await.unwrap().len(), 1);

    // The full pass converges everything of this node.
    agent.sync().await.unwrap();
    assert_eq!(state_of(&store, &b.id).await, TaskState::Running);
    assert_eq!(state_of(&store, &elsewhere.id).await, TaskState::Scheduled);
    assert_eq!(rt.list(&Default::default()).await.unwrap().len(), 2);
}

#[tokio::test]
async fn the_loop_acts_on_events_and_its_resync_repairs_a_change_no_event_reported() {
    let (store, rt) = setup().await;
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let running = tokio::spawn(agent_on_n1(&store, &rt).run(shutdown));

    // A task written to the store reaches the agent as an event.
    let task = scheduled("web", 0, "n1");
    store.put_task(&task).await.unwrap();
    eventually("the task runs", || async {
        state_of(&store, &task.id).await == TaskState::Running
    })
    .await;
    let first = store
        .get_task(&task.id)
        .await
        .unwrap()
        .unwrap()
        .container_id;

    // The container vanishes behind the agent's back: the store says nothing and the fake
    // runtime has no exit feed, so only the periodic full pass can see it. It restarts the
    // task in place (restart policy `always`) with a new container.
    rt.remove(first.as_deref().unwrap()).await.unwrap();
    eventually("the task runs again on a new container", || async {
        let t = store.get_task(&task.id).await.unwrap().unwrap();
        t.state == TaskState::Running && t.container_id.is_some() && t.container_id != first
    })
    .await;
    let t = store.get_task(&task.id).await.unwrap().unwrap();
    assert_eq!(t.restarts, 1);

    stop.send(true).unwrap();
    running.await.unwrap();
}
