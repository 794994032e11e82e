use std::time::Duration;

use orion_core::membership::{Member, MemberState};
use orion_core::model::{Resources, Task, TaskState};
use orion_core::observe::Observer;

use super::*;

/// Every series name `/metrics` promises (docs/operations.md), as encoded.
pub(crate) const PROMISED: &[&str] = &[
    "orion_raft_term",
    "orion_raft_leader_changes_total",
    "orion_raft_commit_latency_seconds_bucket",
    "orion_raft_apply_lag",
    "orion_scheduler_placement_latency_seconds_bucket",
    "orion_scheduler_placements_total",
    "orion_scheduler_pending_tasks",
    "orion_members",
    "orion_membership_events_total",
    "orion_container_start_latency_seconds_bucket",
    "orion_container_start_failures_total",
    "orion_container_restarts_total",
    "orion_container_cpu_percent",
    "orion_container_memory_bytes",
    "orion_api_requests_total",
    "orion_api_request_duration_seconds_bucket",
];

fn sample(text: &str, prefix: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[test]
fn pending_reasons_are_the_first_known_reason_or_other() {
    let error = "no node can take it: 2 nodes: insufficient memory; 1 node: node not ready";
    assert_eq!(
        PENDING_REASONS[pending_reason_index(error)],
        reasons::INSUFFICIENT_MEMORY
    );
    assert_eq!(pending_reason_index("no nodes"), PENDING_REASONS.len());
    assert_eq!(pending_reason_index(""), PENDING_REASONS.len());
}

#[test]
fn every_promised_series_is_encoded_once_events_happened() {
    let m = Metrics::new();
    m.reconcile_planned(Duration::from_millis(3), 2, 1);
    m.container_started(Duration::from_millis(120));
    m.container_restarted();
    m.commit(Duration::from_micros(700));
    m.leader_changed();
    m.set_container_usage(&[("web".into(), 12.5, 4 << 20)]);
    m.api_requests
        .get_or_create(&RouteCodeLabels {
            method: "GET",
            route: "/v1/services".into(),
            code: 200,
        })
        .inc();
    m.api_latency
        .get_or_create(&RouteLabels {
            method: "GET",
            route: "/v1/services".into(),
        })
        .observe(0.01);
    let mut pending = Task::new("web", 0, 1, Resources::new(100, 1 << 20));
    pending.state = TaskState::Pending;
    pending.error = Some(format!("no node can take it: {}", reasons::INSUFFICIENT_CPU).into());
    let status = ClusterStatus {
        term: 4,
        commit_index: 10,
        applied_index: 7,
        members: vec![
            Member::alive("n1", Resources::new(1000, 1 << 30)),
            Member {
                state: MemberState::Suspect,
                ..Member::alive("n2", Resources::new(1000, 1 << 30))
            },
        ],
        ..ClusterStatus::default()
    };
    m.refresh(&status, Some(&[pending]));
    let text = m.encode();
    for name in PROMISED {
        assert!(text.contains(name), "{name} missing:\n{text}");
    }
    assert_eq!(sample(&text, "orion_raft_term "), Some(4.0));
    assert_eq!(sample(&text, "orion_raft_apply_lag "), Some(3.0));
    assert_eq!(
        sample(&text, r#"orion_members{state="suspect"}"#),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &text,
            r#"orion_scheduler_pending_tasks{reason="insufficient cpu"}"#
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &text,
            r#"orion_scheduler_placements_total{outcome="placed"}"#
        ),
        Some(2.0)
    );
    assert_eq!(
        sample(&text, r#"orion_container_memory_bytes{service="web"}"#),
        Some(f64::from(4u32 << 20))
    );
    assert!(text.ends_with("# EOF\n"), "OpenMetrics ends with # EOF");
}

#[test]
fn container_gauges_forget_services_no_longer_running() {
    let m = Metrics::new();
    m.set_container_usage(&[("web".into(), 1.0, 1)]);
    m.set_container_usage(&[("db".into(), 1.0, 1)]);
    let text = m.encode();
    assert!(!text.contains(r#"service="web""#), "{text}");
    assert!(text.contains(r#"service="db""#), "{text}");
}

#[test]
fn the_text_format_names_counters_after_their_total_sample() {
    let m = Metrics::new();
    m.container_restarted();
    let text = m.encode_prometheus_text();
    assert!(
        text.contains("# HELP orion_container_restarts_total ")
            && text.contains(
                "# TYPE orion_container_restarts_total counter\norion_container_restarts_total 1\n"
            ),
        "{text}"
    );
    assert!(text.contains("# TYPE orion_raft_term gauge\n"), "{text}");
    assert!(!text.contains("# EOF"), "{text}");
}

#[test]
fn dns_queries_are_counted_by_type_and_code_with_their_latency() {
    use orion_dns::QueryObserver;
    let m = Metrics::new();
    let text = m.encode_prometheus_text();
    assert!(
        text.contains("orion_dns_query_duration_seconds_bucket"),
        "{text}"
    );
    m.observe("A", "NOERROR", Duration::from_micros(300));
    m.observe("A", "NOERROR", Duration::from_micros(200));
    m.observe("other", "REFUSED", Duration::from_millis(2));
    let text = m.encode_prometheus_text();
    assert_eq!(
        sample(
            &text,
            "orion_dns_queries_total{qtype=\"A\",rcode=\"NOERROR\"}"
        ),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            "orion_dns_queries_total{qtype=\"other\",rcode=\"REFUSED\"}"
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(&text, "orion_dns_query_duration_seconds_count"),
        Some(3.0)
    );
}
