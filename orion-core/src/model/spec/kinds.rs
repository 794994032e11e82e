//! Reading the objects whose `type` selects their fields: affinity and anti-affinity rules, and
//! health checks.
//!
//! The rules are internally tagged enums (`type: latency`). Serde's derived reader for those
//! buffers the object and loses the field path, so each rule is read as a flat "raw" struct
//! first (every field of every type, with paths such as `scheduling.affinity[0].max_latency_ms`)
//! and then checked: a missing field or a field of another type is an error naming the type's
//! fields.

use serde::Deserialize;

use super::forms::{self, MapOnly};
use super::{AffinityRule, AntiAffinityRule, HealthCheck, HealthCheckType};

/// The kinds of [`AffinityRule`].
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(super) enum AffinityKind {
    Latency,
    Bandwidth,
    Loss,
    Zone,
}

/// Every field any [`AffinityRule`] has, as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAffinityRule {
    #[serde(rename = "type")]
    kind: AffinityKind,
    #[serde(default)]
    target: Option<String>,
    #[serde(default, alias = "maxLatency", deserialize_with = "opt_millis")]
    max_latency_ms: Option<f64>,
    #[serde(default, alias = "minBandwidth", deserialize_with = "opt_mbps")]
    min_bandwidth_mbps: Option<f64>,
    #[serde(default, alias = "maxLoss")]
    max_loss: Option<f64>,
    #[serde(default)]
    zones: Option<Vec<String>>,
    #[serde(default)]
    required: Option<bool>,
}

fn opt_millis<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    forms::millis::deserialize(d).map(Some)
}

fn opt_mbps<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    forms::mbps::deserialize(d).map(Some)
}

/// Fails when a field that `kind` does not have was given.
fn reject_foreign(kind: &str, fields: &str, given: &[(&str, bool)]) -> Result<(), String> {
    match given.iter().find(|(_, present)| *present) {
        Some((name, _)) => Err(format!(
            "`{name}` does not apply to a `{kind}` rule; its fields are {fields}"
        )),
        None => Ok(()),
    }
}

/// Unwraps a required field or says which rule needs it.
fn need<T>(value: Option<T>, kind: &str, field: &str, fields: &str) -> Result<T, String> {
    value.ok_or_else(|| format!("a `{kind}` rule needs `{field}`; its fields are {fields}"))
}

impl TryFrom<MapOnly<RawAffinityRule>> for AffinityRule {
    type Error = String;

    fn try_from(MapOnly(raw): MapOnly<RawAffinityRule>) -> Result<Self, String> {
        let RawAffinityRule {
            kind,
            target,
            max_latency_ms,
            min_bandwidth_mbps,
            max_loss,
            zones,
            required,
        } = raw;
        match kind {
            AffinityKind::Latency => {
                let f = "`target` (a service), `max_latency_ms` (e.g. `5ms`) and an optional `required` (default true)";
                reject_foreign(
                    "latency",
                    f,
                    &[
                        ("min_bandwidth_mbps", min_bandwidth_mbps.is_some()),
                        ("max_loss", max_loss.is_some()),
                        ("zones", zones.is_some()),
                    ],
                )?;
                Ok(AffinityRule::Latency {
                    required: required.unwrap_or(true),
                    target: need(target, "latency", "target", f)?,
                    max_latency_ms: need(max_latency_ms, "latency", "max_latency_ms", f)?,
                })
            }
            AffinityKind::Bandwidth => {
                let f = "`min_bandwidth_mbps` (e.g. `100Mbps`), an optional `target` and an optional `required` (default true)";
                reject_foreign(
                    "bandwidth",
                    f,
                    &[
                        ("max_latency_ms", max_latency_ms.is_some()),
                        ("max_loss", max_loss.is_some()),
                        ("zones", zones.is_some()),
                    ],
                )?;
                Ok(AffinityRule::Bandwidth {
                    required: required.unwrap_or(true),
                    target,
                    min_bandwidth_mbps: need(
                        min_bandwidth_mbps,
                        "bandwidth",
                        "min_bandwidth_mbps",
                        f,
                    )?,
                })
            }
            AffinityKind::Loss => {
                let f = "`max_loss` (0.0-1.0), an optional `target` and an optional `required` (default true)";
                reject_foreign(
                    "loss",
                    f,
                    &[
                        ("max_latency_ms", max_latency_ms.is_some()),
                        ("min_bandwidth_mbps", min_bandwidth_mbps.is_some()),
                        ("zones", zones.is_some()),
                    ],
                )?;
                Ok(AffinityRule::Loss {
                    required: required.unwrap_or(true),
                    target,
                    max_loss: need(max_loss, "loss", "max_loss", f)?,
                })
            }
            AffinityKind::Zone => {
                let f = "`zones` (a list) and an optional `required` (default false)";
                reject_foreign(
                    "zone",
                    f,
                    &[
                        ("target", target.is_some()),
                        ("max_latency_ms", max_latency_ms.is_some()),
                        ("min_bandwidth_mbps", min_bandwidth_mbps.is_some()),
                        ("max_loss", max_loss.is_some()),
                    ],
                )?;
                Ok(AffinityRule::Zone {
                    zones: need(zones, "zone", "zones", f)?,
                    required: required.unwrap_or(false),
                })
            }
        }
    }
}

