//! End-to-end tests of secrets on one real `orion up` node with the real Docker engine: a secret
//! created with `orion secret create` (value on stdin, or `--from-file`) reaches a container as
//! env and as files (mode 0400, on a tmpfs), is never in an API answer, in `orion` output or in
//! the node's log, and is not in the node's data files (sealed at rest). References to unknown
//! secrets, duplicates, oversized values and removing a secret in use are refused.
//!
//! With `--runtime process` an env secret reaches the host process, and a file secret is refused:
//! the task fails with a reason that says to use env.
//!
//! Across nodes: a secret created through node 1 of a three-node cluster reaches a container
//! placed on node 2, which opens it with the cluster key it received when it was admitted.

mod support;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use orion_core::model::{Task, TaskState};
use orion_runtime::testing::{TEST_IMAGE, find_busybox};
use reqwest::{Method, StatusCode};
use support::{NodeRuntime, ORION_BIN, Role, TestCluster, wait_for};

const CONVERGE: Duration = Duration::from_secs(60);

/// `orion --addr ADDR ARGS` with `stdin` written to its standard input.
/// The CLI as node 0's management token, with `stdin` on its standard input.
fn cli_with_stdin(c: &TestCluster, args: &[&str], stdin: &[u8]) -> Output {
    let addr = c.nodes[0].api.to_string();
    let mut child = Command::new(&*ORION_BIN)
        .env_remove("ORION_CREDENTIALS")
        .env("ORION_TOKEN", &c.nodes[0].token)
        .arg("--addr")
        .arg(addr)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run orion");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin)
        .expect("write stdin");
    child.wait_with_output().expect("orion output")
}

