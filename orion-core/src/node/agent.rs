//! The agent: runs this node's tasks through its [`Runtime`] and writes their status back.
//!
//! It converges containers to the tasks the controllers assigned here, and never the other way:
//! - a `scheduled` task with desired `running` is started (`starting` -> `running`, with its
//!   container id and real ports; `failed` with the error when it cannot start);
//! - a running task whose container exited, or whose health check turned it unhealthy
//!   ([`super::health`]), is restarted in place under its restart policy, with an exponential
//!   backoff, up to the service's `reschedule_after` times; after that, or when the policy says
//!   no, it is reported `completed`/`failed` and the reconciler decides (it reschedules a failed
//!   task onto another node when one can take it);
//! - a task with desired `shutdown` (or `stopping`) has its container stopped and removed, and
//!   ends `stopped`;
//! - a `lost` task (its node was declared down while this agent was away or unreachable) whose
//!   container still runs and whose desired state is still `running` is reconnected
//!   (`lost -> running`, same container); the reconciler then stops the surplus replacement. A lost
//!   task without a running container is given up (desired `shutdown`);
//! - a container labelled for this node with no task here is stale and is stopped and removed.
//!
//! It never kills a container because it cannot reach the store: a pass that cannot read its
//! tasks does nothing. The one exception is opt-in: a service with `stop_after_disconnect` has its
//! containers stopped once the store has been unreachable that long, so at most one copy of a
//! singleton runs across a partition.
//!
//! After a restart the agent adopts what is still running: a task whose container is listed under
//! its labels keeps that container (same id); nothing is started twice and nothing is killed.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::Notify;
use tracing::{Instrument, info, info_span, warn};

use super::Clock;
use super::container::container_spec;
use super::health::{DEFAULT_MAX_CONCURRENT_CHECKS, HealthMonitor};
use super::inflight::{DEFAULT_MAX_IN_FLIGHT, InFlight};
use super::restart::Ended;
use super::status_writer::StatusWriter;
use crate::model::spec::ServiceSpec;
use crate::model::{DesiredState, Millis, NodeId, Task, TaskHealth, TaskState};
use crate::observe::{SharedObserver, no_observer};
use crate::runtime::{ContainerInfo, DEFAULT_STOP_GRACE, Runtime, labels};
use crate::store::{ClusterStore, Store};
use crate::trace;

/// Restarts in place before a crash-looping task is handed back to the reconciler, when its spec
/// does not say (`reschedule_after`'s default).
pub const MAX_RESTARTS_IN_PLACE: u32 = crate::model::spec::DEFAULT_RESCHEDULE_AFTER;

/// Tasks converged at once by default (container starts and stops run in parallel up to this;
/// see [`Agent::max_in_flight`]).
pub const MAX_PARALLEL_CONVERGE: usize = DEFAULT_MAX_IN_FLIGHT;

/// How often the agent re-checks its containers when nothing changes in the store.
pub const RESYNC_INTERVAL: Duration = Duration::from_secs(1);

/// Runs the tasks of one node: `S` is the cluster state, `R` the container runtime.
pub struct Agent<S, R: ?Sized> {
    pub(super) node_id: NodeId,
    pub(super) store: ClusterStore<S>,
    pub(super) runtime: Arc<R>,
    pub(super) clock: Arc<dyn Clock>,
    /// Host address that published ports bind to.
    publish_ip: String,
    /// Grace period before a stopping container is killed.
    stop_grace: Duration,
    /// Tasks waiting out a restart backoff: task id -> when to start again.
    pub(super) backoff: Mutex<HashMap<String, Millis>>,
    /// The health checks of this node's running tasks.
    pub(super) health: HealthMonitor<R>,
    /// What the last pass that reached the store saw, for `stop_after_disconnect`.
    pub(super) last_contact: Mutex<Contact>,
    /// Told about container starts and restarts (metrics).
    pub(super) observer: SharedObserver,
    /// Opens the secrets a task's service references ([`super::secrets`]).
    pub(super) secrets: Option<Arc<crate::secrets::SecretSealer>>,
    /// Images found present since the last full pass: checked once per pass, not per start.
    images_ready: Mutex<HashSet<String>>,
    /// Operations under way, by task ([`super::inflight`]).
    pub(super) inflight: InFlight,
    /// Group-committed status writes ([`super::status_writer`]).
    status: StatusWriter,
    /// Told when a restart back-off is set, so the loop re-arms its timer.
    pub(super) backoff_set: Notify,
}

