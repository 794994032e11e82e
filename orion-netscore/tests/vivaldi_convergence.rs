//! Vivaldi converges on synthetic matrices with known structure, and the error bounds asserted
//! here are ones that coordinates placed at random do not meet.

use orion_netscore::rtt_file::RttMatrix;
use orion_netscore::synthetic;
use orion_netscore::vivaldi::{
    Coordinate, DIMENSIONS, RelativeErrors, SimulationParams, relative_errors, simulate,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn params(rounds: u32) -> SimulationParams {
    SimulationParams {
        seed: 7,
        rounds,
        ..SimulationParams::default()
    }
}

/// Coordinates drawn at random in a box as wide as the matrix's largest RTT: what a broken
/// implementation that never moves the coordinates towards the data would score.
fn random_baseline(matrix: &RttMatrix) -> RelativeErrors {
    let n = matrix.len();
    let widest = (0..n)
        .flat_map(|i| (0..n).filter_map(move |j| matrix.rtt(i, j)))
        .fold(0.0, f64::max);
    let mut rng = StdRng::seed_from_u64(99);
    let coordinates: Vec<Coordinate> = (0..n)
        .map(|_| Coordinate {
            position: [0.0; DIMENSIONS].map(|_| rng.random_range(0.0..widest / 2.0)),
            height_ms: rng.random_range(0.0..widest / 20.0),
            error: 1.0,
        })
        .collect();
    relative_errors(matrix, &coordinates, 1).unwrap()
}

fn assert_converges(name: &str, matrix: &RttMatrix, rounds: u32, median: f64, p90: f64) {
    let report = simulate(matrix, params(rounds)).unwrap();
    let baseline = random_baseline(matrix);
    println!("{name}: vivaldi {:?}, random {:?}", report.errors, baseline);
    assert!(
        report.errors.median <= median && report.errors.p90 <= p90,
        "{name}: median {} (bound {median}), p90 {} (bound {p90})",
        report.errors.median,
        report.errors.p90
    );
    assert!(
        baseline.median > 2.0 * median,
        "{name}: the bound {median} does not tell random coordinates apart (they score {})",
        baseline.median
    );
}

#[test]
fn converges_on_a_grid() {
    let matrix = synthetic::grid(10, 5.0).unwrap();
    assert_converges("grid", &matrix, 1_000, 0.05, 0.12);
}

#[test]
fn converges_on_clustered_zones() {
    let matrix = synthetic::clustered(5, 20, 3).unwrap();
    assert_converges("clustered", &matrix, 1_000, 0.08, 0.3);
}

#[test]
fn converges_despite_triangle_inequality_violations() {
    let matrix = synthetic::with_triangle_violations(120, 5).unwrap();
    assert!(
        synthetic::triangle_violations(&matrix, 200_000) > 1_000,
        "the generator must make violations for this test to mean anything"
    );
    assert_converges("tiv", &matrix, 1_000, 0.2, 0.8);
}

#[test]
fn estimates_pairs_that_were_never_measured() {
    let full = synthetic::clustered(4, 15, 11).unwrap();
    let sparse = synthetic::with_missing(&full, 0.5, 12).unwrap();
    let report = simulate(&sparse, params(1_000)).unwrap();
    // Judge the coordinates learnt from half the pairs against every pair, measured or not.
    let on_all_pairs = relative_errors(&full, &report.coordinates, 1).unwrap();
    println!("sparse: {:?}", on_all_pairs);
    assert!(on_all_pairs.median <= 0.1, "{on_all_pairs:?}");
}

#[test]
fn same_seed_same_result() {
    let matrix = synthetic::with_triangle_violations(30, 1).unwrap();
    let a = simulate(&matrix, params(50)).unwrap();
    let b = simulate(&matrix, params(50)).unwrap();
    assert_eq!(a.coordinates, b.coordinates);
    assert_eq!(a.errors, b.errors);
}

#[test]
fn bounds_are_enforced() {
    let matrix = synthetic::grid(3, 1.0).unwrap();
    let bad = [
        SimulationParams {
            rounds: 0,
            ..SimulationParams::default()
        },
        SimulationParams {
            rounds: 1_000_000,
            ..SimulationParams::default()
        },
        SimulationParams {
            neighbors: 0,
            ..SimulationParams::default()
        },
        SimulationParams {
            neighbors: 5_000,
            ..SimulationParams::default()
        },
        SimulationParams {
            neighbors: 4,
            near_neighbors: 5,
            ..SimulationParams::default()
        },
    ];
    for params in bad {
        assert!(simulate(&matrix, params).is_err(), "{params:?} accepted");
    }
    let unmeasured = RttMatrix::parse("0 -1\n-1 0\n").unwrap();
    assert!(simulate(&unmeasured, SimulationParams::default()).is_err());
}

/// The Vivaldi paper's neighbour sets mixing near and far peers: on a matrix with triangle
/// inequality violations, half nearest and half random neighbours beat all random ones.
#[test]
fn near_and_far_neighbors_beat_random_ones_on_violations() {
    let matrix = synthetic::with_triangle_violations(300, 3).unwrap();
    let random = simulate(
        &matrix,
        SimulationParams {
            near_neighbors: 0,
            ..params(1_000)
        },
    )
    .unwrap();
    let mixed = simulate(&matrix, params(1_000)).unwrap();
    println!("random {:?}, mixed {:?}", random.errors, mixed.errors);
    assert!(
        mixed.errors.median < random.errors.median && mixed.errors.p90 < random.errors.p90,
        "mixed {:?} vs random {:?}",
        mixed.errors,
        random.errors
    );
}
