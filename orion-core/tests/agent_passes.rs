//! The agent's two kinds of pass: `sync_changed` converges only the tasks a watch batch named,
//! and the full pass (`sync`, run by the loop every resync interval) repairs what no event said.

use std::sync::Arc;
use std::time::{Duration, Instant};

use orion_core::model::{Resources, ServiceSpec, Task, TaskState};
use orion_core::node::{Agent, SystemClock};
use orion_core::runtime::{FakeRuntime, Runtime};
use orion_core::store::{ClusterStore, MemoryStore};

/// A scheduled task of `web`, slot `slot`, on `node`.
fn scheduled(slot: u32, node: &str) -> Task {
    let mut t = Task::new("web", slot, 1, Resources::new(10, 16 << 20));
    t.node = Some(node.to_owned());
    t.transition(TaskState::Scheduled).unwrap();
    t
}

async fn setup() -> (ClusterStore<MemoryStore>, Arc<FakeRuntime>) {
    let store = ClusterStore::new(MemoryStore::new());
    store
        .put_service(&ServiceSpec::new("web", "busybox", 2))
        .await
        .unwrap();
    (store, Arc::new(FakeRuntime::new()))
}

fn agent(
    store: &ClusterStore<MemoryStore>,
    rt: &Arc<FakeRuntime>,
) -> Agent<MemoryStore, FakeRuntime> {
    Agent::new(
        "n1",
        store.clone(),
        rt.clone(),
        Arc::new(SystemClock),
        "127.0.0.1",
    )
}

async fn state_of(store: &ClusterStore<MemoryStore>, id: &str) -> TaskState {
    store.get_task(id).await.unwrap().unwrap().state
}

#[tokio::test]
async fn sync_changed_converges_only_the_named_tasks_of_this_node() {
    let (store, rt) = setup().await;
    let (a, b, elsewhere) = (scheduled(0, "n1"), scheduled(1, "n1"), scheduled(2, "n2"));
    for t in [&a, &b, &elsewhere] {
        store.put_task(t).await.unwrap();
    }
    let agent = agent(&store, &rt);

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

/// Polls `probe` every 20 ms for at most 10 s; panics naming `what` otherwise.
async fn eventually<F, Fut>(what: &str, mut probe: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    for _ in 0..500 {
        if probe().await {
            return;
        }
        if started.elapsed() > Duration::from_secs(10) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("not within 10 s: {what}");
}

#[tokio::test]
async fn the_loop_acts_on_events_and_its_resync_repairs_a_change_no_event_reported() {
    let (store, rt) = setup().await;
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let running = tokio::spawn(agent(&store, &rt).run(shutdown));

    // A task written to the store reaches the agent as an event.
    let task = scheduled(0, "n1");
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
