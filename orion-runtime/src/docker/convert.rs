//! Translations between Orion's runtime types and the Docker engine API's.

use std::collections::{BTreeMap, HashMap};

use bollard::models::{
    ContainerCreateBody, ContainerInspectResponse, ContainerStateStatusEnum, ContainerSummary,
    ContainerSummaryStateEnum, HostConfig, Mount, MountType, PortBinding as DockerPortBinding,
    PortMap, RestartPolicy, RestartPolicyNameEnum,
};
use orion_core::model::PublishedPort;
use orion_core::model::spec::NetworkMode;
use orion_core::runtime::{ContainerInfo, ContainerSpec, ContainerStatus};

use crate::error::{Result, RuntimeError};

/// The smallest memory limit the engine accepts (6 MiB).
pub const MIN_MEMORY_BYTES: u64 = 6 * 1024 * 1024;

/// The create request for `spec`, after checking what the engine would reject or ignore.
pub(crate) fn create_body(spec: &ContainerSpec) -> Result<ContainerCreateBody> {
    check_spec(spec)?;
    let mut exposed_ports = Vec::new();
    let mut port_bindings: PortMap = HashMap::new();
    for port in &spec.ports {
        let key = format!("{}/{}", port.container_port, port.protocol.as_str());
        exposed_ports.push(key.clone());
        let host_port = if port.host_port == 0 {
            String::new()
        } else {
            port.host_port.to_string()
        };
        port_bindings
            .entry(key)
            .or_insert_with(|| Some(Vec::new()))
            .get_or_insert_with(Vec::new)
            .push(DockerPortBinding {
                host_ip: Some(port.host_ip.clone()).filter(|ip| !ip.is_empty()),
                host_port: Some(host_port),
            });
    }
    let mounts = spec
        .mounts
        .iter()
        .map(|m| Mount {
            target: Some(m.target.clone()),
            source: Some(m.source.clone()),
            typ: Some(if m.source.starts_with('/') {
                MountType::BIND
            } else {
                MountType::VOLUME
            }),
            read_only: Some(m.read_only),
            ..Mount::default()
        })
        .collect::<Vec<_>>();
    let network_mode = match (&spec.network, spec.network_mode) {
        (Some(name), _) => name.clone(),
        (None, NetworkMode::Bridge) => "bridge".to_owned(),
        (None, NetworkMode::Host) => "host".to_owned(),
        (None, NetworkMode::None) => "none".to_owned(),
    };
    let host_config = HostConfig {
        port_bindings: Some(port_bindings).filter(|p| !p.is_empty()),
        mounts: Some(mounts).filter(|m| !m.is_empty()),
        nano_cpus: positive(spec.cpu_millicores.saturating_mul(1_000_000)),
        cpu_shares: spec.cpu_shares().and_then(positive),
        memory: positive(spec.memory_bytes),
        // The limit covers swap too: a container over its limit is OOM-killed, not swapped.
        memory_swap: positive(spec.memory_bytes),
        network_mode: Some(network_mode),
        dns: Some(spec.dns.clone()).filter(|d| !d.is_empty()),
        dns_search: Some(spec.dns_search.clone()).filter(|d| !d.is_empty()),
        extra_hosts: Some(spec.extra_hosts.clone()).filter(|h| !h.is_empty()),
        restart_policy: Some(RestartPolicy {
            name: Some(RestartPolicyNameEnum::NO),
            maximum_retry_count: None,
        }),
        ..HostConfig::default()
    };
    Ok(ContainerCreateBody {
        image: Some(spec.image.clone()),
        cmd: Some(spec.command.clone()).filter(|c| !c.is_empty()),
        entrypoint: spec.entrypoint.clone(),
        env: Some(spec.env.clone()).filter(|e| !e.is_empty()),
        working_dir: Some(spec.workdir.clone()).filter(|w| !w.is_empty()),
        exposed_ports: Some(exposed_ports).filter(|p| !p.is_empty()),
        labels: Some(
            spec.labels
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        ),
        host_config: Some(host_config),
        ..ContainerCreateBody::default()
    })
}

fn positive(value: u64) -> Option<i64> {
    (value > 0).then(|| i64::try_from(value).unwrap_or(i64::MAX))
}

