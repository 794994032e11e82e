//! End-to-end tests of `orion up --runtime process`: real `orion` node processes running real
//! host processes (the static busybox's `httpd`), no Docker. Deploy replicas that serve HTTP,
//! scale, kill a process and see it restarted, restart the node and see it adopt its processes.
//! Also: a wrong `runtime.containerdSocket` is refused naming the path and the setting.
//!
//! With the process runtime, `image` is the program's absolute path and `command` its arguments;
//! a port with `host_port: 0` gets a free host port, given to the program in `$PORT`.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use orion_core::model::Task;
use orion_core::runtime::{Runtime, labels};
use orion_runtime::ProcessRuntime;
use orion_runtime::testing::{INDEX_HTML, find_busybox};
use support::{NodeRuntime, Role, TestCluster, wait_for};

const CONVERGE: Duration = Duration::from_secs(60);

/// A directory served by the replicas: the same index page as the Docker test image.
fn web_root() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("index.html"), INDEX_HTML).expect("write index.html");
    dir
}

/// A spec (JSON) of `replicas` host busybox httpd processes serving `www` on 127.0.0.1 at the
/// dynamic port the runtime gives them in `$PORT`; each prints `hello-from-<name>` first.
fn process_http_spec(name: &str, replicas: u32, www: &Path, restart_policy: &str) -> String {
    let busybox = find_busybox().expect("the static busybox (busybox-static)");
    let busybox = busybox.display();
    serde_json::json!({
        "name": name,
        "image": busybox.to_string(),
        "replicas": replicas,
        "command": ["sh", "-c", format!(
            "echo hello-from-{name}; exec {busybox} httpd -f -p 127.0.0.1:$PORT -h {}",
            www.display()
        )],
        "ports": [{"container_port": 8080}],
        "restart_policy": restart_policy,
    })
    .to_string()
}

fn container_ids(tasks: &[Task]) -> BTreeSet<String> {
    tasks
        .iter()
        .filter_map(|t| t.container_id.clone())
        .collect()
}

/// Ids of the running processes of `service` that node `i` recorded.
async fn running_processes(c: &TestCluster, i: usize, service: &str) -> BTreeSet<String> {
    let runtime = ProcessRuntime::new(c.nodes[i].data_dir.join("processes"))
        .expect("the node's process state dir");
    let filter = BTreeMap::from([
        (labels::NODE.to_owned(), c.nodes[i].id.clone()),
        (labels::SERVICE.to_owned(), service.to_owned()),
    ]);
    runtime
        .list(&filter)
        .await
        .expect("list the node's processes")
        .into_iter()
        .filter(|p| p.status.is_running())
        .map(|p| p.id)
        .collect()
}

/// The supervisor pid (= process group) of a running process of node `i`.
async fn process_group(c: &TestCluster, i: usize, id: &str) -> u32 {
    let runtime = ProcessRuntime::new(c.nodes[i].data_dir.join("processes"))
        .expect("the node's process state dir");
    let info = runtime.inspect(id).await.expect("inspect the process");
    info.pid.expect("a running process has a pid")
}

