//! Health checks, run by the agent for its running tasks whose service has a `health_check`.
//!
//! Contract:
//! - A check runs off the agent's convergence pass: [`HealthMonitor::observe`] only looks at
//!   finished checks and spawns the next one when due, so a slow or hanging check never delays
//!   another task's start, stop or restart. Each check has its own timeout
//!   ([`HealthCheck::effective_timeout`]), counted from when it gets a permit.
//! - At most `max_concurrent` checks of one agent run at once (a semaphore); a task never has two
//!   checks in flight, so waiting checks are bounded by the number of tasks.
//! - The first check runs one interval after the container is first seen running, then one
//!   interval after each result. While no check has passed and the start period lasts, failures
//!   do not count and the task is [`TaskHealth::Starting`]. A passing check makes it
//!   [`TaskHealth::Healthy`]; `retries + 1` failures in a row (outside the start period) make it
//!   [`TaskHealth::Unhealthy`], with the last failure's output, cut to [`MAX_HEALTH_OUTPUT`].
//! - Kinds: `http` GETs the path on the port's host binding (`127.0.0.1` when bound to all
//!   addresses) and wants `expected_status`, or else any 2xx/3xx; `tcp` wants a connection;
//!   `command` runs through [`Runtime::exec`] (inside the container; a child process on the host
//!   for the process runtime) and wants exit code 0.
//!
//! The verdict is the agent's to write (only when it changes) and to act on (restart).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};

use futures::FutureExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{Notify, Semaphore};
use tokio::task::JoinHandle;

use crate::model::MAX_HEALTH_OUTPUT;
use crate::model::spec::{HealthCheck, HealthCheckType};
use crate::model::{Millis, PublishedPort, Task, TaskHealth};
use crate::runtime::{ContainerInfo, Runtime};

/// Default bound on the checks one agent runs at once.
pub const DEFAULT_MAX_CONCURRENT_CHECKS: usize = 16;

/// Largest HTTP response head read by an `http` check.
const MAX_HTTP_HEAD: usize = 4096;

/// The result of one check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckOutcome {
    pub passed: bool,
    /// What the check said (the failure's reason; empty when it passed quietly).
    pub output: String,
}

impl CheckOutcome {
    fn fail(output: impl Into<String>) -> Self {
        CheckOutcome {
            passed: false,
            output: output.into(),
        }
    }
}

/// The health of one task as the monitor sees it now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub health: TaskHealth,
    /// The latest failure's output, if the latest check failed (or the task is unhealthy).
    pub output: Option<String>,
}

/// Per-task state of the checks of one container.
struct CheckState {
    container: String,
    started_at: Millis,
    next_at: Millis,
    failures: u32,
    passed: bool,
    health: TaskHealth,
    output: Option<String>,
    in_flight: Option<JoinHandle<CheckOutcome>>,
}

/// Runs and judges the health checks of one agent's tasks.
pub struct HealthMonitor<R: ?Sized> {
    runtime: Arc<R>,
    permits: Arc<Semaphore>,
    states: Mutex<HashMap<String, CheckState>>,
    /// Woken whenever a check finishes, so the agent acts on it without waiting for a resync.
    finished: Arc<Notify>,
}

impl<R: ?Sized> std::fmt::Debug for HealthMonitor<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HealthMonitor")
            .field("free_permits", &self.permits.available_permits())
            .finish()
    }
}

impl<R: Runtime + ?Sized> HealthMonitor<R> {
    /// A monitor running at most `max_concurrent` (at least 1) checks at once through `runtime`.
    pub fn new(runtime: Arc<R>, max_concurrent: usize) -> Self {
        HealthMonitor {
            runtime,
            permits: Arc::new(Semaphore::new(max_concurrent.max(1))),
            states: Mutex::new(HashMap::new()),
            finished: Arc::new(Notify::new()),
        }
    }

    /// Resolves when a check has finished since the last call.
    pub async fn check_finished(&self) {
        self.finished.notified().await;
    }

