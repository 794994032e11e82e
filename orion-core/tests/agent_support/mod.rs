//! What the agent tests hold still: a runtime whose starts of chosen images wait for a gate, and
//! a store whose transactions wait for permits while held. Both count what they saw, so a test
//! waits for a state (never for a time).

#![allow(dead_code)]

use std::collections::{BTreeMap, HashSet};
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use orion_core::Result;
use orion_core::model::{Resources, Task, TaskState};
use orion_core::node::{Agent, SystemClock};
use orion_core::runtime::{
    ContainerInfo, ContainerSpec, ContainerStats, ExecOutput, FakeRuntime, LogOptions,
    LogStreamBox, Runtime,
};
use orion_core::store::{
    ClusterStore, KeyValue, MemoryStore, RangeResult, Revision, Store, StoreSnapshot, Txn,
    TxnResult, WatchStream,
};
use tokio::sync::{Semaphore, watch};

/// A [`FakeRuntime`] whose `create_and_start` of a held image waits until [`GatedRuntime::open`].
#[derive(Debug)]
pub struct GatedRuntime {
    pub fake: FakeRuntime,
    held: Mutex<HashSet<String>>,
    gate: watch::Sender<bool>,
    /// Calls of `create_and_start`, by image, as they began.
    pub starts: Mutex<Vec<String>>,
    /// Starts that returned (held or not).
    pub returned: AtomicUsize,
    /// Calls of `list`.
    pub lists: AtomicUsize,
}

impl GatedRuntime {
    /// Starts of every image in `held` wait for [`GatedRuntime::open`].
    pub fn holding(held: &[&str]) -> Self {
        GatedRuntime {
            fake: FakeRuntime::new(),
            held: Mutex::new(held.iter().map(|s| (*s).to_owned()).collect()),
            gate: watch::channel(false).0,
            starts: Mutex::new(Vec::new()),
            returned: AtomicUsize::new(0),
            lists: AtomicUsize::new(0),
        }
    }

    /// Lets every held start (and every later one) go.
    pub fn open(&self) {
        self.gate.send_replace(true);
    }

    /// `create_and_start` calls of `image` so far.
    pub fn starts_of(&self, image: &str) -> usize {
        self.starts
            .lock()
            .unwrap()
            .iter()
            .filter(|i| *i == image)
            .count()
    }
}

#[async_trait]
impl Runtime for GatedRuntime {
    fn name(&self) -> &'static str {
        "gated"
    }
    async fn ensure_image(&self, image: &str) -> Result<()> {
        self.fake.ensure_image(image).await
    }
    async fn create_and_start(&self, spec: &ContainerSpec) -> Result<ContainerInfo> {
        self.starts.lock().unwrap().push(spec.image.clone());
        let held = self.held.lock().unwrap().contains(&spec.image);
        if held {
            let mut open = self.gate.subscribe();
            let _ = open.wait_for(|o| *o).await;
        }
        let started = self.fake.create_and_start(spec).await;
        self.returned.fetch_add(1, Ordering::SeqCst);
        started
    }
    async fn stop(&self, id: &str, grace: Duration) -> Result<()> {
        self.fake.stop(id, grace).await
    }
    async fn remove(&self, id: &str) -> Result<()> {
        self.fake.remove(id).await
    }
    async fn inspect(&self, id: &str) -> Result<ContainerInfo> {
        self.fake.inspect(id).await
    }
    async fn list(&self, labels: &BTreeMap<String, String>) -> Result<Vec<ContainerInfo>> {
        self.lists.fetch_add(1, Ordering::SeqCst);
        self.fake.list(labels).await
    }
    async fn logs(&self, id: &str, options: LogOptions) -> Result<LogStreamBox> {
        self.fake.logs(id, options).await
    }
    async fn stats(&self, id: &str) -> Result<ContainerStats> {
        self.fake.stats(id).await
    }
    async fn exec(&self, id: &str, command: &[String]) -> Result<ExecOutput> {
        self.fake.exec(id, command).await
    }
}

