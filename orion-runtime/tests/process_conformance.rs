//! The runtime conformance suite on `ProcessRuntime`, with host programs (`/bin/sh`, busybox),
//! through its one entry point.

use orion_core::testing::runtime as suite;
use orion_runtime::ProcessRuntime;
use orion_runtime::testing::process_fixture;

#[tokio::test]
async fn conformance() {
    let dir = tempfile::tempdir().unwrap();
    let make = || async { ProcessRuntime::new(dir.path()).expect("a state directory") };
    suite::run_all(make, &process_fixture()).await;
}
