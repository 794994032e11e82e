//! Conformance suites for every trait (feature `testing`). Every implementation runs the suite of
//! its trait, from its own crate's tests:
//!
//! - [`store`]: the [`Store`](crate::store::Store) contract (`run_all`, plus `reopen` for durable
//!   stores);
//! - [`runtime`]: the [`Runtime`](crate::runtime::Runtime) contract, with a fixture per backend;
//! - [`membership`]: the [`Membership`](crate::membership::Membership) contract;
//! - [`scheduler`]: the [`Filter`](crate::scheduler::Filter) and
//!   [`Scorer`](crate::scheduler::Scorer) contracts;
//! - [`cluster`]: a deterministic cluster harness for the node loops;
//! - [`ports`]: loopback ports a test process keeps to itself, for nodes that restart on them.

pub mod cluster;
pub mod membership;
pub mod ports;
pub mod runtime;
pub mod scheduler;
pub mod store;
