//! Validation of a parsed spec: every problem, with its path, value and what is accepted.
//!
//! [`ServiceSpec::validate`] never stops at the first problem; the rules are listed in
//! `docs/spec.md` and each has a failing test below.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

use super::{
    AffinityRule, AntiAffinityRule, MAX_RESCHEDULE_AFTER, NetworkMode, ScoringWeights, ServiceSpec,
};
use crate::error::ValidationErrors;

/// Smallest CPU request, in millicores.
pub const MIN_CPU_MILLICORES: u64 = 5;
/// Smallest memory request: 16 MiB.
pub const MIN_MEMORY_BYTES: u64 = 16 * 1024 * 1024;
/// Smallest autoscaling cooldown, in seconds.
pub const MIN_COOLDOWN_SECONDS: u64 = 30;
/// Longest autoscaling scale-down stabilization window, in seconds (one hour).
pub const MAX_STABILIZATION_SECONDS: u64 = 3600;
/// Default upper bound on `replicas` (and on `scale_policy.max_replicas`): 10,000, the task
/// slots of 100 nodes at the default `maxContainersPerNode` of 100. Every replica is a task record
/// in the replicated store and a slot the reconciler plans each pass, so an unbounded count
/// (`replicas: 4294967295`) exhausts the leader's memory instead of failing.
pub const DEFAULT_MAX_REPLICAS: u32 = 10_000;

/// Bounds on a spec that a cluster may configure (`cluster.limits` in orion.yaml).
///
/// [`ServiceSpec::validate`] applies [`SpecLimits::default`]; [`ServiceSpec::validate_with`]
/// applies the given ones. Whoever acts on a stored spec (the reconciler) must not trust that it
/// was validated against the limits in force now (a spec stored under an older, larger limit, or
/// written straight to the store): it plans [`SpecLimits::effective_replicas`] tasks, never more.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SpecLimits {
    /// Most replicas a service may ask for; at least 1.
    pub max_replicas: u32,
}

impl Default for SpecLimits {
    fn default() -> Self {
        SpecLimits {
            max_replicas: DEFAULT_MAX_REPLICAS,
        }
    }
}

impl SpecLimits {
    /// The replica count to act on for `spec`: its `replicas`, capped at `max_replicas`.
    pub fn effective_replicas(&self, spec: &ServiceSpec) -> u32 {
        spec.replicas.min(self.max_replicas)
    }
}

const DNS_LABEL: &str =
    "a DNS label: 1-63 characters of a-z, 0-9 and '-', not starting or ending with '-'";

/// True for an RFC 1123 label: 1-63 of `[a-z0-9-]`, no leading or trailing `-`.
pub fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// True for a portable environment variable name: `[A-Za-z_][A-Za-z0-9_]*`.
pub fn is_env_key(s: &str) -> bool {
    let mut bytes = s.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// True for a host name: dot-separated labels of letters, digits and '-' (any case).
fn is_host_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        })
}

/// True for a container network name: `[a-zA-Z0-9][a-zA-Z0-9_.-]*`.
fn is_network_name(s: &str) -> bool {
    let mut bytes = s.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_alphanumeric())
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// The longest `stop_after_disconnect` accepted, in seconds.
pub const MAX_STOP_AFTER_DISCONNECT_SECS: u64 = 86_400;

impl ServiceSpec {
    /// Checks every rule and reports all failures at once, each with its field path (as the
    /// canonical field names: `ports[1].host_port`), the value and what is accepted. Bounds are
    /// [`SpecLimits::default`].
    pub fn validate(&self) -> Result<(), ValidationErrors> {
        self.validate_with(&SpecLimits::default())
    }

    /// [`ServiceSpec::validate`] with the cluster's `limits`.
    pub fn validate_with(&self, limits: &SpecLimits) -> Result<(), ValidationErrors> {
        let mut errs = ValidationErrors::default();
        self.check_limits(limits, &mut errs);
        self.check_identity(&mut errs);
        self.check_text(&mut errs);
        self.check_env(&mut errs);
        self.check_secrets(&mut errs);
        self.check_ports(&mut errs);
        self.check_volumes(&mut errs);
        self.check_networking(&mut errs);
        self.check_resources(&mut errs);
        self.check_health(&mut errs);
        self.check_scaling(&mut errs);
        self.check_scheduling(&mut errs);
        self.check_dependencies(&mut errs);
        self.check_disconnect(&mut errs);
        errs.into_result()
    }

    fn check_disconnect(&self, errs: &mut ValidationErrors) {
        if !(1..=MAX_RESCHEDULE_AFTER).contains(&self.reschedule_after) {
            errs.push(
                "reschedule_after",
                self.reschedule_after,
                format!("1 to {MAX_RESCHEDULE_AFTER} restarts in place before a reschedule"),
            );
        }
        if self.stop_after_disconnect > MAX_STOP_AFTER_DISCONNECT_SECS {
            errs.push(
                "stop_after_disconnect",
                self.stop_after_disconnect,
                "0 (keep running) or at most 86400 seconds (1 day)",
            );
        }
    }

