//! The conformance suite every [`Runtime`] passes, through one entry point: [`run_all`].
//!
//! [`run_all`] runs every [`Check`] (listed in [`Check::ALL`]) on runtimes from a factory, with a
//! [`RuntimeFixture`] that says which image and shell to use on that backend (Docker runs a
//! busybox image; the process runtime runs host programs). A check the backend cannot honour is
//! declared in the fixture's [`RuntimeFixture::cannot_honour`], with the reason, and reported as
//! not run; there is no other way to leave one out, so a new check runs on every backend. Every
//! check runs even when an earlier one failed; then `run_all` panics listing every failure.
//!
//! Each check is also a `pub async fn`; it labels its containers with [`test_labels`], unique per
//! run, and removes them afterwards even when an assertion fails. Every wait is bounded in count
//! and time.
//!
//! ```no_run
//! use orion_core::runtime::{FakeRuntime, Runtime};
//! use orion_core::testing::runtime::{self as suite, RuntimeFixture};
//!
//! async fn conformance(fixture: &RuntimeFixture) {
//!     let engine = FakeRuntime::new();
//!     suite::run_all(|| std::future::ready(engine.clone()), fixture).await;
//! }
//! ```

use std::collections::BTreeMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::time::Duration;

use futures::{FutureExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::model::spec::NetworkMode;
use crate::runtime::{
    ContainerInfo, ContainerSpec, ContainerStatus, LogLine, LogOptions, LogStream, Runtime, labels,
};

mod checks;

pub use checks::{
    adopt_after_restart, bad_command, bad_image, concurrent_starts, exec, exec_bounds, exit_codes,
    lifecycle, logs, ports, stats, stop_stopped,
};

/// The label that tells one suite run's containers from everything else.
pub const TEST_LABEL: &str = "io.orion.conformance";

/// Longest wait for a container to exit, a port to answer or a followed log to end.
pub const WAIT_LIMIT: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(50);

/// What a backend needs to run the suite.
#[derive(Debug, Clone)]
pub struct RuntimeFixture {
    /// The image of every container (for the process runtime: a shell program such as `/bin/sh`).
    pub image: String,
    /// What precedes a script in `command` so that `image` runs it: `["sh", "-c"]` for a busybox
    /// image, `["-c"]` when `image` is the shell itself.
    pub shell: Vec<String>,
    /// An image this runtime cannot obtain.
    pub missing_image: String,
    /// An image and command that exist as far as `ensure_image` can tell but cannot be started.
    pub bad_command: (String, Vec<String>),
    /// How the backend publishes ports.
    pub ports: PortSupport,
    /// The network mode of every container the suite starts (except the server of
    /// [`PortSupport::HostNetwork`], which always runs on the host's network). `Bridge` (the
    /// `ContainerSpec` default) for Docker; `None` or `Host` for a backend without bridge
    /// networking, such as containerd.
    pub network_mode: NetworkMode,
    /// The checks this backend cannot honour, each with the reason; [`run_all`] reports them as
    /// not run and runs every other check. Empty for a real runtime.
    pub cannot_honour: Vec<(Check, String)>,
}

/// How a backend publishes ports, and the command of an HTTP server to test them with.
#[derive(Debug, Clone)]
pub enum PortSupport {
    /// Host port 0 gets a free port, read back from `ContainerInfo::ports`.
    Dynamic {
        /// Serves HTTP on `container_port` (run with `image`); for a backend without port
        /// mapping (processes), on 127.0.0.1 at the host port it is given in `$PORT`.
        command: Vec<String>,
        container_port: u16,
    },
    /// Publishing any port is `Unsupported`, but with `NetworkMode::Host` a server listening on
    /// 127.0.0.1 is reachable there (containerd without CNI).
    HostNetwork {
        /// Serves HTTP on 127.0.0.1 at `$PORT` (run with `image`, on the host's network).
        command: Vec<String>,
    },
    /// Any port is `Unsupported`.
    None,
}

impl RuntimeFixture {
    /// A spec for `image` running `command`, with the fixture's network mode.
    pub fn spec(
        &self,
        name: &str,
        command: Vec<String>,
        labels: &BTreeMap<String, String>,
    ) -> ContainerSpec {
        ContainerSpec {
            name: name.to_owned(),
            image: self.image.clone(),
            command,
            labels: labels.clone(),
            network_mode: self.network_mode,
            ..ContainerSpec::default()
        }
    }

    /// A spec running `script` with the fixture's shell and network mode.
    pub fn script_spec(
        &self,
        name: &str,
        script: &str,
        labels: &BTreeMap<String, String>,
    ) -> ContainerSpec {
        let mut command = self.shell.clone();
        command.push(script.to_owned());
        self.spec(name, command, labels)
    }
}

/// One check of the suite.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Check {
    /// [`lifecycle`]
    Lifecycle,
    /// [`exit_codes`]
    ExitCodes,
    /// [`logs`]
    Logs,
    /// [`stats`]
    Stats,
    /// [`bad_image`]
    BadImage,
    /// [`bad_command`]
    BadCommand,
    /// [`stop_stopped`]
    StopStopped,
    /// [`adopt_after_restart`]
    AdoptAfterRestart,
    /// [`concurrent_starts`] with [`CONCURRENT_STARTS`] containers
    ConcurrentStarts,
    /// [`exec`]
    Exec,
    /// [`exec_bounds`]
    ExecBounds,
    /// [`ports`]
    Ports,
}

