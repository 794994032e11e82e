//! Conformance suites for every trait (feature `testing`). Every implementation runs the suite of
//! its trait: `store` for [`Store`](crate::store::Store), `runtime` for
//! [`Runtime`](crate::runtime::Runtime), `membership` for
//! [`Membership`](crate::membership::Membership).

pub mod membership;
pub mod runtime;
