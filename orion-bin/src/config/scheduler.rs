//! `orion.yaml`'s `scheduler:` section and the pipeline it builds.

use serde::{Deserialize, Serialize};

use orion_core::reconciler::ReconcilePolicy;

use super::Config;

/// `scheduler:`: which placement pipeline the leader runs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SchedulerSection {
    /// The network-aware pipeline (the default, `true`) or the resource-only one (`false`).
    /// Not with `filters`/`scorers`.
    #[serde(alias = "networkAware", skip_serializing_if = "Option::is_none")]
    pub network_aware: Option<bool>,
    /// Filters by name, in order (`orion_netscore::scoring::catalog`); with `scorers`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filters: Option<Vec<String>>,
    /// Scorers by name with their weights; with `filters`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scorers: Option<Vec<NamedScorer>>,
    /// Moving running tasks off nodes that now break a network rule (a degraded link).
    pub replacement: ReplacementSection,
    /// Moving replicas to nodes that join or come back.
    pub rebalance: super::rebalance::RebalanceSection,
}

/// `scheduler.replacement`: re-placement of running tasks whose node now breaks a rule of the
/// pipeline (`orion_core::reconciler`'s `moves`: start new, then stop old).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReplacementSection {
    /// On by default; `false` leaves running tasks where they are.
    pub enabled: bool,
    /// How far past a rule's bound, in percent of it, a task's node must be before the task
    /// moves (new placements need the bound itself): the hysteresis band. 0 to 100.
    #[serde(alias = "tolerancePercent")]
    pub tolerance_percent: u32,
    /// A task moves only once it has run this long: a replica moves at most once per cooldown.
    /// 1s to 24h.
    #[serde(with = "super::humantime_serde_compat")]
    pub cooldown: std::time::Duration,
    /// Moves in flight across the cluster at most (the disruption budget). 1 to 1000.
    #[serde(alias = "maxInFlight")]
    pub max_in_flight: u32,
}

impl Default for ReplacementSection {
    fn default() -> Self {
        let policy = ReconcilePolicy::default();
        ReplacementSection {
            enabled: true,
            tolerance_percent: policy.move_tolerance_percent,
            cooldown: std::time::Duration::from_millis(policy.move_cooldown),
            max_in_flight: policy.max_moves_in_flight,
        }
    }
}

impl ReplacementSection {
    /// Writes these settings into `policy`, every bound checked (the error names the field).
    pub fn apply(&self, policy: &mut ReconcilePolicy) -> anyhow::Result<()> {
        if self.tolerance_percent > 100 {
            anyhow::bail!(
                "scheduler.replacement.tolerancePercent: got {}, expected 0 to 100",
                self.tolerance_percent
            );
        }
        let day = std::time::Duration::from_secs(86_400);
        if !(std::time::Duration::from_secs(1)..=day).contains(&self.cooldown) {
            anyhow::bail!(
                "scheduler.replacement.cooldown: got {:?}, expected 1s to 24h",
                self.cooldown
            );
        }
        if !(1..=1000).contains(&self.max_in_flight) {
            anyhow::bail!(
                "scheduler.replacement.maxInFlight: got {}, expected 1 to 1000 \
                 (turn re-placement off with enabled: false)",
                self.max_in_flight
            );
        }
        policy.move_tolerance_percent = self.tolerance_percent;
        policy.move_cooldown = self.cooldown.as_millis() as u64;
        policy.max_moves_in_flight = if self.enabled { self.max_in_flight } else { 0 };
        Ok(())
    }
}

/// One scorer of `scheduler.scorers`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NamedScorer {
    pub name: String,
    pub weight: f64,
}

/// The most stages `scheduler.filters` or `scheduler.scorers` may list.
const MAX_STAGES: usize = 32;

impl Config {
    /// The pipeline this file asks for: `scheduler.filters` + `scheduler.scorers` by name, or
    /// the preset `network.scoring.scorer` (`default`: network-aware unless
    /// `scheduler.networkAware: false`). Mixed or half-given choices are refused.
    pub fn scheduler(&self) -> anyhow::Result<orion_core::scheduler::Scheduler> {
        // Whatever the pipeline, nodes without a zone label get one from measured latency.
        let zones = std::sync::Arc::new(orion_netscore::zones::LatencyZones::default());
        Ok(self.pipeline()?.with_annotator(zones))
    }

    fn pipeline(&self) -> anyhow::Result<orion_core::scheduler::Scheduler> {
        use orion_core::scheduler::{Scheduler, SchedulerConfig};
        let scoring = &self.network.scoring;
        let sc = SchedulerConfig {
            seed: scoring.seed,
            weights: scoring.weights,
            ..SchedulerConfig::default()
        };
        sc.validate()
            .map_err(|e| config_error(orion_core::Error::from(e)))?;
        let section = &self.scheduler;
        match (&section.filters, &section.scorers) {
            (Some(filters), Some(scorers)) => {
                if section.network_aware.is_some() || scoring.scorer != "default" {
                    anyhow::bail!(
                        "scheduler.filters/scorers compose the pipeline: leave out \
                         scheduler.networkAware and network.scoring.scorer (list network_rules \
                         and network by name instead)"
                    );
                }
                if filters.len() > MAX_STAGES || scorers.len() > MAX_STAGES {
                    anyhow::bail!(
                        "scheduler: at most {MAX_STAGES} filters and {MAX_STAGES} scorers"
                    );
                }
                let f: Vec<&str> = filters.iter().map(String::as_str).collect();
                let s: Vec<(&str, f64)> = scorers
                    .iter()
                    .map(|n| (n.name.as_str(), n.weight))
                    .collect();
                orion_netscore::scoring::catalog()
                    .build(&f, &s, sc)
                    .map_err(config_error)
            }
            (None, None) => {
                let name = scoring.scorer.as_str();
                if name == "default" {
                    Ok(if section.network_aware.unwrap_or(true) {
                        orion_netscore::scoring::network_aware_pipeline(sc)
                    } else {
                        Scheduler::default_pipeline(sc)
                    })
                } else if section.network_aware.is_some() {
                    anyhow::bail!(
                        "scheduler.networkAware chooses between the default pipelines; \
                         network.scoring.scorer {name:?} chooses another one: give one of them"
                    )
                } else {
                    Scheduler::with_scorer(name, sc).map_err(config_error)
                }
            }
            _ => anyhow::bail!("scheduler: give both filters and scorers, or neither"),
        }
    }
}

