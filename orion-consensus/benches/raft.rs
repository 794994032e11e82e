//! Raft commit-path benchmark on a 3-node loopback cluster (fdatasync'd file log, in-memory
//! inner store).
//!
//! Prints a table: write throughput with 1 and 64 concurrent writers, commit latency p50/p99,
//! and leader failover time over 20 kills (kill -> first write committed by the new leader).
//!
//! Run: `cargo bench -p orion-consensus --bench raft`; `-- --test` runs a tiny smoke version,
//! `-- throughput` skips the failover rounds (for profiling the commit path), and `-- tls` runs
//! every node with mutual TLS (a generated cluster CA, one certificate per node) and also prints
//! the time to set up TLS (CA and node certificate) and to start a node.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use orion_consensus::raft::{NodeId, RaftConfig, RaftNode, RaftStore};
use orion_consensus::security::{ClusterCa, NodeCert, NodeTls, RaftTls, Role};
use orion_core::store::{MemoryStore as MemStore, Store};

struct Sizes {
    single_writes: usize,
    concurrent_writes: usize,
    writers: usize,
    kills: usize,
}

struct Bench {
    dir: tempfile::TempDir,
    nodes: Vec<Option<RaftNode<MemStore>>>,
    addrs: Vec<String>,
    tls: BTreeMap<NodeId, RaftTls>,
}

/// Mutual TLS for nodes 1..=3 from a new CA; returns it with the time one node's setup took
/// (CA generation, node key, CSR and signature, rustls configurations).
fn tls_setup() -> (BTreeMap<NodeId, RaftTls>, Duration) {
    let started = Instant::now();
    let ca = ClusterCa::generate("bench").unwrap();
    let mut tls = BTreeMap::new();
    let mut first = Duration::ZERO;
    for id in 1..=3u64 {
        let cert = NodeCert::issue(
            &ca,
            &format!("n{id}"),
            Role::Voter,
            &["127.0.0.1".parse().unwrap()],
            Duration::from_secs(86_400),
        )
        .unwrap();
        let node = NodeTls::new(&ca, &cert).unwrap();
        if id == 1 {
            first = started.elapsed();
        }
        tls.insert(
            id,
            RaftTls {
                node,
                admission: None,
            },
        );
    }
    (tls, first)
}

impl Bench {
    fn config(&self, id: NodeId) -> RaftConfig {
        let addr = self.addrs[id as usize - 1].parse().unwrap();
        let mut c = RaftConfig::new(id, "bench", self.dir.path().join(format!("n{id}")), addr);
        c.snapshot_every = 50_000;
        c.tls = self.tls.get(&id).cloned();
        c
    }

    /// Starts the cluster; returns it with the time node 1 took to start (Raft port bound).
    async fn start(tls: BTreeMap<NodeId, RaftTls>) -> (Self, Duration) {
        let mut b = Bench {
            dir: tempfile::tempdir().unwrap(),
            nodes: Vec::new(),
            addrs: vec!["127.0.0.1:0".into(); 3],
            tls,
        };
        let mut first_start = Duration::ZERO;
        for id in 1..=3u64 {
            let started = Instant::now();
            let node = RaftNode::start(b.config(id), MemStore::new())
                .await
                .unwrap();
            if id == 1 {
                first_start = started.elapsed();
            }
            b.addrs[id as usize - 1] = node.addr().to_owned();
            if id == 1 {
                node.bootstrap().await.unwrap();
                node.wait_for_leader(Duration::from_secs(10)).await.unwrap();
            } else {
                node.join(&b.addrs[0]).await.unwrap();
            }
            b.nodes.push(Some(node));
        }
        (b, first_start)
    }

    fn node(&self, id: NodeId) -> &RaftNode<MemStore> {
        self.nodes[id as usize - 1].as_ref().unwrap()
    }

    fn leader(&self) -> NodeId {
        let running = self.nodes.iter().flatten();
        running
            .filter_map(|n| n.status().leader)
            .next()
            .expect("a leader")
    }

    fn store(&self, id: NodeId) -> RaftStore<MemStore> {
        self.node(id).store()
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

async fn throughput(
    store: RaftStore<MemStore>,
    writers: usize,
    total: usize,
) -> (f64, Vec<Duration>) {
    let per_writer = total.div_ceil(writers);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..writers {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(per_writer);
            for i in 0..per_writer {
                let t = Instant::now();
                store
                    .put(&format!("w{writers}/{w}/{i}"), vec![7u8; 64])
                    .await
                    .unwrap();
                lat.push(t.elapsed());
            }
            lat
        }));
    }
    let mut latencies = Vec::new();
    for t in tasks {
        latencies.extend(t.await.unwrap());
    }
    let rate = latencies.len() as f64 / started.elapsed().as_secs_f64();
    latencies.sort();
    (rate, latencies)
}

