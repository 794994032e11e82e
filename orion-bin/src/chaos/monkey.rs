//! The chaos monkey: a schedule of random faults, written to the store all at once when the
//! monkey starts, so it needs no process to keep running and stops by itself.
//!
//! One fault starts every `interval` (the first at once) and lasts half an interval, so faults
//! never overlap. What a fault is depends on the severity:
//!
//! | severity | faults |
//! |---|---|
//! | low | latency of 50 to 200 ms on one node |
//! | medium | latency of 100 to 500 ms on one node, or one node failure |
//! | high | latency of 200 ms to 1 s on every node, one node failure, or a partition that cuts a minority of the nodes off |

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{ChaosFault, ChaosKind, new_id};

/// Shortest monkey interval.
pub const MIN_INTERVAL: Duration = Duration::from_secs(2);

/// How disruptive a monkey's faults are.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Low,
    Medium,
    High,
}

/// SplitMix64: a small seeded generator, so a schedule is reproducible from its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn between(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
}

fn latency(rng: &mut Rng, nodes: &[String], lo: u64, hi: u64, all: bool) -> ChaosKind {
    ChaosKind::Latency {
        increase_ms: rng.between(lo, hi),
        nodes: if all {
            Vec::new()
        } else {
            vec![nodes[rng.below(nodes.len())].clone()]
        },
    }
}

fn one_fault(rng: &mut Rng, nodes: &[String], severity: Severity) -> ChaosKind {
    let failure = |rng: &mut Rng| ChaosKind::NodeFailure {
        target: nodes[rng.below(nodes.len())].clone(),
    };
    match severity {
        Severity::Low => latency(rng, nodes, 50, 200, false),
        Severity::Medium => match rng.below(2) {
            0 => latency(rng, nodes, 100, 500, false),
            _ => failure(rng),
        },
        Severity::High => match rng.below(3) {
            0 => latency(rng, nodes, 200, 1000, true),
            1 => failure(rng),
            _ => {
                // A minority (at least one node) against the rest.
                let mut rest = nodes.to_vec();
                let size = ((nodes.len() - 1) / 2).max(1);
                let mut minority = Vec::new();
                for _ in 0..size {
                    minority.push(rest.remove(rng.below(rest.len())));
                }
                ChaosKind::NetworkPartition {
                    groups: vec![minority, rest],
                }
            }
        },
    }
}

/// `events` faults over `nodes` (at least two), the first starting at `now` (unix ms), one per
/// `interval`, each lasting half an interval (at least one second). Deterministic for a seed.
pub fn schedule(
    nodes: &[String],
    severity: Severity,
    interval: Duration,
    events: usize,
    now: u64,
    seed: u64,
) -> Vec<ChaosFault> {
    let mut rng = Rng(seed);
    let step = interval.as_millis() as u64;
    let length = (step / 2).max(1000);
    let monkey = new_id();
    (0..events as u64)
        .map(|k| {
            let starts_at = now + k * step;
            ChaosFault {
                id: format!("{monkey}-{k:02}"),
                kind: one_fault(&mut rng, nodes, severity),
                starts_at,
                expires_at: starts_at + length,
                source: format!("monkey {monkey}"),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_do_not_overlap_and_name_known_nodes() {
        let nodes: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
        for severity in [Severity::Low, Severity::Medium, Severity::High] {
            let faults = schedule(&nodes, severity, Duration::from_secs(10), 20, 5_000, 42);
            assert_eq!(faults.len(), 20);
            for w in faults.windows(2) {
                assert!(w[0].expires_at <= w[1].starts_at);
            }
            for f in &faults {
                assert!(f.kind.nodes().iter().all(|n| nodes.iter().any(|k| k == n)));
                if let ChaosKind::NetworkPartition { groups } = &f.kind {
                    assert!(groups[0].len() < groups[1].len(), "a minority is cut off");
                }
                if severity == Severity::Low {
                    assert!(matches!(f.kind, ChaosKind::Latency { .. }));
                }
            }
        }
    }
}