/// orion-core's names of scheduler settings (exact, or a prefix when ending in '.'), and where
/// orion.yaml has them.
const CONFIG_PATHS: &[(&str, &str)] = &[
    ("scheduler.weights.", "network.scoring.weights."),
    ("scheduler.scorer", "network.scoring.scorer"),
];

/// The path of orion.yaml that holds orion-core's scheduler setting `path`.
fn config_path(path: &str) -> String {
    for (core, yaml) in CONFIG_PATHS {
        if let Some(rest) = core
            .ends_with('.')
            .then(|| path.strip_prefix(core))
            .flatten()
        {
            return format!("{yaml}{rest}");
        }
        if path == *core {
            return (*yaml).to_owned();
        }
    }
    path.to_owned()
}

/// A scheduler error from orion-core as a configuration error: invalid values are listed with
/// the paths the user wrote in orion.yaml, not as an "invalid spec".
fn config_error(e: orion_core::Error) -> anyhow::Error {
    let orion_core::Error::Invalid(errors) = e else {
        return anyhow::Error::new(e);
    };
    let n = errors.0.len();
    let mut text = format!("{n} problem{}", if n == 1 { "" } else { "s" });
    for f in &errors.0 {
        text.push_str(&format!(
            "\n  - {}: got {}, expected {}",
            config_path(&f.path),
            f.value,
            f.expected
        ));
    }
    anyhow::anyhow!(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scheduler_section_picks_or_composes_the_pipeline() {
        let c = Config::default();
        let names = c.scheduler().unwrap().scorer_weights();
        assert_eq!(
            names.last(),
            Some(&("network", 0.4)),
            "network-aware by default"
        );
        let c: Config = serde_saphyr::from_str("scheduler:\n  networkAware: false\n").unwrap();
        assert!(
            c.scheduler()
                .unwrap()
                .scorer_weights()
                .iter()
                .all(|(n, _)| *n != "network")
        );
        let c: Config = serde_saphyr::from_str(
            "scheduler:\n  filters: [node_status, resources, network_rules]\n  scorers: [{name: network, weight: 1}]\n",
        )
        .unwrap();
        let s = c.scheduler().unwrap();
        assert_eq!(
            s.filter_names(),
            ["node_status", "resources", "network_rules"]
        );
        assert_eq!(s.scorer_weights(), [("network", 1.0)]);
        for (text, needle) in [
            (
                "scheduler:\n  filters: [resorces]\n  scorers: []\n",
                "network_rules",
            ),
            ("scheduler:\n  filters: []\n", "both filters and scorers"),
            (
                "scheduler:\n  networkAware: true\n  filters: []\n  scorers: []\n",
                "leave out",
            ),
            (
                "scheduler:\n  networkAware: true\nnetwork:\n  scoring:\n    scorer: epvm\n",
                "give one",
            ),
        ] {
            let c: Config = serde_saphyr::from_str(text).unwrap();
            let err = format!("{:#}", c.check().unwrap_err());
            assert!(err.contains(needle), "{text}: {err}");
        }
    }
}

#[cfg(test)]
mod error_paths {
    use super::*;

    /// A bad value in orion.yaml is a configuration problem named by the path written there,
    /// never an "invalid spec" under orion-core's own names.
    #[test]
    fn bad_scheduler_values_are_reported_at_their_orion_yaml_paths() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("orion.yaml");
        std::fs::write(
            &path,
            "network:\n  scoring:\n    weights: { cpu: -1, memory: 0.3, network: 0.4 }\n",
        )
        .unwrap();
        let err = format!("{:#}", Config::load(&path).unwrap_err());
        assert!(err.contains("network.scoring.weights.cpu: got -1"), "{err}");
        assert!(err.contains("invalid config file"), "{err}");
        assert!(!err.contains("invalid spec"), "{err}");
        assert!(!err.contains("scheduler.weights"), "{err}");

        std::fs::write(&path, "network:\n  scoring:\n    scorer: fastest\n").unwrap();
        let err = format!("{:#}", Config::load(&path).unwrap_err());
        assert!(err.contains("network.scoring.scorer"), "{err}");
        assert!(!err.contains("invalid spec"), "{err}");

        std::fs::write(
            &path,
            "scheduler:\n  filters: [resources]\n  scorers: [{name: network, weight: -2}]\n",
        )
        .unwrap();
        let err = format!("{:#}", Config::load(&path).unwrap_err());
        assert!(err.contains("scheduler.scorers[0].weight"), "{err}");
        assert!(!err.contains("invalid spec"), "{err}");
    }
}
