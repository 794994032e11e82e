//! The node side of chaos: follows the faults in the local copy of the store and applies the
//! active ones to this node's fault layer (Raft and other node-to-node requests) and gossip link
//! filter; removes each at its expiry time by this node's clock. The leader also deletes expired
//! entries from the store.
//!
//! Reads are local (stale): a node cut off by a fault cannot reach a quorum, and must still see
//! its faults end. Each pass reads at most [`super::MAX_FAULTS`] entries from memory.

use std::collections::{BTreeSet, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use orion_consensus::cluster::raft_id;
use orion_consensus::gossip::LinkFaults;
use orion_consensus::transport::{Fault, FaultInjector, Targets};
use orion_core::membership::Membership;
use orion_core::node::Leadership;
use orion_core::store::{Compare, Op, Store, Txn};
use tokio::sync::watch;
use tracing::{debug, info, warn};

use super::{ChaosFault, ChaosKind, PREFIX, now_ms};

/// How often the faults are re-read and expiries checked.
pub const PASS: Duration = Duration::from_millis(200);
/// How often the leader deletes expired entries (in passes).
const CLEANUP_EVERY: u32 = 10;

/// The fault layer `kind` asks for.
pub fn to_fault(kind: &ChaosKind) -> Fault {
    let ids = |names: &[String]| names.iter().map(|n| raft_id(n)).collect::<BTreeSet<_>>();
    match kind {
        ChaosKind::Latency { increase_ms, nodes } => Fault::Latency {
            nodes: if nodes.is_empty() {
                Targets::All
            } else {
                Targets::Nodes(ids(nodes))
            },
            increase: Duration::from_millis(*increase_ms),
        },
        ChaosKind::NetworkPartition { groups } => Fault::Partition {
            groups: groups.iter().map(|g| ids(g)).collect(),
        },
        ChaosKind::NodeFailure { target } => Fault::Isolate {
            node: raft_id(target),
        },
    }
}

/// The faults stored under [`PREFIX`] in `store` (entries that do not decode are skipped and
/// logged).
pub async fn read_faults(store: &dyn Store) -> orion_core::Result<Vec<(ChaosFault, u64)>> {
    let range = store.range(PREFIX).await?;
    Ok(range
        .kvs
        .into_iter()
        .filter_map(|kv| match serde_json::from_slice::<ChaosFault>(&kv.value) {
            Ok(f) => Some((f, kv.mod_revision)),
            Err(e) => {
                warn!(key = %kv.key, error = %e, "ignoring a chaos entry that does not decode");
                None
            }
        })
        .collect())
}

/// Applies `faults` active at `now` to `injector` under their ids and removes every other
/// chaos fault from it. Returns the ids active now.
pub fn apply(injector: &FaultInjector, faults: &[ChaosFault], now: u64) -> BTreeSet<String> {
    let mut active = BTreeSet::new();
    for f in faults.iter().filter(|f| f.active_at(now)) {
        match injector.insert_fault(f.id.clone(), to_fault(&f.kind)) {
            Ok(()) => {
                active.insert(f.id.clone());
            }
            Err(e) => {
                warn!(id = %f.id, error = %e, "ignoring a chaos fault the fault layer refuses")
            }
        }
    }
    injector.retain_faults(|name| active.contains(name));
    active
}

/// What one node needs to apply chaos.
pub struct Applier {
    /// This node's id.
    pub node_id: String,
    /// Local (stale) reads of the store.
    pub local: Arc<dyn Store>,
    /// The replicated store, for the leader's deletes of expired entries.
    pub store: Arc<dyn Store>,
    /// The fault layer of this node's Raft transport.
    pub faults: FaultInjector,
    /// The gossip transport's link filter, and the address its socket is bound to.
    pub gossip: LinkFaults,
    pub gossip_addr: SocketAddr,
    pub membership: Arc<dyn Membership>,
    pub leader: watch::Receiver<Leadership>,
}

impl Applier {
    /// Runs until the process ends: one pass every [`PASS`].
    pub async fn run(self) {
        let local_id = raft_id(&self.node_id);
        let mut cut: HashSet<SocketAddr> = HashSet::new();
        let mut previous = BTreeSet::new();
        let mut pass: u32 = 0;
        let mut tick = tokio::time::interval(PASS);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            pass = pass.wrapping_add(1);
            let faults = match read_faults(&*self.local).await {
                Ok(f) => f,
                Err(e) => {
                    debug!(error = %e, "cannot read chaos faults");
                    continue;
                }
            };
            let now = now_ms();
            let list: Vec<ChaosFault> = faults.iter().map(|(f, _)| f.clone()).collect();
            let active = apply(&self.faults, &list, now);
            if active != previous {
                info!(active = ?active, "chaos faults on this node changed");
                previous = active;
            }
            self.sync_gossip(local_id, &mut cut).await;
            if pass.is_multiple_of(CLEANUP_EVERY) && self.leader.borrow().term().is_some() {
                let expired: Vec<(String, u64)> = faults
                    .iter()
                    .filter(|(f, _)| f.expired_at(now))
                    .map(|(f, rev)| (f.key(), *rev))
                    .collect();
                if !expired.is_empty() {
                    // In its own task: a leader without quorum must not stall the passes.
                    tokio::spawn(delete_expired(self.store.clone(), expired));
                }
            }
        }
    }

    /// Cuts gossip to every member whose link the fault layer says is down, and restores the
    /// others.
    async fn sync_gossip(&self, local_id: u64, cut: &mut HashSet<SocketAddr>) {
        let Ok(members) = self.membership.members().await else {
            return;
        };
        let mut want = HashSet::new();
        for m in members.iter().filter(|m| m.id != self.node_id) {
            if let Ok(addr) = m.addresses.gossip.parse::<SocketAddr>()
                && self.faults.link_down(local_id, raft_id(&m.id))
            {
                want.insert(addr);
            }
        }
        for addr in want.difference(cut) {
            self.gossip.cut(self.gossip_addr, *addr);
        }
        for addr in cut.difference(&want) {
            self.gossip.heal(self.gossip_addr, *addr);
        }
        *cut = want;
    }
}

