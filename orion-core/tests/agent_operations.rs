//! The agent's operations run off its loop (`orion_core::node` agent, issue 16): a start the
//! engine is slow with holds up neither another task's start nor its stop; a task is never
//! started twice while its start is under way; a stop asked for meanwhile is done after it.

mod agent_support;

use std::sync::Arc;
use std::sync::atomic::Ordering;

use agent_support::{GatedRuntime, agent_on_n1, eventually, scheduled, state_of};
use orion_core::model::{DesiredState, ServiceSpec, TaskState};
use orion_core::runtime::Runtime;
use orion_core::store::{ClusterStore, MemoryStore};

const SLOW_IMAGE: &str = "slow-image";

async fn setup() -> (ClusterStore<MemoryStore>, Arc<GatedRuntime>) {
    let store = ClusterStore::new(MemoryStore::new());
    store
        .put_service(&ServiceSpec::new("web", "busybox", 2))
        .await
        .unwrap();
    store
        .put_service(&ServiceSpec::new("slow", SLOW_IMAGE, 1))
        .await
        .unwrap();
    (store, Arc::new(GatedRuntime::holding(&[SLOW_IMAGE])))
}

#[tokio::test]
async fn a_held_start_delays_neither_another_tasks_start_nor_a_stop() {
    let (store, rt) = setup().await;
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let running = tokio::spawn(agent_on_n1(&store, &rt).run(shutdown));

    let to_stop = scheduled("web", 0, "n1");
    store.put_task(&to_stop).await.unwrap();
    eventually("the first web task runs", || async {
        state_of(&store, &to_stop.id).await == TaskState::Running
    })
    .await;

    // The engine holds the slow task's start...
    let slow = scheduled("slow", 0, "n1");
    store.put_task(&slow).await.unwrap();
    eventually("the slow start is under way", || async {
        rt.starts_of(SLOW_IMAGE) == 1
    })
    .await;

    // ...while another task starts and another stops.
    let to_start = scheduled("web", 1, "n1");
    store.put_task(&to_start).await.unwrap();
    eventually("another task starts while the slow one is held", || async {
        state_of(&store, &to_start.id).await == TaskState::Running
    })
    .await;
    store
        .update_task(&to_stop.id, |t| {
            t.desired = DesiredState::Shutdown;
            Ok(())
        })
        .await
        .unwrap();
    eventually("a task stops while the slow one is held", || async {
        state_of(&store, &to_stop.id).await == TaskState::Stopped
    })
    .await;
    assert_eq!(state_of(&store, &slow.id).await, TaskState::Starting);

    rt.open();
    eventually("the slow task runs once the engine lets it", || async {
        state_of(&store, &slow.id).await == TaskState::Running
    })
    .await;
    assert_eq!(rt.starts_of(SLOW_IMAGE), 1);

    stop.send(true).unwrap();
    running.await.unwrap();
}

#[tokio::test]
async fn a_task_is_never_started_twice_while_its_start_is_under_way() {
    let (store, rt) = setup().await;
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let running = tokio::spawn(agent_on_n1(&store, &rt).run(shutdown));

    let slow = scheduled("slow", 0, "n1");
    store.put_task(&slow).await.unwrap();
    eventually("the start is under way", || async {
        rt.starts_of(SLOW_IMAGE) == 1
    })
    .await;
    // Each change is an event, and each event a pass that sees the task starting without a
    // container.
    let lists = rt.lists.load(Ordering::SeqCst);
    for i in 0..5 {
        store
            .update_task(&slow.id, |t| {
                t.error = Some(format!("poke {i}").into());
                Ok(())
            })
            .await
            .unwrap();
    }
    eventually("passes ran while the start was held", || async {
        rt.lists.load(Ordering::SeqCst) >= lists + 3
    })
    .await;
    assert_eq!(rt.starts_of(SLOW_IMAGE), 1, "started again while under way");

    rt.open();
    eventually("the task runs", || async {
        state_of(&store, &slow.id).await == TaskState::Running
    })
    .await;
    assert_eq!(rt.starts_of(SLOW_IMAGE), 1);
    assert_eq!(rt.fake.list(&Default::default()).await.unwrap().len(), 1);

    stop.send(true).unwrap();
    running.await.unwrap();
}

#[tokio::test]
async fn a_stop_asked_for_while_its_start_is_under_way_is_done_when_the_start_ends() {
    let (store, rt) = setup().await;
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let running = tokio::spawn(agent_on_n1(&store, &rt).run(shutdown));

    let slow = scheduled("slow", 0, "n1");
    store.put_task(&slow).await.unwrap();
    eventually("the start is under way", || async {
        rt.starts_of(SLOW_IMAGE) == 1
    })
    .await;
    let lists = rt.lists.load(Ordering::SeqCst);
    store
        .update_task(&slow.id, |t| {
            t.desired = DesiredState::Shutdown;
            Ok(())
        })
        .await
        .unwrap();
    eventually("a pass saw the stop", || async {
        rt.lists.load(Ordering::SeqCst) > lists
    })
    .await;

    rt.open();
    eventually("the task is stopped after its start", || async {
        state_of(&store, &slow.id).await == TaskState::Stopped
    })
    .await;
    assert!(rt.fake.list(&Default::default()).await.unwrap().is_empty());

    stop.send(true).unwrap();
    running.await.unwrap();
}

#[test]
fn the_bound_on_operations_is_checked() {
    let (store, rt) = (
        ClusterStore::new(MemoryStore::new()),
        Arc::new(GatedRuntime::holding(&[])),
    );
    for bad in [0, 257] {
        let err = agent_on_n1(&store, &rt).max_in_flight(bad).unwrap_err();
        assert!(err.to_string().contains("max_in_flight"), "{err}");
    }
    for good in [1, 16, 256] {
        assert!(agent_on_n1(&store, &rt).max_in_flight(good).is_ok());
    }
}
