//! End-to-end tests of the HTTP API's atomic writes and bounds, and of its server holding up
//! against idle and half-open connections, on real `orion up` processes.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use support::{Role, TestCluster, http_spec, wait_for};

const CONVERGE: Duration = Duration::from_secs(60);

fn body(v: &Value) -> Option<(&'static str, Vec<u8>)> {
    Some(("application/json", v.to_string().into_bytes()))
}

/// Two (and more) racing creates of one name: exactly one 201, the others 409.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_creates_give_one_created_and_conflicts() {
    let c = TestCluster::single("race").await;
    for round in 0..10 {
        let name = format!("race-{round}");
        let attempts = (0..4).map(|i| {
            let spec = json!({"name": name, "image": format!("img:{i}"), "replicas": 0});
            let c = &c;
            async move {
                c.request(0, Method::POST, "/v1/services", body(&spec))
                    .await
            }
        });
        let results = futures::future::join_all(attempts).await;
        let created = results
            .iter()
            .filter(|(s, _)| *s == StatusCode::CREATED)
            .count();
        let conflicts: Vec<&Value> = results
            .iter()
            .filter(|(s, _)| *s == StatusCode::CONFLICT)
            .map(|(_, b)| b)
            .collect();
        assert_eq!(created, 1, "round {round}: {results:?}");
        assert_eq!(conflicts.len(), 3, "round {round}: {results:?}");
        assert!(
            conflicts[0]["error"]
                .as_str()
                .is_some_and(|e| e.contains("already exists")),
            "{results:?}"
        );
    }
}

