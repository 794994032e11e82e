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

    /// A local file, directory or socket operation of a Raft node failed.
    #[error("I/O error at {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The Raft node's sled database failed.
    #[error("sled: {context}: {source}")]
    Sled {
        context: String,
        #[source]
        source: sled::Error,
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

    /// openraft reported an error.
    #[error("raft: {0}")]
    Raft(String),

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
    pub(crate) fn sled(context: impl Into<String>, source: sled::Error) -> Self {
        Error::Sled {
            context: context.into(),
            source,
        }
    }

    pub(crate) fn codec(what: impl Into<String>, reason: impl ToString) -> Self {
        Error::Codec {
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
            other @ (Error::GossipProtocol(_)
            | Error::Io { .. }
            | Error::Sled { .. }
            | Error::IdentityMismatch { .. }
            | Error::StorageFormat { .. }
            | Error::Raft(_)
            | Error::Codec { .. }) => CoreError::backend("orion-consensus", other),
        }
    }
}