/// The first task of `service` that runs with a container, waited for as `what`.
async fn running_task(c: &TestCluster, service: &str, what: &str) -> Task {
    wait_for(what, CONVERGE, || async {
        c.tasks(0, service)
            .await?
            .into_iter()
            .find(|t| t.state == TaskState::Running && t.container_id.is_some())
            .ok_or_else(|| "not running yet".to_owned())
    })
    .await
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn docker_exec(container: &str, script: &str) -> String {
    let out = Command::new("docker")
        .args(["exec", container, "sh", "-c", script])
        .output()
        .expect("docker exec");
    assert!(out.status.success(), "docker exec {script}: {}", text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Every file under `dir` whose bytes contain `needle`.
fn files_containing(dir: &Path, needle: &[u8]) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("read dir").flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if let Ok(bytes) = std::fs::read(&path)
                && bytes.windows(needle.len()).any(|w| w == needle)
            {
                found.push(path.display().to_string());
            }
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_reach_a_docker_container_as_env_and_files_and_are_never_shown() {
    let c = TestCluster::single("secrets").await;
    let password = format!("pw-{}-plaintext-never-shown", std::process::id());
    let token = format!("tok-{}-from-a-file", std::process::id());

    // Create: one from stdin, one from a file; both answered with names only.
    let out = cli_with_stdin(
        &c,
        &["secret", "create", "db-password"],
        password.as_bytes(),
    );
    assert!(out.status.success(), "{}", text(&out));
    let token_file = c.dir().join("token.txt");
    std::fs::write(&token_file, &token).unwrap();
    let out = c.cli(
        0,
        &[
            "secret",
            "create",
            "api-token",
            "--from-file",
            token_file.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    std::fs::remove_file(&token_file).unwrap();

    // Refusals: a duplicate, an empty or oversized value, a bad name.
    let out = cli_with_stdin(&c, &["secret", "create", "db-password"], b"other");
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    assert!(text(&out).contains("already exists"), "{}", text(&out));
    let out = cli_with_stdin(
        &c,
        &["secret", "create", "huge"],
        &vec![b'x'; 64 * 1024 + 1],
    );
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    let out = cli_with_stdin(&c, &["secret", "create", "Bad_Name"], b"x");
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    assert!(text(&out).contains("DNS label"), "{}", text(&out));

    // A spec naming an unknown secret is refused, naming it.
    let unknown = serde_json::json!({
        "name": "nope", "image": TEST_IMAGE, "command": ["sleep", "600"],
        "secrets": [{"name": "missing-secret", "env": "X"}],
    });
    let (status, body) = c
        .request(
            0,
            Method::POST,
            "/v1/services",
            Some(("application/json", unknown.to_string().into_bytes())),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body.to_string().contains("missing-secret"), "{body}");

    let spec = serde_json::json!({
        "name": "app", "image": TEST_IMAGE, "command": ["sleep", "600"],
        "secrets": [
            {"name": "db-password", "env": "DB_PASSWORD"},
            {"name": "db-password"},
            {"name": "api-token", "file": "/etc/app/token"},
        ],
    });
    c.deploy(0, &spec.to_string()).await;
    let task = running_task(&c, "app", "the app task running").await;
    let container = task.container_id.clone().unwrap();

    // Delivered: env, and files that are 0400 on a tmpfs.
    assert_eq!(
        docker_exec(&container, "printf %s \"$DB_PASSWORD\""),
        password
    );
    assert_eq!(
        docker_exec(&container, "cat /run/secrets/db-password"),
        password
    );
    assert_eq!(docker_exec(&container, "cat /etc/app/token"), token);
    for path in ["/run/secrets/db-password", "/etc/app/token"] {
        assert_eq!(
            docker_exec(&container, &format!("stat -c %a {path}")).trim(),
            "400"
        );
        let mount = docker_exec(&container, &format!("grep ' {path} ' /proc/mounts"));
        assert!(
            mount.contains(" tmpfs "),
            "{path} is not on a tmpfs: {mount}"
        );
    }

    // Never shown: API answers, CLI output, the node's log.
    let mut shown = String::new();
    for path in [
        "/v1/services",
        "/v1/services/app",
        "/v1/tasks?all=true",
        &format!("/v1/tasks/{}", task.id),
        "/v1/secrets",
        "/v1/secrets/db-password",
        "/v1/secrets/api-token",
    ] {
        let (status, body) = c.request(0, Method::GET, path, None).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        shown.push_str(&body.to_string());
    }
    assert!(shown.contains("db-password") && shown.contains("api-token"));
    for args in [
        &["status"][..],
        &["status", "app"],
        &["ps", "--all"],
        &["get", &task.id],
        &["get", "app"],
        &["-o", "json", "get", "app"],
        &["secret", "ls"],
        &["-o", "json", "secret", "ls"],
    ] {
        let out = c.cli(0, args);
        assert!(out.status.success(), "orion {args:?}: {}", text(&out));
        shown.push_str(&text(&out));
    }
    assert!(text(&c.cli(0, &["secret", "ls"])).contains("db-password"));
    shown.push_str(&c.nodes[0].read_log());
    for value in [&password, &token] {
        assert!(
            !shown.contains(value.as_str()),
            "a secret's value was shown"
        );
    }

    // Sealed at rest: no file of the node's data dir holds a value.
    for value in [&password, &token] {
        let found = files_containing(&c.nodes[0].data_dir, value.as_bytes());
        assert!(found.is_empty(), "plaintext found in {found:?}");
    }

    // A secret in use cannot be removed; once its service is gone it can, and the staged files
    // go with the container.
    let staged = Command::new("docker")
        .args([
            "inspect",
            "-f",
            "{{index .Config.Labels \"io.orion.secrets-dir\"}}",
            &container,
        ])
        .output()
        .expect("docker inspect");
    let staged = String::from_utf8_lossy(&staged.stdout).trim().to_owned();
    assert!(Path::new(&staged).is_dir(), "staged dir {staged:?}");
    let out = c.cli(0, &["secret", "rm", "db-password"]);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    assert!(text(&out).contains("app"), "{}", text(&out));
    let out = c.cli(0, &["rm", "app"]);
    assert!(out.status.success(), "{}", text(&out));
    wait_for("the staged secret files removed", CONVERGE, || async {
        if Path::new(&staged).exists() {
            Err(format!("{staged} still exists"))
        } else {
            Ok(())
        }
    })
    .await;
    let out = c.cli(0, &["secret", "rm", "db-password"]);
    assert!(out.status.success(), "{}", text(&out));
    let out = c.cli(0, &["secret", "rm", "db-password"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_process_runtime_delivers_env_secrets_and_refuses_file_secrets() {
    let mut c =
        TestCluster::with_runtime("secrets-proc", &[Role::Single], NodeRuntime::Process).await;
    c.start(0).await;
    let password = format!("proc-pw-{}-plaintext", std::process::id());
    let out = cli_with_stdin(
        &c,
        &["secret", "create", "db-password"],
        password.as_bytes(),
    );
    assert!(out.status.success(), "{}", text(&out));

    let busybox = find_busybox().expect("the static busybox (busybox-static)");
    let out_file = c.dir().join("seen-by-the-process");
    let env_spec = serde_json::json!({
        "name": "env-app", "image": busybox.display().to_string(),
        "command": ["sh", "-c", format!(
            "printf %s \"$DB_PASSWORD\" > {}; exec {} sleep 600",
            out_file.display(), busybox.display()
        )],
        "secrets": [{"name": "db-password", "env": "DB_PASSWORD"}],
    });
    c.deploy(0, &env_spec.to_string()).await;
    let seen = wait_for("the process wrote its env secret", CONVERGE, || async {
        std::fs::read_to_string(&out_file).map_err(|e| e.to_string())
    })
    .await;
    assert_eq!(seen, password);

    let file_spec = serde_json::json!({
        "name": "file-app", "image": busybox.display().to_string(),
        "command": ["sleep", "600"], "restart_policy": "no",
        "secrets": [{"name": "db-password"}],
    });
    c.deploy(0, &file_spec.to_string()).await;
    let error = wait_for("the file secret refused", CONVERGE, || async {
        let (_, body) = c
            .request(0, Method::GET, "/v1/tasks?service=file-app&all=true", None)
            .await;
        let tasks: Vec<Task> = serde_json::from_value(body).map_err(|e| e.to_string())?;
        tasks
            .into_iter()
            .find(|t| t.state == TaskState::Failed)
            .and_then(|t| t.error)
            .ok_or_else(|| "not failed yet".to_owned())
    })
    .await;
    assert!(
        error.contains("db-password") && error.contains("as env"),
        "{error}"
    );
    assert!(!error.contains(&password));
    let found = files_containing(&c.nodes[0].data_dir, password.as_bytes());
    assert!(found.is_empty(), "plaintext found in {found:?}");
    assert!(!c.nodes[0].read_log().contains(&password));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_created_through_node_1_reaches_a_container_on_node_2() {
    let mut c = TestCluster::new(
        "xsecret",
        &[Role::Bootstrap, Role::Bootstrap, Role::Bootstrap],
    )
    .await;
    let seed = c.nodes[0].raft;
    c.nodes[1].role = Role::Join(seed);
    c.nodes[2].role = Role::Join(seed);
    c.nodes[1]
        .extra_args
        .extend(["--label".into(), "secret-test=here".into()]);
    for i in 0..3 {
        c.start(i).await;
    }
    let target = c.nodes[1].id.clone();
    wait_for("node 2 listed ready", CONVERGE, || async {
        let (status, body) = c.request(0, Method::GET, "/v1/nodes", None).await;
        let ready = body.as_array().is_some_and(|nodes| {
            nodes.iter().any(|n| {
                n["id"].as_str() == Some(target.as_str())
                    && n["status"]
                        .as_str()
                        .is_some_and(|s| s.eq_ignore_ascii_case("ready"))
            })
        });
        if status == StatusCode::OK && ready {
            Ok(())
        } else {
            Err(format!("{status}: {body}"))
        }
    })
    .await;

    let value = format!("cross-node-{}-secret", std::process::id());
    let out = cli_with_stdin(&c, &["secret", "create", "shared"], value.as_bytes());
    assert!(out.status.success(), "{}", text(&out));
    let spec = serde_json::json!({
        "name": "remote", "image": TEST_IMAGE, "command": ["sleep", "600"],
        "scheduling": {"node_selector": {"secret-test": "here"}},
        "secrets": [{"name": "shared", "env": "SHARED"}, {"name": "shared"}],
    });
    c.deploy(0, &spec.to_string()).await;
    let task = running_task(&c, "remote", "the task running on node 2").await;
    let container = task.container_id.clone().unwrap();
    assert!(
        c.containers_on(1)
            .iter()
            .any(|id| container.starts_with(id.as_str()) || id.starts_with(container.as_str())),
        "the container {container} is not on node 2: {:?}",
        c.containers_on(1)
    );
    assert_eq!(docker_exec(&container, "printf %s \"$SHARED\""), value);
    assert_eq!(docker_exec(&container, "cat /run/secrets/shared"), value);
    for i in 0..3 {
        assert!(
            !c.nodes[i].read_log().contains(&value),
            "node {i}'s log shows the value"
        );
    }
}
