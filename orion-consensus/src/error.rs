//! The one error enum of `orion-consensus`; it converts into [`orion_core::Error`] at the trait
//! boundary.

use orion_core::error::{Error as CoreError, ValidationErrors};

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

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
}

impl From<Error> for CoreError {
    fn from(err: Error) -> Self {
        match err {
            Error::GossipConfig {
                field,
                value,
                expected,
            } => {
                let mut errors = ValidationErrors::default();
                errors.push(field, value, expected);
                CoreError::Invalid(errors)
            }
            Error::GossipIo { source, .. } => CoreError::Io(source),
            Error::GossipStopped => CoreError::Unavailable(err.to_string()),
            other => CoreError::backend("gossip membership", other),
        }
    }
}
