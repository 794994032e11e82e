//! End-to-end harness: real `orion` node processes on free loopback ports, temp data dirs, logs
//! captured to files, the real Docker engine.
//!
//! Contracts:
//! - Every node gets a unique id (`<test name>-<pid>-<n>-<i>`); every container it creates carries
//!   `io.orion.node=<that id>`. Dropping a [`TestCluster`] kills its nodes and runs `docker rm -f`
//!   on every container labelled with one of its node ids, also when the test panicked, and then
//!   prints each node's log when the test failed.
//! - Every wait is bounded in both attempts and time ([`wait_for`]); a timeout panics with what
//!   was awaited and the last observation.
//! - [`TestCluster::single`] / [`TestCluster::three`] fail (never skip) when Docker is missing.
//! - Nodes run the Docker runtime unless the cluster is made with [`TestCluster::with_runtime`]
//!   ([`NodeRuntime::Process`]: `--runtime process`, no Docker needed); dropping such a cluster
//!   SIGKILLs every process its nodes recorded.
#![allow(dead_code)]

mod auth;
mod node;

pub use auth::{http_client, read_join_tokens, wait_credentials};
pub use node::{NodeProc, NodeRuntime, Role};

use std::collections::BTreeSet;
use std::future::Future;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::LazyLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use orion_core::model::{Task, TaskState};
use orion_runtime::testing::{TEST_IMAGE, ensure_test_image};
use reqwest::{Method, StatusCode};
use serde_json::Value;

/// The `orion` binary of this checkout, built (or found up to date) by cargo once per test
/// process, in the same target dir and profile as the test itself. A bench comparing two builds
/// names another binary in `ORION_BENCH_BIN` (it must exist; nothing is built then).
pub static ORION_BIN: LazyLock<PathBuf> = LazyLock::new(|| match std::env::var_os(BENCH_BIN_ENV) {
    Some(path) => {
        let bin = PathBuf::from(path);
        assert!(
            bin.is_file(),
            "{BENCH_BIN_ENV}={} is not a file",
            bin.display()
        );
        bin
    }
    None => build_orion_bin(),
});

/// The environment variable naming the `orion` binary to run instead of this checkout's.
pub const BENCH_BIN_ENV: &str = "ORION_BENCH_BIN";

/// Runs `cargo build -p orion-bin --bin orion` for the profile this test was built with (the
/// workspace's tests live in the root package, which cannot name another package's binary), and
/// returns the binary's path. Cargo answers in well under a second when it is up to date.
fn build_orion_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("the test's own path");
    // target/<profile dir>/deps/<test>-<hash>
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("the test runs from target/<profile>/deps");
    let target_dir = profile_dir.parent().expect("target dir");
    let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") => "dev".to_owned(),
        Some(other) => other.to_owned(),
        None => panic!("cannot tell the profile from {}", exe.display()),
    };
    let status = Command::new(env!("CARGO"))
        .args([
            "build",
            "--quiet",
            "-p",
            "orion-bin",
            "--bin",
            "orion",
            "--profile",
        ])
        .arg(&profile)
        .arg("--target-dir")
        .arg(target_dir)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .expect("run cargo to build the orion binary");
    assert!(
        status.success(),
        "cargo build -p orion-bin failed: {status}"
    );
    let bin = profile_dir.join("orion");
    assert!(bin.exists(), "{} was not built", bin.display());
    bin
}
/// Interval between two polls of a condition.
pub const POLL: Duration = Duration::from_millis(100);

/// Polls `probe` every [`POLL`] until it yields `Ok(value)`, at most `timeout` and at most
/// `timeout / POLL + 1` times; panics naming `what` and the last `Err` observation otherwise.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let started = Instant::now();
    let max_attempts = timeout.as_millis() / POLL.as_millis() + 1;
    let mut last = String::from("(never probed)");
    for _ in 0..max_attempts {
        match probe().await {
            Ok(v) => return v,
            Err(e) => last = e,
        }
        if started.elapsed() >= timeout {
            break;
        }
        tokio::time::sleep(POLL).await;
    }
    panic!("timed out after {timeout:?} waiting for {what}; last observation: {last}");
}

/// A loopback address this test process keeps to itself (TCP and UDP), outside the ephemeral
/// range, so a node restarted on it finds it free.
pub use orion_core::testing::ports::reserve_loopback_port;

