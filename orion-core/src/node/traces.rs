//! The reconcile controller's part of a deploy's trace ([`crate::trace`]): for each service whose
//! latest API write was traced and for which a round creates tasks, an `orion.reconcile` span
//! (child of the write) holding `orion.schedule` and `orion.assignment.commit`; the created tasks
//! carry the commit span's context to their agents.

use std::collections::BTreeMap;

use tracing::{Span, info_span};

use crate::reconciler::{Action, Plan};
use crate::store::{ClusterStore, Store};
use crate::trace;

/// The spans of one round, kept open while its plan is applied.
#[derive(Debug, Default)]
pub(super) struct RoundSpans {
    /// `(orion.reconcile, orion.assignment.commit)` per traced service.
    open: Vec<(Span, Span)>,
}

/// When tracing is installed: opens the spans of every traced service `plan` creates tasks for,
/// and stamps those tasks with their commit span's context. Without tracing, or when the trace
/// contexts cannot be read (the round goes on untraced), it does nothing.
pub(super) async fn open<S: Store>(store: &ClusterStore<S>, plan: &mut Plan) -> RoundSpans {
    if !trace::enabled() {
        return RoundSpans::default();
    }
    let Ok(contexts) = store.trace_contexts().await else {
        return RoundSpans::default();
    };
    // Tasks created per traced service: (placed, pending).
    let mut created: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for action in &plan.actions {
        if let Action::Create { task, .. } = action
            && contexts.contains_key(task.service.as_str())
        {
            let counts = created.entry(task.service.to_string()).or_default();
            if task.node.is_some() {
                counts.0 += 1;
            } else {
                counts.1 += 1;
            }
        }
    }
    let mut spans = RoundSpans::default();
    let mut stamps: BTreeMap<String, String> = BTreeMap::new();
    for (service, (placed, pending)) in created {
        let parent = contexts.get(&service).map(String::as_str);
        let reconcile = trace::child_of(
            parent,
            || info_span!("orion.reconcile", service = %service, tasks = placed + pending),
        );
        let schedule =
            info_span!(parent: &reconcile, "orion.schedule", service = %service, placed, pending);
        drop(schedule);
        let commit = info_span!(parent: &reconcile, "orion.assignment.commit", service = %service);
        if let Some(context) = trace::traceparent(&commit) {
            stamps.insert(service, context);
        }
        spans.open.push((reconcile, commit));
    }
    for action in &mut plan.actions {
        if let Action::Create { task, .. } = action
            && let Some(context) = stamps.get(task.service.as_str())
        {
            task.trace_parent = Some(context.as_str().into());
        }
    }
    spans
}

impl RoundSpans {
    /// Closes the spans once the plan is applied.
    pub(super) fn close(self) {
        for (reconcile, commit) in self.open.into_iter().rev() {
            drop(commit);
            drop(reconcile);
        }
    }
}
