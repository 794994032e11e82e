//! The one error enum of `orion-consensus`.
//!
//! Everything converts into [`orion_core::Error`] at the `Store` boundary:
//! [`ConsensusError::Unavailable`] and transport failures become `Error::Unavailable` (worth a
//! retry), a store error passes through unchanged, and the rest become `Error::Backend`.

use std::path::PathBuf;

/// `Result` with [`ConsensusError`].
pub type Result<T, E = ConsensusError> = std::result::Result<T, E>;

/// How a node-to-node request failed, so callers can tell "never delivered" from "outcome
/// unknown".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportFailure {
    /// The request never reached the peer (connection refused, or a link cut by the fault layer).
    /// Retrying cannot duplicate anything.
    NotDelivered,
    /// The request may have reached the peer, but no usable answer came back (timeout, dropped
    /// response, broken connection). The outcome is unknown.
    NoAnswer,
    /// The peer answered with an HTTP error status (a 4xx means it rejected the message).
    Rejected(u16),
    /// The peer answered with a body that could not be decoded.
    BadAnswer,
}

/// Everything that can go wrong in `orion-consensus`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConsensusError {
    /// A local file or directory operation failed.
    #[error("I/O error at {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The embedded sled database failed.
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

    /// A configuration value is out of range.
    #[error("invalid raft config: {field} = {value}: expected {expected}")]
    Config {
        field: &'static str,
        value: String,
        expected: String,
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

    /// Bytes (a message, a log entry, a snapshot, the identity file) could not be decoded.
    #[error("cannot decode {what}: {reason}")]
    Codec { what: String, reason: String },

    /// The inner store failed.
    #[error(transparent)]
    Store(#[from] orion_core::Error),
}

impl ConsensusError {
    pub(crate) fn sled(context: impl Into<String>, source: sled::Error) -> Self {
        ConsensusError::Sled {
            context: context.into(),
            source,
        }
    }

    pub(crate) fn codec(what: impl Into<String>, reason: impl ToString) -> Self {
        ConsensusError::Codec {
            what: what.into(),
            reason: reason.to_string(),
        }
    }

    pub(crate) fn raft(e: impl std::fmt::Display) -> Self {
        ConsensusError::Raft(e.to_string())
    }
}

impl From<ConsensusError> for orion_core::Error {
    fn from(e: ConsensusError) -> Self {
        match e {
            ConsensusError::Store(inner) => inner,
            ConsensusError::Unavailable(msg) => orion_core::Error::Unavailable(msg),
            t @ ConsensusError::Transport { .. } => orion_core::Error::Unavailable(t.to_string()),
            other => orion_core::Error::backend("raft", other),
        }
    }
}
