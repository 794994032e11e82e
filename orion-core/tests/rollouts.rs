//! Rollouts on the deterministic cluster harness (MemoryStore, FakeRuntime, manual clock):
//! automatic rollback, pause, canary promote and undo, batch delays, restart, spec history, and
//! rollout state across a leader change.

use orion_core::model::spec::FailureAction;
use orion_core::model::{DesiredState, ServiceSpec, Task};
use orion_core::node::{Clock, ControllerConfig};
use orion_core::reconciler::{Rollout, RolloutPhase};
use orion_core::runtime::FaultPlan;
use orion_core::store::{ClusterStore, MemoryStore, Store, keys};
use orion_core::testing::cluster::{ClusterHarness, STEP_MS};

const STEPS: usize = 400;

fn web(replicas: u32, parallelism: u32) -> ServiceSpec {
    let mut spec = ServiceSpec::new("web", "web:1", replicas);
    spec.update_strategy.parallelism = parallelism;
    spec.update_strategy.health_wait_seconds = 3;
    spec
}

fn serving(tasks: &[Task], version: u64) -> usize {
    tasks
        .iter()
        .filter(|t| t.service == "web" && t.spec_version == version && t.is_serving())
        .count()
}

fn serving_any(tasks: &[Task]) -> usize {
    tasks
        .iter()
        .filter(|t| t.service == "web" && t.desired == DesiredState::Running && t.is_serving())
        .count()
}

async fn deployed(nodes: usize, spec: &ServiceSpec) -> ClusterHarness {
    let mut h = ClusterHarness::new(nodes, 7, ControllerConfig::default());
    h.store.put_service(spec).await.unwrap();
    let n = spec.replicas as usize;
    assert!(h.run_until(STEPS, |t| serving(t, 1) == n).await);
    assert!(
        h.run_until(STEPS, |_| true).await,
        "one more round records the first rollout"
    );
    h
}

async fn rollout(h: &ClusterHarness) -> Rollout {
    h.store
        .get_rollout("web")
        .await
        .unwrap()
        .expect("a rollout record")
        .0
}

fn bad_image_everywhere(h: &ClusterHarness, nodes: usize) {
    for i in 0..nodes {
        h.runtime(i)
            .set_faults(FaultPlan::new().unknown_image("web:bad"));
    }
}

async fn set_image(h: &ClusterHarness, image: &str) -> u64 {
    let image = image.to_owned();
    h.store
        .update_service("web", |s| {
            s.image = image.clone();
            Ok(())
        })
        .await
        .unwrap()
        .spec_version
}

#[tokio::test]
async fn a_bad_image_rolls_back_by_itself_and_replicas_minus_parallelism_keep_serving() {
    let mut h = deployed(2, &web(4, 2)).await;
    assert_eq!(rollout(&h).await.phase, RolloutPhase::Completed);
    bad_image_everywhere(&h, 2);
    assert_eq!(set_image(&h, "web:bad").await, 2);
    let mut least = usize::MAX;
    let mut back = false;
    for _ in 0..STEPS {
        h.step().await;
        let tasks = h.store.list_tasks().await.unwrap();
        least = least.min(serving_any(&tasks));
        let service = h.store.get_service("web").await.unwrap().unwrap();
        if service.spec_version == 1 && serving(&tasks, 1) == 4 && serving_any(&tasks) == 4 {
            back = true;
            break;
        }
    }
    assert!(back, "rolled back to version 1 with 4 replicas serving");
    assert!(
        least >= 2,
        "at most parallelism replicas down: {least} serving at worst"
    );
    let service = h.store.get_service("web").await.unwrap().unwrap();
    assert_eq!(service.spec.image, "web:1");
    let r = rollout(&h).await;
    assert_eq!((r.version, r.rolled_back_from), (1, Some(2)));
    assert!(
        r.reason.as_deref().unwrap().contains("version 2 failed"),
        "{r:?}"
    );
    // The replicas that kept serving were never replaced: at most 2 version-1 tasks ever ended.
    let tasks = h.store.list_tasks().await.unwrap();
    assert_eq!(
        tasks
            .iter()
            .filter(|t| t.spec_version == 2 && t.is_active())
            .count(),
        0
    );
    // The next change takes a version above the failed one: versions are never reused.
    assert_eq!(set_image(&h, "web:3").await, 3);
}

