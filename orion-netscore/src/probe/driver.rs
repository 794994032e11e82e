//! The prober's loop against the cluster store: read peers, probe, publish.

use std::collections::HashMap;
use std::sync::Arc;

use orion_core::model::{NetworkCoordinate, NodeStatus, now_millis};
use orion_core::store::{ClusterStore, Store};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::prober::{PeerView, Prober, RoundReport};
use super::transport::ProbeTransport;
use crate::Result;
use crate::vivaldi::{Coordinate, DIMENSIONS};

/// The peers as the store sees them: every node but `me` that is not down, with its published
/// coordinate. `reached_by_others` is true while membership does not mark the node down (gossip
/// reaches it, directly or through others), unless the peer is in `suspects` (peers this prober
/// currently fails to reach, see [`Prober::suspected_peers`]) and every other node's published
/// measurement to it says the link is down or mostly lost.
///
/// Cost: one read of the nodes and the coordinates; the measurements are read only when
/// `suspects` is not empty.
pub async fn peer_views<S: Store>(
    store: &ClusterStore<S>,
    me: &str,
    suspects: &[String],
) -> Result<Vec<PeerView>> {
    let nodes = store.list_nodes().await?;
    let coordinates: HashMap<String, NetworkCoordinate> = store
        .list_coordinates()
        .await?
        .into_iter()
        .map(|c| (c.node.clone(), c))
        .collect();
    let mut reports: HashMap<String, (usize, usize)> = HashMap::new();
    if !suspects.is_empty() {
        for m in store.list_measurements().await? {
            if m.from == me || !suspects.contains(&m.to) {
                continue;
            }
            let entry = reports.entry(m.to.clone()).or_default();
            entry.0 += 1;
            if m.link_down || m.loss >= 0.5 {
                entry.1 += 1;
            }
        }
    }
    Ok(nodes
        .into_iter()
        .filter(|n| n.id != me && n.status != NodeStatus::Down)
        .map(|n| {
            let (seen, failing) = reports.get(&n.id).copied().unwrap_or_default();
            PeerView {
                coordinate: coordinates.get(&n.id).and_then(from_stored),
                reached_by_others: !(seen > 0 && failing == seen),
                id: n.id,
            }
        })
        .collect())
}

/// Writes a round's publication, if it has one: the node's record of links and its coordinate,
/// in one transaction ([`ClusterStore::publish_network`]), so [`RoundReport::store_writes`] is
/// the number of store writes.
pub async fn publish<S: Store>(
    store: &ClusterStore<S>,
    me: &str,
    report: &RoundReport,
) -> Result<()> {
    store
        .publish_network(me, report.links.as_ref(), report.coordinate.as_ref())
        .await?;
    Ok(())
}

/// A running prober loop; stop it with [`ProberHandle::stop`] (dropping it stops it too).
#[derive(Debug)]
pub struct ProberHandle {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl ProberHandle {
    /// Stops the loop and waits for the round in flight to end.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// Starts `prober`'s loop on the current tokio runtime: every `round_interval`, read the peers
/// ([`peer_views`]), run a round, [`publish`]. A failed read or write is logged and the loop goes
/// on; after a failed write the next round publishes the whole record again
/// ([`Prober::publication_failed`]). It ends when the handle is stopped or dropped, so keep the handle for as long as the
/// prober should run.
pub fn run_prober<S: Store + Clone, T: ProbeTransport + 'static>(
    mut prober: Prober,
    transport: Arc<T>,
    store: ClusterStore<S>,
) -> ProberHandle {
    let (stop, mut stopped) = watch::channel(false);
    let task = tokio::spawn(async move {
        let mut ticker = tokio::time::interval(prober.config().round_interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stopped.changed() => break,
                _ = ticker.tick() => {}
            }
            let me = prober.node().to_string();
            let suspects = prober.suspected_peers();
            let peers = match peer_views(&store, &me, &suspects).await {
                Ok(peers) => peers,
                Err(error) => {
                    tracing::warn!(%error, "prober: cannot read the peers");
                    continue;
                }
            };
            let report = prober.round(transport.as_ref(), &peers, now_millis()).await;
            if let Err(error) = publish(&store, &me, &report).await {
                tracing::warn!(%error, "prober: cannot publish; the next round tries again");
                prober.publication_failed();
            }
        }
    });
    ProberHandle { stop, task }
}

/// A stored coordinate as a Vivaldi one; `None` when its dimensions differ or it is invalid.
pub(crate) fn from_stored(c: &NetworkCoordinate) -> Option<Coordinate> {
    let position: [f64; DIMENSIONS] = c.position.as_slice().try_into().ok()?;
    let coordinate = Coordinate {
        position,
        height_ms: c.height_ms,
        error: c.error,
    };
    coordinate.validate().ok().map(|()| coordinate)
}