    /// Takes in a finished check of `task` (running in `container` with `check`), spawns the
    /// next one when due at `now`, and returns the current verdict. Never waits for a check.
    pub fn observe(
        &self,
        task: &Task,
        container: &ContainerInfo,
        check: &HealthCheck,
        now: Millis,
    ) -> Verdict {
        let mut states = self.states.lock().unwrap_or_else(PoisonError::into_inner);
        let st = states
            .entry(task.id.to_string())
            .or_insert_with(|| new_state(task, &container.id, now, check));
        if st.container != container.id {
            if let Some(h) = st.in_flight.take() {
                h.abort();
            }
            *st = new_state(task, &container.id, now, check);
        }
        let done = st.in_flight.as_ref().is_some_and(JoinHandle::is_finished);
        if done && let Some(outcome) = st.in_flight.take().and_then(|h| h.now_or_never()) {
            let outcome =
                outcome.unwrap_or_else(|e| CheckOutcome::fail(format!("check aborted: {e}")));
            judge(st, check, outcome, now);
            st.next_at = now.saturating_add(check.interval.saturating_mul(1000));
        }
        if st.in_flight.is_none() && now >= st.next_at {
            st.in_flight = Some(self.spawn(task, container, check));
            // Not due again until this one is taken in.
            st.next_at = Millis::MAX;
        }
        Verdict {
            health: st.health,
            output: st.output.clone(),
        }
    }

    /// Forgets every task not in `keep` (no longer running here), cancelling its check.
    pub fn retain(&self, keep: &HashSet<&str>) {
        let mut states = self.states.lock().unwrap_or_else(PoisonError::into_inner);
        states.retain(|id, st| {
            let kept = keep.contains(id.as_str());
            if !kept && let Some(h) = st.in_flight.take() {
                h.abort();
            }
            kept
        });
    }

    fn spawn(
        &self,
        task: &Task,
        container: &ContainerInfo,
        check: &HealthCheck,
    ) -> JoinHandle<CheckOutcome> {
        let permits = self.permits.clone();
        let runtime = self.runtime.clone();
        let finished = self.finished.clone();
        let timeout = check.effective_timeout();
        let probe = Probe::new(check, &container.id, ports_of(task, container));
        tokio::spawn(async move {
            let outcome = match permits.acquire_owned().await {
                Ok(_permit) => match tokio::time::timeout(timeout, probe.run(&*runtime)).await {
                    Ok(outcome) => outcome,
                    Err(_) => CheckOutcome::fail(format!(
                        "{} timed out after {} s",
                        probe.describe(),
                        timeout.as_secs()
                    )),
                },
                Err(_) => CheckOutcome::fail("health checks are shutting down"),
            };
            finished.notify_one();
            outcome
        })
    }
}

impl<R: ?Sized> Drop for HealthMonitor<R> {
    fn drop(&mut self) {
        let states = self
            .states
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner);
        for st in states.values_mut() {
            if let Some(h) = st.in_flight.take() {
                h.abort();
            }
        }
    }
}

fn new_state(task: &Task, container: &str, now: Millis, check: &HealthCheck) -> CheckState {
    // An agent that restarts keeps the verdict already recorded for the same container.
    let same = task.container_id.as_deref() == Some(container);
    let (health, passed) = match task.health {
        TaskHealth::Healthy if same => (TaskHealth::Healthy, true),
        TaskHealth::Unhealthy if same => (TaskHealth::Unhealthy, true),
        _ => (TaskHealth::Starting, false),
    };
    CheckState {
        container: container.to_owned(),
        started_at: now,
        next_at: now.saturating_add(check.interval.saturating_mul(1000)),
        failures: 0,
        passed,
        health,
        output: if same {
            task.health_output.as_deref().map(str::to_owned)
        } else {
            None
        },
        in_flight: None,
    }
}

/// The state machine: one outcome at `now`.
fn judge(st: &mut CheckState, check: &HealthCheck, outcome: CheckOutcome, now: Millis) {
    if outcome.passed {
        st.failures = 0;
        st.passed = true;
        st.health = TaskHealth::Healthy;
        st.output = None;
        return;
    }
    st.output = Some(bounded(&outcome.output));
    let starting = !st.passed && now < st.started_at.saturating_add(check.start_period * 1000);
    if starting {
        return;
    }
    st.failures = st.failures.saturating_add(1);
    if st.failures > check.retries {
        st.health = TaskHealth::Unhealthy;
    }
}

