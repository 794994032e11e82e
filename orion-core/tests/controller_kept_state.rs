//! The reconcile controller plans from its kept state (`WatchedState`): on the deterministic
//! cluster harness it reads the whole store once, then follows the watch, and still sees every
//! write made between rounds.

use orion_core::model::{ServiceSpec, Task, TaskState};
use orion_core::node::{ControllerConfig, QUIET_REPLAN};
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
