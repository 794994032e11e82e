//! DNS service discovery: queries per second on loopback, and the delay from a replica starting
//! until its record is served. Prints a table (docs/benchmarks.md); asserts nothing about speed.
//!
//! `cargo bench --bench dns` measures; `-- --test` (or `ORION_BENCH_QUICK=1`) runs a short load
//! and a few replicas only, so CI checks that the bench works.
//!
//! Set-up: a `MemoryStore` with 1,000 services of 3 running replicas each on 10 nodes, followed
//! by the real index watcher and served by the real server (hickory-server, UDP) on 127.0.0.1,
//! on a Tokio runtime with ONE worker thread (one core). The load generator is a small Rust
//! client on a second one-thread runtime: `CLIENTS` UDP sockets, each sending an A query for a
//! random service and waiting for its answer (at most 1 s) before the next, for a fixed time;
//! an answer counts when it is NOERROR with records. Delay: a
//! replica's task is written as running, then its per-task name is asked every millisecond
//! until answered; the time from the write to the first answer, over `REPLICAS` replicas.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hickory_resolver::proto::op::{Message, ResponseCode};
use hickory_resolver::proto::rr::{Name, RecordType};
use orion_core::model::spec::{PortSpec, Protocol};
use orion_core::model::{Node, PublishedPort, Resources, ServiceSpec, Task, TaskState};
use orion_core::store::{ClusterStore, MemoryStore, Store};
use orion_dns::{DnsConfig, DnsServer};

const SERVICES: usize = 1000;
const REPLICAS_PER_SERVICE: u32 = 3;
const NODES: usize = 10;
const CLIENTS: usize = 32;

fn running_task(service: &str, slot: u32, node: &str, port: u16) -> Task {
    let mut t = Task::new(service, slot, 1, Resources::default());
    t.node = Some(node.into());
    for s in [
        TaskState::Scheduled,
        TaskState::Starting,
        TaskState::Running,
    ] {
        t.transition(s).expect("legal");
    }
    t.ports = vec![PublishedPort {
        container_port: 80,
        host_port: port,
        protocol: "tcp".into(),
        host_ip: Default::default(),
    }];
    t
}

async fn load(store: &ClusterStore<MemoryStore>) {
    for n in 0..NODES {
        let mut node = Node::new(format!("n{n}"), Resources::new(64_000, 1 << 40));
        node.addresses.api = format!("127.0.1.{}:8000", n + 1);
        store.put_node(&node).await.expect("node");
    }
    for s in 0..SERVICES {
        let name = format!("svc{s}");
        let mut spec = ServiceSpec::new(&name, "busybox", REPLICAS_PER_SERVICE);
        spec.ports = vec![PortSpec {
            container_port: 80,
            host_port: 0,
            protocol: Protocol::Tcp,
            name: Some("http".into()),
        }];
        store.put_service(&spec).await.expect("service");
        for slot in 0..REPLICAS_PER_SERVICE {
            let node = format!("n{}", (s + slot as usize) % NODES);
            let t = running_task(&name, slot, &node, 20_000 + slot as u16);
            store.create_task(&t).await.expect("task");
        }
    }
}

fn query_bytes(name: &str, qtype: RecordType, id: u16) -> Vec<u8> {
    let mut m = orion_dns::client::query_message(&Name::from_ascii(name).expect("name"), qtype);
    m.metadata.id = id;
    m.to_vec().expect("encodes")
}

