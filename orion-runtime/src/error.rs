//! The one error enum of `orion-runtime`, converted into [`orion_core::Error`] at the trait
//! boundary.

use orion_core::error::ValidationErrors;

/// `Result` with [`RuntimeError`].
pub type Result<T, E = RuntimeError> = std::result::Result<T, E>;

/// Everything that can go wrong in a runtime of this crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RuntimeError {
    /// The image (for the process runtime: the program) is absent and could not be obtained.
    #[error("image {image:?} is not available: {reason}")]
    ImageUnavailable { image: String, reason: String },

    /// No container with this id (or name) exists on this runtime.
    #[error("container {0:?} not found")]
    NotFound(String),

    /// The backend cannot do what the spec asks; never silently ignored.
    #[error("{backend} runtime does not support {feature}: {hint}")]
    Unsupported {
        backend: &'static str,
        feature: String,
        hint: String,
    },

    /// A spec field has a value no runtime could honour (what was wrong, and what is accepted).
    #[error("invalid container spec: {field} = {value:?}: expected {expected}")]
    InvalidSpec {
        field: String,
        value: String,
        expected: String,
    },

    /// The container exists but is in the wrong state for the request (name taken, not running).
    #[error("container {id:?}: {reason}")]
    Conflict { id: String, reason: String },

    /// The container was created but its command could not be started; it has been removed.
    #[error("container {name:?} failed to start: {reason}")]
    StartFailed { name: String, reason: String },

    /// The Docker engine could not be reached.
    #[error(
        "Docker engine unreachable ({reason}); start it (systemctl start docker) or set DOCKER_HOST"
    )]
    EngineUnavailable { reason: String },

    /// Any other error the Docker engine answered.
    #[cfg(feature = "docker")]
    #[error("docker: {context}: {source}")]
    Docker {
        context: String,
        #[source]
        source: bollard::errors::Error,
    },

    /// A local I/O failure (state directory, log files, /proc).
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },

    /// A persisted process record could not be decoded.
    #[error("corrupt process record {path}: {reason}")]
    CorruptRecord { path: String, reason: String },
}

impl RuntimeError {
    /// Wraps an I/O error with what was being done.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        RuntimeError::Io {
            context: context.into(),
            source,
        }
    }
}

impl From<RuntimeError> for orion_core::Error {
    fn from(e: RuntimeError) -> Self {
        use orion_core::Error;
        match e {
            RuntimeError::ImageUnavailable { image, reason } => {
                Error::ImageUnavailable { image, reason }
            }
            RuntimeError::NotFound(id) => Error::not_found("container", id),
            RuntimeError::Unsupported {
                backend,
                feature,
                hint,
            } => Error::Unsupported {
                backend,
                feature,
                hint,
            },
            RuntimeError::InvalidSpec {
                field,
                value,
                expected,
            } => {
                let mut errors = ValidationErrors::default();
                errors.push(field, format!("{value:?}"), expected);
                Error::Invalid(errors)
            }
            RuntimeError::Conflict { .. } => Error::Conflict(e.to_string()),
            RuntimeError::EngineUnavailable { .. } => Error::Unavailable(e.to_string()),
            RuntimeError::CorruptRecord { path, reason } => Error::Corrupt { key: path, reason },
            other => {
                let context = match &other {
                    RuntimeError::StartFailed { name, .. } => {
                        format!("starting container {name:?}")
                    }
                    _ => "runtime".to_owned(),
                };
                Error::backend(context, other)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variants_map_to_the_core_error_the_caller_acts_on() {
        let e: orion_core::Error = RuntimeError::ImageUnavailable {
            image: "x:1".into(),
            reason: "no registry".into(),
        }
        .into();
        assert!(
            matches!(e, orion_core::Error::ImageUnavailable { ref image, .. } if image == "x:1")
        );
        let e: orion_core::Error = RuntimeError::NotFound("abc".into()).into();
        assert!(e.is_not_found());
        let e: orion_core::Error = RuntimeError::InvalidSpec {
            field: "ports[0].host_port".into(),
            value: "8080".into(),
            expected: "no ports with network mode host".into(),
        }
        .into();
        assert!(e.to_string().contains("ports[0].host_port"), "{e}");
        let e: orion_core::Error = RuntimeError::EngineUnavailable {
            reason: "socket missing".into(),
        }
        .into();
        assert!(matches!(e, orion_core::Error::Unavailable(_)));
        let e: orion_core::Error = RuntimeError::StartFailed {
            name: "web".into(),
            reason: "exec: no such file".into(),
        }
        .into();
        assert!(e.to_string().contains("no such file"), "{e}");
    }
}