#[tokio::test]
async fn failure_action_pause_pauses_and_undo_goes_back() {
    let mut spec = web(3, 1);
    spec.update_strategy.failure_action = FailureAction::Pause;
    let mut h = deployed(2, &spec).await;
    bad_image_everywhere(&h, 2);
    set_image(&h, "web:bad").await;
    let mut paused = false;
    for _ in 0..STEPS {
        h.step().await;
        if rollout(&h).await.phase == RolloutPhase::Paused {
            paused = true;
            break;
        }
    }
    assert!(paused, "the failed rollout pauses");
    let r = rollout(&h).await;
    assert!(
        r.reason
            .as_deref()
            .unwrap()
            .contains("failure_action is pause"),
        "{r:?}"
    );
    // Paused: no further batch starts, however long it waits.
    let created = h.store.list_tasks().await.unwrap().len();
    for _ in 0..50 {
        h.step().await;
    }
    let tasks = h.store.list_tasks().await.unwrap();
    assert_eq!(
        tasks.iter().filter(|t| t.spec_version == 2).count(),
        1,
        "only the first batch (parallelism 1) was tried"
    );
    assert!(tasks.len() <= created + 1);
    assert_eq!(serving(&tasks, 1), 3);
    h.store
        .rollback_service("web", None, "undo", h.clock.now(), None)
        .await
        .unwrap();
    assert!(
        h.run_until(STEPS, |t| serving(t, 1) == 3
            && t.iter().all(|t| t.spec_version == 1 || !t.is_active()))
            .await
    );
    assert_eq!(
        h.store
            .get_service("web")
            .await
            .unwrap()
            .unwrap()
            .spec
            .image,
        "web:1"
    );
}

#[tokio::test]
async fn a_canary_waits_for_promotion_then_replaces_every_replica() {
    let mut spec = web(4, 2);
    spec.update_strategy.canary = 1;
    let mut h = deployed(2, &spec).await;
    set_image(&h, "web:2").await;
    assert!(h.run_until(STEPS, |t| serving(t, 2) == 1).await);
    for _ in 0..100 {
        h.step().await;
    }
    let tasks = h.store.list_tasks().await.unwrap();
    assert_eq!(serving(&tasks, 2), 1, "one canary, waiting");
    assert_eq!(serving(&tasks, 1), 3);
    let r = rollout(&h).await;
    assert!(r.canary_waiting(), "{r:?}");
    let now = h.clock.now();
    h.store
        .update_rollout("web", |r| r.promote(now))
        .await
        .unwrap();
    assert!(
        h.run_until(STEPS, |t| serving(t, 2) == 4 && serving_any(t) == 4)
            .await
    );
    assert!(h.run_until(STEPS, |_| true).await);
    assert_eq!(rollout(&h).await.phase, RolloutPhase::Completed);
    // Promoting again is refused: nothing waits.
    let err = h
        .store
        .update_rollout("web", |r| r.promote(now))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("no canary waiting"), "{err}");
}

#[tokio::test]
async fn a_canary_undone_returns_every_slot_to_the_previous_version() {
    let mut spec = web(3, 1);
    spec.update_strategy.canary = 1;
    let mut h = deployed(2, &spec).await;
    set_image(&h, "web:2").await;
    assert!(h.run_until(STEPS, |t| serving(t, 2) == 1).await);
    h.store
        .rollback_service("web", None, "canary undone", h.clock.now(), None)
        .await
        .unwrap();
    assert!(
        h.run_until(STEPS, |t| serving(t, 1) == 3
            && t.iter().all(|t| t.spec_version == 1 || !t.is_active()))
            .await
    );
    let r = rollout(&h).await;
    assert_eq!((r.version, r.rolled_back_from), (1, Some(2)));
}

#[tokio::test]
async fn batches_wait_for_the_previous_one_to_serve_plus_the_delay() {
    let mut spec = web(4, 2);
    spec.update_strategy.delay_seconds = 3;
    let mut h = deployed(2, &spec).await;
    set_image(&h, "web:2").await;
    assert!(
        h.run_until(STEPS, |t| serving(t, 2) == 4 && serving_any(t) == 4)
            .await
    );
    let mut created: Vec<u64> = h
        .store
        .list_tasks()
        .await
        .unwrap()
        .iter()
        .filter(|t| t.spec_version == 2)
        .map(|t| t.created_at)
        .collect();
    created.sort_unstable();
    assert_eq!(created.len(), 4, "no replica was replaced twice");
    assert_eq!(created[0], created[1], "a batch of 2 starts at once");
    assert!(
        created[2] >= created[1] + 3_000,
        "the second batch waits for the delay: {created:?}"
    );
    assert!(
        created[2] < created[1] + 3_000 + 50 * STEP_MS,
        "{created:?}"
    );
}

