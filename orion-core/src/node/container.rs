//! The container a task runs as.

use crate::model::Task;
use crate::model::spec::ServiceSpec;
use crate::runtime::{ContainerSpec, Mount, PortBinding, labels};

/// The container to run for `task` of `spec` on `node`.
pub fn container_spec(
    spec: &ServiceSpec,
    task: &Task,
    node: &str,
    publish_ip: &str,
) -> ContainerSpec {
    let mut container_labels = spec.labels.clone();
    container_labels.insert(labels::MANAGED.into(), "true".into());
    container_labels.insert(labels::TASK.into(), task.id.to_string());
    container_labels.insert(labels::SERVICE.into(), spec.name.clone());
    container_labels.insert(labels::NODE.into(), node.to_owned());
    ContainerSpec {
        name: format!("orion-{}", task.id),
        image: spec.image.clone(),
        command: spec.command.clone(),
        entrypoint: spec.entrypoint.clone(),
        env: spec.env.clone(),
        workdir: String::new(),
        ports: spec
            .ports
            .iter()
            .map(|p| PortBinding {
                container_port: p.container_port,
                host_port: p.host_port,
                protocol: p.protocol,
                host_ip: publish_ip.to_owned(),
            })
            .collect(),
        mounts: spec
            .volumes
            .iter()
            .map(|v| Mount {
                source: v.source.clone(),
                target: v.target.clone(),
                read_only: v.read_only,
            })
            .collect(),
        cpu_millicores: spec
            .resources
            .cpu_limit
            .cap(task.resources.cpu_millicores)
            .unwrap_or(0),
        cpu_reserved_millicores: task.resources.cpu_millicores,
        memory_bytes: task.resources.memory_bytes,
        network_mode: spec.network_mode,
        network: spec.network.clone(),
        dns: spec.dns.clone(),
        dns_search: Vec::new(),
        extra_hosts: spec.extra_hosts.clone(),
        labels: container_labels,
        secrets: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::spec::CpuLimit;

    #[test]
    fn the_cpu_cap_follows_cpu_limit_and_the_weight_the_reservation() {
        let mut spec = ServiceSpec::new("web", "nginx", 1);
        spec.resources.cpu_millicores = 250;
        let task = Task::new("web", 0, 1, spec.resources.into());
        for (limit, cap) in [
            (CpuLimit::Reserved, 250),
            (CpuLimit::None, 0),
            (CpuLimit::Millicores(1500), 1500),
        ] {
            spec.resources.cpu_limit = limit;
            let container = container_spec(&spec, &task, "n1", "127.0.0.1");
            assert_eq!(container.cpu_millicores, cap, "{limit:?}");
            assert_eq!(container.cpu_reserved_millicores, 250, "{limit:?}");
        }
    }
}
