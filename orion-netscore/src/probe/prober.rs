//! One node's prober: peer choice, samples, smoothing, link state and what to publish.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use orion_core::model::{Millis, NetworkCoordinate, NetworkMeasurement, NodeId, NodeLinks};
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
    /// The links whose published figures change in this round's publication (changed past a
    /// threshold, or changed state); all of them are in [`RoundReport::links`].
    pub publish: Vec<NetworkMeasurement>,
    /// Links left out of the record this round: they were published as down, and now nobody
    /// reaches the peer, so it is the node that is gone, not the link.
    pub retract: Vec<NodeId>,
    /// The node's whole record of links, when this round publishes it (replacing the stored one).
    pub links: Option<NodeLinks>,
    /// This node's coordinate, when it moved enough to publish (written with `links`).
    pub coordinate: Option<NetworkCoordinate>,
    /// Echoes sent, and how many came back.
    pub echoes_sent: u32,
    pub echoes_answered: u32,
}

impl RoundReport {
    /// Store writes this round's publication costs: 1 when it publishes anything (the record and
    /// the coordinate go in one transaction), else 0.
    pub fn store_writes(&self) -> usize {
        usize::from(self.links.is_some() || self.coordinate.is_some())
    }
}

/// One node's prober. See the [module docs](super).
#[derive(Debug)]
pub struct Prober {
    node: NodeId,
    config: ProberConfig,
    vivaldi: Vivaldi,
    links: HashMap<NodeId, LinkStats>,
    /// The record as last published, by peer.
    published: BTreeMap<NodeId, NetworkMeasurement>,
    /// The record changed without being published (peers left the cluster).
    record_stale: bool,
    last_publication: Option<Millis>,
    published_coordinate: Option<Coordinate>,
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
            published: BTreeMap::new(),
            record_stale: false,
            last_publication: None,
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
    /// Forgets links to nodes no longer in `peers`, so memory follows the cluster's size. The
    /// report carries a publication (the whole record of links and/or the coordinate) at most
    /// once per `min_publish_interval`, and at once when a link changed state.
    pub async fn round(
        &mut self,
        transport: &dyn ProbeTransport,
        peers: &[PeerView],
        now: Millis,
    ) -> RoundReport {
        self.rounds += 1;
        let candidates: Vec<&PeerView> = peers.iter().filter(|p| p.id != self.node).collect();
        let present: std::collections::HashSet<&str> =
            candidates.iter().map(|p| p.id.as_str()).collect();
        self.links.retain(|id, _| present.contains(id.as_str()));
        let before = self.published.len();
        self.published.retain(|id, _| present.contains(id.as_str()));
        self.record_stale |= self.published.len() != before;
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
        // Links that went down or came back up this round: published at once.
        let mut urgent: Vec<NodeId> = Vec::new();
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
            link.measured_at = now;
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
                if self.published.get(&peer.id).is_some_and(|m| m.link_down) {
                    self.published.remove(&peer.id);
                    report.retract.push(peer.id.clone());
                }
                continue;
            }
            // Up <-> down, or back from unreachable: the record must say so now.
            if state != previous_state {
                urgent.push(peer.id.clone());
            }
        }
        let interval = self.config.min_publish_interval.as_millis() as u64;
        let due = !urgent.is_empty()
            || !report.retract.is_empty()
            || self
                .last_publication
                .is_none_or(|at| now.saturating_sub(at) >= interval);
        if !due {
            return report;
        }
        // Every link known, not only this round's: the ones probed since the last publication
        // are published now.
        let mut changes: Vec<(bool, NetworkMeasurement)> = Vec::new();
        for (id, link) in &self.links {
            if link.state == LinkState::PeerUnreachable {
                continue;
            }
            let is_urgent = urgent.contains(id);
            if let Some(m) = self.measurement_of(id)
                && (is_urgent || self.changed_past_threshold(&m))
            {
                changes.push((is_urgent, m));
            }
        }
        // Link state changes first (all of them), then the rest within the per-publication limit.
        changes.sort_by(|(ua, a), (ub, b)| ub.cmp(ua).then_with(|| a.to.cmp(&b.to)));
        let mut room = self.config.max_publishes_per_round;
        for (is_urgent, m) in changes {
            if !is_urgent {
                if room == 0 {
                    continue;
                }
                room -= 1;
            }
            self.published.insert(m.to.clone(), m.clone());
            report.publish.push(m);
        }
        if !report.publish.is_empty() || !report.retract.is_empty() || self.record_stale {
            self.bound_record();
            report.links = Some(NodeLinks {
                from: self.node.clone(),
                published_at: now,
                links: self.published.values().cloned().collect(),
            });
            self.record_stale = false;
        }
        report.coordinate = self.coordinate_to_publish(now);
        if report.store_writes() > 0 {
            self.last_publication = Some(now);
        }
        report
    }

    /// Tells the prober that the last publication did not reach the store (a failed write): the
    /// next round publishes the whole record and the coordinate again, without waiting for the
    /// interval or a new change. Without it, the values it believes published would stay missing
    /// from the store until they change again.
    pub fn publication_failed(&mut self) {
        self.record_stale = true;
        self.last_publication = None;
        self.published_coordinate = None;
    }

    /// Keeps at most `max_links_published` links in the record: down links first, then the most
    /// recently probed.
    fn bound_record(&mut self) {
        let most = self.config.max_links_published;
        if self.published.len() <= most {
            return;
        }
        let mut ranked: Vec<(bool, Millis, NodeId)> = self
            .published
            .values()
            .map(|m| (m.link_down, m.measured_at, m.to.clone()))
            .collect();
        ranked.sort_by(|a, b| b.0.cmp(&a.0).then(b.1.cmp(&a.1)).then(a.2.cmp(&b.2)));
        for (_, _, id) in ranked.into_iter().skip(most) {
            self.published.remove(&id);
        }
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

    fn measurement_of(&self, peer: &str) -> Option<NetworkMeasurement> {
        let link = self.links.get(peer)?;
        let down = link.state == LinkState::Down;
        if link.rtt_ms.is_none() && !down {
            return None;
        }
        // Published to a microsecond, a hundredth of a percent, a thousandth: what the readers
        // use, in fewer bytes than full floats (the record is rewritten whole).
        let round = |v: f64, per_unit: f64| (v * per_unit).round() / per_unit;
        Some(NetworkMeasurement {
            from: self.node.clone(),
            to: peer.to_string(),
            rtt_ms: round(link.rtt_quantile(0.5).unwrap_or(0.0), 1e3),
            jitter_ms: round(link.jitter_ms, 1e3),
            loss: if down { 1.0 } else { round(link.loss, 1e4) },
            bandwidth_mbps: link.bandwidth_mbps.map(|b| round(b, 1e2)),
            measured_at: link.measured_at,
            rtt_p90_ms: round(link.rtt_quantile(0.9).unwrap_or(0.0), 1e3),
            stability: round(link.stability(), 1e3),
            link_down: down,
        })
    }

    /// True when `m` differs from the published figures of its link past a threshold (or the
    /// link was never published).
    fn changed_past_threshold(&self, m: &NetworkMeasurement) -> bool {
        let Some(old) = self.published.get(&m.to) else {
            return true;
        };
        let relative = |new: f64, old: f64| (new - old).abs() / old.abs().max(1e-3);
        m.link_down != old.link_down
            || relative(m.rtt_ms, old.rtt_ms) > self.config.rtt_change
            || (m.loss - old.loss).abs() > self.config.loss_change
            || match (m.bandwidth_mbps, old.bandwidth_mbps) {
                (Some(new), Some(old)) => relative(new, old) > self.config.bandwidth_change,
                (Some(_), None) => true,
                _ => false,
            }
    }

    /// The coordinate, when it moved at least `coordinate_change_ms` since it was last published
    /// (or never was). Called only when a publication is due.
    fn coordinate_to_publish(&mut self, now: Millis) -> Option<NetworkCoordinate> {
        let current = self.vivaldi.coordinate().clone();
        if let Some(last) = &self.published_coordinate {
            let moved = last.estimate_rtt_ms(&current) - last.height_ms - current.height_ms
                + (last.height_ms - current.height_ms).abs();
            if moved < self.config.coordinate_change_ms {
                return None;
            }
        }
        self.published_coordinate = Some(current.clone());
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