#[tokio::test]
async fn restart_replaces_every_replica_without_a_spec_change() {
    let mut h = deployed(2, &web(3, 1)).await;
    let before = h.store.get_service("web").await.unwrap().unwrap();
    let restarted = h.store.restart_service("web").await.unwrap();
    assert_eq!(restarted.spec_version, 2);
    assert_eq!(restarted.spec, before.spec);
    let mut least = usize::MAX;
    for _ in 0..STEPS {
        h.step().await;
        let tasks = h.store.list_tasks().await.unwrap();
        least = least.min(serving_any(&tasks));
        if serving(&tasks, 2) == 3 && serving_any(&tasks) == 3 {
            break;
        }
    }
    assert_eq!(serving(&h.store.list_tasks().await.unwrap(), 2), 3);
    assert!(least >= 2, "{least}");
}

#[tokio::test]
async fn the_history_keeps_the_configured_number_of_versions() {
    let store = ClusterStore::new(MemoryStore::new())
        .with_spec_history(3)
        .unwrap();
    let mut spec = ServiceSpec::new("web", "web:1", 1);
    for i in 1..=5 {
        spec.image = format!("web:{i}");
        assert_eq!(store.put_service(&spec).await.unwrap().spec_version, i);
    }
    // A scale-only change keeps the version and adds nothing.
    spec.replicas = 2;
    store.put_service(&spec).await.unwrap();
    let history = store.spec_history("web").await.unwrap();
    let versions: Vec<u64> = history.iter().map(|r| r.version).collect();
    assert_eq!(versions, [3, 4, 5]);
    assert_eq!(history[0].spec.image, "web:3");
    // Undo to a version no longer kept is refused, naming the kept ones.
    let err = store
        .rollback_service("web", Some(1), "undo", 0, None)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("3, 4, 5"), "{err}");
    let back = store
        .rollback_service("web", Some(3), "undo", 0, None)
        .await
        .unwrap();
    assert_eq!((back.spec_version, back.spec.image.as_str()), (3, "web:3"));
    assert_eq!(back.spec.replicas, 2, "the current replicas are kept");
    assert_eq!(store.restart_service("web").await.unwrap().spec_version, 6);
    assert!(
        ClusterStore::new(MemoryStore::new())
            .with_spec_history(0)
            .is_err()
    );
}

#[tokio::test]
async fn a_paused_rollout_stays_paused_across_a_leader_change() {
    let mut h = deployed(2, &web(3, 1)).await;
    set_image(&h, "web:2").await;
    assert!(h.run_until(STEPS, |t| serving(t, 2) == 1).await);
    let now = h.clock.now();
    h.store
        .update_rollout("web", |r| r.pause(now))
        .await
        .unwrap();
    h.elect(1);
    for _ in 0..100 {
        h.step().await;
    }
    let tasks = h.store.list_tasks().await.unwrap();
    assert!(
        serving(&tasks, 2) <= 2,
        "at most the batch in flight finished"
    );
    assert_eq!(rollout(&h).await.phase, RolloutPhase::Paused);
    let now = h.clock.now();
    h.store
        .update_rollout("web", |r| r.resume(now))
        .await
        .unwrap();
    assert!(
        h.run_until(STEPS, |t| serving(t, 2) == 3 && serving_any(t) == 3)
            .await
    );
}

#[tokio::test]
async fn a_failed_update_whose_previous_version_left_the_history_pauses() {
    let mut h = deployed(2, &web(2, 1)).await;
    h.store
        .inner()
        .delete(&keys::spec_history("web", 1))
        .await
        .unwrap();
    bad_image_everywhere(&h, 2);
    set_image(&h, "web:bad").await;
    assert!(
        h.run_until(STEPS, |_| true).await,
        "one round to start the first batch"
    );
    let mut paused = None;
    for _ in 0..STEPS {
        h.step().await;
        let r = rollout(&h).await;
        if r.phase == RolloutPhase::Paused {
            paused = Some(r);
            break;
        }
    }
    let r = paused.expect("paused, since it cannot roll back");
    assert!(
        r.reason.as_deref().unwrap().contains("cannot roll back"),
        "{r:?}"
    );
    let tasks = h.store.list_tasks().await.unwrap();
    assert_eq!(serving(&tasks, 1), 2, "the old replicas keep serving");
}
