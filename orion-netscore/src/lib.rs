//! orion-netscore: how the network between Orion's nodes is measured and estimated.
//!
//! - [`vivaldi`]: Vivaldi network coordinates with a height component (Dabek et al. 2004), which
//!   estimate the RTT of the pairs that are never probed.
//! - [`rtt_file`]: the RTT matrix file format the simulation program reads.
//! - [`zones`]: zones from latency, for nodes without a `zone` label.
//! - [`probe`]: the prober every node runs: RTT (p50, p90, jitter), loss and bandwidth to a
//!   bounded random subset of peers per round, smoothed, published only on real change.
//! - [`scoring`]: the [`scoring::NetworkScorer`] (the `c * network` term of
//!   `score = a*cpu + b*memory + c*network`), the [`scoring::NetworkRulesFilter`] (hard
//!   `maxLatency`, `minBandwidth`, `maxLoss` rules), the network-aware pipeline and a
//!   [`orion_core::scheduler::Catalog`] with their names.
//! - [`placement_sim`]: places a service graph on nodes whose RTT matrix is given, with the
//!   network-aware pipeline and with the resource-only default, and compares the latency of the
//!   graph's calls.
//! - [`synthetic`]: RTT matrices with known structure (grid, zones, triangle-inequality
//!   violations, missing pairs) for tests, benches and the `netsim` example.
//!
//! The simulation program `examples/netsim.rs` replays an RTT matrix file through [`vivaldi`]
//! (`cargo run -p orion-netscore --example netsim --release -- vivaldi --rtt FILE`) and a
//! service graph through [`placement_sim`] (`... -- placement --rtt FILE --graph FILE`).
//!
//! ```
//! use orion_netscore::vivaldi::{Vivaldi, VivaldiConfig};
//!
//! let mut a = Vivaldi::new(VivaldiConfig::default(), 1);
//! let mut b = Vivaldi::new(VivaldiConfig::default(), 2);
//! for _ in 0..200 {
//!     let (ca, cb) = (a.coordinate().clone(), b.coordinate().clone());
//!     a.observe(&cb, 40.0).unwrap();
//!     b.observe(&ca, 40.0).unwrap();
//! }
//! let estimate = a.coordinate().estimate_rtt_ms(b.coordinate());
//! assert!((estimate - 40.0).abs() < 2.0, "estimate {estimate}");
//! ```

pub mod error;
pub mod placement_sim;
pub mod probe;
pub mod rtt_file;
pub mod scoring;
pub mod synthetic;
pub mod vivaldi;
pub mod zones;

pub use error::{Error, Result};