/// The last successful read of this node's tasks.
#[derive(Default)]
pub(super) struct Contact {
    pub(super) at: Option<Millis>,
    /// `stop_after_disconnect` (ms) of each service with one set.
    pub(super) stop_after: HashMap<String, Millis>,
}

impl<S, R: Runtime + ?Sized> std::fmt::Debug for Agent<S, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Agent")
            .field("node_id", &self.node_id)
            .field("runtime", &self.runtime.name())
            .finish()
    }
}

impl<S: Store, R: Runtime + ?Sized> Agent<S, R> {
    /// An agent for `node_id`; published ports bind to `publish_ip`.
    pub fn new(
        node_id: impl Into<NodeId>,
        store: ClusterStore<S>,
        runtime: Arc<R>,
        clock: Arc<dyn Clock>,
        publish_ip: impl Into<String>,
    ) -> Self {
        Agent {
            node_id: node_id.into(),
            store,
            health: HealthMonitor::new(runtime.clone(), DEFAULT_MAX_CONCURRENT_CHECKS),
            runtime,
            clock,
            publish_ip: publish_ip.into(),
            stop_grace: DEFAULT_STOP_GRACE,
            backoff: Mutex::new(HashMap::new()),
            last_contact: Mutex::new(Contact::default()),
            observer: no_observer(),
            secrets: None,
            images_ready: Mutex::new(HashSet::new()),
            inflight: InFlight::new(DEFAULT_MAX_IN_FLIGHT),
            status: StatusWriter::default(),
            backoff_set: Notify::new(),
        }
    }

    /// Runs at most `n` task operations (starts, stops, restarts) at once, `n` in 1 to
    /// [`crate::node::MAX_IN_FLIGHT_CEILING`] (default [`MAX_PARALLEL_CONVERGE`]); an `n` outside is an error
    /// naming the accepted range.
    pub fn max_in_flight(mut self, n: usize) -> crate::Result<Self> {
        super::inflight::check_limit(n)?;
        self.inflight = InFlight::new(n);
        Ok(self)
    }

    /// Applies `f` to task `id` and writes it through the agent's group-committing status
    /// writer: the meaning of [`ClusterStore::update_task`], batched with the agent's other
    /// status writes ([`super::status_writer`]).
    pub(super) async fn update_status(
        &self,
        id: &str,
        f: impl FnMut(&mut Task) -> crate::Result<()> + Send + 'static,
    ) -> crate::Result<Task> {
        self.status.update(&self.store, id, Box::new(f)).await
    }

    /// Runs at most `n` (at least 1) health checks at once (default
    /// [`DEFAULT_MAX_CONCURRENT_CHECKS`]); the others wait for a slot.
    pub fn max_concurrent_checks(mut self, n: usize) -> Self {
        self.health = HealthMonitor::new(self.runtime.clone(), n);
        self
    }

    /// This agent, reporting container starts and restarts to `observer`.
    pub fn with_observer(mut self, observer: SharedObserver) -> Self {
        self.observer = observer;
        self
    }

    /// The node this agent runs.
    pub fn node_id(&self) -> &str {
        &self.node_id
    }

