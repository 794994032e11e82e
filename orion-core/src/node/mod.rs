//! The node's own loops, as library code: the [`Agent`] every node runs, the [`Controllers`] the
//! leader runs, and a [`Node`] that assembles them over any [`Store`], [`Membership`] and
//! [`Runtime`].
//!
//! ```
//! # #[tokio::main] async fn main() -> orion_core::Result<()> {
//! use std::sync::Arc;
//! use orion_core::membership::{Member, StaticMembership};
//! use orion_core::model::{Resources, ServiceSpec};
//! use orion_core::node::Node;
//! use orion_core::runtime::FakeRuntime;
//! use orion_core::store::{ClusterStore, MemoryStore};
//!
//! let store = ClusterStore::new(MemoryStore::new());
//! let me = Member::alive("n1", Resources::new(2000, 4 << 30));
//! let membership = Arc::new(StaticMembership::new(me, vec![])?);
//! let node = Node::builder("n1", store.clone(), membership, Arc::new(FakeRuntime::new())).build();
//! store.put_service(&ServiceSpec::new("web", "nginx:alpine", 2)).await?;
//! let (stop, shutdown) = tokio::sync::watch::channel(false);
//! let running = tokio::spawn(node.run(shutdown));
//! // ... the controllers place two tasks on n1 and its agent starts them ...
//! # let _ = stop.send(true); running.await.unwrap();
//! # Ok(()) }
//! ```
//!
//! Roles:
//! - [`Agent`]: runs this node's tasks through its runtime and reports their status; reconnects
//!   its containers after a false death; never kills one because the store is unreachable.
//! - [`ReconcileController`]: specs to placed tasks, one fenced plan per round.
//! - [`LivenessController`]: node records from membership, with a grace period and a rate limit.
//! - [`GarbageCollector`]: finished task records, by retention and a per-service history.
//! - [`Fence`]: the leadership record every controller write compares.
//!
//! Every loop has a one-pass method (`Agent::sync`, `ReconcileController::round`,
//! `LivenessController::step`, `GarbageCollector::round`) that the deterministic cluster harness
//! (`orion_core::testing::cluster`) drives step by step.

use std::sync::Arc;

use tokio::sync::watch;

use crate::membership::Membership;
use crate::model::Millis;
use crate::observe::SharedObserver;
use crate::runtime::Runtime;
use crate::scheduler::{Scheduler, SchedulerConfig};
use crate::store::{ClusterStore, Store};

mod agent;
mod agent_loop;
mod container;
mod controllers;
mod demux;
mod fence;
mod gc;
pub mod health;
mod inflight;
mod liveness;
mod operations;
mod restart;
mod rollouts;
mod secrets;
mod status_writer;
mod traces;

pub use agent::{Agent, MAX_PARALLEL_CONVERGE, MAX_RESTARTS_IN_PLACE, RESYNC_INTERVAL};
pub use agent_loop::MAX_EVENTS_PER_BATCH;
pub use container::container_spec;
pub use controllers::{
    ControllerConfig, Controllers, QUIET_REPLAN, ReconcileController, RoundReport,
};
pub use demux::TaskDemux;
pub use fence::{Fence, LeaderRecord};
pub use gc::{GarbageCollector, GcConfig, collectable};
pub use inflight::{DEFAULT_MAX_IN_FLIGHT, MAX_IN_FLIGHT_CEILING};
pub use liveness::{LivenessConfig, LivenessController, LivenessReport};
pub use rollouts::{RolloutPassReport, advance_rollouts};
pub use status_writer::MAX_UPDATES_PER_TXN;

/// Where the loops read the time (milliseconds since the Unix epoch). The harness uses a manual
/// clock to step through grace periods and back-offs without waiting.
pub trait Clock: Send + Sync + std::fmt::Debug + 'static {
    fn now(&self) -> Millis;
}

/// The system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Millis {
        crate::model::now_millis()
    }
}

/// Whether this node leads, and in which consensus term.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Leadership {
    #[default]
    Follower,
    Leader {
        term: u64,
    },
}

impl Leadership {
    /// The term, while leading.
    pub fn term(self) -> Option<u64> {
        match self {
            Leadership::Leader { term } => Some(term),
            Leadership::Follower => None,
        }
    }
}

/// A node: an agent and the controllers, over one store, membership and runtime.
pub struct Node<S, M: ?Sized, R: ?Sized> {
    agent: Agent<S, R>,
    sampler: crate::autoscale::UsageSampler<S, R>,
    controllers: Controllers<S, M>,
    leadership: watch::Receiver<Leadership>,
    /// Keeps a fixed leadership open when none was given.
    _fixed: Option<watch::Sender<Leadership>>,
}

impl<S, M: ?Sized, R: Runtime + ?Sized> std::fmt::Debug for Node<S, M, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node").field("agent", &self.agent).finish()
    }
}

