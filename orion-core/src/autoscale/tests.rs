//! The autoscaler's maths, windows and cooldown with fake stats, and one sampler-to-controller
//! pass over a `MemoryStore` and a `FakeRuntime`.

use std::sync::Arc;

use super::*;
use crate::model::spec::ScalePolicy;
use crate::model::{Resources, ServiceSpec, Task, TaskState};
use crate::runtime::{ContainerSpec, ContainerStats, FakeRuntime, Runtime};
use crate::store::{ClusterStore, MemoryStore};
use crate::testing::cluster::ManualClock;

const SEC: u64 = 1000;

fn policy(min: u32, max: u32, cpu: Option<f64>, memory: Option<f64>) -> ScalePolicy {
    ScalePolicy {
        min_replicas: min,
        max_replicas: max,
        target_cpu: cpu,
        target_memory: memory,
        cooldown_seconds: 30,
        stabilization_seconds: 60,
    }
}

fn usage(cpu: f64, memory: f64) -> Option<ServiceUsage> {
    Some(ServiceUsage {
        replicas: 2,
        cpu_percent: cpu,
        memory_percent: memory,
        sampled_at: 0,
    })
}

#[test]
fn recommendation_is_ceil_of_current_times_usage_over_target() {
    let p = policy(1, 100, Some(50.0), None);
    let u = usage(100.0, 0.0).unwrap();
    assert_eq!(recommend(3, &u, &p).0, 6);
    let u = usage(70.0, 0.0).unwrap();
    assert_eq!(recommend(3, &u, &p).0, 5, "ceil(3 x 1.4) = ceil(4.2)");
    let u = usage(10.0, 0.0).unwrap();
    assert_eq!(recommend(4, &u, &p).0, 1, "ceil(4 x 0.2) = 1");
}

#[test]
fn within_ten_percent_of_target_recommends_no_change() {
    let p = policy(1, 100, Some(50.0), None);
    for used in [45.0, 50.0, 55.0] {
        assert_eq!(recommend(4, &usage(used, 0.0).unwrap(), &p).0, 4, "{used}");
    }
    assert_eq!(recommend(4, &usage(56.0, 0.0).unwrap(), &p).0, 5);
    assert_eq!(
        recommend(4, &usage(44.0, 0.0).unwrap(), &p).0,
        4,
        "ceil(3.52)"
    );
    assert_eq!(recommend(4, &usage(30.0, 0.0).unwrap(), &p).0, 3);
}

#[test]
fn the_larger_of_cpu_and_memory_wins() {
    let p = policy(1, 100, Some(50.0), Some(50.0));
    let (n, why) = recommend(2, &usage(25.0, 150.0).unwrap(), &p);
    assert_eq!(n, 6, "memory asks 6, cpu 1");
    assert!(why.contains("cpu") && why.contains("memory"), "{why}");
    assert_eq!(recommend(2, &usage(150.0, 25.0).unwrap(), &p).0, 6);
}

#[test]
fn no_target_means_cpu_at_eighty_percent() {
    let p = policy(1, 100, None, None);
    assert_eq!(recommend(1, &usage(160.0, 900.0).unwrap(), &p).0, 2);
}

#[test]
fn scale_up_is_immediate_and_clamped_to_max() {
    let p = policy(1, 3, Some(50.0), None);
    let mut w = RecommendationWindow::new(0);
    let e = evaluate(10 * SEC, 1, &p, usage(500.0, 0.0), None, &mut w);
    assert_eq!((e.to, e.outcome), (3, Outcome::ScaleUp), "{}", e.reason);
    assert!(e.reason.contains("bounded to 3"), "{}", e.reason);
    let e = evaluate(11 * SEC, 3, &p, usage(500.0, 0.0), None, &mut w);
    assert_eq!(
        (e.to, e.outcome),
        (3, Outcome::Steady),
        "at max: {}",
        e.reason
    );
}

