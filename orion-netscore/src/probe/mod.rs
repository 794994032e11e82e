//! The prober every node runs.
//!
//! Each round a [`Prober`] picks at most `peers_per_round` peers at random (so a node's cost does
//! not grow with the cluster, and the cluster's grows as n, not n²), sends each a few small echoes
//! through a [`ProbeTransport`], and once in `bandwidth_every_rounds` rounds a bounded larger one
//! to estimate bandwidth. It keeps per link the RTT p50 and p90, jitter, loss and bandwidth
//! (EWMA-smoothed, with a stability figure), moves its own Vivaldi coordinate with every RTT
//! sample, and returns what is worth publishing. A node publishes **one record** holding all its
//! links (`NodeLinks`, with its coordinate in the same transaction), at most once per
//! `min_publish_interval`, and only when a link moved past a threshold, its coordinate moved, or
//! a link changed state (up / down), which is published at once. So a node costs at most one
//! store write per interval however many links it learns, and none while nothing changes.
//!
//! [`run_prober`] drives it against a [`ClusterStore`](orion_core::store::ClusterStore): peers
//! from the node list, their coordinates from the store, publications written back.

mod driver;
mod link;
mod prober;
mod transport;

use std::time::Duration;

pub use driver::{ProberHandle, peer_views, publish, run_prober};
pub use link::{LinkState, LinkStats, RTT_WINDOW};
pub use prober::{PeerView, Prober, RoundReport};
pub use transport::{ProbeTransport, SimulatedEndpoint, SimulatedLink, SimulatedNetwork};

use crate::{Error, Result};

/// The prober's settings. Every field has a bound, checked by [`ProberConfig::validate`].
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProberConfig {
    /// Peers probed per round, 1 to 64.
    pub peers_per_round: usize,
    /// Time between rounds, 100 ms to 10 min.
    #[serde(with = "millis")]
    pub round_interval: Duration,
    /// Echoes per probed peer per round (the loss rate's denominator), 1 to 16.
    pub samples_per_peer: u32,
    /// Payload of an RTT echo, 0 to 1,024 bytes.
    pub echo_bytes: usize,
    /// Payload of the bandwidth transfer (sent and echoed back), 1 KiB to 1 MiB.
    pub bandwidth_bytes: usize,
    /// One bandwidth transfer (to one peer) every this many rounds, 1 to 100,000.
    pub bandwidth_every_rounds: u32,
    /// How long one echo may take before it counts as lost, 10 ms to 30 s.
    #[serde(with = "millis")]
    pub probe_timeout: Duration,
    /// Weight of a new sample in the moving averages, in (0, 1].
    pub ewma_alpha: f64,
    /// Relative RTT change that is worth publishing, in (0, 10].
    pub rtt_change: f64,
    /// Absolute loss change that is worth publishing, in (0, 1].
    pub loss_change: f64,
    /// Relative bandwidth change that is worth publishing, in (0, 10].
    pub bandwidth_change: f64,
    /// Least time between two publications of the node's record (its links and coordinate, one
    /// store write), 0 to 1 h. A link changing state (up / down) is published at once.
    #[serde(with = "millis")]
    pub min_publish_interval: Duration,
    /// Most links whose published figures change in one publication, 1 to 1,024; the others wait
    /// for the next one. Links changing state (up / down) always go.
    pub max_publishes_per_round: usize,
    /// Most links in the node's published record, 1 to 1,024
    /// ([`orion_core::model::MAX_LINKS_PER_RECORD`]): down links first, then the most recently
    /// probed. Pairs left out are estimated from the coordinates.
    pub max_links_published: usize,
    /// Rounds in a row in which every echo to a peer failed before its link counts as down, 1 to 100.
    pub down_after_failures: u32,
    /// How far (in estimated ms) the coordinate must move to be published again, in (0, 10,000].
    pub coordinate_change_ms: f64,
}

