//! One node's prober: peer choice, samples, smoothing, link state and what to publish.

use std::collections::HashMap;
use std::time::Duration;

use orion_core::model::{Millis, NetworkCoordinate, NetworkMeasurement, NodeId};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::index;

use super::ProberConfig;
use super::link::{LinkState, LinkStats};
use super::transport::ProbeTransport;
use crate::Result;
use crate::vivaldi::{Coordinate, Vivaldi, VivaldiConfig};

/// What the prober knows of one peer when a round starts.
#[derive(Debug, Clone, PartialEq)]
pub struct PeerView {
    pub id: NodeId,
    /// The peer's published Vivaldi coordinate, if any; samples to a peer without one do not move
    /// this node's coordinate.
    pub coordinate: Option<Coordinate>,
    /// Whether other nodes still reach the peer (membership says it is alive, and the other
    /// probers do not all fail to it). Decides between a dead link and a dead node.
    pub reached_by_others: bool,
}

/// What one round did and what is worth writing to the store.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RoundReport {
    /// The peers probed this round.
    pub probed: Vec<NodeId>,
    /// Measurements to publish (changed past a threshold, within the rate limit).
    pub publish: Vec<NetworkMeasurement>,
    /// Links whose published measurement should be deleted: they were published as down, and now
    /// nobody reaches the peer, so it is the node that is gone, not the link.
    pub retract: Vec<NodeId>,
    /// This node's coordinate, when it moved enough to publish.
    pub coordinate: Option<NetworkCoordinate>,
    /// Echoes sent, and how many came back.
    pub echoes_sent: u32,
    pub echoes_answered: u32,
}

#[derive(Debug, Clone)]
struct Published {
    measurement: NetworkMeasurement,
    at: Millis,
}

/// One node's prober. See the [module docs](super).
#[derive(Debug)]
pub struct Prober {
    node: NodeId,
    config: ProberConfig,
    vivaldi: Vivaldi,
    links: HashMap<NodeId, LinkStats>,
    published: HashMap<NodeId, Published>,
    published_coordinate: Option<(Coordinate, Millis)>,
    rounds: u64,
    rng: StdRng,
}

struct PeerOutcome {
    rtts_ms: Vec<f64>,
    lost: u32,
    bandwidth_mbps: Option<f64>,
}

impl Prober {
    /// A prober for `node`. `seed` drives the choice of peers and the Vivaldi directions.
    /// Errors when `config` breaks a bound.
    pub fn new(node: impl Into<NodeId>, config: ProberConfig, seed: u64) -> Result<Self> {
        config.validate()?;
        let first_round = seed % u64::from(config.bandwidth_every_rounds);
        Ok(Self {
            node: node.into(),
            config,
            vivaldi: Vivaldi::new(VivaldiConfig::default(), seed),
            links: HashMap::new(),
            published: HashMap::new(),
            published_coordinate: None,
            // Staggered, so the nodes' bandwidth transfers do not all fall in the same round.
            rounds: first_round,
            rng: StdRng::seed_from_u64(seed ^ 0x5EED),
        })
    }

    /// The node this prober runs on.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// The settings.
    pub fn config(&self) -> &ProberConfig {
        &self.config
    }

    /// This node's current Vivaldi coordinate.
    pub fn coordinate(&self) -> &Coordinate {
        self.vivaldi.coordinate()
    }

    /// Peers whose last probe round failed completely: the ones for which the caller should find
    /// out whether other nodes still reach them ([`PeerView::reached_by_others`]).
    pub fn suspected_peers(&self) -> Vec<NodeId> {
        let mut peers: Vec<NodeId> = self
            .links
            .iter()
            .filter(|(_, link)| link.consecutive_failures > 0)
            .map(|(id, _)| id.clone())
            .collect();
        peers.sort();
        peers
    }

    /// What is known of the link to `peer`.
    pub fn link(&self, peer: &str) -> Option<&LinkStats> {
        self.links.get(peer)
    }