#[test]
fn replicas_outside_the_bounds_are_clamped_at_once() {
    let p = policy(2, 4, Some(50.0), None);
    let mut w = RecommendationWindow::new(0);
    let e = evaluate(0, 1, &p, None, Some(0), &mut w);
    assert_eq!((e.to, e.outcome), (2, Outcome::Clamp));
    let e = evaluate(0, 9, &p, None, Some(0), &mut w);
    assert_eq!((e.to, e.outcome), (4, Outcome::Clamp));
}

#[test]
fn without_fresh_stats_nothing_changes() {
    let p = policy(1, 10, Some(50.0), None);
    let mut w = RecommendationWindow::new(0);
    let e = evaluate(1000 * SEC, 5, &p, None, None, &mut w);
    assert_eq!((e.to, e.outcome), (5, Outcome::NoStats));
}

#[test]
fn scale_down_waits_for_a_whole_window_and_takes_its_highest_recommendation() {
    // Window 60 s, cooldown 30 s; the leader started watching at 0.
    let p = policy(1, 10, Some(50.0), None);
    let mut w = RecommendationWindow::new(0);
    // Busy at 10 s (recommends 8), quiet afterwards (recommends 1).
    let e = evaluate(10 * SEC, 4, &p, usage(100.0, 0.0), None, &mut w);
    assert_eq!((e.to, e.outcome), (8, Outcome::ScaleUp));
    let last_change = Some(10 * SEC);
    // Quiet at 40 s: the window has not been watched in full (since 0, 60 s).
    let e = evaluate(40 * SEC, 8, &p, usage(5.0, 0.0), last_change, &mut w);
    assert_eq!((e.to, e.outcome), (8, Outcome::Stabilizing), "{}", e.reason);
    // At 65 s the window (5 s..65 s) still holds the 8 of 10 s.
    let e = evaluate(65 * SEC, 8, &p, usage(5.0, 0.0), last_change, &mut w);
    assert_eq!((e.to, e.outcome), (8, Outcome::Stabilizing), "{}", e.reason);
    // At 71 s it holds only the quiet 1s: scale down to 1 (the cooldown ended at 40 s).
    let e = evaluate(71 * SEC, 8, &p, usage(5.0, 0.0), last_change, &mut w);
    assert_eq!((e.to, e.outcome), (1, Outcome::ScaleDown), "{}", e.reason);
}

#[test]
fn a_peak_inside_the_window_holds_the_scale_down_at_its_level() {
    let p = policy(1, 10, Some(50.0), None);
    let mut w = RecommendationWindow::new(0);
    // 8 replicas; at 70 s a peak recommends 6 (less than 8, so no change), then quiet.
    let e = evaluate(70 * SEC, 8, &p, usage(37.5, 0.0), None, &mut w);
    assert_eq!(e.outcome, Outcome::ScaleDown, "{}", e.reason);
    assert_eq!(e.to, 6);
    let e = evaluate(
        80 * SEC,
        6,
        &p,
        usage(50.0 * 5.0 / 6.0, 0.0),
        Some(70 * SEC),
        &mut w,
    );
    // 6 x 0.833 = 5: but the highest over the window is 6 (at 70 s): held.
    assert_eq!((e.to, e.outcome), (6, Outcome::Stabilizing), "{}", e.reason);
    // At 131 s the 6 has left the window; the highest is the 5 of 80 s.
    let e = evaluate(131 * SEC, 6, &p, usage(5.0, 0.0), Some(70 * SEC), &mut w);
    assert_eq!((e.to, e.outcome), (5, Outcome::ScaleDown), "{}", e.reason);
}

#[test]
fn cooldown_holds_any_change_after_the_last_one() {
    let p = policy(1, 10, Some(50.0), None);
    let mut w = RecommendationWindow::new(0);
    let e = evaluate(100 * SEC, 2, &p, usage(100.0, 0.0), Some(80 * SEC), &mut w);
    assert_eq!((e.to, e.outcome), (2, Outcome::Cooldown), "{}", e.reason);
    assert!(e.reason.contains("cooldown 30s"), "{}", e.reason);
    let e = evaluate(110 * SEC, 2, &p, usage(100.0, 0.0), Some(80 * SEC), &mut w);
    assert_eq!((e.to, e.outcome), (4, Outcome::ScaleUp), "{}", e.reason);
}

