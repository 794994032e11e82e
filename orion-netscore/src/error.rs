//! The crate's one error type.

/// Everything that can go wrong in orion-netscore.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An RTT matrix file could not be parsed; `line` and `column` are 1-based.
    #[error("rtt file line {line}, column {column}: {reason}")]
    RttFile {
        line: usize,
        column: usize,
        reason: String,
    },
    /// A value given to the library (a setting, a sample) is outside what it accepts.
    #[error("invalid {what}: {reason}")]
    Invalid { what: &'static str, reason: String },
    /// A probe to a peer failed (timeout, refused, transport error).
    #[error("probe to {peer} failed: {reason}")]
    Probe { peer: String, reason: String },
    /// A placement-simulation graph that cannot be used: what was wrong and what is accepted.
    #[error("invalid graph: {0}")]
    InvalidGraph(String),
    /// An RTT matrix that cannot be used: what was wrong and what is accepted.
    #[error("invalid RTT matrix: {0}")]
    InvalidMatrix(String),
    /// The store refused a write or a read.
    #[error(transparent)]
    Store(#[from] orion_core::Error),
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An [`Error::Invalid`] for `what`, saying why.
    pub fn invalid(what: &'static str, reason: impl Into<String>) -> Self {
        Self::Invalid {
            what,
            reason: reason.into(),
        }
    }
}
