//! Vivaldi run over a whole [`RttMatrix`], and the relative error of a set of coordinates: what the
//! `netsim vivaldi` program and the convergence tests use.

use rand::rngs::StdRng;
use rand::seq::index;
use rand::{Rng, SeedableRng};
use serde::Serialize;

use super::{Coordinate, Vivaldi, VivaldiConfig};
use crate::rtt_file::RttMatrix;
use crate::{Error, Result};

/// Rounds when none is given: each node takes one sample per round.
pub const DEFAULT_ROUNDS: u32 = 1_000;
/// The most rounds a simulation runs.
pub const MAX_ROUNDS: u32 = 100_000;
/// Neighbors per node when none is given (the Vivaldi paper's experiments use 16 to 32).
pub const DEFAULT_NEIGHBORS: usize = 16;
/// Of the default neighbors, how many are the nearest (the rest random): half, which brought the
/// median error on the triangle-inequality-violation matrix from 0.140 to 0.092 (docs/benchmarks.md).
pub const DEFAULT_NEAR_NEIGHBORS: usize = DEFAULT_NEIGHBORS / 2;
/// The most neighbors a node samples from.
pub const MAX_NEIGHBORS: usize = 1_024;
/// Above this many measured pairs, the error is computed on a seeded uniform sample of this size.
pub const MAX_EVALUATED_PAIRS: usize = 5_000_000;

/// How a simulation runs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SimulationParams {
    /// Seeds the choice of neighbors, of samples and of each node's random directions.
    pub seed: u64,
    /// Rounds, each one sample per node, in `1..=MAX_ROUNDS`.
    pub rounds: u32,
    /// Each node's fixed set of measured peers it samples from, in `1..=MAX_NEIGHBORS` (fewer when
    /// it has fewer measured peers).
    pub neighbors: usize,
    /// How many of each node's `neighbors` are its nearest measured peers (by RTT), the rest
    /// being chosen at random among the others, in `0..=neighbors`. The Vivaldi paper's mix of
    /// near and far peers: near ones fix the local structure, far ones the global one.
    pub near_neighbors: usize,
    /// The Vivaldi constants.
    pub config: VivaldiConfig,
}

impl Default for SimulationParams {
    fn default() -> Self {
        Self {
            seed: 1,
            rounds: DEFAULT_ROUNDS,
            neighbors: DEFAULT_NEIGHBORS,
            near_neighbors: DEFAULT_NEAR_NEIGHBORS,
            config: VivaldiConfig::default(),
        }
    }
}

impl SimulationParams {
    /// Checks every bound, naming the one that is broken.
    pub fn validate(&self) -> Result<()> {
        if !(1..=MAX_ROUNDS).contains(&self.rounds) {
            return Err(Error::invalid(
                "rounds",
                format!("{}; accepted: 1 to {MAX_ROUNDS}", self.rounds),
            ));
        }
        if !(1..=MAX_NEIGHBORS).contains(&self.neighbors) {
            return Err(Error::invalid(
                "neighbors",
                format!("{}; accepted: 1 to {MAX_NEIGHBORS}", self.neighbors),
            ));
        }
        if self.near_neighbors > self.neighbors {
            return Err(Error::invalid(
                "near neighbors",
                format!(
                    "{}; accepted: 0 to the number of neighbors ({})",
                    self.near_neighbors, self.neighbors
                ),
            ));
        }
        self.config.validate()
    }
}

/// The distribution of `|estimated - measured| / measured` over measured pairs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RelativeErrors {
    /// Pairs evaluated (unordered; all measured ones up to [`MAX_EVALUATED_PAIRS`]).
    pub pairs: usize,
    pub median: f64,
    pub p90: f64,
    pub mean: f64,
}

/// The outcome of [`simulate`].
#[derive(Debug, Clone, Serialize)]
pub struct SimulationReport {
    pub nodes: usize,
    pub rounds: u32,
    pub neighbors: usize,
    /// Samples taken in all (nodes without a measured peer take none).
    pub samples: u64,
    pub errors: RelativeErrors,
    /// Each node's final coordinate, by index.
    #[serde(skip)]
    pub coordinates: Vec<Coordinate>,
}