/// The kinds of [`AntiAffinityRule`].
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(super) enum AntiAffinityKind {
    NetworkZone,
    Service,
}

/// Every field any [`AntiAffinityRule`] has, as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAntiAffinityRule {
    #[serde(rename = "type")]
    kind: AntiAffinityKind,
    #[serde(default)]
    avoid: Option<String>,
    #[serde(default)]
    service: Option<String>,
}

impl TryFrom<MapOnly<RawAntiAffinityRule>> for AntiAffinityRule {
    type Error = String;

    fn try_from(MapOnly(raw): MapOnly<RawAntiAffinityRule>) -> Result<Self, String> {
        match raw.kind {
            AntiAffinityKind::NetworkZone => {
                let f = "`avoid` (a zone name or prefix)";
                reject_foreign("network-zone", f, &[("service", raw.service.is_some())])?;
                Ok(AntiAffinityRule::NetworkZone {
                    avoid: need(raw.avoid, "network-zone", "avoid", f)?,
                })
            }
            AntiAffinityKind::Service => {
                let f = "`service` (a service name)";
                reject_foreign("service", f, &[("avoid", raw.avoid.is_some())])?;
                Ok(AntiAffinityRule::Service {
                    service: need(raw.service, "service", "service", f)?,
                })
            }
        }
    }
}

/// A health check as written: `type` may be left out and is then inferred.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHealthCheck {
    #[serde(rename = "type", default)]
    kind: Option<HealthCheckType>,
    #[serde(default, alias = "httpPath")]
    http_path: Option<String>,
    #[serde(default, alias = "expectedStatus")]
    expected_status: Option<u16>,
    #[serde(default)]
    port: Option<u16>,
    #[serde(default, deserialize_with = "forms::string_list")]
    command: Vec<String>,
    #[serde(default = "super::default_interval", with = "forms::seconds")]
    interval: u64,
    #[serde(default, with = "forms::seconds")]
    timeout: u64,
    #[serde(default)]
    retries: u32,
    #[serde(default, with = "forms::seconds", alias = "startPeriod")]
    start_period: u64,
}

impl From<MapOnly<RawHealthCheck>> for HealthCheck {
    /// Without a `type`: `command` if a command is given, else `http` if an `http_path` is,
    /// else `tcp` if a `port` is, else `http` (which validation then explains).
    fn from(MapOnly(raw): MapOnly<RawHealthCheck>) -> Self {
        let kind = raw.kind.unwrap_or(if !raw.command.is_empty() {
            HealthCheckType::Command
        } else if raw.http_path.is_some() {
            HealthCheckType::Http
        } else if raw.port.is_some() {
            HealthCheckType::Tcp
        } else {
            HealthCheckType::Http
        });
        HealthCheck {
            kind,
            http_path: raw.http_path,
            expected_status: raw.expected_status,
            port: raw.port,
            command: raw.command,
            interval: raw.interval,
            timeout: raw.timeout,
            retries: raw.retries,
            start_period: raw.start_period,
        }
    }
}
