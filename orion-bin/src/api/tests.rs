//! Handler tests on an in-memory store and the fake runtime: atomic writes, bounds, ETags and
//! node allocation. (The server's own limits are tested end to end in tests/api_limits.rs.)

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Json;
use axum::body::to_bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use orion_core::model::spec::SpecLimits;
use orion_core::model::{Node, NodeStatus, Resources, ServiceSpec, Task, TaskState};
use orion_core::runtime::FakeRuntime;
use orion_core::store::{
    ClusterStore, KeyValue, MemoryStore, RangeResult, Revision, Store, StoreSnapshot, Txn,
    TxnResult, WatchStream, keys,
};

use super::routes::{
    ApiSettings, ApiState, ClusterInfo, drain_node, get_node, scale_service, undrain_node,
};
use super::types::{ClusterStatus, ScaleRequest, ServiceStatus};

struct NoCluster;

#[async_trait::async_trait]
impl ClusterInfo for NoCluster {
    async fn status(&self) -> ClusterStatus {
        ClusterStatus::default()
    }
}

/// A store that, once armed, lets another writer store `web` with image `nginx:2` just after
/// the next read of `web`'s spec version (a reader has then read a consistent old spec): the
/// interleaving that made scale revert an image update.
#[derive(Clone)]
struct InterleavingStore {
    inner: MemoryStore,
    armed: Arc<AtomicBool>,
}

#[async_trait::async_trait]
impl Store for InterleavingStore {
    async fn get(&self, key: &str) -> orion_core::Result<Option<KeyValue>> {
        let read = self.inner.get(key).await?;
        if key == keys::service_version("web") && self.armed.swap(false, Ordering::SeqCst) {
            let other = ClusterStore::new(self.inner.clone());
            let mut spec = other.get_service("web").await?.expect("web exists").spec;
            spec.image = "nginx:2".into();
            other.put_service(&spec).await?;
        }
        Ok(read)
    }
    async fn range(&self, prefix: &str) -> orion_core::Result<RangeResult> {
        self.inner.range(prefix).await
    }
    async fn txn(&self, txn: Txn) -> orion_core::Result<TxnResult> {
        self.inner.txn(txn).await
    }
    async fn watch(&self, prefix: &str, from: Revision) -> orion_core::Result<WatchStream> {
        self.inner.watch(prefix, from).await
    }
    async fn compact(&self, revision: Revision) -> orion_core::Result<()> {
        self.inner.compact(revision).await
    }
    async fn revision(&self) -> orion_core::Result<Revision> {
        self.inner.revision().await
    }
    async fn snapshot(&self) -> orion_core::Result<StoreSnapshot> {
        self.inner.snapshot().await
    }
    async fn restore(&self, snapshot: StoreSnapshot) -> orion_core::Result<()> {
        self.inner.restore(snapshot).await
    }
}

pub(super) fn state_on(store: Arc<dyn Store>, settings: ApiSettings) -> ApiState {
    ApiState {
        store: ClusterStore::new(store.clone()),
        local_store: store,
        node_id: "n1".into(),
        runtime: Arc::new(FakeRuntime::new()),
        cluster: Arc::new(NoCluster),
        http: reqwest::Client::new(),
        settings,
        scheduler: Arc::new(orion_core::scheduler::Scheduler::default_pipeline(
            Default::default(),
        )),
        metrics: Arc::new(crate::metrics::Metrics::new()),
        secrets: Some(Arc::new(orion_core::secrets::SecretSealer::new([3; 32]))),
        events: Arc::default(),
    }
}

/// A caller with the admin role and no scope.
pub(super) fn admin() -> super::tokens::Caller {
    super::tokens::Caller {
        token_id: "test".into(),
        role: super::tokens::Role::Admin,
        scope: None,
    }
}

/// Sends `method uri` through `app` as `token`, with a JSON-declared `body`; the answer's status,
/// headers and body.
pub(super) async fn send_as(
    app: axum::Router,
    token: &str,
    method: axum::http::Method,
    uri: &str,
    body: Vec<u8>,
) -> (StatusCode, HeaderMap, Vec<u8>) {
    use tower::ServiceExt;
    let request = axum::http::Request::builder()
        .method(method)
        .uri(uri)
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(axum::body::Body::from(body))
        .expect("request");
    let response = app.oneshot(request).await.expect("infallible");
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = to_bytes(response.into_body(), 1 << 20).await.expect("body");
    (status, headers, bytes.to_vec())
}

pub(super) async fn json(resp: Response) -> serde_json::Value {
    let bytes = to_bytes(resp.into_body(), 1 << 20).await.expect("body");
    serde_json::from_slice(&bytes).expect("a JSON body")
}

fn scale_to(n: u32) -> Option<Json<ScaleRequest>> {
    Some(Json(ScaleRequest { replicas: n }))
}