/// One client: sends, waits for the answer, repeats until `until`; returns (answers, failures).
async fn client(
    server: SocketAddr,
    queries: Arc<Vec<Vec<u8>>>,
    until: Instant,
    seed: u64,
) -> (u64, u64) {
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0")
        .await
        .expect("bind");
    socket.connect(server).await.expect("connect");
    let mut buf = vec![0u8; 4096];
    let (mut ok, mut failed) = (0u64, 0u64);
    let mut x = seed | 1;
    let mut id: u16 = 0;
    while Instant::now() < until {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let mut q = queries[(x % SERVICES as u64) as usize].clone();
        id = id.wrapping_add(1);
        q[..2].copy_from_slice(&id.to_be_bytes());
        if socket.send(&q).await.is_err() {
            failed += 1;
            continue;
        }
        match tokio::time::timeout(Duration::from_secs(1), socket.recv(&mut buf)).await {
            Ok(Ok(n)) => match Message::from_vec(&buf[..n]) {
                Ok(m)
                    if m.metadata.id == id
                        && m.metadata.response_code == ResponseCode::NoError
                        && !m.answers.is_empty() =>
                {
                    ok += 1
                }
                _ => failed += 1,
            },
            _ => failed += 1,
        }
    }
    (ok, failed)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn main() {
    let quick = std::env::args().any(|a| a == "--test")
        || std::env::var("ORION_BENCH_QUICK").is_ok_and(|v| v == "1");
    let (run_for, replicas) = if quick {
        (Duration::from_millis(300), 10)
    } else {
        (Duration::from_secs(5), 200)
    };
    // The server: one worker thread.
    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let store = ClusterStore::new(MemoryStore::new());
    let server = server_rt.block_on(async {
        load(&store).await;
        let config = DnsConfig::new("n0", "orion.").expect("config");
        let server = DnsServer::start(store.clone(), config, &["127.0.0.1:0".parse().unwrap()])
            .await
            .expect("server");
        let revision = store.inner().revision().await.expect("revision");
        assert!(
            server
                .index()
                .wait_for(revision, Duration::from_secs(30))
                .await,
            "index loads"
        );
        server
    });
    let addr = server.local_addrs()[0];

    // The load generator: another single-thread runtime.
    let client_rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let queries: Arc<Vec<Vec<u8>>> = Arc::new(
        (0..SERVICES)
            .map(|s| query_bytes(&format!("svc{s}.orion."), RecordType::A, 0))
            .collect(),
    );
    let started = Instant::now();
    let until = started + run_for;
    let (ok, failed) = client_rt.block_on(async {
        let handles: Vec<_> = (0..CLIENTS)
            .map(|c| {
                let queries = queries.clone();
                tokio::spawn(client(addr, queries, until, 0x9e37_79b9 + c as u64))
            })
            .collect();
        let mut total = (0, 0);
        for h in handles {
            let (o, f) = h.await.expect("client");
            total.0 += o;
            total.1 += f;
        }
        total
    });
    let elapsed = started.elapsed();
    let qps = ok as f64 / elapsed.as_secs_f64();

    // Delay from a replica starting (its task written as running) to its record being served.
    let delays = client_rt.block_on(async {
        let socket = tokio::net::UdpSocket::bind("127.0.0.1:0")
            .await
            .expect("bind");
        socket.connect(addr).await.expect("connect");
        let mut buf = vec![0u8; 4096];
        let mut delays = Vec::new();
        let next = AtomicU64::new(0);
        for i in 0..replicas {
            let service = format!("svc{}", i % SERVICES);
            let t = running_task(&service, 100 + i as u32, "n1", 30_000);
            let q = query_bytes(&format!("{}.{service}.orion.", t.id), RecordType::A, 7);
            let begin = Instant::now();
            store.create_task(&t).await.expect("task");
            let mut served = None;
            for _ in 0..5000 {
                next.fetch_add(1, Ordering::Relaxed);
                socket.send(&q).await.expect("send");
                if let Ok(Ok(n)) =
                    tokio::time::timeout(Duration::from_millis(100), socket.recv(&mut buf)).await
                    && let Ok(m) = Message::from_vec(&buf[..n])
                    && m.metadata.response_code == ResponseCode::NoError
                    && !m.answers.is_empty()
                {
                    served = Some(begin.elapsed());
                    break;
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            delays.push(served.expect("the record is served within 5000 attempts"));
        }
        delays
    });
    let mut sorted = delays.clone();
    sorted.sort();
    let _keep = Arc::new(server);

    println!("DNS (orion-dns, hickory-server, UDP on 127.0.0.1; server on 1 worker thread)");
    println!("{:<46} {:>14}", "measure", "value");
    println!(
        "{:<46} {:>14}",
        "services / replicas in the zone",
        format!("{SERVICES} / {}", SERVICES * REPLICAS_PER_SERVICE as usize)
    );
    println!(
        "{:<46} {:>14}",
        format!(
            "A queries/s ({CLIENTS} clients, {:.1} s)",
            elapsed.as_secs_f64()
        ),
        format!("{qps:.0}")
    );
    println!("{:<46} {:>14}", "failed or timed-out queries", failed);
    println!(
        "{:<46} {:>14}",
        format!("replica start -> served, p50 (n={replicas})"),
        format!("{:.2?}", percentile(&sorted, 0.5))
    );
    println!(
        "{:<46} {:>14}",
        "replica start -> served, p99",
        format!("{:.2?}", percentile(&sorted, 0.99))
    );
    println!(
        "{:<46} {:>14}",
        "replica start -> served, max",
        format!("{:.2?}", sorted[sorted.len() - 1])
    );
}
