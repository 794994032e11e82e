//! A deterministic cluster harness, in the manner of Nomad's scheduler `Harness`: N simulated
//! nodes (the library's real [`Agent`](crate::node::Agent) and
//! [`Controllers`](crate::node::Controllers)) over one [`MemoryStore`], a [`FakeRuntime`] per
//! node and one [`StaticMembership`], driven step by step on a manual clock. Agents run in an
//! order drawn from the seed, so a failing seed replays the same interleaving.
//!
//! Fault knobs: [`ClusterHarness::kill`] (the node's process dies; its containers keep running,
//! as Docker's do), [`ClusterHarness::pause`], [`ClusterHarness::cut_off`] (the node cannot reach
//! the store), [`ClusterHarness::fail_writes_for`] (every store write fails for a while), the
//! membership state of any node, and each node's [`FakeRuntime`] faults (slow or failing starts).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use async_trait::async_trait;
use rand::SeedableRng;
use rand::seq::SliceRandom;

use crate::error::{Error, Result};
use crate::membership::{Member, MemberState, StaticMembership};
use crate::model::{Millis, Resources, Task};
use crate::node::{Clock, ControllerConfig, Fence, Node};
use crate::runtime::FakeRuntime;
use crate::store::{
    ClusterStore, MemoryStore, RangeResult, Revision, Store, StoreSnapshot, Txn, TxnResult,
    WatchStream,
};

/// A clock that moves only when told.
#[derive(Debug)]
pub struct ManualClock(AtomicU64);

impl ManualClock {
    /// A clock at the current wall-clock time (task records stamp wall time on transitions).
    pub fn new() -> Self {
        ManualClock(AtomicU64::new(crate::model::now_millis()))
    }
    /// Moves the clock forward.
    pub fn advance(&self, ms: Millis) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Millis {
        self.0.load(Ordering::SeqCst)
    }
}

/// A node's view of the shared store, with faults.
#[derive(Debug, Clone)]
pub struct FaultyStore {
    inner: Arc<MemoryStore>,
    clock: Arc<ManualClock>,
    cut_off: Arc<AtomicBool>,
    writes_fail_until: Arc<AtomicU64>,
}

impl FaultyStore {
    fn check(&self, write: bool) -> Result<()> {
        if self.cut_off.load(Ordering::SeqCst) {
            return Err(Error::Unavailable(
                "cut off from the leader (harness)".into(),
            ));
        }
        if write && self.clock.now() < self.writes_fail_until.load(Ordering::SeqCst) {
            return Err(Error::Unavailable("store writes failing (harness)".into()));
        }
        Ok(())
    }
}

#[async_trait]
impl Store for FaultyStore {
    async fn get(&self, key: &str) -> Result<Option<crate::store::KeyValue>> {
        self.check(false)?;
        self.inner.get(key).await
    }
    async fn range(&self, prefix: &str) -> Result<RangeResult> {
        self.check(false)?;
        self.inner.range(prefix).await
    }
    async fn txn(&self, txn: Txn) -> Result<TxnResult> {
        self.check(true)?;
        self.inner.txn(txn).await
    }
    async fn watch(&self, prefix: &str, from: Revision) -> Result<WatchStream> {
        self.check(false)?;
        self.inner.watch(prefix, from).await
    }
    async fn compact(&self, revision: Revision) -> Result<()> {
        self.check(true)?;
        self.inner.compact(revision).await
    }
    async fn revision(&self) -> Result<Revision> {
        self.check(false)?;
        self.inner.revision().await
    }
    async fn snapshot(&self) -> Result<StoreSnapshot> {
        self.check(false)?;
        self.inner.snapshot().await
    }
    async fn restore(&self, snapshot: StoreSnapshot) -> Result<()> {
        self.check(true)?;
        self.inner.restore(snapshot).await
    }
}

/// The node type the harness simulates.
pub type SimNode = Node<FaultyStore, StaticMembership, FakeRuntime>;

struct Slot {
    id: String,
    node: SimNode,
    runtime: Arc<FakeRuntime>,
    cut_off: Arc<AtomicBool>,
    up: bool,
    paused: bool,
}

/// N simulated nodes over one store; see the module docs.
pub struct ClusterHarness {
    /// The shared store, unfaulted (what an observer sees).
    pub store: ClusterStore<Arc<MemoryStore>>,
    pub clock: Arc<ManualClock>,
    /// The leader's membership view.
    pub membership: Arc<StaticMembership>,
    config: ControllerConfig,
    writes_fail_until: Arc<AtomicU64>,
    nodes: Vec<Slot>,
    leader: usize,
    term: u64,
    fence: Option<Fence>,
    rng: rand::rngs::StdRng,
}

impl std::fmt::Debug for ClusterHarness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterHarness")
            .field("nodes", &self.nodes.len())
            .field("leader", &self.leader)
            .finish()
    }
}

/// Simulated time per [`ClusterHarness::step`].
pub const STEP_MS: Millis = 100;