    fn check_limits(&self, limits: &SpecLimits, errs: &mut ValidationErrors) {
        let max = limits.max_replicas;
        if self.replicas > max {
            errs.push(
                "replicas",
                self.replicas,
                format!("at most {max} (the cluster's replica limit, cluster.limits.maxReplicas)"),
            );
        }
        if let Some(s) = &self.scale_policy
            && s.max_replicas > max
        {
            errs.push(
                "scale_policy.max_replicas",
                s.max_replicas,
                format!("at most {max} (the cluster's replica limit, cluster.limits.maxReplicas)"),
            );
        }
    }

    fn check_identity(&self, errs: &mut ValidationErrors) {
        if !is_dns_label(&self.name) {
            errs.push("name", format!("{:?}", self.name), DNS_LABEL);
        }
        if self.image.trim().is_empty() || self.image.chars().any(char::is_whitespace) {
            errs.push(
                "image",
                format!("{:?}", self.image),
                "a non-empty image reference without whitespace, e.g. `nginx:alpine`",
            );
        }
        if self.entrypoint.as_ref().is_some_and(Vec::is_empty) {
            errs.push(
                "entrypoint",
                "[]",
                "at least one element (leave `entrypoint` out to keep the image's)",
            );
        }
        for key in self.labels.keys() {
            if key.trim().is_empty() {
                errs.push(
                    format!("labels[{key:?}]"),
                    format!("{key:?}"),
                    "a non-empty label key",
                );
            }
        }
    }

    fn check_env(&self, errs: &mut ValidationErrors) {
        let mut seen = HashSet::new();
        for (i, entry) in self.env.iter().enumerate() {
            let path = format!("env[{i}]");
            match entry.split_once('=') {
                Some((key, _)) if is_env_key(key) => {
                    if !seen.insert(key) {
                        errs.push(path, format!("{entry:?}"), format!("`{key}` set only once"));
                    }
                }
                Some(_) => errs.push(
                    path,
                    format!("{entry:?}"),
                    "`KEY=value` with KEY of letters, digits and '_', not starting with a digit",
                ),
                None => errs.push(path, format!("{entry:?}"), "`KEY=value`"),
            }
        }
    }

    fn check_ports(&self, errs: &mut ValidationErrors) {
        let mut host = HashMap::new();
        let mut container = HashMap::new();
        let mut names = HashMap::new();
        for (i, p) in self.ports.iter().enumerate() {
            if let Some(name) = &p.name {
                if !is_dns_label(name) || name.bytes().all(|b| b.is_ascii_digit()) {
                    errs.push(
                        format!("ports[{i}].name"),
                        format!("{name:?}"),
                        "a DNS label (a-z, 0-9 and '-', at most 63, not all digits), e.g. http",
                    );
                } else if let Some(first) = names.insert((name.as_str(), p.protocol), i) {
                    errs.push(
                        format!("ports[{i}].name"),
                        format!("{name:?}"),
                        format!(
                            "a name not already given to a {} port (ports[{first}])",
                            p.protocol.as_str()
                        ),
                    );
                }
            }
            if p.container_port == 0 {
                errs.push(format!("ports[{i}].container_port"), 0, "a port 1-65535");
            } else if let Some(first) = container.insert((p.container_port, p.protocol), i) {
                errs.push(
                    format!("ports[{i}].container_port"),
                    format!("{}/{}", p.container_port, p.protocol.as_str()),
                    format!("a container port and protocol not already given (ports[{first}])"),
                );
            }
            if p.host_port != 0
                && let Some(first) = host.insert((p.host_port, p.protocol), i)
            {
                errs.push(
                    format!("ports[{i}].host_port"),
                    format!("{}/{}", p.host_port, p.protocol.as_str()),
                    format!(
                        "a host port and protocol not already published (ports[{first}]), or 0 for a dynamic port"
                    ),
                );
            }
        }
    }

