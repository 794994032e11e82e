//! A Compose service's `deploy` section: replicas, resources, update_config, restart_policy,
//! placement constraints on node labels, and labels.

use serde_json::{Map, Value};

use super::values::{compose_bytes, compose_millicores, go_duration_secs};
use super::{Importer, describe};
use crate::model::spec::{CpuLimit, FailureAction, RestartPolicy, ServiceSpec};

/// What one `limits` or `reservations` mapping asks for.
#[derive(Debug, Default)]
struct Amounts {
    /// Millicores.
    cpus: Option<u64>,
    /// Bytes.
    memory: Option<u64>,
}

impl Importer<'_> {
    /// Applies `deploy` to `spec`; returns which spec fields came from which paths.
    pub(super) fn deploy(
        &mut self,
        path: &str,
        value: &Value,
        spec: &mut ServiceSpec,
    ) -> Vec<(&'static str, String)> {
        let Value::Object(map) = value else {
            self.refuse(path, describe(value), "a mapping");
            return Vec::new();
        };
        let mut origins = Vec::new();
        for (key, v) in map {
            let at = format!("{path}.{key}");
            let field = match key.as_str() {
                "replicas" => {
                    match v.as_u64().and_then(|n| u32::try_from(n).ok()) {
                        Some(n) => spec.replicas = n,
                        None => self.refuse(&at, describe(v), "a whole number of replicas"),
                    }
                    "replicas"
                }
                "mode" => {
                    if v.as_str() != Some("replicated") {
                        self.refuse(
                            &at,
                            describe(v),
                            "replicated (global and job modes are not imported)",
                        );
                    }
                    continue;
                }
                "resources" => {
                    self.resources(&at, v, spec);
                    "resources"
                }
                "update_config" => {
                    self.update_config(&at, v, spec);
                    "update_strategy"
                }
                "restart_policy" => {
                    self.restart_policy(&at, v, spec);
                    "restart_policy"
                }
                "placement" => {
                    self.placement(&at, v, spec);
                    "scheduling"
                }
                "labels" => {
                    self.labels(&at, v, &mut spec.labels);
                    "labels"
                }
                k if k.starts_with("x-") => continue,
                _ => {
                    self.refuse(&at, format!("`{key}`"), "replicas, mode, resources, update_config, restart_policy, placement or labels (rollback_config and endpoint_mode are not imported)");
                    continue;
                }
            };
            origins.push((field, at));
        }
        origins
    }

    /// `reservations` and `limits`. CPU: the reservation is what the scheduler reserves and the
    /// limit the cap (`cpu_limit`); a reservation alone sets no cap, a limit alone is both.
    /// Memory: Orion reserves what it limits, so the limit wins when both are given (a note
    /// says so).
    fn resources(&mut self, path: &str, value: &Value, spec: &mut ServiceSpec) {
        let Some(map) = self.mapping(path, value) else {
            return;
        };
        let mut reserved = Amounts::default();
        let mut limited = Amounts::default();
        for (key, v) in map {
            let here = format!("{path}.{key}");
            match key.as_str() {
                "limits" => limited = self.amounts(&here, v),
                "reservations" => reserved = self.amounts(&here, v),
                _ => self.refuse(&here, format!("`{key}`"), "limits or reservations"),
            }
        }
        match (reserved.cpus, limited.cpus) {
            (Some(r), Some(l)) if l < r => self.refuse(
                &format!("{path}.limits.cpus"),
                format!("{} cpus", l as f64 / 1000.0),
                format!(
                    "at least reservations.cpus ({}); a limit cannot be below what is reserved",
                    r as f64 / 1000.0
                ),
            ),
            (Some(r), Some(l)) => {
                spec.resources.cpu_millicores = r;
                spec.resources.cpu_limit = CpuLimit::Millicores(l);
            }
            (Some(r), None) => {
                spec.resources.cpu_millicores = r;
                spec.resources.cpu_limit = CpuLimit::None;
            }
            (None, Some(l)) => spec.resources.cpu_millicores = l,
            (None, None) => {}
        }
        if reserved.memory.is_some() && limited.memory.is_some() {
            self.notes.push(format!(
                "{path}: Orion reserves the memory it limits, so limits.memory was used for both"
            ));
        }
        if let Some(bytes) = limited.memory.or(reserved.memory) {
            spec.resources.memory_bytes = bytes;
        }
    }

    /// The `cpus` and `memory` of a `limits` or `reservations` mapping; refuses anything else.
    fn amounts(&mut self, path: &str, value: &Value) -> Amounts {
        let mut amounts = Amounts::default();
        let Some(map) = self.mapping(path, value) else {
            return amounts;
        };
        for (key, v) in map {
            let here = format!("{path}.{key}");
            match key.as_str() {
                "cpus" => match compose_millicores(v) {
                    Ok(m) => amounts.cpus = Some(m),
                    Err(e) => self.refuse(&here, describe(v), e),
                },
                "memory" => match compose_bytes(v) {
                    Ok(b) => amounts.memory = Some(b),
                    Err(e) => self.refuse(&here, describe(v), e),
                },
                _ => self.refuse(
                    &here,
                    format!("`{key}`"),
                    "cpus or memory (pids, devices and generic resources are not imported)",
                ),
            }
        }
        amounts
    }

    fn update_config(&mut self, path: &str, value: &Value, spec: &mut ServiceSpec) {
        let Some(map) = self.mapping(path, value) else {
            return;
        };
        let rollout = &mut spec.update_strategy;
        for (key, v) in map {
            let at = format!("{path}.{key}");
            match key.as_str() {
                // Swarm's 0 means all at once.
                "parallelism" => match v.as_u64().and_then(|n| u32::try_from(n).ok()) {
                    Some(0) => rollout.parallelism = spec.replicas.max(1),
                    Some(n) => rollout.parallelism = n,
                    None => self.refuse(&at, describe(v), "a whole number"),
                },
                "delay" => match v.as_str().map(go_duration_secs) {
                    Some(Ok(s)) => rollout.delay_seconds = s,
                    _ => self.refuse(&at, describe(v), "a duration such as `10s`"),
                },
                "monitor" => match v.as_str().map(go_duration_secs) {
                    Some(Ok(s)) => rollout.health_wait_seconds = s,
                    _ => self.refuse(&at, describe(v), "a duration such as `30s`"),
                },
                "failure_action" => match v.as_str() {
                    Some("rollback") => rollout.failure_action = FailureAction::Rollback,
                    Some("pause") => rollout.failure_action = FailureAction::Pause,
                    Some("continue") => rollout.failure_action = FailureAction::Continue,
                    _ => self.refuse(&at, describe(v), "rollback, pause or continue"),
                },
                // Swarm's orders are Orion's `max_surge`: none, or the whole batch.
                "order" => match v.as_str() {
                    Some("stop-first") => rollout.max_surge = Some(0),
                    Some("start-first") => rollout.max_surge = None,
                    _ => self.refuse(&at, describe(v), "stop-first or start-first"),
                },
                "max_failure_ratio" if v.as_f64() == Some(0.0) => {}
                _ => self.refuse(&at, format!("`{key}`"), "parallelism, delay, monitor, failure_action or order (max_failure_ratio is not imported)"),
            }
        }
    }

    fn restart_policy(&mut self, path: &str, value: &Value, spec: &mut ServiceSpec) {
        let Some(map) = self.mapping(path, value) else {
            return;
        };
        for (key, v) in map {
            let at = format!("{path}.{key}");
            match (key.as_str(), v.as_str()) {
                ("condition", Some("none")) => spec.restart_policy = RestartPolicy::No,
                ("condition", Some("on-failure")) => spec.restart_policy = RestartPolicy::OnFailure,
                ("condition", Some("any")) => spec.restart_policy = RestartPolicy::Always,
                ("condition", _) => self.refuse(&at, describe(v), "none, on-failure or any"),
                _ => self.refuse(&at, format!("`{key}`"), "condition (delay, max_attempts and window are not imported: Orion restarts in place `reschedule_after` times, then reschedules)"),
            }
        }
    }

    /// `constraints` of the form `node.labels.KEY == VALUE`, as the node selector.
    fn placement(&mut self, path: &str, value: &Value, spec: &mut ServiceSpec) {
        let Some(map) = self.mapping(path, value) else {
            return;
        };
        for (key, v) in map {
            let at = format!("{path}.{key}");
            if key != "constraints" {
                self.refuse(
                    &at,
                    format!("`{key}`"),
                    "constraints (preferences and max_replicas_per_node are not imported)",
                );
                continue;
            }
            for (i, c) in self.strings(&at, v, "a constraint").into_iter().enumerate() {
                let parsed = c.split_once("==").and_then(|(lhs, rhs)| {
                    let key = lhs.trim().strip_prefix("node.labels.")?;
                    Some((key.to_owned(), rhs.trim().to_owned()))
                });
                match parsed {
                    Some((k, v)) if !k.is_empty() && !v.is_empty() => {
                        spec.scheduling.node_selector.insert(k, v);
                    }
                    _ => self.refuse(
                        &format!("{at}[{i}]"),
                        format!("{c:?}"),
                        "`node.labels.KEY == VALUE` (other constraints and `!=` are not imported)",
                    ),
                }
            }
        }
    }

    fn mapping<'v>(&mut self, path: &str, value: &'v Value) -> Option<&'v Map<String, Value>> {
        match value {
            Value::Object(map) => Some(map),
            Value::Null => None,
            other => {
                self.refuse(path, describe(other), "a mapping");
                None
            }
        }
    }
}