/// A spec (JSON) of `replicas` busybox httpd replicas serving `/www` on container port 8080,
/// published on a dynamic host port; it prints `hello-from-<name>` first (for log tests).
pub fn http_spec(name: &str, replicas: u32) -> String {
    serde_json::json!({
        "name": name,
        "image": TEST_IMAGE,
        "replicas": replicas,
        "command": ["sh", "-c", format!("echo hello-from-{name}; exec httpd -f -p 8080 -h /www")],
        "ports": [{"container_port": 8080}],
    })
    .to_string()
}

/// [`http_spec`] with one replica kept off the nodes running `target`, and within
/// `max_latency_ms` RTT of one of them (a hard network rule).
pub fn near_but_not_on_spec(name: &str, target: &str, max_latency_ms: f64) -> String {
    let mut spec: Value = serde_json::from_str(&http_spec(name, 1)).expect("valid JSON");
    spec["scheduling"] = serde_json::json!({
        "affinity": [{"type": "latency", "target": target, "max_latency_ms": max_latency_ms}],
        "anti_affinity": [{"type": "service", "service": target}],
    });
    spec.to_string()
}

/// Probes every 300 ms, a node's measurements published at most every 500 ms, and a cooldown of
/// 1 s before a replica may move: a cluster that follows network changes within seconds.
pub const FAST_NETWORK_YAML: &str = "network:
  monitoring: { scanInterval: 300ms, latencyProbes: 3, peersPerRound: 2, minPublishInterval: 500ms }
scheduler:
  replacement: { cooldown: 1s, tolerancePercent: 20, maxInFlight: 1 }
";

/// [`http_spec`] with `restart_policy` set (`no`, `always`, `on-failure`, `unless-stopped`).
pub fn http_spec_restart(name: &str, replicas: u32, restart_policy: &str) -> String {
    let mut spec: Value = serde_json::from_str(&http_spec(name, replicas)).expect("valid JSON");
    spec["restart_policy"] = Value::from(restart_policy);
    spec.to_string()
}

/// A set of node processes for one test, cleaned up on drop.
///
/// Once the first bootstrapping node has started, [`TestCluster::token`] holds the cluster's
/// management token (admin) from that node's `<data dir>/credentials`, and [`TestCluster::http`]
/// sends it with every request. [`TestCluster::request`] and [`TestCluster::cli`] (as
/// `ORION_TOKEN`) send the token of the node asked ([`NodeProc::token`]).
#[derive(Debug)]
pub struct TestCluster {
    pub nodes: Vec<NodeProc>,
    pub http: reqwest::Client,
    /// The management token; empty until a bootstrapping node has made it.
    pub token: String,
    /// The join tokens (voter, worker) of the first bootstrapped cluster, from its credentials
    /// file; [`Role::Join`] nodes are started with the voter token.
    pub voter_token: String,
    pub worker_token: String,
    tmp: tempfile::TempDir,
}

static CLUSTERS: AtomicU32 = AtomicU32::new(0);

impl TestCluster {
    /// Node processes (not yet started) for `roles`, named after `name`. Makes sure the test
    /// image is in the Docker engine first; fails when the engine is missing.
    pub async fn new(name: &str, roles: &[Role]) -> Self {
        Self::with_runtime(name, roles, NodeRuntime::Docker).await
    }

    /// [`TestCluster::new`] with nodes running `runtime`; Docker is needed only for
    /// [`NodeRuntime::Docker`].
    pub async fn with_runtime(name: &str, roles: &[Role], runtime: NodeRuntime) -> Self {
        if runtime == NodeRuntime::Docker {
            ensure_test_image()
                .await
                .unwrap_or_else(|e| panic!("the test image {TEST_IMAGE} cannot be loaded: {e}"));
        }
        let tmp = tempfile::Builder::new()
            .prefix("orion-e2e-")
            .tempdir()
            .expect("temp dir");
        let n = CLUSTERS.fetch_add(1, Ordering::Relaxed);
        let nodes = roles
            .iter()
            .enumerate()
            .map(|(i, role)| {
                let id = format!("{name}-{}-{n}-{}", std::process::id(), i + 1);
                let mut node = NodeProc::new(id, tmp.path().to_path_buf(), role.clone());
                node.runtime = runtime;
                node
            })
            .collect();
        TestCluster {
            nodes,
            http: http_client(""),
            token: String::new(),
            voter_token: String::new(),
            worker_token: String::new(),
            tmp,
        }
    }

    /// The temp dir holding this cluster's data dirs and logs (removed on drop).
    pub fn dir(&self) -> &std::path::Path {
        self.tmp.path()
    }

    /// One `orion up` node, started and healthy.
    pub async fn single(name: &str) -> Self {
        let mut c = Self::new(name, &[Role::Single]).await;
        c.start(0).await;
        c
    }

