use std::fmt;

use serde::{Deserialize, Serialize};

use super::{CompactString, Millis, Resources};
use crate::error::{Error, Result};

/// Where a task is in its life. Legal moves are given by [`TaskState::can_transition_to`] and
/// enforced by [`Task::transition`]:
///
/// ```text
/// Pending -> Scheduled -> Starting -> Running -> Completed | Failed
///    any live state -> Stopping -> Stopped       (asked to stop)
///    Scheduled | Starting | Running | Stopping -> Lost   (its node was declared down)
///    Completed | Failed -> Starting              (restarted in place by its restart policy)
///    Lost -> Running                             (its node came back with the container running)
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskState {
    /// Created by the reconciler, not yet placed.
    Pending,
    /// Assigned to a node (committed), not yet started by its agent.
    Scheduled,
    /// The agent is pulling the image / creating the container.
    Starting,
    /// The container is running.
    Running,
    /// Exited with code 0.
    Completed,
    /// Exited non-zero, or could not start.
    Failed,
    /// Being stopped on purpose (scale down, update, drain).
    Stopping,
    /// Stopped on purpose; terminal.
    Stopped,
    /// Its node was declared down; a replacement is created elsewhere. Terminal, except that
    /// while `desired` is still `running` the node's agent may find the container still running
    /// when the node comes back and reconnect it (`Lost -> Running`); the reconciler then keeps
    /// one task per slot and stops the other.
    Lost,
}

impl TaskState {
    /// Every state, in lifecycle order.
    pub const ALL: [TaskState; 9] = [
        TaskState::Pending,
        TaskState::Scheduled,
        TaskState::Starting,
        TaskState::Running,
        TaskState::Completed,
        TaskState::Failed,
        TaskState::Stopping,
        TaskState::Stopped,
        TaskState::Lost,
    ];

    /// True when the move `self -> next` is legal.
    pub fn can_transition_to(self, next: TaskState) -> bool {
        use TaskState::*;
        matches!(
            (self, next),
            (Pending, Scheduled | Failed | Stopped)
                | (Scheduled, Starting | Failed | Stopping | Stopped | Lost)
                | (Starting, Running | Completed | Failed | Stopping | Lost)
                | (Running, Completed | Failed | Stopping | Lost)
                | (Stopping, Stopped | Failed | Lost)
                | (Completed | Failed, Starting)
                | (Lost, Running)
        )
    }

    /// True for states no task leaves except by a restart or a reconnect: Completed, Failed,
    /// Stopped, Lost.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            TaskState::Completed | TaskState::Failed | TaskState::Stopped | TaskState::Lost
        )
    }

    /// True for states that hold (or are about to hold) resources on a node.
    pub fn holds_resources(self) -> bool {
        matches!(
            self,
            TaskState::Scheduled | TaskState::Starting | TaskState::Running | TaskState::Stopping
        )
    }

    /// Lower-case name, as in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskState::Pending => "pending",
            TaskState::Scheduled => "scheduled",
            TaskState::Starting => "starting",
            TaskState::Running => "running",
            TaskState::Completed => "completed",
            TaskState::Failed => "failed",
            TaskState::Stopping => "stopping",
            TaskState::Stopped => "stopped",
            TaskState::Lost => "lost",
        }
    }
}

impl fmt::Display for TaskState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the controllers want for a task; the agent converges the container to it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DesiredState {
    #[default]
    Running,
    Shutdown,
}

/// Result of the latest health checks of a running task, written by its agent when it changes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskHealth {
    /// No check configured (or the task has not run yet).
    #[default]
    Unknown,
    /// A check is configured and none has passed since the container started: not serving.
    Starting,
    /// The latest check passed.
    Healthy,
    /// `retries + 1` checks in a row failed after the start period; the agent stops the
    /// container and restarts it under the restart policy.
    Unhealthy,
}

impl TaskHealth {
    /// Lower-case name, as in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskHealth::Unknown => "unknown",
            TaskHealth::Starting => "starting",
            TaskHealth::Healthy => "healthy",
            TaskHealth::Unhealthy => "unhealthy",
        }
    }
}

impl fmt::Display for TaskHealth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Longest [`Task::health_output`] kept, in bytes (longer output is cut at a char boundary).
pub const MAX_HEALTH_OUTPUT: usize = 1024;

/// A container port as actually published on the node.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PublishedPort {
    pub container_port: u16,
    /// The real host port (read back when the spec asked for 0).
    pub host_port: u16,
    /// `tcp` or `udp`.
    pub protocol: CompactString,
    /// The host IP it is bound to.
    #[serde(default)]
    pub host_ip: CompactString,
}

/// One replica of a service, placed on at most one node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Task {
    pub id: CompactString,
    /// The service it belongs to.
    pub service: CompactString,
    /// Replica slot, 0-based; stable across replacements so names stay readable.
    pub slot: u32,
    /// The service spec version it was created from.
    pub spec_version: u64,
    /// Where it runs, once scheduled.
    #[serde(default)]
    pub node: Option<CompactString>,
    /// Current state; change it only through [`Task::transition`].
    pub state: TaskState,
    /// What the controllers want.
    #[serde(default)]
    pub desired: DesiredState,
    /// The request it was placed with (copied from the spec).
    #[serde(default)]
    pub resources: Resources,
    /// Runtime container id, once created.
    #[serde(default)]
    pub container_id: Option<String>,
    /// Ports as published.
    #[serde(default)]
    pub ports: Vec<PublishedPort>,
    /// Exit code, once exited.
    #[serde(default)]
    pub exit_code: Option<i64>,
    /// Why it failed or was rejected, for humans.
    #[serde(default)]
    pub error: Option<Box<str>>,
    /// Health from the agent's checks.
    #[serde(default)]
    pub health: TaskHealth,
    /// What the latest failed health check said (at most [`MAX_HEALTH_OUTPUT`] bytes); cleared
    /// by a passing check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_output: Option<Box<str>>,
    /// Restarts done in place under the restart policy.
    #[serde(default)]
    pub restarts: u32,
    /// Failed tasks in this slot right before this one (0 for a first task, or after a task that
    /// did not fail): the reconciler backs off before refilling a crash-looping slot.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub attempt: u32,
    /// Why the reconciler moved this replica here from another node while the old one still
    /// ran (re-placement: a network rule the old node broke), for humans; `None` otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub moved_because: Option<Box<str>>,
    /// The W3C `traceparent` of the work that made this task (the deploy's trace, see
    /// [`crate::trace`]): set only when tracing is installed, `None` otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_parent: Option<Box<str>>,
    #[serde(default)]
    pub created_at: Millis,
    #[serde(default)]
    pub updated_at: Millis,
}

