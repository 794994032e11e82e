//! The typed layer: services, tasks, nodes and network measurements on any [`Store`].
//!
//! Values are JSON under the keys of [`keys`], except tasks, which are kept in a compact binary
//! record (`record`; [`decode_value`] reads either). Reads that find bytes they cannot decode
//! fail with [`Error::Corrupt`] naming the key. Names and ids become key segments, so they must be
//! non-empty and free of `/` ([`Error::Invalid`] otherwise).
//!
//! **Spec versions.** Every service has a `spec_version` counter, kept next to it under
//! [`keys::SERVICE_VERSIONS`] and written in the same transaction as the spec. It starts at 1
//! and grows by one each time [`ClusterStore::put_service`] or [`ClusterStore::update_service`]
//! stores a spec whose *tasks* would differ. Putting an identical spec writes nothing; changing
//! only `replicas`, `scale_policy` or `update_strategy` stores the spec but keeps the version, so
//! scaling never looks like a rollout to the reconciler (which replaces tasks whose
//! `spec_version` is older). The counter survives the service's deletion, so a service deleted
//! and created again never reuses a version its old tasks carry.
//!
//! **Read-modify-write.** [`ClusterStore::update_task`] and [`ClusterStore::update_node`] read,
//! apply a closure and write back with a compare on the key's `mod_revision`, retrying on a
//! conflicting write up to [`MAX_CAS_ATTEMPTS`] times before giving up with [`Error::Conflict`].
//! [`ClusterStore::create_service`] (create-if-missing) and [`ClusterStore::put_service_if`]
//! (replace-if-unchanged) never overwrite another writer's spec.

use std::collections::HashMap;

use futures::StreamExt;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{Compare, Op, Revision, Store, Txn, WatchStream};
use crate::error::{Error, Result, ValidationErrors};
use crate::model::{NetworkCoordinate, NetworkMatrix, NetworkMeasurement, Node, ServiceSpec, Task};

mod autoscale;
mod event;
mod history;
pub mod keys;
mod links;
mod record;
mod revisions;
mod secrets;
mod service_cas;
mod sorted;
mod state;
mod task_batch;
mod traces;
mod watch_pump;
mod watched;

use record::{decode, encode, encode_task};
use state::{services_from, state_from};

pub use history::{DEFAULT_SPEC_HISTORY, MAX_SPEC_HISTORY, SpecRevision};

pub use event::{TypedEvent, TypedWatch};
pub use record::{TASK_RECORD_V1, decode_value};
pub use revisions::KeyRevisions;
pub use watched::{DEFAULT_WAIT_LIMIT, MAX_WAIT_LIMIT, WatchedState};

/// How many times a read-modify-write helper tries before failing with [`Error::Conflict`].
pub const MAX_CAS_ATTEMPTS: usize = 64;

/// A service spec with its spec version.
#[derive(Debug, Clone, PartialEq)]
pub struct VersionedService {
    pub spec: ServiceSpec,
    /// Grows by one per stored change of the spec; tasks record it as `Task::spec_version`.
    pub spec_version: u64,
    /// The store revision of the spec's last write.
    pub mod_revision: Revision,
}

/// Everything the controllers need, read at one revision.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClusterState {
    /// The revision the state was read at (watch from `revision + 1` for what follows).
    pub revision: Revision,
    /// Services in name order.
    pub services: Vec<VersionedService>,
    /// Tasks in id order.
    pub tasks: Vec<Task>,
    /// Nodes in id order.
    pub nodes: Vec<Node>,
    pub network: NetworkMatrix,
    /// The `mod_revision` of every task key, replica-slot key ([`keys::slot`]) and rollout key
    /// ([`keys::rollout`]) at `revision`: what a controller compares against when it acts on
    /// this state.
    pub revisions: KeyRevisions,
    /// Each service's latest rollout record, by service name.
    pub rollouts: HashMap<String, crate::reconciler::Rollout>,
}

