//! Who is in the cluster, and whether they are alive.
//!
//! Liveness travels by gossip, never through the Raft log. A [`Membership`] gives the local view of
//! the members and a stream of changes; the leader's controllers turn `Dead` into "node down".
//!
//! Implementations: [`StaticMembership`] (a fixed list, everyone always alive, for tests and
//! fixed fleets) and the SWIM gossip membership in `orion-consensus`.

use std::collections::BTreeMap;
use std::pin::Pin;

use async_trait::async_trait;
use futures::Stream;
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::model::{NodeAddresses, NodeId, Resources};

mod static_membership;

pub use static_membership::StaticMembership;

/// Liveness of a member, as this node currently believes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MemberState {
    Alive,
    /// Missed probes; not yet confirmed dead (it may refute).
    Suspect,
    /// Confirmed dead.
    Dead,
    /// Left gracefully; never reported dead.
    Left,
}

/// A member and what it announces about itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Member {
    pub id: NodeId,
    pub addresses: NodeAddresses,
    /// Labels, [`crate::model::ZONE_LABEL`] among them.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    pub capacity: Resources,
    pub state: MemberState,
    /// Bumped by the member itself each time it rejoins or refutes a suspicion.
    #[serde(default)]
    pub incarnation: u64,
}

impl Member {
    /// An alive member with `capacity`, no addresses and no labels.
    pub fn alive(id: impl Into<NodeId>, capacity: Resources) -> Self {
        Member {
            id: id.into(),
            addresses: NodeAddresses::default(),
            labels: BTreeMap::new(),
            capacity,
            state: MemberState::Alive,
            incarnation: 0,
        }
    }

    /// Builder: sets a label ([`crate::model::ZONE_LABEL`] names the zone).
    pub fn with_label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels.insert(key.into(), value.into());
        self
    }
}

/// A change in membership.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum MembershipEvent {
    /// A member was seen for the first time (or rejoined after `Left`/`Dead` with a new incarnation).
    Joined(Member),
    /// A member missed probes and is suspected.
    Suspect(NodeId),
    /// A suspected member was confirmed dead.
    Dead(NodeId),
    /// A member left gracefully.
    Left(NodeId),
    /// A suspected or dead member is alive again.
    Recovered(Member),
    /// A member changed its metadata (labels, capacity, addresses).
    Updated(Member),
}

impl MembershipEvent {
    /// The member the event is about.
    pub fn node_id(&self) -> &str {
        match self {
            MembershipEvent::Joined(m)
            | MembershipEvent::Recovered(m)
            | MembershipEvent::Updated(m) => &m.id,
            MembershipEvent::Suspect(id)
            | MembershipEvent::Dead(id)
            | MembershipEvent::Left(id) => id,
        }
    }
}

/// A stream of membership events; it ends when the membership is shut down.
pub type MembershipEvents = Pin<Box<dyn Stream<Item = MembershipEvent> + Send + 'static>>;

/// Cluster membership and failure detection.
///
/// Contract:
/// - `members()` includes the local node, always `Alive` from its own point of view.
/// - `subscribe()` streams events that happen after the call; combine it with `members()` for
///   the current state. A member's events arrive in the order they happened.
/// - A member that called `leave()` is reported `Left`, never `Dead`.
/// - A slow member is `Suspect` before it is `Dead`; implementations document their timing.
#[async_trait]
pub trait Membership: Send + Sync + 'static {
    /// This node's own entry.
    fn local(&self) -> Member;

    /// Every known member, the local one included, with its current state.
    async fn members(&self) -> Result<Vec<Member>>;

    /// Events from now on.
    fn subscribe(&self) -> MembershipEvents;

    /// Leaves the cluster gracefully; others report `Left`.
    async fn leave(&self) -> Result<()>;
}
