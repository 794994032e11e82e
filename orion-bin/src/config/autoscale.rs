//! `cluster.autoscale:` in orion.yaml: how often nodes sample their autoscaled tasks and the
//! leader evaluates them (see docs/spec.md, `scale_policy`).
//!
//! ```yaml
//! cluster:
//!   autoscale:
//!     sampleInterval: 15s     # 1s to 10m: one stats call per task, one store write per node
//!     evaluateInterval: 15s   # 1s to 10m: the leader's evaluation of every autoscaled service
//! ```
//! Usage older than three sample intervals is stale: a service is then not scaled.

use std::time::Duration;

use orion_core::autoscale::{AutoscaleConfig, MAX_AUTOSCALE_INTERVAL, MIN_AUTOSCALE_INTERVAL};
use serde::{Deserialize, Serialize};

/// The `cluster.autoscale` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AutoscaleSection {
    /// How often each node samples its tasks of autoscaled services (default 15s).
    #[serde(with = "super::humantime_serde_compat", alias = "sampleInterval")]
    pub sample_interval: Duration,
    /// How often the leader evaluates every autoscaled service (default 15s).
    #[serde(with = "super::humantime_serde_compat", alias = "evaluateInterval")]
    pub evaluate_interval: Duration,
}

impl Default for AutoscaleSection {
    fn default() -> Self {
        let c = AutoscaleConfig::default();
        AutoscaleSection {
            sample_interval: c.sample_interval,
            evaluate_interval: c.evaluate_interval,
        }
    }
}

impl AutoscaleSection {
    /// The library's settings, each interval checked against its bounds.
    pub fn config(&self) -> anyhow::Result<AutoscaleConfig> {
        let bounds = MIN_AUTOSCALE_INTERVAL..=MAX_AUTOSCALE_INTERVAL;
        for (field, value) in [
            ("sampleInterval", self.sample_interval),
            ("evaluateInterval", self.evaluate_interval),
        ] {
            if !bounds.contains(&value) {
                anyhow::bail!(
                    "cluster.autoscale.{field}: got {}, expected 1s to 10m",
                    humantime::format_duration(value)
                );
            }
        }
        Ok(AutoscaleConfig {
            sample_interval: self.sample_interval,
            evaluate_interval: self.evaluate_interval,
            stale_after: self.sample_interval * 3,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_are_bounded() {
        assert!(AutoscaleSection::default().config().is_ok());
        let fast = AutoscaleSection {
            sample_interval: Duration::from_millis(500),
            ..AutoscaleSection::default()
        };
        let err = fast.config().unwrap_err().to_string();
        assert!(err.contains("cluster.autoscale.sampleInterval"), "{err}");
        assert!(err.contains("1s to 10m"), "{err}");
        let slow = AutoscaleSection {
            evaluate_interval: Duration::from_secs(601),
            ..AutoscaleSection::default()
        };
        assert!(slow.config().is_err());
    }
}
