//! Authorization, walked over the router's own route table: every route without a token, with
//! each role, with a revoked token; browser forgeries; host access in specs; scoped tokens.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use orion_core::model::spec::{HostAccessPolicy, HostFeature};
use orion_core::store::MemoryStore;
use serde_json::{Value, json};
use tower::ServiceExt;

use super::access::Access;
use super::routes::{ApiSettings, ApiState, route_table, router};
use super::tests::state_on;
use super::tokens::{self, Role, TokenRequest};

/// A new token of `role` (no scope) in `state`'s store.
pub(super) async fn token(state: &ApiState, role: Role) -> String {
    scoped_token(state, role, None).await
}

async fn scoped_token(state: &ApiState, role: Role, scope: Option<&str>) -> String {
    let request = TokenRequest {
        name: "test".into(),
        role,
        scope: scope.map(str::to_owned),
    };
    tokens::create(state.store.inner().as_ref(), &request)
        .await
        .expect("token created")
        .token
}

/// A concrete path for a route template.
fn concrete(template: &str) -> String {
    template
        .replace("{name}", "web")
        .replace("{id}", "web-0")
        .replace("{node}", "n2")
}

/// Sends `method path` with optional bearer token, extra headers and a JSON body.
async fn send(
    state: &ApiState,
    method: Method,
    path: &str,
    token: Option<&str>,
    headers: &[(header::HeaderName, &str)],
    body: Option<(&str, String)>,
) -> (StatusCode, Value) {
    let mut request = Request::builder().method(method).uri(path);
    if !headers.iter().any(|(name, _)| name == header::HOST) {
        request = request.header(header::HOST, "127.0.0.1:8000");
    }
    if let Some(token) = token {
        request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    for (name, value) in headers {
        request = request.header(name, *value);
    }
    let request = match body {
        Some((content_type, text)) => request
            .header(header::CONTENT_TYPE, content_type)
            .body(Body::from(text)),
        None => request.body(Body::empty()),
    }
    .expect("request");
    let response = router(state.clone())
        .oneshot(request)
        .await
        .expect("infallible");
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .expect("body");
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

fn state() -> ApiState {
    state_on(Arc::new(MemoryStore::new()), ApiSettings::default())
}

#[test]
fn the_table_covers_every_route_once_and_only_health_and_the_openapi_document_are_open() {
    let table = route_table();
    let entries = table.entries();
    assert!(entries.len() >= 30, "{} routes", entries.len());
    let mut seen = std::collections::BTreeSet::new();
    for e in entries {
        assert!(
            seen.insert((e.method.to_string(), e.path)),
            "{} {} twice",
            e.method,
            e.path
        );
        if e.access == Access::Open {
            assert!(
                e.path.ends_with("/healthz") || e.path == "/v1/openapi.json",
                "{} {} is open",
                e.method,
                e.path
            );
        }
        if e.method != Method::GET {
            assert!(
                e.access >= Access::Operate,
                "{} {} changes something and must need operator or admin",
                e.method,
                e.path
            );
        }
    }
}

#[tokio::test]
async fn every_route_but_health_answers_401_without_a_token_or_with_a_bad_one() {
    let state = state();
    for e in route_table().entries() {
        let path = concrete(e.path);
        let (status, body) = send(&state, e.method.clone(), &path, None, &[], None).await;
        if e.access == Access::Open {
            assert_eq!(status, StatusCode::OK, "{} {path}", e.method);
            continue;
        }
        assert_eq!(
            status,
            StatusCode::UNAUTHORIZED,
            "{} {path}: {body}",
            e.method
        );
        assert_eq!(body["code"], "unauthorized", "{body}");
        for bad in ["nonsense", "orion_0123456789abcdef_00"] {
            let (status, _) = send(&state, e.method.clone(), &path, Some(bad), &[], None).await;
            assert_eq!(
                status,
                StatusCode::UNAUTHORIZED,
                "{} {path} with {bad}",
                e.method
            );
        }
    }
}

#[tokio::test]
async fn each_role_gets_403_exactly_on_the_routes_above_it() {
    let state = state();
    for role in [Role::ReadOnly, Role::Operator, Role::Admin] {
        let token = token(&state, role).await;
        for e in route_table().entries() {
            let path = concrete(e.path);
            // Bodies that fail validation: nothing is changed, and the role check comes first.
            let body = (e.method != Method::GET && e.method != Method::DELETE)
                .then(|| ("application/json", "{}".to_owned()));
            let (status, answer) =
                send(&state, e.method.clone(), &path, Some(&token), &[], body).await;
            let needed = e.access.least_role(false);
            if needed.is_some_and(|least| role < least) {
                assert_eq!(
                    status,
                    StatusCode::FORBIDDEN,
                    "{} {path} as {role:?}: {answer}",
                    e.method
                );
                assert_eq!(answer["code"], "forbidden");
            } else {
                assert!(
                    status != StatusCode::FORBIDDEN && status != StatusCode::UNAUTHORIZED,
                    "{} {path} as {role:?}: {status} {answer}",
                    e.method
                );
            }
        }
    }
}

#[tokio::test]
async fn a_revoked_token_is_refused_and_the_last_admin_token_stays() {
    let state = state();
    let admin = token(&state, Role::Admin).await;
    let reader = token(&state, Role::ReadOnly).await;
    let (status, list) = send(&state, Method::GET, "/v1/tokens", Some(&admin), &[], None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        !list.to_string().contains("secret"),
        "no hashes listed: {list}"
    );
    let id_of = |role: &str| {
        list.as_array()
            .unwrap()
            .iter()
            .find(|t| t["role"] == role)
            .map(|t| t["id"].as_str().unwrap().to_owned())
            .unwrap()
    };
    let path = format!("/v1/tokens/{}", id_of("read-only"));
    let (status, _) = send(&state, Method::DELETE, &path, Some(&admin), &[], None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = send(
        &state,
        Method::GET,
        "/v1/services",
        Some(&reader),
        &[],
        None,
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "revoked");
    let path = format!("/v1/tokens/{}", id_of("admin"));
    let (status, body) = send(&state, Method::DELETE, &path, Some(&admin), &[], None).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
}

#[tokio::test]
async fn metrics_are_open_only_when_configured() {
    let closed = state();
    let (status, _) = send(&closed, Method::GET, "/metrics", None, &[], None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let settings = ApiSettings {
        metrics_without_token: true,
        ..ApiSettings::default()
    };
    let open = state_on(Arc::new(MemoryStore::new()), settings);
    let (status, _) = send(&open, Method::GET, "/metrics", None, &[], None).await;
    assert_eq!(status, StatusCode::OK);
}

fn spec_json(name: &str) -> String {
    json!({"name": name, "image": "nginx", "replicas": 1}).to_string()
}

#[tokio::test]
async fn forged_browser_writes_are_refused_even_with_a_token() {
    let state = state();
    let admin = token(&state, Role::Admin).await;
    let post = |headers: &'static [(header::HeaderName, &'static str)], ct: &'static str| {
        let (state, admin) = (state.clone(), admin.clone());
        async move {
            send(
                &state,
                Method::POST,
                "/v1/services",
                Some(&admin),
                headers,
                Some((ct, spec_json("web"))),
            )
            .await
        }
    };
    let (status, body) = post(&[], "text/plain").await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{body}");
    let (status, body) = post(
        &[(header::ORIGIN, "http://evil.example")],
        "application/json",
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, body) = post(&[(header::HOST, "evil.example:8000")], "application/json").await;
    assert_eq!(status, StatusCode::MISDIRECTED_REQUEST, "{body}");
    assert!(state.store.list_services().await.unwrap().is_empty());
    let (status, body) = post(
        &[(header::ORIGIN, "http://127.0.0.1:8000")],
        "application/json",
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "the API's own origin: {body}");
}

fn bind_root() -> String {
    json!({"name": "root", "image": "nginx", "volumes": ["/:/host"]}).to_string()
}

#[tokio::test]
async fn a_bind_of_root_needs_the_allow_list_and_the_admin_role() {
    let create = |state: ApiState, token: String| async move {
        let body = Some(("application/json", bind_root()));
        send(
            &state,
            Method::POST,
            "/v1/services",
            Some(&token),
            &[],
            body,
        )
        .await
    };
    let state = state();
    let (status, body) = create(state.clone(), token(&state, Role::Admin).await).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body.to_string().contains("hostAccess"), "{body}");

    let settings = ApiSettings {
        host_access: HostAccessPolicy {
            paths: vec!["/".into()],
            features: [HostFeature::EngineSocket].into(),
        },
        ..ApiSettings::default()
    };
    let allowed = state_on(Arc::new(MemoryStore::new()), settings);
    let operator = token(&allowed, Role::Operator).await;
    let (status, body) = create(allowed.clone(), operator).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(body["error"].as_str().unwrap().contains("admin"), "{body}");
    let (status, body) = create(allowed.clone(), token(&allowed, Role::Admin).await).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

#[tokio::test]
async fn control_and_bidi_characters_are_refused_through_the_api() {
    let state = state();
    let admin = token(&state, Role::Admin).await;
    for spec in [
        json!({"name": "web", "image": "nginx\u{202E}", "replicas": 1}),
        json!({"name": "web", "image": "nginx", "env": ["A=b\u{1b}[2J"]}),
        json!({"name": "web", "image": "nginx", "labels": {"team": "x\u{2066}"}}),
    ] {
        let body = Some(("application/json", spec.to_string()));
        let (status, answer) = send(
            &state,
            Method::POST,
            "/v1/services",
            Some(&admin),
            &[],
            body,
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{spec}: {answer}");
        assert!(answer.to_string().contains("bidirectional"), "{answer}");
    }
}

#[tokio::test]
async fn a_scoped_token_reaches_only_its_services() {
    let state = state();
    let scoped = scoped_token(&state, Role::Operator, Some("web")).await;
    let create = |name: &'static str| {
        let (state, scoped) = (state.clone(), scoped.clone());
        async move {
            let body = Some(("application/json", spec_json(name)));
            send(
                &state,
                Method::POST,
                "/v1/services",
                Some(&scoped),
                &[],
                body,
            )
            .await
        }
    };
    assert_eq!(create("web-a").await.0, StatusCode::CREATED);
    assert_eq!(create("db").await.0, StatusCode::FORBIDDEN);
    let get = |path: &'static str| send(&state, Method::GET, path, Some(&scoped), &[], None);
    assert_eq!(get("/v1/services/web-a").await.0, StatusCode::OK);
    assert_eq!(get("/v1/services/db").await.0, StatusCode::FORBIDDEN);
    assert_eq!(get("/v1/nodes").await.0, StatusCode::FORBIDDEN);
}