    /// Runs one round at time `now` (ms since the epoch): probes up to `peers_per_round` of
    /// `peers` (itself excluded) chosen at random, each echo bounded by `probe_timeout`.
    /// Forgets links to nodes no longer in `peers`, so memory follows the cluster's size.
    pub async fn round(
        &mut self,
        transport: &dyn ProbeTransport,
        peers: &[PeerView],
        now: Millis,
    ) -> RoundReport {
        self.rounds += 1;
        let candidates: Vec<&PeerView> = peers.iter().filter(|p| p.id != self.node).collect();
        self.links
            .retain(|id, _| candidates.iter().any(|p| &p.id == id));
        self.published
            .retain(|id, _| candidates.iter().any(|p| &p.id == id));
        let k = self.config.peers_per_round.min(candidates.len());
        let chosen: Vec<&PeerView> = index::sample(&mut self.rng, candidates.len(), k)
            .into_iter()
            .map(|i| candidates[i])
            .collect();
        let measure_bandwidth = self
            .rounds
            .is_multiple_of(u64::from(self.config.bandwidth_every_rounds));
        let outcomes =
            futures::future::join_all(chosen.iter().enumerate().map(|(i, peer)| {
                self.probe_peer(transport, &peer.id, measure_bandwidth && i == 0)
            }))
            .await;

        let mut report = RoundReport::default();
        let mut candidates_to_publish = Vec::new();
        for (peer, outcome) in chosen.iter().zip(outcomes) {
            report.probed.push(peer.id.clone());
            report.echoes_sent += self.config.samples_per_peer;
            report.echoes_answered += outcome.rtts_ms.len() as u32;
            for &rtt in &outcome.rtts_ms {
                if let Some(remote) = &peer.coordinate {
                    // A refused sample (out of bounds) leaves the coordinate as it was.
                    let _ = self.vivaldi.observe(remote, rtt);
                }
            }
            let alpha = self.config.ewma_alpha;
            let link = self.links.entry(peer.id.clone()).or_default();
            for &rtt in &outcome.rtts_ms {
                link.add_rtt(rtt, alpha);
            }
            link.add_loss(
                f64::from(outcome.lost) / f64::from(self.config.samples_per_peer),
                alpha,
            );
            if let Some(mbps) = outcome.bandwidth_mbps {
                link.add_bandwidth(mbps, alpha);
            }
            let previous_state = link.state;
            if outcome.rtts_ms.is_empty() {
                link.consecutive_failures += 1;
                if link.consecutive_failures >= self.config.down_after_failures {
                    link.state = if peer.reached_by_others {
                        LinkState::Down
                    } else {
                        LinkState::PeerUnreachable
                    };
                }
            } else {
                link.consecutive_failures = 0;
                link.state = LinkState::Up;
            }
            let state = link.state;
            if state == LinkState::PeerUnreachable {
                let was_published_down = self
                    .published
                    .get(&peer.id)
                    .is_some_and(|p| p.measurement.link_down);
                if was_published_down {
                    self.published.remove(&peer.id);
                    report.retract.push(peer.id.clone());
                }
                continue;
            }
            let measurement = self.measurement_of(&peer.id, now);
            let urgent = state != previous_state
                && (state == LinkState::Down || previous_state == LinkState::Down);
            if let Some(m) = measurement
                && (urgent || self.worth_publishing(&m, now))
            {
                candidates_to_publish.push((urgent, m));
            }
        }
        // Link state changes first, then the rest, within the per-round limit.
        candidates_to_publish.sort_by_key(|(urgent, _)| !urgent);
        for (_, m) in candidates_to_publish
            .into_iter()
            .take(self.config.max_publishes_per_round)
        {
            self.published.insert(
                m.to.clone(),
                Published {
                    measurement: m.clone(),
                    at: now,
                },
            );
            report.publish.push(m);
        }
        report.coordinate = self.coordinate_to_publish(now);
        report
    }

