//! Shared helpers of the reconciler tests: a small scheduler built from test filters and a
//! scorer, cluster builders, and a pure `apply` simulator standing in for the controllers and
//! agents.

#![allow(dead_code)]

use std::collections::BTreeMap;

use orion_core::model::NetworkMatrix;
use orion_core::model::{
    DesiredState, Node, NodeStatus, Resources, ServiceSpec, Task, TaskHealth, TaskState,
};
use orion_core::reconciler::{
    Action, Plan, ReconcileInput, ReconcilePolicy, VersionedSpec, reconcile,
};
use orion_core::scheduler::{
    ClusterView, Filter, NodeView, PlacementRequest, Rejection, Scheduler, SchedulerConfig, Scorer,
};

/// Rejects nodes without room for the request.
#[derive(Debug)]
pub struct FitsFilter;

impl Filter for FitsFilter {
    fn name(&self) -> &'static str {
        "test_fits"
    }
    fn check(
        &self,
        req: &PlacementRequest<'_>,
        node: &NodeView,
        _view: &ClusterView,
    ) -> Result<(), Rejection> {
        if req.resources.fits_in(&node.free()) {
            Ok(())
        } else {
            Err(Rejection::new(self.name(), "not enough free resources"))
        }
    }
}

/// Rejects nodes that are not ready.
#[derive(Debug)]
pub struct ReadyFilter;

impl Filter for ReadyFilter {
    fn name(&self) -> &'static str {
        "test_ready"
    }
    fn check(
        &self,
        _req: &PlacementRequest<'_>,
        node: &NodeView,
        _view: &ClusterView,
    ) -> Result<(), Rejection> {
        if node.node.status == NodeStatus::Ready {
            Ok(())
        } else {
            Err(Rejection::new(self.name(), "node not ready")
                .detail(format!("node is {}", node.node.status)))
        }
    }
}

/// Prefers nodes with fewer tasks (a trivial spread).
#[derive(Debug)]
pub struct FewestTasks;

impl Scorer for FewestTasks {
    fn name(&self) -> &'static str {
        "test_fewest_tasks"
    }
    fn score(&self, _req: &PlacementRequest<'_>, node: &NodeView, _view: &ClusterView) -> f64 {
        1.0 / (1.0 + f64::from(node.task_count))
    }
}

/// The filters above and the spread scorer.
pub fn scheduler() -> Scheduler {
    Scheduler::new(
        vec![Box::new(ReadyFilter), Box::new(FitsFilter)],
        vec![(Box::new(FewestTasks), 1.0)],
        SchedulerConfig::default(),
    )
}

/// No filter at all: only the reconciler's own guard keeps placements sane.
pub fn naive_scheduler() -> Scheduler {
    Scheduler::new(
        Vec::new(),
        vec![(Box::new(FewestTasks), 1.0)],
        SchedulerConfig::default(),
    )
}

/// A node with `cpu` millicores and `mem` bytes.
pub fn node(id: &str, cpu: u64, mem: u64, status: NodeStatus) -> Node {
    let mut n = Node::new(id, Resources::new(cpu, mem));
    n.status = status;
    n
}

/// A spec with `replicas` tasks of `cpu` millicores and 1 MiB each.
pub fn spec(name: &str, replicas: u32, cpu: u64, version: u64) -> VersionedSpec {
    let mut s = ServiceSpec::new(name, "busybox", replicas);
    s.resources.cpu_millicores = cpu;
    s.resources.memory_bytes = 1 << 20;
    VersionedSpec::new(s, version)
}

/// A task of `vs` in `slot` with the given state, on `node`.
pub fn task(vs: &VersionedSpec, slot: u32, state: TaskState, node: Option<&str>) -> Task {
    task_v(vs, slot, vs.version, state, node)
}

/// Same, from spec version `version`.
pub fn task_v(
    vs: &VersionedSpec,
    slot: u32,
    version: u64,
    state: TaskState,
    node: Option<&str>,
) -> Task {
    let mut t = Task::new(&vs.spec.name, slot, version, vs.spec.resources.into());
    t.id = format!(
        "{}-{slot}-{}-{}",
        vs.spec.name,
        node.unwrap_or("none"),
        state
    )
    .into();
    t.state = state;
    t.node = node.map(Into::into);
    t.created_at = 1;
    t.updated_at = 1;
    t
}

/// One reconcile over the given state.
pub fn plan(
    specs: &[VersionedSpec],
    tasks: &[Task],
    nodes: &[Node],
    now: u64,
    sched: &Scheduler,
) -> Plan {
    let network = NetworkMatrix::new();
    reconcile(
        &ReconcileInput {
            specs,
            tasks,
            nodes,
            network: &network,
            now,
            policy: Default::default(),
        },
        sched,
    )
}

/// Applies a plan as controllers and agents would, all at once: created and assigned tasks run,
/// stopped ones stop, lost ones are lost. Then every agent on a live node advances its tasks
/// (scheduled/starting -> running and healthy; desired shutdown -> stopped). Re-applying an
/// action is a no-op.
pub fn apply(plan: &Plan, tasks: &mut Vec<Task>, nodes: &[Node]) {
    apply_actions(plan, tasks);
    run_agents(tasks, nodes);
}

