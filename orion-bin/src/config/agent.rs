//! `agent:` in orion.yaml: how this node's agent works its tasks (`orion_core::node::Agent`).
//!
//! ```yaml
//! agent:
//!   maxInFlight: 16     # task operations (starts, stops, restarts) at once; 1 to 256
//! ```

use serde::{Deserialize, Serialize};

use orion_core::node::{DEFAULT_MAX_IN_FLIGHT, MAX_IN_FLIGHT_CEILING};

/// `agent`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AgentSection {
    /// Task operations (container starts, stops, restarts) the agent runs at once; the others
    /// wait for a slot without holding up the agent's loop. 1 to 256; default 16 (chosen with
    /// the deploy bench, docs/benchmarks.md).
    #[serde(alias = "maxInFlight")]
    pub max_in_flight: usize,
}

impl Default for AgentSection {
    fn default() -> Self {
        AgentSection {
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
        }
    }
}

impl AgentSection {
    /// Checks the bound (the error names the field and what is accepted).
    pub fn check(&self) -> anyhow::Result<()> {
        if !(1..=MAX_IN_FLIGHT_CEILING).contains(&self.max_in_flight) {
            anyhow::bail!(
                "agent.maxInFlight: got {}, expected 1 to {MAX_IN_FLIGHT_CEILING}",
                self.max_in_flight
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::Config;

    fn parse(yaml: &str) -> anyhow::Result<Config> {
        let config: Config = serde_saphyr::from_str(yaml)?;
        config.check()?;
        Ok(config)
    }

    #[test]
    fn max_in_flight_has_a_default_is_read_and_is_bounded() {
        assert_eq!(
            Config::default().agent.max_in_flight,
            orion_core::node::DEFAULT_MAX_IN_FLIGHT
        );
        assert_eq!(
            parse("agent: { maxInFlight: 32 }")
                .unwrap()
                .agent
                .max_in_flight,
            32
        );
        for bad in ["0", "257"] {
            let err = parse(&format!("agent: {{ maxInFlight: {bad} }}")).unwrap_err();
            assert!(
                err.to_string()
                    .contains(&format!("agent.maxInFlight: got {bad}, expected 1 to 256")),
                "{err}"
            );
        }
        assert!(parse("agent: { maxInFlights: 3 }").is_err(), "unknown key");
    }
}
