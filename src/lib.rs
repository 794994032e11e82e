//! # Orion
//!
//! A library-first, network-aware container orchestrator. This crate is a facade: it re-exports the
//! component crates behind one feature each, so `cargo add orion` gives you a working set and
//! `default-features = false` lets you pick exactly what you embed.
//!
//! | feature     | default | re-exports                                                         |
//! |-------------|---------|--------------------------------------------------------------------|
//! | `core`      | yes     | [`core`]: model, the four traits, MemoryStore, scheduler, reconciler |
//! | `sled`      | yes     | enables `core::store::SledStore` (`core` alone does not build sled)|
//! | `runtime`   | yes     | [`runtime`]: Docker and process runtimes                           |
//! | `containerd`| no      | adds `runtime::containerd` (needs `protoc` to build)                |
//! | `dns`       | no      | [`dns`]: the DNS service discovery server (hickory-server)          |
//! | `consensus` | no      | [`consensus`]: openraft-replicated `RaftStore`, gossip membership   |
//! | `netscore`  | no      | [`netscore`]: network probes and network-aware scorers             |
//! | `testing`   | no      | `core::testing`: conformance suites and fakes                      |
//! | `full`      | no      | everything above                                                   |

#[cfg(feature = "core")]
pub use orion_core as core;

#[cfg(feature = "consensus")]
pub use orion_consensus as consensus;

#[cfg(feature = "netscore")]
pub use orion_netscore as netscore;

#[cfg(feature = "runtime")]
pub use orion_runtime as runtime;

#[cfg(feature = "dns")]
pub use orion_dns as dns;

/// The README's Rust examples, compiled and run as doctests so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
