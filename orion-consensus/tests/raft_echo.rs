//! `/raft/echo` on the Raft port and `Transport::echo`: the network prober's probe, which passes
//! through the fault layer like every other request.

mod common;

use std::time::Duration;

use common::cluster::Cluster;
use orion_consensus::cluster_id::ClusterIdCell;
use orion_consensus::transport::{MAX_ECHO_BYTES, Transport};

const TIMEOUT: Duration = Duration::from_secs(5);
/// The prober's id in the fault layer: not a member, only a name for cut links.
const PROBER: u64 = 9;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_answers_and_obeys_the_fault_layer() {
    let c = Cluster::start(1).await;
    let addr = c.nodes[&1].addr().to_string();
    let transport = Transport::new(PROBER, c.faults.clone())
        .expect("transport")
        .with_cluster_id(ClusterIdCell::new(c.nodes[&1].cluster_id()));

    for bytes in [0, 32, 64 * 1024] {
        transport
            .echo(Some(1), &addr, bytes, TIMEOUT)
            .await
            .unwrap_or_else(|e| panic!("echo of {bytes} bytes: {e}"));
    }

    // Injected delay shows in the measured RTT (a lower bound: the layer sleeps before sending).
    c.faults.set_delay(Duration::from_millis(150));
    let rtt = transport
        .echo(Some(1), &addr, 32, TIMEOUT)
        .await
        .expect("echo");
    assert!(
        rtt >= Duration::from_millis(150),
        "rtt {rtt:?} misses the injected delay"
    );
    c.faults.heal();

    // A cut link fails the probe.
    c.faults.cut(PROBER, 1);
    assert!(transport.echo(Some(1), &addr, 32, TIMEOUT).await.is_err());
    c.faults.heal();

    // Above the bound: refused before anything is sent.
    let error = transport
        .echo(Some(1), &addr, MAX_ECHO_BYTES + 1, TIMEOUT)
        .await
        .expect_err("too large");
    assert!(error.to_string().contains("at most"), "{error}");
    c.shutdown().await;
}