#[test]
fn a_zero_window_scales_down_at_once() {
    let p = ScalePolicy {
        stabilization_seconds: 0,
        ..policy(1, 10, Some(50.0), None)
    };
    let mut w = RecommendationWindow::new(0);
    let e = evaluate(0, 4, &p, usage(10.0, 0.0), None, &mut w);
    assert_eq!((e.to, e.outcome), (1, Outcome::ScaleDown), "{}", e.reason);
}

#[test]
fn usage_is_weighted_by_replicas_and_ignores_stale_reports() {
    let report = |node: &str, n, cpu, at| UsageReport {
        service: "web".into(),
        node: node.into(),
        replicas: n,
        cpu_percent: cpu,
        memory_percent: 10.0,
        sampled_at: at,
    };
    let reports = [
        report("a", 3, 100.0, 100),
        report("b", 1, 20.0, 200),
        report("c", 5, 90.0, 10),
    ];
    let u = ServiceUsage::from_reports(&reports, 50).unwrap();
    assert_eq!(u.replicas, 4);
    assert_eq!(u.cpu_percent, 80.0);
    assert_eq!(u.sampled_at, 100);
    assert!(ServiceUsage::from_reports(&reports, 500).is_none());
}

#[test]
fn utilization_is_relative_to_the_tasks_request() {
    let stats = ContainerStats {
        cpu_percent: 25.0,
        memory_bytes: 32 << 20,
        memory_limit_bytes: None,
    };
    let (cpu, mem) = utilization(&stats, &Resources::new(500, 64 << 20));
    assert_eq!((cpu, mem), (50.0, 50.0));
    let (cpu, _) = utilization(&stats, &Resources::new(0, 0));
    assert_eq!(cpu, 0.0);
}

#[test]
fn the_decision_history_is_bounded() {
    let mut r = AutoscaleRecord::default();
    for i in 0..(MAX_DECISIONS as u32 + 5) {
        r.note(ScaleDecision {
            at: u64::from(i),
            from: i,
            to: i + 1,
            outcome: Outcome::ScaleUp,
            usage: None,
            target_cpu: None,
            target_memory: None,
            reason: String::new(),
        });
    }
    assert_eq!(r.decisions.len(), MAX_DECISIONS);
    assert_eq!(r.decisions[0].from, 5);
    assert_eq!(r.last_change_at, Some(u64::from(MAX_DECISIONS as u32 + 4)));
}

/// A running task of `service` on node `n1`, with a container in `fake` reporting `cpu_percent`.
async fn running_task(
    store: &ClusterStore<MemoryStore>,
    fake: &FakeRuntime,
    service: &str,
    slot: u32,
    cpu_percent: f64,
) {
    let mut task = Task::new(service, slot, 1, Resources::new(100, 64 << 20));
    let spec = ContainerSpec {
        name: format!("orion-{}", task.id),
        image: "img".into(),
        memory_bytes: 64 << 20,
        ..ContainerSpec::default()
    };
    let id = fake.create_and_start(&spec).await.unwrap().id;
    fake.set_stats(
        &id,
        ContainerStats {
            cpu_percent,
            memory_bytes: 16 << 20,
            memory_limit_bytes: Some(64 << 20),
        },
    )
    .unwrap();
    task.node = Some("n1".into());
    task.state = TaskState::Running;
    task.container_id = Some(id);
    store.put_task(&task).await.unwrap();
}

