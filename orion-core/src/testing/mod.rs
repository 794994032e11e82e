//! Conformance suites for every trait (feature `testing`). Every implementation runs the suite of
//! its trait, from its own crate's tests:
//!
//! - [`store`]: the [`Store`](crate::store::Store) contract (`run_all`, plus `reopen` for durable
//!   stores).
pub mod store;
