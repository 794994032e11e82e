//! A Raft cluster on loopback TCP inside one test process.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use orion_consensus::raft::{AutopilotConfig, NodeId, RaftConfig, RaftNode, RaftStore};
use orion_consensus::security::RaftTls;
use orion_consensus::transport::FaultInjector;
use orion_core::store::Store;
use tempfile::TempDir;
use tokio::time::{Instant, sleep};

/// The inner store of every node.
pub type Inner = orion_core::store::MemoryStore;

/// Upper bound for any wait in these tests.
pub const WAIT: Duration = Duration::from_secs(30);

pub struct Cluster {
    pub nodes: BTreeMap<NodeId, RaftNode<Inner>>,
    pub addrs: BTreeMap<NodeId, SocketAddr>,
    pub faults: FaultInjector,
    dir: TempDir,
    pub snapshot_every: u64,
    pub request_timeout: Duration,
    pub autopilot: AutopilotConfig,
    /// Mutual TLS per node (none: plain HTTP).
    pub tls: BTreeMap<NodeId, RaftTls>,
}

impl Cluster {
    pub fn new() -> Self {
        Self {
            nodes: BTreeMap::new(),
            addrs: BTreeMap::new(),
            faults: FaultInjector::new(),
            dir: tempfile::tempdir().unwrap(),
            snapshot_every: 10_000,
            request_timeout: Duration::from_secs(5),
            autopilot: AutopilotConfig::default(),
            tls: BTreeMap::new(),
        }
    }

    pub fn data_dir(&self, id: NodeId) -> PathBuf {
        self.dir.path().join(format!("node-{id}"))
    }

    pub fn config(&self, id: NodeId) -> RaftConfig {
        let addr = self
            .addrs
            .get(&id)
            .copied()
            // Outside the ephemeral range and locked to this process, so a restart finds it free.
            .unwrap_or_else(orion_core::testing::ports::reserve_loopback_port);
        let mut c = RaftConfig::new(id, "test-cluster", self.data_dir(id), addr);
        c.snapshot_every = self.snapshot_every;
        c.logs_kept_after_snapshot = 0;
        c.request_timeout = self.request_timeout;
        c.faults = self.faults.clone();
        c.autopilot = self.autopilot.clone();
        c.tls = self.tls.get(&id).cloned();
        c
    }

    /// Starts (or restarts, on the same address and data dir) node `id`.
    pub async fn start_node(&mut self, id: NodeId) {
        let node = RaftNode::start(self.config(id), Inner::new())
            .await
            .unwrap();
        self.addrs.insert(id, node.addr().parse().unwrap());
        self.nodes.insert(id, node);
    }

    /// Node 1 bootstraps, then nodes 2..=n join through node 1.
    pub async fn start(n: u64) -> Self {
        let mut c = Self::new();
        c.start_with(n).await;
        c
    }

    pub async fn start_with(&mut self, n: u64) {
        self.start_node(1).await;
        self.nodes[&1].bootstrap().await.unwrap();
        self.nodes[&1].wait_for_leader(WAIT).await.unwrap();
        let seed = self.nodes[&1].addr().to_owned();
        for id in 2..=n {
            self.start_node(id).await;
            self.nodes[&id].join(&seed).await.unwrap();
        }
    }

    pub fn store(&self, id: NodeId) -> RaftStore<Inner> {
        self.nodes[&id].store()
    }

    /// Shuts node `id` down (its data dir stays).
    pub async fn kill(&mut self, id: NodeId) {
        let node = self.nodes.remove(&id).unwrap();
        node.shutdown().await.unwrap();
    }

    /// The leader that every running node in `among` agrees on.
    pub async fn agreed_leader(&self, among: &[NodeId]) -> NodeId {
        let deadline = Instant::now() + WAIT;
        loop {
            let leaders: Vec<Option<NodeId>> = among
                .iter()
                .map(|id| self.nodes[id].status().leader)
                .collect();
            if let Some(Some(l)) = leaders.first()
                && leaders.iter().all(|x| *x == Some(*l))
                && among.contains(l)
            {
                return *l;
            }
            assert!(
                Instant::now() < deadline,
                "no agreed leader among {among:?}: {leaders:?}"
            );
            sleep(Duration::from_millis(20)).await;
        }
    }

    /// Writes `count` keys `{prefix}{i}` through node `via`; returns the acknowledged ones.
    pub async fn write_keys(&self, via: NodeId, prefix: &str, count: usize) -> Vec<String> {
        let store = self.store(via);
        let mut acked = Vec::new();
        for i in 0..count {
            let key = format!("{prefix}{i:04}");
            store.put(&key, key.as_bytes().to_vec()).await.unwrap();
            acked.push(key);
        }
        acked
    }

    /// Asserts that every key in `acked` reads back, linearizably, on every running node, and
    /// that all running nodes hold the same state at the same revision.
    pub async fn assert_all_present(&self, acked: &[String]) {
        for (id, node) in &self.nodes {
            let store = node.store();
            for key in acked {
                let kv = store.get(key).await.unwrap();
                let kv = kv.unwrap_or_else(|| panic!("node {id} lost acknowledged key {key}"));
                assert_eq!(kv.value, key.as_bytes(), "node {id} key {key}");
            }
        }
        self.assert_converged().await;
    }

    /// Waits until every running node applied the same index, then compares their states.
    pub async fn assert_converged(&self) {
        let deadline = Instant::now() + WAIT;
        loop {
            let applied: Vec<u64> = self
                .nodes
                .values()
                .map(|n| n.status().applied_index)
                .collect();
            if applied.windows(2).all(|w| w[0] == w[1]) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "nodes never converged: applied {applied:?}"
            );
            sleep(Duration::from_millis(20)).await;
        }
        let mut snapshots = Vec::new();
        for (id, node) in &self.nodes {
            snapshots.push((*id, node.store().local().snapshot().await.unwrap()));
        }
        for (id, snap) in &snapshots[1..] {
            assert_eq!(
                snap, &snapshots[0].1,
                "node {id} differs from node {}",
                snapshots[0].0
            );
        }
    }

    pub async fn shutdown(mut self) {
        let ids: Vec<NodeId> = self.nodes.keys().copied().collect();
        for id in ids {
            self.kill(id).await;
        }
    }
}