impl ClusterHarness {
    /// `n` nodes (`n1`..), node 0 leading, with `config` for the controllers.
    pub fn new(n: usize, seed: u64, config: ControllerConfig) -> Self {
        let members: Vec<Member> = (1..=n)
            .map(|i| Member::alive(format!("n{i}"), Resources::new(4000, 8 << 30)))
            .collect();
        let membership = Arc::new(
            StaticMembership::new(members[0].clone(), members[1..].to_vec())
                .expect("distinct member ids"),
        );
        let mut h = ClusterHarness {
            store: ClusterStore::new(Arc::new(MemoryStore::new())),
            clock: Arc::new(ManualClock::new()),
            membership,
            config,
            writes_fail_until: Arc::new(AtomicU64::new(0)),
            nodes: Vec::new(),
            leader: 0,
            term: 1,
            fence: None,
            rng: rand::rngs::StdRng::seed_from_u64(seed),
        };
        for m in members {
            let runtime = Arc::new(FakeRuntime::new());
            let cut_off = Arc::new(AtomicBool::new(false));
            let node = h.build_node(&m.id, runtime.clone(), cut_off.clone());
            h.nodes.push(Slot {
                id: m.id,
                node,
                runtime,
                cut_off,
                up: true,
                paused: false,
            });
        }
        h
    }

    fn build_node(&self, id: &str, runtime: Arc<FakeRuntime>, cut_off: Arc<AtomicBool>) -> SimNode {
        let store = FaultyStore {
            inner: self.store.inner().clone(),
            clock: self.clock.clone(),
            cut_off,
            writes_fail_until: self.writes_fail_until.clone(),
        };
        Node::builder(
            id,
            ClusterStore::new(store),
            self.membership.clone(),
            runtime,
        )
        .config(self.config)
        .clock(self.clock.clone())
        .build()
    }

    /// Node `i`'s id.
    pub fn id(&self, i: usize) -> &str {
        &self.nodes[i].id
    }

    /// Node `i`'s runtime (its containers, and fault knobs).
    pub fn runtime(&self, i: usize) -> &Arc<FakeRuntime> {
        &self.nodes[i].runtime
    }

    /// One step: the clock moves [`STEP_MS`]; the leader's controllers run one pass (liveness,
    /// reconcile); then every live, unpaused node's agent syncs once, in a seeded order. Errors
    /// of unreachable stores are the simulated faults and are not reported.
    pub async fn step(&mut self) {
        self.clock.advance(STEP_MS);
        let l = &self.nodes[self.leader];
        if l.up && !l.paused {
            let controllers = l.node.controllers();
            if self.fence.is_none() {
                self.fence = controllers.claim(self.term).await.ok();
            }
            if let Some(fence) = &self.fence {
                let live = controllers.liveness.step(fence).await;
                let round = controllers.reconciler.round(fence).await;
                // Someone claimed the fence since (a test driving controllers by hand): claim
                // it again next step, as the real supervisor does while it still leads.
                if live.is_ok_and(|r| r.fenced_out) || round.is_ok_and(|r| r.fenced_out) {
                    self.fence = None;
                }
            }
        }
        let mut order: Vec<usize> = (0..self.nodes.len()).collect();
        order.shuffle(&mut self.rng);
        for i in order {
            let s = &self.nodes[i];
            if s.up && !s.paused {
                let _ = s.node.agent().sync().await;
            }
        }
        // Let the health checks the agents spawned run (their results count at the next step).
        for _ in 0..8 {
            tokio::task::yield_now().await;
        }
    }

    /// Steps until `done` holds on the tasks, at most `max_steps`; returns whether it held.
    pub async fn run_until(&mut self, max_steps: usize, done: impl Fn(&[Task]) -> bool) -> bool {
        for _ in 0..max_steps {
            self.step().await;
            if done(&self.store.list_tasks().await.unwrap_or_default()) {
                return true;
            }
        }
        false
    }

    /// Node `i`'s process dies (kill -9): its agent stops and membership reports it dead. Its
    /// containers keep running.
    pub fn kill(&mut self, i: usize) {
        self.nodes[i].up = false;
        self.set_member_state(i, MemberState::Dead);
    }

    /// Node `i` starts again: a fresh agent (it adopts its running containers) and membership
    /// reports it alive.
    pub fn restart(&mut self, i: usize) {
        let (id, runtime, cut_off) = {
            let s = &self.nodes[i];
            (s.id.clone(), s.runtime.clone(), s.cut_off.clone())
        };
        self.nodes[i].node = self.build_node(&id, runtime, cut_off);
        self.nodes[i].up = true;
        self.set_member_state(i, MemberState::Alive);
    }

    /// Node `i` stops doing anything until [`ClusterHarness::resume`]; membership is untouched
    /// (set it with [`ClusterHarness::set_member_state`] to simulate a false death).
    pub fn pause(&mut self, i: usize) {
        self.nodes[i].paused = true;
    }

    pub fn resume(&mut self, i: usize) {
        self.nodes[i].paused = false;
    }

    /// Node `i` can (not) reach the store.
    pub fn cut_off(&mut self, i: usize, cut: bool) {
        self.nodes[i].cut_off.store(cut, Ordering::SeqCst);
    }

    /// Every store write fails for the next `ms` of simulated time.
    pub fn fail_writes_for(&mut self, ms: Millis) {
        self.writes_fail_until
            .store(self.clock.now() + ms, Ordering::SeqCst);
    }

    /// What the leader's membership says of node `i`.
    pub fn set_member_state(&mut self, i: usize, state: MemberState) {
        let id = self.nodes[i].id.clone();
        // The local member of a static membership cannot be marked; the harness never needs to.
        let _ = self.membership.set_state(&id, state);
    }

    /// Node `i` becomes leader in a new term (its controllers claim the fence at the next step).
    pub fn elect(&mut self, i: usize) {
        self.leader = i;
        self.term += 1;
        self.fence = None;
    }

    /// The controllers of node `i` (to drive a stale leader by hand).
    pub fn node(&self, i: usize) -> &SimNode {
        &self.nodes[i].node
    }
}