/// The controllers' half of [`apply`]: the actions only.
pub fn apply_actions(plan: &Plan, tasks: &mut Vec<Task>) {
    for action in &plan.actions {
        match action {
            Action::Create { task, .. } => {
                if !tasks.iter().any(|t| t.id == task.id) {
                    tasks.push(Task::clone(task));
                }
            }
            Action::Assign { task_id, node } => {
                if let Some(t) = tasks.iter_mut().find(|t| t.id == task_id)
                    && t.state == TaskState::Pending
                {
                    t.node = Some(node.into());
                    t.state = TaskState::Scheduled;
                }
            }
            Action::Stop { task_id, .. } => {
                if let Some(t) = tasks.iter_mut().find(|t| t.id == task_id) {
                    t.desired = DesiredState::Shutdown;
                    if t.state == TaskState::Pending {
                        t.state = TaskState::Stopped;
                    }
                }
            }
            Action::MarkLost { task_id, .. } => {
                if let Some(t) = tasks.iter_mut().find(|t| t.id == task_id) {
                    // Desired stays: the agent decides when the node comes back.
                    t.state = TaskState::Lost;
                }
            }
            Action::UpdatePendingReason { task_id, reason } => {
                if let Some(t) = tasks.iter_mut().find(|t| t.id == task_id)
                    && t.state == TaskState::Pending
                {
                    t.error = Some(reason.as_str().into());
                }
            }
        }
    }
}

/// The agents' half of [`apply`]: every task on a live node moves on.
pub fn run_agents(tasks: &mut [Task], nodes: &[Node]) {
    let status: BTreeMap<&str, NodeStatus> =
        nodes.iter().map(|n| (n.id.as_str(), n.status)).collect();
    for t in tasks.iter_mut() {
        let live_node = t
            .node
            .as_deref()
            .and_then(|n| status.get(n))
            .is_some_and(|s| *s != NodeStatus::Down);
        if !live_node {
            continue;
        }
        if t.desired == DesiredState::Shutdown && !t.state.is_terminal() {
            t.state = TaskState::Stopped;
        } else if t.state == TaskState::Lost {
            // In this world a lost task's container died with its node: the agent gives it up.
            t.desired = DesiredState::Shutdown;
        } else if matches!(
            t.state,
            TaskState::Scheduled | TaskState::Starting | TaskState::Running
        ) {
            // In this world every task starts and passes its health checks.
            t.state = TaskState::Running;
            t.health = TaskHealth::Healthy;
        }
    }
}

/// Sum of what tasks holding resources request, per node.
pub fn load(tasks: &[Task]) -> BTreeMap<String, Resources> {
    let mut out: BTreeMap<String, Resources> = BTreeMap::new();
    for t in tasks.iter().filter(|t| t.state.holds_resources()) {
        if let Some(n) = &t.node {
            let e = out.entry(n.to_string()).or_default();
            *e = e.saturating_add(t.resources);
        }
    }
    out
}

/// Active tasks of `service`.
pub fn active<'t>(tasks: &'t [Task], service: &str) -> Vec<&'t Task> {
    tasks
        .iter()
        .filter(|t| t.service == service && t.is_active())
        .collect()
}

/// Slots of `service` with at least one serving task (active, running, not unhealthy, on a node
/// that is not down).
pub fn serving_slots(tasks: &[Task], nodes: &[Node], service: &str) -> usize {
    let down: Vec<&str> = nodes
        .iter()
        .filter(|n| n.status == NodeStatus::Down)
        .map(|n| n.id.as_str())
        .collect();
    let slots: std::collections::BTreeSet<u32> = tasks
        .iter()
        .filter(|t| t.service == service && t.is_active() && t.state == TaskState::Running)
        .filter(|t| t.health != TaskHealth::Unhealthy)
        .filter(|t| t.node.as_deref().is_some_and(|n| !down.contains(&n)))
        .map(|t| t.slot)
        .collect();
    slots.len()
}

/// One reconcile over the given state under `p`, with [`scheduler`].
pub fn policy_round(
    specs: &[VersionedSpec],
    tasks: &[Task],
    nodes: &[Node],
    now: u64,
    p: ReconcilePolicy,
) -> Plan {
    reconcile(
        &ReconcileInput {
            specs,
            tasks,
            nodes,
            network: &NetworkMatrix::new(),
            now,
            policy: p,
        },
        &scheduler(),
    )
}

/// Running replicas of `vs`, `count` per node (`<service>-<slot>-<node>`), slots from 0.
pub fn running(vs: &VersionedSpec, per_node: &[(&str, u32)]) -> Vec<Task> {
    let mut slot = 0;
    let mut out = Vec::new();
    for &(n, count) in per_node {
        for _ in 0..count {
            let mut t = task(vs, slot, TaskState::Running, Some(n));
            t.id = format!("{}-{slot}-{n}", vs.spec.name).into();
            out.push(t);
            slot += 1;
        }
    }
    out
}

/// Three ready nodes `a`, `b`, `c` of 8 cores and 8 GiB.
pub fn three_nodes() -> Vec<Node> {
    ["a", "b", "c"]
        .iter()
        .map(|id| node(id, 8000, 8 << 30, NodeStatus::Ready))
        .collect()
}
