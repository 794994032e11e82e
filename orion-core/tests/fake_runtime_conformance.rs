//! The runtime conformance suite on `FakeRuntime`: every check whose behaviour a fake can act out.
//!
//! The fake runs nothing: a container runs until stopped, except `sh -c "echo ...; exit N"`
//! scripts, which it acts out (their lines, then exit `N`). Faults stand in for what a real engine
//! would find out: the missing image is `FaultPlan::unknown_image`, the command that cannot start
//! is `FaultPlan::fail_start_for` its image.
//!
//! Not run: `logs` (its scripts loop and sleep, which the fake does not act out) and `ports` (it
//! needs a real HTTP server listening on 127.0.0.1).

use orion_core::model::spec::NetworkMode;
use orion_core::runtime::{FakeRuntime, FaultPlan};
use orion_core::testing::runtime::{self as suite, PortSupport, RuntimeFixture};

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
    }
}

/// A fake that cannot obtain [`MISSING_IMAGE`] and cannot start [`BROKEN_IMAGE`].
fn runtime() -> FakeRuntime {
    FakeRuntime::with_faults(
        FaultPlan::new()
            .unknown_image(MISSING_IMAGE)
            .fail_start_for(BROKEN_IMAGE),
    )
}

#[tokio::test]
async fn lifecycle() {
    suite::lifecycle(&runtime(), &fixture()).await;
}

#[tokio::test]
async fn exit_codes() {
    suite::exit_codes(&runtime(), &fixture()).await;
}

#[tokio::test]
async fn stats() {
    suite::stats(&runtime(), &fixture()).await;
}

#[tokio::test]
async fn bad_image() {
    suite::bad_image(&runtime(), &fixture()).await;
}

#[tokio::test]
async fn bad_command() {
    suite::bad_command(&runtime(), &fixture()).await;
}

#[tokio::test]
async fn stop_stopped() {
    suite::stop_stopped(&runtime(), &fixture()).await;
}

/// Clones share one state, like an engine outliving the agent: a clone is the restarted agent.
#[tokio::test]
async fn adopt_after_restart() {
    let engine = runtime();
    suite::adopt_after_restart(|| std::future::ready(engine.clone()), &fixture()).await;
}

#[tokio::test]
async fn twenty_concurrent_starts() {
    suite::concurrent_starts(&runtime(), &fixture(), 20).await;
}

#[tokio::test]
async fn exec() {
    suite::exec(&runtime(), &fixture()).await;
}
