//! The reconcile controller's rollout pass: before each plan, every service's rollout record is
//! advanced by [`rollout::step`](crate::reconciler::rollout::step) and stored (fenced, and only
//! if nobody changed it since the state was read), and a failed update under `failure_action:
//! rollback` is rolled back (`ClusterStore::rollback_service`).

use tracing::{info, warn};

use crate::model::Millis;
use crate::reconciler::{VersionedSpec, rollout};
use crate::store::{ClusterState, ClusterStore, Compare, Store, keys};

/// What one rollout pass did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RolloutPassReport {
    /// Records stored.
    pub written: usize,
    /// Services rolled back (the state read is stale: plan again from a fresh read).
    pub rolled_back: Vec<String>,
}

/// Advances every service's rollout record in `state` at `now`, writing what changed under
/// `fence`; `state.rollouts` is updated in place with what was written.
pub async fn advance_rollouts<S: Store>(
    store: &ClusterStore<S>,
    state: &mut ClusterState,
    now: Millis,
    fence: Option<&Compare>,
) -> crate::Result<RolloutPassReport> {
    let mut report = RolloutPassReport::default();
    let mut written = Vec::new();
    let by_service = rollout::tasks_by_service(&state.tasks);
    for service in &state.services {
        let name = service.spec.name.as_str();
        let vs = VersionedSpec::new(service.spec.clone(), service.spec_version);
        let stored = state.rollouts.get(name);
        let own = by_service.get(name).map_or(&[][..], Vec::as_slice);
        let step = rollout::step_own(&vs, own, stored, now);
        if let (Some(to), Some(why)) = (step.rollback_to, step.failure.as_deref()) {
            let reason = format!("version {} failed: {why}", service.spec_version);
            match store
                .rollback_service(name, Some(to), &reason, now, fence)
                .await
            {
                Ok(_) => {
                    warn!(service = name, from = service.spec_version, to, %reason, "rolled back");
                    report.rolled_back.push(name.to_owned());
                }
                Err(e @ (crate::Error::Invalid(_) | crate::Error::NotFound { .. })) => {
                    // The previous version is no longer in the history: pause instead.
                    let mut record = step.record.clone();
                    record.phase = crate::reconciler::RolloutPhase::Paused;
                    record.reason = Some(format!("{reason}; cannot roll back ({e}): paused"));
                    record.updated_at = now;
                    let key = keys::rollout(name);
                    let expected = state.revisions.get(&key).unwrap_or(0);
                    if store.put_rollout_if(&record, expected, fence).await? {
                        warn!(service = name, error = %e, "cannot roll back: rollout paused");
                        report.written += 1;
                        written.push(record);
                    }
                }
                Err(e) => warn!(service = name, error = %e, "cannot roll back yet; retrying"),
            }
            continue;
        }
        if stored == Some(&step.record) {
            continue;
        }
        let key = keys::rollout(name);
        let expected = state.revisions.get(&key).unwrap_or(0);
        if store.put_rollout_if(&step.record, expected, fence).await? {
            report.written += 1;
            written.push(step.record.clone());
            if stored.map(|r| r.phase) != Some(step.record.phase) {
                info!(
                    service = name,
                    version = step.record.version,
                    phase = step.record.phase.as_str(),
                    reason = step.record.reason.as_deref().unwrap_or("-"),
                    "rollout"
                );
            }
        }
    }
    for record in written {
        state.rollouts.insert(record.service.clone(), record);
    }
    Ok(report)
}