/// How many containers [`Check::ConcurrentStarts`] starts at once.
pub const CONCURRENT_STARTS: usize = 20;

impl Check {
    /// Every check, in the order [`run_all`] runs them. A new variant goes here too, and into
    /// [`run_check`]'s exhaustive match, which is what runs it.
    pub const ALL: [Check; 12] = [
        Check::Lifecycle,
        Check::ExitCodes,
        Check::Logs,
        Check::Stats,
        Check::BadImage,
        Check::BadCommand,
        Check::StopStopped,
        Check::AdoptAfterRestart,
        Check::ConcurrentStarts,
        Check::Exec,
        Check::ExecBounds,
        Check::Ports,
    ];

    /// The check's function name.
    pub fn name(self) -> &'static str {
        match self {
            Check::Lifecycle => "lifecycle",
            Check::ExitCodes => "exit_codes",
            Check::Logs => "logs",
            Check::Stats => "stats",
            Check::BadImage => "bad_image",
            Check::BadCommand => "bad_command",
            Check::StopStopped => "stop_stopped",
            Check::AdoptAfterRestart => "adopt_after_restart",
            Check::ConcurrentStarts => "concurrent_starts",
            Check::Exec => "exec",
            Check::ExecBounds => "exec_bounds",
            Check::Ports => "ports",
        }
    }
}

