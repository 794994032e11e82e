//! Vivaldi network coordinates with a height component (Dabek, Cox, Kaashoek, Morris, SIGCOMM 2004).
//!
//! Each node keeps a [`Coordinate`]: a point in a small Euclidean space, plus a height (the
//! access-link delay every path to that node pays) and an error estimate. The estimated RTT between
//! two nodes is the distance between their points plus both heights. After every measured RTT a node
//! moves its own coordinate with [`Vivaldi::observe`], using the paper's adaptive timestep: a sample
//! from a confident peer (low error) moves it more than one from an unsure peer.
//!
//! Why not the `vivaldi-nc` crate: it starts every coordinate at a point drawn from an unseeded,
//! global random source, so a simulation cannot be replayed from a seed, and it stores RTTs as
//! `f32` `Duration`s. This module is the same algorithm, seeded and in `f64` milliseconds.

mod simulation;

pub use simulation::{
    DEFAULT_NEAR_NEIGHBORS, DEFAULT_NEIGHBORS, DEFAULT_ROUNDS, MAX_NEIGHBORS, MAX_ROUNDS,
    RelativeErrors, SimulationParams, SimulationReport, relative_errors, simulate,
};

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Dimensions of the Euclidean part of a coordinate (the height comes on top). The paper finds
/// 2 dimensions plus a height as accurate as 3 or more on Internet data.
pub const DIMENSIONS: usize = 3;

/// The largest RTT a sample may carry, in milliseconds (100 s).
pub const MAX_RTT_MS: f64 = 100_000.0;

/// The smallest height a coordinate keeps, in milliseconds.
pub const MIN_HEIGHT_MS: f64 = 0.01;

/// The error a new coordinate starts with (a relative error: 1.0 means "no idea yet").
pub const INITIAL_ERROR: f64 = 1.0;

/// The error never drops below this, so a peer's weight never becomes exactly 0 or 1.
const MIN_ERROR: f64 = 1e-6;

/// A Vivaldi coordinate: position, height and error estimate.
///
/// Contract: a coordinate built by this module is always finite, its height is at least
/// [`MIN_HEIGHT_MS`] and its error is positive; [`Coordinate::validate`] checks one received from
/// elsewhere (for example read from the store).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Coordinate {
    /// The Euclidean part, in milliseconds.
    pub position: [f64; DIMENSIONS],
    /// The height, in milliseconds.
    pub height_ms: f64,
    /// The node's own estimate of its relative error.
    pub error: f64,
}

impl Default for Coordinate {
    fn default() -> Self {
        Self::origin()
    }
}

impl Coordinate {
    /// The starting coordinate: at the origin, minimal height, [`INITIAL_ERROR`].
    pub fn origin() -> Self {
        Self {
            position: [0.0; DIMENSIONS],
            height_ms: MIN_HEIGHT_MS,
            error: INITIAL_ERROR,
        }
    }

    /// The estimated RTT to `other` in milliseconds: the distance between the positions plus both
    /// heights. Symmetric, and at least the sum of the heights.
    pub fn estimate_rtt_ms(&self, other: &Coordinate) -> f64 {
        plane_distance(&self.position, &other.position) + self.height_ms + other.height_ms
    }

    /// Checks a coordinate that came from outside: every component finite, height at least 0,
    /// error positive.
    pub fn validate(&self) -> Result<()> {
        let finite = self.position.iter().all(|x| x.is_finite())
            && self.height_ms.is_finite()
            && self.error.is_finite();
        if !finite {
            return Err(Error::invalid(
                "vivaldi coordinate",
                format!("{self:?} has a non-finite component; every component must be finite"),
            ));
        }
        if self.height_ms < 0.0 || self.error <= 0.0 {
            return Err(Error::invalid(
                "vivaldi coordinate",
                format!(
                    "height {} ms and error {}: the height must be >= 0 and the error > 0",
                    self.height_ms, self.error
                ),
            ));
        }
        Ok(())
    }
}

/// The two tuning constants of the adaptive timestep.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct VivaldiConfig {
    /// `cc`: the fraction of the way a node moves towards where one sample says it should be.
    pub cc: f64,
    /// `ce`: the weight of one sample in the moving average of the node's error.
    pub ce: f64,
}

