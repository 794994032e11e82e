//! The one error type of `orion-core`, shared by every trait in it.
//!
//! Implementations in other crates (Docker, Raft, gossip) keep their own error enums and convert
//! into [`Error`] at the trait boundary, choosing the variant that tells the caller what to do:
//! [`Error::NotFound`] and [`Error::Conflict`] are the caller's to handle, [`Error::Unavailable`]
//! is worth a retry, [`Error::Backend`] is a failure of the component itself.

use std::fmt;

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in `orion-core` and in the trait implementations built on it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Input failed validation. Each entry names the field path, the value and what is accepted.
    #[error(transparent)]
    Invalid(#[from] ValidationErrors),

    /// A spec could not be parsed at all (syntax, wrong type, unknown field).
    #[error(transparent)]
    Parse(#[from] ParseError),

    /// The named object does not exist.
    #[error("{kind} {name:?} not found")]
    NotFound { kind: &'static str, name: String },

    /// A compare-and-swap or uniqueness check failed; re-read and retry.
    #[error("conflict: {0}")]
    Conflict(String),

    /// A watch asked for history that compaction already removed.
    #[error(
        "revision {requested} has been compacted (oldest available is {compacted}); re-list and watch from the current revision"
    )]
    Compacted { requested: u64, compacted: u64 },

    /// An illegal task state transition was attempted.
    #[error("task {task}: illegal transition {from} -> {to}")]
    IllegalTransition {
        task: String,
        from: crate::model::TaskState,
        to: crate::model::TaskState,
    },

    /// An image is absent and could not be obtained.
    #[error("image {image:?} is not available: {reason}")]
    ImageUnavailable { image: String, reason: String },

    /// The runtime or store cannot do what was asked on this backend (never a silent no-op).
    #[error("{backend} does not support {feature}: {hint}")]
    Unsupported {
        backend: &'static str,
        feature: String,
        hint: String,
    },

    /// The component is temporarily unable to serve (no quorum, engine down, shutting down).
    #[error("unavailable: {0}")]
    Unavailable(String),

    /// Stored bytes could not be decoded.
    #[error("corrupt data at {key:?}: {reason}")]
    Corrupt { key: String, reason: String },

    /// A secret could not be sealed or opened (wrong key, altered bytes). Never carries the value.
    #[error("secret {name:?}: {reason}")]
    Secret { name: String, reason: String },

    /// An I/O error from the local machine.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),

    /// A failure inside a backend (sled, Docker, containerd, openraft), with its context.
    #[error("{context}: {source}")]
    Backend {
        context: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },
}

impl Error {
    /// Wraps a backend error with a short description of what was being done.
    pub fn backend(
        context: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>,
    ) -> Self {
        Error::Backend {
            context: context.into(),
            source: source.into(),
        }
    }

    /// Shorthand for [`Error::NotFound`].
    pub fn not_found(kind: &'static str, name: impl Into<String>) -> Self {
        Error::NotFound {
            kind,
            name: name.into(),
        }
    }

    /// True for [`Error::NotFound`].
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::NotFound { .. })
    }
}

/// One validation failure: where, what was there, and what would have been accepted.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FieldError {
    /// Dotted path to the field, with indices: `ports[1].host_port`.
    pub path: String,
    /// The offending value, rendered for humans.
    pub value: String,
    /// What is accepted instead.
    pub expected: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: got {}, expected {}",
            self.path, self.value, self.expected
        )
    }
}

/// All validation failures found in one input (validation does not stop at the first).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ValidationErrors(pub Vec<FieldError>);

impl ValidationErrors {
    /// Records one failure.
    pub fn push(
        &mut self,
        path: impl Into<String>,
        value: impl fmt::Display,
        expected: impl Into<String>,
    ) {
        self.0.push(FieldError {
            path: path.into(),
            value: value.to_string(),
            expected: expected.into(),
        });
    }

    /// `Ok(())` when nothing was recorded.
    pub fn into_result(self) -> Result<(), ValidationErrors> {
        if self.0.is_empty() { Ok(()) } else { Err(self) }
    }

    /// True when nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid spec ({} problem", self.0.len())?;
        if self.0.len() != 1 {
            write!(f, "s")?;
        }
        write!(f, ")")?;
        for e in &self.0 {
            write!(f, "\n  - {e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ValidationErrors {}

/// A spec document that could not be read into the model.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ParseError {
    /// Dotted path to where parsing failed (empty for syntax errors at the top).
    pub path: String,
    /// What went wrong, including a "did you mean" hint for unknown fields.
    pub message: String,
    /// 1-based line and column, when the format reports them.
    pub location: Option<(usize, usize)>,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("cannot parse spec")?;
        if let Some((line, col)) = self.location {
            write!(f, " at line {line}, column {col}")?;
        }
        if !self.path.is_empty() {
            write!(f, " (field {})", self.path)?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ParseError {}
