//! Probe cost per node: N probers on a simulated network (virtual time) sharing one in-memory
//! store, each round doing what `run_prober` does (read the peers, probe, publish). Prints CPU per
//! node as a share of one core (this thread's on-CPU time, so a busy machine does not inflate it),
//! bytes/s per node (sent + received, with a per-message overhead for the real transport's
//! headers), store writes/s per node and cluster-wide (one transaction = one write, as one Raft
//! entry), and the bytes those writes carry per node.
//!
//! `cargo bench -p orion-netscore --bench probe_cost` (`-- --test`: one tiny run, not a measurement)

use std::time::{Duration, Instant};

use orion_core::model::{Node, Resources};
use orion_core::store::{ClusterStore, MemoryStore};
use orion_netscore::probe::{
    Prober, ProberConfig, SimulatedLink, SimulatedNetwork, peer_views, publish,
};

/// Bytes added to each message for HTTP/TLS framing of the real transport (an estimate).
const OVERHEAD_BYTES: usize = 200;

struct Row {
    nodes: usize,
    rounds: u64,
    cpu_share: f64,
    bytes_per_second: f64,
    writes_per_second: f64,
    written_bytes_per_second: f64,
}

async fn run(nodes: usize, rounds: u64) -> Row {
    let config = ProberConfig::default();
    let interval = config.round_interval;
    let network = SimulatedNetwork::new(
        SimulatedLink {
            rtt_ms: 20.0,
            loss: 0.01,
            bandwidth_mbps: 500.0,
            jitter_ms: 2.0,
        },
        1,
    )
    .with_overhead_bytes(OVERHEAD_BYTES);
    let store = ClusterStore::new(MemoryStore::new());
    let ids: Vec<String> = (0..nodes).map(|i| format!("node-{i:04}")).collect();
    for id in &ids {
        store
            .put_node(&Node::new(id.as_str(), Resources::new(4000, 8 << 30)))
            .await
            .expect("put node");
    }
    let mut probers: Vec<Prober> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| Prober::new(id.as_str(), config.clone(), i as u64).expect("prober"))
        .collect();
    let mut writes = 0usize;
    let mut written_bytes = 0usize;
    let (cpu_before, wall_before) = (thread_cpu_time(), Instant::now());
    for round in 0..rounds {
        let now = round * interval.as_millis() as u64;
        for prober in &mut probers {
            let me = prober.node().to_string();
            let endpoint = network.endpoint(&me);
            let suspects = prober.suspected_peers();
            let peers = peer_views(&store, &me, &suspects).await.expect("peers");
            let report = prober.round(&endpoint, &peers, now).await;
            publish(&store, &me, &report).await.expect("publish");
            writes += report.store_writes();
            written_bytes += report
                .links
                .as_ref()
                .map_or(0, |l| serde_json::to_vec(l).map_or(0, |bytes| bytes.len()))
                + report
                    .coordinate
                    .as_ref()
                    .map_or(0, |c| serde_json::to_vec(c).map_or(0, |bytes| bytes.len()));
        }
    }
    // On-CPU time of this (only) thread; wall time where the kernel does not report it.
    let busy = match (cpu_before, thread_cpu_time()) {
        (Some(before), Some(after)) => after.saturating_sub(before),
        _ => wall_before.elapsed(),
    };
    let node_seconds = nodes as f64 * rounds as f64 * interval.as_secs_f64();
    let traffic: u64 = ids.iter().map(|id| network.traffic_bytes(id)).sum();
    Row {
        nodes,
        rounds,
        cpu_share: busy.as_secs_f64() / node_seconds,
        bytes_per_second: traffic as f64 / node_seconds,
        writes_per_second: writes as f64 / node_seconds,
        written_bytes_per_second: written_bytes as f64 / node_seconds,
    }
}

/// This thread's time on a CPU so far (Linux `/proc/thread-self/schedstat`, nanoseconds), so
/// other processes on a shared machine do not inflate the figure.
fn thread_cpu_time() -> Option<Duration> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let nanos: u64 = text.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(nanos))
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let quick = std::env::args().any(|a| a == "--test");
    let runs: &[(usize, u64)] = if quick {
        &[(10, 3)]
    } else {
        &[(100, 240), (1_000, 24)]
    };
    let config = ProberConfig::default();
    println!(
        "probe cost per node: {} peers/round every {:?}, {} echoes of {} B per peer, {} B transfer every {} rounds, +{} B/message",
        config.peers_per_round,
        config.round_interval,
        config.samples_per_peer,
        config.echo_bytes,
        config.bandwidth_bytes,
        config.bandwidth_every_rounds,
        OVERHEAD_BYTES
    );
    println!(
        "| nodes | rounds (virtual time) | CPU per node (% of a core) | bytes/s per node | store writes/s per node | store writes/s cluster-wide | bytes written/s per node |"
    );
    println!("|---|---|---|---|---|---|---|");
    for &(nodes, rounds) in runs {
        let row = run(nodes, rounds).await;
        println!(
            "| {} | {} ({} s) | {:.4} % | {:.0} | {:.3} | {:.1} | {:.0} |",
            row.nodes,
            row.rounds,
            row.rounds * config.round_interval.as_secs(),
            row.cpu_share * 100.0,
            row.bytes_per_second,
            row.writes_per_second,
            row.writes_per_second * row.nodes as f64,
            row.written_bytes_per_second
        );
    }
}
