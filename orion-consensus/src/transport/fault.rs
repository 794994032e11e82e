//! The fault layer: a shared handle that the transport consults before every node-to-node
//! request. Tests use it to partition clusters; `orion chaos` drives it at run time through
//! named [`Fault`]s, and other components (a network prober) ask it for the [`Verdict`] of a
//! link so they see what the transport would do.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::error::{Error as ConsensusError, Result};

/// A peer's name in the fault layer: its Raft node id.
pub type PeerId = u64;

/// The nodes a [`Fault::Latency`] applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Targets {
    /// Every node, known or not.
    All,
    /// These nodes only.
    Nodes(BTreeSet<PeerId>),
}

impl Targets {
    fn contains(&self, id: PeerId) -> bool {
        match self {
            Targets::All => true,
            Targets::Nodes(set) => set.contains(&id),
        }
    }
}

/// A fault installed under a name with [`FaultInjector::insert_fault`]; several can be active at
/// once and each is removed on its own, without touching the others or the unnamed settings.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// Adds `increase` to every request sent by or to one of `nodes` (once per request, even when
    /// both ends are targets).
    Latency { nodes: Targets, increase: Duration },
    /// Adds `increase` to every request on the link between `a` and `b`, both directions.
    LinkLatency {
        a: PeerId,
        b: PeerId,
        increase: Duration,
    },
    /// Cuts every link, both directions, between nodes of different groups. Nodes in no group
    /// keep all their links. At least two groups, none empty, no node in two groups.
    Partition { groups: Vec<BTreeSet<PeerId>> },
    /// Cuts every link of `node`, both directions, including its requests to peers whose id is
    /// not known (a join sent to an address).
    Isolate { node: PeerId },
}

impl Fault {
    /// Checks the fault's shape (see each variant); the error names what is wrong.
    pub fn validate(&self) -> Result<()> {
        let bad = |field, value: String, expected: &str| {
            Err(ConsensusError::InvalidFault {
                field,
                value,
                expected: expected.to_owned(),
            })
        };
        match self {
            Fault::Partition { groups } => {
                if groups.len() < 2 {
                    return bad(
                        "partition.groups",
                        groups.len().to_string(),
                        "at least 2 groups",
                    );
                }
                let mut seen = BTreeSet::new();
                for g in groups {
                    if g.is_empty() {
                        return bad(
                            "partition.groups",
                            "an empty group".into(),
                            "non-empty groups",
                        );
                    }
                    for id in g {
                        if !seen.insert(*id) {
                            return bad(
                                "partition.groups",
                                format!("node {id} in two groups"),
                                "each node in at most one group",
                            );
                        }
                    }
                }
                Ok(())
            }
            Fault::Latency {
                nodes: Targets::Nodes(n),
                ..
            } if n.is_empty() => bad("latency.nodes", "none".into(), "at least one node, or all"),
            Fault::LinkLatency { a, b, .. } if a == b => bad(
                "link_latency",
                format!("{a} to itself"),
                "two different nodes",
            ),
            _ => Ok(()),
        }
    }

    /// True when this fault cuts requests from `from` to `to` (`None`: a peer of unknown id).
    fn blocks(&self, from: PeerId, to: Option<PeerId>) -> bool {
        match self {
            Fault::Isolate { node } => *node == from || to == Some(*node),
            Fault::Partition { groups } => {
                let Some(to) = to else { return false };
                let group_of = |id| groups.iter().position(|g| g.contains(&id));
                matches!((group_of(from), group_of(to)), (Some(a), Some(b)) if a != b)
            }
            Fault::Latency { .. } | Fault::LinkLatency { .. } => false,
        }
    }

    /// What this fault adds to a request from `from` to `to`.
    fn delay(&self, from: PeerId, to: Option<PeerId>) -> Duration {
        match self {
            Fault::Latency { nodes, increase } => {
                if nodes.contains(from) || to.is_some_and(|t| nodes.contains(t)) {
                    *increase
                } else {
                    Duration::ZERO
                }
            }
            Fault::LinkLatency { a, b, increase } => match to {
                Some(to) if (from, to) == (*a, *b) || (from, to) == (*b, *a) => *increase,
                _ => Duration::ZERO,
            },
            Fault::Partition { .. } | Fault::Isolate { .. } => Duration::ZERO,
        }
    }
}