/// `text` cut to [`MAX_HEALTH_OUTPUT`] bytes at a char boundary, trimmed.
pub fn bounded(text: &str) -> String {
    let text = text.trim();
    if text.len() <= MAX_HEALTH_OUTPUT {
        return text.to_owned();
    }
    let mut end = MAX_HEALTH_OUTPUT;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

fn ports_of(task: &Task, container: &ContainerInfo) -> Vec<PublishedPort> {
    if container.ports.is_empty() {
        task.ports.clone()
    } else {
        container.ports.clone()
    }
}

/// One check, with everything it needs to run without the agent.
#[derive(Debug, Clone)]
enum Probe {
    Http {
        addr: (String, u16),
        path: String,
        expected: Option<u16>,
    },
    Tcp {
        addr: (String, u16),
    },
    Command {
        container: String,
        command: Vec<String>,
    },
}

impl Probe {
    fn new(check: &HealthCheck, container: &str, ports: Vec<PublishedPort>) -> Probe {
        let port = check.port.unwrap_or(0);
        match check.kind {
            HealthCheckType::Http => Probe::Http {
                addr: target(port, &ports),
                path: check.http_path.clone().unwrap_or_else(|| "/".into()),
                expected: check.expected_status,
            },
            HealthCheckType::Tcp => Probe::Tcp {
                addr: target(port, &ports),
            },
            HealthCheckType::Command => Probe::Command {
                container: container.to_owned(),
                command: check.command.clone(),
            },
        }
    }

    fn describe(&self) -> String {
        match self {
            Probe::Http { addr, path, .. } => format!("GET http://{}:{}{path}", addr.0, addr.1),
            Probe::Tcp { addr } => format!("tcp connect to {}:{}", addr.0, addr.1),
            Probe::Command { command, .. } => format!("command {command:?}"),
        }
    }

    async fn run<R: Runtime + ?Sized>(&self, runtime: &R) -> CheckOutcome {
        match self {
            Probe::Http {
                addr,
                path,
                expected,
            } => http_check(addr, path, *expected).await,
            Probe::Tcp { addr } => match TcpStream::connect((addr.0.as_str(), addr.1)).await {
                Ok(_) => CheckOutcome {
                    passed: true,
                    output: String::new(),
                },
                Err(e) => CheckOutcome::fail(format!("{}: {e}", self.describe())),
            },
            Probe::Command { container, command } => match runtime.exec(container, command).await {
                Ok(out) if out.exit_code == 0 => CheckOutcome {
                    passed: true,
                    output: String::new(),
                },
                Ok(out) => CheckOutcome::fail(format!(
                    "exit code {}: {}{}",
                    out.exit_code, out.stdout, out.stderr
                )),
                Err(e) => CheckOutcome::fail(format!("{}: {e}", self.describe())),
            },
        }
    }
}

/// Where the agent reaches container port `port`: its tcp host binding (loopback for a
/// wildcard address), or the port itself on loopback when it is not published (network mode
/// `host`, which validation requires then).
fn target(port: u16, ports: &[PublishedPort]) -> (String, u16) {
    match ports
        .iter()
        .find(|p| p.container_port == port && p.protocol == "tcp")
    {
        Some(p) => {
            let ip = match p.host_ip.as_str() {
                "" | "0.0.0.0" => "127.0.0.1",
                "::" | "[::]" => "::1",
                other => other,
            };
            (ip.to_owned(), p.host_port)
        }
        None => ("127.0.0.1".to_owned(), port),
    }
}

async fn http_check(addr: &(String, u16), path: &str, expected: Option<u16>) -> CheckOutcome {
    let url = format!("http://{}:{}{path}", addr.0, addr.1);
    let mut stream = match TcpStream::connect((addr.0.as_str(), addr.1)).await {
        Ok(s) => s,
        Err(e) => return CheckOutcome::fail(format!("GET {url}: {e}")),
    };
    let request = format!(
        "GET {path} HTTP/1.0\r\nHost: {}:{}\r\nUser-Agent: orion-health-check\r\nConnection: close\r\n\r\n",
        addr.0, addr.1
    );
    if let Err(e) = stream.write_all(request.as_bytes()).await {
        return CheckOutcome::fail(format!("GET {url}: {e}"));
    }
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 512];
    while head.len() < MAX_HTTP_HEAD && !head.windows(2).any(|w| w == b"\r\n") {
        match stream.read(&mut buf).await {
            Ok(0) => break,
            Ok(n) => head.extend_from_slice(&buf[..n]),
            Err(e) => return CheckOutcome::fail(format!("GET {url}: {e}")),
        }
    }
    let text = String::from_utf8_lossy(&head);
    let status_line = text.lines().next().unwrap_or_default();
    let Some(code) = parse_status(status_line) else {
        return CheckOutcome::fail(format!(
            "GET {url}: not an HTTP response: {:?}",
            bounded(status_line)
        ));
    };
    let passed = match expected {
        Some(want) => code == want,
        None => (200..400).contains(&code),
    };
    if passed {
        CheckOutcome {
            passed,
            output: String::new(),
        }
    } else {
        let want = expected.map_or("a 2xx or 3xx status".to_owned(), |w| format!("status {w}"));
        CheckOutcome::fail(format!("GET {url}: {status_line}; expected {want}"))
    }
}

