//! Mutual TLS between Raft nodes: what the node port refuses (plaintext, a certificate of another
//! CA, an expired one, a client without a certificate), joining with a token whose CA digest is
//! checked before anything is sent, rotated-out tokens, and certificate rotation under load.

mod common;

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use common::cluster::{Cluster, WAIT};
use openraft::{SnapshotMeta, Vote};
use orion_consensus::Error;
use orion_consensus::cluster_id::ClusterIdCell;
use orion_consensus::codec;
use orion_consensus::raft::NodeId;
use orion_consensus::security::admission::Admission;
use orion_consensus::security::{
    ClusterCa, ClusterKey, NodeCert, NodeTls, RaftTls, Role, RotationPeriod, TokenRegistry,
};
use orion_consensus::transport::join::{renew, request_admission};
use orion_consensus::transport::{FaultInjector, Transport};
use orion_core::store::Store;
use rustls::pki_types::ServerName;

const LOOPBACK: [IpAddr; 1] = [IpAddr::V4(std::net::Ipv4Addr::LOCALHOST)];
const CALL: Duration = Duration::from_secs(5);

fn name(id: NodeId) -> String {
    format!("n{id}")
}

fn node_cert(ca: &ClusterCa, id: NodeId, validity: Duration) -> NodeCert {
    NodeCert::issue(ca, &name(id), Role::Voter, &LOOPBACK, validity).expect("issue")
}

/// Certificates from one CA for nodes `1..=n`; node 1 holds the CA key and admits.
fn secure(c: &mut Cluster, n: u64) -> (Arc<ClusterCa>, Arc<Admission>) {
    let ca = Arc::new(ClusterCa::generate("test-cluster").expect("ca"));
    let admission = Arc::new(
        Admission::new(
            ca.clone(),
            Arc::new(TokenRegistry::new()),
            ClusterKey::generate(),
            RotationPeriod::default(),
        )
        .expect("admission"),
    );
    for id in 1..=n {
        let cert = node_cert(&ca, id, Duration::from_secs(3600));
        let tls = RaftTls {
            node: NodeTls::new(&ca, &cert).expect("tls"),
            admission: (id == 1).then(|| admission.clone()),
        };
        c.tls.insert(id, tls);
    }
    (ca, admission)
}

