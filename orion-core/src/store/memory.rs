//! `MemoryStore`: the in-memory [`Store`](super::Store). (Skeleton, filled by the store work.)

/// An in-memory store: fast, not durable. For tests, simulations and single-process embedding.
#[derive(Debug, Default)]
pub struct MemoryStore {}