/// Per kill: (kill -> first commit by the new leader, of which the old leader's shutdown).
async fn failover(b: &mut Bench, kills: usize) -> (Vec<Duration>, Vec<Duration>) {
    let mut times = Vec::new();
    let mut shutdowns = Vec::new();
    for round in 0..kills {
        let old = b.leader();
        let survivor = (1..=3).find(|id| *id != old).unwrap();
        let store = b.store(survivor);
        let node = b.nodes[old as usize - 1].take().unwrap();
        let t = Instant::now();
        node.shutdown().await.unwrap();
        shutdowns.push(t.elapsed());
        // A client retries `Unavailable` (no leader yet, or a forwarded write's answer lost
        // with the old leader) until a write commits; bounded in count.
        let mut committed = false;
        for _ in 0..100 {
            match store.put(&format!("failover/{round}"), b"x".to_vec()).await {
                Ok(_) => {
                    committed = true;
                    break;
                }
                Err(orion_core::Error::Unavailable(_)) => {}
                Err(e) => panic!("write failed: {e}"),
            }
        }
        assert!(committed, "no write committed after the leader was killed");
        times.push(t.elapsed());
        // Bring the old leader back and let it catch up before the next kill.
        let node = RaftNode::start(b.config(old), MemStore::new())
            .await
            .unwrap();
        b.nodes[old as usize - 1] = Some(node);
        let target = b.node(survivor).status().commit_index;
        b.node(old)
            .raft()
            .wait(Some(Duration::from_secs(30)))
            .applied_index_at_least(Some(target), "caught up")
            .await
            .unwrap();
    }
    times.sort();
    shutdowns.sort();
    (times, shutdowns)
}

fn main() {
    let smoke = std::env::args().any(|a| a == "--test");
    let throughput_only = std::env::args().any(|a| a == "throughput");
    let with_tls = std::env::args().any(|a| a == "tls");
    let sizes = if smoke {
        Sizes {
            single_writes: 20,
            concurrent_writes: 128,
            writers: 64,
            kills: 1,
        }
    } else {
        Sizes {
            single_writes: 2_000,
            concurrent_writes: 50_000,
            writers: 64,
            kills: if throughput_only { 0 } else { 20 },
        }
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let (tls, tls_setup_time) = if with_tls {
            tls_setup()
        } else {
            (BTreeMap::new(), Duration::ZERO)
        };
        let (mut b, start_time) = Bench::start(tls).await;
        let leader = b.leader();
        let (rate1, lat1) = throughput(b.store(leader), 1, sizes.single_writes).await;
        let (rate64, lat64) =
            throughput(b.store(leader), sizes.writers, sizes.concurrent_writes).await;
        let (fail, shutdowns) = failover(&mut b, sizes.kills).await;

        println!();
        println!(
            "raft commit path, 3 nodes on loopback, file log, in-memory inner store, {}",
            if with_tls { "mutual TLS" } else { "plain HTTP" }
        );
        println!("| measure | value |");
        println!("|---|---|");
        if with_tls {
            println!(
                "| TLS setup of a node (CA, key, CSR, signature, configs) | {} |",
                ms(tls_setup_time)
            );
        }
        println!(
            "| node start until its Raft port is bound (fresh data dir) | {} |",
            ms(start_time)
        );
        println!(
            "| writes/s, 1 writer ({} writes) | {rate1:.0} |",
            lat1.len()
        );
        println!(
            "| writes/s, {} writers ({} writes) | {rate64:.0} |",
            sizes.writers,
            lat64.len()
        );
        println!(
            "| commit latency p50, 1 writer | {} |",
            ms(percentile(&lat1, 0.5))
        );
        println!(
            "| commit latency p99, 1 writer | {} |",
            ms(percentile(&lat1, 0.99))
        );
        println!(
            "| commit latency p50, {} writers | {} |",
            sizes.writers,
            ms(percentile(&lat64, 0.5))
        );
        println!(
            "| commit latency p99, {} writers | {} |",
            sizes.writers,
            ms(percentile(&lat64, 0.99))
        );
        println!(
            "| failover p50 ({} kills) | {} |",
            fail.len(),
            ms(percentile(&fail, 0.5))
        );
        println!(
            "| failover p99 ({} kills) | {} |",
            fail.len(),
            ms(percentile(&fail, 0.99))
        );
        println!(
            "| of which old leader shutdown, p50 / p99 | {} / {} |",
            ms(percentile(&shutdowns, 0.5)),
            ms(percentile(&shutdowns, 0.99))
        );
        for node in b.nodes.into_iter().flatten() {
            node.shutdown().await.unwrap();
        }
    });
}