impl Task {
    /// A pending task for `service` slot `slot`, with a fresh id.
    pub fn new(service: &str, slot: u32, spec_version: u64, resources: Resources) -> Self {
        let now = super::now_millis();
        let suffix: u32 = rand::random();
        Task {
            id: compact_str::format_compact!("{service}-{slot}-{suffix:08x}"),
            service: service.into(),
            slot,
            spec_version,
            node: None,
            state: TaskState::Pending,
            desired: DesiredState::Running,
            resources,
            container_id: None,
            ports: Vec::new(),
            exit_code: None,
            error: None,
            health: TaskHealth::Unknown,
            health_output: None,
            restarts: 0,
            attempt: 0,
            moved_because: None,
            trace_parent: None,
            created_at: now,
            updated_at: now,
        }
    }

    /// Moves to `next` if the move is legal, stamping `updated_at`; otherwise
    /// [`Error::IllegalTransition`] and the task is unchanged. A restart (Completed/Failed ->
    /// Starting) counts in `restarts`.
    pub fn transition(&mut self, next: TaskState) -> Result<()> {
        if !self.state.can_transition_to(next) {
            return Err(Error::IllegalTransition {
                task: self.id.to_string(),
                from: self.state,
                to: next,
            });
        }
        if self.state.is_terminal() && next == TaskState::Starting {
            self.restarts += 1;
            self.exit_code = None;
            self.error = None;
        }
        self.state = next;
        self.updated_at = super::now_millis();
        Ok(())
    }

    /// True when it counts toward its service's replicas: not terminal and not being shut down.
    pub fn is_active(&self) -> bool {
        !self.state.is_terminal()
            && self.state != TaskState::Stopping
            && self.desired == DesiredState::Running
    }
}

impl Task {
    /// Whether this replica should receive traffic: running, and not failing its health
    /// check (a task of a service without a check counts once running; one with a check
    /// once its check passed).
    pub fn is_serving(&self) -> bool {
        self.state == TaskState::Running
            && matches!(self.health, TaskHealth::Unknown | TaskHealth::Healthy)
    }
}

fn is_zero(v: &u32) -> bool {
    *v == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn happy_path_is_legal() {
        let mut t = Task::new("web", 0, 1, Resources::default());
        for s in [
            TaskState::Scheduled,
            TaskState::Starting,
            TaskState::Running,
            TaskState::Completed,
        ] {
            t.transition(s).unwrap();
        }
        assert_eq!(t.state, TaskState::Completed);
    }

    #[test]
    fn illegal_moves_are_refused_and_leave_the_task_unchanged() {
        let mut t = Task::new("web", 0, 1, Resources::default());
        let err = t.transition(TaskState::Running).unwrap_err();
        assert!(matches!(err, Error::IllegalTransition { .. }), "{err}");
        assert_eq!(t.state, TaskState::Pending);
        assert!(err.to_string().contains("pending -> running"));
    }

    #[test]
    fn terminal_states_only_leave_by_restart_or_reconnect() {
        for from in TaskState::ALL.into_iter().filter(|s| s.is_terminal()) {
            for to in TaskState::ALL {
                let legal = from.can_transition_to(to);
                let restart = matches!(from, TaskState::Completed | TaskState::Failed)
                    && to == TaskState::Starting;
                let reconnect = from == TaskState::Lost && to == TaskState::Running;
                assert_eq!(legal, restart || reconnect, "{from} -> {to}");
            }
        }
    }

    #[test]
    fn restart_counts() {
        let mut t = Task::new("web", 0, 1, Resources::default());
        for s in [
            TaskState::Scheduled,
            TaskState::Starting,
            TaskState::Failed,
            TaskState::Starting,
        ] {
            t.transition(s).unwrap();
        }
        assert_eq!(t.restarts, 1);
    }

    #[test]
    fn a_task_stays_small_and_short_names_allocate_nothing() {
        // A leader keeps every task decoded: at a million tasks each byte here is a megabyte.
        assert!(
            std::mem::size_of::<Task>() <= 264,
            "{}",
            std::mem::size_of::<Task>()
        );
        // Up to 24 bytes inline: `<service>-<slot>-<8 hex>` for a service name of up to 11.
        let mut t = Task::new("billing-api", 120, 1, Resources::default());
        t.node = Some("node-04096.zone-b".into());
        assert!(!t.id.is_heap_allocated(), "{}", t.id);
        assert!(!t.service.is_heap_allocated());
        assert!(t.node.as_ref().is_some_and(|n| !n.is_heap_allocated()));
        let long = Task::new("checkout-service", 120, 1, Resources::default());
        assert!(long.id.is_heap_allocated() && long.id.starts_with("checkout-service-120-"));
    }
}
