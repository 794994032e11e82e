//! Gossip members as real processes (`gossip_node`), for the kill -9 / SIGSTOP tests and the
//! detection bench. Each child prints JSON lines; a reader thread collects them with the time
//! they arrived. Dropping a [`NodeProcess`] kills it, so no test leaves processes behind.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::Value;

/// The `gossip_node` binary built by cargo for this test or bench.
pub const NODE_BIN: &str = env!("CARGO_BIN_EXE_gossip_node");

/// One event line: when it was read, and the event JSON (`{"Dead":"n1"}`, `{"Joined":{..}}`).
#[derive(Debug, Clone)]
pub struct Seen {
    pub at: Instant,
    pub event: Value,
}

impl Seen {
    /// `("Dead", "n1")` for `{"Dead":"n1"}`, `("Joined", "n1")` for `{"Joined":{"id":"n1",..}}`.
    pub fn kind_and_node(&self) -> Option<(&str, &str)> {
        let (kind, body) = self.event.as_object()?.iter().next()?;
        let node = body.as_str().or_else(|| body.get("id")?.as_str())?;
        Some((kind.as_str(), node))
    }
}

/// A running `gossip_node`.
#[derive(Debug)]
pub struct NodeProcess {
    pub id: String,
    pub addr: SocketAddr,
    child: Child,
    stdin: Option<ChildStdin>,
    events: Arc<Mutex<Vec<Seen>>>,
}

impl NodeProcess {
    /// Starts `id` bound at `bind` (port 0: any), joining through `seeds`; waits (bounded) for
    /// its `ready` line.
    pub fn start(id: &str, bind: SocketAddr, seeds: &[SocketAddr]) -> Result<Self, String> {
        let mut command = Command::new(NODE_BIN);
        command.args(["--id", id, "--bind", &bind.to_string()]);
        for seed in seeds {
            command.args(["--seed", &seed.to_string()]);
        }
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|err| format!("cannot start {NODE_BIN}: {err}"))?;
        let stdout = child.stdout.take().ok_or("child has no stdout")?;
        let stdin = child.stdin.take();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<SocketAddr>();
        let events = Arc::new(Mutex::new(Vec::new()));
        let sink = events.clone();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let Ok(value) = serde_json::from_str::<Value>(&line) else {
                    continue;
                };
                if let Some(addr) = value["ready"]["gossip"].as_str() {
                    if let Ok(addr) = addr.parse() {
                        let _ = ready_tx.send(addr);
                    }
                } else if let Some(event) = value.get("event") {
                    let seen = Seen {
                        at: Instant::now(),
                        event: event.clone(),
                    };
                    sink.lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .push(seen);
                }
            }
        });
        let mut node = NodeProcess {
            id: id.to_string(),
            addr: bind,
            child,
            stdin,
            events,
        };
        node.addr = ready_rx
            .recv_timeout(Duration::from_secs(20))
            .map_err(|_| format!("{id} did not print its ready line within 20 s"))?;
        Ok(node)
    }

    /// Every event this process printed so far.
    pub fn events(&self) -> Vec<Seen> {
        self.events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The first time this process reported `kind` about `node`, if it did.
    pub fn first(&self, kind: &str, node: &str) -> Option<Instant> {
        self.events()
            .iter()
            .find(|seen| seen.kind_and_node() == Some((kind, node)))
            .map(|seen| seen.at)
    }

    /// The first time at or after `since` this process reported `kind` about `node`.
    pub fn first_since(&self, kind: &str, node: &str, since: Instant) -> Option<Instant> {
        self.events()
            .iter()
            .find(|seen| seen.at >= since && seen.kind_and_node() == Some((kind, node)))
            .map(|seen| seen.at)
    }

    /// How many `kind` events this process reported about `node` after `since`.
    pub fn count_since(&self, kind: &str, node: &str, since: Instant) -> usize {
        self.events()
            .iter()
            .filter(|seen| seen.at >= since && seen.kind_and_node() == Some((kind, node)))
            .count()
    }

    fn pid(&self) -> Pid {
        Pid::from_raw(i32::try_from(self.child.id()).unwrap_or(i32::MAX))
    }

    /// SIGKILL, then reap.
    pub fn kill_9(&mut self) {
        let _ = kill(self.pid(), Signal::SIGKILL);
        let _ = self.child.wait();
    }

    /// SIGSTOP for `pause`, then SIGCONT. Returns the instant taken just *before* SIGCONT was
    /// sent: anything the node causes after it resumes is later than that. (An instant taken
    /// after `kill` returns is not: on a loaded machine the resumed node can be scheduled, and
    /// its peers can report it back, before this thread runs again. Taking the time after the
    /// call made `sigstop_longer_than_the_bound_is_dead_then_recovers_on_sigcont` miss a
    /// recovery reported 30 ms after SIGCONT, about one run in six under a CPU hog.)
    pub fn pause(&self, pause: Duration) -> Instant {
        let _ = kill(self.pid(), Signal::SIGSTOP);
        thread::sleep(pause);
        let resuming_at = Instant::now();
        let _ = kill(self.pid(), Signal::SIGCONT);
        resuming_at
    }

    /// Asks the node to leave gracefully and waits (bounded) for it to exit.
    pub fn leave(&mut self) -> Result<(), String> {
        let stdin = self.stdin.as_mut().ok_or("stdin already closed")?;
        stdin
            .write_all(b"leave\n")
            .map_err(|err| format!("cannot write to {}: {err}", self.id))?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return Ok(());
            }
            thread::sleep(Duration::from_millis(20));
        }
        Err(format!("{} did not exit within 10 s of leave", self.id))
    }
}

