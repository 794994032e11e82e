//! DNS series: every query the node's DNS server answers, by query type and response code, and
//! how long answering took. The labels come from orion-dns's fixed sets
//! ([`orion_dns::QUERY_TYPES`], [`orion_dns::RESPONSE_CODES`]), so odd queries cannot grow the
//! series without bound.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};

use super::Metrics;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct DnsLabels {
    qtype: &'static str,
    rcode: &'static str,
}

/// DNS answer buckets from 100 µs to about 3.3 s (doubling): answers from the index take well
/// under a millisecond, forwarded ones up to the upstreams' 2 s attempts.
pub(super) fn dns_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.0001, 2.0, 16))
}

impl orion_dns::QueryObserver for Metrics {
    fn observe(&self, qtype: &'static str, rcode: &'static str, elapsed: Duration) {
        self.dns_queries
            .get_or_create(&DnsLabels { qtype, rcode })
            .inc();
        self.dns_latency.observe(elapsed.as_secs_f64());
    }
}
