//! Skeleton; filled by the embedding work.
fn main() {}
