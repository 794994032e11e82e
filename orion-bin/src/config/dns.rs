//! `dns:` in orion.yaml: the node's DNS server for service discovery (see docs/dns.md).
//!
//! ```yaml
//! dns:
//!   enabled: true          # false: no DNS server on this node
//!   zone: orion.           # the zone served
//!   listen: ""             # IP:PORT; empty = the API address's IP, port 5353
//!   ttl: 5                 # seconds, 1 to 3600
//!   containers: auto       # auto | off | IP: the resolver given to containers (port 53)
//!   forward: []            # upstreams (IP or IP:PORT, at most 4) for names outside the zone
//! ```

use std::net::{IpAddr, SocketAddr};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

/// The `dns` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DnsSection {
    /// Whether the node serves DNS at all.
    pub enabled: bool,
    /// The zone served (`orion.`).
    pub zone: String,
    /// `IP:PORT` to serve on (UDP and TCP); empty: the API address's IP and port 5353.
    pub listen: String,
    /// TTL of every answer, seconds (1 to 3600).
    pub ttl: u32,
    /// How containers reach it: `auto` (Docker runtime: a second listener on port 53 at the
    /// Docker bridge's gateway address, which the agent gives bridge-network containers as their
    /// nameserver, with the zone as search domain), `off`, or an IP of this host to listen on
    /// (port 53) and give containers instead of the detected gateway.
    pub containers: String,
    /// Upstream servers (`IP` for port 53, or `IP:PORT`; at most 4) that names outside the zone
    /// are forwarded to. Empty (default): those names are REFUSED, never resolved.
    pub forward: Vec<String>,
}

impl Default for DnsSection {
    fn default() -> Self {
        DnsSection {
            enabled: true,
            zone: orion_dns::DEFAULT_ZONE.into(),
            listen: String::new(),
            ttl: orion_dns::DEFAULT_TTL_SECS,
            containers: "auto".into(),
            forward: Vec::new(),
        }
    }
}

/// Where containers get their resolver from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContainerDns {
    /// Detect the Docker bridge gateway.
    Auto,
    /// Containers keep the runtime's default resolver.
    Off,
    /// This IP (port 53).
    At(IpAddr),
}

impl DnsSection {
    /// The listen address: `listen`, else `api_ip:5353`. Fails naming the value.
    pub fn listen_addr(&self, api_ip: IpAddr) -> anyhow::Result<SocketAddr> {
        if self.listen.is_empty() {
            return Ok(SocketAddr::new(api_ip, orion_dns::DEFAULT_PORT));
        }
        self.listen.parse().with_context(|| {
            format!(
                "dns.listen {:?}: expected IP:PORT, e.g. 127.0.0.1:5353",
                self.listen
            )
        })
    }

    /// The `containers` setting, parsed.
    pub fn container_dns(&self) -> anyhow::Result<ContainerDns> {
        Ok(match self.containers.as_str() {
            "auto" => ContainerDns::Auto,
            "off" => ContainerDns::Off,
            ip => ContainerDns::At(ip.parse().with_context(|| {
                format!("dns.containers {ip:?}: expected auto, off or an IP address of this host")
            })?),
        })
    }

    /// The server's config for node `node_id`; checks zone, TTL and upstreams.
    pub fn server_config(&self, node_id: &str) -> anyhow::Result<orion_dns::DnsConfig> {
        let mut upstreams = Vec::new();
        for (i, u) in self.forward.iter().enumerate() {
            let addr = u
                .parse::<SocketAddr>()
                .or_else(|_| u.parse::<IpAddr>().map(|ip| SocketAddr::new(ip, 53)))
                .with_context(|| {
                    format!("dns.forward[{i}] {u:?}: expected IP or IP:PORT, e.g. 192.0.2.53")
                })?;
            upstreams.push(addr);
        }
        Ok(orion_dns::DnsConfig::new(node_id, &self.zone)?
            .with_ttl(self.ttl)?
            .with_forward(upstreams)?)
    }

    /// Checks every value (used when the file is loaded).
    pub fn check(&self) -> anyhow::Result<()> {
        self.server_config("check")?;
        self.container_dns()?;
        if !self.listen.is_empty() && self.listen.parse::<SocketAddr>().is_err() {
            bail!(
                "dns.listen {:?}: expected IP:PORT, e.g. 127.0.0.1:5353",
                self.listen
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_values_are_named() {
        let bad = |f: fn(&mut DnsSection)| {
            let mut s = DnsSection::default();
            f(&mut s);
            s.check().unwrap_err().to_string()
        };
        assert!(bad(|s| s.ttl = 0).contains("dns.ttl"));
        assert!(bad(|s| s.zone = "a..b".into()).contains("dns.zone"));
        assert!(bad(|s| s.listen = "nope".into()).contains("dns.listen"));
        assert!(bad(|s| s.containers = "sometimes".into()).contains("dns.containers"));
        assert!(bad(|s| s.forward = vec!["x".into()]).contains("dns.forward[0]"));
        assert!(bad(|s| s.forward = vec!["192.0.2.1".into(); 5]).contains("at most 4"));
        let s = DnsSection {
            forward: vec!["192.0.2.1".into(), "192.0.2.2:5300".into()],
            ..DnsSection::default()
        };
        let c = s.server_config("n").unwrap();
        assert_eq!(c.forward[0].to_string(), "192.0.2.1:53");
        assert!(DnsSection::default().check().is_ok());
        let api: IpAddr = "127.0.0.1".parse().unwrap();
        assert_eq!(
            DnsSection::default().listen_addr(api).unwrap().to_string(),
            "127.0.0.1:5353"
        );
    }
}