    fn check_volumes(&self, errs: &mut ValidationErrors) {
        let mut targets = HashSet::new();
        for (i, v) in self.volumes.iter().enumerate() {
            if v.source.is_empty() || v.source.contains(':') {
                errs.push(
                    format!("volumes[{i}].source"),
                    format!("{:?}", v.source),
                    "a host path (`/data`) or a volume name, without ':'",
                );
            } else if !v.is_bind() && !is_volume_name(&v.source) {
                errs.push(
                    format!("volumes[{i}].source"),
                    format!("{:?}", v.source),
                    "an absolute host path (`/srv/data`; relative paths depend on where a node \
                     runs, so they are refused) or a volume name of letters, digits, '_', '.' \
                     and '-', starting with a letter or digit",
                );
            } else if v.is_bind() && v.source.split('/').any(|part| part == "..") {
                errs.push(
                    format!("volumes[{i}].source"),
                    format!("{:?}", v.source),
                    "an absolute host path without `..` components",
                );
            }
            if !v.target.starts_with('/') || v.target.contains(':') {
                errs.push(
                    format!("volumes[{i}].target"),
                    format!("{:?}", v.target),
                    "an absolute path inside the container, without ':'",
                );
            } else if !targets.insert(v.target.as_str()) {
                errs.push(
                    format!("volumes[{i}].target"),
                    format!("{:?}", v.target),
                    "a target not mounted by another volume",
                );
            }
        }
    }

    fn check_networking(&self, errs: &mut ValidationErrors) {
        match self.network_mode {
            NetworkMode::Bridge => {}
            NetworkMode::Host | NetworkMode::None => {
                let mode = if self.network_mode == NetworkMode::Host {
                    "host"
                } else {
                    "none"
                };
                if !self.ports.is_empty() {
                    errs.push(
                        "ports",
                        format!("{} port(s) with network_mode {mode}", self.ports.len()),
                        format!(
                            "no ports: {mode} networking publishes no ports (use network_mode bridge to publish)"
                        ),
                    );
                }
                if let Some(net) = &self.network {
                    errs.push(
                        "network",
                        format!("{net:?} with network_mode {mode}"),
                        "no network: only bridge mode joins a named network",
                    );
                }
            }
        }
        if let Some(net) = &self.network
            && !is_network_name(net)
        {
            errs.push(
                "network",
                format!("{net:?}"),
                "a network name of letters, digits, '_', '.', '-', starting with a letter or digit",
            );
        }
        for (i, server) in self.dns.iter().enumerate() {
            if server.parse::<IpAddr>().is_err() {
                errs.push(
                    format!("dns[{i}]"),
                    format!("{server:?}"),
                    "an IP address, e.g. `1.1.1.1` or `::1`",
                );
            }
        }
        for (i, entry) in self.extra_hosts.iter().enumerate() {
            let ok = entry.split_once(':').is_some_and(|(name, ip)| {
                is_host_name(name) && (ip == "host-gateway" || ip.parse::<IpAddr>().is_ok())
            });
            if !ok {
                errs.push(
                    format!("extra_hosts[{i}]"),
                    format!("{entry:?}"),
                    "`hostname:ip` (or `hostname:host-gateway`), e.g. `db.local:10.0.0.5`",
                );
            }
        }
    }

    fn check_resources(&self, errs: &mut ValidationErrors) {
        if self.resources.cpu_millicores < MIN_CPU_MILLICORES {
            errs.push(
                "resources.cpu_millicores",
                self.resources.cpu_millicores,
                format!("at least {MIN_CPU_MILLICORES} millicores (1000 = one core)"),
            );
        }
        if let super::CpuLimit::Millicores(cap) = self.resources.cpu_limit
            && cap < self.resources.cpu_millicores
        {
            errs.push(
                "resources.cpu_limit",
                cap,
                format!(
                    "at least resources.cpu_millicores ({} millicores): the cap cannot be below \
                     what is reserved; `reserved` caps at the reservation, `none` sets no cap",
                    self.resources.cpu_millicores
                ),
            );
        }
        if self.resources.memory_bytes < MIN_MEMORY_BYTES {
            errs.push(
                "resources.memory_bytes",
                self.resources.memory_bytes,
                format!("at least {MIN_MEMORY_BYTES} bytes (16Mi)"),
            );
        }
    }

    fn check_dependencies(&self, errs: &mut ValidationErrors) {
        if self.depends_on.len() > super::MAX_DEPENDENCIES {
            let most = super::MAX_DEPENDENCIES;
            errs.push(
                "depends_on",
                self.depends_on.len(),
                format!("at most {most}"),
            );
        }
        for (i, d) in self.depends_on.iter().enumerate() {
            let path = format!("depends_on[{i}]");
            if !is_dns_label(d) {
                errs.push(
                    path,
                    format!("{d:?}"),
                    format!("a service name, {DNS_LABEL}"),
                );
            } else if *d == self.name {
                errs.push(path, format!("{d:?}"), "another service than this one");
            } else if self.depends_on[..i].contains(d) {
                errs.push(path, format!("{d:?}"), "each service once");
            }
        }
    }

