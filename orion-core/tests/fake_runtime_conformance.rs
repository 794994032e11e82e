//! The runtime conformance suite on `FakeRuntime`, through its one entry point.
//!
//! The fake runs nothing: a container runs until stopped, except `sh -c "echo ...; exit N"`
//! scripts, which it acts out (their lines, then exit `N`). Faults stand in for what a real engine
//! would find out: the missing image is `FaultPlan::unknown_image`, the command that cannot start
//! is `FaultPlan::fail_start_for` its image. The checks it cannot honour are declared in the
//! fixture, with the reason.

use orion_core::model::spec::NetworkMode;
use orion_core::runtime::{FakeRuntime, FaultPlan};
use orion_core::testing::runtime::{self as suite, Check, PortSupport, RuntimeFixture};

const IMAGE: &str = "orion-test/fake-busybox:1";
const MISSING_IMAGE: &str = "orion-test/absent:0";
const BROKEN_IMAGE: &str = "orion-test/broken:1";

fn fixture() -> RuntimeFixture {
    RuntimeFixture {
        image: IMAGE.to_owned(),
        shell: vec!["sh".into(), "-c".into()],
        missing_image: MISSING_IMAGE.to_owned(),
        bad_command: (
            BROKEN_IMAGE.to_owned(),
            vec!["/no/such/orion-command".into()],
        ),
        ports: PortSupport::None,
        network_mode: NetworkMode::Bridge,
        cannot_honour: vec![
            (
                Check::Logs,
                "its scripts loop and sleep, which the fake does not act out".to_owned(),
            ),
            (
                Check::Ports,
                "the fake hands out host ports but nothing listens on them".to_owned(),
            ),
            (
                Check::ExecBounds,
                "the fake acts out only echo and exit scripts, not a pipe of megabytes".to_owned(),
            ),
        ],
    }
}

/// Clones share one state, like an engine outliving the agent: a clone is the restarted agent.
#[tokio::test]
async fn conformance() {
    let engine = FakeRuntime::with_faults(
        FaultPlan::new()
            .unknown_image(MISSING_IMAGE)
            .fail_start_for(BROKEN_IMAGE),
    );
    suite::run_all(|| std::future::ready(engine.clone()), &fixture()).await;
}

/// The entry point runs every check even when they fail, and names each failure: a runtime
/// that cannot start anything fails every check that starts a container, and none is skipped.
#[tokio::test]
async fn every_failing_check_is_reported_not_only_the_first() {
    use futures::FutureExt;
    let engine = FakeRuntime::with_faults(FaultPlan::new().fail_every_start());
    let fixture = RuntimeFixture {
        cannot_honour: Vec::new(),
        ..fixture()
    };
    let outcome = std::panic::AssertUnwindSafe(suite::run_all(
        || std::future::ready(engine.clone()),
        &fixture,
    ))
    .catch_unwind()
    .await;
    let panic = outcome.expect_err("a runtime that starts nothing fails the suite");
    let message = panic.downcast_ref::<String>().cloned().unwrap_or_default();
    for check in [
        Check::Lifecycle,
        Check::ExitCodes,
        Check::Logs,
        Check::Stats,
        Check::StopStopped,
        Check::AdoptAfterRestart,
        Check::ConcurrentStarts,
        Check::Exec,
    ] {
        assert!(
            message.contains(&format!("\n{}: ", check.name())),
            "{} is reported: {message}",
            check.name()
        );
    }
    assert!(
        message.contains(&format!("of {} checks failed", Check::ALL.len())),
        "{message}"
    );
}
