//! Turning containerd's gRPC statuses into [`RuntimeError`].

use containerd_client::tonic::{Code, Status};

use super::NAME;
use crate::error::RuntimeError;

/// Maps a gRPC status from an operation on object `kind` named `name`.
///
/// `NotFound` becomes [`RuntimeError::NotFound`] for a container and
/// [`RuntimeError::ObjectNotFound`] for anything else, `AlreadyExists`/`FailedPrecondition` a
/// [`RuntimeError::ObjectConflict`], `Unavailable` a [`RuntimeError::BackendUnavailable`] (worth a
/// retry), anything else a [`RuntimeError::Backend`] saying what was being done. At the trait
/// boundary these become `NotFound`, `Conflict`, `Unavailable` and `Backend` of
/// [`orion_core::Error`].
pub(crate) fn map_status(
    status: Status,
    doing: &str,
    kind: &'static str,
    name: &str,
) -> RuntimeError {
    match status.code() {
        Code::NotFound if kind == "container" => RuntimeError::NotFound(name.to_owned()),
        Code::NotFound => RuntimeError::ObjectNotFound {
            kind,
            name: name.to_owned(),
        },
        Code::AlreadyExists => RuntimeError::ObjectConflict {
            kind,
            name: name.to_owned(),
            reason: format!("already exists in containerd ({doing})"),
        },
        Code::FailedPrecondition => RuntimeError::ObjectConflict {
            kind,
            name: name.to_owned(),
            reason: format!("cannot {doing}: {}", status.message()),
        },
        Code::Unavailable => RuntimeError::BackendUnavailable {
            backend: NAME,
            reason: format!(
                "while trying to {doing} {kind} {name:?}: {}",
                status.message()
            ),
        },
        _ => RuntimeError::backend(format!("containerd: {doing} {kind} {name:?}"), status),
    }
}

/// A closure for `map_err` around one call.
pub(crate) fn on<'a>(
    doing: &'a str,
    kind: &'static str,
    name: &'a str,
) -> impl FnOnce(Status) -> RuntimeError + 'a {
    move |status| map_status(status, doing, kind, name)
}

/// True when the status says the object is not there (or, for a process, already gone).
pub(crate) fn is_gone(status: &Status) -> bool {
    status.code() == Code::NotFound
}

#[cfg(test)]
mod tests {
    use orion_core::Error;

    use super::*;

    fn core(status: Status, doing: &str, kind: &'static str, name: &str) -> Error {
        map_status(status, doing, kind, name).into()
    }

    #[test]
    fn codes_map_to_what_the_caller_should_do() {
        let err = core(Status::not_found("x"), "get", "container", "c");
        assert!(
            matches!(err, Error::NotFound { kind: "container", ref name } if name == "c"),
            "{err:?}"
        );
        let err = core(Status::not_found("x"), "get", "image", "busybox:1");
        assert!(
            matches!(err, Error::NotFound { kind: "image", ref name } if name == "busybox:1"),
            "{err:?}"
        );
        let err = core(Status::already_exists("x"), "create", "container", "c");
        assert!(matches!(err, Error::Conflict(_)), "{err:?}");
        assert!(err.to_string().contains("already exists"), "{err}");
        let err = core(
            Status::failed_precondition("not running"),
            "exec in",
            "task",
            "c",
        );
        assert!(matches!(err, Error::Conflict(_)), "{err:?}");
        assert!(err.to_string().contains("not running"), "{err}");
        let err = core(Status::unavailable("x"), "get", "container", "c");
        assert!(matches!(err, Error::Unavailable(_)), "{err:?}");
        let err = core(Status::internal("boom"), "start", "task", "c");
        assert!(matches!(err, Error::Backend { .. }), "{err:?}");
        assert!(err.to_string().contains("start task \"c\""), "{err}");
    }
}
