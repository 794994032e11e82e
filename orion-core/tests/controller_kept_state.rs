//! The reconcile controller plans from its kept state (`WatchedState`): on the deterministic
//! cluster harness it reads the whole store once, then follows the watch, and still sees every
//! write made between rounds.

use orion_core::model::{DesiredState, ServiceSpec, Task, TaskState};
use orion_core::node::{Clock, ControllerConfig, QUIET_REPLAN};
use orion_core::testing::cluster::ClusterHarness;

fn running(tasks: &[Task]) -> usize {
    tasks
        .iter()
        .filter(|t| t.state == TaskState::Running)
        .count()
}

/// A 3-node harness (seeded with `seed`) running `replicas` replicas of `web`.
async fn deployed(seed: u64, replicas: u32) -> ClusterHarness {
    let mut h = ClusterHarness::new(3, seed, ControllerConfig::default());
    h.store
        .put_service(&ServiceSpec::new("web", "busybox", replicas))
        .await
        .unwrap();
    let want = replicas as usize;
    assert!(h.run_until(50, |t| running(t) == want).await, "deploy");
    h
}

#[tokio::test]
async fn rounds_follow_the_watch_and_see_every_write() {
    let mut h = deployed(7, 3).await;
    // A write between two rounds is planned from at the next round: scale up, then down.
    h.store
        .update_service("web", |s| {
            s.replicas = 5;
            Ok(())
        })
        .await
        .unwrap();
    assert!(h.run_until(50, |t| running(t) == 5).await, "scale up");
    h.store
        .update_service("web", |s| {
            s.replicas = 2;
            Ok(())
        })
        .await
        .unwrap();
    assert!(h.run_until(50, |t| running(t) == 2).await, "scale down");
    let (full_reads, applied) = h.node(0).controllers().reconciler.state_reads().await;
    assert_eq!(
        full_reads, 1,
        "the store was read in full once, then followed"
    );
    assert!(
        applied > 10,
        "the rounds applied the watched writes ({applied})"
    );
}

#[tokio::test]
async fn a_leader_that_steps_down_drops_its_copy_and_reads_again_when_it_leads() {
    let h = deployed(8, 2).await;
    let reconciler = &h.node(0).controllers().reconciler;
    reconciler.forget_state().await;
    let fence = h.node(0).controllers().claim(9).await.unwrap();
    let report = reconciler.round(&fence).await.unwrap();
    assert_eq!(
        report.actions, 0,
        "the fresh read plans nothing new: {report:?}"
    );
    assert_eq!(reconciler.state_reads().await.0, 2);
}

#[tokio::test]
async fn an_unchanged_quiet_state_is_not_planned_again_until_it_changes_or_time_says_so() {
    let h = deployed(9, 2).await;
    let reconciler = &h.node(0).controllers().reconciler;
    let fence = h.node(0).controllers().claim(9).await.unwrap();
    // The first round after the deploy plans (nothing to do), the next one skips planning.
    let planned = reconciler.round(&fence).await.unwrap();
    assert!(!planned.unchanged, "{planned:?}");
    assert_eq!(planned.actions, 0, "{planned:?}");
    let skipped = reconciler.round(&fence).await.unwrap();
    assert!(skipped.unchanged, "{skipped:?}");
    assert_eq!(skipped.revision, planned.revision);
    assert_eq!(
        skipped.retry_at, planned.retry_at,
        "the wake-up stays announced"
    );

    // Time alone: once QUIET_REPLAN has passed, the same state is planned again.
    h.clock.advance(QUIET_REPLAN.as_millis() as u64);
    let replanned = reconciler.round(&fence).await.unwrap();
    assert!(!replanned.unchanged, "{replanned:?}");
    assert!(reconciler.round(&fence).await.unwrap().unchanged);

    // A write: planned at once, and acted on.
    h.store
        .update_service("web", |s| {
            s.replicas = 3;
            Ok(())
        })
        .await
        .unwrap();
    let scaled = reconciler.round(&fence).await.unwrap();
    assert!(!scaled.unchanged, "{scaled:?}");
    assert_eq!(scaled.actions, 1, "{scaled:?}");
    // A round that acted is never skipped: the next one plans too.
    assert!(!reconciler.round(&fence).await.unwrap().unchanged);
}

#[tokio::test]
async fn a_skipped_round_still_announces_the_wake_up_it_waits_for() {
    let h = deployed(10, 1).await;
    // A crash-looping slot: its latest task failed (the third time in a row) and was retired,
    // so the slot is refilled only after the back-off: a quiet plan with a `retry_at`.
    let job = h
        .store
        .put_service(&ServiceSpec::new("job", "busybox", 1))
        .await
        .unwrap();
    let mut failed = Task::new("job", 0, job.spec_version, job.spec.resources.into());
    failed.state = TaskState::Failed;
    failed.desired = DesiredState::Shutdown;
    failed.attempt = 3;
    failed.updated_at = h.clock.now();
    h.store.put_task(&failed).await.unwrap();

    let reconciler = &h.node(0).controllers().reconciler;
    let fence = h.node(0).controllers().claim(10).await.unwrap();
    // The first round on the new service writes its rollout record; the next plans quietly.
    let first = reconciler.round(&fence).await.unwrap();
    assert_eq!(first.actions, 0, "{first:?}");
    let planned = reconciler.round(&fence).await.unwrap();
    assert!(!planned.unchanged, "{planned:?}");
    assert_eq!(planned.actions, 0, "{planned:?}");
    let wake = planned.retry_at.expect("the back-off's end");
    assert!(wake > h.clock.now(), "{planned:?}");
    let skipped = reconciler.round(&fence).await.unwrap();
    assert!(skipped.unchanged, "{skipped:?}");
    assert_eq!(skipped.retry_at, Some(wake), "the wake-up stays announced");

    // At the wake-up the same state is planned again, and the slot is refilled.
    h.clock.advance(wake - h.clock.now());
    let refilled = reconciler.round(&fence).await.unwrap();
    assert!(!refilled.unchanged, "{refilled:?}");
    assert_eq!(refilled.actions, 1, "{refilled:?}");
}
