//! `/v1/secrets` through the router: created sealed, answered by name only, never by value;
//! refusals for bad names and sizes, duplicates, unknown references and removal in use.

use std::sync::Arc;

use axum::Router;
use axum::http::{Method, StatusCode};
use orion_core::store::MemoryStore;

use super::routes::{ApiSettings, router};
use super::tests::state_on;

const VALUE: &[u8] = b"correct-horse-battery-staple";

/// The router and an admin token for it.
type App = (Router, String);

async fn call(app: &App, method: Method, uri: &str, body: Vec<u8>) -> (StatusCode, String) {
    let (app, token) = app;
    let (status, _, bytes) = super::tests::send_as(app.clone(), token, method, uri, body).await;
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

#[tokio::test]
async fn secrets_are_answered_by_name_only_and_refused_when_wrong() {
    let state = state_on(Arc::new(MemoryStore::new()), ApiSettings::default());
    let store = state.store.clone();
    let token = super::access_tests::token(&state, super::tokens::Role::Admin).await;
    let app = (router(state), token);
    let plain = String::from_utf8_lossy(VALUE).into_owned();

    let (status, body) = call(&app, Method::POST, "/v1/secrets/db", VALUE.to_vec()).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert!(
        body.contains("\"name\":\"db\"") && !body.contains(&plain),
        "{body}"
    );
    let sealed = store.get_secret("db").await.unwrap().unwrap();
    assert!(!sealed.ciphertext.windows(VALUE.len()).any(|w| w == VALUE));

    let (status, body) = call(&app, Method::POST, "/v1/secrets/db", b"x".to_vec()).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let (status, _) = call(&app, Method::POST, "/v1/secrets/Bad_Name", b"x".to_vec()).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, _) = call(
        &app,
        Method::POST,
        "/v1/secrets/big",
        vec![1; 64 * 1024 + 1],
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, _) = call(&app, Method::POST, "/v1/secrets/empty", Vec::new()).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

    for uri in ["/v1/secrets", "/v1/secrets/db"] {
        let (status, body) = call(&app, Method::GET, uri, Vec::new()).await;
        assert_eq!(status, StatusCode::OK, "{uri}: {body}");
        assert!(
            body.contains("\"db\"") && !body.contains(&plain),
            "{uri}: {body}"
        );
    }

    let unknown = br#"{"name": "web", "image": "x", "secrets": [{"name": "nope", "env": "X"}]}"#;
    let (status, body) = call(&app, Method::POST, "/v1/services", unknown.to_vec()).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body.contains("secrets[0].name"), "{body}");

    let uses = br#"{"name": "web", "image": "x", "secrets": [{"name": "db"}]}"#;
    let (status, body) = call(&app, Method::POST, "/v1/services", uses.to_vec()).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert!(!body.contains(&plain));
    let (status, body) = call(&app, Method::DELETE, "/v1/secrets/db", Vec::new()).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(body.contains("web"), "{body}");

    let (status, _) = call(&app, Method::DELETE, "/v1/services/web", Vec::new()).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = call(&app, Method::DELETE, "/v1/secrets/db", Vec::new()).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = call(&app, Method::DELETE, "/v1/secrets/db", Vec::new()).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