/// Runs a `gossip_node` that is expected to exit on its own (e.g. refused at its hello): starts
/// `id` bound at `bind`, joining through `seeds`, and waits at most `within` for it to exit.
/// Returns its exit code and what it wrote on stderr; kills it and errs when it is still running.
pub fn run_until_exit(
    id: &str,
    bind: SocketAddr,
    seeds: &[SocketAddr],
    within: Duration,
) -> Result<(Option<i32>, String), String> {
    let mut command = Command::new(NODE_BIN);
    command.args(["--id", id, "--bind", &bind.to_string()]);
    for seed in seeds {
        command.args(["--seed", &seed.to_string()]);
    }
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|err| format!("cannot start {NODE_BIN}: {err}"))?;
    let deadline = Instant::now() + within;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            let mut stderr = String::new();
            if let Some(mut pipe) = child.stderr.take() {
                let _ = std::io::Read::read_to_string(&mut pipe, &mut stderr);
            }
            return Ok((status.code(), stderr));
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!(
                "{id} was still running {within:?} after it started"
            ));
        }
        thread::sleep(Duration::from_millis(20));
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `size` nodes `{prefix}0..`, each joining through the first, and waits (bounded by
/// `within`) until every one has reported every other one `Joined`.
pub fn start_cluster(
    prefix: &str,
    size: usize,
    within: Duration,
) -> Result<Vec<NodeProcess>, String> {
    // Ports outside the ephemeral range, kept by this process: a node restarted on its address
    // finds it free.
    use orion_core::testing::ports::reserve_loopback_port;
    let first = NodeProcess::start(&format!("{prefix}0"), reserve_loopback_port(), &[])?;
    let seed = first.addr;
    let mut nodes = vec![first];
    for i in 1..size {
        nodes.push(NodeProcess::start(
            &format!("{prefix}{i}"),
            reserve_loopback_port(),
            &[seed],
        )?);
    }
    let ids: Vec<String> = nodes.iter().map(|node| node.id.clone()).collect();
    wait_until(within, "every node sees every other joined", || {
        nodes.iter().all(|node| {
            ids.iter()
                .filter(|id| **id != node.id)
                .all(|id| node.first("Joined", id).is_some())
        })
    })?;
    Ok(nodes)
}

/// Polls `done` every 10 ms until it holds or `within` passes.
pub fn wait_until(
    within: Duration,
    what: &str,
    mut done: impl FnMut() -> bool,
) -> Result<(), String> {
    let deadline = Instant::now() + within;
    loop {
        if done() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(format!("timed out after {within:?} waiting until {what}"));
        }
        thread::sleep(Duration::from_millis(10));
    }
}