#[tokio::test]
async fn scale_keeps_an_image_update_that_lands_between_its_read_and_write() {
    let armed = Arc::new(AtomicBool::new(false));
    let store = InterleavingStore {
        inner: MemoryStore::new(),
        armed: armed.clone(),
    };
    let state = state_on(Arc::new(store), ApiSettings::default());
    state
        .store
        .put_service(&ServiceSpec::new("web", "nginx:1", 1))
        .await
        .unwrap();
    armed.store(true, Ordering::SeqCst);
    let resp = scale_service(State(state.clone()), Path("web".into()), scale_to(3))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(
        !armed.load(Ordering::SeqCst),
        "the concurrent write happened"
    );
    let stored = state.store.get_service("web").await.unwrap().unwrap();
    assert_eq!(
        stored.spec.image, "nginx:2",
        "the concurrent image update is kept"
    );
    assert_eq!(stored.spec.replicas, 3);
}

#[tokio::test]
async fn scale_beyond_the_limit_is_refused_naming_it_and_changes_nothing() {
    let settings = ApiSettings {
        limits: SpecLimits { max_replicas: 50 },
        ..ApiSettings::default()
    };
    let state = state_on(Arc::new(MemoryStore::new()), settings);
    state
        .store
        .put_service(&ServiceSpec::new("web", "nginx:1", 2))
        .await
        .unwrap();
    for n in [51, 1_000_000_000, u32::MAX] {
        let err = scale_service(State(state.clone()), Path("web".into()), scale_to(n))
            .await
            .unwrap_err();
        assert_eq!(err.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(err.body.error.contains("at most 50"), "{}", err.body.error);
    }
    let ok = scale_service(State(state.clone()), Path("web".into()), scale_to(50))
        .await
        .unwrap();
    let etag = ok.headers().get(header::ETAG).cloned().expect("an ETag");
    let body: ServiceStatus = serde_json::from_value(json(ok).await).unwrap();
    assert_eq!(body.desired, 50);
    assert_eq!(etag.to_str().unwrap(), format!("\"{}\"", body.revision));
}

#[tokio::test]
async fn a_single_node_reports_what_its_tasks_hold() {
    let state = state_on(Arc::new(MemoryStore::new()), ApiSettings::default());
    state
        .store
        .put_node(&Node::new("n1", Resources::new(4000, 8 << 30)))
        .await
        .unwrap();
    for (slot, st) in [
        (0, TaskState::Running),
        (1, TaskState::Scheduled),
        (2, TaskState::Failed),
    ] {
        let mut t = Task::new("web", slot, 1, Resources::new(250, 64 << 20));
        t.node = Some("n1".into());
        t.state = st;
        state.store.put_task(&t).await.unwrap();
    }
    let Json(node) = get_node(State(state), Path("n1".into())).await.unwrap();
    // The failed task holds nothing.
    assert_eq!(node.allocated, Resources::new(500, 128 << 20));
}

#[test]
fn if_match_takes_the_etag_forms() {
    let mut h = HeaderMap::new();
    assert_eq!(super::routes::if_match(&h).unwrap(), None);
    for v in ["\"17\"", "17", "W/\"17\""] {
        h.insert(header::IF_MATCH, v.parse().unwrap());
        assert_eq!(super::routes::if_match(&h).unwrap(), Some(17), "{v}");
    }
    h.insert(header::IF_MATCH, "\"abc\"".parse().unwrap());
    let err = super::routes::if_match(&h).unwrap_err();
    assert_eq!(err.status, StatusCode::BAD_REQUEST);
    assert!(err.body.error.contains("If-Match"), "{}", err.body.error);
}

/// The log proxy gives up on a node that accepts the connection but never answers: 504 naming
/// the node and the setting, within the proxy timeout (the test bounds the wait at 30 s).
#[tokio::test]
async fn log_proxy_gives_up_on_a_silent_node() {
    // Accepts connections (through the backlog) and never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let settings = ApiSettings {
        proxy_timeout: std::time::Duration::from_secs(1),
        ..ApiSettings::default()
    };
    let mut state = state_on(Arc::new(MemoryStore::new()), settings.clone());
    state.http = super::routes::proxy_client(&settings).unwrap();
    let mut n2 = Node::new("n2", Resources::new(1000, 1 << 30));
    n2.addresses.api = silent.local_addr().unwrap().to_string();
    state.store.put_node(&n2).await.unwrap();
    let mut task = Task::new("web", 0, 1, Resources::default());
    task.node = Some("n2".into());
    task.container_id = Some("c1".into());
    task.state = TaskState::Running;
    state.store.put_task(&task).await.unwrap();

    let q = axum::extract::Query(serde_json::from_value(serde_json::json!({})).unwrap());
    let call = super::logs::task_logs(State(state), Path(task.id.to_string()), q, HeaderMap::new());
    let err = tokio::time::timeout(std::time::Duration::from_secs(30), call)
        .await
        .expect("the proxy gives up by itself")
        .unwrap_err();
    assert_eq!(err.status, StatusCode::GATEWAY_TIMEOUT);
    assert!(
        err.body.error.contains("n2") && err.body.error.contains("api.proxyTimeout"),
        "{}",
        err.body.error
    );
    drop(silent);
}

