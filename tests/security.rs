//! End to end against a real `orion up` process (process runtime: no container is started):
//! the management token made at bootstrap, tokens and roles through the CLI, revocation,
//! browser forgeries, host access in specs, control and bidi characters.

mod support;

use std::os::unix::fs::MetadataExt;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use support::{NodeRuntime, Role, TestCluster, http_client, run_cli_as, wait_for};

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

// Node-to-node security: three-node clusters on the process runtime (no container started).

const JOIN_WAIT: std::time::Duration = std::time::Duration::from_secs(60);

/// A cluster whose node 0 has bootstrapped (the others not started yet, all `Join(node 0)`).
async fn bootstrapped(name: &str, nodes: usize) -> TestCluster {
    let mut roles = vec![Role::Bootstrap];
    roles.resize(nodes, Role::Bootstrap);
    let mut c = TestCluster::with_runtime(name, &roles, NodeRuntime::Process).await;
    let seed = c.nodes[0].raft;
    for n in c.nodes.iter_mut().skip(1) {
        n.role = Role::Join(seed);
    }
    c.start(0).await;
    c
}

/// Starts a throwaway node joining node 0 with `token`; waits for it to exit on its own (a
/// refused join) and returns its log.
fn refused_join(c: &TestCluster, name: &str, token: &str) -> String {
    let dir = c.dir().join(name);
    std::fs::create_dir_all(&dir).expect("dir");
    let mut node = support::NodeProc::new(name.into(), dir, Role::Join(c.nodes[0].raft));
    node.runtime = NodeRuntime::Process;
    node.join_token = token.into();
    node.spawn();
    let status = node
        .wait_exit(JOIN_WAIT)
        .unwrap_or_else(|| panic!("{name} was not refused: {}", node.read_log()));
    assert!(!status.success(), "{name}: {status}");
    let keys = node.data_dir.join("keys");
    assert!(!keys.join("node.crt").exists(), "{name} got a certificate");
    node.read_log()
}

