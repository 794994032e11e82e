//! The runtime conformance suite on the real Docker engine, with the busybox test image, through
//! its one entry point. These tests fail (never skip) when the engine is unreachable.

use orion_core::runtime::Runtime;
use orion_core::testing::runtime as suite;
use orion_runtime::testing::{docker_fixture, ensure_test_image, require_docker};
use orion_runtime::{DockerRuntime, PullPolicy};

async fn runtime() -> DockerRuntime {
    ensure_test_image()
        .await
        .expect("the busybox test image loads");
    DockerRuntime::from_client(require_docker().await)
}

#[tokio::test]
async fn conformance() {
    suite::run_all(runtime, &docker_fixture()).await;
}

/// `bad_image` again with pulls forbidden: a Docker-only setting.
#[tokio::test]
async fn bad_image_without_pulling() {
    let runtime = runtime().await.with_pull_policy(PullPolicy::Never);
    suite::bad_image(&runtime, &docker_fixture()).await;
}

#[tokio::test]
async fn test_image_import_is_idempotent() {
    ensure_test_image().await.unwrap();
    ensure_test_image().await.unwrap();
    let runtime = runtime().await;
    runtime
        .ensure_image(orion_runtime::testing::TEST_IMAGE)
        .await
        .unwrap();
}