/// The status code of an `HTTP/1.x NNN reason` line.
fn parse_status(line: &str) -> Option<u16> {
    let mut words = line.split_whitespace();
    if !words.next()?.starts_with("HTTP/") {
        return None;
    }
    words
        .next()?
        .parse()
        .ok()
        .filter(|c| (100..=599).contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(retries: u32, start_period: u64) -> HealthCheck {
        HealthCheck {
            kind: HealthCheckType::Command,
            http_path: None,
            expected_status: None,
            port: None,
            command: vec!["check".into()],
            interval: 1,
            timeout: 0,
            retries,
            start_period,
        }
    }

    fn state() -> CheckState {
        CheckState {
            container: "c".into(),
            started_at: 0,
            next_at: 0,
            failures: 0,
            passed: false,
            health: TaskHealth::Starting,
            output: None,
            in_flight: None,
        }
    }

    #[test]
    fn failures_in_the_start_period_do_not_count_until_a_pass() {
        let c = check(0, 10);
        let mut st = state();
        judge(&mut st, &c, CheckOutcome::fail("no"), 5_000);
        assert_eq!((st.health, st.failures), (TaskHealth::Starting, 0));
        assert_eq!(st.output.as_deref(), Some("no"));
        judge(
            &mut st,
            &c,
            CheckOutcome {
                passed: true,
                output: String::new(),
            },
            6_000,
        );
        assert_eq!(st.health, TaskHealth::Healthy);
        // After a pass, the start period no longer shields failures.
        judge(&mut st, &c, CheckOutcome::fail("down"), 7_000);
        assert_eq!(st.health, TaskHealth::Unhealthy);
    }

    #[test]
    fn retries_failures_in_a_row_are_tolerated() {
        let c = check(2, 0);
        let mut st = state();
        for _ in 0..2 {
            judge(&mut st, &c, CheckOutcome::fail("x"), 1_000);
            assert_eq!(st.health, TaskHealth::Starting);
        }
        judge(
            &mut st,
            &c,
            CheckOutcome {
                passed: true,
                output: String::new(),
            },
            1_000,
        );
        for _ in 0..2 {
            judge(&mut st, &c, CheckOutcome::fail("x"), 1_000);
            assert_eq!(st.health, TaskHealth::Healthy, "a pass resets the count");
        }
        judge(&mut st, &c, CheckOutcome::fail("third"), 1_000);
        assert_eq!(st.health, TaskHealth::Unhealthy);
        assert_eq!(st.output.as_deref(), Some("third"));
    }

    #[test]
    fn output_is_bounded_at_a_char_boundary() {
        let long = "é".repeat(MAX_HEALTH_OUTPUT);
        let cut = bounded(&long);
        assert!(cut.len() <= MAX_HEALTH_OUTPUT + '…'.len_utf8());
        assert!(cut.ends_with('…'));
    }

    #[test]
    fn status_lines_parse() {
        assert_eq!(parse_status("HTTP/1.1 200 OK"), Some(200));
        assert_eq!(parse_status("HTTP/1.0 404 Not Found"), Some(404));
        assert_eq!(parse_status("SSH-2.0"), None);
        assert_eq!(parse_status("HTTP/1.1 abc"), None);
    }

    #[test]
    fn wildcard_bindings_are_reached_on_loopback() {
        let p = |ip: &str| PublishedPort {
            container_port: 80,
            host_port: 8080,
            protocol: "tcp".into(),
            host_ip: ip.into(),
        };
        assert_eq!(target(80, &[p("0.0.0.0")]), ("127.0.0.1".into(), 8080));
        assert_eq!(target(80, &[p("10.0.0.2")]), ("10.0.0.2".into(), 8080));
        assert_eq!(target(81, &[p("0.0.0.0")]), ("127.0.0.1".into(), 81));
    }
}