/// Runs every [`Check`] but those the fixture declares it cannot honour, each on a runtime from
/// `make` (which must reach the same containers each time: [`Check::AdoptAfterRestart`] uses a
/// second value as the restarted agent). Checks run one after another; all run even when one
/// fails, and then this panics listing every failure.
pub async fn run_all<R, F, Fut>(make: F, fixture: &RuntimeFixture)
where
    R: Runtime,
    F: Fn() -> Fut,
    Fut: Future<Output = R>,
{
    let mut failures = Vec::new();
    let mut ran = 0;
    for check in Check::ALL {
        if let Some((_, reason)) = fixture.cannot_honour.iter().find(|(c, _)| *c == check) {
            eprintln!("runtime suite: {} not run: {reason}", check.name());
            continue;
        }
        ran += 1;
        let outcome = AssertUnwindSafe(run_check(check, &make, fixture))
            .catch_unwind()
            .await;
        if let Err(panic) = outcome {
            failures.push(format!("{}: {}", check.name(), panic_message(&*panic)));
        }
    }
    assert!(
        failures.is_empty(),
        "runtime suite: {} of {ran} checks failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Runs one check on a runtime from `make`.
pub async fn run_check<R, F, Fut>(check: Check, make: &F, fixture: &RuntimeFixture)
where
    R: Runtime,
    F: Fn() -> Fut,
    Fut: Future<Output = R>,
{
    match check {
        Check::Lifecycle => lifecycle(&make().await, fixture).await,
        Check::ExitCodes => exit_codes(&make().await, fixture).await,
        Check::Logs => logs(&make().await, fixture).await,
        Check::Stats => stats(&make().await, fixture).await,
        Check::BadImage => bad_image(&make().await, fixture).await,
        Check::BadCommand => bad_command(&make().await, fixture).await,
        Check::StopStopped => stop_stopped(&make().await, fixture).await,
        Check::AdoptAfterRestart => adopt_after_restart(make, fixture).await,
        Check::ConcurrentStarts => {
            concurrent_starts(&make().await, fixture, CONCURRENT_STARTS).await;
        }
        Check::Exec => exec(&make().await, fixture).await,
        Check::ExecBounds => exec_bounds(&make().await, fixture).await,
        Check::Ports => ports(&make().await, fixture).await,
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_else(|| "(a panic without a message)".to_owned())
}

/// Labels unique to one check in one run: the managed label plus [`TEST_LABEL`] = `<test>-<random>`.
pub fn test_labels(test: &str) -> BTreeMap<String, String> {
    let run = format!("{test}-{:08x}", rand::random::<u32>());
    BTreeMap::from([
        (labels::MANAGED.to_owned(), "true".to_owned()),
        (TEST_LABEL.to_owned(), run),
    ])
}

/// A container name derived from the run's labels, unique per run.
pub(crate) fn container_name(labels: &BTreeMap<String, String>, index: usize) -> String {
    format!("orion-ct-{}-{index}", labels[TEST_LABEL])
}

/// Runs `body`, then removes every container carrying `labels`, then re-raises a failure.
pub async fn with_cleanup<R, Fut>(runtime: &R, labels: &BTreeMap<String, String>, body: Fut)
where
    R: Runtime,
    Fut: Future<Output = ()>,
{
    let outcome = AssertUnwindSafe(body).catch_unwind().await;
    let leftovers = runtime.list(labels).await.unwrap_or_default();
    for info in leftovers {
        let _ = runtime.remove(&info.id).await;
    }
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

/// Polls `inspect` until the container has exited; panics after [`WAIT_LIMIT`].
pub async fn wait_for_exit<R: Runtime>(runtime: &R, id: &str) -> (i64, bool) {
    wait_for_exit_within(runtime, id, WAIT_LIMIT).await
}

/// [`wait_for_exit`] with another bound, for a container known to take long to end (an OOM
/// kill on a loaded host can come a minute after the limit is hit).
pub async fn wait_for_exit_within<R: Runtime>(
    runtime: &R,
    id: &str,
    limit: Duration,
) -> (i64, bool) {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let info = runtime
            .inspect(id)
            .await
            .expect("inspect a known container");
        if let ContainerStatus::Exited { code, oom_killed } = info.status {
            return (code, oom_killed);
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "container {id} still {:?} after {limit:?}",
            info.status
        );
        tokio::time::sleep(POLL).await;
    }
}

pub(crate) async fn start<R: Runtime>(runtime: &R, spec: &ContainerSpec) -> ContainerInfo {
    runtime
        .create_and_start(spec)
        .await
        .unwrap_or_else(|e| panic!("starting {:?} on {}: {e}", spec.name, runtime.name()))
}

pub(crate) async fn collect_logs<R: Runtime>(
    runtime: &R,
    id: &str,
    options: LogOptions,
) -> Vec<LogLine> {
    let stream = runtime
        .logs(id, options)
        .await
        .expect("logs of a known container");
    let lines = tokio::time::timeout(WAIT_LIMIT, stream.collect::<Vec<_>>())
        .await
        .unwrap_or_else(|_| panic!("log stream of {id} did not end within {WAIT_LIMIT:?}"));
    lines.into_iter().map(|l| l.expect("log line")).collect()
}

pub(crate) fn of_stream(lines: &[LogLine], stream: LogStream) -> Vec<&str> {
    lines
        .iter()
        .filter(|l| l.stream == stream)
        .map(|l| l.line.as_str())
        .collect()
}

/// Create, inspect, list, stop and remove one long-running container.
/// Retries (bounded) until 127.0.0.1:`port` answers an HTTP request with an HTTP status line.
pub async fn assert_http_answers(port: u16) {
    let deadline = tokio::time::Instant::now() + WAIT_LIMIT;
    let mut last_error = String::new();
    while tokio::time::Instant::now() < deadline {
        match http_get(port).await {
            Ok(reply) if reply.starts_with("HTTP/1.") => return,
            Ok(reply) => last_error = format!("not HTTP: {reply:?}"),
            Err(e) => last_error = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("127.0.0.1:{port} did not answer HTTP within {WAIT_LIMIT:?}: {last_error}");
}

async fn http_get(port: u16) -> std::io::Result<String> {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    stream
        .write_all(b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .await?;
    let mut reply = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut reply))
        .await
        .map_err(|_| std::io::Error::other("no reply within 5 s"))??;
    Ok(String::from_utf8_lossy(&reply).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_check_is_listed_once() {
        let names: std::collections::BTreeSet<&str> = Check::ALL.iter().map(|c| c.name()).collect();
        assert_eq!(names.len(), Check::ALL.len(), "a check is listed twice");
        // The match is exhaustive: a new variant does not compile until it gets an index here,
        // and then its place in ALL is checked.
        let index = |c: Check| match c {
            Check::Lifecycle => 0,
            Check::ExitCodes => 1,
            Check::Logs => 2,
            Check::Stats => 3,
            Check::BadImage => 4,
            Check::BadCommand => 5,
            Check::StopStopped => 6,
            Check::AdoptAfterRestart => 7,
            Check::ConcurrentStarts => 8,
            Check::Exec => 9,
            Check::ExecBounds => 10,
            Check::Ports => 11,
        };
        for (i, check) in Check::ALL.iter().enumerate() {
            assert_eq!(index(*check), i, "{check:?} is out of place in Check::ALL");
        }
    }
}
