//! Built-in scorers: preferences among feasible nodes, each in `[0, 1]`, higher is better.
//!
//! | name | prefers | class |
//! |---|---|---|
//! | `least_allocated` | most free cpu and memory after placement (spread load) | fixed |
//! | `least_allocated_cpu` / `_memory` | the same, one resource: the formula's cpu and memory terms | cpu / memory |
//! | `most_allocated` | least free cpu and memory after placement (bin-pack) | fixed |
//! | `round_robin` | the node after the last one placed on, in view order | fixed |
//! | `epvm` | the smallest marginal cost `sum a^u_after - a^u_before` (E-PVM) | fixed |
//! | `spread` | zones (or the `spread_by` label) and nodes with fewer tasks of the service | fixed |
//! | `zone_affinity` | the spec's preferred zones (`affinity: [{type: zone, required: false}]`) | fixed |
//!
//! Network scorers live in `orion-netscore` and plug in with class
//! [`ScorerWeightClass::Network`](super::ScorerWeightClass::Network).
//! Each scorer file is laid out the same way: its `NAME`, the type, the trait impl, the
//! constructor, the tests.

mod epvm;
mod least_allocated;
mod most_allocated;
mod round_robin;
mod spread;
mod zone_affinity;

pub use epvm::Epvm;
pub use least_allocated::LeastAllocated;
pub use most_allocated::MostAllocated;
pub use round_robin::RoundRobin;
pub use spread::Spread;
pub use zone_affinity::ZoneAffinity;

use super::{NodeView, PlacementRequest, Scorer};
use crate::error::{Result, ValidationErrors};

/// Names accepted by [`by_name`].
pub const NAMES: [&str; 8] = [
    least_allocated::NAME,
    least_allocated::NAME_CPU,
    least_allocated::NAME_MEMORY,
    most_allocated::NAME,
    round_robin::NAME,
    epvm::NAME,
    spread::NAME,
    zone_affinity::NAME,
];

/// A built-in scorer by its name (see [`NAMES`]); an unknown name is an
/// [`Error::Invalid`](crate::Error::Invalid) that lists the accepted ones.
pub fn by_name(name: &str) -> Result<Box<dyn Scorer>> {
    Ok(match name {
        least_allocated::NAME => Box::new(LeastAllocated::new()),
        least_allocated::NAME_CPU => Box::new(LeastAllocated::cpu()),
        least_allocated::NAME_MEMORY => Box::new(LeastAllocated::memory()),
        most_allocated::NAME => Box::new(MostAllocated::new()),
        round_robin::NAME => Box::new(RoundRobin::new()),
        epvm::NAME => Box::new(Epvm::new()),
        spread::NAME => Box::new(Spread::new()),
        zone_affinity::NAME => Box::new(ZoneAffinity::new()),
        _ => {
            let mut errs = ValidationErrors::default();
            errs.push(
                "scheduler.scorer",
                format!("{name:?}"),
                format!("one of {}", NAMES.join(", ")),
            );
            return Err(errs.into());
        }
    })
}

/// Which resources a resource scorer looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResourceTerms {
    Cpu,
    Memory,
    /// The mean of the cpu and memory terms.
    CpuAndMemory,
}

/// `(allocated before, request, capacity)` of cpu and memory, as `f64`.
fn amounts(req: &PlacementRequest<'_>, node: &NodeView) -> [(f64, f64, f64); 2] {
    let cap = node.node.capacity;
    let used = node.allocated;
    let need = req.resources;
    [
        (
            used.cpu_millicores as f64,
            need.cpu_millicores as f64,
            cap.cpu_millicores as f64,
        ),
        (
            used.memory_bytes as f64,
            need.memory_bytes as f64,
            cap.memory_bytes as f64,
        ),
    ]
}

/// The mean over the selected resources of `f(used, need, capacity)`; resources with zero
/// capacity are skipped, and `0.0` when none is left.
fn mean_over(
    terms: ResourceTerms,
    req: &PlacementRequest<'_>,
    node: &NodeView,
    f: impl Fn(f64, f64, f64) -> f64,
) -> f64 {
    let [cpu, mem] = amounts(req, node);
    let pick: &[(f64, f64, f64)] = match terms {
        ResourceTerms::Cpu => &[cpu],
        ResourceTerms::Memory => &[mem],
        ResourceTerms::CpuAndMemory => &[cpu, mem],
    };
    let (sum, count) = pick
        .iter()
        .filter(|(_, _, cap)| *cap > 0.0)
        .fold((0.0, 0u32), |(s, c), &(used, need, cap)| {
            (s + f(used, need, cap), c + 1)
        });
    if count == 0 {
        0.0
    } else {
        sum / f64::from(count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_builds_its_scorer() {
        for name in NAMES {
            assert_eq!(by_name(name).unwrap().name(), name);
        }
    }

    #[test]
    fn unknown_names_list_the_accepted_ones() {
        let err = by_name("least_loaded").unwrap_err().to_string();
        assert!(err.contains("\"least_loaded\""), "{err}");
        assert!(err.contains("least_allocated, "), "{err}");
        assert!(err.contains("epvm"), "{err}");
    }
}
