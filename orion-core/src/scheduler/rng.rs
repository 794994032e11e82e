//! The scheduler's deterministic randomness: a seed mixed with the task id gives the sampling
//! offset and the tie-break keys, so a placement never depends on `HashMap` iteration order, the
//! platform or the Rust version.

use crate::hash::stable_hash;

/// SplitMix64: tiny, fast and fully specified, so its sequence is the same everywhere.
#[derive(Debug, Clone)]
pub(crate) struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator for `seed` and `task_id`.
    pub(crate) fn for_task(seed: u64, task_id: &str) -> Self {
        SplitMix64(seed ^ stable_hash(task_id.as_bytes()).rotate_left(17))
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A value in `0..n` (`0` when `n == 0`), by multiply-shift (bias below 2^-32 for any
    /// cluster size).
    pub(crate) fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_inputs_same_sequence_and_different_seeds_differ() {
        let mut a = SplitMix64::for_task(7, "web-0-1");
        let mut b = SplitMix64::for_task(7, "web-0-1");
        let mut c = SplitMix64::for_task(8, "web-0-1");
        let xa: Vec<_> = (0..4).map(|_| a.next_u64()).collect();
        let xb: Vec<_> = (0..4).map(|_| b.next_u64()).collect();
        let xc: Vec<_> = (0..4).map(|_| c.next_u64()).collect();
        assert_eq!(xa, xb);
        assert_ne!(xa, xc);
    }

    #[test]
    fn below_stays_in_range() {
        let mut r = SplitMix64::for_task(1, "t");
        assert_eq!(r.below(0), 0);
        for n in [1usize, 2, 3, 10, 5000] {
            for _ in 0..100 {
                assert!(r.below(n) < n);
            }
        }
    }
}
