//! Gossip membership: SWIM with suspicion (via `foca`), over UDP or an in-process network.
//!
//! [`GossipMembership`] implements [`orion_core::membership::Membership`]. Each node probes one
//! random member per [`GossipTimings::probe_period`]; a member that answers neither directly nor
//! through [`GossipTimings::indirect_probes`] helpers is `Suspect`, and only if it does not refute
//! within [`GossipTimings::suspect_to_down_after`] is it `Dead`. A paused or starved member that
//! wakes up in time refutes by raising its incarnation, so it is never declared dead by one
//! missed probe. Member metadata (addresses, labels, capacity) travels in the gossiped identity.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use futures::StreamExt;
//! use orion_consensus::gossip::{GossipConfig, GossipMembership};
//! use orion_core::membership::{Membership, MembershipEvent};
//!
//! let any_port = "127.0.0.1:0".parse()?;
//! let first = GossipMembership::start(GossipConfig::new("n1", any_port)).await?;
//! let mut events = first.subscribe();
//! let second =
//!     GossipMembership::start(GossipConfig::new("n2", any_port).with_seed(first.gossip_addr()))
//!         .await?;
//! let joined = tokio::time::timeout(Duration::from_secs(10), events.next()).await?;
//! assert!(matches!(joined, Some(MembershipEvent::Joined(m)) if m.id == "n2"));
//!
//! second.leave().await?; // n1 reports Left("n2"), never Dead
//! let left = tokio::time::timeout(Duration::from_secs(10), events.next()).await?;
//! assert_eq!(left, Some(MembershipEvent::Left("n2".into())));
//! # Ok(()) }
//! ```
//!
//! See `docs/membership.md` for the protocol, the timings and the detection bound.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use orion_core::model::{NodeAddresses, NodeId, Resources};

use crate::error::{Error, Result};

mod actor;
mod identity;
mod membership;
mod sealed;
mod transport;
mod view;
mod wire;

pub use membership::GossipMembership;
pub use sealed::{GOSSIP_KEY_PURPOSE, SEAL_OVERHEAD, SealedTransport};
pub use transport::{
    LinkFaults, MAX_DATAGRAM, MemoryNetwork, MemoryTransport, Transport, UdpTransport,
};

/// Protocol timings. The defaults target a LAN or one host: a dead member is reported `Dead`
/// by every live member in about one second, and a member paused for 500 ms is not.
///
/// Detection of a crashed member takes: the wait until some member probes it (under one
/// `probe_period` on average with several members probing), one `probe_period` for the failed
/// direct and indirect probes, `suspect_to_down_after` for the suspicion, and one
/// `gossip_interval` to spread the verdict: about `2 * probe_period + suspect_to_down_after +
/// gossip_interval` = 1.0 s by default ([`GossipTimings::typical_detection`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GossipTimings {
    /// How often each member probes one other member. Default 150 ms.
    pub probe_period: Duration,
    /// How long to wait for a direct ack before asking helpers to probe indirectly; must be
    /// less than `probe_period`. Default 60 ms.
    pub probe_rtt: Duration,
    /// How many helpers probe a silent member indirectly. Default 3.
    pub indirect_probes: usize,
    /// How long a suspect has to refute before it is declared dead. Default 600 ms, which is
    /// what lets a member paused for 500 ms survive.
    pub suspect_to_down_after: Duration,
    /// How often updates are pushed to `gossip_fanout` random members besides the probes.
    /// Default 100 ms.
    pub gossip_interval: Duration,
    /// Members per periodic gossip round. Default 3.
    pub gossip_fanout: usize,
    /// How many times each update is piggybacked. Default 8.
    pub max_transmissions: u8,
    /// How often members declared down are contacted, so partitions heal. Default 1 s.
    pub announce_to_down_interval: Duration,
    /// How often the seeds are asked again until one of them is a live member (or while this
    /// node knows no live member at all). Default 500 ms.
    pub join_retry_interval: Duration,
    /// Largest datagram produced and accepted (bytes). Default 1400; at least 512. A node's
    /// metadata (id, addresses, labels) must encode to at most a fifth of it.
    pub max_packet_size: usize,
}

impl Default for GossipTimings {
    fn default() -> Self {
        GossipTimings {
            probe_period: Duration::from_millis(150),
            probe_rtt: Duration::from_millis(60),
            indirect_probes: 3,
            suspect_to_down_after: Duration::from_millis(600),
            gossip_interval: Duration::from_millis(100),
            gossip_fanout: 3,
            max_transmissions: 8,
            announce_to_down_interval: Duration::from_secs(1),
            join_retry_interval: Duration::from_millis(500),
            max_packet_size: 1400,
        }
    }
}

impl GossipTimings {
    /// The usual time from a crash to `Dead` on every member (see the type docs); a measured
    /// distribution comes from the `gossip_detection` bench.
    pub fn typical_detection(&self) -> Duration {
        self.probe_period * 2 + self.suspect_to_down_after + self.gossip_interval
    }

