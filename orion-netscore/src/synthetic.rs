//! Synthetic RTT matrices with known structure, for tests, benches and `netsim generate`.
//!
//! Each generator is deterministic for its seed and returns a symmetric [`RttMatrix`] in
//! milliseconds. Node sizes are bounded by [`crate::rtt_file::MAX_NODES`].

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::Result;
use crate::rtt_file::RttMatrix;

/// Nodes on a `side` x `side` grid, `spacing_ms` apart, each with a 0.5 ms access delay: a matrix a
/// plane with heights embeds exactly.
pub fn grid(side: usize, spacing_ms: f64) -> Result<RttMatrix> {
    let position = |i: usize| ((i % side) as f64, (i / side) as f64);
    RttMatrix::from_fn(side * side, |i, j| {
        let ((xi, yi), (xj, yj)) = (position(i), position(j));
        ((xi - xj).powi(2) + (yi - yj).powi(2)).sqrt() * spacing_ms + 1.0
    })
}

/// `zones` zones of `per_zone` nodes: zone centers spread over a 150 ms wide plane, nodes within
/// 2 ms of their center, each node with an access delay of 0.2 to 3 ms, and +-5 % noise per pair.
/// Nodes `z * per_zone .. (z + 1) * per_zone` are zone `z`.
pub fn clustered(zones: usize, per_zone: usize, seed: u64) -> Result<RttMatrix> {
    let mut rng = StdRng::seed_from_u64(seed);
    let centers: Vec<(f64, f64)> = (0..zones)
        .map(|_| (rng.random_range(0.0..150.0), rng.random_range(0.0..150.0)))
        .collect();
    let nodes: Vec<(f64, f64, f64)> = (0..zones * per_zone)
        .map(|i| {
            let (cx, cy) = centers[i / per_zone.max(1)];
            (
                cx + rng.random_range(-2.0..2.0),
                cy + rng.random_range(-2.0..2.0),
                rng.random_range(0.2..3.0),
            )
        })
        .collect();
    symmetric(nodes.len(), &mut rng, |i, j, rng| {
        let ((xi, yi, hi), (xj, yj, hj)) = (nodes[i], nodes[j]);
        let base = ((xi - xj).powi(2) + (yi - yj).powi(2)).sqrt() + hi + hj;
        base * rng.random_range(0.95..1.05)
    })
}

/// `n` nodes at random points of a 200 ms wide plane with access delays of 0.5 to 10 ms, where a
/// tenth of the pairs take a detour 1.3 to 2.5 times longer: a matrix with many triangle-inequality
/// violations, like Internet routing makes.
pub fn with_triangle_violations(n: usize, seed: u64) -> Result<RttMatrix> {
    let mut rng = StdRng::seed_from_u64(seed);
    let nodes: Vec<(f64, f64, f64)> = (0..n)
        .map(|_| {
            (
                rng.random_range(0.0..200.0),
                rng.random_range(0.0..200.0),
                rng.random_range(0.5..10.0),
            )
        })
        .collect();
    symmetric(n, &mut rng, |i, j, rng| {
        let ((xi, yi, hi), (xj, yj, hj)) = (nodes[i], nodes[j]);
        let base = ((xi - xj).powi(2) + (yi - yj).powi(2)).sqrt() + hi + hj;
        if rng.random_bool(0.1) {
            base * rng.random_range(1.3..2.5)
        } else {
            base
        }
    })
}

/// `matrix` with each unordered pair unmeasured (both directions) with probability `fraction`
/// (clamped to [0, 1]).
pub fn with_missing(matrix: &RttMatrix, fraction: f64, seed: u64) -> Result<RttMatrix> {
    let fraction = if fraction.is_finite() {
        fraction.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let mut rng = StdRng::seed_from_u64(seed);
    symmetric(matrix.len(), &mut rng, |i, j, rng| {
        if rng.random_bool(fraction) {
            -1.0
        } else {
            matrix.rtt(i, j).unwrap_or(-1.0)
        }
    })
}

/// How many triangles `(i, j, k)` have `rtt(i, k) > rtt(i, j) + rtt(j, k)`, over at most
/// `max_triangles` of them taken in order.
pub fn triangle_violations(matrix: &RttMatrix, max_triangles: usize) -> usize {
    let n = matrix.len();
    let mut seen = 0;
    let mut violations = 0;
    for i in 0..n {
        for j in 0..n {
            for k in 0..n {
                if seen == max_triangles {
                    return violations;
                }
                if i == j || j == k || i == k {
                    continue;
                }
                if let (Some(ij), Some(jk), Some(ik)) =
                    (matrix.rtt(i, j), matrix.rtt(j, k), matrix.rtt(i, k))
                {
                    seen += 1;
                    if ik > ij + jk {
                        violations += 1;
                    }
                }
            }
        }
    }
    violations
}

fn symmetric(
    n: usize,
    rng: &mut StdRng,
    mut pair: impl FnMut(usize, usize, &mut StdRng) -> f64,
) -> Result<RttMatrix> {
    let mut upper = vec![0.0; n * n];
    for i in 0..n {
        for j in i + 1..n {
            upper[i * n + j] = pair(i, j, rng);
        }
    }
    RttMatrix::from_fn(n, |i, j| {
        if i < j {
            upper[i * n + j]
        } else {
            upper[j * n + i]
        }
    })
}
