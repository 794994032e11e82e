//! The bodies of `POST /v1/chaos/*` and their checks: every value is bounded, and a bad one is
//! refused with what was wrong and what is accepted.

use std::collections::BTreeSet;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{
    ChaosFault, ChaosKind, MAX_DURATION, MAX_LATENCY, MIN_DURATION, check_nodes, monkey, new_id,
};

/// Parses a duration field (`100ms`, `30s`, `2m`).
pub(crate) fn parse_duration(field: &str, text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text.trim()).map_err(|e| {
        format!("{field}: got {text:?} ({e}), expected a duration such as 500ms, 30s or 2m")
    })
}

/// A fault's `duration`, within [`MIN_DURATION`]..=[`MAX_DURATION`].
fn fault_duration(text: &str) -> Result<Duration, String> {
    let d = parse_duration("duration", text)?;
    if !(MIN_DURATION..=MAX_DURATION).contains(&d) {
        return Err(format!(
            "duration: got {text}, expected from 1s to 1h (faults always end by themselves)"
        ));
    }
    Ok(d)
}

/// A fault of `kind` from now for `duration`.
fn fault(kind: ChaosKind, now: u64, duration: Duration) -> ChaosFault {
    ChaosFault {
        id: new_id(),
        kind,
        starts_at: now,
        expires_at: now + duration.as_millis() as u64,
        source: "api".into(),
    }
}

/// `nodes`: the string `"all"`, a comma-separated string, or a list of node ids.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum NodeSelection {
    Text(String),
    List(Vec<String>),
}

/// `POST /v1/chaos/latency`: `{"increase": "100ms", "nodes": ["n1"] | "all", "duration": "2m"}`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LatencyRequest {
    pub increase: String,
    pub nodes: NodeSelection,
    pub duration: String,
}

impl LatencyRequest {
    /// The fault, with its nodes checked against `known`.
    pub fn into_fault(self, now: u64, known: &BTreeSet<String>) -> Result<ChaosFault, String> {
        let increase = parse_duration("increase", &self.increase)?;
        if increase.is_zero() || increase > MAX_LATENCY {
            return Err(format!(
                "increase: got {}, expected more than 0 and at most 10s",
                self.increase
            ));
        }
        let names: Vec<String> = match &self.nodes {
            NodeSelection::Text(t) if t.trim() == "all" => Vec::new(),
            NodeSelection::Text(t) => t.split(',').map(|s| s.trim().to_owned()).collect(),
            NodeSelection::List(l) => l.iter().map(|s| s.trim().to_owned()).collect(),
        };
        if names.iter().any(String::is_empty)
            || matches!(&self.nodes, NodeSelection::List(l) if l.is_empty())
        {
            return Err(
                "nodes: expected \"all\" or node ids, e.g. [\"n1\", \"n2\"] or \"n1,n2\"".into(),
            );
        }
        let mut nodes = names;
        nodes.sort();
        nodes.dedup();
        let kind = ChaosKind::Latency {
            increase_ms: increase.as_millis() as u64,
            nodes,
        };
        check_nodes(&kind, known).map_err(|e| format!("nodes: {e}"))?;
        Ok(fault(kind, now, fault_duration(&self.duration)?))
    }
}

/// `POST /v1/chaos/network-partition`: `{"partition": "n1,n2:n3", "duration": "30s"}`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PartitionRequest {
    pub partition: String,
    pub duration: String,
}

impl PartitionRequest {
    /// The fault, with its groups and nodes checked.
    pub fn into_fault(self, now: u64, known: &BTreeSet<String>) -> Result<ChaosFault, String> {
        let expected = "expected groups of node ids separated by ':', nodes by ',', e.g. n1,n2:n3";
        let groups: Vec<Vec<String>> = self
            .partition
            .split(':')
            .map(|g| g.split(',').map(|n| n.trim().to_owned()).collect())
            .collect();
        if groups.len() < 2 || groups.iter().flatten().any(String::is_empty) {
            return Err(format!("partition: got {:?}, {expected}", self.partition));
        }
        let mut seen = BTreeSet::new();
        for n in groups.iter().flatten() {
            if !seen.insert(n) {
                return Err(format!(
                    "partition: node {n} is in two groups; each node may be in one group"
                ));
            }
        }
        let kind = ChaosKind::NetworkPartition { groups };
        check_nodes(&kind, known).map_err(|e| format!("partition: {e}"))?;
        Ok(fault(kind, now, fault_duration(&self.duration)?))
    }
}

/// `POST /v1/chaos/node-failure`: `{"target": "n2", "duration": "60s"}`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NodeFailureRequest {
    pub target: String,
    pub duration: String,
}

