//! openraft with its log in fsync'd files, and a state machine over any [`Store`](orion_core::store::Store).
//!
//! - [`RaftNode`]: one member of a Raft cluster (start, bootstrap, join, leave, status), with
//!   an autopilot ([`AutopilotConfig`]) that replaces dead voters.
//! - [`RaftStore`]: a `Store` whose writes go through Raft, from any node.
//! - [`FileLogStore`] / [`StateMachine`]: the openraft storage (v2 traits).
//!
//! The wire types ([`Command`], [`CommandResponse`], [`WireError`]) are what the log carries and
//! what nodes send each other.

use std::io::Cursor;

use openraft::BasicNode;
use orion_core::store::{Revision, StoreSnapshot, Txn, TxnResult};
use serde::{Deserialize, Serialize};

mod autopilot;
mod durable;
mod election;
mod identity;
mod leader;
mod log_store;
mod membership;
mod network;
mod node;
mod server;
mod server_tls;
mod state_machine;
mod store;
mod workers;

pub use autopilot::AutopilotConfig;
pub use election::{PreVoteRequest, PreVoteResponse};
pub use leader::{MAX_VOTERS, target_voters};
pub use log_store::{FileLogReader, FileLogStore, SEGMENT_BYTES};
pub use network::NetworkFactory;
pub use node::{RaftConfig, RaftNode, RaftStatus, ReadMode};
pub use state_machine::{SnapshotState, StateMachine};
pub use store::RaftStore;
pub use workers::WORKERS_PREFIX;

/// A node's id in the Raft cluster.
pub type NodeId = u64;

openraft::declare_raft_types!(
    /// Orion's openraft type configuration.
    pub TypeConfig:
        D = Command,
        R = CommandResponse,
        NodeId = NodeId,
        Node = BasicNode,
        SnapshotData = Cursor<Vec<u8>>,
);

/// The openraft instance Orion runs.
pub type OrionRaft = openraft::Raft<TypeConfig>;

/// A write replicated through the log and applied, in log order, to every node's inner store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// A store transaction (puts and deletes are transactions too).
    Txn(Txn),
    /// Compacts history before the revision on every node.
    Compact(Revision),
    /// Replaces the whole state on every node.
    Restore(StoreSnapshot),
    /// Several commands applied one after another in one log entry (each with its own
    /// revision). The leader batches concurrent writes this way; nested batches are refused.
    Batch(Vec<Command>),
    /// A client write with its request id: applied once, however often it is proposed. The state
    /// machine remembers the result of the last [`DEDUP_WINDOW`] ids it applied, and answers a
    /// repeated id with the recorded result without applying it again, so a write whose outcome
    /// was unknown (its leader froze) can be retried against the next leader. A tagged batch or
    /// tagged tagged command is refused.
    Tagged(RequestId, Box<Command>),
}

/// How many applied request ids the state machine remembers (see [`Command::Tagged`]). A retry
/// is deduplicated as long as fewer writes than this were applied cluster-wide between its
/// first proposal and the retry: at 25,000 writes/s that is over 5 s, the default request
/// timeout, after which `RaftStore` stops retrying.
pub const DEDUP_WINDOW: usize = 131_072;

/// Identifies one client write across retries: the node it started on and a random nonce.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RequestId {
    pub origin: NodeId,
    pub nonce: u64,
}

impl RequestId {
    /// A new id for a write started on `origin`.
    pub fn new(origin: NodeId) -> Self {
        Self {
            origin,
            nonce: rand::random(),
        }
    }
}

/// What applying a [`Command`] produced: the transaction result, or the store's error (the same
/// on every node, since apply is deterministic).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandResponse {
    /// For a batch: the last command's result.
    pub result: Result<TxnResult, WireError>,
    /// For a batch: every command's result, in order; empty otherwise.
    pub batch: Vec<Result<TxnResult, WireError>>,
}

impl CommandResponse {
    /// The response to a single (non-batch) command.
    pub fn single(result: Result<TxnResult, WireError>) -> Self {
        Self {
            result,
            batch: Vec::new(),
        }
    }
}

/// An [`orion_core::Error`] in a form that crosses the network and the log, keeping the variant
/// the caller acts on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum WireError {
    Invalid(orion_core::error::ValidationErrors),
    NotFound {
        kind: String,
        name: String,
    },
    Conflict(String),
    Compacted {
        requested: u64,
        compacted: u64,
    },
    Unavailable(String),
    /// This node is not the leader (any more); the sender should look for the leader again.
    NotLeader {
        leader: Option<NodeId>,
        leader_addr: Option<String>,
    },
    Other(String),
}

impl From<&orion_core::Error> for WireError {
    fn from(e: &orion_core::Error) -> Self {
        use orion_core::Error as E;
        match e {
            E::Invalid(v) => WireError::Invalid(v.clone()),
            E::NotFound { kind, name } => WireError::NotFound {
                kind: (*kind).to_owned(),
                name: name.clone(),
            },
            E::Conflict(m) => WireError::Conflict(m.clone()),
            E::Compacted {
                requested,
                compacted,
            } => WireError::Compacted {
                requested: *requested,
                compacted: *compacted,
            },
            E::Unavailable(m) => WireError::Unavailable(m.clone()),
            other => WireError::Other(other.to_string()),
        }
    }
}

impl From<WireError> for orion_core::Error {
    fn from(e: WireError) -> Self {
        use orion_core::Error as E;
        match e {
            WireError::Invalid(v) => E::Invalid(v),
            WireError::NotFound { kind, name } => E::NotFound {
                kind: static_kind(&kind),
                name,
            },
            WireError::Conflict(m) => E::Conflict(m),
            WireError::Compacted {
                requested,
                compacted,
            } => E::Compacted {
                requested,
                compacted,
            },
            WireError::Unavailable(m) => E::Unavailable(m),
            WireError::NotLeader { leader, .. } => E::Unavailable(format!(
                "the node asked is not the Raft leader (leader: {leader:?}); retry"
            )),
            WireError::Other(m) => E::backend("raft apply", m),
        }
    }
}

/// `Error::NotFound` names its kind with a `&'static str`; map the kinds Orion uses back to one.
fn static_kind(kind: &str) -> &'static str {
    const KINDS: [&str; 8] = [
        "key",
        "service",
        "task",
        "node",
        "container",
        "image",
        "member",
        "snapshot",
    ];
    KINDS.into_iter().find(|k| *k == kind).unwrap_or("object")
}
