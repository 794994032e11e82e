//! End to end: `orion validate|apply -f docker-compose.yml` against a real node and the real
//! Docker engine: the imported services run with their entrypoint, command, env_file, `.env`
//! interpolation, ports and replicas; what cannot be imported is refused with its line.

mod support;

use std::time::Duration;

use support::{TestCluster, run_cli};

const CONVERGE: Duration = Duration::from_secs(60);
/// The CLI's exit code for invalid input (docs/cli.md).
const EXIT_INVALID: i32 = 4;

const COMPOSE: &str = r#"
version: "3.8"
services:
  greeter_web:
    image: ${IMAGE}
    entrypoint: ["sh", "-c"]
    command: ["echo $$GREETING > /www/greet.txt; exec httpd -f -p 8080 -h /www"]
    env_file: greeter.env
    ports:
      - "8080"
    deploy:
      replicas: 2
    depends_on:
      - cache
  cache:
    image: ${IMAGE}
    command: sleep 3600
    restart: unless-stopped
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compose_file_is_applied_and_its_services_run_as_written() {
    let c = TestCluster::single("compose").await;
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("docker-compose.yml");
    std::fs::write(&file, COMPOSE).expect("write compose file");
    std::fs::write(
        dir.path().join("greeter.env"),
        "GREETING=hello-from-env-file\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join(".env"),
        format!("IMAGE={}\n", orion_runtime::testing::TEST_IMAGE),
    )
    .unwrap();
    let path = file.to_str().expect("utf-8 path");

    let out = c.cli(0, &["validate", "-f", path]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "validate failed: {stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("2 services: cache, greeter-web"),
        "{stdout}"
    );
    assert!(stderr.contains("imported as `greeter-web`"), "{stderr}");

    let out = c.cli(0, &["apply", "-f", path]);
    assert!(
        out.status.success(),
        "apply failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tasks = c.wait_serving(0, "greeter-web", 2, CONVERGE).await;
    support::wait_for("the cache replica to run", CONVERGE, || async {
        let tasks = c.tasks(0, "cache").await?;
        match tasks.as_slice() {
            [t] if t.state == orion_core::model::TaskState::Running => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    let http = reqwest::Client::new();
    for task in &tasks {
        let port = support::host_port(task).expect("published port");
        let body = http
            .get(format!("http://127.0.0.1:{port}/greet.txt"))
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .expect("greet.txt served")
            .text()
            .await
            .unwrap();
        assert_eq!(
            body.trim(),
            "hello-from-env-file",
            "the entrypoint ran the command with the env_file's variable"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_cannot_be_imported_is_refused_with_file_and_line() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("compose.yaml");
    std::fs::write(
        &file,
        "services:\n  app:\n    build: .\n    image: app:1\n    volumes:\n      - ../secrets:/secrets\n",
    )
    .unwrap();
    // No node is needed to validate; the address is never dialled.
    let out = run_cli("127.0.0.1:9", &["validate", "-f", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(EXIT_INVALID));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("services.app.build"), "{stderr}");
    assert!(stderr.contains("compose.yaml:3:5"), "{stderr}");
    assert!(stderr.contains("services.app.volumes[0]"), "{stderr}");
    assert!(stderr.contains("relative path `../secrets`"), "{stderr}");
}