impl Default for VivaldiConfig {
    /// The paper's values, `cc = 0.25` and `ce = 0.25`.
    fn default() -> Self {
        Self { cc: 0.25, ce: 0.25 }
    }
}

impl VivaldiConfig {
    /// Both constants must be in (0, 1].
    pub fn validate(&self) -> Result<()> {
        for (name, value) in [("cc", self.cc), ("ce", self.ce)] {
            if !(value > 0.0 && value <= 1.0) {
                return Err(Error::invalid(
                    "vivaldi config",
                    format!("{name} = {value}; accepted: a number in (0, 1], the paper uses 0.25"),
                ));
            }
        }
        Ok(())
    }
}

/// One node's Vivaldi state: its coordinate and the seeded source of the random directions it
/// needs when it sits exactly on a peer.
#[derive(Debug, Clone)]
pub struct Vivaldi {
    config: VivaldiConfig,
    coordinate: Coordinate,
    random_state: u64,
}

impl Vivaldi {
    /// A node at [`Coordinate::origin`]. `seed` makes the random directions reproducible; give
    /// each node a different one (for example a hash of its id).
    ///
    /// An invalid `config` (see [`VivaldiConfig::validate`]) is replaced by the default.
    pub fn new(config: VivaldiConfig, seed: u64) -> Self {
        Self::with_coordinate(config, Coordinate::origin(), seed)
    }

    /// A node that resumes from `coordinate` (the origin if it is invalid).
    pub fn with_coordinate(config: VivaldiConfig, coordinate: Coordinate, seed: u64) -> Self {
        let config = if config.validate().is_ok() {
            config
        } else {
            VivaldiConfig::default()
        };
        let coordinate = if coordinate.validate().is_ok() {
            coordinate
        } else {
            Coordinate::origin()
        };
        Self {
            config,
            coordinate,
            random_state: seed ^ 0x9E37_79B9_7F4A_7C15,
        }
    }

    /// The node's current coordinate.
    pub fn coordinate(&self) -> &Coordinate {
        &self.coordinate
    }

    /// Takes one measured RTT to a peer whose coordinate is `remote`, and moves this node's
    /// coordinate (the paper's Figure 3, with height vectors).
    ///
    /// Errors, leaving the coordinate unchanged: `rtt_ms` not finite, not positive, or above
    /// [`MAX_RTT_MS`]; `remote` invalid.
    pub fn observe(&mut self, remote: &Coordinate, rtt_ms: f64) -> Result<()> {
        if !(rtt_ms.is_finite() && rtt_ms > 0.0 && rtt_ms <= MAX_RTT_MS) {
            return Err(Error::invalid(
                "rtt sample",
                format!("{rtt_ms} ms; accepted: a finite value in (0, {MAX_RTT_MS}] ms"),
            ));
        }
        remote.validate()?;
        let local = self.coordinate.clone();
        let estimate = local.estimate_rtt_ms(remote);
        // (1) sample weight balances local and remote error
        let weight = local.error / (local.error + remote.error.max(MIN_ERROR));
        // (2) relative error of this sample
        let sample_error = (estimate - rtt_ms).abs() / rtt_ms;
        // (3) weighted moving average of the local error
        let ce_w = self.config.ce * weight;
        let error = (sample_error * ce_w + local.error * (1.0 - ce_w)).max(MIN_ERROR);
        // (4) move along the unit height vector u(x_i - x_j) by delta * (rtt - estimate)
        let delta = self.config.cc * weight;
        let force = delta * (rtt_ms - estimate);
        let mut difference = [0.0; DIMENSIONS];
        for (d, (a, b)) in difference
            .iter_mut()
            .zip(local.position.iter().zip(remote.position.iter()))
        {
            *d = a - b;
        }
        let mut plane = norm(&difference);
        if plane < 1e-9 {
            // Sitting on the peer: pick a random direction so the two can separate.
            difference = self.random_unit_vector();
            plane = 1.0;
        }
        let heights = local.height_ms + remote.height_ms;
        let length = plane + heights;
        let mut next = local.clone();
        for (x, d) in next.position.iter_mut().zip(difference.iter()) {
            *x += force * d / length;
        }
        next.height_ms = (local.height_ms + force * heights / length).max(MIN_HEIGHT_MS);
        next.error = error;
        if next.validate().is_ok() {
            self.coordinate = next;
        }
        Ok(())
    }

