//! orion-consensus: replicated state and membership for Orion.
//!
//! - [`raft`]: openraft with its log and vote in fdatasync'd files, a state machine that applies
//!   store writes to any inner [`orion_core::store::Store`], and [`raft::RaftStore`], itself a
//!   `Store`, whose writes are committed by a quorum and whose reads are linearizable by default.
//! - [`transport`]: the one place where node-to-node Raft connections are made, with a
//!   [`transport::FaultInjector`] for tests and chaos runs.
//! - [`gossip`]: SWIM membership.
//! - [`cluster_id`]: the cluster id every Raft frame and gossip datagram carries.
//! - [`cluster`]: node-level glue: Raft ids from node names, leadership watch, joining through
//!   any live member.
//! - [`security`]: the cluster CA, node certificates for mutual TLS, their rotation, join
//!   tokens and the cluster key (see `docs/security.md`).
//! - [`codec`]: the binary encoding of the Raft log, snapshots and wire frames.
//!
//! See `docs/consensus.md` and `docs/membership.md`.

pub mod cluster;
pub mod cluster_id;
pub mod codec;
pub mod error;
pub mod gossip;
pub mod raft;
pub mod security;
pub mod transport;

pub use error::{Error, Result};