#[derive(Debug, Default)]
struct Faults {
    drop_probability: f64,
    delay: Duration,
    /// Directed links `(from, to)` that carry nothing.
    cut: HashSet<(PeerId, PeerId)>,
    /// Added to every request sent by or to the node.
    node_delay: HashMap<PeerId, Duration>,
    /// Added to every request on the directed link.
    link_delay: HashMap<(PeerId, PeerId), Duration>,
    /// Named faults, by name.
    named: BTreeMap<String, Fault>,
}

impl Faults {
    fn blocks(&self, from: PeerId, to: Option<PeerId>) -> bool {
        to.is_some_and(|to| self.cut.contains(&(from, to)))
            || self.named.values().any(|f| f.blocks(from, to))
    }

    fn delay(&self, from: PeerId, to: Option<PeerId>) -> Duration {
        let mut d = self.delay;
        d = d.saturating_add(self.node_delay.get(&from).copied().unwrap_or_default());
        if let Some(to) = to {
            d = d.saturating_add(self.node_delay.get(&to).copied().unwrap_or_default());
            d = d.saturating_add(
                self.link_delay
                    .get(&(from, to))
                    .copied()
                    .unwrap_or_default(),
            );
        }
        self.named
            .values()
            .fold(d, |d, f| d.saturating_add(f.delay(from, to)))
    }
}

/// What the fault layer decided for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Verdict {
    /// The request must not be sent.
    pub request_blocked: bool,
    /// The request is sent but its answer must be discarded.
    pub response_blocked: bool,
    /// Wait this long before sending.
    pub delay: Duration,
}

impl Verdict {
    /// True when the request or its answer is lost: the exchange fails.
    pub fn is_blocked(&self) -> bool {
        self.request_blocked || self.response_blocked
    }
}

/// A cloneable handle on the faults applied to node-to-node traffic. Every clone sees the same
/// settings, so one handle shared by all nodes of a test cluster controls the whole network.
///
/// Contract: a cut link `from -> to` blocks requests sent by `from` to `to` (never delivered)
/// and answers sent by `from` back to `to` (request delivered, answer lost). A dropped message
/// is never delivered. Delays add up: the global delay, each end's node delay, the directed
/// link's delay and every named fault's. A fresh injector injects nothing;
/// [`FaultInjector::heal`] returns to that.
#[derive(Debug, Clone, Default)]
pub struct FaultInjector {
    inner: Arc<Mutex<Faults>>,
}

impl FaultInjector {
    /// An injector that injects nothing.
    pub fn new() -> Self {
        Self::default()
    }

