//! The simulated nodes, all in this process: one task watch on this process's replica (a Raft
//! learner), routed by `orion_core::node::TaskDemux` to one tokio task per node. A watch is a
//! cursor over the write history, so N per-node watchers would each read and decode every task
//! event; the demultiplexer decodes each once (the fan-out table shows what N watchers cost).
//!
//! Each node reacts to its tasks as an agent does: a `scheduled` task is reported `starting`, a
//! `starting` one is started through the node's `FakeRuntime` and reported `running` with its
//! container id. Reports are coalesced **across nodes**: one writer takes whatever reports are
//! waiting (up to [`MAX_REPORTS_PER_TXN`]) into one transaction, each task compared on the
//! revision its node saw, with [`WRITERS`] transactions in flight; a transaction whose compares
//! fail is retried task by task (a task that changed since is dropped: the watch brings it back).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use futures::StreamExt;
use orion_core::model::{CompactString, DesiredState, Node, Resources, ServiceSpec, Task};
use orion_core::model::{TaskHealth, TaskState};
use orion_core::node::{TaskDemux, container_spec};
use orion_core::runtime::{FakeRuntime, Runtime};
use orion_core::store::{
    ClusterStore, Compare, Op, Revision, Store, Txn, TypedEvent, decode_value, keys,
};
use tokio::sync::{Semaphore, mpsc};

/// Most task reports in one transaction.
pub const MAX_REPORTS_PER_TXN: usize = 512;
/// Report transactions in flight at once.
pub const WRITERS: usize = 4;
/// Node records per registration transaction.
const NODES_PER_TXN: usize = 500;
/// Zones the nodes are spread over.
pub const ZONES: usize = 8;

/// Progress seen on this process's replica.
#[derive(Debug, Default)]
pub struct Progress {
    pub assigned: AtomicU64,
    pub running: AtomicU64,
    /// Task events read from the one watch.
    pub events: AtomicU64,
    pub report_txns: AtomicU64,
    /// Report transactions whose compares failed (retried task by task).
    pub report_conflicts: AtomicU64,
    pub report_errors: AtomicU64,
    /// Times the watch fell behind the history and was resynced from a range read.
    pub resyncs: AtomicU64,
}

/// One agent's report: the task as it should be stored, and the revision its node saw.
struct Report {
    task: Task,
    seen: Revision,
}

/// The name of simulated node `i`.
pub fn node_name(i: usize) -> String {
    format!("sim-{i:05}")
}

/// Registers `count` ready nodes, each with room for `per_node` tasks of `task` resources,
/// spread over [`ZONES`] zones, in transactions of [`NODES_PER_TXN`].
pub async fn register_nodes<S: Store>(
    store: &ClusterStore<S>,
    count: usize,
    per_node: u32,
    task: Resources,
) -> orion_core::Result<()> {
    let capacity = Resources::new(
        task.cpu_millicores * u64::from(per_node),
        task.memory_bytes * u64::from(per_node),
    );
    for first in (0..count).step_by(NODES_PER_TXN) {
        let mut txn = Txn::new();
        for i in first..(first + NODES_PER_TXN).min(count) {
            let node = Node {
                max_tasks: Some(per_node),
                updated_at: orion_core::model::now_millis(),
                ..Node::new(node_name(i), capacity)
                    .with_label(orion_core::model::ZONE_LABEL, format!("zone-{}", i % ZONES))
            };
            let key = keys::node(&node.id);
            let value = serde_json::to_vec(&node).expect("encode a node");
            txn = txn.and_then(Op::Put(key, value));
        }
        store.inner().txn(txn).await?;
    }
    Ok(())
}

/// Starts the simulation: the routed watch from `from`, `nodes` node tasks, the report writers.
/// Runs until the store's watch ends (the replica is shut down).
pub async fn start<S: Store + Clone>(
    store: ClusterStore<S>,
    nodes: usize,
    specs: Arc<HashMap<String, ServiceSpec>>,
    from: Revision,
    progress: Arc<Progress>,
) -> orion_core::Result<()> {
    let (reports_tx, reports) = mpsc::unbounded_channel();
    let mut demux = TaskDemux::new();
    for i in 0..nodes {
        let name = node_name(i);
        let events = demux.subscribe(&name);
        tokio::spawn(node_loop(name, events, specs.clone(), reports_tx.clone()));
    }
    tokio::spawn(report_writer(store.clone(), reports, progress.clone()));
    let watch = store.watch_tasks(from).await?;
    tokio::spawn(route(store, watch, demux, progress));
    Ok(())
}