/// Deletes `expired` (key, revision) entries that did not change since read, within 5 s.
async fn delete_expired(store: Arc<dyn Store>, expired: Vec<(String, u64)>) {
    let mut txn = Txn::new();
    for (key, rev) in &expired {
        txn = txn
            .when(Compare::ModRevision(key.clone(), *rev))
            .and_then(Op::Delete(key.clone()));
    }
    match tokio::time::timeout(Duration::from_secs(5), store.txn(txn)).await {
        Ok(Ok(r)) if r.succeeded => debug!(count = expired.len(), "expired chaos faults deleted"),
        Ok(Ok(_)) => debug!("chaos faults changed meanwhile; the next cleanup retries"),
        Ok(Err(e)) => debug!(error = %e, "cannot delete expired chaos faults yet"),
        Err(_) => debug!("deleting expired chaos faults timed out"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fault(id: &str, kind: ChaosKind, starts_at: u64, expires_at: u64) -> ChaosFault {
        ChaosFault {
            id: id.into(),
            kind,
            starts_at,
            expires_at,
            source: "test".into(),
        }
    }

    #[test]
    fn active_faults_are_applied_and_expired_ones_removed() {
        let injector = FaultInjector::new();
        let (n1, n2, n3) = (raft_id("n1"), raft_id("n2"), raft_id("n3"));
        let faults = vec![
            fault(
                "p",
                ChaosKind::NetworkPartition {
                    groups: vec![vec!["n1".into(), "n2".into()], vec!["n3".into()]],
                },
                100,
                200,
            ),
            fault(
                "lat",
                ChaosKind::Latency {
                    increase_ms: 50,
                    nodes: vec!["n2".into()],
                },
                150,
                300,
            ),
            fault(
                "down",
                ChaosKind::NodeFailure {
                    target: "n1".into(),
                },
                250,
                400,
            ),
        ];
        assert!(
            apply(&injector, &faults, 50).is_empty(),
            "nothing started yet"
        );
        assert!(!injector.link_down(n1, n3));

        let active = apply(&injector, &faults, 160);
        assert_eq!(active.len(), 2);
        assert!(injector.link_down(n1, n3) && !injector.link_down(n1, n2));
        assert_eq!(injector.delay(n1, Some(n2)), Duration::from_millis(50));

        let active = apply(&injector, &faults, 260);
        assert_eq!(
            active,
            BTreeSet::from(["down".to_string(), "lat".to_string()])
        );
        assert!(!injector.link_down(n2, n3), "the partition expired");
        assert!(injector.link_down(n1, n3) && injector.link_down(n2, n1));

        assert!(apply(&injector, &faults, 400).is_empty());
        assert!(injector.faults().is_empty(), "every fault healed by expiry");
        assert!(!injector.link_down(n1, n2));
        assert_eq!(injector.delay(n1, Some(n2)), Duration::ZERO);
    }

    #[tokio::test]
    async fn faults_are_read_from_the_store_prefix() {
        let store = orion_core::store::MemoryStore::new();
        let f = fault(
            "x",
            ChaosKind::NodeFailure {
                target: "n1".into(),
            },
            0,
            10,
        );
        store
            .put(&f.key(), serde_json::to_vec(&f).unwrap())
            .await
            .unwrap();
        store.put("/orion/chaos/bad", b"{".to_vec()).await.unwrap();
        let read = read_faults(&store).await.unwrap();
        assert_eq!(read.len(), 1);
        assert_eq!(read[0].0, f);
    }
}