    pub(super) fn node_labels(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            (labels::MANAGED.to_owned(), "true".to_owned()),
            (labels::NODE.to_owned(), self.node_id.clone()),
        ])
    }

    /// One convergence pass over this node's tasks and containers: reads every task of this node
    /// and every container under its labels, converges each task, and removes stale containers.
    /// When the store cannot be read, nothing is started or stopped (except under
    /// `stop_after_disconnect`), and the error is returned. Returns when every converge it
    /// started has ended; a task with an operation under way (from the agent's loop) is left to
    /// it. The agent's loop runs full passes at start, on every [`RESYNC_INTERVAL`] and when the
    /// runtime reports a container exit, without waiting for their operations; between those it
    /// converges only the tasks that changed ([`Agent::sync_changed`]).
    pub async fn sync(&self) -> crate::Result<()> {
        self.full_pass(None).await
    }

    /// [`Agent::sync`]; with `detach`, the converges run as operations of their own (spawned),
    /// and the pass returns once it has handed them off.
    pub(super) async fn full_pass(&self, detach: Option<&Arc<Self>>) -> crate::Result<()> {
        let epoch = self.inflight.epoch();
        let (tasks, specs) = match self.read_tasks().await {
            Ok(read) => read,
            Err(e) => {
                self.stop_after_disconnect().await;
                return Err(e);
            }
        };
        // Image checks are remembered for one full pass at most.
        self.images_ready
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
        let mut containers = self.containers_by_task().await?;
        let checked: HashSet<String> = tasks
            .iter()
            .filter(|t| t.state == TaskState::Running)
            .map(|t| t.id.to_string())
            .collect();
        let work: Vec<_> = tasks
            .into_iter()
            .map(|task| {
                let container = containers.remove(task.id.as_str());
                (task, container)
            })
            .collect();
        self.converge_all(work, &specs, epoch, false, detach).await;
        self.health
            .retain(&checked.iter().map(String::as_str).collect());
        // Whatever is left has no task on this node any more: stale (unless an operation
        // started it after the read).
        for (task_id, c) in containers {
            if self.inflight.busy(&task_id, epoch) {
                continue;
            }
            let service = c.labels.get(labels::SERVICE).map_or("", String::as_str);
            let span = info_span!("task", task = %task_id, service, node = %self.node_id);
            async {
                info!(task = %task_id, container = %c.id, "removing stale container");
                self.discard(&c).await;
            }
            .instrument(span)
            .await;
        }
        self.inflight.prune(epoch);
        Ok(())
    }

    /// This node's containers by task id (one runtime list).
    pub(super) async fn containers_by_task(&self) -> crate::Result<HashMap<String, ContainerInfo>> {
        let mut containers = HashMap::new();
        for c in self.runtime.list(&self.node_labels()).await? {
            match c.labels.get(labels::TASK) {
                Some(task) => {
                    containers.insert(task.clone(), c);
                }
                None => warn!(container = %c.id, "orion container without a task label"),
            }
        }
        Ok(containers)
    }

    pub(super) async fn converge(
        &self,
        task: &Task,
        container: Option<ContainerInfo>,
        spec: Option<&ServiceSpec>,
    ) -> crate::Result<()> {
        let stop_wanted =
            task.desired == DesiredState::Shutdown || task.state == TaskState::Stopping;
        match task.state {
            TaskState::Lost if task.desired == DesiredState::Running => {
                self.reconnect_or_give_up(task, container).await
            }
            TaskState::Lost | TaskState::Stopped => {
                if let Some(c) = container {
                    info!(task = %task.id, container = %c.id, state = %task.state, "removing container of a {} task", task.state);
                    self.discard(&c).await;
                }
                Ok(())
            }
            _ if stop_wanted && !task.state.is_terminal() => self.stop(task, container).await,
            TaskState::Completed | TaskState::Failed => {
                // Terminal: the reconciler owns it now. Keep the exited container for logs
                // until the task is shut down.
                if let (DesiredState::Shutdown, Some(c)) = (task.desired, container) {
                    self.discard(&c).await;
                }
                Ok(())
            }
            TaskState::Pending => Ok(()),
            TaskState::Scheduled | TaskState::Starting => match container {
                Some(c) if c.status.is_running() => self.adopt(task, c).await,
                Some(c) => {
                    // Left over from an interrupted start: start afresh.
                    self.discard(&c).await;
                    self.start(task).await
                }
                None => self.start(task).await,
            },
            TaskState::Running => match container {
                Some(c) if c.status.is_running() => {
                    if task.container_id.as_deref() != Some(c.id.as_str()) {
                        self.adopt(task, c.clone()).await?;
                    }
                    match spec.and_then(|s| s.health_check.as_ref()) {
                        Some(check) => self.judge_health(task, &c, check).await,
                        None => Ok(()),
                    }
                }
                Some(c) => {
                    self.exited(task, Some(&c), Ended::from_status(&c.status))
                        .await
                }
                None => self.exited(task, None, Ended::Vanished).await,
            },
            TaskState::Stopping => Ok(()),
        }
    }

    /// Records a running container as the task's (after an agent restart, or a start that
    /// finished while the store write was lost).
    async fn adopt(&self, task: &Task, c: ContainerInfo) -> crate::Result<()> {
        info!(task = %task.id, container = %c.id, "adopting running container");
        let checked = self
            .store
            .get_service(&task.service)
            .await?
            .is_some_and(|s| s.spec.health_check.is_some());
        self.update_status(&task.id, move |t| {
            if t.state == TaskState::Scheduled {
                t.transition(TaskState::Starting)?;
            }
            if t.state == TaskState::Starting {
                t.transition(TaskState::Running)?;
            }
            if t.container_id.as_deref() != Some(c.id.as_str()) {
                t.health = initial_health(checked);
            }
            t.container_id = Some(c.id.clone());
            t.ports = c.ports.clone();
            Ok(())
        })
        .await?;
        Ok(())
    }

    /// [`Agent::start_untraced`] under an [`trace::names::AGENT_START`] span whose parent is the task's
    /// trace context (no span without tracing installed).
    async fn start(&self, task: &Task) -> crate::Result<()> {
        let span = trace::child_of(task.trace_parent.as_deref(), || {
            info_span!(
                "orion.agent.start",
                task = %task.id,
                service = %task.service,
                node = %self.node_id
            )
        });
        self.start_untraced(task).instrument(span).await
    }

    async fn start_untraced(&self, task: &Task) -> crate::Result<()> {
        {
            let now = self.clock.now();
            let mut backoff = self.backoff.lock().unwrap_or_else(PoisonError::into_inner);
            if backoff.get(task.id.as_str()).is_some_and(|at| now < *at) {
                return Ok(());
            }
            backoff.remove(task.id.as_str());
        }
        let Some(service) = self.store.get_service(&task.service).await? else {
            // The service is gone; the reconciler will shut the task down.
            return Ok(());
        };
        if task.state == TaskState::Scheduled {
            self.update_status(&task.id, |t| {
                if t.state == TaskState::Scheduled {
                    t.transition(TaskState::Starting)?;
                }
                Ok(())
            })
            .await?;
        }
        let checked = service.spec.health_check.is_some();
        let mut spec = container_spec(&service.spec, task, &self.node_id, &self.publish_ip);
        let attempt = std::time::Instant::now();
        let result = match self.open_secrets(&service.spec).await {
            Ok(secrets) => {
                spec.secrets = secrets;
                match self.image_ready(&spec.image).await {
                    Ok(()) => self.runtime.create_and_start(&spec).await,
                    Err(e) => Err(e),
                }
            }
            Err(e) => Err(e),
        };
        match result {
            Ok(c) => {
                self.observer.container_started(attempt.elapsed());
                info!(task = %task.id, container = %c.id, "task running");
                let running = trace::span(|| info_span!("orion.task.running", task = %task.id));
                self.update_status(&task.id, move |t| {
                    if t.state == TaskState::Starting {
                        t.transition(TaskState::Running)?;
                    }
                    t.container_id = Some(c.id.clone());
                    t.ports = c.ports.clone();
                    t.error = None;
                    t.health = initial_health(checked);
                    Ok(())
                })
                .instrument(running)
                .await?;
            }
            Err(e) => {
                self.observer.container_start_failed();
                warn!(task = %task.id, error = %e, "task failed to start");
                let message = e.to_string();
                self.update_status(&task.id, move |t| {
                    if t.state.can_transition_to(TaskState::Failed) {
                        t.transition(TaskState::Failed)?;
                    }
                    t.error = Some(message.as_str().into());
                    Ok(())
                })
                .await?;
            }
        }
        Ok(())
    }

    /// Makes sure `image` is present, asking the runtime at most once per full pass.
    async fn image_ready(&self, image: &str) -> crate::Result<()> {
        let known = self
            .images_ready
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(image);
        if !known {
            self.runtime.ensure_image(image).await?;
            self.images_ready
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(image.to_owned());
        }
        Ok(())
    }

    /// Stops a container (with the grace period) and keeps it, for its logs.
    pub(super) async fn halt(&self, c: &ContainerInfo) {
        if let Err(e) = self.runtime.stop(&c.id, self.stop_grace).await {
            warn!(container = %c.id, error = %e, "stop failed");
        }
    }

    async fn stop(&self, task: &Task, container: Option<ContainerInfo>) -> crate::Result<()> {
        if task.state != TaskState::Stopping {
            self.update_status(&task.id, |t| {
                if t.state.can_transition_to(TaskState::Stopping) {
                    t.transition(TaskState::Stopping)?;
                }
                Ok(())
            })
            .await?;
        }
        if let Some(c) = &container {
            self.discard(c).await;
        }
        self.update_status(&task.id, |t| {
            if t.state == TaskState::Stopping {
                t.transition(TaskState::Stopped)?;
            }
            Ok(())
        })
        .await?;
        info!(task = %task.id, "task stopped");
        Ok(())
    }

    /// Writes a changed health verdict of a running task; an unhealthy one is ended and restarted
    /// under its restart policy.
    async fn judge_health(
        &self,
        task: &Task,
        c: &ContainerInfo,
        check: &crate::model::spec::HealthCheck,
    ) -> crate::Result<()> {
        let verdict = self.health.observe(task, c, check, self.clock.now());
        if verdict.health != task.health {
            info!(task = %task.id, health = %verdict.health, output = ?verdict.output, "health changed");
            let (container, health, output) =
                (c.id.clone(), verdict.health, verdict.output.clone());
            self.update_status(&task.id, move |t| {
                if t.state == TaskState::Running && t.container_id.as_deref() == Some(&container) {
                    t.health = health;
                    t.health_output = output.as_deref().map(Into::into);
                }
                Ok(())
            })
            .await?;
        }
        if verdict.health == TaskHealth::Unhealthy {
            let output = verdict.output.unwrap_or_default();
            return self.exited(task, Some(c), Ended::Unhealthy(output)).await;
        }
        Ok(())
    }

    /// Stops (with the grace period) and removes a container; failures are logged, and the next
    /// pass tries again.
    pub(super) async fn discard(&self, c: &ContainerInfo) {
        if c.status.is_running()
            && let Err(e) = self.runtime.stop(&c.id, self.stop_grace).await
        {
            warn!(container = %c.id, error = %e, "stop failed");
        }
        if let Err(e) = self.runtime.remove(&c.id).await
            && !e.is_not_found()
        {
            warn!(container = %c.id, error = %e, "remove failed");
        }
    }

    /// A lost task with desired `running`: reconnect its running container, or give it up.
    async fn reconnect_or_give_up(
        &self,
        task: &Task,
        container: Option<ContainerInfo>,
    ) -> crate::Result<()> {
        match container {
            Some(c) if c.status.is_running() => {
                info!(task = %task.id, container = %c.id, "node is back: reconnecting the running container");
                let container = c.id.clone();
                self.update_status(&task.id, move |t| {
                    if t.state == TaskState::Lost && t.desired == DesiredState::Running {
                        t.transition(TaskState::Running)?;
                        t.container_id = Some(container.clone());
                        t.error = None;
                    }
                    Ok(())
                })
                .await?;
            }
            other => {
                if let Some(c) = &other {
                    self.discard(c).await;
                }
                self.update_status(&task.id, |t| {
                    if t.state == TaskState::Lost {
                        t.desired = DesiredState::Shutdown;
                    }
                    Ok(())
                })
                .await?;
            }
        }
        Ok(())
    }
}

/// The health of a task whose container just started: [`TaskHealth::Starting`] when its service
/// has a check (so it does not serve before a pass), else [`TaskHealth::Unknown`].
fn initial_health(checked: bool) -> TaskHealth {
    if checked {
        TaskHealth::Starting
    } else {
        TaskHealth::Unknown
    }
}
