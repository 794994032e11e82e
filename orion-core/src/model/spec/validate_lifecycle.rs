//! Validation of the lifecycle sections of a spec: `health_check` and `scale_policy`.

use super::validate::{MAX_STABILIZATION_SECONDS, MIN_COOLDOWN_SECONDS};
use super::{
    HealthCheckType, MAX_HEALTH_RETRIES, MAX_HEALTH_SECONDS, NetworkMode, Protocol, ServiceSpec,
};
use crate::error::ValidationErrors;

impl ServiceSpec {
    pub(super) fn check_health(&self, errs: &mut ValidationErrors) {
        let Some(h) = &self.health_check else { return };
        let kind = match h.kind {
            HealthCheckType::Http => "an http",
            HealthCheckType::Tcp => "a tcp",
            HealthCheckType::Command => "a command",
        };
        if h.kind == HealthCheckType::Http
            && !h.http_path.as_deref().is_some_and(|p| p.starts_with('/'))
        {
            errs.push(
                "health_check.http_path",
                h.http_path
                    .as_deref()
                    .map_or("nothing".into(), |p| format!("{p:?}")),
                "a path starting with '/' for an http check, e.g. `/health`",
            );
        }
        if matches!(h.kind, HealthCheckType::Http | HealthCheckType::Tcp) {
            match h.port {
                None => errs.push(
                    "health_check.port",
                    "nothing",
                    format!("a container port 1-65535 for {kind} check"),
                ),
                Some(0) => errs.push("health_check.port", 0, "a container port 1-65535"),
                Some(_) => {}
            }
        }
        if h.kind != HealthCheckType::Http && h.http_path.is_some() {
            errs.push(
                "health_check.http_path",
                format!("{:?}", h.http_path.as_deref().unwrap_or_default()),
                format!("no http_path for {kind} check (it is only used by type http)"),
            );
        }
        if h.kind != HealthCheckType::Command && !h.command.is_empty() {
            errs.push(
                "health_check.command",
                format!("{:?}", h.command),
                format!("no command for {kind} check (it is only used by type command)"),
            );
        }
        if h.kind == HealthCheckType::Command && h.command.is_empty() {
            errs.push(
                "health_check.command",
                "nothing",
                "a command for a command check, e.g. [\"pg_isready\", \"-U\", \"postgres\"]",
            );
        }
        if !(1..=MAX_HEALTH_SECONDS).contains(&h.interval) {
            errs.push(
                "health_check.interval",
                h.interval,
                format!("at least 1 second and at most {MAX_HEALTH_SECONDS} seconds"),
            );
        }
        if h.timeout > h.interval.max(1) {
            errs.push(
                "health_check.timeout",
                h.timeout,
                format!(
                    "at most the interval ({} s), or 0 for the interval",
                    h.interval
                ),
            );
        }
        if h.retries > MAX_HEALTH_RETRIES {
            errs.push(
                "health_check.retries",
                h.retries,
                format!("0 to {MAX_HEALTH_RETRIES} failed checks tolerated in a row"),
            );
        }
        if h.start_period > MAX_HEALTH_SECONDS {
            errs.push(
                "health_check.start_period",
                h.start_period,
                format!("0 to {MAX_HEALTH_SECONDS} seconds"),
            );
        }
        match (h.kind, h.expected_status) {
            (HealthCheckType::Http, Some(code)) if !(100..=599).contains(&code) => errs.push(
                "health_check.expected_status",
                code,
                "an HTTP status code 100-599",
            ),
            (HealthCheckType::Http, _) | (_, None) => {}
            (_, Some(code)) => errs.push(
                "health_check.expected_status",
                code,
                format!("no expected_status for {kind} check (it is only used by type http)"),
            ),
        }
        // The agent reaches a tcp/http check through the port's host binding.
        if let Some(port) = h.port.filter(|p| *p != 0)
            && matches!(h.kind, HealthCheckType::Http | HealthCheckType::Tcp)
            && self.network_mode != NetworkMode::Host
            && !self
                .ports
                .iter()
                .any(|p| p.container_port == port && p.protocol == Protocol::Tcp)
        {
            errs.push(
                "health_check.port",
                port,
                format!(
                    "a container port published by `ports` over tcp (e.g. `ports: [\"0:{port}\"]`), \
                     so the agent can reach it, or network_mode host"
                ),
            );
        }
    }

    pub(super) fn check_scaling(&self, errs: &mut ValidationErrors) {
        let rollout = &self.update_strategy;
        if rollout.parallelism < 1 {
            let why = if rollout.max_surge == Some(0) {
                "at least 1 task per batch (max_surge and parallelism cannot both be 0)"
            } else {
                "at least 1 task per batch"
            };
            errs.push("update_strategy.parallelism", rollout.parallelism, why);
        }
        if let Some(surge) = rollout.max_surge
            && surge > rollout.parallelism
            && rollout.parallelism >= 1
        {
            errs.push(
                "update_strategy.max_surge",
                surge,
                format!(
                    "0 to update_strategy.parallelism ({}): the replicas of a batch whose new \
                     replica starts before the old one stops (0 stops each old one first)",
                    rollout.parallelism
                ),
            );
        }
        for (path, secs) in [
            ("update_strategy.delay_seconds", rollout.delay_seconds),
            (
                "update_strategy.health_wait_seconds",
                rollout.health_wait_seconds,
            ),
        ] {
            if secs > super::MAX_UPDATE_SECONDS {
                errs.push(
                    path,
                    secs,
                    format!("at most {} seconds", super::MAX_UPDATE_SECONDS),
                );
            }
        }
        if rollout.canary > self.replicas {
            errs.push(
                "update_strategy.canary",
                rollout.canary,
                format!(
                    "at most replicas ({}): the replicas started first by an update, 0 for none",
                    self.replicas
                ),
            );
        }
        let Some(s) = &self.scale_policy else { return };
        if s.min_replicas < 1 {
            errs.push("scale_policy.min_replicas", s.min_replicas, "at least 1");
        }
        if s.max_replicas < 1 {
            errs.push("scale_policy.max_replicas", s.max_replicas, "at least 1");
        }
        if s.min_replicas > s.max_replicas {
            errs.push(
                "scale_policy.min_replicas",
                s.min_replicas,
                format!("at most max_replicas ({})", s.max_replicas),
            );
        } else if self.replicas < s.min_replicas || self.replicas > s.max_replicas {
            errs.push(
                "replicas",
                self.replicas,
                format!(
                    "between scale_policy.min_replicas and max_replicas ({}-{}), the \
                     autoscaler's bounds; to go outside them, change scale_policy too",
                    s.min_replicas, s.max_replicas
                ),
            );
        }
        let percent = |errs: &mut ValidationErrors, path: &str, v: Option<f64>, min: f64| {
            if let Some(v) = v
                && !(min..=100.0).contains(&v)
            {
                errs.push(path, v, format!("a percentage from {min} to 100"));
            }
        };
        percent(errs, "scale_policy.target_cpu", s.target_cpu, 5.0);
        percent(errs, "scale_policy.target_memory", s.target_memory, 10.0);
        if s.cooldown_seconds < MIN_COOLDOWN_SECONDS {
            errs.push(
                "scale_policy.cooldown_seconds",
                s.cooldown_seconds,
                format!("at least {MIN_COOLDOWN_SECONDS} seconds"),
            );
        }
        if s.stabilization_seconds > MAX_STABILIZATION_SECONDS {
            errs.push(
                "scale_policy.stabilization_seconds",
                s.stabilization_seconds,
                format!("0 to {MAX_STABILIZATION_SECONDS} seconds"),
            );
        }
    }
}
