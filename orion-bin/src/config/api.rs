//! `api:` in orion.yaml: the API server's limits and who may reach it from a browser.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::humantime_serde_compat;
use crate::api::guard::ForgeryGuard;

/// Most entries of `api.allowedHosts` and of `api.allowedOrigins`.
pub const MAX_ALLOWED_NAMES: usize = 64;

/// How the HTTP API server protects itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    /// A connection that has not sent a whole request head this long after it opened (or after
    /// its previous response) is closed; 1s to 10m.
    #[serde(with = "humantime_serde_compat", alias = "headerReadTimeout")]
    pub header_read_timeout: Duration,
    /// A request that has no response (headers) by then is answered 408; streamed bodies such
    /// as followed logs are not cut. 1s to 1h.
    #[serde(with = "humantime_serde_compat", alias = "requestTimeout")]
    pub request_timeout: Duration,
    /// Most open API connections; 0 derives it from the open-file limit, and a larger value is
    /// lowered to it.
    #[serde(alias = "maxConnections")]
    pub max_connections: usize,
    /// Bound on connecting to another node's API and on its response headers (log proxy); 1s
    /// to 10m.
    #[serde(with = "humantime_serde_compat", alias = "proxyTimeout")]
    pub proxy_timeout: Duration,
    /// `/metrics` answers without a token (for a Prometheus that has none); default false.
    #[serde(alias = "metricsWithoutToken")]
    pub metrics_without_token: bool,
    /// Host names (besides IP addresses and `localhost`) requests may name in `Host`.
    #[serde(alias = "allowedHosts")]
    pub allowed_hosts: Vec<String>,
    /// Browser origins (`https://console.example:8443`) allowed besides the API's own.
    #[serde(alias = "allowedOrigins")]
    pub allowed_origins: Vec<String>,
    /// Serve the API in plain HTTP instead of TLS, for local use: only on a loopback address
    /// (a node whose `--api-addr` is not loopback refuses to start with it). Default false: the
    /// API is served over TLS with the node's certificate.
    #[serde(alias = "plainLoopback")]
    pub plain_loopback: bool,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            header_read_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            max_connections: 0,
            proxy_timeout: Duration::from_secs(10),
            metrics_without_token: false,
            allowed_hosts: Vec::new(),
            allowed_origins: Vec::new(),
            plain_loopback: false,
        }
    }
}

impl ApiConfig {
    /// Checks the timeouts' bounds and the allowed hosts and origins (at most
    /// [`MAX_ALLOWED_NAMES`] each; host names without scheme or port; origins as
    /// `http(s)://host[:port]`).
    pub fn check(&self) -> anyhow::Result<()> {
        let api = self;
        for (field, value, min, max) in [
            ("headerReadTimeout", api.header_read_timeout, 1, 600),
            ("requestTimeout", api.request_timeout, 1, 3600),
            ("proxyTimeout", api.proxy_timeout, 1, 600),
        ] {
            let (lo, hi) = (Duration::from_secs(min), Duration::from_secs(max));
            if value < lo || value > hi {
                anyhow::bail!(
                    "api.{field}: got {}, expected {} to {}",
                    humantime::format_duration(value),
                    humantime::format_duration(lo),
                    humantime::format_duration(hi)
                );
            }
        }
        for (field, list) in [
            ("allowedHosts", &self.allowed_hosts),
            ("allowedOrigins", &self.allowed_origins),
        ] {
            if list.len() > MAX_ALLOWED_NAMES {
                anyhow::bail!(
                    "api.{field}: {} entries, expected at most {MAX_ALLOWED_NAMES}",
                    list.len()
                );
            }
        }
        for (i, host) in self.allowed_hosts.iter().enumerate() {
            let ok = !host.is_empty()
                && host.len() <= 253
                && host
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
            if !ok {
                anyhow::bail!(
                    "api.allowedHosts[{i}]: got {host:?}, expected a host name without scheme \
                     or port, e.g. orion.internal"
                );
            }
        }
        for (i, origin) in self.allowed_origins.iter().enumerate() {
            let rest = origin
                .strip_prefix("https://")
                .or_else(|| origin.strip_prefix("http://"));
            let ok = rest.is_some_and(|r| {
                !r.is_empty() && !r.contains('/') && r.bytes().all(|b| b.is_ascii_graphic())
            });
            if !ok {
                anyhow::bail!(
                    "api.allowedOrigins[{i}]: got {origin:?}, expected http(s)://host[:port] \
                     without a path, e.g. https://console.example"
                );
            }
        }
        Ok(())
    }

    /// The browser-forgery guard these settings describe (names and origins lowercased).
    pub fn forgery_guard(&self) -> ForgeryGuard {
        ForgeryGuard {
            allowed_hosts: self
                .allowed_hosts
                .iter()
                .map(|h| h.to_ascii_lowercase())
                .collect(),
            allowed_origins: self
                .allowed_origins
                .iter()
                .map(|o| o.to_ascii_lowercase())
                .collect(),
        }
    }
}
