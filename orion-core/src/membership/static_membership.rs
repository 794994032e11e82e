//! `StaticMembership`: a fixed member list. (Skeleton, filled by the fakes work.)

/// A fixed list of members, all alive.
#[derive(Debug, Default)]
pub struct StaticMembership {}
