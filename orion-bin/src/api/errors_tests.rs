//! Every error the router answers is a JSON `ApiError` (code, message, fields), for routes and
//! methods it does not know, bodies over the limit, and bad query strings and bodies; and
//! `/metrics` counts requests by matched route.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use orion_core::store::MemoryStore;
use serde_json::Value;
use tower::ServiceExt;

use super::routes::{ApiSettings, MAX_BODY_BYTES, router};
use super::tests::state_on;

async fn call(
    method: Method,
    uri: &str,
    body: Vec<u8>,
) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
    let state = state_on(Arc::new(MemoryStore::new()), ApiSettings::default());
    let token = super::access_tests::token(&state, super::tokens::Role::Admin).await;
    super::tests::send_as(router(state), &token, method, uri, body).await
}

/// Calls and checks that the answer is a JSON error with `status`, the matching code and a
/// message; returns the body.
async fn error(method: Method, uri: &str, body: Vec<u8>, status: StatusCode, code: &str) -> Value {
    let (got, headers, bytes) = call(method.clone(), uri, body).await;
    assert_eq!(
        got,
        status,
        "{method} {uri}: {}",
        String::from_utf8_lossy(&bytes)
    );
    assert!(
        headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json")),
        "{method} {uri}: not JSON: {headers:?}"
    );
    let json: Value = serde_json::from_slice(&bytes).expect("a JSON body");
    assert_eq!(json["code"], code, "{json}");
    assert!(
        json["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{json}"
    );
    json
}

#[tokio::test]
async fn unknown_routes_are_json_404s() {
    let json = error(
        Method::GET,
        "/v1/nope",
        vec![],
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    assert!(
        json["error"].as_str().unwrap().contains("/v1/nope"),
        "{json}"
    );
}

#[tokio::test]
async fn unknown_methods_are_json_405s_naming_the_allowed_ones() {
    let json = error(
        Method::PATCH,
        "/v1/services",
        vec![],
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
    )
    .await;
    assert!(json["error"].as_str().unwrap().contains("PATCH"), "{json}");
    let (_, headers, _) = call(Method::PATCH, "/v1/services", vec![]).await;
    let allow = headers.get(header::ALLOW).and_then(|v| v.to_str().ok());
    assert!(allow.is_some_and(|a| a.contains("POST")), "{headers:?}");
}

#[tokio::test]
async fn bodies_over_the_limit_are_json_413s() {
    let body = vec![b' '; MAX_BODY_BYTES + 1];
    error(
        Method::POST,
        "/v1/services",
        body,
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
    )
    .await;
}

#[tokio::test]
async fn bad_query_strings_are_json_400s_naming_the_field() {
    let json = error(
        Method::GET,
        "/v1/tasks?all=maybe",
        vec![],
        StatusCode::BAD_REQUEST,
        "bad_request",
    )
    .await;
    assert_eq!(json["fields"][0]["path"], "all", "{json}");
    assert_eq!(json["fields"][0]["value"], "maybe", "{json}");
}

#[tokio::test]
async fn bad_json_bodies_are_json_errors_naming_the_field() {
    let json = error(
        Method::POST,
        "/v1/services/web/scale",
        br#"{"replicas": "many"}"#.to_vec(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid",
    )
    .await;
    assert_eq!(json["fields"][0]["path"], "replicas", "{json}");
}

#[tokio::test]
async fn handler_errors_carry_a_code() {
    error(
        Method::GET,
        "/v1/services/missing",
        vec![],
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
}

#[tokio::test]
async fn metrics_count_requests_by_matched_route_not_raw_path() {
    let state = state_on(Arc::new(MemoryStore::new()), ApiSettings::default());
    let bearer = format!(
        "Bearer {}",
        super::access_tests::token(&state, super::tokens::Role::ReadOnly).await
    );
    let app = router(state);
    for uri in ["/v1/services/a", "/v1/services/b", "/v1/no/such/path"] {
        let request = Request::get(uri)
            .header(header::AUTHORIZATION, &bearer)
            .body(Body::empty())
            .expect("request");
        let _ = app.clone().oneshot(request).await.expect("infallible");
    }
    let request = Request::get("/metrics")
        .header(header::AUTHORIZATION, &bearer)
        .body(Body::empty())
        .expect("request");
    let response = app.oneshot(request).await.expect("infallible");
    assert_eq!(response.status(), StatusCode::OK);
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .expect("body");
    let text = String::from_utf8(bytes.to_vec()).expect("UTF-8");
    let line = text
        .lines()
        .find(|l| {
            l.starts_with("orion_api_requests_total{")
                && l.contains(r#"route="/v1/services/{name}""#)
                && l.contains(r#"code="404""#)
        })
        .unwrap_or_else(|| panic!("no request count by route template:\n{text}"));
    assert!(
        line.ends_with(" 2"),
        "both names counted under one route: {line}"
    );
    assert!(text.contains(r#"route="unmatched""#), "{text}");
    assert!(
        !text.contains("/v1/services/a"),
        "a raw path became a label:\n{text}"
    );
    assert!(
        !text.contains("/v1/no/such/path"),
        "a raw path became a label:\n{text}"
    );
}