/// Node `i`'s `/v1/cluster` voters and learners.
async fn raft_members(c: &TestCluster, i: usize) -> (Vec<String>, Vec<String>) {
    let (_, body) = c.request(i, Method::GET, "/v1/cluster", None).await;
    let list = |f: &str| {
        let mut v: Vec<String> = body[f]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    };
    (list("voters"), list("learners"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_ca_digest_aborts_before_the_token_is_sent_and_wrong_or_rotated_tokens_are_refused()
{
    let mut c = bootstrapped("joins", 2).await;
    let voter = c.voter_token.clone();
    let parts: Vec<&str> = voter.split("::").collect();
    assert_eq!(parts.len(), 4, "{voter}");

    // Another CA digest: the join aborts in the TLS handshake; node 0 never sees a request.
    let other_ca = format!("ORN1::{}::voter::{}", "ab".repeat(32), parts[3]);
    let log = refused_join(&c, "wrongca", &other_ca);
    assert!(log.contains("aborted before sending the token"), "{log}");
    let seed_log = c.nodes[0].read_log();
    assert!(
        !seed_log.contains("admission request") && !seed_log.contains("wrongca"),
        "node 0 saw the request: {seed_log}"
    );

    // The right CA, a secret that is not the cluster's: refused.
    let wrong = format!("ORN1::{}::voter::{}", parts[1], "cd".repeat(32));
    let log = refused_join(&c, "wrongsecret", &wrong);
    assert!(log.contains("not a current token"), "{log}");

    // Rotation: the old worker token is refused, the new one admits, as a worker.
    let out = c.cli(0, &["token", "rotate", "worker"]);
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let new_worker = stdout.lines().last().unwrap_or_default().trim().to_owned();
    assert!(
        new_worker.starts_with("ORN1::") && new_worker.contains("::worker::"),
        "{stdout}"
    );
    let log = refused_join(&c, "oldworker", &c.worker_token.clone());
    assert!(log.contains("rotated out"), "{log}");
    let out = c.cli(0, &["token", "rotate", "boss"]);
    assert!(!out.status.success(), "{out:?}");
    c.nodes[1].join_token = new_worker;
    c.start(1).await;
    let worker = c.nodes[1].id.clone();
    wait_for("the worker a learner", JOIN_WAIT, || async {
        match raft_members(&c, 0).await {
            (_, learners) if learners.contains(&worker) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;

    // A read-only API token may not rotate join tokens.
    let out = c.cli(
        0,
        &["token", "create", "--name", "viewer", "--role", "read-only"],
    );
    let viewer = created_token(&out);
    let out = run_cli_as(
        &c.nodes[0].api.to_string(),
        &viewer,
        &["token", "rotate", "voter"],
    );
    assert_eq!(out.status.code(), Some(7), "{out:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_stay_learners_and_restart_without_a_token() {
    let mut c = bootstrapped("workers", 3).await;
    for i in [1, 2] {
        c.nodes[i].join_token = c.worker_token.clone();
        c.start(i).await;
    }
    let voter = vec![c.nodes[0].id.clone()];
    let mut workers = vec![c.nodes[1].id.clone(), c.nodes[2].id.clone()];
    workers.sort();
    // Two caught-up learners would make three voters; workers never do.
    wait_for("both workers caught-up learners", JOIN_WAIT, || async {
        let (voters, learners) = raft_members(&c, 0).await;
        let (_, body) = c.request(2, Method::GET, "/v1/cluster", None).await;
        let (_, lead) = c.request(0, Method::GET, "/v1/cluster", None).await;
        if voters == voter && learners == workers && body["applied_index"] == lead["applied_index"]
        {
            Ok(())
        } else {
            Err(format!("{voters:?} {learners:?}"))
        }
    })
    .await;
    // Several autopilot rounds (one a second) later, and after a worker restarts without its
    // token (it uses its stored certificate), they are still learners.
    c.nodes[2].sigterm();
    c.nodes[2].join_token.clear();
    c.start(2).await;
    let (_, body) = c.request(2, Method::GET, "/v1/cluster", None).await;
    assert!(body["leader"].is_string(), "{body}");
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    assert_eq!(raft_members(&c, 0).await, (voter, workers));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_raft_port_refuses_plaintext_and_clients_without_a_node_certificate() {
    let c = bootstrapped("raftport", 1).await;
    let raft = c.nodes[0].raft;
    let plain = http_client("")
        .post(format!("http://{raft}/raft/snapshot"))
        .header("content-type", "application/octet-stream")
        .body(vec![0u8; 64])
        .send()
        .await;
    assert!(
        plain.as_ref().map_or(true, |r| !r.status().is_success()),
        "plaintext answered: {plain:?}"
    );
    let no_cert = reqwest::Client::builder()
        .tls_danger_accept_invalid_certs(true)
        .build()
        .expect("client");
    let resp = no_cert
        .post(format!("https://{raft}/raft/snapshot"))
        .header("content-type", "application/octet-stream")
        .body(vec![0u8; 64])
        .send()
        .await
        .expect("the TLS port answers");
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let text = resp.text().await.unwrap_or_default();
    assert!(text.contains("certificate of the cluster CA"), "{text}");

    // Key files are private.
    let keys = c.nodes[0].data_dir.join("keys");
    for file in ["ca.key", "node.key", "cluster.key"] {
        let mode = std::fs::metadata(keys.join(file)).expect(file).mode() & 0o777;
        assert_eq!(mode, 0o600, "{file}");
    }
    let creds = c.nodes[0].data_dir.join("credentials");
    assert_eq!(std::fs::metadata(&creds).unwrap().mode() & 0o777, 0o600);
}

#[test]
fn a_certificate_rotation_under_an_hour_is_refused() {
    let dir = tempfile::tempdir().expect("dir");
    let config = dir.path().join("orion.yaml");
    std::fs::write(&config, "security:\n  certRotation: 30m\n").unwrap();
    let out = std::process::Command::new(&*support::ORION_BIN)
        .args(["server", "--bootstrap", "--config"])
        .arg(&config)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .output()
        .expect("run orion");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("security.certRotation") && err.contains("at least 1h"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_is_tls_by_default_and_the_cli_trusts_the_ca_beside_its_credentials() {
    let dir = tempfile::tempdir().expect("dir");
    let mut node = support::NodeProc::new("tlsapi".into(), dir.path().to_path_buf(), Role::Single);
    node.runtime = NodeRuntime::Process;
    node.api_tls = true;
    node.spawn();
    let creds = node.data_dir.join("credentials");
    let api = node.api.to_string();
    // The CLI finds the token and keys/ca.crt through --credentials, and speaks https.
    let status = wait_for("the CLI over TLS", JOIN_WAIT, || async {
        let out = std::process::Command::new(&*support::ORION_BIN)
            .env_remove("ORION_TOKEN")
            .env_remove("ORION_CA")
            .args(["--addr", &api, "--credentials"])
            .arg(&creds)
            .args(["token", "list"])
            .output()
            .expect("run orion");
        if out.status.success() {
            Ok(out)
        } else {
            Err(format!("{out:?}"))
        }
    })
    .await;
    assert!(
        String::from_utf8_lossy(&status.stdout).contains("management"),
        "{status:?}"
    );
    // Plain HTTP to the TLS port gets no answer; a client trusting another CA is refused.
    let plain = http_client("")
        .get(format!("http://{api}/healthz"))
        .send()
        .await;
    assert!(plain.is_err(), "plain HTTP answered: {plain:?}");
    let ca = std::fs::read(node.data_dir.join("keys/ca.crt")).expect("ca.crt");
    let trusting = reqwest::Client::builder()
        .tls_certs_only(reqwest::Certificate::from_pem_bundle(&ca).expect("pem"))
        .build()
        .expect("client");
    let ok = trusting
        .get(format!("https://{api}/healthz"))
        .send()
        .await
        .expect("https answers");
    assert_eq!(ok.status(), StatusCode::OK);
    let default_roots = reqwest::Client::new()
        .get(format!("https://{api}/healthz"))
        .send()
        .await;
    assert!(default_roots.is_err(), "an unknown CA was trusted");
    node.sigterm();

    // A plain listener on a non-loopback address is refused with a clear error.
    let mut open =
        support::NodeProc::new("plainopen".into(), dir.path().to_path_buf(), Role::Single);
    open.runtime = NodeRuntime::Process;
    open.api = "0.0.0.0:0".parse().expect("addr");
    open.spawn();
    let status = open.wait_exit(JOIN_WAIT).expect("exits");
    assert!(!status.success());
    let log = open.read_log();
    assert!(
        log.contains("plainLoopback") && log.contains("not a loopback"),
        "{log}"
    );
}

/// A root CA and an intermediate it signed, as rcgen makes them; the intermediate's certificate
/// and key are written to `dir/<name>.crt` and `.key` (mode 0600). Returns (root PEM,
/// intermediate PEM, intermediate DER).
fn user_pki(dir: &std::path::Path, name: &str) -> (String, String, Vec<u8>) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    use std::os::unix::fs::PermissionsExt;
    let ca_params = |cn: &str| {
        let mut p = CertificateParams::new(Vec::<String>::new()).expect("params");
        p.distinguished_name.push(DnType::CommonName, cn);
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p
    };
    let root_key = KeyPair::generate().expect("key");
    let root_params = ca_params(&format!("{name} root"));
    let root = root_params.self_signed(&root_key).expect("root");
    let key = KeyPair::generate().expect("key");
    let issuer = Issuer::new(root_params, root_key);
    let inter = ca_params(&format!("{name} intermediate"))
        .signed_by(&key, &issuer)
        .expect("intermediate");
    std::fs::write(dir.join(format!("{name}.crt")), inter.pem()).expect("write");
    let key_file = dir.join(format!("{name}.key"));
    std::fs::write(&key_file, key.serialize_pem()).expect("write");
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    (root.pem(), inter.pem(), inter.der().to_vec())
}

/// An orion.yaml naming `dir/<name>.crt` and `.key` as `security.externalCa`.
fn external_ca_yaml(dir: &std::path::Path, name: &str) -> String {
    let path = |ext: &str| dir.join(format!("{name}.{ext}")).display().to_string();
    format!(
        "security:\n  externalCa:\n    certFile: {}\n    keyFile: {}\n",
        path("crt"),
        path("key")
    )
}

/// Whether a client trusting only `ca_pem` completes a TLS handshake with `addr` (any HTTP
/// answer counts: the node's certificate chained to that CA).
async fn handshake_trusting(ca_pem: &str, addr: std::net::SocketAddr) -> bool {
    let client = reqwest::Client::builder()
        .tls_certs_only(reqwest::Certificate::from_pem_bundle(ca_pem.as_bytes()).expect("pem"))
        .build()
        .expect("client");
    client
        .get(format!("https://{addr}/healthz"))
        .send()
        .await
        .is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_external_intermediate_ca_signs_the_node_certificates_and_join_tokens_pin_it() {
    use sha2::Digest;
    let mut c = TestCluster::with_runtime(
        "extca",
        &[Role::Bootstrap, Role::Bootstrap],
        NodeRuntime::Process,
    )
    .await;
    let seed = c.nodes[0].raft;
    c.nodes[1].role = Role::Join(seed);
    let dir = c.dir().to_path_buf();
    let (root, inter, inter_der) = user_pki(&dir, "pki");
    let (_, other, _) = user_pki(&dir, "other");
    c.nodes[0].use_config(&external_ca_yaml(&dir, "pki"));
    c.start(0).await;

    // The join tokens pin the external CA.
    let digest: String = sha2::Sha256::digest(&inter_der)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let parts: Vec<&str> = c.voter_token.split("::").collect();
    assert_eq!(parts.get(1), Some(&digest.as_str()), "{}", c.voter_token);

    // A joining node may not bring its own CA: it gets the cluster's at admission.
    c.nodes[1].use_config(&external_ca_yaml(&dir, "other"));
    c.nodes[1].join_token = c.voter_token.clone();
    c.nodes[1].spawn();
    let status = c.nodes[1].wait_exit(JOIN_WAIT).expect("refused");
    assert!(!status.success());
    let log = c.nodes[1].read_log();
    assert!(log.contains("gets the cluster's CA at admission"), "{log}");
    assert!(!c.nodes[1].data_dir.join("keys/node.crt").exists());

    // Without it, the voter token admits the node; its certificate chains to the intermediate
    // (and so to the user's root), not to another CA.
    c.nodes[1].extra_args.clear();
    c.start(1).await;
    let ca = std::fs::read_to_string(c.nodes[1].data_dir.join("keys/ca.crt")).expect("ca.crt");
    assert_eq!(ca.replace('\r', "").trim(), inter.replace('\r', "").trim());
    for n in [0, 1] {
        let raft = c.nodes[n].raft;
        assert!(
            handshake_trusting(&inter, raft).await,
            "node {n}: intermediate"
        );
        assert!(handshake_trusting(&root, raft).await, "node {n}: root");
        assert!(
            !handshake_trusting(&other, raft).await,
            "node {n}: another CA"
        );
    }

    // Node 0 restarted with another external CA than the one its data dir holds: refused.
    c.nodes[0].sigterm();
    c.nodes[0].extra_args.clear();
    c.nodes[0].use_config(&external_ca_yaml(&dir, "other"));
    c.nodes[0].spawn();
    let status = c.nodes[0].wait_exit(JOIN_WAIT).expect("refused");
    assert!(!status.success());
    let log = c.nodes[0].read_log();
    assert!(log.contains("already holds another cluster CA"), "{log}");

    // The same external CA, its key file gone (the key is in keys/ now): the node starts.
    std::fs::remove_file(dir.join("pki.key")).expect("rm");
    c.nodes[0].extra_args.clear();
    c.nodes[0].use_config(&external_ca_yaml(&dir, "pki"));
    c.start(0).await;
}