/// Runs Vivaldi on `matrix`: every node gets up to `neighbors` measured peers chosen once (its
/// `near_neighbors` nearest, the rest at random), then in each round every node samples one of them (the matrix's RTT) and moves. Returns
/// the relative error of the final coordinates over the measured pairs.
///
/// Deterministic for a given matrix and params. Errors: a bound of [`SimulationParams`] broken,
/// a matrix of fewer than 2 nodes or with no measured pair.
pub fn simulate(matrix: &RttMatrix, params: SimulationParams) -> Result<SimulationReport> {
    params.validate()?;
    let n = matrix.len();
    if n < 2 {
        return Err(Error::invalid(
            "rtt matrix",
            format!("{n} node(s); at least 2 are needed"),
        ));
    }
    let mut rng = StdRng::seed_from_u64(params.seed);
    let neighbor_sets: Vec<Vec<(usize, f64)>> = (0..n)
        .map(|i| {
            let mut measured: Vec<(usize, f64)> = (0..n)
                .filter_map(|j| matrix.rtt(i, j).map(|rtt| (j, rtt)))
                .collect();
            let k = params.neighbors.min(measured.len());
            let near = params.near_neighbors.min(k);
            let mut chosen = Vec::with_capacity(k);
            if near > 0 {
                measured.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
                chosen.extend(measured.drain(..near));
            }
            chosen.extend(
                index::sample(&mut rng, measured.len(), k - near)
                    .into_iter()
                    .map(|at| measured[at]),
            );
            chosen
        })
        .collect();
    let mut nodes: Vec<Vivaldi> = (0..n)
        .map(|i| {
            Vivaldi::new(
                params.config,
                params.seed.wrapping_mul(1_000_003) ^ i as u64,
            )
        })
        .collect();
    let mut samples = 0u64;
    for _ in 0..params.rounds {
        for (i, neighbors) in neighbor_sets.iter().enumerate() {
            if neighbors.is_empty() {
                continue;
            }
            let (j, rtt) = neighbors[rng.random_range(0..neighbors.len())];
            let remote = nodes[j].coordinate().clone();
            nodes[i].observe(&remote, rtt)?;
            samples += 1;
        }
    }
    let coordinates: Vec<Coordinate> = nodes.iter().map(|v| v.coordinate().clone()).collect();
    let errors = relative_errors(matrix, &coordinates, params.seed)?;
    Ok(SimulationReport {
        nodes: n,
        rounds: params.rounds,
        neighbors: params.neighbors,
        samples,
        errors,
        coordinates,
    })
}

/// The relative error of `coordinates` (by node index) against the measured pairs of `matrix`.
/// Above [`MAX_EVALUATED_PAIRS`] measured pairs, a uniform sample drawn with `seed` is used.
///
/// Errors: `coordinates.len()` differs from the matrix size, or no pair is measured.
pub fn relative_errors(
    matrix: &RttMatrix,
    coordinates: &[Coordinate],
    seed: u64,
) -> Result<RelativeErrors> {
    let n = matrix.len();
    if coordinates.len() != n {
        return Err(Error::invalid(
            "coordinates",
            format!("{} coordinates for {n} nodes", coordinates.len()),
        ));
    }
    let error_of = |i: usize, j: usize, rtt: f64| {
        (coordinates[i].estimate_rtt_ms(&coordinates[j]) - rtt).abs() / rtt
    };
    let total_pairs = n * (n - 1) / 2;
    let mut errors = Vec::new();
    if total_pairs <= MAX_EVALUATED_PAIRS {
        for i in 0..n {
            for j in i + 1..n {
                if let Some(rtt) = matrix.rtt(i, j) {
                    errors.push(error_of(i, j, rtt));
                }
            }
        }
    } else {
        let mut rng = StdRng::seed_from_u64(seed ^ 0xE7A1);
        let attempts = MAX_EVALUATED_PAIRS * 4;
        for _ in 0..attempts {
            if errors.len() == MAX_EVALUATED_PAIRS {
                break;
            }
            let (i, j) = (rng.random_range(0..n), rng.random_range(0..n));
            if let (true, Some(rtt)) = (i != j, matrix.rtt(i, j)) {
                errors.push(error_of(i, j, rtt));
            }
        }
    }
    if errors.is_empty() {
        return Err(Error::invalid(
            "rtt matrix",
            "no measured pair: every off-diagonal value is <= 0",
        ));
    }
    errors.sort_by(f64::total_cmp);
    let at = |q: f64| errors[((errors.len() - 1) as f64 * q).round() as usize];
    Ok(RelativeErrors {
        pairs: errors.len(),
        median: at(0.5),
        p90: at(0.9),
        mean: errors.iter().sum::<f64>() / errors.len() as f64,
    })
}