    /// A unit vector in a direction drawn from this node's seeded generator (splitmix64).
    fn random_unit_vector(&mut self) -> [f64; DIMENSIONS] {
        loop {
            let mut v = [0.0; DIMENSIONS];
            for x in v.iter_mut() {
                *x = self.next_unit_interval() * 2.0 - 1.0;
            }
            let length = norm(&v);
            if length > 1e-3 {
                return v.map(|x| x / length);
            }
        }
    }

    fn next_unit_interval(&mut self) -> f64 {
        self.random_state = self.random_state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.random_state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn norm(v: &[f64; DIMENSIONS]) -> f64 {
    v.iter().map(|x| x * x).sum::<f64>().sqrt()
}

fn plane_distance(a: &[f64; DIMENSIONS], b: &[f64; DIMENSIONS]) -> f64 {
    a.iter()
        .zip(b.iter())
        .map(|(x, y)| (x - y) * (x - y))
        .sum::<f64>()
        .sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn estimate_is_distance_plus_heights() {
        let a = Coordinate {
            position: [0.0, 0.0, 0.0],
            height_ms: 2.0,
            error: 0.5,
        };
        let b = Coordinate {
            position: [3.0, 4.0, 0.0],
            height_ms: 1.0,
            error: 0.5,
        };
        assert_eq!(a.estimate_rtt_ms(&b), 8.0);
        assert_eq!(b.estimate_rtt_ms(&a), 8.0);
    }

    #[test]
    fn two_nodes_at_the_origin_separate_and_converge() {
        let mut a = Vivaldi::new(VivaldiConfig::default(), 1);
        let mut b = Vivaldi::new(VivaldiConfig::default(), 2);
        for _ in 0..300 {
            let (ca, cb) = (a.coordinate().clone(), b.coordinate().clone());
            a.observe(&cb, 25.0).unwrap();
            b.observe(&ca, 25.0).unwrap();
        }
        let estimate = a.coordinate().estimate_rtt_ms(b.coordinate());
        assert!((estimate - 25.0).abs() < 0.5, "estimate {estimate}");
        assert!(
            a.coordinate().error < 0.05,
            "error {}",
            a.coordinate().error
        );
    }

    #[test]
    fn bad_samples_are_refused_and_change_nothing() {
        let mut a = Vivaldi::new(VivaldiConfig::default(), 1);
        let before = a.coordinate().clone();
        let peer = Coordinate::origin();
        for rtt in [0.0, -1.0, f64::NAN, f64::INFINITY, MAX_RTT_MS * 2.0] {
            assert!(a.observe(&peer, rtt).is_err(), "{rtt} accepted");
        }
        let mut broken = Coordinate::origin();
        broken.position[0] = f64::NAN;
        assert!(a.observe(&broken, 10.0).is_err());
        assert_eq!(a.coordinate(), &before);
    }

    #[test]
    fn config_outside_zero_one_is_refused() {
        assert!(VivaldiConfig { cc: 0.0, ce: 0.25 }.validate().is_err());
        assert!(VivaldiConfig { cc: 0.25, ce: 1.5 }.validate().is_err());
        assert!(VivaldiConfig::default().validate().is_ok());
    }

    #[test]
    fn a_star_topology_grows_heights() {
        // Four leaves each 10 ms from a hub and 20 ms from each other: a tree that a plane alone
        // cannot embed (4 points pairwise equidistant), but heights of about 10 ms can.
        let rtt = |i: usize, j: usize| if i == j { 0.0 } else { 20.0 };
        let mut nodes: Vec<Vivaldi> = (0..5u64)
            .map(|seed| Vivaldi::new(VivaldiConfig::default(), seed))
            .collect();
        for round in 0..2000 {
            for i in 0..5 {
                let j = (i + 1 + round % 4) % 5;
                let remote = nodes[j].coordinate().clone();
                nodes[i].observe(&remote, rtt(i, j)).unwrap();
            }
        }
        for i in 0..5 {
            for j in 0..5 {
                if i != j {
                    let e = nodes[i].coordinate().estimate_rtt_ms(nodes[j].coordinate());
                    assert!((e - 20.0).abs() < 2.0, "{i}-{j}: {e}");
                }
            }
        }
    }
}