/// Typed access to the cluster state on a store `S`.
///
/// ```
/// # #[tokio::main] async fn main() -> orion_core::Result<()> {
/// use orion_core::model::{Resources, ServiceSpec, Task, TaskState};
/// use orion_core::store::{ClusterStore, MemoryStore};
/// let cluster = ClusterStore::new(MemoryStore::new());
/// let web = cluster.put_service(&ServiceSpec::new("web", "nginx:1", 1)).await?;
/// assert_eq!(web.spec_version, 1);
/// let task = Task::new("web", 0, web.spec_version, Resources::default());
/// cluster.create_task(&task).await?;
/// let task = cluster.update_task(&task.id, |t| t.transition(TaskState::Scheduled)).await?;
/// assert_eq!(task.state, TaskState::Scheduled);
/// assert_eq!(cluster.load_state().await?.tasks, vec![task]);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct ClusterStore<S> {
    store: S,
    /// Spec versions kept per service in the history ([`keys::SPEC_HISTORY`]).
    history_limit: usize,
}

impl<S> ClusterStore<S> {
    /// Wraps `store`, keeping the newest [`DEFAULT_SPEC_HISTORY`] spec versions per service
    /// (see [`ClusterStore::with_spec_history`]).
    pub fn new(store: S) -> Self {
        ClusterStore {
            store,
            history_limit: DEFAULT_SPEC_HISTORY,
        }
    }
    /// The underlying store.
    pub fn inner(&self) -> &S {
        &self.store
    }
}

/// Checks that `value` can be a key segment.
fn check_segment(field: &str, value: &str) -> Result<()> {
    if value.is_empty() || value.contains('/') {
        let mut errors = ValidationErrors::default();
        errors.push(
            field,
            format!("{value:?}"),
            "a non-empty name without '/' (it becomes a store key segment)",
        );
        return Err(errors.into());
    }
    Ok(())
}

fn gave_up(key: &str) -> Error {
    Error::Conflict(format!(
        "{key} kept changing under concurrent writers; gave up after {MAX_CAS_ATTEMPTS} attempts"
    ))
}

