//! `/etc/hosts` and `/etc/resolv.conf` for a containerd container, rendered from its spec.

use std::path::{Path, PathBuf};

use orion_core::error::ValidationErrors;
use orion_core::model::spec::NetworkMode;
use orion_core::runtime::ContainerSpec;

use super::oci::BindMount;
use crate::error::Result;

/// `/etc/hosts` and `/etc/resolv.conf` for the container, mounted read-only.
#[derive(Debug, Clone)]
pub(super) struct NameFiles {
    hosts_path: PathBuf,
    hosts: String,
    resolv_path: PathBuf,
    resolv: String,
}

impl NameFiles {
    /// Validates `extra_hosts` (`name:ip`) and `dns` (IP addresses) and renders both files.
    pub(super) fn for_spec(spec: &ContainerSpec, dir: &Path) -> Result<Self> {
        let mut errors = ValidationErrors::default();
        let mut hosts =
            String::from("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n");
        for (i, entry) in spec.extra_hosts.iter().enumerate() {
            match entry.split_once(':') {
                Some((name, ip)) if !name.is_empty() && ip.parse::<std::net::IpAddr>().is_ok() => {
                    hosts.push_str(&format!("{ip}\t{name}\n"));
                }
                _ => errors.push(format!("extra_hosts[{i}]"), format!("{entry:?}"), "name:ip"),
            }
        }
        let resolv = if spec.dns.is_empty() {
            if spec.network_mode == NetworkMode::Host {
                std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default()
            } else {
                String::new()
            }
        } else {
            let mut out = String::new();
            for (i, server) in spec.dns.iter().enumerate() {
                if server.parse::<std::net::IpAddr>().is_ok() {
                    out.push_str(&format!("nameserver {server}\n"));
                } else {
                    errors.push(format!("dns[{i}]"), format!("{server:?}"), "an IP address");
                }
            }
            if !spec.dns_search.is_empty() {
                out.push_str(&format!("search {}\n", spec.dns_search.join(" ")));
            }
            out
        };
        errors.into_result()?;
        Ok(NameFiles {
            hosts_path: dir.join("hosts"),
            hosts,
            resolv_path: dir.join("resolv.conf"),
            resolv,
        })
    }

    pub(super) fn write(&self) -> std::io::Result<()> {
        std::fs::write(&self.hosts_path, &self.hosts)?;
        std::fs::write(&self.resolv_path, &self.resolv)
    }

    pub(super) fn mounts(&self) -> Vec<BindMount> {
        [
            (&self.hosts_path, "/etc/hosts"),
            (&self.resolv_path, "/etc/resolv.conf"),
        ]
        .into_iter()
        .map(|(source, target)| BindMount {
            source: source.to_string_lossy().into_owned(),
            target: target.to_string(),
            read_only: true,
        })
        .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::RuntimeError;

    #[test]
    fn name_files_validate_entries() {
        let dir = tempfile::tempdir().unwrap();
        let spec = ContainerSpec {
            extra_hosts: vec!["db:10.0.0.1".into(), "bad".into()],
            dns: vec!["x".into()],
            ..ContainerSpec::default()
        };
        let Err(RuntimeError::InvalidFields(errors)) = NameFiles::for_spec(&spec, dir.path())
        else {
            panic!("expected InvalidFields");
        };
        let paths: Vec<_> = errors.0.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["extra_hosts[1]", "dns[0]"]);
        let spec = ContainerSpec {
            extra_hosts: vec!["db:10.0.0.1".into()],
            ..ContainerSpec::default()
        };
        let files = NameFiles::for_spec(&spec, dir.path()).unwrap();
        files.write().unwrap();
        assert_eq!(files.mounts()[0].target, "/etc/hosts");
        let hosts = std::fs::read_to_string(dir.path().join("hosts")).unwrap();
        assert!(hosts.contains("10.0.0.1\tdb"), "{hosts}");
    }
}
