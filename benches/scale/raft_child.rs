//! The real 3-node Raft cluster: each voter is a child process (this program re-run with
//! [`ROLE_ARG`]), a `RaftNode` over loopback (plain HTTP transport) with a `MemoryStore` inner
//! store of the binary's watch history limit, as `orion` runs in cluster mode. Whichever child
//! leads runs the `ReconcileController` under the `Fence`, as the binary's controllers do.
//!
//! Protocol on the child's stdout, one line each: `READY addr=<raft addr> pid=<pid>` once it is
//! a member; `ROUND ms=.. plan_ms=.. placed=.. actions=.. applied=..` for every reconcile round
//! that acted; `READS full=.. applied=..` whenever the kept state was read in full again (the
//! first read, and after its watch fell behind); `LOAD ms=.. tasks=..` answering `LOAD` on stdin (one `load_state` timed on the
//! leader's replica). The child exits when its stdin closes, so a parent that dies takes its
//! children with it; [`RaftChild`] also kills its child when dropped.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use orion_consensus::raft::{RaftConfig, RaftNode, ReadMode, WORKERS_PREFIX};
use orion_core::node::{Clock, Fence, Leadership, ReconcileController, SystemClock};
use orion_core::observe::Observer;
use orion_core::reconciler::ReconcilePolicy;
use orion_core::scheduler::{Scheduler, SchedulerConfig};
use orion_core::store::{ClusterStore, MemoryStore, Op, Store, Txn, keys};

/// The argument that makes this program a Raft child.
pub const ROLE_ARG: &str = "--raft-child";
/// The `orion` binary's watch history limit (`orion_bin::node::WATCH_HISTORY`).
pub const WATCH_HISTORY: u64 = 10_000;
/// The cluster name every member's data dir records.
pub const CLUSTER: &str = "scale-bench";
/// How long a child may take to start and join.
const READY_LIMIT: Duration = Duration::from_secs(60);

/// What a Raft child is told on its command line.
pub struct ChildArgs {
    pub id: u64,
    pub dir: std::path::PathBuf,
    /// The member to join (`None`: bootstrap).
    pub join: Option<String>,
    /// The Raft id of the simulation process, recorded as a worker so it stays a learner.
    pub worker: u64,
    pub max_creates: usize,
    /// `RaftConfig::snapshot_every` (the binary's default: 10,000 entries).
    pub snapshot_every: u64,
}

