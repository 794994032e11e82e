//! The cluster id: a random UUID minted once, when a cluster is bootstrapped, and learned by
//! every node that joins it.
//!
//! It is kept in each node's data dir (`identity.json`), carried in every Raft frame
//! ([`crate::codec`]) and every gossip datagram, and checked on receipt: a node refuses Raft
//! requests and drops gossip from another cluster. A bootstrap node whose data dir was lost and
//! that bootstraps again mints a *new* id, so the old members refuse it instead of following a
//! second, empty one-node cluster that took over an old member's place.

use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// The longest cluster id accepted (a UUID is 36 characters).
pub const MAX_CLUSTER_ID_LEN: usize = 64;

/// Mints a new random cluster id: a version-4 UUID in its usual text form
/// (`8-4-4-4-12` lowercase hex digits).
pub fn new_cluster_id() -> String {
    let mut b: [u8; 16] = rand::random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|byte| format!("{byte:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// Checks a cluster id that came from outside (a file, a flag, a peer): 1 to
/// [`MAX_CLUSTER_ID_LEN`] characters of `a-z A-Z 0-9 - _ .`.
pub fn validate_cluster_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id.len() <= MAX_CLUSTER_ID_LEN
        && id
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidClusterId {
            value: id.chars().take(MAX_CLUSTER_ID_LEN + 8).collect(),
        })
    }
}

/// The cluster id a node knows, shared by everything that stamps or checks it (the Raft client
/// and server of one node). `None` until the node bootstraps or joins a cluster. Clones share it.
#[derive(Debug, Clone, Default)]
pub struct ClusterIdCell(Arc<RwLock<Option<String>>>);

impl ClusterIdCell {
    /// A cell holding `id`.
    pub fn new(id: Option<String>) -> Self {
        ClusterIdCell(Arc::new(RwLock::new(id)))
    }

    /// The id, if known.
    pub fn get(&self) -> Option<String> {
        self.0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Sets the id (once it is minted or learned and recorded).
    pub fn set(&self, id: String) {
        *self.0.write().unwrap_or_else(PoisonError::into_inner) = Some(id);
    }
}

/// Lets a repeated log line through at most once per period, and counts the ones it held back,
/// so a peer that keeps sending the wrong thing cannot flood the log.
#[derive(Debug)]
pub(crate) struct LogLimiter {
    every: Duration,
    state: Mutex<(Option<Instant>, u64)>,
}

impl LogLimiter {
    /// At most one line per `every`.
    pub(crate) const fn new(every: Duration) -> Self {
        LogLimiter {
            every,
            state: Mutex::new((None, 0)),
        }
    }

    /// `Some(held back since the last line)` when a line may be written now; `None` otherwise.
    pub(crate) fn allow(&self) -> Option<u64> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        match state.0 {
            Some(last) if now.duration_since(last) < self.every => {
                state.1 += 1;
                None
            }
            _ => {
                let held_back = state.1;
                *state = (Some(now), 0);
                Some(held_back)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minted_ids_are_valid_distinct_uuids() {
        let a = new_cluster_id();
        let b = new_cluster_id();
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4", "version 4: {a}");
        validate_cluster_id(&a).expect("a minted id is valid");
    }

    #[test]
    fn bad_ids_are_refused_with_what_is_accepted() {
        for bad in ["", "has space", "x".repeat(65).as_str(), "a/b", "é"] {
            let err = validate_cluster_id(bad).expect_err(bad).to_string();
            assert!(err.contains("expected"), "{err}");
        }
        validate_cluster_id("production-cluster.eu_1").expect("a readable name is valid");
    }

    #[test]
    fn the_limiter_lets_one_line_through_per_period_and_counts_the_rest() {
        let limiter = LogLimiter::new(Duration::from_secs(3600));
        assert_eq!(limiter.allow(), Some(0));
        for _ in 0..5 {
            assert_eq!(limiter.allow(), None);
        }
        let zero = LogLimiter::new(Duration::ZERO);
        assert_eq!(zero.allow(), Some(0));
        assert_eq!(zero.allow(), Some(0));
    }
}
