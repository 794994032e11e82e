//! One `orion` node process of a test: its ports, data dir, log, role and runtime; start, stop,
//! signal and inspect it.
#![allow(dead_code)]

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{ORION_BIN, reserve_loopback_port};

/// The `--runtime` of a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeRuntime {
    Docker,
    Process,
}

impl NodeRuntime {
    /// The flag's value.
    pub fn flag(self) -> &'static str {
        match self {
            NodeRuntime::Docker => "docker",
            NodeRuntime::Process => "process",
        }
    }
}

/// How a node process is started.
#[derive(Debug, Clone)]
pub enum Role {
    /// `orion up`: a single-node cluster.
    Single,
    /// `orion server --bootstrap`.
    Bootstrap,
    /// `orion server --join <a member's Raft addr>`, with [`NodeProc::join_token`] in
    /// `ORION_JOIN_TOKEN`.
    Join(SocketAddr),
}

/// One `orion` node process.
#[derive(Debug)]
pub struct NodeProc {
    pub id: String,
    pub api: SocketAddr,
    pub raft: SocketAddr,
    pub gossip: SocketAddr,
    /// The DNS server (UDP and TCP).
    pub dns: SocketAddr,
    /// `--dns-containers`: `off` by default, so test nodes never contend for port 53.
    pub dns_containers: String,
    pub data_dir: PathBuf,
    pub log: PathBuf,
    pub role: Role,
    pub runtime: NodeRuntime,
    /// Appended to the command line ([`NodeProc::use_config`] adds `--config`).
    pub extra_args: Vec<String>,
    /// A command the node is started under, e.g. `["prlimit", "--nofile=512:512"]` (it must
    /// exec the node, so the pid stays the node's).
    pub wrapper: Vec<String>,
    child: Option<Child>,
    /// When the current process was spawned.
    pub started_at: Option<Instant>,
    /// The API token requests to this node carry: the management token of the cluster it is
    /// in (its own when it bootstrapped one). Set by `TestCluster::start`.
    pub token: String,
    /// The join token a [`Role::Join`] node is started with (in `ORION_JOIN_TOKEN`; none when
    /// empty). Set by `TestCluster::start` to the cluster's voter token unless already set.
    pub join_token: String,
    /// Serve the API over TLS (the default of `orion`); false (the harness's default) starts
    /// the node with `ORION_API_PLAIN_LOOPBACK=1`, so tests speak plain HTTP on loopback.
    pub api_tls: bool,
}

impl NodeProc {
    /// A node `id` (not started) keeping its data dir and log under `dir`, on free ports.
    pub fn new(id: String, dir: PathBuf, role: Role) -> Self {
        NodeProc {
            api: reserve_loopback_port(),
            raft: reserve_loopback_port(),
            gossip: reserve_loopback_port(),
            dns: reserve_loopback_port(),
            dns_containers: "off".into(),
            data_dir: dir.join(&id),
            log: dir.join(format!("{id}.log")),
            id,
            role,
            runtime: NodeRuntime::Docker,
            extra_args: Vec::new(),
            wrapper: Vec::new(),
            child: None,
            started_at: None,
            token: String::new(),
            join_token: String::new(),
            api_tls: false,
        }
    }

    /// The command line of this node.
    pub fn args(&self) -> Vec<String> {
        let mut args: Vec<String> = match self.role {
            Role::Single => vec!["up".into()],
            Role::Bootstrap => vec!["server".into(), "--bootstrap".into()],
            Role::Join(seed) => vec!["server".into(), "--join".into(), seed.to_string()],
        };
        for (flag, value) in [
            ("--node-id", self.id.clone()),
            ("--data-dir", self.data_dir.display().to_string()),
            ("--api-addr", self.api.to_string()),
            ("--raft-addr", self.raft.to_string()),
            ("--gossip-addr", self.gossip.to_string()),
            ("--runtime", self.runtime.flag().into()),
            ("--dns-addr", self.dns.to_string()),
            ("--dns-containers", self.dns_containers.clone()),
        ] {
            args.push(flag.into());
            args.push(value);
        }
        args.extend(self.extra_args.iter().cloned());
        args
    }

    /// Writes `yaml` as this node's orion.yaml (next to its data dir) and starts it with
    /// `--config` pointing there.
    pub fn use_config(&mut self, yaml: &str) {
        let path = self.data_dir.with_extension("yaml");
        std::fs::write(&path, yaml).expect("write the node's orion.yaml");
        self.extra_args.push("--config".into());
        self.extra_args.push(path.display().to_string());
    }

    /// How many file descriptors the running process has open, from /proc.
    pub fn open_fds(&self) -> Option<usize> {
        let dir = std::fs::read_dir(format!("/proc/{}/fd", self.pid()?)).ok()?;
        Some(dir.count())
    }

    /// Spawns the process (its output is appended to [`NodeProc::log`]).
    pub fn spawn(&mut self) {
        assert!(self.child.is_none(), "node {} is already running", self.id);
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("open node log");
        // stdout (the management token's one-time notice) goes to its own file, so the log
        // holds only log lines (JSON logs stay one object per line).
        let out = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log.with_extension("stdout"))
            .expect("open node stdout file");
        let mut cmd = match self.wrapper.split_first() {
            Some((program, args)) => {
                let mut cmd = Command::new(program);
                cmd.args(args).arg(&*ORION_BIN);
                cmd
            }
            None => Command::new(&*ORION_BIN),
        };
        if !self.join_token.is_empty() {
            cmd.env("ORION_JOIN_TOKEN", &self.join_token);
        }
        if !self.api_tls {
            cmd.env("ORION_API_PLAIN_LOOPBACK", "true");
        }
        let child = cmd
            .args(self.args())
            .env("ORION_LOG", "info,openraft=warn")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot spawn {}: {e}", ORION_BIN.display()));
        self.started_at = Some(Instant::now());
        self.child = Some(child);
    }

    /// Waits at most `within` for the process to exit on its own; returns its status, or kills
    /// it and returns `None` when it is still running.
    pub fn wait_exit(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let mut child = self.child.take()?;
        let deadline = Instant::now() + within;
        for _ in 0..(within.as_millis() / 50 + 1) {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        None
    }

    /// The pid of the running process.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// `kill -9`, then reaps the process.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Sends `signal` (`STOP`, `CONT`, ...) to the running process.
    pub fn signal(&self, signal: &str) {
        let pid = self.pid().expect("the node runs");
        let status = Command::new("kill")
            .args([format!("-{signal}"), pid.to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal} {pid} failed");
    }

    /// SIGTERM, then waits (at most 15 s) for a clean exit; panics when it does not exit.
    pub fn sigterm(&mut self) {
        let Some(mut c) = self.child.take() else {
            return;
        };
        let status = Command::new("kill")
            .args(["-TERM", &c.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM {} failed", c.id());
        let deadline = Instant::now() + Duration::from_secs(15);
        for _ in 0..300 {
            if let Ok(Some(exit)) = c.try_wait() {
                assert!(
                    exit.success(),
                    "node {} exited with {exit} on SIGTERM",
                    self.id
                );
                return;
            }
            if Instant::now() >= deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = c.kill();
        let _ = c.wait();
        panic!("node {} did not exit within 15 s of SIGTERM", self.id);
    }

    /// The node's API URL for `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.api, path)
    }

    /// The captured log.
    pub fn read_log(&self) -> String {
        let mut s = String::new();
        if let Ok(mut f) = File::open(&self.log) {
            let _ = f.read_to_string(&mut s);
        }
        s
    }

    /// VmRSS of the running process in KiB, from /proc.
    pub fn rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()?)).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    }
}