    fn check_scheduling(&self, errs: &mut ValidationErrors) {
        let s = &self.scheduling;
        for (field, n) in [
            ("affinity", s.affinity.len()),
            ("anti_affinity", s.anti_affinity.len()),
        ] {
            if n > super::MAX_RULES {
                let most = super::MAX_RULES;
                errs.push(
                    format!("scheduling.{field}"),
                    n,
                    format!("at most {most} rules"),
                );
            }
        }
        if let Some(w) = &s.weights {
            check_weights(w, errs);
        }
        for key in s.node_selector.keys() {
            if key.trim().is_empty() {
                errs.push(
                    "scheduling.node_selector",
                    format!("{key:?}"),
                    "non-empty label keys",
                );
            }
        }
        for (field, zones) in [("zones", &s.zones), ("avoid_zones", &s.avoid_zones)] {
            for (i, z) in zones.iter().enumerate() {
                if z.trim().is_empty() {
                    errs.push(
                        format!("scheduling.{field}[{i}]"),
                        format!("{z:?}"),
                        "a non-empty zone name",
                    );
                }
            }
        }
        if let Some(by) = &s.spread_by
            && by.trim().is_empty()
        {
            errs.push(
                "scheduling.spread_by",
                format!("{by:?}"),
                "a node label key, e.g. `zone`",
            );
        }
        if s.max_per_node == Some(0) {
            errs.push(
                "scheduling.max_per_node",
                0,
                "at least 1 (or leave it out for no limit)",
            );
        }
        for (i, rule) in s.affinity.iter().enumerate() {
            check_affinity(&format!("scheduling.affinity[{i}]"), rule, errs);
        }
        for (i, rule) in s.anti_affinity.iter().enumerate() {
            let path = format!("scheduling.anti_affinity[{i}]");
            match rule {
                AntiAffinityRule::NetworkZone { avoid } if avoid.trim().is_empty() => {
                    errs.push(
                        format!("{path}.avoid"),
                        format!("{avoid:?}"),
                        "a zone name or prefix",
                    );
                }
                AntiAffinityRule::Service { service } if !is_dns_label(service) => {
                    errs.push(format!("{path}.service"), format!("{service:?}"), DNS_LABEL);
                }
                _ => {}
            }
        }
    }
}

fn check_weights(w: &ScoringWeights, errs: &mut ValidationErrors) {
    let mut all_zero = true;
    for (name, v) in [("cpu", w.cpu), ("memory", w.memory), ("network", w.network)] {
        if !v.is_finite() || v < 0.0 {
            errs.push(
                format!("scheduling.weights.{name}"),
                v,
                "a finite number >= 0",
            );
        } else if v > 0.0 {
            all_zero = false;
        }
    }
    if all_zero {
        errs.push(
            "scheduling.weights",
            format!("cpu {}, memory {}, network {}", w.cpu, w.memory, w.network),
            "at least one weight above 0",
        );
    }
}

fn check_target(path: &str, target: Option<&String>, errs: &mut ValidationErrors) {
    if let Some(t) = target
        && !is_dns_label(t)
    {
        errs.push(
            format!("{path}.target"),
            format!("{t:?}"),
            format!("a service name, {DNS_LABEL}"),
        );
    }
}

fn check_affinity(path: &str, rule: &AffinityRule, errs: &mut ValidationErrors) {
    let positive = |errs: &mut ValidationErrors, field: &str, v: f64, unit: &str| {
        if !(v.is_finite() && v > 0.0) {
            errs.push(
                format!("{path}.{field}"),
                v,
                format!("a finite number above 0 ({unit})"),
            );
        }
    };
    match rule {
        AffinityRule::Latency {
            target,
            max_latency_ms,
            ..
        } => {
            check_target(path, Some(target), errs);
            positive(
                errs,
                "max_latency_ms",
                *max_latency_ms,
                "milliseconds, e.g. `5ms`",
            );
        }
        AffinityRule::Bandwidth {
            target,
            min_bandwidth_mbps,
            ..
        } => {
            check_target(path, target.as_ref(), errs);
            positive(
                errs,
                "min_bandwidth_mbps",
                *min_bandwidth_mbps,
                "Mbit/s, e.g. `100Mbps`",
            );
        }
        AffinityRule::Loss {
            target, max_loss, ..
        } => {
            check_target(path, target.as_ref(), errs);
            if !(0.0..=1.0).contains(max_loss) {
                errs.push(
                    format!("{path}.max_loss"),
                    max_loss,
                    "a fraction from 0.0 to 1.0",
                );
            }
        }
        AffinityRule::Zone { zones, .. } => {
            if zones.is_empty() || zones.iter().any(|z| z.trim().is_empty()) {
                errs.push(
                    format!("{path}.zones"),
                    format!("{zones:?}"),
                    "a list of non-empty zone names",
                );
            }
        }
    }
}

/// Docker's rule for volume names: `[a-zA-Z0-9][a-zA-Z0-9_.-]*`.
fn is_volume_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}
