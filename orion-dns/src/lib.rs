//! DNS service discovery: an authoritative DNS server for the cluster's services, run by every
//! node, answering from an in-memory index that a store watch keeps current.
//!
//! Names, under the configured zone (default `orion.`):
//!
//! | name | types | answer |
//! |---|---|---|
//! | `<zone>` | SOA, NS | the zone's SOA; one NS per node (`<node>._nodes.<zone>`) |
//! | `<service>.<zone>` | A, AAAA | the addresses of the nodes running serving replicas ([`Task::is_serving`](orion_core::model::Task::is_serving)), one per node |
//! | `<task-id>.<service>.<zone>` | A, AAAA | the address of the node running that task, while it serves |
//! | `_<port>._<tcp\|udp>.<service>.<zone>` | SRV | one per serving replica: its node's name and host port; `<port>` is the port's `name`, or its container port number |
//! | `<node>._nodes.<zone>` | A, AAAA | the node's advertised address (the SRV targets) |
//!
//! Unknown names get NXDOMAIN, names outside the zone REFUSED (the server never recurses), or,
//! only when [`DnsConfig::forward`] names upstreams, the upstreams' answer.
//! Answers are ordered by proximity to the answering node once network measurements or Vivaldi
//! coordinates exist (lowest RTT first; SRV priorities follow the rank), round-robin otherwise.
//!
//! ```no_run
//! # async fn demo() -> orion_dns::Result<()> {
//! use orion_core::store::{ClusterStore, MemoryStore};
//! use orion_dns::{DnsConfig, DnsServer};
//! let store = ClusterStore::new(MemoryStore::new());
//! let config = DnsConfig::new("node1", "orion.")?;
//! let server = DnsServer::start(store, config, &["127.0.0.1:5353".parse().unwrap()]).await?;
//! # drop(server); Ok(()) }
//! ```

mod answer;
pub mod client;
mod config;
mod error;
mod index;
mod observe;
mod server;

pub use answer::MAX_ANSWERS;
pub use config::{
    DEFAULT_PORT, DEFAULT_TTL_SECS, DEFAULT_ZONE, DnsConfig, MAX_FORWARD, MAX_TTL_SECS,
};
pub use error::{Error, Result};
pub use index::{DnsIndex, IndexWatcher, ZoneData};
pub use observe::{
    ObserverHandle, QUERY_TYPES, QueryObserver, RESPONSE_CODES, query_type_label,
    response_code_label,
};
pub use server::{DnsHandler, DnsServer};
