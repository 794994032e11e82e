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

    /// A persisted record (a process record, a containerd blob, a metrics sample) could not be
    /// encoded or decoded; `kind` says what it is, `path` where (a file, a digest, a task id).
    #[error("corrupt {kind} {path}: {reason}")]
    CorruptRecord {
        kind: &'static str,
        path: String,
        reason: String,
    },

    /// Several inputs (spec fields, configuration, an imported image's files) are invalid at once;
    /// each entry names the field, the value and what is accepted.
    #[error("{0}")]
    InvalidFields(ValidationErrors),

    /// An object other than a container (an image, a task, a snapshot, a blob) does not exist.
    #[error("{kind} {name:?} not found")]
    ObjectNotFound { kind: &'static str, name: String },

    /// An object other than a container already exists, or is in the wrong state for the request.
    #[error("{kind} {name:?}: {reason}")]
    ObjectConflict {
        kind: &'static str,
        name: String,
        reason: String,
    },

    /// A backend other than the Docker engine (containerd) cannot be reached or did not answer in
    /// time; worth a retry once it is back.
    #[error("{backend} is unavailable: {reason}")]
    BackendUnavailable {
        backend: &'static str,
        reason: String,
    },

    /// Any other failure a backend other than the Docker engine reported, with what was being
    /// done.
    #[error("{context}: {source}")]
    Backend {
        context: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },
}

impl RuntimeError {
    /// Wraps an I/O error with what was being done.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        RuntimeError::Io {
            context: context.into(),
            source,
        }
    }

    /// Wraps a backend failure with what was being done.
    pub fn backend(
        context: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>,
    ) -> Self {
        RuntimeError::Backend {
            context: context.into(),
            source: source.into(),
        }
    }
}

impl From<ValidationErrors> for RuntimeError {
    fn from(errors: ValidationErrors) -> Self {
        RuntimeError::InvalidFields(errors)
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
            RuntimeError::InvalidFields(errors) => Error::Invalid(errors),
            RuntimeError::ObjectNotFound { kind, name } => Error::not_found(kind, name),
            RuntimeError::Conflict { .. } | RuntimeError::ObjectConflict { .. } => {
                Error::Conflict(e.to_string())
            }
            RuntimeError::EngineUnavailable { .. } | RuntimeError::BackendUnavailable { .. } => {
                Error::Unavailable(e.to_string())
            }
            RuntimeError::CorruptRecord { path, reason, .. } => {
                Error::Corrupt { key: path, reason }
            }
            RuntimeError::Backend { context, source } => Error::Backend { context, source },
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

    /// The variants the containerd backend uses keep the `orion_core::Error` kind it returned
    /// directly before it had a `RuntimeError` of its own, so the agent and the API's status codes
    /// see no change. The one exception is a local file error: it was `Error::Io` and is now
    /// `Error::Backend` naming the path, as for the other runtimes; both are internal errors to
    /// the API and nothing matches on either.
    #[test]
    fn containerd_situations_keep_their_core_error_kind() {
        use orion_core::Error;
        let mut fields = ValidationErrors::default();
        fields.push("extra_hosts[1]", "\"bad\"", "name:ip");
        fields.push("dns[0]", "\"x\"", "an IP address");
        let e: Error = RuntimeError::InvalidFields(fields.clone()).into();
        assert!(
            matches!(e, Error::Invalid(ref got) if *got == fields),
            "{e:?}"
        );

        // A single bad field renders its value quoted, as ValidationErrors did before.
        let e: Error = RuntimeError::InvalidSpec {
            field: "name".into(),
            value: "bad name".into(),
            expected: "letters and digits".into(),
        }
        .into();
        let Error::Invalid(got) = e else {
            panic!("expected Invalid");
        };
        assert_eq!(
            (got.0[0].path.as_str(), got.0[0].value.as_str()),
            ("name", "\"bad name\"")
        );

        let e: Error = RuntimeError::NotFound("web".into()).into();
        assert!(matches!(e, Error::NotFound { kind: "container", ref name } if name == "web"));
        let e: Error = RuntimeError::ObjectNotFound {
            kind: "task metrics",
            name: "web".into(),
        }
        .into();
        assert!(matches!(e, Error::NotFound { kind: "task metrics", ref name } if name == "web"));

        let e: Error = RuntimeError::Conflict {
            id: "web".into(),
            reason: "not running; exec needs a running container".into(),
        }
        .into();
        assert!(
            matches!(e, Error::Conflict(ref m) if m.contains("not running")),
            "{e:?}"
        );
        let e: Error = RuntimeError::ObjectConflict {
            kind: "snapshot",
            name: "sha256:ab".into(),
            reason: "already exists in containerd (commit)".into(),
        }
        .into();
        assert!(
            matches!(e, Error::Conflict(ref m) if m.contains("snapshot")),
            "{e:?}"
        );

        let e: Error = RuntimeError::BackendUnavailable {
            backend: "containerd",
            reason: "cannot connect to /run/containerd/containerd.sock".into(),
        }
        .into();
        assert!(
            matches!(e, Error::Unavailable(ref m) if m.contains("containerd.sock")),
            "{e:?}"
        );

        let e: Error = RuntimeError::CorruptRecord {
            kind: "content blob",
            path: "sha256:ab".into(),
            reason: "not the expected JSON".into(),
        }
        .into();
        assert!(
            matches!(e, Error::Corrupt { ref key, ref reason } if key == "sha256:ab" && reason == "not the expected JSON"),
            "{e:?}"
        );

        let e: Error = RuntimeError::backend("containerd: start task \"web\"", "boom").into();
        assert!(matches!(e, Error::Backend { .. }), "{e:?}");
        assert_eq!(e.to_string(), "containerd: start task \"web\": boom");

        let e: Error = RuntimeError::Unsupported {
            backend: "containerd",
            feature: "port publishing".into(),
            hint: "use network_mode host".into(),
        }
        .into();
        assert!(
            matches!(
                e,
                Error::Unsupported {
                    backend: "containerd",
                    ..
                }
            ),
            "{e:?}"
        );
        let e: Error = RuntimeError::ImageUnavailable {
            image: "busybox:1".into(),
            reason: "the containerd backend does not pull".into(),
        }
        .into();
        assert!(matches!(e, Error::ImageUnavailable { .. }), "{e:?}");

        let e: Error = RuntimeError::io(
            "removing /var/lib/orion/containerd/containers/web",
            std::io::Error::from(std::io::ErrorKind::PermissionDenied),
        )
        .into();
        assert!(matches!(e, Error::Backend { .. }), "{e:?}");
        assert!(e.to_string().contains("containers/web"), "{e}");
    }
}