/// The `POST /tasks` form and `orion run` never replace an existing service.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn post_tasks_and_run_never_overwrite_a_service() {
    let c = TestCluster::single("nooverwrite").await;
    let spec = json!({
        "name": "web", "image": "img:1", "replicas": 5,
        "env": ["MODE=prod"], "labels": {"team": "a"},
    });
    c.deploy(0, &spec.to_string()).await;

    let (status, err) = c
        .request(
            0,
            Method::POST,
            "/tasks",
            body(&json!({"image": "img:2", "name": "web"})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{err}");
    let out = c.cli(0, &["run", "--image", "img:3", "--name", "web", "--detach"]);
    assert_eq!(out.status.code(), Some(4), "orion run: {out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("already exists"),
        "{out:?}"
    );

    let (status, svc) = c.request(0, Method::GET, "/v1/services/web", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(svc["spec"]["image"], "img:1", "{svc}");
    assert_eq!(svc["spec"]["replicas"], 5, "{svc}");
    assert_eq!(svc["spec"]["env"], json!(["MODE=prod"]), "{svc}");
    assert_eq!(svc["spec"]["labels"]["team"], "a", "{svc}");

    // A new name is still created, as before.
    let (status, created) = c
        .request(
            0,
            Method::POST,
            "/tasks",
            body(&json!({"image": "img:2", "name": "other"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
}

/// `replicas` beyond `cluster.limits.maxReplicas` is refused on create, replace and scale,
/// naming the limit; PUT with a stale If-Match is a conflict and the ETag is the revision.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replica_limit_and_optimistic_concurrency() {
    let mut c = TestCluster::new("limits", &[Role::Single]).await;
    c.nodes[0].use_config("cluster:\n  limits:\n    maxReplicas: 20\n");
    c.start(0).await;

    let huge = json!({"name": "big", "image": "img:1", "replicas": 4294967295u64});
    let (status, err) = c
        .request(0, Method::POST, "/v1/services", body(&huge))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{err}");
    assert!(err.to_string().contains("at most 20"), "{err}");

    c.deploy(
        0,
        &json!({"name": "web", "image": "img:1", "replicas": 0}).to_string(),
    )
    .await;
    let (status, err) = c
        .request(
            0,
            Method::POST,
            "/v1/services/web/scale",
            body(&json!({"replicas": 1_000_000_000})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{err}");
    assert!(
        err["error"]
            .as_str()
            .is_some_and(|e| e.contains("at most 20")),
        "{err}"
    );
    let too_many = json!({"name": "web", "image": "img:1", "replicas": 21});
    let (status, err) = c
        .request(0, Method::PUT, "/v1/services/web", body(&too_many))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{err}");

    // Optimistic concurrency: the ETag is the revision; a stale one is refused.
    let resp = c
        .http
        .get(c.nodes[0].url("/v1/services/web"))
        .send()
        .await
        .unwrap();
    let etag = resp.headers()["etag"].to_str().unwrap().to_owned();
    let first: Value = resp.json().await.unwrap();
    assert_eq!(etag, format!("\"{}\"", first["revision"]));
    let put = |image: &str, tag: &str| {
        c.http
            .put(c.nodes[0].url("/v1/services/web"))
            .header("if-match", tag)
            .json(&json!({"name": "web", "image": image, "replicas": 0}))
            .send()
    };
    let ok = put("img:2", &etag).await.unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    let stale = put("img:3", &etag).await.unwrap();
    assert_eq!(stale.status(), StatusCode::CONFLICT);
    let (_, svc) = c.request(0, Method::GET, "/v1/services/web", None).await;
    assert_eq!(
        svc["spec"]["image"], "img:2",
        "the stale write changed nothing"
    );
}

/// Opens `n` connections to `addr`; every other one sends half a request head and stops.
fn open_idle_connections(addr: std::net::SocketAddr, n: usize) -> Vec<TcpStream> {
    (0..n)
        .map(|i| {
            let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(10))
                .unwrap_or_else(|e| panic!("connection {i} to {addr}: {e}"));
            if i % 2 == 1 {
                s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
                    .expect("send half a head");
            }
            s
        })
        .collect()
}

/// A node limited to 512 open files, flooded with 700 idle or half-open connections it never
/// gets a request from, keeps answering /healthz, keeps running containers, never runs out of
/// file descriptors, and closes the idle connections itself; a request whose body never comes
/// is answered 408.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_and_half_open_connections_do_not_starve_the_node() {
    let mut c = TestCluster::new("flood", &[Role::Single]).await;
    c.nodes[0].use_config("api:\n  headerReadTimeout: 2s\n  requestTimeout: 3s\n");
    c.nodes[0].wrapper = vec!["prlimit".into(), "--nofile=512:512".into()];
    c.start(0).await;
    let api = c.nodes[0].api;

    let mut idle = open_idle_connections(api, 700);

    // /healthz answers, from fresh connections, while the flood is held open.
    wait_for(
        "/healthz during the flood",
        Duration::from_secs(90),
        || async {
            match c.http.get(c.nodes[0].url("/healthz")).send().await {
                Ok(r) if r.status() == StatusCode::OK => Ok(()),
                Ok(r) => Err(format!("{}", r.status())),
                Err(e) => Err(e.to_string()),
            }
        },
    )
    .await;
    // The node works: it deploys and runs a container while the flood is still held open.
    c.deploy(0, &http_spec("web", 1)).await;
    c.wait_serving(0, "web", 1, CONVERGE).await;

    // The server closed the first idle connections (EOF), not the client.
    for (i, s) in idle.iter_mut().take(4).enumerate() {
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut buf = [0u8; 512];
        let n = s
            .read(&mut buf)
            .unwrap_or_else(|e| panic!("idle connection {i}: {e}"));
        let answer = String::from_utf8_lossy(&buf[..n]);
        assert!(
            n == 0 || answer.starts_with("HTTP/1.1 408"),
            "connection {i}: {answer:?}"
        );
    }

    // A request whose body never comes gets a 408.
    let mut slow = TcpStream::connect_timeout(&api, Duration::from_secs(10)).unwrap();
    // (With the token, so the request passes authorization and the handler waits for the body.)
    let head = format!(
        "POST /v1/services HTTP/1.1\r\nHost: {api}\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{",
        c.token
    );
    slow.write_all(head.as_bytes()).unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let mut buf = [0u8; 512];
    let n = slow
        .read(&mut buf)
        .expect("an answer to the stalled request");
    let answer = String::from_utf8_lossy(&buf[..n]);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer:?}");

    let fds = c.nodes[0].open_fds().expect("the node's fd count");
    assert!(fds < 512, "the node holds {fds} fds, at its limit");
    let log = c.nodes[0].read_log();
    assert!(
        !log.contains("Too many open files") && !log.contains("os error 24"),
        "the node ran out of file descriptors"
    );
    drop(idle);
}
