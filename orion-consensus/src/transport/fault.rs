//! The fault layer: a shared handle that the transport consults before every node-to-node
//! request. Tests use it to partition clusters; `orion chaos` will drive it at run time.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::error::{Error as ConsensusError, Result};

/// A peer's name in the fault layer: its Raft node id.
pub type PeerId = u64;

#[derive(Debug, Default)]
struct Faults {
    drop_probability: f64,
    delay: Duration,
    /// Directed links `(from, to)` that carry nothing.
    cut: HashSet<(PeerId, PeerId)>,
}

/// What the fault layer decided for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Verdict {
    /// The request must not be sent.
    pub request_blocked: bool,
    /// The request is sent but its answer must be discarded.
    pub response_blocked: bool,
    /// Wait this long before sending.
    pub delay: Duration,
}

/// A cloneable handle on the faults applied to node-to-node traffic. Every clone sees the same
/// settings, so one handle shared by all nodes of a test cluster controls the whole network.
///
/// Contract: a cut link `from -> to` blocks requests sent by `from` to `to` (never delivered)
/// and answers sent by `from` back to `to` (request delivered, answer lost). A dropped message
/// is never delivered. A fresh injector injects nothing; [`FaultInjector::heal`] returns to that.
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

    /// Restores the directed link `from -> to`.
    pub fn restore(&self, from: PeerId, to: PeerId) {
        self.with(|f| f.cut.remove(&(from, to)));
    }

    /// Removes every fault: no cut links, no drops, no delay.
    pub fn heal(&self) {
        self.with(|f| *f = Faults::default());
    }

    /// True when the directed link `from -> to` is cut.
    pub fn is_cut(&self, from: PeerId, to: PeerId) -> bool {
        self.with(|f| f.cut.contains(&(from, to)))
    }

    /// Decides the fate of one request from `from` to `to` (`None` when the target's id is not
    /// known, as for a join request sent to an address: only drops and delay apply then).
    pub(crate) fn verdict(&self, from: PeerId, to: Option<PeerId>) -> Verdict {
        self.with(|f| {
            let dropped = f.drop_probability > 0.0 && rand::random::<f64>() < f.drop_probability;
            let (request_cut, response_cut) = match to {
                Some(to) => (f.cut.contains(&(from, to)), f.cut.contains(&(to, from))),
                None => (false, false),
            };
            Verdict {
                request_blocked: dropped || request_cut,
                response_blocked: response_cut,
                delay: f.delay,
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
}