/// Reads the one task watch, counts progress and routes every event to its node.
async fn route<S: Store>(
    store: ClusterStore<S>,
    mut watch: orion_core::store::TypedWatch<Task>,
    mut demux: TaskDemux,
    progress: Arc<Progress>,
) {
    let mut assigned: HashSet<CompactString> = HashSet::new();
    let mut running: HashSet<CompactString> = HashSet::new();
    loop {
        let event = match watch.next().await {
            Some(Ok(e)) => e,
            Some(Err(_)) => {
                // Fell behind the history: read every task, then watch on from there.
                progress.resyncs.fetch_add(1, Ordering::Relaxed);
                let Ok(range) = store.inner().range(keys::TASKS).await else {
                    return;
                };
                for kv in range.kvs {
                    let Ok(task) = decode_value::<Task>(&kv.key, &kv.value) else {
                        continue;
                    };
                    let event = TypedEvent::Put {
                        id: task.id.to_string(),
                        value: task,
                        prev: None,
                        revision: kv.mod_revision,
                    };
                    count(&event, &mut assigned, &mut running, &progress);
                    demux.route(event);
                }
                match store.watch_tasks(range.revision + 1).await {
                    Ok(w) => watch = w,
                    Err(_) => return,
                }
                continue;
            }
            None => return,
        };
        count(&event, &mut assigned, &mut running, &progress);
        demux.route(event);
    }
}

fn count(
    event: &TypedEvent<Task>,
    assigned: &mut HashSet<CompactString>,
    running: &mut HashSet<CompactString>,
    progress: &Progress,
) {
    progress.events.fetch_add(1, Ordering::Relaxed);
    let TypedEvent::Put { value, .. } = event else {
        return;
    };
    if value.node.is_some() && !assigned.contains(&value.id) {
        assigned.insert(value.id.clone());
        progress.assigned.fetch_add(1, Ordering::Relaxed);
    }
    if value.state == TaskState::Running && !running.contains(&value.id) {
        running.insert(value.id.clone());
        progress.running.fetch_add(1, Ordering::Relaxed);
    }
}

/// One simulated node's agent: reacts to its tasks' events.
async fn node_loop(
    name: String,
    mut events: mpsc::UnboundedReceiver<TypedEvent<Task>>,
    specs: Arc<HashMap<String, ServiceSpec>>,
    reports: mpsc::UnboundedSender<Report>,
) {
    let runtime = FakeRuntime::new();
    while let Some(event) = events.recv().await {
        let TypedEvent::Put {
            value: mut task,
            revision,
            ..
        } = event
        else {
            continue;
        };
        if task.node.as_deref() != Some(name.as_str()) || task.desired != DesiredState::Running {
            continue;
        }
        match task.state {
            TaskState::Scheduled => {
                if task.transition(TaskState::Starting).is_err() {
                    continue;
                }
            }
            TaskState::Starting => {
                let Some(spec) = specs.get(task.service.as_str()) else {
                    continue;
                };
                let container = container_spec(spec, &task, &name, "127.0.0.1");
                let Ok(c) = runtime.create_and_start(&container).await else {
                    continue;
                };
                if task.transition(TaskState::Running).is_err() {
                    continue;
                }
                task.container_id = Some(c.id);
                task.ports = c.ports;
                task.health = if spec.health_check.is_some() {
                    TaskHealth::Starting
                } else {
                    TaskHealth::Unknown
                };
            }
            _ => continue,
        }
        let report = Report {
            task,
            seen: revision,
        };
        if reports.send(report).is_err() {
            return;
        }
    }
}

/// Coalesces the nodes' reports into transactions (see the module docs).
async fn report_writer<S: Store + Clone>(
    store: ClusterStore<S>,
    mut reports: mpsc::UnboundedReceiver<Report>,
    progress: Arc<Progress>,
) {
    let in_flight = Arc::new(Semaphore::new(WRITERS));
    while let Some(first) = reports.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_REPORTS_PER_TXN {
            match reports.try_recv() {
                Ok(r) => batch.push(r),
                Err(_) => break,
            }
        }
        let permit = in_flight.clone().acquire_owned().await.expect("semaphore");
        let (store, progress) = (store.clone(), progress.clone());
        tokio::spawn(async move {
            write_reports(&store, batch, &progress).await;
            drop(permit);
        });
    }
}

async fn write_reports<S: Store>(store: &ClusterStore<S>, batch: Vec<Report>, progress: &Progress) {
    let compare = |r: &Report| Compare::ModRevision(keys::task(&r.task.id), r.seen);
    let records: Vec<(&Task, Vec<Op>)> = batch.iter().map(|r| (&r.task, Vec::new())).collect();
    let when = batch.iter().map(compare).collect();
    progress.report_txns.fetch_add(1, Ordering::Relaxed);
    match store.put_tasks_if(&records, when).await {
        Ok(true) => return,
        Ok(false) => progress.report_conflicts.fetch_add(1, Ordering::Relaxed),
        Err(_) => progress.report_errors.fetch_add(1, Ordering::Relaxed),
    };
    for r in &batch {
        progress.report_txns.fetch_add(1, Ordering::Relaxed);
        if store
            .put_task_if(&r.task, vec![compare(r)], Vec::new())
            .await
            .is_err()
        {
            progress.report_errors.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Seconds since `t0`.
pub fn since(t0: Instant) -> f64 {
    t0.elapsed().as_secs_f64()
}
