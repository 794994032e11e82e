//! One deploy is one trace (feature `otel`): the API write through the router, a reconcile round
//! and an agent pass of the library's node on the same in-memory store with the fake runtime,
//! the spans collected by the SDK's in-memory exporter. Checks every span's name and parent.

use std::collections::HashMap;
use std::sync::Arc;

use axum::http::{Method, Request, StatusCode, header};
use opentelemetry::trace::{SpanId, TraceId, TracerProvider as _};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use orion_core::membership::{Member, StaticMembership};
use orion_core::model::{Resources, TaskState};
use orion_core::node::Node;
use orion_core::runtime::FakeRuntime;
use orion_core::store::{ClusterStore, MemoryStore};
use tower::ServiceExt;
use tracing_subscriber::layer::SubscriberExt;

use super::routes::{ApiSettings, router};
use super::tests::state_on;

/// The caller's own trace: the deploy joins it.
const CALLER_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN: &str = "00f067aa0ba902b7";

fn named<'a>(spans: &'a [SpanData], name: &str) -> Vec<&'a SpanData> {
    spans.iter().filter(|s| s.name == name).collect()
}

fn one<'a>(spans: &'a [SpanData], name: &str) -> &'a SpanData {
    let found = named(spans, name);
    assert_eq!(found.len(), 1, "one {name}: {:#?}", names(spans));
    found[0]
}

fn names(spans: &[SpanData]) -> Vec<String> {
    spans.iter().map(|s| s.name.to_string()).collect()
}

#[tokio::test(flavor = "current_thread")]
async fn one_deploy_is_one_trace_from_api_write_to_running() {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let subscriber =
        tracing_subscriber::registry().with(crate::otel::layer(provider.tracer("orion-test")));
    let _default = tracing::subscriber::set_default(subscriber);
    orion_core::trace::install(Box::new(crate::otel::W3cPropagator));

    let store = MemoryStore::new();
    let state = state_on(Arc::new(store.clone()), ApiSettings::default());
    let token = super::access_tests::token(&state, super::tokens::Role::Admin).await;
    let spec = r#"{"name": "web", "image": "nginx:alpine", "replicas": 2}"#;
    let request = Request::builder()
        .method(Method::PUT)
        .uri("/v1/services/web")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header(header::CONTENT_TYPE, "application/json")
        .header("traceparent", format!("00-{CALLER_TRACE}-{CALLER_SPAN}-01"))
        .body(axum::body::Body::from(spec))
        .expect("request");
    let response = router(state).oneshot(request).await.expect("infallible");
    assert_eq!(response.status(), StatusCode::OK);

    let cluster = ClusterStore::new(store);
    let me = Member::alive("n1", Resources::new(2000, 4 << 30));
    let membership = Arc::new(StaticMembership::new(me, vec![]).expect("membership"));
    let node = Node::builder(
        "n1",
        cluster.clone(),
        membership,
        Arc::new(FakeRuntime::new()),
    )
    .build();
    let fence = node.controllers().claim(1).await.expect("claim");
    node.controllers()
        .liveness
        .step(&fence)
        .await
        .expect("liveness");
    node.controllers()
        .reconciler
        .round(&fence)
        .await
        .expect("round");
    node.agent().sync().await.expect("agent pass");
    let tasks = cluster.tasks_of_service("web").await.expect("tasks");
    assert_eq!(tasks.len(), 2);
    assert!(
        tasks.iter().all(|t| t.state == TaskState::Running),
        "{tasks:?}"
    );
    assert!(tasks.iter().all(|t| t.trace_parent.is_some()), "{tasks:?}");

    provider.force_flush().expect("flush");
    let spans = exporter.get_finished_spans().expect("spans");
    let trace = TraceId::from_hex(CALLER_TRACE).unwrap();
    let ours: Vec<SpanData> = spans
        .into_iter()
        .filter(|s| s.span_context.trace_id() == trace)
        .collect();
    let id = |s: &SpanData| s.span_context.span_id();

    let api = one(&ours, "orion.api.write");
    assert_eq!(api.parent_span_id, SpanId::from_hex(CALLER_SPAN).unwrap());
    assert_eq!(one(&ours, "orion.store.commit").parent_span_id, id(api));
    let reconcile = one(&ours, "orion.reconcile");
    assert_eq!(reconcile.parent_span_id, id(api));
    assert_eq!(one(&ours, "orion.schedule").parent_span_id, id(reconcile));
    let commit = one(&ours, "orion.assignment.commit");
    assert_eq!(commit.parent_span_id, id(reconcile));
    let starts = named(&ours, "orion.agent.start");
    assert_eq!(starts.len(), 2, "{:?}", names(&ours));
    assert!(starts.iter().all(|s| s.parent_span_id == id(commit)));
    let start_ids: Vec<SpanId> = starts.iter().map(|s| id(s)).collect();
    let running = named(&ours, "orion.task.running");
    assert_eq!(running.len(), 2, "{:?}", names(&ours));
    assert!(
        running
            .iter()
            .all(|s| start_ids.contains(&s.parent_span_id))
    );
    let mut counts: HashMap<String, usize> = HashMap::new();
    for s in &ours {
        *counts.entry(s.name.to_string()).or_default() += 1;
    }
    assert_eq!(
        counts.values().sum::<usize>(),
        9,
        "nothing else joins the trace: {counts:?}"
    );
}
