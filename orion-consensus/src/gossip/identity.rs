//! The identity a node gossips: who it is, where to reach it, what it offers.
//!
//! SWIM (foca) never lets an identity that was declared down come back, so the identity is
//! *renewable*: `(boot, generation)` make each life of a node distinct while [`Identity::addr`]
//! (the node id) says it is the same node. `boot` changes when the process restarts, `generation`
//! when the node renews itself after a false "down" or changes its metadata.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use foca::Identity;
use orion_core::membership::{Member, MemberState};
use orion_core::model::{NodeAddresses, NodeId, Resources};
use serde::{Deserialize, Serialize};

/// What travels in every gossip header about a node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct NodeIdentity {
    /// The stable node id; the SWIM "address" of the identity.
    pub(crate) id: NodeId,
    /// Start time of the process in milliseconds since the epoch; a restart gets a larger one.
    pub(crate) boot: u64,
    /// Bumped on each renewal (rejoin after a false "down") and metadata change.
    pub(crate) generation: u64,
    /// Where gossip for this node goes.
    pub(crate) gossip_addr: SocketAddr,
    /// API and Raft addresses (and the gossip one, as a string).
    pub(crate) addresses: NodeAddresses,
    /// Labels (zone among them).
    pub(crate) labels: BTreeMap<String, String>,
    /// Total capacity.
    pub(crate) capacity: Resources,
}

impl NodeIdentity {
    /// The [`Member`] view of this identity, in `state`, with SWIM incarnation `incarnation`.
    ///
    /// `Member::incarnation` packs the generation above the 16-bit SWIM incarnation, so it grows
    /// on every rejoin and every refutation.
    pub(crate) fn to_member(&self, state: MemberState, incarnation: u16) -> Member {
        Member {
            id: self.id.clone(),
            addresses: self.addresses.clone(),
            labels: self.labels.clone(),
            capacity: self.capacity,
            state,
            incarnation: (self.generation << 16) | u64::from(incarnation),
        }
    }

    /// Same node, same life, same metadata: only the generation may differ.
    pub(crate) fn same_metadata(&self, other: &NodeIdentity) -> bool {
        self.addresses == other.addresses
            && self.labels == other.labels
            && self.capacity == other.capacity
            && self.gossip_addr == other.gossip_addr
    }

    /// The next generation of this identity: same node, same process life.
    pub(crate) fn with_next_generation(&self) -> NodeIdentity {
        let mut next = self.clone();
        next.generation = next.generation.wrapping_add(1);
        next
    }
}

impl Identity for NodeIdentity {
    type Addr = NodeId;

    /// Auto-rejoin: a node declared down (by a partition or a long pause) comes back as the next
    /// generation of itself.
    fn renew(&self) -> Option<Self> {
        Some(self.with_next_generation())
    }

    fn addr(&self) -> NodeId {
        self.id.clone()
    }

    /// The later life wins: a restarted process (larger `boot`), then a renewed identity.
    fn win_addr_conflict(&self, adversary: &Self) -> bool {
        (self.boot, self.generation) > (adversary.boot, adversary.generation)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity(boot: u64, generation: u64) -> NodeIdentity {
        NodeIdentity {
            id: "n1".into(),
            boot,
            generation,
            gossip_addr: "127.0.0.1:7000".parse().expect("literal address"),
            addresses: NodeAddresses::default(),
            labels: BTreeMap::new(),
            capacity: Resources::new(1000, 1 << 30),
        }
    }

    #[test]
    fn restart_beats_renewal_and_renewal_beats_the_old_life() {
        let old = identity(100, 5);
        let renewed = old.renew().expect("identities always renew");
        assert_eq!(renewed.generation, 6);
        assert!(renewed.win_addr_conflict(&old));
        assert!(!old.win_addr_conflict(&renewed));
        let restarted = identity(200, 0);
        assert!(restarted.win_addr_conflict(&renewed));
        assert_eq!(restarted.addr(), old.addr());
    }

    #[test]
    fn member_incarnation_grows_with_generation_and_refutations() {
        let a = identity(1, 1).to_member(MemberState::Alive, 7);
        let b = identity(1, 2).to_member(MemberState::Alive, 0);
        assert!(b.incarnation > a.incarnation);
        assert_eq!(a.incarnation & 0xffff, 7);
    }
}