    /// Checks every field; the error names the first bad one and what is accepted.
    pub fn validate(&self) -> Result<()> {
        fn bad(field: &'static str, value: impl std::fmt::Debug, expected: &str) -> Result<()> {
            Err(Error::GossipConfig {
                field,
                value: format!("{value:?}"),
                expected: expected.to_string(),
            })
        }
        if self.probe_period.is_zero() {
            return bad("timings.probe_period", self.probe_period, "more than zero");
        }
        if self.probe_rtt.is_zero() || self.probe_rtt >= self.probe_period {
            return bad(
                "timings.probe_rtt",
                self.probe_rtt,
                "more than zero and less than probe_period",
            );
        }
        if self.suspect_to_down_after.is_zero() {
            return bad(
                "timings.suspect_to_down_after",
                self.suspect_to_down_after,
                "more than zero",
            );
        }
        if self.gossip_interval.is_zero() {
            return bad(
                "timings.gossip_interval",
                self.gossip_interval,
                "more than zero",
            );
        }
        if self.announce_to_down_interval.is_zero() {
            return bad(
                "timings.announce_to_down_interval",
                self.announce_to_down_interval,
                "more than zero",
            );
        }
        if self.join_retry_interval.is_zero() {
            return bad(
                "timings.join_retry_interval",
                self.join_retry_interval,
                "more than zero",
            );
        }
        if self.indirect_probes == 0 {
            return bad(
                "timings.indirect_probes",
                self.indirect_probes,
                "at least 1",
            );
        }
        if self.gossip_fanout == 0 {
            return bad("timings.gossip_fanout", self.gossip_fanout, "at least 1");
        }
        if self.max_transmissions == 0 {
            return bad(
                "timings.max_transmissions",
                self.max_transmissions,
                "at least 1",
            );
        }
        if !(512..=MAX_DATAGRAM - 16).contains(&self.max_packet_size) {
            return bad(
                "timings.max_packet_size",
                self.max_packet_size,
                "between 512 and 65520 bytes",
            );
        }
        Ok(())
    }
}

/// How to start a [`GossipMembership`].
#[derive(Debug, Clone, PartialEq)]
pub struct GossipConfig {
    /// This node's stable id (non-empty). A process restarting with the same id is the same node.
    pub node_id: NodeId,
    /// Where to bind the UDP socket (port 0 picks one). Ignored by `start_with_transport`.
    pub bind: SocketAddr,
    /// Advertised addresses. An empty `gossip` means the bound address.
    pub addresses: NodeAddresses,
    /// Labels gossiped with the node ([`orion_core::model::ZONE_LABEL`] among them).
    pub labels: BTreeMap<String, String>,
    /// Capacity gossiped with the node.
    pub capacity: Resources,
    /// Gossip addresses of members to join through; any one alive is enough.
    pub seeds: Vec<SocketAddr>,
    /// Protocol timings.
    pub timings: GossipTimings,
    /// The [cluster id](crate::cluster_id) stamped on every datagram; datagrams of another
    /// cluster are dropped and counted ([`GossipStats::foreign_cluster_packets`]). `None`: the
    /// node learns it from the first seed that answers (and, until then, talks only to nodes
    /// that have none either).
    pub cluster_id: Option<String>,
}

impl GossipConfig {
    /// A config for `node_id` bound at `bind`, with no seed, no label, zero capacity and default
    /// timings.
    pub fn new(node_id: impl Into<NodeId>, bind: SocketAddr) -> Self {
        GossipConfig {
            node_id: node_id.into(),
            bind,
            addresses: NodeAddresses::default(),
            labels: BTreeMap::new(),
            capacity: Resources::default(),
            seeds: Vec::new(),
            timings: GossipTimings::default(),
            cluster_id: None,
        }
    }

    /// Builder: sets the cluster id.
    pub fn with_cluster_id(mut self, cluster_id: impl Into<String>) -> Self {
        self.cluster_id = Some(cluster_id.into());
        self
    }

    /// Builder: adds a seed.
    pub fn with_seed(mut self, seed: SocketAddr) -> Self {
        self.seeds.push(seed);
        self
    }

    /// Builder: sets a label.
    pub fn with_label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels.insert(key.into(), value.into());
        self
    }

    /// Builder: sets the capacity.
    pub fn with_capacity(mut self, capacity: Resources) -> Self {
        self.capacity = capacity;
        self
    }

    /// Builder: sets the advertised API, Raft and gossip addresses.
    pub fn with_addresses(mut self, addresses: NodeAddresses) -> Self {
        self.addresses = addresses;
        self
    }

    /// Builder: sets the timings.
    pub fn with_timings(mut self, timings: GossipTimings) -> Self {
        self.timings = timings;
        self
    }

    /// Checks the id, the cluster id, the advertised gossip address and the timings.
    pub fn validate(&self) -> Result<()> {
        if let Some(cluster_id) = &self.cluster_id {
            crate::cluster_id::validate_cluster_id(cluster_id)?;
        }
        if self.node_id.trim().is_empty() {
            return Err(Error::GossipConfig {
                field: "node_id",
                value: format!("{:?}", self.node_id),
                expected: "a non-empty node id".into(),
            });
        }
        if !self.addresses.gossip.is_empty() && self.addresses.gossip.parse::<SocketAddr>().is_err()
        {
            return Err(Error::GossipConfig {
                field: "addresses.gossip",
                value: format!("{:?}", self.addresses.gossip),
                expected: "empty (use the bound address) or an ip:port such as 10.0.0.5:7946"
                    .into(),
            });
        }
        self.timings.validate()
    }
}

/// Counters of one gossip node, for monitoring and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GossipStats {
    /// Datagrams received, valid or not.
    pub packets_received: u64,
    /// Datagrams sent.
    pub packets_sent: u64,
    /// Datagrams dropped because they were not Orion gossip or could not be decoded.
    pub malformed_packets: u64,
    /// Datagrams dropped because they came from a node of another cluster.
    pub foreign_cluster_packets: u64,
    /// Hellos answered with a refusal because a live member already uses the sender's node id.
    pub refused_duplicates: u64,
}
