//! Restarts in place: what the agent does when a running task's container exits, vanishes or
//! turns unhealthy.
//!
//! Contract: the service's restart policy decides ([`RestartPolicy::restarts`]); a restart waits
//! out an exponential back-off ([`backoff_delay`]) and counts in [`Task::restarts`]; after the
//! service's `reschedule_after` restarts on this node (or when the policy says no) the task is
//! reported `completed` (exit 0) or `failed`, and the reconciler retires it and refills its slot
//! as the policy says, on another node when one can take it. A container that is not restarted is
//! stopped (an unhealthy one still runs) and kept for its logs, before its task is reported. One
//! that is restarted is removed (stopped first if it still runs) after the status write, while
//! the back-off runs: the restart's start waits for that removal (one operation per task,
//! [`super::inflight`]), so the removal costs no time unless it outlasts the back-off.

use std::sync::PoisonError;
use std::time::Duration;

use tracing::{debug, info};

use super::Agent;
use crate::model::spec::RestartPolicy;
use crate::model::{Millis, Task, TaskState};
use crate::runtime::{ContainerInfo, ContainerStatus, Runtime};
use crate::store::Store;

/// How a running task's container ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Ended {
    /// It exited by itself (or was killed from outside).
    Exited { code: i64, oom_killed: bool },
    /// The runtime reports it in another state.
    Other(String),
    /// It is gone.
    Vanished,
    /// Its health check failed: the last failure's output.
    Unhealthy(String),
}

impl Ended {
    pub(super) fn from_status(status: &ContainerStatus) -> Ended {
        match status {
            ContainerStatus::Exited { code, oom_killed } => Ended::Exited {
                code: *code,
                oom_killed: *oom_killed,
            },
            other => Ended::Other(format!("container is {other:?}")),
        }
    }

    fn exit_code(&self) -> Option<i64> {
        match self {
            Ended::Exited { code, .. } => Some(*code),
            _ => None,
        }
    }

    fn reason(&self) -> String {
        match self {
            Ended::Exited {
                code,
                oom_killed: true,
            } => format!("killed by the OOM killer (exit code {code})"),
            Ended::Exited { code, .. } => format!("exited with code {code}"),
            Ended::Other(s) => s.clone(),
            Ended::Vanished => "container disappeared".to_owned(),
            Ended::Unhealthy(output) => format!("unhealthy: {output}"),
        }
    }
}

impl<S: Store, R: Runtime + ?Sized> Agent<S, R> {
    /// The task's container ended: restart in place or report it.
    pub(super) async fn exited(
        &self,
        task: &Task,
        c: Option<&ContainerInfo>,
        ended: Ended,
    ) -> crate::Result<()> {
        let why = ended.reason();
        let code = ended.exit_code();
        let service = self.store.get_service(&task.service).await?;
        let (policy, limit) = service.as_ref().map_or(
            (RestartPolicy::default(), super::MAX_RESTARTS_IN_PLACE),
            |s| (s.spec.restart_policy, s.spec.reschedule_after),
        );
        let oom = matches!(
            ended,
            Ended::Exited {
                oom_killed: true,
                ..
            }
        );
        let restart = task.restarts < limit && policy.restarts(code, oom);
        // A container that is not restarted is stopped (and kept for its logs) before its task
        // is reported; one that is restarted is removed after the status write, while the
        // back-off runs (the next start waits for this operation to end).
        if let Some(c) = c
            && !restart
            && c.status.is_running()
        {
            self.halt(c).await;
        }
        let state = if code == Some(0) {
            TaskState::Completed
        } else {
            TaskState::Failed
        };
        let given_restarts = task.restarts;
        let reason = why.clone();
        let updated = self
            .update_status(&task.id, move |t| {
                if t.state != TaskState::Running {
                    return Ok(());
                }
                t.transition(state)?;
                t.exit_code = code;
                t.error = (state == TaskState::Failed).then(|| reason.as_str().into());
                if restart {
                    t.transition(TaskState::Starting)?;
                    t.error = Some(
                        format!(
                            "restarting ({} of {limit} on this node): {reason}",
                            t.restarts
                        )
                        .into(),
                    );
                } else if state == TaskState::Failed && given_restarts >= limit {
                    t.error = Some(
                        format!(
                            "{reason}; gave up after {given_restarts} restarts on node {}",
                            t.node.as_deref().unwrap_or("?")
                        )
                        .into(),
                    );
                }
                Ok(())
            })
            .await;
        if restart && let Some(c) = c {
            self.discard(c).await;
        }
        let updated = updated?;
        if restart {
            // The restarts before this one: the first restart waits the base 200 ms.
            let delay = backoff_delay(updated.restarts.saturating_sub(1));
            self.observer.container_restarted();
            debug!(task = %task.id, ?delay, "restarting in place after backoff");
            self.backoff
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(
                    task.id.to_string(),
                    self.clock.now() + delay.as_millis() as Millis,
                );
            self.backoff_set.notify_one();
        } else {
            info!(task = %task.id, state = %state, "{why}; not restarted in place");
        }
        Ok(())
    }
}

/// 200 ms, doubling per restart, at most 10 s.
pub(super) fn backoff_delay(restarts: u32) -> Duration {
    let ms = 200u64.saturating_mul(1u64 << restarts.min(6));
    Duration::from_millis(ms.min(10_000))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        assert_eq!(backoff_delay(0), Duration::from_millis(200));
        assert_eq!(backoff_delay(1), Duration::from_millis(400));
        assert_eq!(backoff_delay(30), Duration::from_secs(10));
    }

    #[test]
    fn policies_decide_per_exit() {
        use RestartPolicy::*;
        let cases = [
            (No, Some(1), false),
            (Always, Some(0), true),
            (OnFailure, Some(0), false),
            (OnFailure, Some(2), true),
            (OnFailure, None, true),
            (UnlessStopped, Some(1), true),
            (UnlessStopped, Some(143), false),
            (UnlessStopped, Some(137), false),
        ];
        for (policy, code, want) in cases {
            assert_eq!(policy.restarts(code, false), want, "{policy:?} {code:?}");
        }
        assert!(
            UnlessStopped.restarts(Some(137), true),
            "an OOM kill is not a stop"
        );
    }
}
