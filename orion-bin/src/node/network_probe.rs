//! The network prober in cluster mode: `orion_netscore`'s prober, probing peers with echoes on
//! their Raft port (`/raft/echo`, through the fault layer, so `orion chaos` latency shows) and
//! publishing measurements and this node's Vivaldi coordinate through Raft.

use std::sync::Arc;
use std::time::Duration;

use orion_consensus::cluster::raft_id;
use orion_consensus::raft::{RaftNode, ReadMode};
use orion_consensus::transport::Transport;
use orion_core::store::{ClusterStore, MemoryStore, Store};
use orion_netscore::probe::{ProbeTransport, Prober, ProberConfig, ProberHandle, run_prober};

use crate::config::MonitoringConfig;

/// The prober's settings from `network.monitoring` in `orion.yaml`; the rest are the library's
/// defaults. `Config::check` has validated the bounds.
pub fn prober_config(monitoring: &MonitoringConfig) -> ProberConfig {
    ProberConfig {
        round_interval: monitoring.scan_interval,
        samples_per_peer: monitoring.latency_probes,
        peers_per_round: monitoring.peers_per_round,
        min_publish_interval: monitoring.min_publish_interval,
        ..ProberConfig::default()
    }
}

/// Echoes to a peer's Raft port, found from the peer's node record.
struct RaftEcho<S> {
    transport: Transport,
    store: ClusterStore<S>,
    timeout: Duration,
}

#[async_trait::async_trait]
impl<S: Store> ProbeTransport for RaftEcho<S> {
    async fn echo(&self, peer: &str, payload_bytes: usize) -> orion_netscore::Result<Duration> {
        let fail = |reason: String| orion_netscore::Error::Probe {
            peer: peer.to_string(),
            reason,
        };
        let node = self
            .store
            .get_node(peer)
            .await?
            .ok_or_else(|| fail("no such node in the store".into()))?;
        if node.addresses.raft.is_empty() {
            return Err(fail("the node has published no Raft address".into()));
        }
        self.transport
            .echo(
                Some(raft_id(peer)),
                &node.addresses.raft,
                payload_bytes,
                self.timeout,
            )
            .await
            .map_err(|e| fail(e.to_string()))
    }
}

/// Starts the prober of `node_id` on this node's Raft transport. Reads are of the local applied
/// state (stale reads: no quorum round trip per round); writes go through Raft. The loop runs
/// until the returned handle is stopped or dropped.
pub fn start(
    node_id: &str,
    monitoring: &MonitoringConfig,
    raft: &RaftNode<MemoryStore>,
) -> anyhow::Result<ProberHandle> {
    let config = prober_config(monitoring);
    let timeout = config.probe_timeout;
    let seed = raft_id(node_id);
    let prober = Prober::new(node_id, config, seed)?;
    let store = ClusterStore::new(Arc::new(raft.store().with_read_mode(ReadMode::Stale)));
    let transport = RaftEcho {
        transport: raft.transport().clone(),
        store: store.clone(),
        timeout,
    };
    Ok(run_prober(prober, Arc::new(transport), store))
}