/// A running Raft child and what it printed.
pub struct RaftChild {
    pub id: u64,
    pub pid: u32,
    pub addr: String,
    pub dir: std::path::PathBuf,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Drop for RaftChild {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl RaftChild {
    /// Starts child `args.id` and waits until it is a member.
    pub fn spawn(args: &ChildArgs) -> Result<Self, String> {
        let exe = std::env::current_exe().map_err(|e| format!("own path: {e}"))?;
        let mut cmd = Command::new(exe);
        cmd.arg(ROLE_ARG)
            .arg(args.id.to_string())
            .arg(&args.dir)
            .arg(args.join.as_deref().unwrap_or("-"))
            .arg(args.worker.to_string())
            .arg(args.max_creates.to_string())
            .arg(args.snapshot_every.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped());
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("start a raft child: {e}"))?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("piped stdout");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        let id = args.id;
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if ["LEAD ", "ROUND ", "ROUNDERR ", "READS "]
                    .iter()
                    .any(|p| line.starts_with(p))
                {
                    eprintln!("    [raft-{id}] {line}");
                }
                sink.lock().unwrap().push(line);
            }
        });
        let mut me = RaftChild {
            id: args.id,
            pid: child.id(),
            addr: String::new(),
            dir: args.dir.clone(),
            child,
            stdin,
            lines,
        };
        let ready = me.wait_line("READY ", READY_LIMIT)?;
        me.addr = field(&ready, "addr")
            .ok_or("READY without addr")?
            .to_owned();
        Ok(me)
    }

    /// The first line starting with `prefix` printed so far or within `limit`.
    pub fn wait_line(&mut self, prefix: &str, limit: Duration) -> Result<String, String> {
        let started = Instant::now();
        loop {
            if let Some(l) = self.take_line(prefix) {
                return Ok(l);
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("raft child {} exited: {status}", self.id));
            }
            if started.elapsed() > limit {
                return Err(format!(
                    "raft child {} printed no `{prefix}` line within {limit:?}",
                    self.id
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn take_line(&self, prefix: &str) -> Option<String> {
        let mut lines = self.lines.lock().unwrap();
        let i = lines.iter().position(|l| l.starts_with(prefix))?;
        Some(lines.remove(i))
    }

    /// Every line starting with `prefix` printed so far (kept).
    pub fn lines(&self, prefix: &str) -> Vec<String> {
        let lines = self.lines.lock().unwrap();
        lines
            .iter()
            .filter(|l| l.starts_with(prefix))
            .cloned()
            .collect()
    }

    /// Sends one command line.
    pub fn send(&mut self, command: &str) -> Result<(), String> {
        let stdin = self.stdin.as_mut().ok_or("stdin closed")?;
        writeln!(stdin, "{command}")
            .and_then(|_| stdin.flush())
            .map_err(|e| format!("raft child {}: {e}", self.id))
    }

    /// `VmRSS` and `VmHWM` of the child, in bytes.
    pub fn rss(&self) -> Result<(f64, f64), String> {
        rss_of(self.pid)
    }
}

/// `VmRSS` and `VmHWM` of process `pid`, in bytes.
pub fn rss_of(pid: u32) -> Result<(f64, f64), String> {
    crate::proc_stats::rss_of(&pid.to_string())
}

/// The value of `name=` in a `key=value` line.
pub fn field<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    line.split_whitespace()
        .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
}

/// Parses a child's command line (after [`ROLE_ARG`]).
pub fn parse_child_args(args: &[String]) -> ChildArgs {
    let arg = |i: usize| {
        args.get(i)
            .unwrap_or_else(|| panic!("raft child argument {i}"))
    };
    ChildArgs {
        id: arg(0).parse().expect("raft child id"),
        dir: arg(1).into(),
        join: Some(arg(2).clone()).filter(|a| a != "-"),
        worker: arg(3).parse().expect("worker id"),
        max_creates: arg(4).parse().expect("max creates"),
        snapshot_every: arg(5).parse().expect("snapshot every"),
    }
}

/// Planning time and placements of the latest round, from the controller's observer.
#[derive(Debug, Default)]
struct Planned(Mutex<(Duration, usize)>);

impl Observer for Planned {
    fn reconcile_planned(&self, elapsed: Duration, placed: usize, _unplaced: usize) {
        *self.0.lock().unwrap() = (elapsed, placed);
    }
}

/// The child's main: one Raft member, and the reconcile loop while it leads.
pub fn child_main(args: ChildArgs) {
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    runtime.block_on(async move {
        let mut config =
            RaftConfig::new(args.id, CLUSTER, &args.dir, "127.0.0.1:0".parse().unwrap());
        config.request_timeout = Duration::from_secs(30);
        config.snapshot_every = args.snapshot_every;
        let inner = MemoryStore::with_history_bounds(
            WATCH_HISTORY,
            orion_core::store::DEFAULT_HISTORY_EVENTS,
        );
        let raft = RaftNode::start(config, inner).await.expect("start raft");
        match &args.join {
            None => {
                raft.bootstrap().await.expect("bootstrap");
                raft.wait_for_leader(Duration::from_secs(20))
                    .await
                    .expect("a leader");
                // The simulation process joins as a worker would: a learner for good.
                let mark = Txn::new().and_then(Op::Put(
                    format!("{WORKERS_PREFIX}{}", args.worker),
                    b"worker".to_vec(),
                ));
                raft.store().txn(mark).await.expect("record the worker");
            }
            Some(addr) => raft.join(addr).await.expect("join"),
        }
        println!("READY addr={} pid={}", raft.addr(), std::process::id());
        let (commands_tx, mut commands) = tokio::sync::mpsc::unbounded_channel::<String>();
        std::thread::spawn(move || {
            for line in std::io::stdin().lines().map_while(Result::ok) {
                if commands_tx.send(line).is_err() {
                    break;
                }
            }
            // The parent is gone or done.
            std::process::exit(0);
        });
        let local = ClusterStore::new(raft.store().with_read_mode(ReadMode::Stale));
        tokio::spawn(async move {
            while let Some(command) = commands.recv().await {
                if command == "LOAD" {
                    let t = Instant::now();
                    // Seconds of decoding at 1M tasks: off the async workers, or this
                    // measurement itself stalls the heartbeats and costs an election.
                    let handle = tokio::runtime::Handle::current();
                    let state = tokio::task::block_in_place(|| handle.block_on(local.load_state()))
                        .expect("load_state");
                    println!(
                        "LOAD ms={:.1} tasks={}",
                        t.elapsed().as_secs_f64() * 1e3,
                        state.tasks.len()
                    );
                }
            }
        });
        lead(&raft, args.id, args.max_creates).await;
    });
}

/// Runs the reconcile loop whenever this node leads (as `Controllers::run` does for its
/// reconciler): claim the fence for the term, then a round after every change (20 ms debounce),
/// at once when a round hit its creation bound, and at least every 5 s.
async fn lead(raft: &RaftNode<MemoryStore>, id: u64, max_creates: usize) {
    use futures::StreamExt;
    let store = ClusterStore::new(raft.store());
    let planned = Arc::new(Planned::default());
    let policy = ReconcilePolicy {
        max_creates_per_round: max_creates,
        ..ReconcilePolicy::default()
    };
    let scheduler = Arc::new(Scheduler::default_pipeline(SchedulerConfig::default()));
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let controller = ReconcileController::new(store.clone(), scheduler, clock.clone(), policy)
        .with_observer(planned.clone());
    let mut leadership = orion_consensus::cluster::leadership(raft);
    let name = format!("raft-{id}");
    loop {
        let lead = *leadership.borrow_and_update();
        let Some(term) = lead.term() else {
            if leadership.changed().await.is_err() {
                return;
            }
            continue;
        };
        let fence = match Fence::claim(&store, &name, term, clock.now()).await {
            Ok(f) => f,
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        println!("LEAD term={term}");
        let from = store.inner().revision().await.unwrap_or(0) + 1;
        let mut changes = store.inner().watch(keys::ROOT, from).await.ok();
        let mut full_reads = 0;
        while matches!(*leadership.borrow(), Leadership::Leader { term: t } if t == term) {
            let started = Instant::now();
            let mut wait = Duration::from_secs(5);
            match controller.round(&fence).await {
                Ok(r) if r.fenced_out => {
                    println!("ROUNDERR fenced out in term {term}");
                    break;
                }
                Ok(r) => {
                    if r.actions > 0 {
                        let (plan, placed) = *planned.0.lock().unwrap();
                        println!(
                            "ROUND ms={:.1} plan_ms={:.1} placed={placed} actions={} applied={} \
                             skipped={} failed={} unplaced={} revision={}",
                            started.elapsed().as_secs_f64() * 1e3,
                            plan.as_secs_f64() * 1e3,
                            r.actions,
                            r.applied,
                            r.skipped,
                            r.failed,
                            r.unplaced,
                            r.revision,
                        );
                    }
                    if r.more {
                        wait = Duration::ZERO;
                    }
                }
                Err(e) => {
                    println!(
                        "ROUNDERR ms={:.1} {e}",
                        started.elapsed().as_secs_f64() * 1e3
                    );
                    wait = Duration::from_millis(500);
                }
            }
            // Every full read of the kept state (the first, and any after its watch fell behind).
            let (reads, applied) = controller.state_reads().await;
            if reads != full_reads {
                full_reads = reads;
                println!("READS full={reads} applied={applied}");
            }
            let change = async {
                match changes.as_mut() {
                    Some(s) => matches!(s.next().await, Some(Ok(_))),
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                ok = change => {
                    if !ok { changes = store.inner().watch(keys::ROOT, store.inner().revision().await.unwrap_or(0) + 1).await.ok(); }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                _ = tokio::time::sleep(wait) => {}
                _ = leadership.changed() => {}
            }
        }
    }
}
