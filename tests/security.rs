//! End to end against a real `orion up` process (process runtime: no container is started):
//! the management token made at bootstrap, tokens and roles through the CLI, revocation,
//! browser forgeries, host access in specs, control and bidi characters.

mod support;

use std::os::unix::fs::MetadataExt;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use support::{NodeRuntime, Role, TestCluster, http_client, run_cli_as};

/// A started single node on the process runtime, with `orion_yaml` as its config when given.
async fn node(name: &str, orion_yaml: Option<&str>) -> TestCluster {
    let mut c = TestCluster::with_runtime(name, &[Role::Single], NodeRuntime::Process).await;
    if let Some(yaml) = orion_yaml {
        c.nodes[0].use_config(yaml);
    }
    c.start(0).await;
    c
}

/// `method path` on node 0 with `token` (none when empty), an optional `(content type, body)`
/// and extra headers; the status and JSON body.
async fn call(
    c: &TestCluster,
    token: &str,
    method: Method,
    path: &str,
    body: Option<(&str, String)>,
    headers: &[(&str, &str)],
) -> (StatusCode, Value) {
    let mut req = http_client(token).request(method, c.nodes[0].url(path));
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    if let Some((content_type, text)) = body {
        req = req.header("content-type", content_type).body(text);
    }
    let resp = req.send().await.expect("the node answers");
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn spec(name: &str) -> String {
    json!({"name": name, "image": "sh", "replicas": 0}).to_string()
}

/// The token a successful `orion token create` printed (its last line).
fn created_token(out: &std::process::Output) -> String {
    assert!(out.status.success(), "token create: {out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let token = stdout.lines().last().unwrap_or_default().trim().to_owned();
    assert!(token.starts_with("orion_"), "{stdout}");
    token
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_roles_and_revocation_through_the_cli_and_the_api() {
    let c = node("sec-tokens", None).await;
    let addr = c.nodes[0].api.to_string();

    // The management token: in a 0600 file of the data dir, and printed once on stdout.
    let credentials = c.nodes[0].data_dir.join("credentials");
    let mode = std::fs::metadata(&credentials).expect("credentials").mode();
    assert_eq!(mode & 0o777, 0o600);
    let stdout = std::fs::read_to_string(c.nodes[0].log.with_extension("stdout")).unwrap();
    assert_eq!(stdout.matches(&c.token).count(), 1, "{stdout}");
    assert!(
        !c.nodes[0].read_log().contains(&c.token),
        "the token is not logged"
    );

    // Without a token: 401 everywhere but /healthz; the CLI says what to do, exit code 7.
    let (status, _) = call(&c, "", Method::GET, "/healthz", None, &[]).await;
    assert_eq!(status, StatusCode::OK);
    for path in ["/v1/services", "/v1/nodes", "/metrics", "/v1/tokens"] {
        let (status, body) = call(&c, "", Method::GET, path, None, &[]).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}: {body}");
    }
    let out = run_cli_as(&addr, "", &["ps"]);
    assert_eq!(out.status.code(), Some(7), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("ORION_TOKEN"));

    // A read-only token reads, and is refused every write.
    let reader = created_token(&c.cli(
        0,
        &["token", "create", "--name", "dash", "--role", "read-only"],
    ));
    let (status, _) = call(&c, &reader, Method::GET, "/v1/services", None, &[]).await;
    assert_eq!(status, StatusCode::OK);
    let json_spec = Some(("application/json", spec("web")));
    let (status, body) = call(&c, &reader, Method::POST, "/v1/services", json_spec, &[]).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    for (method, path) in [
        (Method::DELETE, "/v1/services/web"),
        (Method::POST, "/v1/nodes/x/drain"),
        (Method::DELETE, "/v1/chaos"),
        (Method::GET, "/v1/tokens"),
    ] {
        let (status, body) = call(&c, &reader, method.clone(), path, None, &[]).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path}: {body}");
    }
    assert!(run_cli_as(&addr, &reader, &["ps"]).status.success());
    let out = run_cli_as(&addr, &reader, &["rm", "web"]);
    assert_eq!(out.status.code(), Some(7), "{out:?}");

    // An operator deploys; only admin manages tokens.
    let operator = created_token(&c.cli(
        0,
        &[
            "token", "create", "--name", "deployer", "--role", "operator",
        ],
    ));
    let json_spec = Some(("application/json", spec("web")));
    let (status, body) = call(&c, &operator, Method::POST, "/v1/services", json_spec, &[]).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let out = run_cli_as(&addr, &operator, &["token", "list"]);
    assert_eq!(out.status.code(), Some(7), "{out:?}");

    // Revoked: refused at once.
    let out = c.cli(0, &["token", "list", "-o", "json"]);
    assert!(out.status.success(), "{out:?}");
    let listed: Vec<Value> = serde_json::from_slice(&out.stdout).expect("JSON list");
    assert_eq!(listed.len(), 3, "management, dash, deployer: {listed:?}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains(&reader));
    let dash = listed.iter().find(|t| t["name"] == "dash").unwrap();
    let out = c.cli(0, &["token", "revoke", dash["id"].as_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    let (status, _) = call(&c, &reader, Method::GET, "/v1/services", None, &[]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_browser_writes_and_unsafe_specs_are_refused() {
    let c = node("sec-forgery", None).await;
    let admin = c.token.clone();

    // A form-like text/plain body, and a JSON write from a foreign page: refused, not stored.
    let plain = Some(("text/plain", spec("forged")));
    let (status, body) = call(&c, &admin, Method::POST, "/v1/services", plain, &[]).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{body}");
    let foreign = [("origin", "http://evil.example")];
    let json_spec = Some(("application/json", spec("forged")));
    let (status, body) = call(
        &c,
        &admin,
        Method::POST,
        "/v1/services",
        json_spec,
        &foreign,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let rebound = [("host", "evil.example")];
    let (status, _) = call(&c, &admin, Method::GET, "/v1/services", None, &rebound).await;
    assert_eq!(status, StatusCode::MISDIRECTED_REQUEST);
    let (status, body) = call(&c, &admin, Method::GET, "/v1/services/forged", None, &[]).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");

    // A bind of / without the allow-list: refused even for admin, naming the setting.
    let root = json!({"name": "root", "image": "sh", "replicas": 0, "volumes": ["/:/host"]});
    let body = Some(("application/json", root.to_string()));
    let (status, answer) = call(&c, &admin, Method::POST, "/v1/services", body, &[]).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    assert!(answer.to_string().contains("hostAccess"), "{answer}");

    // Control and bidi characters.
    for bad in [
        json!({"name": "web", "image": "sh\u{202E}", "replicas": 0}),
        json!({"name": "web", "image": "sh", "replicas": 0, "env": ["A=\u{1b}[2J"]}),
        json!({"name": "web", "image": "sh", "replicas": 0, "labels": {"a": "\u{2067}"}}),
    ] {
        let body = Some(("application/yaml", bad.to_string()));
        let (status, answer) = call(&c, &admin, Method::POST, "/v1/services", body, &[]).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {answer}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_allow_list_a_bind_of_root_is_for_admin_only() {
    let yaml = "hostAccess:\n  paths: [/]\n  features: [engineSocket, hostNetwork]\n";
    let c = node("sec-allow", Some(yaml)).await;
    let operator = created_token(&c.cli(
        0,
        &["token", "create", "--name", "ops", "--role", "operator"],
    ));
    let root = json!({"name": "root", "image": "sh", "replicas": 0, "volumes": ["/:/host:ro"]});
    let body = || Some(("application/json", root.to_string()));
    let (status, answer) = call(&c, &operator, Method::POST, "/v1/services", body(), &[]).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");
    let (status, answer) = call(&c, &c.token, Method::POST, "/v1/services", body(), &[]).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");

    // A bad allow-list is refused at start, naming the entry.
    let mut bad =
        TestCluster::with_runtime("sec-badallow", &[Role::Single], NodeRuntime::Process).await;
    bad.nodes[0].use_config("hostAccess:\n  paths: [data]\n");
    bad.nodes[0].spawn();
    let status = bad.nodes[0]
        .wait_exit(std::time::Duration::from_secs(30))
        .expect("the node refuses to start");
    assert!(!status.success());
    assert!(
        bad.nodes[0].read_log().contains("hostAccess.paths[0]"),
        "{}",
        bad.nodes[0].read_log()
    );
}
