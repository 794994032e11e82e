//! The node's loops (agent and controllers) on the deterministic cluster harness.

use std::collections::BTreeMap;

use orion_core::membership::MemberState;
use orion_core::model::spec::RestartPolicy;
use orion_core::model::{DesiredState, NodeStatus, ServiceSpec, Task, TaskState};
use orion_core::node::ControllerConfig;
use orion_core::runtime::{FakeRuntime, FaultPlan, Runtime};
use orion_core::store::{Store, keys};
use orion_core::testing::cluster::ClusterHarness;

fn running(tasks: &[Task]) -> usize {
    tasks
        .iter()
        .filter(|t| t.state == TaskState::Running && t.desired == DesiredState::Running)
        .count()
}

async fn running_containers(rt: &FakeRuntime) -> Vec<String> {
    let mut ids: Vec<String> = rt
        .list(&BTreeMap::new())
        .await
        .expect("list")
        .into_iter()
        .filter(|c| c.status.is_running())
        .map(|c| c.id)
        .collect();
    ids.sort();
    ids
}

async fn deployed(seed: u64, replicas: u32) -> ClusterHarness {
    let mut h = ClusterHarness::new(3, seed, ControllerConfig::default());
    let mut spec = ServiceSpec::new("web", "busybox", replicas);
    spec.restart_policy = RestartPolicy::Always;
    h.store.put_service(&spec).await.expect("put");
    let n = replicas as usize;
    assert!(h.run_until(50, |t| running(t) == n).await, "deploy");
    h
}

#[tokio::test]
async fn a_false_death_keeps_the_original_containers_and_stops_the_replacements() {
    for seed in 0..5 {
        let mut h = deployed(seed, 6).await;
        let before = running_containers(h.runtime(1)).await;
        assert!(!before.is_empty(), "seed {seed}: n2 runs something");
        // n2 freezes and gossip declares it dead: its tasks are replaced elsewhere...
        h.pause(1);
        h.set_member_state(1, MemberState::Dead);
        assert!(
            h.run_until(50, |t| running(t) == 6
                && t.iter().any(|t| t.state == TaskState::Lost))
                .await
        );
        // ...while its own containers were never touched.
        assert_eq!(
            running_containers(h.runtime(1)).await,
            before,
            "seed {seed}"
        );
        // It comes back: its originals are reconnected and the surplus replacements stop.
        h.resume(1);
        h.set_member_state(1, MemberState::Alive);
        let back = h
            .run_until(80, |t| {
                running(t) == 6
                    && t.iter()
                        .all(|t| t.state != TaskState::Lost || t.desired == DesiredState::Shutdown)
            })
            .await;
        assert!(back, "seed {seed}: {:?}", h.store.list_tasks().await);
        for _ in 0..10 {
            h.step().await;
        }
        assert_eq!(
            running_containers(h.runtime(1)).await,
            before,
            "seed {seed}: originals kept"
        );
        let total: usize = [0, 1, 2].len();
        let mut all = 0;
        for i in 0..total {
            all += running_containers(h.runtime(i)).await.len();
        }
        assert_eq!(all, 6, "seed {seed}: the surplus was stopped");
    }
}

#[tokio::test]
async fn an_agent_cut_off_from_the_store_kills_nothing() {
    let mut h = deployed(7, 6).await;
    let before = running_containers(h.runtime(2)).await;
    h.cut_off(2, true);
    for _ in 0..100 {
        h.step().await;
    }
    assert_eq!(running_containers(h.runtime(2)).await, before);
    h.cut_off(2, false);
    for _ in 0..10 {
        h.step().await;
    }
    assert_eq!(running_containers(h.runtime(2)).await, before);
    assert_eq!(running(&h.store.list_tasks().await.unwrap()), 6);
}

#[tokio::test]
async fn failing_store_writes_for_a_while_lose_nothing_and_converge() {
    let mut h = ClusterHarness::new(3, 3, ControllerConfig::default());
    h.store
        .put_service(&ServiceSpec::new("web", "busybox", 4))
        .await
        .unwrap();
    h.fail_writes_for(2_000);
    for _ in 0..10 {
        h.step().await;
    }
    assert!(h.run_until(50, |t| running(t) == 4).await);
}

