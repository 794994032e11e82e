//! The runtime conformance suite on `ProcessRuntime`, with host programs (`/bin/sh`, busybox).

use orion_core::testing::runtime as suite;
use orion_runtime::ProcessRuntime;
use orion_runtime::testing::process_fixture;

fn runtime(dir: &tempfile::TempDir) -> ProcessRuntime {
    ProcessRuntime::new(dir.path()).expect("a state directory")
}

#[tokio::test]
async fn lifecycle() {
    let dir = tempfile::tempdir().unwrap();
    suite::lifecycle(&runtime(&dir), &process_fixture()).await;
}

#[tokio::test]
async fn exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    suite::exit_codes(&runtime(&dir), &process_fixture()).await;
}

#[tokio::test]
async fn logs() {
    let dir = tempfile::tempdir().unwrap();
    suite::logs(&runtime(&dir), &process_fixture()).await;
}

#[tokio::test]
async fn stats() {
    let dir = tempfile::tempdir().unwrap();
    suite::stats(&runtime(&dir), &process_fixture()).await;
}

#[tokio::test]
async fn bad_image() {
    let dir = tempfile::tempdir().unwrap();
    suite::bad_image(&runtime(&dir), &process_fixture()).await;
}

#[tokio::test]
async fn bad_command() {
    let dir = tempfile::tempdir().unwrap();
    suite::bad_command(&runtime(&dir), &process_fixture()).await;
}

#[tokio::test]
async fn stop_stopped() {
    let dir = tempfile::tempdir().unwrap();
    suite::stop_stopped(&runtime(&dir), &process_fixture()).await;
}

#[tokio::test]
async fn adopt_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    suite::adopt_after_restart(|| async { runtime(&dir) }, &process_fixture()).await;
}

#[tokio::test]
async fn twenty_concurrent_starts() {
    let dir = tempfile::tempdir().unwrap();
    suite::concurrent_starts(&runtime(&dir), &process_fixture(), 20).await;
}

#[tokio::test]
async fn exec() {
    let dir = tempfile::tempdir().unwrap();
    suite::exec(&runtime(&dir), &process_fixture()).await;
}

#[tokio::test]
async fn fixed_port_via_env_answers_and_dynamic_is_unsupported() {
    let dir = tempfile::tempdir().unwrap();
    suite::ports(&runtime(&dir), &process_fixture()).await;
}
