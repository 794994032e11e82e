//! Trace context carried with the work, so that an embedder's OpenTelemetry layer can show one
//! trace per deploy: API write -> store commit -> reconcile and schedule -> assignment commit ->
//! agent start -> running.
//!
//! This crate depends on no tracing backend. An embedder [`install`]s a [`Propagator`] (orion-bin
//! does with its `otel` feature) that turns a [`tracing::Span`] into a W3C `traceparent` and back.
//! The context travels in the store: the API writes the service's `traceparent` under
//! `/orion/traces/<service>` ([`crate::store::ClusterStore::put_trace_context`]); the reconcile
//! controller stamps it onto the tasks it creates for that service ([`Task::trace_parent`],
//! replaced by its own commit span's context); the agent starts the task under that context.
//!
//! **Contract.** Until a propagator is installed, [`enabled`] is false, [`span`] makes no span,
//! [`traceparent`] is `None` and nothing is written: the node behaves exactly as without tracing.
//! Every task created after a traced write of its service carries that write's trace (a scale-up
//! or a refill later on joins the latest write's trace).
//!
//! Span names (the [`names`] constants) are part of the contract: dashboards and the tests use
//! them.
//!
//! [`Task::trace_parent`]: crate::model::Task::trace_parent

use std::sync::OnceLock;

use tracing::Span;

/// Length of a version-00 W3C `traceparent` (`00-<32 hex>-<16 hex>-<2 hex>`).
pub const TRACEPARENT_LEN: usize = 55;

/// The spans of one deploy, in order.
pub mod names {
    /// The API handler that wrote the service (create, replace or scale).
    pub const API_WRITE: &str = "orion.api.write";
    /// The service write committed through the store (Raft under `RaftStore`).
    pub const STORE_COMMIT: &str = "orion.store.commit";
    /// The reconcile round that created the service's tasks.
    pub const RECONCILE: &str = "orion.reconcile";
    /// The placement decision of that round for the service.
    pub const SCHEDULE: &str = "orion.schedule";
    /// The commit of the tasks and their assignments.
    pub const ASSIGNMENT_COMMIT: &str = "orion.assignment.commit";
    /// An agent starting one task (image check, create, start).
    pub const AGENT_START: &str = "orion.agent.start";
    /// The task reported running (the store write).
    pub const TASK_RUNNING: &str = "orion.task.running";
}

/// Turns spans into W3C `traceparent`s and back; installed once per process.
pub trait Propagator: Send + Sync + 'static {
    /// The `traceparent` of `span`, `None` when it is not recorded.
    fn traceparent(&self, span: &Span) -> Option<String>;
    /// Makes `traceparent` the parent of `span`, which must not have been entered yet.
    fn set_parent(&self, span: &Span, traceparent: &str);
}

static PROPAGATOR: OnceLock<Box<dyn Propagator>> = OnceLock::new();

/// Installs `propagator` for this process; false (and `propagator` dropped) when one already is.
pub fn install(propagator: Box<dyn Propagator>) -> bool {
    PROPAGATOR.set(propagator).is_ok()
}

/// True once a propagator is installed.
pub fn enabled() -> bool {
    PROPAGATOR.get().is_some()
}

/// `make()` when tracing is [`enabled`], otherwise a disabled span (nothing recorded, nothing
/// added to log lines).
pub fn span(make: impl FnOnce() -> Span) -> Span {
    if enabled() { make() } else { Span::none() }
}

/// `make()` as in [`span`], with `parent` (a `traceparent`) as its parent when it is valid.
pub fn child_of(parent: Option<&str>, make: impl FnOnce() -> Span) -> Span {
    let Some(propagator) = PROPAGATOR.get() else {
        return Span::none();
    };
    let span = make();
    if let Some(parent) = parent.filter(|p| is_valid(p)) {
        propagator.set_parent(&span, parent);
    }
    span
}

/// The `traceparent` of `span`, when tracing is installed and the span is recorded.
pub fn traceparent(span: &Span) -> Option<String> {
    PROPAGATOR.get()?.traceparent(span).filter(|p| is_valid(p))
}

/// True for a version-00 `traceparent` with non-zero ids: `00-<32 hex>-<16 hex>-<2 hex>`.
pub fn is_valid(traceparent: &str) -> bool {
    let parts: Vec<&str> = traceparent.split('-').collect();
    let hex = |s: &str, n: usize| {
        s.len() == n
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    let nonzero = |s: &str| s.bytes().any(|b| b != b'0');
    traceparent.len() == TRACEPARENT_LEN
        && parts.len() == 4
        && parts[0] == "00"
        && hex(parts[1], 32)
        && nonzero(parts[1])
        && hex(parts[2], 16)
        && nonzero(parts[2])
        && hex(parts[3], 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_well_formed_traceparents_are_valid() {
        assert!(is_valid(
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        ));
        for bad in [
            "",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
        ] {
            assert!(!is_valid(bad), "{bad}");
        }
    }

    #[test]
    fn without_a_propagator_nothing_is_made() {
        // No test of this crate installs one.
        assert!(!enabled());
        assert!(span(|| tracing::info_span!("x")).is_none());
        assert!(traceparent(&Span::current()).is_none());
    }
}
