//! The in-memory index DNS answers from, and the store watch that keeps it current.
//!
//! [`IndexWatcher::spawn`] reads everything under `/orion/` once, then follows a watch from the
//! next revision: each batch of events updates the raw maps and rebuilds an immutable
//! [`ZoneData`] that is swapped in whole, so a query never reads the store and never sees half
//! an update. If the watch ends (store restored, history compacted), the watcher reads
//! everything again and resumes.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use futures::{FutureExt, StreamExt};
use orion_core::model::{
    NetworkCoordinate, NetworkMatrix, NetworkMeasurement, Node, NodeLinks, Task,
};
use orion_core::model::{NodeStatus, ServiceSpec};
use orion_core::store::{ClusterStore, EventKind, KeyValue, Revision, Store, decode_value, keys};
use tokio::sync::watch;
use tracing::{debug, warn};

/// Events applied before the zone is rebuilt when they arrive back to back.
const MAX_BATCH: usize = 4096;

/// A port's SRV entries: `(task id, node, host port)` of each serving replica that published it.
pub type PortEntries = Vec<(String, String, u16)>;

/// What DNS knows of one service.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ServiceEntry {
    /// Distinct nodes with at least one serving replica, by node id.
    pub nodes: Vec<String>,
    /// Serving replicas by task id (lower case).
    pub tasks: HashMap<String, String>,
    /// `(port label, protocol)` -> entries; every port of the spec has a key, even with no
    /// serving replica (an empty answer, not NXDOMAIN).
    pub ports: HashMap<(String, String), PortEntries>,
}

/// An immutable picture of what DNS serves, rebuilt on every change.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ZoneData {
    /// The store revision it reflects (the SOA serial's source).
    pub revision: Revision,
    /// Services by name.
    pub services: HashMap<String, ServiceEntry>,
    /// Advertised address of every node that has one, by node id.
    pub node_addrs: BTreeMap<String, IpAddr>,
    /// Estimated RTT in ms from the answering node to each node it has a figure for.
    pub rtt_ms: HashMap<String, f64>,
}

impl ZoneData {
    /// True when proximity can order answers (some RTT other than to itself is known).
    pub fn has_proximity(&self) -> bool {
        !self.rtt_ms.is_empty()
    }
}

/// The raw records the zone is built from.
#[derive(Debug, Default)]
struct Raw {
    services: HashMap<String, ServiceSpec>,
    tasks: HashMap<String, Task>,
    nodes: HashMap<String, Node>,
    measurements: HashMap<String, NetworkMeasurement>,
    /// Per-node link records (`keys::LINKS`), by node id.
    links: HashMap<String, NodeLinks>,
    coords: HashMap<String, NetworkCoordinate>,
}

impl Raw {
    /// Applies one put (`value` is `Some`) or delete of `key`; keys outside DNS's interest and
    /// values that do not decode are skipped (logged), never fatal.
    fn apply(&mut self, key: &str, value: Option<&[u8]>) {
        fn set<T: serde::de::DeserializeOwned>(
            map: &mut HashMap<String, T>,
            id: &str,
            key: &str,
            value: Option<&[u8]>,
        ) {
            match value.map(|bytes| decode_value::<T>(key, bytes)) {
                Some(Ok(v)) => {
                    map.insert(id.to_owned(), v);
                }
                Some(Err(e)) => {
                    warn!(key, error = %e, "dns: skipping a record that does not decode")
                }
                None => {
                    map.remove(id);
                }
            }
        }
        if let Some(id) = key.strip_prefix(keys::SERVICES) {
            set(&mut self.services, id, key, value);
        } else if let Some(id) = key.strip_prefix(keys::TASKS) {
            set(&mut self.tasks, id, key, value);
        } else if let Some(id) = key.strip_prefix(keys::NODES) {
            set(&mut self.nodes, id, key, value);
        } else if let Some(id) = key.strip_prefix(keys::NETWORK) {
            set(&mut self.measurements, id, key, value);
        } else if let Some(id) = key.strip_prefix(keys::LINKS) {
            set(&mut self.links, id, key, value);
        } else if let Some(id) = key.strip_prefix(keys::COORDINATES) {
            set(&mut self.coords, id, key, value);
        }
    }

    fn build(&self, me: &str, revision: Revision) -> ZoneData {
        let node_addrs: BTreeMap<String, IpAddr> = self
            .nodes
            .values()
            .filter(|n| n.status != NodeStatus::Down)
            .filter_map(|n| node_address(n).map(|ip| (n.id.clone(), ip)))
            .collect();
        let mut services: HashMap<String, ServiceEntry> = HashMap::new();
        for spec in self.services.values() {
            let entry = services.entry(spec.name.clone()).or_default();
            for p in &spec.ports {
                entry.ports.entry(port_key(p)).or_default();
            }
        }
        let mut tasks: Vec<&Task> = self.tasks.values().filter(|t| t.is_serving()).collect();
        tasks.sort_by(|a, b| a.id.cmp(&b.id));
        for task in tasks {
            let (Some(node), Some(spec)) = (
                task.node.as_deref(),
                self.services.get(task.service.as_str()),
            ) else {
                continue;
            };
            if !node_addrs.contains_key(node) {
                continue;
            }
            let entry = services.entry(spec.name.clone()).or_default();
            if !entry.nodes.iter().any(|n| n == node) {
                entry.nodes.push(node.to_owned());
            }
            entry
                .tasks
                .insert(task.id.as_str().to_ascii_lowercase(), node.to_owned());
            for p in &spec.ports {
                let published = task.ports.iter().find(|pp| {
                    pp.container_port == p.container_port && pp.protocol == p.protocol.as_str()
                });
                if let Some(pp) = published.filter(|pp| pp.host_port != 0) {
                    entry.ports.entry(port_key(p)).or_default().push((
                        task.id.to_string(),
                        node.to_owned(),
                        pp.host_port,
                    ));
                }
            }
        }
        for entry in services.values_mut() {
            entry.nodes.sort();
        }
        ZoneData {
            revision,
            services,
            rtt_ms: self.rtts(me, &node_addrs),
            node_addrs,
        }
    }