/// A [`MemoryStore`] whose transactions, while held, each wait for a permit
/// ([`HeldStore::allow`]). Writes made on `memory` directly bypass it.
#[derive(Debug)]
pub struct HeldStore {
    pub memory: MemoryStore,
    held: AtomicBool,
    permits: Semaphore,
    /// Transactions that waited for a permit so far.
    pub waited: AtomicUsize,
    /// Transactions whose compares failed.
    pub failed: AtomicUsize,
}

impl HeldStore {
    pub fn new() -> Self {
        HeldStore {
            memory: MemoryStore::new(),
            held: AtomicBool::new(false),
            permits: Semaphore::new(0),
            waited: AtomicUsize::new(0),
            failed: AtomicUsize::new(0),
        }
    }

    /// From now on, each transaction waits for a permit.
    pub fn hold(&self) {
        self.held.store(true, Ordering::SeqCst);
    }

    /// Lets `n` waiting (or later) transactions go.
    pub fn allow(&self, n: usize) {
        self.permits.add_permits(n);
    }
}

#[async_trait]
impl Store for HeldStore {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>> {
        self.memory.get(key).await
    }
    async fn range(&self, prefix: &str) -> Result<RangeResult> {
        self.memory.range(prefix).await
    }
    async fn txn(&self, txn: Txn) -> Result<TxnResult> {
        if self.held.load(Ordering::SeqCst) {
            self.waited.fetch_add(1, Ordering::SeqCst);
            self.permits.acquire().await.expect("never closed").forget();
        }
        let result = self.memory.txn(txn).await?;
        if !result.succeeded {
            self.failed.fetch_add(1, Ordering::SeqCst);
        }
        Ok(result)
    }
    async fn watch(&self, prefix: &str, from_revision: Revision) -> Result<WatchStream> {
        self.memory.watch(prefix, from_revision).await
    }
    async fn compact(&self, revision: Revision) -> Result<()> {
        self.memory.compact(revision).await
    }
    async fn revision(&self) -> Result<Revision> {
        self.memory.revision().await
    }
    async fn snapshot(&self) -> Result<StoreSnapshot> {
        self.memory.snapshot().await
    }
    async fn restore(&self, snapshot: StoreSnapshot) -> Result<()> {
        self.memory.restore(snapshot).await
    }
}

/// A scheduled task of `service`, slot `slot`, on `node`.
pub fn scheduled(service: &str, slot: u32, node: &str) -> Task {
    let mut t = Task::new(service, slot, 1, Resources::new(10, 16 << 20));
    t.node = Some(node.into());
    t.transition(TaskState::Scheduled).unwrap();
    t
}

/// Polls `probe` every 10 ms for at most 10 s; panics naming `what` otherwise.
pub async fn eventually<F, Fut>(what: &str, mut probe: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let started = Instant::now();
    for _ in 0..1000 {
        if probe().await {
            return;
        }
        if started.elapsed() > Duration::from_secs(10) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("not within 10 s: {what}");
}

/// The agent of node `n1` over `store` and `rt`, publishing on 127.0.0.1.
pub fn agent_on_n1<R: Runtime>(
    store: &ClusterStore<MemoryStore>,
    rt: &Arc<R>,
) -> Agent<MemoryStore, R> {
    Agent::new(
        "n1",
        store.clone(),
        rt.clone(),
        Arc::new(SystemClock),
        "127.0.0.1",
    )
}

/// The stored state of task `id` (which must exist).
pub async fn state_of(store: &ClusterStore<MemoryStore>, id: &str) -> TaskState {
    store.get_task(id).await.unwrap().unwrap().state
}

/// Shares `value` (for `Arc`-taking helpers).
pub fn shared<T>(value: T) -> Arc<T> {
    Arc::new(value)
}
