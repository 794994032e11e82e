//! The one error enum of `orion-consensus` (Raft and gossip); it converts into
//! [`orion_core::Error`] at the trait boundary.
//!
//! Conversion: config errors become `Error::Invalid`, "retry later" conditions (no quorum,
//! transport failures, stopped gossip) become `Error::Unavailable`, a store error passes
//! through unchanged, and the rest become `Error::Backend`.

use std::path::PathBuf;

use orion_core::error::{Error as CoreError, ValidationErrors};

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// How a node-to-node request failed, so callers can tell "never delivered" from "outcome
/// unknown".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportFailure {
    /// The request never reached the peer (connection refused, or a link cut by the fault layer).
    /// Retrying cannot duplicate anything.
    NotDelivered,
    /// The request may have reached the peer, but no usable answer came back (timeout, dropped
    /// answer, broken connection). The outcome is unknown.
    NoAnswer,
    /// The peer answered with an HTTP error status (a 4xx means it rejected the message).
    Rejected(u16),
    /// The peer answered with a body that could not be decoded.
    BadAnswer,
}

/// Everything that can go wrong in `orion-consensus`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A gossip setting is out of range: names the field, the value and what is accepted.
    #[error("invalid gossip config: {field}: got {value}, expected {expected}")]
    GossipConfig {
        field: &'static str,
        value: String,
        expected: String,
    },

    /// The gossip socket could not be bound or used.
    #[error("gossip transport on {addr}: {source}")]
    GossipIo {
        addr: String,
        #[source]
        source: std::io::Error,
    },

    /// The SWIM state machine refused an operation (the message says which).
    #[error("gossip protocol: {0}")]
    GossipProtocol(String),

    /// The gossip membership was shut down (after `leave()` or on drop).
    #[error("gossip membership has stopped; start a new one to rejoin")]
    GossipStopped,

    /// A Raft setting is out of range: names the field, the value and what is accepted.
    #[error("invalid raft config: {field}: got {value}, expected {expected}")]
    RaftConfig {
        field: &'static str,
        value: String,
        expected: String,
    },

    /// A fault given to the [`crate::transport::FaultInjector`] is malformed: names the field,
    /// the value and what is accepted.
    #[error("invalid fault: {field}: got {value}, expected {expected}")]
    InvalidFault {
        field: &'static str,
        value: String,
        expected: String,
    },

    /// A local file, directory or socket operation of a Raft node failed.
    #[error("I/O error at {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The data dir was created for another cluster or another node id.
    #[error(
        "data dir {dir} belongs to {found}, but this node was started as {expected}; \
         start with the matching cluster id and node id, or with an empty data dir"
    )]
    IdentityMismatch {
        dir: PathBuf,
        found: String,
        expected: String,
    },

    /// The data dir was written in another on-disk format than this build reads.
    #[error(
        "data dir {dir} holds a Raft log in storage format {found}, but this build reads format \
         {expected}; move the dir aside and start with an empty one: the node rejoins and \
         catches up from the leader's snapshot"
    )]
    StorageFormat {
        dir: PathBuf,
        found: u32,
        expected: u32,
    },

    /// A peer (or a message) belongs to another cluster: names both cluster ids.
    #[error(
        "cluster id mismatch: this node is in cluster {ours}, but {peer} is in cluster {theirs}; \
         nodes of different clusters refuse each other (a node whose data dir was lost and that \
         bootstrapped again starts a new cluster: start it with --join instead)"
    )]
    ClusterMismatch {
        ours: String,
        theirs: String,
        peer: String,
    },

    /// A cluster id from a file, a flag or a peer is not acceptable.
    #[error(
        "invalid cluster id {value:?}: expected 1 to 64 characters of a-z, A-Z, 0-9, '-', '_' \
         or '.' (Orion mints UUIDs such as 0b7e7c8e-3d2a-4c1f-9f3e-1a2b3c4d5e6f)"
    )]
    InvalidClusterId { value: String },

    /// Another live member already uses this node id: this node stopped instead of taking over
    /// its addresses.
    #[error(
        "node id {node_id:?} is already used by a live member (gossip {holder_gossip}, api \
         {holder_api:?}, raft {holder_raft:?}); stop that node first, or start this one with \
         another node id"
    )]
    DuplicateNodeId {
        node_id: String,
        holder_gossip: String,
        holder_api: String,
        holder_raft: String,
    },

    /// openraft reported an error.
    #[error("raft: {0}")]
    Raft(String),

    /// Key, certificate or TLS material could not be created, read or used: says which and why.
    #[error("security: {what}: {reason}")]
    Security { what: String, reason: String },

    /// A join token's CA digest does not match the CA the node at `addr` presented: the join
    /// was aborted before the token was sent.
    #[error(
        "the node at {addr} presented a CA whose SHA-256 digest is {found}, but the join token \
         expects {expected}; the join was aborted before sending the token (check the token, \
         or that {addr} is a member of the intended cluster)"
    )]
    CaDigestMismatch {
        addr: String,
        expected: String,
        found: String,
    },

    /// A join token, or an admission request, was refused: names why.
    #[error("join refused: {0}")]
    JoinRefused(String),

    /// A request to a peer failed.
    #[error("request to {target} failed ({failure:?}): {detail}")]
    Transport {
        target: String,
        failure: TransportFailure,
        detail: String,
    },

    /// No leader, no quorum, or shutting down: retry later.
    #[error("unavailable: {0}")]
    Unavailable(String),

    /// Bytes (a log entry, a snapshot, the identity file) could not be decoded.
    #[error("cannot decode {what}: {reason}")]
    Codec { what: String, reason: String },

    /// The inner store failed.
    #[error(transparent)]
    Store(#[from] CoreError),
}

impl Error {
    pub(crate) fn codec(what: impl Into<String>, reason: impl ToString) -> Self {
        Error::Codec {
            what: what.into(),
            reason: reason.to_string(),
        }
    }

    pub fn security(what: impl Into<String>, reason: impl ToString) -> Self {
        Error::Security {
            what: what.into(),
            reason: reason.to_string(),
        }
    }

    pub(crate) fn raft(e: impl std::fmt::Display) -> Self {
        Error::Raft(e.to_string())
    }
}

impl From<Error> for CoreError {
    fn from(err: Error) -> Self {
        match err {
            Error::GossipConfig {
                field,
                value,
                expected,
            }
            | Error::RaftConfig {
                field,
                value,
                expected,
            }
            | Error::InvalidFault {
                field,
                value,
                expected,
            } => {
                let mut errors = ValidationErrors::default();
                errors.push(field, value, expected);
                CoreError::Invalid(errors)
            }
            Error::GossipIo { source, .. } => CoreError::Io(source),
            Error::Store(inner) => inner,
            Error::Unavailable(msg) => CoreError::Unavailable(msg),
            Error::GossipStopped | Error::Transport { .. } => {
                CoreError::Unavailable(err.to_string())
            }
            Error::InvalidClusterId { ref value } => {
                let mut errors = ValidationErrors::default();
                errors.push("cluster_id", value.clone(), err.to_string());
                CoreError::Invalid(errors)
            }
            other @ (Error::GossipProtocol(_)
            | Error::ClusterMismatch { .. }
            | Error::DuplicateNodeId { .. }
            | Error::Io { .. }
            | Error::IdentityMismatch { .. }
            | Error::StorageFormat { .. }
            | Error::Raft(_)
            | Error::Security { .. }
            | Error::CaDigestMismatch { .. }
            | Error::JoinRefused(_)
            | Error::Codec { .. }) => CoreError::backend("orion-consensus", other),
        }
    }
}