impl<S: Store> ClusterStore<S> {
    async fn get_typed<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        match self.store.get(key).await? {
            Some(kv) => Ok(Some(decode(&kv)?)),
            None => Ok(None),
        }
    }

    async fn list_typed<T: DeserializeOwned>(&self, prefix: &str) -> Result<Vec<T>> {
        let range = self.store.range(prefix).await?;
        range.kvs.iter().map(decode).collect()
    }

    async fn put_typed<T: Serialize>(&self, key: &str, value: &T) -> Result<Revision> {
        self.store.put(key, encode(key, value)?).await
    }

    /// Read-modify-write of an existing value with a compare on its `mod_revision`, writing
    /// the new value as `encode` gives it.
    async fn update_typed<T, F>(
        &self,
        kind: &'static str,
        id: &str,
        key: &str,
        encode: fn(&str, &T) -> Result<Vec<u8>>,
        mut f: F,
    ) -> Result<T>
    where
        T: DeserializeOwned,
        F: FnMut(&mut T) -> Result<()>,
    {
        for _ in 0..MAX_CAS_ATTEMPTS {
            let kv = self
                .store
                .get(key)
                .await?
                .ok_or_else(|| Error::not_found(kind, id))?;
            let mut value: T = decode(&kv)?;
            f(&mut value)?;
            let txn = Txn::new()
                .when(Compare::ModRevision(key.to_owned(), kv.mod_revision))
                .and_then(Op::Put(key.to_owned(), encode(key, &value)?));
            if self.store.txn(txn).await?.succeeded {
                return Ok(value);
            }
        }
        Err(gave_up(key))
    }

    async fn watch_typed<T>(&self, prefix: &'static str, from: Revision) -> Result<TypedWatch<T>>
    where
        T: DeserializeOwned + Send + 'static,
    {
        let stream: WatchStream = self.store.watch(prefix, from).await?;
        Ok(Box::pin(stream.map(move |item| {
            item.and_then(|event| event::decode_event(prefix, event))
        })))
    }

    // ----- services -----

    /// Stores `spec` under its name and returns it with its spec version (see the module docs:
    /// unchanged for an identical spec, in which case nothing is written, or for a change of
    /// `replicas`, `scale_policy` or `update_strategy` only; otherwise the previous plus one).
    /// Does not validate the spec beyond its name; call `ServiceSpec::validate` first.
    pub async fn put_service(&self, spec: &ServiceSpec) -> Result<VersionedService> {
        check_segment("name", &spec.name)?;
        let spec_key = keys::service(&spec.name);
        for _ in 0..MAX_CAS_ATTEMPTS {
            let (current, version_kv) = self.read_service_keys(&spec.name).await?;
            let stored = current.as_ref().map(decode::<ServiceSpec>).transpose()?;
            if let Some(done) = self
                .write_service(spec.clone(), stored, current, version_kv)
                .await?
            {
                return Ok(done);
            }
        }
        Err(gave_up(&spec_key))
    }

    /// Applies `f` to service `name` and stores the result like [`ClusterStore::put_service`],
    /// atomically (retrying on conflict like [`ClusterStore::update_task`]). [`Error::NotFound`]
    /// if it does not exist; `f` must not change the name.
    pub async fn update_service<F>(&self, name: &str, mut f: F) -> Result<VersionedService>
    where
        F: FnMut(&mut ServiceSpec) -> Result<()>,
    {
        check_segment("name", name)?;
        for _ in 0..MAX_CAS_ATTEMPTS {
            let (current, version_kv) = self.read_service_keys(name).await?;
            let current = current.ok_or_else(|| Error::not_found("service", name))?;
            let stored: ServiceSpec = decode(&current)?;
            let mut spec = stored.clone();
            f(&mut spec)?;
            same_id("name", name, &spec.name)?;
            if let Some(done) = self
                .write_service(spec, Some(stored), Some(current), version_kv)
                .await?
            {
                return Ok(done);
            }
        }
        Err(gave_up(&keys::service(name)))
    }

    /// The service `name` with its spec version, if it exists.
    pub async fn get_service(&self, name: &str) -> Result<Option<VersionedService>> {
        check_segment("name", name)?;
        let (spec_key, version_key) = (keys::service(name), keys::service_version(name));
        let mut attempts = 0;
        loop {
            attempts += 1;
            let Some(spec_kv) = self.store.get(&spec_key).await? else {
                return Ok(None);
            };
            let version_kv = self.store.get(&version_key).await?;
            // `put_service` writes both in one txn: equal mod revisions mean a consistent pair.
            let consistent = version_kv
                .as_ref()
                .is_some_and(|v| v.mod_revision == spec_kv.mod_revision);
            if consistent || attempts >= MAX_CAS_ATTEMPTS {
                return Ok(Some(VersionedService {
                    spec: decode(&spec_kv)?,
                    spec_version: version_kv.as_ref().map(decode).transpose()?.unwrap_or(0),
                    mod_revision: spec_kv.mod_revision,
                }));
            }
        }
    }

    /// Every service with its spec version, in name order, read at one revision.
    pub async fn list_services(&self) -> Result<Vec<VersionedService>> {
        let range = self.store.range(keys::SERVICE_ANY).await?;
        services_from(&range.kvs)
    }

    /// Deletes service `name` (its spec version is kept). False when it did not exist.
    pub async fn delete_service(&self, name: &str) -> Result<bool> {
        check_segment("name", name)?;
        Ok(self.store.delete(&keys::service(name)).await?.is_some())
    }

    /// Changes to service specs from revision `from` (0: from the next write).
    pub async fn watch_services(&self, from: Revision) -> Result<TypedWatch<ServiceSpec>> {
        self.watch_typed(keys::SERVICES, from).await
    }

    // ----- tasks -----

    /// Stores `task` under its id (create or overwrite).
    pub async fn put_task(&self, task: &Task) -> Result<Revision> {
        check_segment("id", &task.id)?;
        let key = keys::task(&task.id);
        self.store.put(&key, encode_task(&key, task)?).await
    }

    /// Stores `task` only if no task has its id; [`Error::Conflict`] otherwise.
    pub async fn create_task(&self, task: &Task) -> Result<Revision> {
        check_segment("id", &task.id)?;
        let key = keys::task(&task.id);
        let txn = Txn::new()
            .when(Compare::Missing(key.clone()))
            .and_then(Op::Put(key.clone(), encode_task(&key, task)?));
        let result = self.store.txn(txn).await?;
        if result.succeeded {
            Ok(result.revision)
        } else {
            Err(Error::Conflict(format!(
                "task {:?} already exists",
                task.id
            )))
        }
    }

    /// Writes `task`, and the ops in `also`, in one transaction if every compare in `when` holds;
    /// `Ok(false)` (nothing written) when one does not. The building block of fenced controller
    /// actions (see `orion_core::reconciler::apply_plan`).
    pub async fn put_task_if(
        &self,
        task: &Task,
        when: Vec<Compare>,
        also: Vec<Op>,
    ) -> Result<bool> {
        check_segment("id", &task.id)?;
        let key = keys::task(&task.id);
        let mut txn = Txn::new().and_then(Op::Put(key.clone(), encode_task(&key, task)?));
        txn.compare = when;
        txn.success.extend(also);
        Ok(self.store.txn(txn).await?.succeeded)
    }

    /// The task `id`, if it exists.
    pub async fn get_task(&self, id: &str) -> Result<Option<Task>> {
        check_segment("id", id)?;
        self.get_typed(&keys::task(id)).await
    }

    /// Every task, in id order.
    pub async fn list_tasks(&self) -> Result<Vec<Task>> {
        self.list_typed(keys::TASKS).await
    }

    /// The tasks of service `service` (a filtered [`ClusterStore::list_tasks`]).
    pub async fn tasks_of_service(&self, service: &str) -> Result<Vec<Task>> {
        let mut tasks = self.list_tasks().await?;
        tasks.retain(|t| t.service == service);
        Ok(tasks)
    }

    /// The tasks placed on node `node` (a filtered [`ClusterStore::list_tasks`]).
    pub async fn tasks_on_node(&self, node: &str) -> Result<Vec<Task>> {
        let mut tasks = self.list_tasks().await?;
        tasks.retain(|t| t.node.as_deref() == Some(node));
        Ok(tasks)
    }

    /// Deletes task `id`. False when it did not exist.
    pub async fn delete_task(&self, id: &str) -> Result<bool> {
        check_segment("id", id)?;
        Ok(self.store.delete(&keys::task(id)).await?.is_some())
    }

    /// Applies `f` to task `id` and stores the result atomically (see the module docs).
    /// [`Error::NotFound`] if the task does not exist; an error from `f` aborts and is returned
    /// unchanged (for instance [`Error::IllegalTransition`]); `f` may run more than once and
    /// must not change the id.
    pub async fn update_task<F>(&self, id: &str, mut f: F) -> Result<Task>
    where
        F: FnMut(&mut Task) -> Result<()>,
    {
        check_segment("id", id)?;
        let key = keys::task(id);
        self.update_typed("task", id, &key, encode_task, |task: &mut Task| {
            f(task)?;
            same_id("id", id, &task.id)
        })
        .await
    }

    /// Changes to tasks from revision `from` (0: from the next write).
    pub async fn watch_tasks(&self, from: Revision) -> Result<TypedWatch<Task>> {
        self.watch_typed(keys::TASKS, from).await
    }

    // ----- nodes -----

    /// Stores `node` under its id (create or overwrite).
    pub async fn put_node(&self, node: &Node) -> Result<Revision> {
        check_segment("id", &node.id)?;
        self.put_typed(&keys::node(&node.id), node).await
    }

    /// Writes `node` if every compare in `when` holds; `Ok(false)` (nothing written) otherwise.
    pub async fn put_node_if(&self, node: &Node, when: Vec<Compare>) -> Result<bool> {
        check_segment("id", &node.id)?;
        let key = keys::node(&node.id);
        let mut txn = Txn::new().and_then(Op::Put(key.clone(), encode(&key, node)?));
        txn.compare = when;
        Ok(self.store.txn(txn).await?.succeeded)
    }

    /// Deletes the keys in `keys` in one transaction if every compare in `when` holds;
    /// `Ok(false)` (nothing deleted) otherwise.
    pub async fn delete_if(&self, keys: Vec<String>, when: Vec<Compare>) -> Result<bool> {
        let mut txn = Txn::new();
        txn.compare = when;
        txn.success = keys.into_iter().map(Op::Delete).collect();
        Ok(self.store.txn(txn).await?.succeeded)
    }

    /// The node `id`, if it exists.
    pub async fn get_node(&self, id: &str) -> Result<Option<Node>> {
        check_segment("id", id)?;
        self.get_typed(&keys::node(id)).await
    }

    /// Every node, in id order.
    pub async fn list_nodes(&self) -> Result<Vec<Node>> {
        self.list_typed(keys::NODES).await
    }

    /// Deletes node `id`. False when it did not exist.
    pub async fn delete_node(&self, id: &str) -> Result<bool> {
        check_segment("id", id)?;
        Ok(self.store.delete(&keys::node(id)).await?.is_some())
    }

    /// Applies `f` to node `id` and stores the result atomically, like
    /// [`ClusterStore::update_task`].
    pub async fn update_node<F>(&self, id: &str, mut f: F) -> Result<Node>
    where
        F: FnMut(&mut Node) -> Result<()>,
    {
        check_segment("id", id)?;
        let key = keys::node(id);
        self.update_typed("node", id, &key, encode, |node: &mut Node| {
            f(node)?;
            same_id("id", id, &node.id)
        })
        .await
    }

    /// Changes to nodes from revision `from` (0: from the next write).
    pub async fn watch_nodes(&self, from: Revision) -> Result<TypedWatch<Node>> {
        self.watch_typed(keys::NODES, from).await
    }

    // ----- network measurements -----

    /// Stores the measurement from `m.from` to `m.to` (replacing the previous one).
    pub async fn put_measurement(&self, m: &NetworkMeasurement) -> Result<Revision> {
        check_segment("from", &m.from)?;
        check_segment("to", &m.to)?;
        self.put_typed(&keys::measurement(&m.from, &m.to), m).await
    }

    /// The measurement from `from` to `to` (this direction only), if any.
    pub async fn get_measurement(
        &self,
        from: &str,
        to: &str,
    ) -> Result<Option<NetworkMeasurement>> {
        check_segment("from", from)?;
        check_segment("to", to)?;
        self.get_typed(&keys::measurement(from, to)).await
    }

    /// Deletes the measurement from `from` to `to` (this direction only); `None` when there was
    /// none.
    pub async fn delete_measurement(&self, from: &str, to: &str) -> Result<Option<Revision>> {
        check_segment("from", from)?;
        check_segment("to", to)?;
        self.store.delete(&keys::measurement(from, to)).await
    }

    /// Changes to the per-link measurement records ([`keys::NETWORK`]) from revision `from` (0:
    /// from the next write). Probers publish per-node records ([`keys::LINKS`]) instead.
    pub async fn watch_measurements(
        &self,
        from: Revision,
    ) -> Result<TypedWatch<NetworkMeasurement>> {
        self.watch_typed(keys::NETWORK, from).await
    }

    // ----- network coordinates -----

    /// Stores `c` as node `c.node`'s network coordinate (replacing the previous one).
    pub async fn put_coordinate(&self, c: &NetworkCoordinate) -> Result<Revision> {
        check_segment("node", &c.node)?;
        self.put_typed(&keys::coordinate(&c.node), c).await
    }

    /// Node `node`'s network coordinate, if it published one.
    pub async fn get_coordinate(&self, node: &str) -> Result<Option<NetworkCoordinate>> {
        check_segment("node", node)?;
        self.get_typed(&keys::coordinate(node)).await
    }

    /// Every published network coordinate, ordered by node id.
    pub async fn list_coordinates(&self) -> Result<Vec<NetworkCoordinate>> {
        self.list_typed(keys::COORDINATES).await
    }

    // ----- everything -----

    /// Services, tasks, nodes and measurements, read by one range at one revision. A leader
    /// that needs this every round keeps a [`WatchedState`] instead, which decodes only what
    /// changed.
    pub async fn load_state(&self) -> Result<ClusterState> {
        let range = self.store.range(keys::ROOT).await?;
        // Seconds at a million tasks: keep the runtime's other tasks (Raft heartbeats) moving.
        crate::blocking::cpu_bound(|| state_from(range))
    }
}

/// True when `a` and `b` make the same tasks: they differ at most in `replicas`,
/// `scale_policy` and `update_strategy`, which change how many tasks run and how they roll, not
/// what a task is.
fn same_task_template(a: &ServiceSpec, b: &ServiceSpec) -> bool {
    let strip = |spec: &ServiceSpec| ServiceSpec {
        replicas: 0,
        scale_policy: None,
        update_strategy: Default::default(),
        ..spec.clone()
    };
    strip(a) == strip(b)
}

fn same_id(field: &str, expected: &str, got: &str) -> Result<()> {
    if expected == got {
        return Ok(());
    }
    let mut errors = ValidationErrors::default();
    errors.push(
        field,
        format!("{got:?}"),
        format!("{expected:?}: an update must not change the id"),
    );
    Err(errors.into())
}