async fn single_process_node(name: &str) -> TestCluster {
    let mut c = TestCluster::with_runtime(name, &[Role::Single], NodeRuntime::Process).await;
    c.start(0).await;
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_serve_http_scale_and_a_killed_process_is_restarted() {
    let www = web_root();
    let c = single_process_node("proc-scale").await;
    c.deploy(0, &process_http_spec("web", 3, www.path(), "always"))
        .await;
    let tasks = c.wait_serving(0, "web", 3, CONVERGE).await;
    let ports: BTreeSet<u16> = tasks.iter().filter_map(support::host_port).collect();
    assert_eq!(ports.len(), 3, "each replica has its own host port");
    assert_eq!(running_processes(&c, 0, "web").await, container_ids(&tasks));

    c.scale(0, "web", 5).await;
    let tasks = c.wait_serving(0, "web", 5, CONVERGE).await;
    assert_eq!(running_processes(&c, 0, "web").await, container_ids(&tasks));

    c.scale(0, "web", 2).await;
    let tasks = c.wait_serving(0, "web", 2, CONVERGE).await;
    let kept = container_ids(&tasks);
    wait_for("surplus processes to be removed", CONVERGE, || async {
        let running = running_processes(&c, 0, "web").await;
        if running == kept {
            Ok(())
        } else {
            Err(format!("running {running:?}, tasks {kept:?}"))
        }
    })
    .await;

    // Kill one replica's whole process group, as an OOM kill or a crash would.
    let victim = tasks[0].clone();
    let killed = victim.container_id.clone().expect("container id");
    let group = process_group(&c, 0, &killed).await;
    let status = Command::new("kill")
        .args(["-KILL", "--", &format!("-{group}")])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -KILL -{group}");
    let after = wait_for(
        "the killed process to be restarted or replaced",
        CONVERGE,
        || async {
            let tasks = c.serving_now(0, "web", 2).await?;
            match tasks.iter().find(|t| t.id == victim.id) {
                Some(t)
                    if t.restarts == victim.restarts
                        && t.container_id.as_ref() == Some(&killed) =>
                {
                    Err(format!("{} not yet restarted", t.id))
                }
                _ => Ok(tasks),
            }
        },
    )
    .await;
    assert_eq!(running_processes(&c, 0, "web").await, container_ids(&after));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarted_node_adopts_its_processes() {
    let www = web_root();
    let mut c = single_process_node("proc-adopt").await;
    c.deploy(0, &process_http_spec("keep", 3, www.path(), "no"))
        .await;
    let ids = container_ids(&c.wait_serving(0, "keep", 3, CONVERGE).await);

    c.nodes[0].sigterm();
    assert_eq!(
        running_processes(&c, 0, "keep").await,
        ids,
        "SIGTERM leaves the processes running"
    );
    c.start(0).await;
    assert_adopted(
        &c,
        "keep",
        &ids,
        &process_http_spec("probe-a", 1, www.path(), "no"),
    )
    .await;

    c.nodes[0].kill9();
    assert_eq!(
        running_processes(&c, 0, "keep").await,
        ids,
        "kill -9 leaves the processes running"
    );
    c.start(0).await;
    assert_adopted(
        &c,
        "keep",
        &ids,
        &process_http_spec("probe-b", 1, www.path(), "no"),
    )
    .await;
}

/// After a restart, proves a full agent and controller pass happened by deploying a probe
/// service, then checks that `service` kept exactly `expected` processes.
async fn assert_adopted(c: &TestCluster, service: &str, expected: &BTreeSet<String>, probe: &str) {
    let probe_name = serde_json::from_str::<serde_json::Value>(probe).expect("probe spec")["name"]
        .as_str()
        .expect("probe name")
        .to_owned();
    c.deploy(0, probe).await;
    c.wait_serving(0, &probe_name, 1, CONVERGE).await;
    let tasks = c.wait_serving(0, service, expected.len(), CONVERGE).await;
    assert_eq!(
        &container_ids(&tasks),
        expected,
        "tasks keep their processes"
    );
    assert_eq!(
        &running_processes(c, 0, service).await,
        expected,
        "no process was killed or started twice"
    );
}

/// `runtime.containerdSocket` is read: a path where nothing listens stops the node at start with
/// an error naming the path and the setting.
#[test]
fn a_wrong_containerd_socket_is_named_with_its_setting() {
    let dir = tempfile::tempdir().expect("temp dir");
    let socket = dir.path().join("no-such-containerd.sock");
    let config = dir.path().join("orion.yaml");
    std::fs::write(
        &config,
        format!(
            "runtime:\n  containerBackend: containerd\n  containerdSocket: {}\n",
            socket.display()
        ),
    )
    .expect("write orion.yaml");
    let node = support::NodeProc::new("sock-1".into(), dir.path().to_path_buf(), Role::Single);
    let mut child = Command::new(&*support::ORION_BIN)
        .args(["up", "--config"])
        .arg(&config)
        .args(["--node-id", "sock-1", "--data-dir"])
        .arg(&node.data_dir)
        .args(["--api-addr", &node.api.to_string()])
        .args(["--raft-addr", &node.raft.to_string()])
        .args(["--gossip-addr", &node.gossip.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn orion up");
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for orion up") {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("orion up with a wrong containerdSocket still runs after 30 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let output = child.wait_with_output().expect("output of orion up");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!status.success(), "orion up must fail: {stderr}");
    assert!(
        stderr.contains(&socket.display().to_string()),
        "names the path: {stderr}"
    );
    assert!(
        stderr.contains("runtime.containerdSocket"),
        "names the setting: {stderr}"
    );
}
