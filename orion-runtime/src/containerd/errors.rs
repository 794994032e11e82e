//! Turning containerd's gRPC statuses into [`orion_core::Error`].

use containerd_client::tonic::{Code, Status};
use orion_core::Error;

/// Maps a gRPC status from an operation on object `kind` named `name`.
///
/// `NotFound` becomes [`Error::NotFound`], `AlreadyExists`/`FailedPrecondition` a
/// [`Error::Conflict`], `Unavailable` an [`Error::Unavailable`] (worth a retry), anything else an
/// [`Error::Backend`] saying what was being done.
pub(crate) fn map_status(status: Status, doing: &str, kind: &'static str, name: &str) -> Error {
    match status.code() {
        Code::NotFound => Error::not_found(kind, name),
        Code::AlreadyExists => Error::Conflict(format!(
            "{kind} {name:?} already exists in containerd ({doing})"
        )),
        Code::FailedPrecondition => {
            Error::Conflict(format!("{doing} {kind} {name:?}: {}", status.message()))
        }
        Code::Unavailable => Error::Unavailable(format!(
            "containerd is unavailable while trying to {doing} {kind} {name:?}: {}",
            status.message()
        )),
        _ => Error::backend(format!("containerd: {doing} {kind} {name:?}"), status),
    }
}

/// A closure for `map_err` around one call.
pub(crate) fn on<'a>(
    doing: &'a str,
    kind: &'static str,
    name: &'a str,
) -> impl FnOnce(Status) -> Error + 'a {
    move |status| map_status(status, doing, kind, name)
}

/// True when the status says the object is not there (or, for a process, already gone).
pub(crate) fn is_gone(status: &Status) -> bool {
    status.code() == Code::NotFound
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_map_to_what_the_caller_should_do() {
        assert!(map_status(Status::not_found("x"), "get", "container", "c").is_not_found());
        assert!(matches!(
            map_status(Status::already_exists("x"), "create", "container", "c"),
            Error::Conflict(_)
        ));
        assert!(matches!(
            map_status(Status::unavailable("x"), "get", "container", "c"),
            Error::Unavailable(_)
        ));
        let err = map_status(Status::internal("boom"), "start", "task", "c");
        assert!(matches!(err, Error::Backend { .. }));
        assert!(err.to_string().contains("start task \"c\""), "{err}");
    }
}
