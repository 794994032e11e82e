//! Containers resolve `<service>.<zone>` out of the box: the node serves DNS on port 53 at an
//! address containers can reach (the Docker bridge gateway, docker0, by default), and every
//! container created without its own `dns` gets that address as its nameserver and the zone as
//! its search domain. Host-network containers and host processes keep the host's resolver (see
//! docs/dns.md).

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use async_trait::async_trait;
use orion_core::model::spec::NetworkMode;
use orion_core::runtime::{
    ContainerInfo, ContainerSpec, ContainerStats, ExecOutput, ExitStream, LogOptions, LogStreamBox,
    Runtime,
};
use tracing::{info, warn};

use crate::cli::RuntimeKind;
use crate::config::ContainerDns;

/// The address containers are given, from `dns.containers`: the detected Docker bridge gateway
/// for `auto` (none with another runtime, or when the engine has no bridge network), or the
/// configured IP.
pub async fn container_dns_ip(
    setting: ContainerDns,
    runtime: RuntimeKind,
) -> Result<Option<IpAddr>> {
    match (setting, runtime) {
        (ContainerDns::Off, _) => Ok(None),
        (ContainerDns::At(ip), _) => Ok(Some(ip)),
        (ContainerDns::Auto, RuntimeKind::Docker) => {
            let docker = orion_runtime::DockerRuntime::connect().await?;
            let gateway = docker
                .bridge_gateway()
                .await
                .context("dns.containers auto: cannot read the Docker bridge network")?;
            if gateway.is_none() {
                info!(
                    "dns: the Docker engine has no IPv4 bridge network; containers keep its resolver"
                );
            }
            Ok(gateway.map(IpAddr::V4))
        }
        (ContainerDns::Auto, other) => {
            info!(runtime = ?other, "dns: containers keep the runtime's resolver (dns.containers auto applies to Docker)");
            Ok(None)
        }
    }
}

/// The listen address for containers: `ip`, port 53 (a resolv.conf names no port).
pub fn container_listen(ip: IpAddr) -> SocketAddr {
    SocketAddr::new(ip, 53)
}

/// A runtime that gives bridge-network containers without a `dns` of their own `nameserver`
/// and `search`; everything else goes to `inner` unchanged.
pub struct ResolverDefaults {
    inner: Arc<dyn Runtime>,
    nameserver: String,
    search: String,
}

impl ResolverDefaults {
    /// Wraps `inner`; `search` is the zone (a trailing dot is dropped).
    pub fn wrap(inner: Arc<dyn Runtime>, nameserver: IpAddr, zone: &str) -> Arc<dyn Runtime> {
        warn_if_unusable(nameserver);
        Arc::new(ResolverDefaults {
            inner,
            nameserver: nameserver.to_string(),
            search: zone.trim_end_matches('.').to_owned(),
        })
    }
}

impl ResolverDefaults {
    /// `spec` with the node's resolver, when it is a bridge-network container without `dns`;
    /// `None` when it is left as it is.
    fn with_defaults(&self, spec: &ContainerSpec) -> Option<ContainerSpec> {
        if !spec.dns.is_empty() || spec.network_mode != NetworkMode::Bridge {
            return None;
        }
        let mut spec = spec.clone();
        spec.dns = vec![self.nameserver.clone()];
        if spec.dns_search.is_empty() {
            spec.dns_search = vec![self.search.clone()];
        }
        Some(spec)
    }
}

fn warn_if_unusable(ip: IpAddr) {
    if ip.is_loopback() {
        warn!(%ip, "dns.containers is a loopback address: bridge-network containers cannot reach it");
    }
}

#[async_trait]
impl Runtime for ResolverDefaults {
    fn name(&self) -> &'static str {
        self.inner.name()
    }
    async fn ensure_image(&self, image: &str) -> orion_core::Result<()> {
        self.inner.ensure_image(image).await
    }
    async fn create_and_start(&self, spec: &ContainerSpec) -> orion_core::Result<ContainerInfo> {
        match self.with_defaults(spec) {
            Some(spec) => self.inner.create_and_start(&spec).await,
            None => self.inner.create_and_start(spec).await,
        }
    }
    async fn stop(&self, id: &str, grace: Duration) -> orion_core::Result<()> {
        self.inner.stop(id, grace).await
    }
    async fn remove(&self, id: &str) -> orion_core::Result<()> {
        self.inner.remove(id).await
    }
    async fn inspect(&self, id: &str) -> orion_core::Result<ContainerInfo> {
        self.inner.inspect(id).await
    }
    async fn list(
        &self,
        labels: &BTreeMap<String, String>,
    ) -> orion_core::Result<Vec<ContainerInfo>> {
        self.inner.list(labels).await
    }
    async fn watch_exits(
        &self,
        labels: &BTreeMap<String, String>,
    ) -> orion_core::Result<ExitStream> {
        self.inner.watch_exits(labels).await
    }
    async fn logs(&self, id: &str, options: LogOptions) -> orion_core::Result<LogStreamBox> {
        self.inner.logs(id, options).await
    }
    async fn stats(&self, id: &str) -> orion_core::Result<ContainerStats> {
        self.inner.stats(id).await
    }
    async fn exec(&self, id: &str, command: &[String]) -> orion_core::Result<ExecOutput> {
        self.inner.exec(id, command).await
    }
}

#[cfg(test)]
mod tests {
    use orion_core::runtime::FakeRuntime;

    use super::*;

    #[test]
    fn bridge_containers_without_dns_get_the_node_resolver() {
        let rt = ResolverDefaults {
            inner: Arc::new(FakeRuntime::new()),
            nameserver: "172.17.0.1".into(),
            search: "orion".into(),
        };
        let plain = ContainerSpec::default();
        let got = rt.with_defaults(&plain).unwrap();
        assert_eq!(got.dns, ["172.17.0.1"]);
        assert_eq!(got.dns_search, ["orion"]);
        let own = ContainerSpec {
            dns: vec!["10.0.0.2".into()],
            ..plain.clone()
        };
        assert!(rt.with_defaults(&own).is_none());
        let host = ContainerSpec {
            network_mode: NetworkMode::Host,
            ..plain
        };
        assert!(rt.with_defaults(&host).is_none());
    }
}
