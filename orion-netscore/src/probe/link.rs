//! What a prober knows about one link: recent RTT samples, smoothed figures and its state.

use std::collections::VecDeque;

/// RTT samples kept per link for the percentiles and the jitter.
pub const RTT_WINDOW: usize = 32;

/// Whether a link works, as far as this prober can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkState {
    /// The last probe round reached the peer (or too few failed in a row to say otherwise).
    #[default]
    Up,
    /// Probes keep failing while other nodes still reach the peer: this link is down.
    Down,
    /// Probes keep failing and nobody else reaches the peer either: the node, not the link, is
    /// gone. Left to membership; never published as a link failure.
    PeerUnreachable,
}

/// Smoothed figures of one link. EWMA-smoothed RTT, loss and bandwidth, plus percentiles of the
/// recent raw samples.
#[derive(Debug, Clone, Default)]
pub struct LinkStats {
    samples: VecDeque<f64>,
    /// EWMA of the RTT samples, ms.
    pub rtt_ms: Option<f64>,
    /// EWMA of `|sample - previous sample|`, ms.
    pub jitter_ms: f64,
    /// EWMA of the per-round loss fraction.
    pub loss: f64,
    /// EWMA of the bandwidth estimates, Mbit/s.
    pub bandwidth_mbps: Option<f64>,
    /// Probe rounds that failed completely, in a row.
    pub consecutive_failures: u32,
    pub state: LinkState,
    /// When the link was last probed (ms since the epoch); the `measured_at` it is published with.
    pub measured_at: orion_core::model::Millis,
    last_sample: Option<f64>,
}

impl LinkStats {
    /// Takes one RTT sample in ms.
    pub fn add_rtt(&mut self, rtt_ms: f64, alpha: f64) {
        if self.samples.len() == RTT_WINDOW {
            self.samples.pop_front();
        }
        self.samples.push_back(rtt_ms);
        self.rtt_ms = Some(ewma(self.rtt_ms, rtt_ms, alpha));
        if let Some(previous) = self.last_sample {
            self.jitter_ms = ewma(Some(self.jitter_ms), (rtt_ms - previous).abs(), alpha);
        }
        self.last_sample = Some(rtt_ms);
    }

    /// Takes one round's loss fraction (lost / sent).
    pub fn add_loss(&mut self, fraction: f64, alpha: f64) {
        self.loss = ewma(Some(self.loss), fraction.clamp(0.0, 1.0), alpha);
    }

    /// Takes one bandwidth estimate in Mbit/s.
    pub fn add_bandwidth(&mut self, mbps: f64, alpha: f64) {
        self.bandwidth_mbps = Some(ewma(self.bandwidth_mbps, mbps, alpha));
    }

    /// The `q` quantile (0 to 1) of the recent samples, `None` before the first.
    pub fn rtt_quantile(&self, q: f64) -> Option<f64> {
        if self.samples.is_empty() {
            return None;
        }
        let mut sorted: Vec<f64> = self.samples.iter().copied().collect();
        sorted.sort_by(f64::total_cmp);
        Some(sorted[((sorted.len() - 1) as f64 * q.clamp(0.0, 1.0)).round() as usize])
    }

    /// How steady the link is, in [0, 1]: `1 / (1 + jitter / rtt + loss * 4)`. 1 is a link whose
    /// samples agree and lose nothing; a jitter as large as the RTT alone gives 0.5.
    pub fn stability(&self) -> f64 {
        match self.rtt_ms {
            Some(rtt) => 1.0 / (1.0 + self.jitter_ms / rtt.max(0.01) + self.loss * 4.0),
            None => 0.0,
        }
    }
}

fn ewma(previous: Option<f64>, sample: f64, alpha: f64) -> f64 {
    match previous {
        Some(value) => alpha * sample + (1.0 - alpha) * value,
        None => sample,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_jitter_and_stability() {
        let mut link = LinkStats::default();
        assert_eq!(link.rtt_quantile(0.5), None);
        assert_eq!(link.stability(), 0.0);
        for rtt in [10.0, 10.0, 10.0, 10.0] {
            link.add_rtt(rtt, 0.3);
        }
        assert_eq!(link.rtt_quantile(0.5), Some(10.0));
        assert_eq!(link.stability(), 1.0);
        for rtt in [30.0, 10.0, 30.0, 10.0, 30.0, 10.0] {
            link.add_rtt(rtt, 0.3);
        }
        assert_eq!(link.rtt_quantile(0.9), Some(30.0));
        assert!(link.jitter_ms > 5.0, "{}", link.jitter_ms);
        assert!(link.stability() < 0.7, "{}", link.stability());
    }

    #[test]
    fn the_window_is_bounded() {
        let mut link = LinkStats::default();
        for i in 0..(RTT_WINDOW * 3) {
            link.add_rtt(i as f64, 0.5);
        }
        assert_eq!(link.samples.len(), RTT_WINDOW);
        assert_eq!(link.rtt_quantile(0.0), Some((RTT_WINDOW * 2) as f64));
    }
}
