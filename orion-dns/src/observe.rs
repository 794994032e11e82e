//! What the server tells about each query it answers: its type, its response code and how long
//! answering took, for the node's metrics. The labels are a fixed, small set, so a client
//! sending odd query types cannot grow the metrics without bound.

use std::sync::Arc;
use std::time::Duration;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;

/// Told about every query answered (or refused), after the response is sent.
pub trait QueryObserver: Send + Sync + 'static {
    /// `qtype` is one of [`QUERY_TYPES`] (`other` for the rest, `none` when the message had no
    /// query); `rcode` one of [`RESPONSE_CODES`]; `elapsed` runs from receipt to sending.
    fn observe(&self, qtype: &'static str, rcode: &'static str, elapsed: Duration);
}

/// An observer in a [`crate::DnsConfig`]: two configs are equal when they hold the same one.
#[derive(Clone)]
pub struct ObserverHandle(pub Arc<dyn QueryObserver>);

impl std::fmt::Debug for ObserverHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ObserverHandle")
    }
}

impl PartialEq for ObserverHandle {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for ObserverHandle {}

/// The query type labels.
pub const QUERY_TYPES: [&str; 12] = [
    "A", "AAAA", "SRV", "SOA", "NS", "PTR", "TXT", "CNAME", "MX", "ANY", "other", "none",
];

/// The response code labels.
pub const RESPONSE_CODES: [&str; 7] = [
    "NOERROR", "NXDOMAIN", "REFUSED", "SERVFAIL", "FORMERR", "NOTIMP", "other",
];

/// The label of `qtype`.
pub fn query_type_label(qtype: RecordType) -> &'static str {
    match qtype {
        RecordType::A => "A",
        RecordType::AAAA => "AAAA",
        RecordType::SRV => "SRV",
        RecordType::SOA => "SOA",
        RecordType::NS => "NS",
        RecordType::PTR => "PTR",
        RecordType::TXT => "TXT",
        RecordType::CNAME => "CNAME",
        RecordType::MX => "MX",
        RecordType::ANY => "ANY",
        _ => "other",
    }
}

/// The label of `code`.
pub fn response_code_label(code: ResponseCode) -> &'static str {
    match code {
        ResponseCode::NoError => "NOERROR",
        ResponseCode::NXDomain => "NXDOMAIN",
        ResponseCode::Refused => "REFUSED",
        ResponseCode::ServFail => "SERVFAIL",
        ResponseCode::FormErr => "FORMERR",
        ResponseCode::NotImp => "NOTIMP",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_stay_within_their_sets() {
        for t in [RecordType::A, RecordType::SRV, RecordType::Unknown(4242)] {
            assert!(QUERY_TYPES.contains(&query_type_label(t)));
        }
        assert_eq!(query_type_label(RecordType::Unknown(4242)), "other");
        for c in [
            ResponseCode::NoError,
            ResponseCode::Refused,
            ResponseCode::Unknown(3000),
        ] {
            assert!(RESPONSE_CODES.contains(&response_code_label(c)));
        }
        assert_eq!(response_code_label(ResponseCode::NXDomain), "NXDOMAIN");
    }
}
