//! Store throughput: puts and CAS transactions on `MemoryStore` and `SledStore`.
//!
//! `cargo bench --bench store`. Every sled write is flushed before it is acknowledged, so
//! sequential sled writes measure the flush latency of the disk; the `concurrent` cases show how
//! concurrent writers share flushes. Sled runs in a temporary directory.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use orion_core::store::{Compare, MemoryStore, Op, SledStore, Store, Txn};
use tokio::runtime::Runtime;

const VALUE_BYTES: usize = 256;
const WRITERS: u64 = 32;

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// `iters` sequential puts over 1,000 keys.
async fn puts<S: Store>(store: &S, iters: u64) -> Duration {
    let value = vec![7u8; VALUE_BYTES];
    let start = Instant::now();
    for i in 0..iters {
        black_box(
            store
                .put(&format!("/bench/{}", i % 1000), value.clone())
                .await,
        )
        .expect("put");
    }
    start.elapsed()
}

/// `iters` puts spread over `WRITERS` concurrent tasks (each on its own keys).
async fn concurrent_puts<S: Store>(store: Arc<S>, iters: u64) -> Duration {
    let start = Instant::now();
    let mut handles = Vec::new();
    for w in 0..WRITERS {
        let store = Arc::clone(&store);
        let share = iters / WRITERS + u64::from(w < iters % WRITERS);
        handles.push(tokio::spawn(async move {
            let value = vec![7u8; VALUE_BYTES];
            for i in 0..share {
                store
                    .put(&format!("/bench/{w}/{}", i % 100), value.clone())
                    .await
                    .expect("put");
            }
        }));
    }
    for handle in handles {
        handle.await.expect("writer");
    }
    start.elapsed()
}

/// `iters` read-compare-write increments of one counter (each one get + one CAS txn).
async fn cas_increments<S: Store>(store: &S, iters: u64) -> Duration {
    store
        .put("/bench/counter", b"0".to_vec())
        .await
        .expect("put");
    let start = Instant::now();
    for _ in 0..iters {
        let kv = store
            .get("/bench/counter")
            .await
            .expect("get")
            .expect("counter");
        let n: u64 = String::from_utf8_lossy(&kv.value).parse().expect("number");
        let txn = Txn::new()
            .when(Compare::ModRevision(kv.key.clone(), kv.mod_revision))
            .and_then(Op::Put(kv.key, (n + 1).to_string().into_bytes()));
        assert!(store.txn(txn).await.expect("txn").succeeded);
    }
    start.elapsed()
}

fn memory(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("store/memory");
    group.throughput(Throughput::Elements(1));
    group.measurement_time(Duration::from_secs(3));
    let store = MemoryStore::with_history_limit(10_000);
    group.bench_function("put", |b| b.iter_custom(|n| rt.block_on(puts(&store, n))));
    group.bench_function("txn_cas", |b| {
        b.iter_custom(|n| rt.block_on(cas_increments(&store, n)))
    });
    let shared = Arc::new(MemoryStore::with_history_limit(10_000));
    group.bench_function("put_concurrent_32", |b| {
        b.iter_custom(|n| rt.block_on(concurrent_puts(Arc::clone(&shared), n)))
    });
    group.finish();
}

/// The process's resident memory in KiB (Linux), for the memory figure of the sled run.
fn rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn sled(c: &mut Criterion) {
    let rss_before = rss_kib();
    let rt = runtime();
    let dir = tempfile::tempdir().expect("temp dir");
    let store =
        SledStore::open_with_history_limit(dir.path().join("db"), 10_000).expect("open sled store");
    let mut group = c.benchmark_group("store/sled");
    group.throughput(Throughput::Elements(1));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(5));
    group.bench_function("put", |b| b.iter_custom(|n| rt.block_on(puts(&store, n))));
    group.bench_function("txn_cas", |b| {
        b.iter_custom(|n| rt.block_on(cas_increments(&store, n)))
    });
    let shared = Arc::new(store);
    group.bench_function("put_concurrent_32", |b| {
        b.iter_custom(|n| rt.block_on(concurrent_puts(Arc::clone(&shared), n)))
    });
    group.finish();
    if let Ok(bytes) = shared.size_on_disk() {
        println!("store/sled: {bytes} bytes on disk after the run");
    }
    if let (Some(before), Some(after)) = (rss_before, rss_kib()) {
        println!("store/sled: resident memory {before} KiB before, {after} KiB after the run");
    }
}

criterion_group!(benches, memory, sled);
criterion_main!(benches);
