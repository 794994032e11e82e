//! `WatchedState` against `load_state`: after seeded random writes of every kind `load_state`
//! reads (services and their versions, tasks, slots, rollouts, nodes, per-link and per-node
//! measurements), multi-key transactions, writes it ignores, compactions and restores, the kept
//! state equals a fresh `load_state` at the same revision. Run on `MemoryStore` (unbounded, and
//! with the small history limit that makes a lagging watch fail with `Compacted`, the shape of
//! `RaftStore`'s inner store) and on `SledStore`.

use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng};

use orion_core::Error;
use orion_core::model::{NetworkMeasurement, Node, NodeLinks, Resources, ServiceSpec, Task};
use orion_core::model::{TaskHealth, TaskState};
use orion_core::reconciler::Rollout;
use orion_core::store::{
    ClusterStore, MemoryStore, Op, SledStore, Store, StoreSnapshot, Txn, WatchedState, keys,
};

const SERVICES: u64 = 4;
const TASKS: u64 = 30;
const NODES: u64 = 6;
const STEPS: usize = 400;

/// Seeded (`rand`'s `StdRng`, as the cluster harness uses), so a failure names its seed.
struct Rng(StdRng);

impl Rng {
    fn seeded(seed: u64) -> Self {
        Rng(StdRng::seed_from_u64(seed))
    }
    fn below(&mut self, n: u64) -> u64 {
        self.0.random_range(0..n)
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

fn service(rng: &mut Rng) -> ServiceSpec {
    let name = format!("s{}", rng.below(SERVICES));
    let image = format!("img:{}", rng.below(3));
    ServiceSpec::new(name, image, rng.below(4) as u32)
}

fn task(rng: &mut Rng) -> Task {
    let mut task = Task::new(
        &format!("s{}", rng.below(SERVICES)),
        rng.below(3) as u32,
        1 + rng.below(3),
        Resources::new(100 * rng.below(4), 1 << 20),
    );
    task.id = format!("t{:02}", rng.below(TASKS)).into();
    task.node = rng
        .chance(70)
        .then(|| format!("n{}", rng.below(NODES)).into());
    task.state = [TaskState::Pending, TaskState::Running, TaskState::Failed][rng.below(3) as usize];
    task.health = [TaskHealth::Unknown, TaskHealth::Healthy][rng.below(2) as usize];
    task
}

fn node(rng: &mut Rng) -> Node {
    Node::new(
        format!("n{}", rng.below(NODES)),
        Resources::new(4_000, 8 << 30),
    )
    .with_label("zone", format!("z{}", rng.below(2)))
}

fn link(from: &str, to: u64, rng: &mut Rng) -> NetworkMeasurement {
    NetworkMeasurement {
        from: from.to_owned(),
        to: format!("n{to}"),
        rtt_ms: 0.5 + rng.below(50) as f64,
        jitter_ms: 0.1,
        measured_at: rng.below(1_000),
        ..NetworkMeasurement::default()
    }
}

fn row(rng: &mut Rng) -> NodeLinks {
    let from = format!("n{}", rng.below(NODES));
    let mut links = Vec::new();
    for to in 0..NODES {
        if rng.chance(50) {
            links.push(link(&from, to, rng));
        }
    }
    NodeLinks {
        from,
        published_at: rng.below(1_000),
        links,
    }
}

/// One random write (or none, when it finds nothing to change).
async fn write<S: Store>(cluster: &ClusterStore<S>, rng: &mut Rng) {
    let store = cluster.inner();
    match rng.below(14) {
        0 | 1 => {
            cluster.put_service(&service(rng)).await.unwrap();
        }
        2 => {
            let name = format!("s{}", rng.below(SERVICES));
            cluster.delete_service(&name).await.unwrap();
        }
        3 | 4 => {
            cluster.put_task(&task(rng)).await.unwrap();
        }
        5 => {
            cluster
                .delete_task(&format!("t{:02}", rng.below(TASKS)))
                .await
                .unwrap();
        }
        6 => {
            // Several keys in one revision: tasks, a slot, and a deletion.
            let mut txn = Txn::new();
            for _ in 0..3 {
                let t = task(rng);
                txn = txn.and_then(Op::Put(keys::task(&t.id), serde_json::to_vec(&t).unwrap()));
            }
            let slot = keys::slot(&format!("s{}", rng.below(SERVICES)), rng.below(3) as u32);
            txn = txn.and_then(Op::Put(slot, b"\"t00\"".to_vec()));
            txn = txn.and_then(Op::Delete(keys::task(&format!("t{:02}", rng.below(TASKS)))));
            store.txn(txn).await.unwrap();
        }
        7 => {
            let slot = keys::slot(&format!("s{}", rng.below(SERVICES)), rng.below(3) as u32);
            if rng.chance(60) {
                store.put(&slot, b"\"t01\"".to_vec()).await.unwrap();
            } else {
                store.delete(&slot).await.unwrap();
            }
        }
        8 => {
            let name = format!("s{}", rng.below(SERVICES));
            if rng.chance(70) {
                let expected = cluster.get_rollout(&name).await.unwrap().map_or(0, |r| r.1);
                let record = Rollout::new(&name, 1 + rng.below(5), Some(1), 0, rng.below(99));
                cluster
                    .put_rollout_if(&record, expected, None)
                    .await
                    .unwrap();
            } else {
                store.delete(&keys::rollout(&name)).await.unwrap();
            }
        }
        9 => {
            if rng.chance(75) {
                cluster.put_node(&node(rng)).await.unwrap();
            } else {
                let id = format!("n{}", rng.below(NODES));
                cluster.delete_node(&id).await.unwrap();
            }
        }
        10 => {
            let (from, to) = (format!("n{}", rng.below(NODES)), rng.below(NODES));
            if rng.chance(70) {
                cluster
                    .put_measurement(&link(&from, to, rng))
                    .await
                    .unwrap();
            } else {
                let to = format!("n{to}");
                cluster.delete_measurement(&from, &to).await.unwrap();
            }
        }
        11 => {
            if rng.chance(75) {
                let row = row(rng);
                cluster
                    .publish_network(&row.from, Some(&row), None)
                    .await
                    .unwrap();
            } else {
                let from = format!("n{}", rng.below(NODES));
                store.delete(&keys::links(&from)).await.unwrap();
            }
        }
        12 => {
            // Keys `load_state` does not read still move the revision.
            let key = format!("{}s{}", keys::TRACES, rng.below(SERVICES));
            store.put(&key, b"\"00-x\"".to_vec()).await.unwrap();
        }
        _ => {
            let node = format!("n{}", rng.below(NODES));
            cluster.delete_measurements_of(&node).await.unwrap();
        }
    }
}

/// Brings `watched` up to the store's revision and checks it against `load_state`.
async fn check<S: Store + Clone>(
    watched: &mut WatchedState<S>,
    cluster: &ClusterStore<S>,
    at: &str,
) {
    let kept = watched.current().await.unwrap().clone();
    let loaded = cluster.load_state().await.unwrap();
    assert_eq!(kept.revision, loaded.revision, "{at}: revision");
    assert_eq!(kept, loaded, "{at}: the kept state differs from load_state");
}

/// Random writes with a check every few steps; a compaction in the middle of the run.
async fn conformance<S: Store + Clone>(cluster: ClusterStore<S>, seed: u64) -> WatchedState<S> {
    let mut rng = Rng::seeded(seed);
    let mut watched = cluster.watched_state();
    check(&mut watched, &cluster, &format!("seed {seed}, empty")).await;
    for step in 0..STEPS {
        write(&cluster, &mut rng).await;
        if step == STEPS / 2 {
            let revision = cluster.inner().revision().await.unwrap();
            cluster.inner().compact(revision).await.unwrap();
        }
        if rng.chance(20) {
            check(&mut watched, &cluster, &format!("seed {seed}, step {step}")).await;
        }
    }
    check(&mut watched, &cluster, &format!("seed {seed}, end")).await;
    watched
}

#[tokio::test]
async fn kept_state_equals_load_state_on_memory_store() {
    for seed in [1, 2, 3, 0x5eed, 0xdead_beef] {
        let watched = conformance(ClusterStore::new(MemoryStore::new()), seed).await;
        assert!(
            watched.applied_events() > 0,
            "seed {seed}: the state followed the watch"
        );
    }
}

#[tokio::test]
async fn kept_state_equals_load_state_when_history_is_compacted_under_it() {
    // The inner store of `RaftStore` keeps a bounded history: a watch that lags behind it fails
    // with `Compacted`, and the kept state must read everything again.
    for seed in [7, 8, 9] {
        let watched =
            conformance(ClusterStore::new(MemoryStore::with_history_limit(3)), seed).await;
        assert!(
            watched.reloads() > 1,
            "seed {seed}: compaction made it reload"
        );
    }
}

#[tokio::test]
async fn kept_state_equals_load_state_on_sled_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = std::sync::Arc::new(SledStore::open(dir.path().join("db")).unwrap());
    conformance(ClusterStore::new(store), 11).await;
}

#[tokio::test]
async fn follows_writes_without_reading_everything_again() {
    let cluster = ClusterStore::new(MemoryStore::new());
    let mut rng = Rng::seeded(21);
    let mut watched = cluster.watched_state();
    watched.current().await.unwrap();
    for step in 0..100 {
        write(&cluster, &mut rng).await;
        check(&mut watched, &cluster, &format!("step {step}")).await;
    }
    assert_eq!(watched.reloads(), 1, "only the first read was a full one");
    assert!(watched.applied_events() >= 90);
}

#[tokio::test]
async fn a_compaction_past_the_watch_makes_it_reload() {
    let cluster = ClusterStore::new(MemoryStore::new());
    let mut rng = Rng::seeded(31);
    let mut watched = cluster.watched_state();
    watched.current().await.unwrap();
    for _ in 0..20 {
        write(&cluster, &mut rng).await;
    }
    let revision = cluster.inner().revision().await.unwrap();
    cluster.inner().compact(revision + 1).await.unwrap();
    check(&mut watched, &cluster, "after the compaction").await;
    assert_eq!(watched.reloads(), 2);
}

#[tokio::test]
async fn a_restore_makes_it_reload() {
    let cluster = ClusterStore::new(MemoryStore::new());
    let mut rng = Rng::seeded(41);
    let mut watched = cluster.watched_state();
    for _ in 0..30 {
        write(&cluster, &mut rng).await;
    }
    check(&mut watched, &cluster, "before the restore").await;
    // A snapshot of another store, further ahead (what a follower installs from its leader).
    let other = ClusterStore::new(MemoryStore::new());
    for _ in 0..80 {
        write(&other, &mut rng).await;
    }
    let snapshot: StoreSnapshot = other.inner().snapshot().await.unwrap();
    cluster.inner().restore(snapshot).await.unwrap();
    check(&mut watched, &cluster, "after the restore").await;
    assert_eq!(watched.reloads(), 2);
    // A restore to an older revision is noticed too (the watch ends with the old epoch).
    let older = ClusterStore::new(MemoryStore::new());
    write(&older, &mut rng).await;
    cluster
        .inner()
        .restore(older.inner().snapshot().await.unwrap())
        .await
        .unwrap();
    check(&mut watched, &cluster, "after restoring an older snapshot").await;
}

#[tokio::test]
async fn never_serves_a_state_older_than_asked() {
    let cluster = ClusterStore::new(MemoryStore::new());
    let mut watched = cluster
        .watched_state()
        .with_wait_limit(Duration::from_millis(50))
        .unwrap();
    let mut rng = Rng::seeded(51);
    for _ in 0..10 {
        write(&cluster, &mut rng).await;
        let revision = cluster.inner().revision().await.unwrap();
        assert!(watched.at_least(revision).await.unwrap().revision >= revision);
    }
    // A revision the store never reached: refused once the bounded wait and a full read fail.
    let ahead = cluster.inner().revision().await.unwrap() + 5;
    let err = watched.at_least(ahead).await.unwrap_err();
    assert!(matches!(err, Error::Unavailable(_)), "{err}");
}

#[tokio::test]
async fn a_wait_limit_beyond_the_bound_is_refused_naming_the_field() {
    let cluster = ClusterStore::new(MemoryStore::new());
    let err = cluster
        .watched_state()
        .with_wait_limit(Duration::from_secs(3_600))
        .unwrap_err();
    assert!(err.to_string().contains("wait_limit"), "{err}");
}
