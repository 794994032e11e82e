//! The runtime conformance suite on `ContainerdRuntime`, against the real containerd (namespace
//! `orion-test`) with the busybox image built here. Fails, never skips, without containerd.
//!
//! Containers run with `NetworkMode::None`: this backend has no CNI, so bridge networking and
//! published ports are `Unsupported` (the `ports` check asserts that, then reaches a server on
//! the host's network).

mod containerd_support;

use containerd_support::{fixture, runtime, runtime_with_image};
use orion_core::testing::runtime as suite;
use orion_runtime::containerd::ContainerdRuntime;
use tempfile::TempDir;

/// A runtime with the test image, its state in a fresh directory (kept alive by the caller).
async fn setup() -> (ContainerdRuntime, TempDir) {
    let state = tempfile::tempdir().expect("a temp dir");
    let rt = runtime_with_image(state.path()).await;
    (rt, state)
}

#[tokio::test]
async fn lifecycle() {
    let (rt, _state) = setup().await;
    suite::lifecycle(&rt, &fixture()).await;
}

#[tokio::test]
async fn exit_codes() {
    let (rt, _state) = setup().await;
    suite::exit_codes(&rt, &fixture()).await;
}

#[tokio::test]
async fn logs() {
    let (rt, _state) = setup().await;
    suite::logs(&rt, &fixture()).await;
}

#[tokio::test]
async fn stats() {
    let (rt, _state) = setup().await;
    suite::stats(&rt, &fixture()).await;
}

#[tokio::test]
async fn bad_image() {
    let (rt, _state) = setup().await;
    suite::bad_image(&rt, &fixture()).await;
}

#[tokio::test]
async fn bad_command() {
    let (rt, _state) = setup().await;
    suite::bad_command(&rt, &fixture()).await;
}

#[tokio::test]
async fn stop_stopped() {
    let (rt, _state) = setup().await;
    suite::stop_stopped(&rt, &fixture()).await;
}

#[tokio::test]
async fn adopt_after_restart() {
    let (_imported, state) = setup().await;
    suite::adopt_after_restart(|| runtime(state.path()), &fixture()).await;
}

#[tokio::test]
async fn twenty_concurrent_starts() {
    let (rt, _state) = setup().await;
    suite::concurrent_starts(&rt, &fixture(), 20).await;
}

#[tokio::test]
async fn exec() {
    let (rt, _state) = setup().await;
    suite::exec(&rt, &fixture()).await;
}

#[tokio::test]
async fn published_ports_unsupported_and_host_network_server_answers() {
    let (rt, _state) = setup().await;
    suite::ports(&rt, &fixture()).await;
}
