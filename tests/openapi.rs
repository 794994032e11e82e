//! End to end: the OpenAPI document a real `orion up` node serves at `/v1/openapi.json`, checked
//! by tools Orion did not write (PyPI's openapi-spec-validator and schemathesis, installed by
//! `make setup` into `.venv-tests/` at the repository root).
//!
//! A missing tool fails the test (never skips), as a missing Docker engine fails the harness:
//! CI must run these checks. Run `make setup` to install them.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use reqwest::{Method, StatusCode};
use support::{TestCluster, http_spec};

/// The virtualenv `make setup` creates, with the Python tools of these tests.
const VENV: &str = ".venv-tests";

/// The path of `tool` in the test virtualenv; panics (with what to run) when it is missing.
fn tool(name: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(VENV)
        .join("bin")
        .join(name);
    assert!(
        path.is_file(),
        "{} is missing: run `make setup`, which creates {VENV}/ with openapi-spec-validator and \
         schemathesis",
        path.display()
    );
    path
}

/// Fetches the document from node 0 without a token (the route is open), and writes it to
/// `dir/openapi.json`.
async fn fetch_document(cluster: &TestCluster) -> PathBuf {
    let resp = reqwest::get(cluster.nodes[0].url("/v1/openapi.json"))
        .await
        .expect("GET /v1/openapi.json");
    assert_eq!(resp.status(), StatusCode::OK);
    let text = resp.text().await.expect("the body");
    let doc: serde_json::Value = serde_json::from_str(&text).expect("the document is JSON");
    assert!(
        doc["openapi"]
            .as_str()
            .unwrap_or_default()
            .starts_with("3.")
    );
    let path = cluster.dir().join("openapi.json");
    std::fs::write(&path, text).expect("write the document");
    path
}

fn output_text(out: &std::process::Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[tokio::test]
async fn the_served_document_passes_openapi_spec_validator() {
    let cluster = TestCluster::single("openapi-valid").await;
    let document = fetch_document(&cluster).await;
    let out = Command::new(tool("openapi-spec-validator"))
        .arg(&document)
        .output()
        .expect("run openapi-spec-validator");
    let text = output_text(&out);
    assert!(out.status.success(), "openapi-spec-validator: {text}");
    assert!(text.contains(": OK"), "{text}");
}

/// Schemathesis against one real node on loopback with an admin token, bounded (20 examples per
/// operation, 150 s in all, deterministic data, one worker), checking only that no answer is a
/// server error (5xx). A service exists first, so the routes about one service reach a real one.
///
/// `DELETE /v1/tokens/{id}` is left out: schemathesis learns token ids from `GET /v1/tokens`
/// and, having created another admin token, revokes the one it runs with, after which every
/// request is a 401 and the rest of the run tests nothing.
#[tokio::test]
async fn schemathesis_finds_no_server_error() {
    let cluster = TestCluster::single("openapi-fuzz").await;
    cluster.deploy(0, &http_spec("web", 1)).await;
    let document = fetch_document(&cluster).await;
    let (status, _) = cluster
        .request(0, Method::GET, "/v1/services/web", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let base = cluster.nodes[0].url("");
    let base = base.trim_end_matches('/');
    let out = Command::new(tool("st"))
        .current_dir(cluster.dir())
        .env("NO_COLOR", "1")
        .args([
            "run",
            document.to_str().expect("a UTF-8 path"),
            "--url",
            base,
        ])
        .args([
            "--header",
            &format!("Authorization: Bearer {}", cluster.nodes[0].token),
        ])
        .args(["--checks", "not_a_server_error"])
        // Token routes would revoke the token this run uses; `/v1/events?watch=true` streams for
        // up to its `timeout` (10 min by default), past schemathesis's request timeout.
        .args(["--exclude-path-regex", "^/v1/tokens/|^/v1/events"])
        .args([
            "--max-examples",
            "20",
            "--max-time",
            "150",
            "--workers",
            "1",
        ])
        .args(["--generation-deterministic", "--request-timeout", "10"])
        .args(["--no-color"])
        .output()
        .expect("run schemathesis");
    let text = output_text(&out);
    assert!(
        out.status.success(),
        "schemathesis found failures (server errors or requests that did not complete):\n{text}"
    );
    assert!(text.contains("passed"), "{text}");
}
