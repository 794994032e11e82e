//! What a node's DNS server serves.

use hickory_proto::rr::Name;

use crate::error::{Error, Result};

/// The zone served when none is configured.
pub const DEFAULT_ZONE: &str = "orion.";
/// The port served when none is configured (53 needs privileges and is usually taken).
pub const DEFAULT_PORT: u16 = 5353;
/// TTL of every answer when none is configured, seconds: short, so clients follow changes.
pub const DEFAULT_TTL_SECS: u32 = 5;
/// The largest TTL accepted, seconds.
pub const MAX_TTL_SECS: u32 = 3600;
/// The most upstream servers names outside the zone can be forwarded to.
pub const MAX_FORWARD: usize = 4;

/// The zone, TTL and identity of the answering node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsConfig {
    /// The answering node's id: proximity is measured from it, and it is the SOA's primary.
    pub node_id: String,
    /// The zone, fully qualified and lower case (`orion.`).
    pub zone: Name,
    /// TTL of every record, seconds (1 to [`MAX_TTL_SECS`]).
    pub ttl: u32,
    /// Upstream servers that names outside the zone are forwarded to (UDP, then TCP). Empty
    /// (the default): such names are REFUSED, so the server is never an open resolver.
    pub forward: Vec<std::net::SocketAddr>,
    /// Told about every query answered (the node's metrics); none by default.
    pub observer: Option<crate::ObserverHandle>,
}

impl DnsConfig {
    /// A config for `zone` (`orion` or `orion.`, or several labels such as `svc.example.`) with
    /// the default TTL. Fails naming the zone when it is not a valid, non-root domain name.
    pub fn new(node_id: &str, zone: &str) -> Result<DnsConfig> {
        Ok(DnsConfig {
            node_id: node_id.to_owned(),
            zone: parse_zone(zone)?,
            ttl: DEFAULT_TTL_SECS,
            forward: Vec::new(),
            observer: None,
        })
    }

    /// Sets the TTL; fails outside 1 to [`MAX_TTL_SECS`] seconds.
    pub fn with_ttl(mut self, ttl: u32) -> Result<DnsConfig> {
        if !(1..=MAX_TTL_SECS).contains(&ttl) {
            return Err(Error::Config {
                field: "ttl",
                value: format!("{ttl} s"),
                expected: format!("1 to {MAX_TTL_SECS} seconds"),
            });
        }
        self.ttl = ttl;
        Ok(self)
    }
}

impl DnsConfig {
    /// Forwards names outside the zone to `upstreams` (at most [`MAX_FORWARD`]); empty turns
    /// forwarding off.
    pub fn with_forward(mut self, upstreams: Vec<std::net::SocketAddr>) -> Result<DnsConfig> {
        if upstreams.len() > MAX_FORWARD {
            return Err(Error::Config {
                field: "forward",
                value: format!("{} servers", upstreams.len()),
                expected: format!("at most {MAX_FORWARD} IP:PORT upstream servers"),
            });
        }
        self.forward = upstreams;
        Ok(self)
    }
}

impl DnsConfig {
    /// Tells `observer` about every query answered, after its response is sent.
    pub fn with_observer(mut self, observer: std::sync::Arc<dyn crate::QueryObserver>) -> Self {
        self.observer = Some(crate::ObserverHandle(observer));
        self
    }
}

/// Parses a zone name: labels of letters, digits and '-', at most 63 each, not the root.
pub fn parse_zone(zone: &str) -> Result<Name> {
    let bad = |why: &str| Error::Config {
        field: "zone",
        value: format!("{zone:?}"),
        expected: format!(
            "a domain name such as `orion.` or `svc.example.` ({why}): labels of a-z, 0-9 and '-'"
        ),
    };
    let trimmed = zone.trim_end_matches('.');
    if trimmed.is_empty() {
        return Err(bad("the root zone is not served"));
    }
    if zone.len() > 200 {
        return Err(bad("at most 200 characters"));
    }
    for label in trimmed.split('.') {
        let lower = label.to_ascii_lowercase();
        if !orion_core::model::spec::validate::is_dns_label(&lower) {
            return Err(bad(&format!("label {label:?} is not valid")));
        }
    }
    let mut name =
        Name::from_ascii(trimmed.to_ascii_lowercase()).map_err(|e| bad(&e.to_string()))?;
    name.set_fqdn(true);
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zones_parse_and_bad_ones_are_named() {
        assert_eq!(parse_zone("orion").unwrap().to_ascii(), "orion.");
        assert_eq!(
            parse_zone("Svc.Example.").unwrap().to_ascii(),
            "svc.example."
        );
        for bad in [".", "", "a..b", "-x.", "a_b."] {
            let e = parse_zone(bad).unwrap_err().to_string();
            assert!(e.contains("dns.zone"), "{e}");
        }
        let e = DnsConfig::new("n", "orion")
            .unwrap()
            .with_ttl(0)
            .unwrap_err();
        assert!(e.to_string().contains("1 to 3600"), "{e}");
    }
}
