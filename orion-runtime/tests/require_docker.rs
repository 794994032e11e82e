//! `require_docker` fails a test when the engine is unreachable; it never lets it pass or skip.

use std::process::Command;

use orion_runtime::testing::{REQUIRE_DOCKER_ENV, require_docker};

/// Connects to the engine. Run as is, it passes on a machine with Docker; the test below runs it
/// again in a child process pointed at a socket that does not exist.
#[tokio::test]
async fn require_docker_connects() {
    require_docker()
        .await
        .ping()
        .await
        .expect("the engine answers a ping");
}

#[test]
fn a_missing_engine_fails_the_test_with_and_without_the_ci_variable() {
    let this_test_binary = std::env::current_exe().expect("the test binary's path");
    for required in [None, Some("1")] {
        let mut child = Command::new(&this_test_binary);
        child
            .args(["--exact", "require_docker_connects", "--nocapture"])
            .env("DOCKER_HOST", "unix:///nonexistent/orion-test-docker.sock")
            .env_remove(REQUIRE_DOCKER_ENV);
        if let Some(value) = required {
            child.env(REQUIRE_DOCKER_ENV, value);
        }
        let output = child.output().expect("the test binary runs");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            !output.status.success(),
            "must fail, not pass or skip: {stderr}"
        );
        assert!(stderr.contains("unreachable"), "says why: {stderr}");
        if required.is_some() {
            assert!(
                stderr.contains(REQUIRE_DOCKER_ENV),
                "names the variable: {stderr}"
            );
        }
    }
}