/// Rejects what the engine would refuse with a vaguer message, or silently ignore.
fn check_spec(spec: &ContainerSpec) -> Result<()> {
    let invalid = |field: &str, value: String, expected: &str| RuntimeError::InvalidSpec {
        field: field.to_owned(),
        value,
        expected: expected.to_owned(),
    };
    if spec.image.trim().is_empty() {
        return Err(invalid("image", spec.image.clone(), "an image reference"));
    }
    if !spec.ports.is_empty() && spec.network.is_none() && spec.network_mode != NetworkMode::Bridge
    {
        return Err(invalid(
            "ports",
            format!(
                "{} port(s) with network mode {:?}",
                spec.ports.len(),
                spec.network_mode
            ),
            "no ports with network mode host or none (Docker would ignore them): use bridge",
        ));
    }
    for (i, port) in spec.ports.iter().enumerate() {
        if port.container_port == 0 {
            return Err(invalid(
                &format!("ports[{i}].container_port"),
                "0".to_owned(),
                "a port in 1..=65535",
            ));
        }
        if !port.host_ip.is_empty() && port.host_ip.parse::<std::net::IpAddr>().is_err() {
            return Err(invalid(
                &format!("ports[{i}].host_ip"),
                port.host_ip.clone(),
                "an IP address such as 127.0.0.1 or 0.0.0.0 (empty = all addresses)",
            ));
        }
    }
    if spec.memory_bytes > 0 && spec.memory_bytes < MIN_MEMORY_BYTES {
        return Err(invalid(
            "memory_bytes",
            spec.memory_bytes.to_string(),
            "0 (unlimited) or at least 6 MiB (6291456), the engine's minimum",
        ));
    }
    for (i, mount) in spec.mounts.iter().enumerate() {
        if !mount.target.starts_with('/') {
            return Err(invalid(
                &format!("mounts[{i}].target"),
                mount.target.clone(),
                "an absolute path inside the container",
            ));
        }
        if mount.source.is_empty() {
            return Err(invalid(
                &format!("mounts[{i}].source"),
                String::new(),
                "a host path starting with / (bind) or a volume name",
            ));
        }
    }
    Ok(())
}

/// Orion's view of an inspected container.
pub(crate) fn container_info(inspect: ContainerInspectResponse) -> ContainerInfo {
    let state = inspect.state.unwrap_or_default();
    let status = match state.status {
        Some(ContainerStateStatusEnum::CREATED) => ContainerStatus::Created,
        Some(ContainerStateStatusEnum::RUNNING) => ContainerStatus::Running,
        Some(ContainerStateStatusEnum::EXITED | ContainerStateStatusEnum::DEAD) => {
            ContainerStatus::Exited {
                code: state.exit_code.unwrap_or(-1),
                oom_killed: state.oom_killed.unwrap_or(false),
            }
        }
        Some(other) => ContainerStatus::Unknown(other.to_string()),
        None => ContainerStatus::Unknown("no state reported".to_owned()),
    };
    let config = inspect.config.unwrap_or_default();
    let labels: BTreeMap<String, String> = config.labels.unwrap_or_default().into_iter().collect();
    let ports = inspect
        .network_settings
        .and_then(|n| n.ports)
        .map(published_ports)
        .unwrap_or_default();
    ContainerInfo {
        id: inspect.id.unwrap_or_default(),
        name: inspect
            .name
            .map(|n| n.trim_start_matches('/').to_owned())
            .unwrap_or_default(),
        image: config.image.unwrap_or_default(),
        status,
        ports,
        labels,
        pid: state
            .pid
            .and_then(|p| u32::try_from(p).ok())
            .filter(|p| *p > 0),
    }
}

/// The published ports of a `NetworkSettings.Ports` map, sorted; IPv6 duplicates dropped.
pub(crate) fn published_ports(map: PortMap) -> Vec<PublishedPort> {
    let mut ports = Vec::new();
    for (key, bindings) in map {
        let (port, protocol) = key.split_once('/').unwrap_or((key.as_str(), "tcp"));
        let Ok(container_port) = port.parse::<u16>() else {
            continue;
        };
        for binding in bindings.unwrap_or_default() {
            let host_ip = binding.host_ip.unwrap_or_default();
            if host_ip == "::" {
                continue;
            }
            let Some(host_port) = binding.host_port.and_then(|p| p.parse::<u16>().ok()) else {
                continue;
            };
            ports.push(PublishedPort {
                container_port,
                host_port,
                protocol: protocol.into(),
                host_ip: host_ip.into(),
            });
        }
    }
    ports.sort_by(|a, b| {
        (a.container_port, &a.protocol, &a.host_ip).cmp(&(
            b.container_port,
            &b.protocol,
            &b.host_ip,
        ))
    });
    ports
}