#[tokio::test]
async fn sampled_usage_scales_a_service_up_and_records_why() {
    let store = ClusterStore::new(MemoryStore::new());
    let fake = Arc::new(FakeRuntime::new());
    let clock = Arc::new(ManualClock::new());
    let mut spec = ServiceSpec::new("web", "img", 2);
    spec.scale_policy = Some(policy(1, 5, Some(50.0), None));
    store.put_service(&spec).await.unwrap();
    store
        .put_service(&ServiceSpec::new("plain", "img", 1))
        .await
        .unwrap();
    // Two replicas at 100 % of their 100m request (10 % of a core); one of a plain service.
    running_task(&store, &fake, "web", 0, 10.0).await;
    running_task(&store, &fake, "web", 1, 10.0).await;
    running_task(&store, &fake, "plain", 0, 10.0).await;

    let config = AutoscaleConfig::default();
    let sampler = UsageSampler::new("n1", store.clone(), fake.clone(), clock.clone(), config);
    let published = sampler.sample().await.unwrap();
    assert_eq!(
        published.len(),
        1,
        "only the autoscaled service: {published:?}"
    );
    assert_eq!(published[0].replicas, 2);
    assert!(
        (published[0].cpu_percent - 100.0).abs() < 1e-9,
        "{published:?}"
    );
    assert_eq!(published[0].memory_percent, 25.0);

    // Unchanged usage is not written again until a third of the staleness bound has passed.
    assert!(sampler.sample().await.unwrap().is_empty());
    clock.advance(config.stale_after.as_millis() as u64 / 3);
    assert_eq!(sampler.sample().await.unwrap().len(), 1);

    let controller = AutoscaleController::new(store.clone(), clock.clone(), config);
    let report = controller.round(None).await.unwrap();
    assert_eq!(report.scaled, vec![("web".to_owned(), 2, 4)]);
    let stored = store.get_service("web").await.unwrap().unwrap();
    assert_eq!(stored.spec.replicas, 4);
    assert_eq!(stored.spec_version, 1, "scaling keeps the spec version");
    let (record, _) = store.get_autoscale("web").await.unwrap().unwrap();
    assert_eq!(record.decisions.len(), 1);
    let d = &record.decisions[0];
    assert_eq!((d.from, d.to, d.outcome), (2, 4, Outcome::ScaleUp));
    assert_eq!(d.target_cpu, Some(50.0));
    assert!(d.reason.contains("cpu 100% of target 50%"), "{}", d.reason);

    // The next round is in the cooldown: held, recorded once, not written again.
    let report = controller.round(None).await.unwrap();
    assert!(report.scaled.is_empty());
    assert_eq!(report.written, 1);
    let report = controller.round(None).await.unwrap();
    assert_eq!(
        report.written, 0,
        "an unchanged outcome is not written again"
    );
    let (record, _) = store.get_autoscale("web").await.unwrap().unwrap();
    assert_eq!(record.last.unwrap().outcome, Outcome::Cooldown);

    // Stats go stale: no change, even after the cooldown.
    clock.advance(10 * 60 * SEC);
    let report = controller.round(None).await.unwrap();
    assert!(report.scaled.is_empty());
    let (record, _) = store.get_autoscale("web").await.unwrap().unwrap();
    assert_eq!(record.last.unwrap().outcome, Outcome::NoStats);
}

#[tokio::test]
async fn a_lost_fence_writes_nothing() {
    use crate::store::Compare;
    let store = ClusterStore::new(MemoryStore::new());
    let clock = Arc::new(ManualClock::new());
    let mut spec = ServiceSpec::new("web", "img", 1);
    spec.scale_policy = Some(policy(2, 5, Some(50.0), None));
    store.put_service(&spec).await.unwrap();
    let controller = AutoscaleController::new(store.clone(), clock, AutoscaleConfig::default());
    let stale = Compare::ModRevision("/orion/leader".into(), 12345);
    let report = controller.round(Some(&stale)).await.unwrap();
    assert_eq!(report.conflicts, 1);
    assert_eq!(
        store
            .get_service("web")
            .await
            .unwrap()
            .unwrap()
            .spec
            .replicas,
        1
    );
    let report = controller.round(None).await.unwrap();
    assert_eq!(
        report.scaled,
        vec![("web".to_owned(), 1, 2)],
        "clamped to min"
    );
}