#[tokio::test]
async fn a_deposed_leader_cannot_act_on_its_plan() {
    let mut h = deployed(11, 3).await;
    let old = h
        .node(0)
        .controllers()
        .claim(2)
        .await
        .expect("claim term 2");
    h.elect(1);
    h.step().await; // n2 claims term 2
    // The old leader wakes up with work to do: a scale-up it would place.
    let mut spec = h.store.get_service("web").await.unwrap().unwrap().spec;
    spec.replicas = 5;
    h.store.put_service(&spec).await.unwrap();
    let report = h
        .node(0)
        .controllers()
        .reconciler
        .round(&old)
        .await
        .unwrap();
    assert!(report.actions > 0 && report.applied == 0, "{report:?}");
    assert!(report.fenced_out);
    // And it cannot steal the fence back with its older term.
    assert!(h.node(0).controllers().claim(1).await.is_err());
    assert!(h.run_until(30, |t| running(t) == 5).await);
}

#[tokio::test]
async fn a_crash_loop_backs_off_instead_of_piling_up_records() {
    let mut h = ClusterHarness::new(1, 5, ControllerConfig::default());
    h.runtime(0).set_faults(FaultPlan::new().fail_every_start());
    let mut spec = ServiceSpec::new("bad", "busybox", 1);
    spec.restart_policy = RestartPolicy::Always;
    h.store.put_service(&spec).await.unwrap();
    // 30 s of simulated time.
    for _ in 0..300 {
        h.step().await;
    }
    let tasks = h.store.list_tasks().await.unwrap();
    // 1 s, 2 s, 4 s, 8 s, 16 s back-offs: about 5 attempts, not hundreds.
    assert!(
        (3..=8).contains(&tasks.len()),
        "{} task records",
        tasks.len()
    );
    assert!(tasks.iter().any(|t| t.attempt >= 3));
}

#[tokio::test]
async fn a_stale_down_is_corrected_from_membership_and_downs_are_rate_limited() {
    let mut config = ControllerConfig::default();
    config.liveness.max_down_per_minute = 2;
    let mut h = ClusterHarness::new(6, 1, config);
    h.step().await;
    // A record left `down` by an earlier leader (or a lost event), for a live member.
    h.store
        .update_node("n2", |n| {
            n.status = NodeStatus::Down;
            Ok(())
        })
        .await
        .unwrap();
    h.step().await;
    assert_eq!(status(&h, "n2").await, NodeStatus::Ready);
    // Three members die at once: two are marked down in the first minute, the third waits.
    for i in [3, 4, 5] {
        h.kill(i);
    }
    for _ in 0..50 {
        h.step().await;
    }
    let down = downs(&h).await;
    assert_eq!(down.len(), 2, "{down:?}");
    for _ in 0..600 {
        h.step().await;
    }
    assert_eq!(downs(&h).await.len(), 3);
}

async fn status(h: &ClusterHarness, id: &str) -> NodeStatus {
    h.store.get_node(id).await.unwrap().unwrap().status
}

async fn downs(h: &ClusterHarness) -> Vec<String> {
    let nodes = h.store.list_nodes().await.unwrap();
    nodes
        .into_iter()
        .filter(|n| n.status == NodeStatus::Down)
        .map(|n| n.id)
        .collect()
}

#[tokio::test]
async fn a_node_is_marked_down_only_after_the_grace_period() {
    let mut config = ControllerConfig::default();
    config.liveness.down_grace = std::time::Duration::from_secs(3);
    let mut h = ClusterHarness::new(3, 2, config);
    h.step().await;
    h.set_member_state(2, MemberState::Dead);
    for _ in 0..25 {
        h.step().await;
    }
    assert_eq!(
        status(&h, "n3").await,
        NodeStatus::Ready,
        "within the grace"
    );
    // Back before the grace ran out: never marked down.
    h.set_member_state(2, MemberState::Alive);
    h.step().await;
    h.set_member_state(2, MemberState::Dead);
    for _ in 0..25 {
        h.step().await;
    }
    assert_eq!(status(&h, "n3").await, NodeStatus::Ready, "grace restarts");
    for _ in 0..10 {
        h.step().await;
    }
    assert_eq!(status(&h, "n3").await, NodeStatus::Down);
}

