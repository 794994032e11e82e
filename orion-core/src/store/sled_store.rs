//! `SledStore`: a durable single-node [`Store`](super::Store) on sled. (Skeleton.)

/// A store on sled that flushes before acknowledging a write.
#[derive(Debug)]
pub struct SledStore {}
