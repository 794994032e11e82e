//! Conformance suites for every trait (feature `testing`). Every implementation runs the suite of
//! its trait. (Skeleton, filled by the store and runtime work.)

pub mod membership;
