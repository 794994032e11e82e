//! The one stable hash of the workspace: 64-bit FNV-1a.
//!
//! Whatever must come out the same in every process, on every platform and with every Rust
//! version hashes with this (std's `DefaultHasher` promises none of that): the scheduler's
//! per-task randomness, the reconciler's task ids, a node's Raft id, and the scheduler's small
//! internal maps (where SipHash would cost more than the scoring).

use std::hash::{BuildHasherDefault, Hasher};

const OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
const PRIME: u64 = 0x0000_0100_0000_01b3;

/// 64-bit FNV-1a of `bytes`.
pub fn stable_hash(bytes: &[u8]) -> u64 {
    let mut h = StableHasher::default();
    h.write(bytes);
    h.finish()
}

/// 64-bit FNV-1a as a [`Hasher`]. [`StableHasher::write_field`] hashes a sequence of fields so
/// that moving bytes from one field to the next changes the hash.
#[derive(Debug, Clone, Copy)]
pub struct StableHasher(u64);

impl Default for StableHasher {
    fn default() -> Self {
        StableHasher(OFFSET_BASIS)
    }
}

impl StableHasher {
    /// Hashes `bytes` followed by a separator byte (0xff, which UTF-8 text never contains).
    pub fn write_field(&mut self, bytes: &[u8]) {
        self.write(bytes);
        self.write(&[0xff]);
    }
}

impl Hasher for StableHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(PRIME);
        }
    }
}

/// Builds [`StableHasher`]s.
pub type StableBuildHasher = BuildHasherDefault<StableHasher>;

/// A `HashMap` with [`StableHasher`].
pub type StableMap<K, V> = std::collections::HashMap<K, V, StableBuildHasher>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_reference_vectors() {
        // FNV-1a 64 from the reference test suite.
        assert_eq!(stable_hash(b""), OFFSET_BASIS);
        assert_eq!(stable_hash(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(stable_hash(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn fields_are_separated() {
        let mut ab_c = StableHasher::default();
        ab_c.write_field(b"ab");
        ab_c.write_field(b"c");
        let mut a_bc = StableHasher::default();
        a_bc.write_field(b"a");
        a_bc.write_field(b"bc");
        assert_ne!(ab_c.finish(), a_bc.finish());
    }
}
