//! The crate's error type.

/// What can go wrong configuring, starting or querying the DNS server.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A setting is out of range or malformed; says which and what is accepted.
    #[error("dns.{field}: {value}: expected {expected}")]
    Config {
        field: &'static str,
        value: String,
        expected: String,
    },
    /// A socket could not be bound.
    #[error("cannot listen for DNS on {addr} ({protocol}): {source}")]
    Bind {
        addr: std::net::SocketAddr,
        protocol: &'static str,
        source: std::io::Error,
    },
    /// A query could not be sent or its answer not read.
    #[error("DNS query to {server} failed: {reason}")]
    Query {
        server: std::net::SocketAddr,
        reason: String,
    },
    /// The cluster store failed.
    #[error(transparent)]
    Store(#[from] orion_core::Error),
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