/// An echo request of cluster `cluster` from a client with `tls` (or plain HTTP) to `addr`.
async fn status_call(
    tls: Option<&NodeTls>,
    addr: &str,
    cluster: &str,
) -> orion_consensus::Result<()> {
    let mut t = Transport::new(99, FaultInjector::new())
        .expect("transport")
        .with_cluster_id(ClusterIdCell::new(Some(cluster.to_owned())));
    if let Some(tls) = tls {
        t = t.with_tls(tls).expect("tls transport");
    }
    t.echo(None, addr, 16, CALL).await.map(|_| ())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_three_node_cluster_replicates_over_mutual_tls() {
    let mut c = Cluster::new();
    secure(&mut c, 3);
    c.start_with(3).await;
    assert!(c.nodes[&1].transport().is_tls());
    let acked = c.write_keys(2, "tls/", 50).await;
    c.assert_all_present(&acked).await;
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plaintext_another_ca_and_an_expired_certificate_are_refused_on_the_node_port() {
    let mut c = Cluster::new();
    let (ca, _) = secure(&mut c, 1);
    c.start_with(1).await;
    let addr = c.nodes[&1].addr().to_owned();
    let cluster = c.nodes[&1].cluster_id().expect("cluster id");

    // A valid certificate of the cluster CA is served: the refusals below are about the client.
    let good = NodeTls::new(&ca, &node_cert(&ca, 7, Duration::from_secs(3600))).expect("tls");
    status_call(Some(&good), &addr, &cluster)
        .await
        .expect("a node certificate of the CA is served");

    let plain = status_call(None, &addr, &cluster)
        .await
        .expect_err("plaintext is refused");
    assert!(
        matches!(plain, Error::Transport { .. }),
        "plaintext: {plain}"
    );

    // Trusts the right CA, but presents a certificate of another one.
    let other = ClusterCa::generate("other").expect("other ca");
    let foreign = NodeTls::new(&ca, &node_cert(&other, 7, Duration::from_secs(3600))).expect("tls");
    let err = status_call(Some(&foreign), &addr, &cluster)
        .await
        .expect_err("a certificate of another CA is refused");
    assert!(matches!(err, Error::Transport { .. }), "another CA: {err}");

    // Signed by the right CA, expired (valid from 5 min ago until now).
    let expired = node_cert(&ca, 7, Duration::ZERO);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let expired = NodeTls::new(&ca, &expired).expect("tls");
    let err = status_call(Some(&expired), &addr, &cluster)
        .await
        .expect_err("an expired certificate is refused");
    assert!(matches!(err, Error::Transport { .. }), "expired: {err}");

    // The node still serves its members.
    status_call(Some(&good), &addr, &cluster)
        .await
        .expect("still served");
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_frame_from_a_client_without_a_node_certificate_is_refused() {
    let mut c = Cluster::new();
    let (ca, _) = secure(&mut c, 1);
    c.start_with(1).await;
    let cluster_id = c.nodes[&1].cluster_id().expect("cluster id");
    let before = c.nodes[&1].status();

    // TLS that trusts the cluster CA but presents no client certificate (as a joining node).
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.cert_der().clone()).expect("root");
    let config = rustls::ClientConfig::builder_with_provider(orion_consensus::security::provider())
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let client = reqwest::Client::builder()
        .tls_backend_preconfigured(config)
        .build()
        .expect("client");
    let request = openraft::raft::InstallSnapshotRequest::<orion_consensus::raft::TypeConfig> {
        vote: Vote::new_committed(before.term + 10, 42),
        meta: SnapshotMeta::default(),
        offset: 0,
        data: vec![0; 64],
        done: true,
    };
    let frame = codec::to_cluster_frame(&cluster_id, &request).expect("frame");
    let resp = client
        .post(format!("https://{}/raft/snapshot", c.nodes[&1].addr()))
        .header("content-type", codec::WIRE_CONTENT_TYPE)
        .body(frame)
        .timeout(CALL)
        .send()
        .await
        .expect("the TLS handshake itself is allowed (joining nodes have no certificate)");
    assert_eq!(resp.status().as_u16(), 403);
    let text = resp.text().await.expect("body");
    assert!(text.contains("certificate of the cluster CA"), "{text}");
    let after = c.nodes[&1].status();
    assert_eq!(after.term, before.term, "the frame never reached Raft");
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_join_with_the_wrong_ca_digest_aborts_before_sending_its_token() {
    let mut c = Cluster::new();
    let (ca, admission) = secure(&mut c, 1);
    c.start_with(1).await;
    let seed = c.nodes[&1].addr().to_owned();
    let voter_token = admission.tokens().rotate(ca.digest(), Role::Voter);

    // The same secret, but the digest of another CA: the joiner must stop at the handshake.
    let other = ClusterCa::generate("other").expect("other");
    let wrong = orion_consensus::security::JoinToken::parse(
        &voter_token
            .to_string()
            .replace(ca.digest().as_str(), other.digest().as_str()),
    )
    .expect("well formed");
    let err = request_admission(&seed, &wrong, "n2", &LOOPBACK, CALL)
        .await
        .expect_err("wrong CA digest");
    assert!(matches!(err, Error::CaDigestMismatch { .. }), "{err}");
    assert!(err.to_string().contains(ca.digest().as_str()), "{err}");
    assert_eq!(
        admission.requests(),
        0,
        "the server never saw a request, so never the token"
    );

    // The right token: admitted, and the certificate it got makes it a member over mTLS.
    let admitted = request_admission(&seed, &voter_token, "n2", &LOOPBACK, CALL)
        .await
        .expect("admitted");
    assert_eq!(admission.requests(), 1);
    assert_eq!(admitted.role, Role::Voter);
    assert_eq!(admitted.ca.digest(), ca.digest());
    let tls = NodeTls::new(&admitted.ca, &admitted.cert).expect("tls");
    c.tls.insert(
        2,
        RaftTls {
            node: tls,
            admission: None,
        },
    );
    c.start_node(2).await;
    c.nodes[&2].join(&seed).await.expect("joins over mTLS");
    let acked = c.write_keys(2, "joined/", 10).await;
    c.assert_all_present(&acked).await;
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_out_join_token_is_rejected() {
    let mut c = Cluster::new();
    let (ca, admission) = secure(&mut c, 1);
    c.start_with(1).await;
    let seed = c.nodes[&1].addr().to_owned();
    let old = admission.tokens().rotate(ca.digest(), Role::Worker);
    request_admission(&seed, &old, "w1", &LOOPBACK, CALL)
        .await
        .expect("the current token admits");
    let new = admission.tokens().rotate(ca.digest(), Role::Worker);
    let err = request_admission(&seed, &old, "w2", &LOOPBACK, CALL)
        .await
        .expect_err("rotated out");
    assert!(
        matches!(&err, Error::JoinRefused(text) if text.contains("rotated out")),
        "{err}"
    );
    let admitted = request_admission(&seed, &new, "w2", &LOOPBACK, CALL)
        .await
        .expect("the new token admits");
    assert_eq!(admitted.role, Role::Worker);
    c.shutdown().await;
}

/// The certificate the node at `addr` presents in a new handshake.
async fn presented_cert(tls: &NodeTls, addr: &str) -> Vec<u8> {
    let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let connector = tokio_rustls::TlsConnector::from(tls.client_config());
    let name = ServerName::IpAddress(std::net::Ipv4Addr::LOCALHOST.into());
    let stream = connector.connect(name, tcp).await.expect("handshake");
    stream.get_ref().1.peer_certificates().expect("certs")[0].to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_certificate_rotations_under_load_fail_no_call() {
    const ROTATIONS: usize = 100;
    const MAX_WRITES: u64 = 20_000;
    let mut c = Cluster::new();
    let (ca, _) = secure(&mut c, 3);
    c.start_with(3).await;
    let leader = c.agreed_leader(&[1, 2, 3]).await;
    let ca_addr = c.nodes[&1].addr().to_owned();
    let cluster = c.nodes[&1].cluster_id().expect("cluster id");

    // Bounded load: writes through every node (forwarded to the leader) until the rotations
    // are done, at most MAX_WRITES, each with its own timeout.
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let mut writers = Vec::new();
    for id in [1, 2, 3] {
        let store = c.store(id);
        let (stop, ok, failed) = (stop.clone(), ok.clone(), failed.clone());
        writers.push(tokio::spawn(async move {
            let mut i = 0u64;
            while !stop.load(Ordering::SeqCst) && i < MAX_WRITES / 3 {
                let key = format!("load/{id}/{i}");
                match tokio::time::timeout(CALL, store.put(&key, vec![1])).await {
                    Ok(Ok(_)) => ok.fetch_add(1, Ordering::SeqCst),
                    Ok(Err(e)) => {
                        eprintln!("write {key} failed: {e}");
                        failed.fetch_add(1, Ordering::SeqCst)
                    }
                    Err(_) => {
                        eprintln!("write {key} timed out");
                        failed.fetch_add(1, Ordering::SeqCst)
                    }
                };
                i += 1;
            }
        }));
    }

    let rotations = async {
        for round in 0..ROTATIONS {
            let id = (round % 3) as NodeId + 1;
            let tls = c.tls[&id].node.clone();
            let node = &c.nodes[&id];
            // Renewed by the CA node over mTLS with the current certificate, then swapped in.
            let cert = renew(
                node.transport(),
                &ca_addr,
                &name(id),
                &LOOPBACK,
                ca.cert_der(),
                CALL,
            )
            .await
            .expect("renewal");
            tls.rotate(&cert).expect("rotate");
            // New handshakes see the new certificate, and new connections to the others work.
            assert_eq!(
                presented_cert(&tls, node.addr()).await,
                cert.cert_der().to_vec()
            );
            for peer in [1, 2, 3] {
                status_call(Some(&tls), c.nodes[&peer].addr(), &cluster)
                    .await
                    .expect("a new connection after the rotation");
            }
        }
    };
    tokio::time::timeout(WAIT * 4, rotations)
        .await
        .expect("100 rotations within the time bound");
    stop.store(true, Ordering::SeqCst);
    for w in writers {
        w.await.expect("writer");
    }
    let (ok, failed) = (ok.load(Ordering::SeqCst), failed.load(Ordering::SeqCst));
    eprintln!("{ok} writes acknowledged, {failed} failed, leader {leader}");
    assert_eq!(failed, 0, "no call fails during rotations");
    assert!(ok > 0, "the load ran");
    c.shutdown().await;
}