    fn with<T>(&self, f: impl FnOnce(&mut Faults) -> T) -> T {
        // A poisoned lock only means a panic elsewhere while holding it; the data is still valid.
        let mut guard = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut guard)
    }

    /// Drops each request with probability `p` (0.0 to 1.0).
    pub fn set_drop_probability(&self, p: f64) -> Result<()> {
        if !(0.0..=1.0).contains(&p) {
            return Err(ConsensusError::RaftConfig {
                field: "drop_probability",
                value: p.to_string(),
                expected: "a number from 0.0 to 1.0".into(),
            });
        }
        self.with(|f| f.drop_probability = p);
        Ok(())
    }

    /// Delays every request by `delay` before it is sent.
    pub fn set_delay(&self, delay: Duration) {
        self.with(|f| f.delay = delay);
    }

    /// Delays every request sent by or to `node` by `delay` (zero removes it).
    pub fn set_node_delay(&self, node: PeerId, delay: Duration) {
        self.with(|f| {
            if delay.is_zero() {
                f.node_delay.remove(&node);
            } else {
                f.node_delay.insert(node, delay);
            }
        });
    }

    /// Delays every request on the directed link `from -> to` by `delay` (zero removes it).
    pub fn set_link_delay(&self, from: PeerId, to: PeerId, delay: Duration) {
        self.with(|f| {
            if delay.is_zero() {
                f.link_delay.remove(&(from, to));
            } else {
                f.link_delay.insert((from, to), delay);
            }
        });
    }

    /// Installs `fault` under `name`, replacing a fault of that name. Refused (nothing changes)
    /// when [`Fault::validate`] refuses it.
    pub fn insert_fault(&self, name: impl Into<String>, fault: Fault) -> Result<()> {
        fault.validate()?;
        self.with(|f| f.named.insert(name.into(), fault));
        Ok(())
    }

    /// Removes the fault named `name`; false when there was none.
    pub fn remove_fault(&self, name: &str) -> bool {
        self.with(|f| f.named.remove(name).is_some())
    }

    /// Keeps only the named faults whose name `keep` accepts.
    pub fn retain_faults(&self, mut keep: impl FnMut(&str) -> bool) {
        self.with(|f| f.named.retain(|name, _| keep(name)));
    }

    /// The named faults, by name.
    pub fn faults(&self) -> BTreeMap<String, Fault> {
        self.with(|f| f.named.clone())
    }

    /// Cuts the directed link `from -> to`.
    pub fn cut(&self, from: PeerId, to: PeerId) {
        self.with(|f| f.cut.insert((from, to)));
    }

    /// Cuts both directions between `a` and `b`.
    pub fn cut_both(&self, a: PeerId, b: PeerId) {
        self.with(|f| {
            f.cut.insert((a, b));
            f.cut.insert((b, a));
        });
    }

    /// Cuts every link, both ways, between a peer of `side_a` and a peer of `side_b`.
    pub fn partition(&self, side_a: &[PeerId], side_b: &[PeerId]) {
        for &a in side_a {
            for &b in side_b {
                self.cut_both(a, b);
            }
        }
    }

    /// Restores the directed link `from -> to` (cut with [`FaultInjector::cut`]; named faults
    /// stay).
    pub fn restore(&self, from: PeerId, to: PeerId) {
        self.with(|f| f.cut.remove(&(from, to)));
    }

    /// Removes every fault: no cut links, no drops, no delays, no named faults.
    pub fn heal(&self) {
        self.with(|f| *f = Faults::default());
    }

    /// True when requests from `from` to `to` are cut, by a cut link or a named fault (drops
    /// are random and not counted).
    pub fn is_cut(&self, from: PeerId, to: PeerId) -> bool {
        self.with(|f| f.blocks(from, Some(to)))
    }

    /// True when an exchange between `a` and `b` fails whoever starts it: the link is cut in
    /// either direction (drops not counted). What a gossip filter applies to a peer.
    pub fn link_down(&self, a: PeerId, b: PeerId) -> bool {
        self.with(|f| f.blocks(a, Some(b)) || f.blocks(b, Some(a)))
    }

    /// The delay a request from `from` to `to` waits before it is sent, without a drop draw.
    pub fn delay(&self, from: PeerId, to: Option<PeerId>) -> Duration {
        self.with(|f| f.delay(from, to))
    }

    /// Decides the fate of one request from `from` to `to` (`None` when the target's id is not
    /// known, as for a join request sent to an address: only drops, delays that name `from`,
    /// and the isolation of `from` apply then). Draws the random drop, so two calls may differ
    /// when a drop probability is set; components that measure links (a prober) call it once per
    /// probe and obey it as the transport does.
    pub fn verdict(&self, from: PeerId, to: Option<PeerId>) -> Verdict {
        self.with(|f| {
            let dropped = f.drop_probability > 0.0 && rand::random::<f64>() < f.drop_probability;
            let response_cut = to.is_some_and(|to| f.blocks(to, Some(from)));
            Verdict {
                request_blocked: dropped || f.blocks(from, to),
                response_blocked: response_cut,
                delay: f.delay(from, to),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cut_is_directed_and_heal_clears_it() {
        let f = FaultInjector::new();
        f.cut(1, 2);
        let v = f.verdict(1, Some(2));
        assert!(v.request_blocked && !v.response_blocked);
        let back = f.verdict(2, Some(1));
        assert!(!back.request_blocked && back.response_blocked);
        assert!(!f.verdict(1, Some(3)).request_blocked);
        f.heal();
        assert!(!f.is_cut(1, 2));
        assert!(!f.verdict(1, Some(2)).request_blocked);
    }

    #[test]
    fn partition_cuts_both_ways_between_sides_only() {
        let f = FaultInjector::new();
        f.partition(&[1], &[2, 3]);
        assert!(f.is_cut(1, 2) && f.is_cut(3, 1));
        assert!(!f.is_cut(2, 3));
    }

    #[test]
    fn drop_probability_is_validated_and_applied() {
        let f = FaultInjector::new();
        assert!(f.set_drop_probability(1.5).is_err());
        f.set_drop_probability(1.0).unwrap();
        assert!(f.verdict(1, None).request_blocked);
        f.set_drop_probability(0.0).unwrap();
        assert!(!f.verdict(1, None).request_blocked);
    }

    fn set(ids: &[PeerId]) -> BTreeSet<PeerId> {
        ids.iter().copied().collect()
    }

    #[test]
    fn latency_per_node_per_link_and_named_adds_up() {
        let f = FaultInjector::new();
        let ms = Duration::from_millis;
        f.set_node_delay(2, ms(10));
        f.set_link_delay(1, 3, ms(5));
        assert_eq!(f.verdict(1, Some(2)).delay, ms(10));
        assert_eq!(f.verdict(2, Some(3)).delay, ms(10));
        assert_eq!(f.verdict(1, Some(3)).delay, ms(5));
        assert_eq!(
            f.verdict(3, Some(1)).delay,
            Duration::ZERO,
            "link delays are directed"
        );
        f.insert_fault(
            "lat",
            Fault::Latency {
                nodes: Targets::Nodes(set(&[1])),
                increase: ms(100),
            },
        )
        .unwrap();
        assert_eq!(f.verdict(1, Some(3)).delay, ms(105));
        assert_eq!(f.verdict(3, Some(1)).delay, ms(100));
        assert_eq!(f.verdict(1, None).delay, ms(100));
        assert_eq!(
            f.verdict(2, Some(3)).delay,
            ms(10),
            "untouched by a fault on 1"
        );
        f.insert_fault(
            "all",
            Fault::Latency {
                nodes: Targets::All,
                increase: ms(1),
            },
        )
        .unwrap();
        assert_eq!(f.delay(2, Some(3)), ms(11));
        assert!(f.remove_fault("lat"));
        assert!(!f.remove_fault("lat"));
        assert_eq!(f.verdict(3, Some(1)).delay, ms(1));
        f.set_node_delay(2, Duration::ZERO);
        assert_eq!(f.delay(2, Some(3)), ms(1));
    }

    #[test]
    fn named_partition_cuts_between_groups_and_spares_the_rest() {
        let f = FaultInjector::new();
        f.insert_fault(
            "p",
            Fault::Partition {
                groups: vec![set(&[1, 2]), set(&[3])],
            },
        )
        .unwrap();
        let v = f.verdict(1, Some(3));
        assert!(v.request_blocked && v.response_blocked && v.is_blocked());
        assert!(f.is_cut(3, 2) && f.link_down(2, 3));
        assert!(!f.is_cut(1, 2), "same group");
        assert!(!f.is_cut(1, 4) && !f.is_cut(4, 3), "node 4 is in no group");
        assert!(!f.verdict(1, None).request_blocked);
        f.retain_faults(|name| name != "p");
        assert!(!f.is_cut(1, 3));
        assert!(f.faults().is_empty());
    }

    #[test]
    fn isolation_cuts_every_link_of_one_node_and_only_its_own() {
        let f = FaultInjector::new();
        f.insert_fault("down", Fault::Isolate { node: 2 }).unwrap();
        assert!(f.verdict(2, None).request_blocked, "even to unknown peers");
        assert!(f.verdict(1, Some(2)).request_blocked);
        let back = f.verdict(2, Some(1));
        assert!(back.request_blocked && back.response_blocked);
        assert!(!f.verdict(1, Some(3)).is_blocked());
        // A test cut and a named fault are independent.
        f.cut(1, 3);
        assert!(f.remove_fault("down"));
        assert!(!f.is_cut(1, 2) && f.is_cut(1, 3));
    }

    #[test]
    fn malformed_faults_are_refused_and_change_nothing() {
        let f = FaultInjector::new();
        for bad in [
            Fault::Partition {
                groups: vec![set(&[1, 2])],
            },
            Fault::Partition {
                groups: vec![set(&[1]), set(&[])],
            },
            Fault::Partition {
                groups: vec![set(&[1, 2]), set(&[2, 3])],
            },
            Fault::Latency {
                nodes: Targets::Nodes(BTreeSet::new()),
                increase: Duration::from_millis(1),
            },
            Fault::LinkLatency {
                a: 1,
                b: 1,
                increase: Duration::from_millis(1),
            },
        ] {
            let err = f.insert_fault("x", bad.clone()).unwrap_err();
            assert!(err.to_string().contains("invalid fault"), "{bad:?}: {err}");
        }
        assert!(f.faults().is_empty());
    }

    #[test]
    fn heal_removes_named_faults_too() {
        let f = FaultInjector::new();
        f.insert_fault("i", Fault::Isolate { node: 1 }).unwrap();
        f.set_node_delay(1, Duration::from_millis(3));
        f.heal();
        assert_eq!(f.verdict(1, Some(2)), f.verdict(3, Some(4)));
        assert!(!f.verdict(1, Some(2)).is_blocked());
        assert_eq!(f.delay(1, Some(2)), Duration::ZERO);
    }
}