#[test]
fn network_aware_true_is_refused_by_a_pipeline_without_the_network_scorer() {
    let body = "name: api\nimage: img:1\nscheduling:\n  networkAware: true\n";
    let plain = state_on(Arc::new(MemoryStore::new()), ApiSettings::default());
    let err = super::routes::spec_from_body(&plain, &admin(), &HeaderMap::new(), body).unwrap_err();
    assert_eq!(err.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        err.body.error.contains("scheduler.networkAware"),
        "{}",
        err.body.error
    );
    let mut aware = plain.clone();
    aware.scheduler = Arc::new(orion_netscore::scoring::network_aware_pipeline(
        Default::default(),
    ));
    let spec = super::routes::spec_from_body(&aware, &admin(), &HeaderMap::new(), body).unwrap();
    assert_eq!(spec.scheduling.network_aware, Some(true));
    let opt_out = body.replace("true", "false");
    let spec =
        super::routes::spec_from_body(&plain, &admin(), &HeaderMap::new(), &opt_out).unwrap();
    assert_eq!(spec.scheduling.network_aware, Some(false));
}

#[tokio::test]
async fn drain_is_undone_by_undrain_and_unknown_nodes_are_404() {
    let state = state_on(Arc::new(MemoryStore::new()), ApiSettings::default());
    state
        .store
        .put_node(&Node::new("n1", Resources::new(4000, 8 << 30)))
        .await
        .unwrap();
    let Json(n) = drain_node(State(state.clone()), Path("n1".into()))
        .await
        .unwrap();
    assert_eq!(n.status, NodeStatus::Draining);
    let Json(n) = undrain_node(State(state.clone()), Path("n1".into()))
        .await
        .unwrap();
    assert_eq!(n.status, NodeStatus::Ready);
    assert_eq!(
        state.store.get_node("n1").await.unwrap().unwrap().status,
        NodeStatus::Ready
    );
    // A down node stays down: undrain is not a way to mark a dead node ready.
    state
        .store
        .update_node("n1", |n| {
            n.status = NodeStatus::Down;
            Ok(())
        })
        .await
        .unwrap();
    let Json(n) = undrain_node(State(state.clone()), Path("n1".into()))
        .await
        .unwrap();
    assert_eq!(n.status, NodeStatus::Down);
    assert!(
        undrain_node(State(state), Path("nope".into()))
            .await
            .is_err()
    );
}

#[test]
fn scale_policy_and_every_update_strategy_field_are_accepted() {
    let state = state_on(Arc::new(MemoryStore::new()), ApiSettings::default());
    let body = "name: api\nimage: img:1\nscale_policy: {min_replicas: 1, max_replicas: 3, target_cpu: 70, stabilization_seconds: 30}\n";
    let spec = super::routes::spec_from_body(&state, &admin(), &HeaderMap::new(), body).unwrap();
    assert_eq!(spec.scale_policy.unwrap().stabilization_seconds, 30);
    // Replicas outside the autoscaler's bounds are refused, naming them.
    let outside =
        "name: api\nimage: img:1\nreplicas: 5\nscale_policy: {min_replicas: 1, max_replicas: 3}\n";
    let err =
        super::routes::spec_from_body(&state, &admin(), &HeaderMap::new(), outside).unwrap_err();
    assert_eq!(err.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(err.body.error.contains("(1-3)"), "{}", err.body.error);
    // Rollouts act on every field, so they are accepted.
    let ok = "name: api\nimage: img:1\nreplicas: 3\nupdate_strategy: {parallelism: 2, delay_seconds: 10, health_wait_seconds: 20, failure_action: pause, canary: 1}\n";
    let spec = super::routes::spec_from_body(&state, &admin(), &HeaderMap::new(), ok).unwrap();
    assert_eq!(spec.update_strategy.parallelism, 2);
    assert_eq!(spec.update_strategy.canary, 1);
    // ...within their bounds, named when broken.
    let bad =
        "name: api\nimage: img:1\nreplicas: 1\nupdate_strategy: {delay_seconds: 7200, canary: 2}\n";
    let err = super::routes::spec_from_body(&state, &admin(), &HeaderMap::new(), bad).unwrap_err();
    assert_eq!(err.status, StatusCode::UNPROCESSABLE_ENTITY);
    for field in ["update_strategy.delay_seconds", "update_strategy.canary"] {
        assert!(
            err.body.error.contains(field),
            "{field}: {}",
            err.body.error
        );
    }
}