impl<S: Store + Clone, M: Membership + ?Sized, R: Runtime + ?Sized> Node<S, M, R> {
    /// Starts building node `node_id`.
    pub fn builder(
        node_id: impl Into<String>,
        store: ClusterStore<S>,
        membership: Arc<M>,
        runtime: Arc<R>,
    ) -> NodeBuilder<S, M, R> {
        NodeBuilder {
            node_id: node_id.into(),
            store,
            membership,
            runtime,
            scheduler: None,
            config: ControllerConfig::default(),
            clock: Arc::new(SystemClock),
            publish_ip: "127.0.0.1".into(),
            leadership: None,
            observer: None,
            secrets: None,
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
        }
    }

    /// The agent.
    pub fn agent(&self) -> &Agent<S, R> {
        &self.agent
    }

    /// The controllers.
    pub fn controllers(&self) -> &Controllers<S, M> {
        &self.controllers
    }

    /// Runs the agent, and the controllers while this node leads, until `shutdown` turns true.
    /// Containers keep running after it returns.
    pub async fn run(self, shutdown: watch::Receiver<bool>) {
        let Node {
            agent,
            sampler,
            controllers,
            leadership,
            _fixed,
        } = self;
        tokio::join!(
            agent.run(shutdown.clone()),
            sampler.run(shutdown.clone()),
            controllers.run(leadership, shutdown)
        );
    }
}

/// Builds a [`Node`]; see [`Node::builder`].
pub struct NodeBuilder<S, M: ?Sized, R: ?Sized> {
    node_id: String,
    store: ClusterStore<S>,
    membership: Arc<M>,
    runtime: Arc<R>,
    scheduler: Option<Scheduler>,
    config: ControllerConfig,
    clock: Arc<dyn Clock>,
    publish_ip: String,
    leadership: Option<watch::Receiver<Leadership>>,
    observer: Option<SharedObserver>,
    secrets: Option<Arc<crate::secrets::SecretSealer>>,
    max_in_flight: usize,
}

impl<S, M: ?Sized, R: ?Sized> std::fmt::Debug for NodeBuilder<S, M, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeBuilder")
            .field("node_id", &self.node_id)
            .finish()
    }
}

impl<S: Store + Clone, M: Membership + ?Sized, R: Runtime + ?Sized> NodeBuilder<S, M, R> {
    /// The scheduler (default: the default pipeline with default weights).
    pub fn scheduler(mut self, scheduler: Scheduler) -> Self {
        self.scheduler = Some(scheduler);
        self
    }

    /// Controller timings and bounds.
    pub fn config(mut self, config: ControllerConfig) -> Self {
        self.config = config;
        self
    }

    /// The clock (default: the system's).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The host address published ports bind to (default 127.0.0.1).
    pub fn publish_ip(mut self, ip: impl Into<String>) -> Self {
        self.publish_ip = ip.into();
        self
    }

    /// Who leads (default: this node, always, in term 1: a single-node cluster).
    pub fn leadership(mut self, leadership: watch::Receiver<Leadership>) -> Self {
        self.leadership = Some(leadership);
        self
    }

    /// Where the agent and the controllers report events worth counting (default: nowhere).
    pub fn observer(mut self, observer: SharedObserver) -> Self {
        self.observer = Some(observer);
        self
    }

    /// The key the agent opens secrets with (default: none, and a task whose service references
    /// a secret fails to start with an error saying this node holds no key).
    pub fn secrets(mut self, sealer: Arc<crate::secrets::SecretSealer>) -> Self {
        self.secrets = Some(sealer);
        self
    }

    /// The agent's bound on task operations at once (see [`Agent::max_in_flight`]); an error
    /// outside 1 to [`MAX_IN_FLIGHT_CEILING`].
    pub fn max_in_flight(mut self, n: usize) -> crate::Result<Self> {
        inflight::check_limit(n)?;
        self.max_in_flight = n;
        Ok(self)
    }

    pub fn build(self) -> Node<S, M, R> {
        let scheduler = self
            .scheduler
            .unwrap_or_else(|| Scheduler::default_pipeline(SchedulerConfig::default()));
        let (fixed, leadership) = match self.leadership {
            Some(l) => (None, l),
            None => {
                let (tx, rx) = watch::channel(Leadership::Leader { term: 1 });
                (Some(tx), rx)
            }
        };
        let sampler = crate::autoscale::UsageSampler::new(
            self.node_id.clone(),
            self.store.clone(),
            self.runtime.clone(),
            self.clock.clone(),
            self.config.autoscale,
        );
        let mut agent = Agent::new(
            self.node_id.clone(),
            self.store.clone(),
            self.runtime,
            self.clock.clone(),
            self.publish_ip,
        )
        .max_in_flight(self.max_in_flight)
        .expect("checked by NodeBuilder::max_in_flight");
        let mut controllers = Controllers::new(
            self.node_id,
            self.store,
            self.membership,
            Arc::new(scheduler),
            self.clock,
            self.config,
        );
        if let Some(sealer) = self.secrets {
            agent = agent.with_secrets(sealer);
        }
        if let Some(observer) = self.observer {
            agent = agent.with_observer(observer.clone());
            controllers = controllers.with_observer(observer);
        }
        Node {
            agent,
            sampler,
            controllers,
            leadership,
            _fixed: fixed,
        }
    }
}