    /// RTT from `me` to every node: measured when a measurement exists (either direction), else
    /// estimated from both Vivaldi coordinates. Empty when nothing but `me` itself is known.
    fn rtts(&self, me: &str, nodes: &BTreeMap<String, IpAddr>) -> HashMap<String, f64> {
        let mut matrix = NetworkMatrix::new();
        let rows = self.links.values().flat_map(|row| &row.links);
        for m in self
            .measurements
            .values()
            .chain(rows)
            .filter(|m| !m.link_down)
        {
            matrix.insert(m.clone());
        }
        let mine = self.coords.get(me);
        let mut out = HashMap::new();
        for id in nodes.keys().filter(|id| id.as_str() != me) {
            let measured = matrix.rtt_ms(me, id);
            let estimated = || {
                let theirs = self.coords.get(id)?;
                mine?.estimate_rtt_ms(theirs)
            };
            if let Some(rtt) = measured.or_else(estimated).filter(|r| r.is_finite()) {
                out.insert(id.clone(), rtt);
            }
        }
        if !out.is_empty() && nodes.contains_key(me) {
            out.insert(me.to_owned(), 0.0);
        }
        out
    }
}

/// The `(label, protocol)` a port answers under: its name, or its container port number.
fn port_key(p: &orion_core::model::spec::PortSpec) -> (String, String) {
    let label = p
        .name
        .clone()
        .unwrap_or_else(|| p.container_port.to_string());
    (label.to_ascii_lowercase(), p.protocol.as_str().to_owned())
}

/// A node's advertised address: the IP of its API address, else of its Raft or gossip address;
/// unspecified addresses (`0.0.0.0`) do not count.
pub fn node_address(node: &Node) -> Option<IpAddr> {
    [
        &node.addresses.api,
        &node.addresses.raft,
        &node.addresses.gossip,
    ]
    .into_iter()
    .filter_map(|a| a.parse::<std::net::SocketAddr>().ok().map(|s| s.ip()))
    .find(|ip| !ip.is_unspecified())
}

/// The current [`ZoneData`], shared by the watcher (writer) and the server (readers).
#[derive(Debug, Clone)]
pub struct DnsIndex {
    current: Arc<RwLock<Arc<ZoneData>>>,
    ready: watch::Sender<Revision>,
}

impl Default for DnsIndex {
    fn default() -> Self {
        DnsIndex {
            current: Arc::default(),
            ready: watch::channel(0).0,
        }
    }
}

impl DnsIndex {
    /// An empty index (every service name is NXDOMAIN until the watcher fills it).
    pub fn new() -> Self {
        Self::default()
    }

    /// The zone as of now; cheap (an `Arc` clone).
    pub fn snapshot(&self) -> Arc<ZoneData> {
        self.current
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    fn replace(&self, zone: ZoneData) {
        let revision = zone.revision;
        *self
            .current
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(zone);
        self.ready.send_replace(revision);
    }

    /// Waits until the index reflects store revision `revision` or later, at most `timeout`;
    /// returns whether it does.
    pub async fn wait_for(&self, revision: Revision, timeout: Duration) -> bool {
        let mut rx = self.ready.subscribe();
        tokio::time::timeout(timeout, rx.wait_for(|r| *r >= revision))
            .await
            .is_ok_and(|r| r.is_ok())
    }
}

/// Keeps a [`DnsIndex`] current from a store; aborts its task when dropped.
#[derive(Debug)]
pub struct IndexWatcher {
    task: tokio::task::JoinHandle<()>,
}

impl Drop for IndexWatcher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl IndexWatcher {
    /// Starts following `store` into `index`, measuring proximity from node `me`.
    pub fn spawn<S: Store + Clone>(
        store: ClusterStore<S>,
        index: DnsIndex,
        me: String,
    ) -> IndexWatcher {
        let task = tokio::spawn(async move {
            loop {
                if let Err(e) = follow(&store, &index, &me).await {
                    warn!(error = %e, "dns: index watch ended; reading the state again");
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        });
        IndexWatcher { task }
    }
}

/// Reads everything, then applies the watch until it ends or fails.
async fn follow<S: Store>(
    store: &ClusterStore<S>,
    index: &DnsIndex,
    me: &str,
) -> orion_core::Result<()> {
    let range = store.inner().range(keys::ROOT).await?;
    let mut raw = Raw::default();
    for KeyValue { key, value, .. } in &range.kvs {
        raw.apply(key, Some(value));
    }
    let mut revision = range.revision;
    index.replace(raw.build(me, revision));
    let mut events = store.inner().watch(keys::ROOT, revision + 1).await?;
    while let Some(first) = events.next().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match events.next().now_or_never() {
                Some(Some(e)) => batch.push(e),
                _ => break,
            }
        }
        for event in batch {
            let event = event?;
            revision = revision.max(event.revision());
            match event.kind {
                EventKind::Put => raw.apply(&event.kv.key, Some(&event.kv.value)),
                EventKind::Delete => raw.apply(&event.kv.key, None),
            }
        }
        index.replace(raw.build(me, revision));
        debug!(revision, "dns: index updated");
    }
    Ok(())
}