/// Orion's view of a running container from the engine's container list, without an inspect;
/// `None` for a container in any other state (its exit code and OOM flag need an inspect) or
/// without an id. The process id is not in the list, so `pid` is `None`.
pub(crate) fn running_from_summary(summary: &ContainerSummary) -> Option<ContainerInfo> {
    if summary.state != Some(ContainerSummaryStateEnum::RUNNING) {
        return None;
    }
    let mut ports: Vec<PublishedPort> = summary
        .ports
        .iter()
        .flatten()
        .filter_map(|p| {
            let host_ip = p.ip.clone().unwrap_or_default();
            if host_ip == "::" {
                return None;
            }
            Some(PublishedPort {
                container_port: p.private_port,
                host_port: p.public_port?,
                protocol: p.typ.map_or_else(|| "tcp".into(), |t| t.to_string().into()),
                host_ip: host_ip.into(),
            })
        })
        .collect();
    ports.sort_by(|a, b| {
        (a.container_port, &a.protocol, &a.host_ip).cmp(&(
            b.container_port,
            &b.protocol,
            &b.host_ip,
        ))
    });
    ports.dedup();
    Some(ContainerInfo {
        id: summary.id.clone()?,
        name: summary
            .names
            .iter()
            .flatten()
            .next()
            .map(|n| n.trim_start_matches('/').to_owned())
            .unwrap_or_default(),
        image: summary.image.clone().unwrap_or_default(),
        status: ContainerStatus::Running,
        ports,
        labels: summary
            .labels
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect(),
        pid: None,
    })
}

#[cfg(test)]
mod tests {
    use orion_core::model::spec::Protocol;
    use orion_core::runtime::{Mount as SpecMount, PortBinding};

    use super::*;

    fn spec() -> ContainerSpec {
        ContainerSpec {
            name: "web".into(),
            image: "nginx:1".into(),
            ..ContainerSpec::default()
        }
    }

    #[test]
    fn ports_mounts_and_limits_reach_the_host_config() {
        let mut s = spec();
        s.ports = vec![PortBinding {
            container_port: 80,
            host_port: 0,
            protocol: Protocol::Tcp,
            host_ip: "127.0.0.1".into(),
        }];
        s.mounts = vec![
            SpecMount {
                source: "/srv/data".into(),
                target: "/data".into(),
                read_only: true,
            },
            SpecMount {
                source: "cache".into(),
                target: "/cache".into(),
                read_only: false,
            },
        ];
        s.cpu_millicores = 500;
        s.cpu_reserved_millicores = 250;
        s.memory_bytes = 64 << 20;
        let unlimited = create_body(&ContainerSpec {
            cpu_millicores: 0,
            ..s.clone()
        })
        .unwrap()
        .host_config
        .unwrap();
        assert_eq!(
            (unlimited.nano_cpus, unlimited.cpu_shares),
            (None, Some(256))
        );
        let body = create_body(&s).unwrap();
        assert_eq!(body.exposed_ports, Some(vec!["80/tcp".to_owned()]));
        let host = body.host_config.unwrap();
        let binding = &host.port_bindings.unwrap()["80/tcp"].clone().unwrap()[0];
        assert_eq!(binding.host_ip.as_deref(), Some("127.0.0.1"));
        assert_eq!(binding.host_port.as_deref(), Some(""));
        assert_eq!(host.nano_cpus, Some(500_000_000));
        assert_eq!(host.cpu_shares, Some(256));
        assert_eq!(host.memory, Some(64 << 20));
        let mounts = host.mounts.unwrap();
        assert_eq!(mounts[0].typ, Some(MountType::BIND));
        assert_eq!(mounts[0].read_only, Some(true));
        assert_eq!(mounts[1].typ, Some(MountType::VOLUME));
        assert_eq!(
            host.restart_policy.unwrap().name,
            Some(RestartPolicyNameEnum::NO)
        );
    }

    #[test]
    fn ports_with_host_networking_are_rejected_not_ignored() {
        let mut s = spec();
        s.network_mode = NetworkMode::Host;
        s.ports = vec![PortBinding {
            container_port: 80,
            host_port: 8080,
            protocol: Protocol::Tcp,
            host_ip: String::new(),
        }];
        let err = create_body(&s).unwrap_err();
        assert!(matches!(err, RuntimeError::InvalidSpec { ref field, .. } if field == "ports"));
    }

    #[test]
    fn tiny_memory_limit_names_the_minimum() {
        let mut s = spec();
        s.memory_bytes = 1024;
        let err = create_body(&s).unwrap_err().to_string();
        assert!(
            err.contains("memory_bytes") && err.contains("6 MiB"),
            "{err}"
        );
    }

    #[test]
    fn published_ports_skip_the_ipv6_twin() {
        let mut map = PortMap::new();
        map.insert(
            "8080/tcp".into(),
            Some(vec![
                DockerPortBinding {
                    host_ip: Some("0.0.0.0".into()),
                    host_port: Some("49153".into()),
                },
                DockerPortBinding {
                    host_ip: Some("::".into()),
                    host_port: Some("49153".into()),
                },
            ]),
        );
        map.insert("53/udp".into(), None);
        let ports = published_ports(map);
        assert_eq!(
            ports,
            vec![PublishedPort {
                container_port: 8080,
                host_port: 49153,
                protocol: "tcp".into(),
                host_ip: "0.0.0.0".into(),
            }]
        );
    }
}