#[tokio::test]
async fn finished_tasks_are_collected_after_retention_and_by_history() {
    let mut config = ControllerConfig::default();
    config.gc.history_per_service = 3;
    config.gc.retention = std::time::Duration::from_secs(60);
    let mut h = ClusterHarness::new(2, 4, config);
    let mut spec = ServiceSpec::new("job", "busybox", 2);
    spec.restart_policy = RestartPolicy::Always;
    h.store.put_service(&spec).await.unwrap();
    assert!(h.run_until(50, |t| running(t) == 2).await);
    // Ten scale-ups and downs leave stopped records behind.
    for replicas in [4, 2, 4, 2, 4, 2, 4, 2] {
        spec.replicas = replicas;
        h.store.put_service(&spec).await.unwrap();
        assert!(h.run_until(50, |t| running(t) == replicas as usize).await);
    }
    let before = h.store.list_tasks().await.unwrap().len();
    let fence = h.node(0).controllers().claim(1).await.unwrap();
    let controllers = h.node(0).controllers();
    let reads_before = controllers.reconciler.state_reads().await.0;
    let deleted = controllers.collect_garbage(&fence).await.unwrap();
    assert!(
        deleted > 0,
        "the leader's loop collects from the kept state"
    );
    assert_eq!(
        controllers.reconciler.state_reads().await.0,
        reads_before,
        "and reads nothing in full for it"
    );
    let after = h.store.list_tasks().await.unwrap();
    let finished = after.iter().filter(|t| t.state.is_terminal()).count();
    assert!(
        finished <= 3 + 4,
        "{before} -> {} records, {finished} finished",
        after.len()
    );
    assert_eq!(running(&after), 2, "running tasks are never collected");
    // The service deleted and the retention passed: everything goes, slot records too.
    h.store.delete_service("job").await.unwrap();
    assert!(h.run_until(50, |t| running(t) == 0).await);
    h.clock.advance(61_000);
    let fence = h.node(0).controllers().claim(1).await.unwrap();
    h.node(0).controllers().gc.round(&fence).await.unwrap();
    assert!(h.store.list_tasks().await.unwrap().is_empty());
    let slots = h.store.inner().range(keys::SLOTS).await.unwrap();
    assert!(slots.kvs.is_empty(), "{:?}", slots.kvs);
}

#[tokio::test]
async fn stop_after_disconnect_stops_a_singleton_on_a_node_that_lost_the_store() {
    let mut h = ClusterHarness::new(2, 9, ControllerConfig::default());
    let mut solo = ServiceSpec::new("solo", "busybox", 1);
    solo.stop_after_disconnect = 5;
    h.store.put_service(&solo).await.unwrap();
    h.store
        .put_service(&ServiceSpec::new("web", "busybox", 2))
        .await
        .unwrap();
    assert!(h.run_until(50, |t| running(t) == 3).await);
    let tasks = h.store.list_tasks().await.unwrap();
    let solo_node = tasks
        .iter()
        .find(|t| t.service == "solo")
        .unwrap()
        .node
        .clone()
        .unwrap();
    let i = usize::from(solo_node == "n2");
    let before = running_containers(h.runtime(i)).await.len();
    h.cut_off(i, true);
    for _ in 0..40 {
        h.step().await;
    }
    assert_eq!(
        running_containers(h.runtime(i)).await.len(),
        before,
        "4 s: still running"
    );
    for _ in 0..20 {
        h.step().await;
    }
    assert_eq!(
        running_containers(h.runtime(i)).await.len(),
        before - 1,
        "6 s: the singleton stopped, the others kept"
    );
}