    /// Three `orion server` nodes (the first bootstraps, the others join it), all healthy, all
    /// listed `ready` by the first node's `/v1/nodes`, all three Raft voters, with a leader.
    pub async fn three(name: &str) -> Self {
        Self::three_configured(name, None).await
    }

    /// [`TestCluster::three`] with every node reading `orion_yaml` as its `--config`.
    pub async fn three_configured(name: &str, orion_yaml: Option<&str>) -> Self {
        let mut c = Self::new(name, &[Role::Bootstrap, Role::Bootstrap, Role::Bootstrap]).await;
        if let Some(yaml) = orion_yaml {
            for n in &mut c.nodes {
                n.use_config(yaml);
            }
        }
        let seed = c.nodes[0].raft;
        c.nodes[1].role = Role::Join(seed);
        c.nodes[2].role = Role::Join(seed);
        c.start(0).await;
        c.start(1).await;
        c.start(2).await;
        let ids: BTreeSet<String> = c.nodes.iter().map(|n| n.id.clone()).collect();
        wait_for(
            "all three nodes to be listed",
            Duration::from_secs(30),
            || async {
                let (status, body) = c.request(0, Method::GET, "/v1/nodes", None).await;
                let listed: BTreeSet<String> = body
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter(|n| {
                                n["status"]
                                    .as_str()
                                    .is_some_and(|s| s.eq_ignore_ascii_case("ready"))
                            })
                            .filter_map(|n| n["id"].as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default();
                if status == StatusCode::OK && ids.is_subset(&listed) {
                    Ok(())
                } else {
                    Err(format!("{status}: {body}"))
                }
            },
        )
        .await;
        // Every node, not only the first, must see the three voters, the same leader and the
        // same applied index: the leader lists a new voter as soon as it appends the change,
        // before the others have it. (Killing the leader in that window can stall elections;
        // see docs/consensus.md, "Known issues".)
        wait_for(
            "three Raft voters, one leader and one applied index on every node",
            Duration::from_secs(30),
            || async {
                let mut views = BTreeSet::new();
                for i in 0..c.nodes.len() {
                    let (status, body) = c.request(i, Method::GET, "/v1/cluster", None).await;
                    let voters: BTreeSet<String> = body["voters"]
                        .as_array()
                        .map(|a| {
                            a.iter()
                                .filter_map(|v| v.as_str().map(str::to_owned))
                                .collect()
                        })
                        .unwrap_or_default();
                    if status != StatusCode::OK || voters != ids || !body["leader"].is_string() {
                        return Err(format!("node {i}: {status}: {body}"));
                    }
                    views.insert((
                        body["leader"].to_string(),
                        body["applied_index"].to_string(),
                    ));
                }
                if views.len() == 1 {
                    Ok(())
                } else {
                    Err(format!(
                        "nodes disagree on (leader, applied index): {views:?}"
                    ))
                }
            },
        )
        .await;
        c
    }

    /// Spawns node `i` (again, with the same data dir) and waits until `/healthz` answers.
    pub async fn start(&mut self, i: usize) {
        if matches!(self.nodes[i].role, Role::Join(_)) && self.nodes[i].join_token.is_empty() {
            self.nodes[i].join_token = self.voter_token.clone();
        }
        self.nodes[i].spawn();
        self.wait_healthy(i).await;
        // A bootstrapping node has the token of the cluster it made (a wiped one makes a new
        // cluster, and a new token); a joining node takes the first bootstrapped cluster's.
        self.nodes[i].token = match self.nodes[i].role {
            Role::Join(_) => self.token.clone(),
            Role::Single | Role::Bootstrap => wait_credentials(&self.nodes[i]).await,
        };
        // Likewise the join tokens: the first bootstrapped cluster's.
        if matches!(self.nodes[i].role, Role::Bootstrap) && self.voter_token.is_empty() {
            (self.voter_token, self.worker_token) = read_join_tokens(&self.nodes[i]);
        }
        if self.token.is_empty() {
            self.token = self.nodes[i].token.clone();
            self.http = http_client(&self.token);
        }
    }

    /// Waits (at most 30 s) until node `i` answers `/healthz` with 200.
    pub async fn wait_healthy(&mut self, i: usize) {
        let url = self.nodes[i].url("/healthz");
        let http = self.http.clone();
        let id = self.nodes[i].id.clone();
        for _ in 0..300 {
            if !self.nodes[i].is_running() {
                panic!("node {id} exited before becoming healthy");
            }
            if let Ok(r) = http.get(&url).send().await
                && r.status() == StatusCode::OK
            {
                return;
            }
            tokio::time::sleep(POLL).await;
        }
        panic!("node {id} did not answer {url} within 30 s");
    }

    /// SIGTERM node `i`, then start it again on the same data dir.
    pub async fn restart_sigterm(&mut self, i: usize) {
        self.nodes[i].sigterm();
        self.start(i).await;
    }

    /// `kill -9` node `i`, then start it again on the same data dir.
    pub async fn restart_kill9(&mut self, i: usize) {
        self.nodes[i].kill9();
        self.start(i).await;
    }

    /// `method path` on node `i` with an optional `(content type, body)`; the status and the
    /// body as JSON (`Value::Null` when it is not JSON). Panics when the node is unreachable.
    pub async fn request(
        &self,
        i: usize,
        method: Method,
        path: &str,
        body: Option<(&str, Vec<u8>)>,
    ) -> (StatusCode, Value) {
        let mut req = self.http.request(method.clone(), self.nodes[i].url(path));
        if !self.nodes[i].token.is_empty() {
            req = req.bearer_auth(&self.nodes[i].token);
        }
        if let Some((ct, bytes)) = body {
            req = req.header("content-type", ct).body(bytes);
        }
        let resp = req
            .send()
            .await
            .unwrap_or_else(|e| panic!("{method} {path} on {}: {e}", self.nodes[i].id));
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Creates a service from a JSON spec on node `i`; panics unless 201.
    pub async fn deploy(&self, i: usize, spec_json: &str) {
        let (status, body) = self
            .request(
                i,
                Method::POST,
                "/v1/services",
                Some(("application/json", spec_json.as_bytes().to_vec())),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "deploy refused: {body}");
    }

    /// Sets the replica count of `service` through node `i`; panics unless 200.
    pub async fn scale(&self, i: usize, service: &str, replicas: u32) {
        let body = serde_json::json!({ "replicas": replicas }).to_string();
        let (status, body) = self
            .request(
                i,
                Method::POST,
                &format!("/v1/services/{service}/scale"),
                Some(("application/json", body.into_bytes())),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "scale refused: {body}");
    }

    /// The active (non-terminal) tasks of `service`, as node `i` reports them.
    pub async fn tasks(&self, i: usize, service: &str) -> Result<Vec<Task>, String> {
        let (status, body) = self
            .request(
                i,
                Method::GET,
                &format!("/v1/tasks?service={service}"),
                None,
            )
            .await;
        if status != StatusCode::OK {
            return Err(format!("GET /v1/tasks: {status} {body}"));
        }
        serde_json::from_value(body).map_err(|e| format!("task list does not decode: {e}"))
    }

    /// `Ok(tasks)` when `service` has exactly `n` active tasks, all running with a container
    /// and a published port, and each answering HTTP GET on 127.0.0.1:<port>.
    pub async fn serving_now(
        &self,
        i: usize,
        service: &str,
        n: usize,
    ) -> Result<Vec<Task>, String> {
        let tasks = self.tasks(i, service).await?;
        let summary: Vec<String> = tasks
            .iter()
            .map(|t| format!("{}:{:?}@{:?}", t.id, t.state, t.node))
            .collect();
        if tasks.len() != n || tasks.iter().any(|t| t.state != TaskState::Running) {
            return Err(format!("{} active: {summary:?}", tasks.len()));
        }
        for t in &tasks {
            if t.container_id.is_none() {
                return Err(format!("{} has no container id", t.id));
            }
            let port = host_port(t).ok_or_else(|| format!("{} has no published port", t.id))?;
            http_get_ok(&self.http, port).await?;
        }
        Ok(tasks)
    }

    /// Waits (bounded by `timeout`) until [`TestCluster::serving_now`] holds; returns the tasks.
    pub async fn wait_serving(
        &self,
        i: usize,
        service: &str,
        n: usize,
        timeout: Duration,
    ) -> Vec<Task> {
        wait_for(
            &format!("{n} serving replicas of {service}"),
            timeout,
            || self.serving_now(i, service, n),
        )
        .await
    }

    /// Runs the CLI against node `i`'s API, with the management token.
    pub fn cli(&self, i: usize, args: &[&str]) -> Output {
        run_cli_as(&self.nodes[i].api.to_string(), &self.nodes[i].token, args)
    }

    /// The node ids of this cluster.
    pub fn node_ids(&self) -> Vec<String> {
        self.nodes.iter().map(|n| n.id.clone()).collect()
    }

    /// Ids of running containers of `service` (on any node of this cluster).
    pub fn running_containers(&self, service: &str) -> BTreeSet<String> {
        self.node_ids()
            .iter()
            .flat_map(|node| {
                docker_ps(&[
                    &format!("label=io.orion.node={node}"),
                    &format!("label=io.orion.service={service}"),
                ])
            })
            .collect()
    }

    /// Ids of running containers labelled for node `i`.
    pub fn containers_on(&self, i: usize) -> BTreeSet<String> {
        docker_ps(&[&format!("label=io.orion.node={}", self.nodes[i].id)])
            .into_iter()
            .collect()
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        for n in &mut self.nodes {
            n.kill9();
        }
        for n in &self.nodes {
            if n.runtime == NodeRuntime::Process {
                orion_runtime::testing::kill_recorded_processes(&n.data_dir.join("processes"));
            }
        }
        let docker_nodes: Vec<String> = self
            .nodes
            .iter()
            .filter(|n| n.runtime == NodeRuntime::Docker)
            .map(|n| n.id.clone())
            .collect();
        for id in docker_nodes {
            let ids = docker_ps_all(&[&format!("label=io.orion.node={id}")]);
            if !ids.is_empty() {
                let _ = Command::new("docker")
                    .args(["rm", "-f"])
                    .args(&ids)
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status();
            }
        }
        if std::thread::panicking() {
            for n in &self.nodes {
                eprintln!("===== log of node {} ({}) =====", n.id, n.log.display());
                eprintln!("{}", n.read_log());
            }
        }
    }
}

/// The published host port of a task's first port.
pub fn host_port(t: &Task) -> Option<u16> {
    t.ports.first().map(|p| p.host_port).filter(|p| *p != 0)
}

/// GET http://127.0.0.1:<port>/ answers 200 with the test image's index page.
pub async fn http_get_ok(http: &reqwest::Client, port: u16) -> Result<(), String> {
    let url = format!("http://127.0.0.1:{port}/");
    let resp = http
        .get(&url)
        .send()
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    let status = resp.status();
    let body = resp.text().await.unwrap_or_default();
    if status == StatusCode::OK && body.contains("orion test image") {
        Ok(())
    } else {
        Err(format!("{url}: {status} {body:?}"))
    }
}

/// Runs `orion --addr <addr> <args>` without a token and returns its output.
pub fn run_cli(addr: &str, args: &[&str]) -> Output {
    run_cli_as(addr, "", args)
}

/// Runs `orion --addr <addr> <args>` with `ORION_TOKEN=<token>` (none when empty).
pub fn run_cli_as(addr: &str, token: &str, args: &[&str]) -> Output {
    let mut cmd = Command::new(&*ORION_BIN);
    cmd.env_remove("ORION_TOKEN")
        .env_remove("ORION_CREDENTIALS")
        .env_remove("ORION_CA");
    if !token.is_empty() {
        cmd.env("ORION_TOKEN", token);
    }
    cmd.arg("--addr")
        .arg(addr)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", ORION_BIN.display()))
}

fn docker_ids(all: bool, filters: &[&str]) -> Vec<String> {
    let mut cmd = Command::new("docker");
    cmd.args(["ps", "-q", "--no-trunc"]);
    if all {
        cmd.arg("-a");
    }
    for f in filters {
        cmd.args(["--filter", f]);
    }
    let out = cmd.output().expect("run the docker CLI");
    assert!(
        out.status.success(),
        "docker ps failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .filter(|l| !l.is_empty())
        .collect()
}

/// Full ids of running containers matching every `filters` entry (`docker ps --filter`).
pub fn docker_ps(filters: &[&str]) -> Vec<String> {
    docker_ids(false, filters)
}

/// Full ids of all containers (running or not) matching every `filters` entry.
pub fn docker_ps_all(filters: &[&str]) -> Vec<String> {
    docker_ids(true, filters)
}

/// `docker kill <id>`.
pub fn docker_kill(id: &str) {
    let out = Command::new("docker")
        .args(["kill", id])
        .output()
        .expect("run the docker CLI");
    assert!(
        out.status.success(),
        "docker kill {id}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `docker exec <container> sh -c <script>`: its stdout, or what went wrong.
pub fn docker_exec_sh(container: &str, script: &str) -> Result<String, String> {
    let out = Command::new("docker")
        .args(["exec", container, "sh", "-c", script])
        .output()
        .map_err(|e| format!("run the docker CLI: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "docker exec {container} {script:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}
