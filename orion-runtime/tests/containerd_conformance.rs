//! The runtime conformance suite on `ContainerdRuntime`, against the real containerd (namespace
//! `orion-test`) with the busybox image built here, through its one entry point. Fails, never
//! skips, without containerd.
//!
//! Containers run with `NetworkMode::None`: this backend has no CNI, so bridge networking and
//! published ports are `Unsupported` (the `ports` check asserts that, then reaches a server on
//! the host's network).

mod containerd_support;

use containerd_support::{fixture, runtime, runtime_with_image};
use orion_core::testing::runtime as suite;

#[tokio::test]
async fn conformance() {
    let state = tempfile::tempdir().expect("a temp dir");
    // Imports the test image once; every check then gets a runtime over the same state.
    let _imported = runtime_with_image(state.path()).await;
    suite::run_all(|| runtime(state.path()), &fixture()).await;
}