    async fn probe_peer(
        &self,
        transport: &dyn ProbeTransport,
        peer: &str,
        measure_bandwidth: bool,
    ) -> PeerOutcome {
        let mut outcome = PeerOutcome {
            rtts_ms: Vec::new(),
            lost: 0,
            bandwidth_mbps: None,
        };
        for _ in 0..self.config.samples_per_peer {
            match self.echo(transport, peer, self.config.echo_bytes).await {
                Some(rtt) => outcome.rtts_ms.push(rtt),
                None => outcome.lost += 1,
            }
        }
        if measure_bandwidth && !outcome.rtts_ms.is_empty() {
            let base = outcome
                .rtts_ms
                .iter()
                .copied()
                .fold(f64::INFINITY, f64::min);
            if let Some(transfer) = self
                .echo(transport, peer, self.config.bandwidth_bytes)
                .await
            {
                let extra_ms = transfer - base;
                // Below 50 µs of extra time the estimate is noise: leave bandwidth unmeasured.
                if extra_ms > 0.05 {
                    let bits = (self.config.bandwidth_bytes - self.config.echo_bytes) as f64 * 16.0;
                    outcome.bandwidth_mbps = Some(bits / (extra_ms * 1_000.0));
                }
            }
        }
        outcome
    }

    /// One echo's RTT in ms, `None` when it failed or took longer than `probe_timeout`.
    async fn echo(&self, transport: &dyn ProbeTransport, peer: &str, bytes: usize) -> Option<f64> {
        let timeout = self.config.probe_timeout;
        match tokio::time::timeout(timeout, transport.echo(peer, bytes)).await {
            Ok(Ok(rtt)) if rtt <= timeout => Some(rtt_ms(rtt)),
            _ => None,
        }
    }

    fn measurement_of(&self, peer: &str, now: Millis) -> Option<NetworkMeasurement> {
        let link = self.links.get(peer)?;
        let down = link.state == LinkState::Down;
        if link.rtt_ms.is_none() && !down {
            return None;
        }
        Some(NetworkMeasurement {
            from: self.node.clone(),
            to: peer.to_string(),
            rtt_ms: link.rtt_quantile(0.5).unwrap_or(0.0),
            jitter_ms: link.jitter_ms,
            loss: if down { 1.0 } else { link.loss },
            bandwidth_mbps: link.bandwidth_mbps,
            measured_at: now,
            rtt_p90_ms: link.rtt_quantile(0.9).unwrap_or(0.0),
            stability: link.stability(),
            link_down: down,
        })
    }

    fn worth_publishing(&self, m: &NetworkMeasurement, now: Millis) -> bool {
        let Some(last) = self.published.get(&m.to) else {
            return true;
        };
        if now.saturating_sub(last.at) < self.config.min_publish_interval.as_millis() as u64 {
            return false;
        }
        let old = &last.measurement;
        let relative = |new: f64, old: f64| (new - old).abs() / old.abs().max(1e-3);
        relative(m.rtt_ms, old.rtt_ms) > self.config.rtt_change
            || (m.loss - old.loss).abs() > self.config.loss_change
            || match (m.bandwidth_mbps, old.bandwidth_mbps) {
                (Some(new), Some(old)) => relative(new, old) > self.config.bandwidth_change,
                (Some(_), None) => true,
                _ => false,
            }
    }

    fn coordinate_to_publish(&mut self, now: Millis) -> Option<NetworkCoordinate> {
        let current = self.vivaldi.coordinate().clone();
        if let Some((last, at)) = &self.published_coordinate {
            let moved = last.estimate_rtt_ms(&current) - last.height_ms - current.height_ms
                + (last.height_ms - current.height_ms).abs();
            let too_soon =
                now.saturating_sub(*at) < self.config.min_publish_interval.as_millis() as u64;
            if too_soon || moved < self.config.coordinate_change_ms {
                return None;
            }
        }
        self.published_coordinate = Some((current.clone(), now));
        Some(to_stored(&self.node, &current, now))
    }
}

/// `coordinate` as the store keeps it.
pub(crate) fn to_stored(node: &str, coordinate: &Coordinate, now: Millis) -> NetworkCoordinate {
    NetworkCoordinate {
        node: node.to_string(),
        position: coordinate.position.to_vec(),
        height_ms: coordinate.height_ms,
        error: coordinate.error,
        updated_at: now,
    }
}

fn rtt_ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1_000.0
}