impl Default for ProberConfig {
    fn default() -> Self {
        Self {
            peers_per_round: 3,
            round_interval: Duration::from_secs(5),
            samples_per_peer: 3,
            echo_bytes: 32,
            bandwidth_bytes: 32 * 1024,
            bandwidth_every_rounds: 120,
            probe_timeout: Duration::from_secs(1),
            ewma_alpha: 0.3,
            rtt_change: 0.1,
            loss_change: 0.05,
            bandwidth_change: 0.25,
            min_publish_interval: Duration::from_secs(30),
            max_publishes_per_round: 32,
            max_links_published: 64,
            down_after_failures: 3,
            coordinate_change_ms: 1.0,
        }
    }
}

impl ProberConfig {
    /// Checks every bound; the error names the field, its value and what is accepted.
    pub fn validate(&self) -> Result<()> {
        fn range<T: PartialOrd + std::fmt::Debug>(name: &str, v: T, lo: T, hi: T) -> Result<()> {
            if v >= lo && v <= hi {
                Ok(())
            } else {
                Err(Error::invalid(
                    "prober config",
                    format!("{name} = {v:?}; accepted: {lo:?} to {hi:?}"),
                ))
            }
        }
        fn open_range(name: &str, v: f64, hi: f64) -> Result<()> {
            if v > 0.0 && v <= hi {
                Ok(())
            } else {
                Err(Error::invalid(
                    "prober config",
                    format!("{name} = {v}; accepted: more than 0 and at most {hi}"),
                ))
            }
        }
        range("peers_per_round", self.peers_per_round, 1, 64)?;
        range(
            "round_interval",
            self.round_interval,
            Duration::from_millis(100),
            Duration::from_secs(600),
        )?;
        range("samples_per_peer", self.samples_per_peer, 1, 16)?;
        range("echo_bytes", self.echo_bytes, 0, 1024)?;
        range("bandwidth_bytes", self.bandwidth_bytes, 1024, 1 << 20)?;
        range(
            "bandwidth_every_rounds",
            self.bandwidth_every_rounds,
            1,
            100_000,
        )?;
        range(
            "probe_timeout",
            self.probe_timeout,
            Duration::from_millis(10),
            Duration::from_secs(30),
        )?;
        open_range("ewma_alpha", self.ewma_alpha, 1.0)?;
        open_range("rtt_change", self.rtt_change, 10.0)?;
        open_range("loss_change", self.loss_change, 1.0)?;
        open_range("bandwidth_change", self.bandwidth_change, 10.0)?;
        range(
            "min_publish_interval",
            self.min_publish_interval,
            Duration::ZERO,
            Duration::from_secs(3600),
        )?;
        let most = orion_core::model::MAX_LINKS_PER_RECORD;
        range(
            "max_publishes_per_round",
            self.max_publishes_per_round,
            1,
            most,
        )?;
        range("max_links_published", self.max_links_published, 1, most)?;
        range("down_after_failures", self.down_after_failures, 1, 100)?;
        open_range("coordinate_change_ms", self.coordinate_change_ms, 10_000.0)?;
        Ok(())
    }
}

/// Durations as integer milliseconds in settings files.
mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis().min(u64::MAX as u128) as u64)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(d)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_is_valid_and_each_bound_is_checked() {
        assert!(ProberConfig::default().validate().is_ok());
        let broken = [
            ProberConfig {
                peers_per_round: 0,
                ..Default::default()
            },
            ProberConfig {
                peers_per_round: 65,
                ..Default::default()
            },
            ProberConfig {
                round_interval: Duration::from_millis(1),
                ..Default::default()
            },
            ProberConfig {
                bandwidth_bytes: 10 << 20,
                ..Default::default()
            },
            ProberConfig {
                ewma_alpha: 0.0,
                ..Default::default()
            },
            ProberConfig {
                loss_change: f64::NAN,
                ..Default::default()
            },
            ProberConfig {
                probe_timeout: Duration::from_secs(60),
                ..Default::default()
            },
            ProberConfig {
                max_links_published: 0,
                ..Default::default()
            },
            ProberConfig {
                max_links_published: 1025,
                ..Default::default()
            },
        ];
        for config in broken {
            let error = config.validate().unwrap_err().to_string();
            assert!(error.contains("accepted"), "{error}");
        }
    }
}
