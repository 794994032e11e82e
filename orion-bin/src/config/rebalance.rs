//! `orion.yaml`'s `scheduler.rebalance`: replicas moving to nodes that join or come back
//! (`orion_core::reconciler::rebalance`: start new, then stop old, within a budget).

use serde::{Deserialize, Serialize};

use orion_core::reconciler::{RebalancePolicy, ReconcilePolicy};

/// `scheduler.rebalance`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RebalanceSection {
    /// On by default; `false` leaves replicas where they are when a node joins or comes back.
    pub enabled: bool,
    /// A replica moves only when its node runs at least this many more replicas of its service
    /// than the node it would move to: the gain that is worth a move. 2 to 1000.
    #[serde(alias = "minSpread")]
    pub min_spread: u32,
    /// Moves in flight across the cluster at most (the disruption budget; per service, also at
    /// most `update_strategy.parallelism`). 1 to 1000.
    #[serde(alias = "maxInFlight")]
    pub max_in_flight: u32,
    /// A node receives replicas only once it has been ready this long, and a replica moves
    /// only once it has run this long: no flapping. 1s to 24h.
    #[serde(with = "super::humantime_serde_compat")]
    pub cooldown: std::time::Duration,
}

impl Default for RebalanceSection {
    fn default() -> Self {
        let policy = RebalancePolicy::default();
        RebalanceSection {
            enabled: true,
            min_spread: policy.min_spread,
            max_in_flight: policy.max_in_flight,
            cooldown: std::time::Duration::from_millis(policy.cooldown),
        }
    }
}

impl RebalanceSection {
    /// Writes these settings into `policy`, every bound checked (the error names the field).
    pub fn apply(&self, policy: &mut ReconcilePolicy) -> anyhow::Result<()> {
        if !(2..=1000).contains(&self.min_spread) {
            anyhow::bail!(
                "scheduler.rebalance.minSpread: got {}, expected 2 to 1000 (a difference of 1 \
                 replica cannot be evened out)",
                self.min_spread
            );
        }
        if !(1..=1000).contains(&self.max_in_flight) {
            anyhow::bail!(
                "scheduler.rebalance.maxInFlight: got {}, expected 1 to 1000 \
                 (turn rebalancing off with enabled: false)",
                self.max_in_flight
            );
        }
        let day = std::time::Duration::from_secs(86_400);
        if !(std::time::Duration::from_secs(1)..=day).contains(&self.cooldown) {
            anyhow::bail!(
                "scheduler.rebalance.cooldown: got {:?}, expected 1s to 24h",
                self.cooldown
            );
        }
        policy.rebalance = RebalancePolicy {
            max_in_flight: if self.enabled { self.max_in_flight } else { 0 },
            min_spread: self.min_spread,
            cooldown: self.cooldown.as_millis() as u64,
        };
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::Config;

    #[test]
    fn the_rebalance_section_is_on_by_default_bounded_and_can_be_turned_off() {
        let policy = Config::default()
            .controllers(None)
            .unwrap()
            .policy
            .rebalance;
        assert_eq!(
            (policy.max_in_flight, policy.min_spread, policy.cooldown),
            (2, 2, 60_000)
        );
        let c: Config = serde_saphyr::from_str(
            "scheduler:\n  rebalance: { minSpread: 3, maxInFlight: 1, cooldown: 5s }\n",
        )
        .unwrap();
        let policy = c.controllers(None).unwrap().policy.rebalance;
        assert_eq!(
            (policy.max_in_flight, policy.min_spread, policy.cooldown),
            (1, 3, 5_000)
        );
        let c: Config =
            serde_saphyr::from_str("scheduler:\n  rebalance: { enabled: false }\n").unwrap();
        assert_eq!(
            c.controllers(None).unwrap().policy.rebalance.max_in_flight,
            0
        );
        for (text, needle) in [
            (
                "scheduler:\n  rebalance: { minSpread: 1 }\n",
                "minSpread: got 1, expected 2 to 1000",
            ),
            (
                "scheduler:\n  rebalance: { maxInFlight: 0 }\n",
                "enabled: false",
            ),
            (
                "scheduler:\n  rebalance: { cooldown: 2d }\n",
                "expected 1s to 24h",
            ),
        ] {
            let c: Config = serde_saphyr::from_str(text).unwrap();
            let err = format!("{:#}", c.check().unwrap_err());
            assert!(err.contains(needle), "{text}: {err}");
        }
        let unknown = serde_saphyr::from_str::<Config>("scheduler:\n  rebalance: { budget: 3 }\n");
        assert!(unknown.is_err(), "unknown keys are refused");
    }
}
