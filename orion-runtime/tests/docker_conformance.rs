//! The runtime conformance suite on the real Docker engine, with the busybox test image.
//! These tests fail (never skip) when the engine is unreachable.

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
async fn lifecycle() {
    suite::lifecycle(&runtime().await, &docker_fixture()).await;
}

#[tokio::test]
async fn exit_codes() {
    suite::exit_codes(&runtime().await, &docker_fixture()).await;
}

#[tokio::test]
async fn logs() {
    suite::logs(&runtime().await, &docker_fixture()).await;
}

#[tokio::test]
async fn stats() {
    suite::stats(&runtime().await, &docker_fixture()).await;
}

#[tokio::test]
async fn bad_image() {
    suite::bad_image(&runtime().await, &docker_fixture()).await;
}

#[tokio::test]
async fn bad_image_without_pulling() {
    let runtime = runtime().await.with_pull_policy(PullPolicy::Never);
    suite::bad_image(&runtime, &docker_fixture()).await;
}

#[tokio::test]
async fn bad_command() {
    suite::bad_command(&runtime().await, &docker_fixture()).await;
}

#[tokio::test]
async fn stop_stopped() {
    suite::stop_stopped(&runtime().await, &docker_fixture()).await;
}

#[tokio::test]
async fn adopt_after_restart() {
    suite::adopt_after_restart(runtime, &docker_fixture()).await;
}

#[tokio::test]
async fn twenty_concurrent_starts() {
    suite::concurrent_starts(&runtime().await, &docker_fixture(), 20).await;
}

#[tokio::test]
async fn exec() {
    suite::exec(&runtime().await, &docker_fixture()).await;
}

#[tokio::test]
async fn dynamic_port_answers_on_loopback() {
    suite::ports(&runtime().await, &docker_fixture()).await;
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