impl NodeFailureRequest {
    /// The fault, with its target checked.
    pub fn into_fault(self, now: u64, known: &BTreeSet<String>) -> Result<ChaosFault, String> {
        let kind = ChaosKind::NodeFailure {
            target: self.target.trim().to_owned(),
        };
        check_nodes(&kind, known).map_err(|e| format!("target: {e}"))?;
        Ok(fault(kind, now, fault_duration(&self.duration)?))
    }
}

/// `POST /v1/chaos/monkey`: `{"interval": "5m", "severity": "medium", "duration": "50m"}`;
/// `duration` (the whole run) defaults to ten intervals, at most 1h.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MonkeyRequest {
    pub interval: String,
    pub severity: monkey::Severity,
    #[serde(default)]
    pub duration: Option<String>,
}

impl MonkeyRequest {
    /// The monkey's whole schedule: one fault per interval, each lasting half an interval.
    pub fn into_faults(
        self,
        now: u64,
        known: &BTreeSet<String>,
        seed: u64,
    ) -> Result<Vec<ChaosFault>, String> {
        let interval = parse_duration("interval", &self.interval)?;
        if !(monkey::MIN_INTERVAL..=MAX_DURATION).contains(&interval) {
            return Err(format!(
                "interval: got {}, expected from 2s to 1h",
                self.interval
            ));
        }
        let total = match &self.duration {
            Some(d) => parse_duration("duration", d)?,
            None => (interval * 10).min(MAX_DURATION),
        };
        if total < interval || total > MAX_DURATION {
            return Err(format!(
                "duration: got {}, expected from one interval ({}) to 1h",
                humantime::format_duration(total),
                self.interval
            ));
        }
        let events = (total.as_millis() / interval.as_millis()) as usize;
        if events > super::MAX_MONKEY_EVENTS {
            return Err(format!(
                "duration / interval: {events} faults, expected at most {} (raise the interval \
                 or shorten the duration)",
                super::MAX_MONKEY_EVENTS
            ));
        }
        let nodes: Vec<String> = known.iter().cloned().collect();
        Ok(monkey::schedule(
            &nodes,
            self.severity,
            interval,
            events,
            now,
            seed,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known() -> BTreeSet<String> {
        ["n1", "n2", "n3"].iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn latency_takes_all_a_list_or_a_comma_string_and_is_bounded() {
        let req = |nodes: NodeSelection, inc: &str, dur: &str| LatencyRequest {
            increase: inc.into(),
            nodes,
            duration: dur.into(),
        };
        let f = req(NodeSelection::Text("all".into()), "100ms", "2m")
            .into_fault(1_000, &known())
            .unwrap();
        assert_eq!(
            f.kind,
            ChaosKind::Latency {
                increase_ms: 100,
                nodes: vec![]
            }
        );
        assert_eq!(f.expires_at, 1_000 + 120_000);
        let f = req(NodeSelection::Text("n2,n1".into()), "1s", "1s")
            .into_fault(0, &known())
            .unwrap();
        assert_eq!(f.kind.nodes(), vec!["n1", "n2"]);
        let err = req(NodeSelection::List(vec!["n9".into()]), "1s", "1s")
            .into_fault(0, &known())
            .unwrap_err();
        assert!(err.contains("n9") && err.contains("n1, n2, n3"), "{err}");
        for (inc, dur) in [
            ("11s", "1m"),
            ("0ms", "1m"),
            ("1s", "2h"),
            ("1s", "500ms"),
            ("x", "1m"),
        ] {
            assert!(
                req(NodeSelection::Text("all".into()), inc, dur)
                    .into_fault(0, &known())
                    .is_err(),
                "{inc} {dur}"
            );
        }
    }

    #[test]
    fn partitions_need_two_disjoint_groups_of_known_nodes() {
        let req = |p: &str| PartitionRequest {
            partition: p.into(),
            duration: "30s".into(),
        };
        let f = req("n1,n2:n3").into_fault(0, &known()).unwrap();
        assert_eq!(
            f.kind,
            ChaosKind::NetworkPartition {
                groups: vec![vec!["n1".into(), "n2".into()], vec!["n3".into()]]
            }
        );
        for bad in ["n1,n2", "n1:", "n1:n1", "n1,,n2:n3", "n1:n7"] {
            assert!(req(bad).into_fault(0, &known()).is_err(), "{bad}");
        }
    }

    #[test]
    fn monkey_is_bounded_in_count_and_time() {
        let req = |i: &str, d: Option<&str>| MonkeyRequest {
            interval: i.into(),
            severity: monkey::Severity::Medium,
            duration: d.map(Into::into),
        };
        let faults = req("5m", None).into_faults(0, &known(), 7).unwrap();
        assert_eq!(faults.len(), 10);
        assert!(faults.iter().all(|f| f.expires_at <= 3_000_000));
        assert!(req("1s", None).into_faults(0, &known(), 7).is_err());
        assert!(req("2s", Some("1h")).into_faults(0, &known(), 7).is_err());
        assert!(req("10s", Some("5s")).into_faults(0, &known(), 7).is_err());
    }
}
