//! How a prober reaches a peer: the [`ProbeTransport`] trait, and [`SimulatedNetwork`], a network
//! in memory with the latency, loss and bandwidth you set, for tests and simulations.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::{Error, Result};

/// Sends a payload to a peer and waits for it to come back.
///
/// Contract: `echo` sends `payload_bytes` bytes to `peer`, which sends the same number back; it
/// returns the time from sending to the end of the reply. It fails (an [`Error::Probe`]) when the
/// peer does not answer; the caller bounds the wait with its own timeout, so an implementation
/// need not. The binary implements it over the node-to-node transport, where it passes through
/// the fault layer, so injected latency shows in the probes.
#[async_trait]
pub trait ProbeTransport: Send + Sync {
    async fn echo(&self, peer: &str, payload_bytes: usize) -> Result<Duration>;
}

/// One link's behaviour in a [`SimulatedNetwork`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SimulatedLink {
    /// Round-trip time of an empty payload, milliseconds.
    pub rtt_ms: f64,
    /// Probability that one echo is lost, 0 to 1.
    pub loss: f64,
    /// Throughput, megabits per second, applied to the payload in both directions.
    pub bandwidth_mbps: f64,
    /// Extra RTT drawn uniformly in `[0, jitter_ms]` per echo.
    pub jitter_ms: f64,
}

impl Default for SimulatedLink {
    fn default() -> Self {
        Self {
            rtt_ms: 1.0,
            loss: 0.0,
            bandwidth_mbps: 1_000.0,
            jitter_ms: 0.0,
        }
    }
}

#[derive(Debug)]
struct NetworkState {
    links: HashMap<(String, String), SimulatedLink>,
    default_link: SimulatedLink,
    dead_nodes: BTreeSet<String>,
    cut_links: BTreeSet<(String, String)>,
    rng: StdRng,
}

/// A network in memory: no sockets, no sleeping. An echo returns at once with the RTT the link
/// would have (`rtt_ms` + jitter + payload over bandwidth both ways), so simulations run in
/// virtual time. Links are symmetric; unset links use the default link.
#[derive(Debug, Clone)]
pub struct SimulatedNetwork {
    state: Arc<Mutex<NetworkState>>,
    traffic: Arc<Mutex<HashMap<String, Arc<AtomicU64>>>>,
    overhead_bytes: usize,
}

impl SimulatedNetwork {
    /// A network where every link is `default_link`; `seed` drives loss and jitter.
    pub fn new(default_link: SimulatedLink, seed: u64) -> Self {
        Self {
            state: Arc::new(Mutex::new(NetworkState {
                links: HashMap::new(),
                default_link,
                dead_nodes: BTreeSet::new(),
                cut_links: BTreeSet::new(),
                rng: StdRng::seed_from_u64(seed),
            })),
            traffic: Arc::new(Mutex::new(HashMap::new())),
            overhead_bytes: 0,
        }
    }

    /// Counts `bytes` more per message in the traffic figures (headers of the real transport).
    pub fn with_overhead_bytes(mut self, bytes: usize) -> Self {
        self.overhead_bytes = bytes;
        self
    }

    /// Sets the link between `a` and `b` (both directions).
    pub fn set_link(&self, a: &str, b: &str, link: SimulatedLink) {
        self.lock().links.insert(ordered(a, b), link);
    }

    /// Cuts (or restores) the link between `a` and `b`: every echo over it is lost.
    pub fn cut_link(&self, a: &str, b: &str, cut: bool) {
        let mut state = self.lock();
        if cut {
            state.cut_links.insert(ordered(a, b));
        } else {
            state.cut_links.remove(&ordered(a, b));
        }
    }

    /// Kills (or revives) `node`: every echo to or from it is lost.
    pub fn set_dead(&self, node: &str, dead: bool) {
        let mut state = self.lock();
        if dead {
            state.dead_nodes.insert(node.to_string());
        } else {
            state.dead_nodes.remove(node);
        }
    }

    /// The transport as seen from `node`.
    pub fn endpoint(&self, node: &str) -> SimulatedEndpoint {
        SimulatedEndpoint {
            network: self.clone(),
            node: node.to_string(),
        }
    }

    /// Bytes sent plus received by `node` so far (payloads and the per-message overhead).
    pub fn traffic_bytes(&self, node: &str) -> u64 {
        self.counter(node).load(Ordering::Relaxed)
    }

    fn counter(&self, node: &str) -> Arc<AtomicU64> {
        let mut traffic = self.traffic.lock().unwrap_or_else(|e| e.into_inner());
        traffic.entry(node.to_string()).or_default().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, NetworkState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn echo_between(&self, from: &str, to: &str, payload_bytes: usize) -> Result<Duration> {
        let message = (payload_bytes + self.overhead_bytes) as u64;
        let outcome = {
            let mut state = self.lock();
            let link = state
                .links
                .get(&ordered(from, to))
                .copied()
                .unwrap_or(state.default_link);
            let unreachable = state.dead_nodes.contains(from)
                || state.dead_nodes.contains(to)
                || state.cut_links.contains(&ordered(from, to));
            let lost = unreachable || state.rng.random_bool(link.loss.clamp(0.0, 1.0));
            let jitter = if link.jitter_ms > 0.0 {
                state.rng.random_range(0.0..link.jitter_ms)
            } else {
                0.0
            };
            (lost, unreachable, link, jitter)
        };
        let (lost, unreachable, link, jitter) = outcome;
        // The request always leaves the sender; the peer sees it unless the path is down.
        self.counter(from).fetch_add(message, Ordering::Relaxed);
        if unreachable {
            return Err(Error::Probe {
                peer: to.to_string(),
                reason: "no answer (simulated: unreachable)".into(),
            });
        }
        self.counter(to).fetch_add(message * 2, Ordering::Relaxed);
        if lost {
            return Err(Error::Probe {
                peer: to.to_string(),
                reason: "no answer (simulated: lost)".into(),
            });
        }
        self.counter(from).fetch_add(message, Ordering::Relaxed);
        let transfer_ms = (payload_bytes as f64 * 8.0 * 2.0) / (link.bandwidth_mbps * 1_000.0);
        Ok(Duration::from_secs_f64(
            (link.rtt_ms + jitter + transfer_ms) / 1_000.0,
        ))
    }
}

/// A [`SimulatedNetwork`] seen from one node.
#[derive(Debug, Clone)]
pub struct SimulatedEndpoint {
    network: SimulatedNetwork,
    node: String,
}

#[async_trait]
impl ProbeTransport for SimulatedEndpoint {
    async fn echo(&self, peer: &str, payload_bytes: usize) -> Result<Duration> {
        self.network.echo_between(&self.node, peer, payload_bytes)
    }
}

fn ordered(a: &str, b: &str) -> (String, String) {
    if a <= b {
        (a.to_string(), b.to_string())
    } else {
        (b.to_string(), a.to_string())
    }
}
