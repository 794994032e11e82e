//! Node-to-node connections: the one place where Orion nodes call each other.
//!
//! Requests are [`codec`](crate::codec) frames POSTed over HTTP (pooled keep-alive
//! connections), stamped with this node's [cluster id](crate::cluster_id). Every request passes
//! through the [`FaultInjector`] first. With [`Transport::with_tls`] they go over mutual TLS
//! (`https://`): the peer must present a certificate of the cluster CA valid for the address
//! dialled, and this node presents its own (see [`crate::security`]). A node that is not
//! admitted yet asks for its certificate with [`join::request_admission`], which checks the
//! cluster CA against its join token inside the TLS handshake, before it sends anything.

mod fault;
pub mod join;

use std::time::Duration;

use reqwest::header::CONTENT_TYPE;
use serde::Serialize;
use serde::de::DeserializeOwned;

pub use fault::{Fault, FaultInjector, PeerId, Targets, Verdict};

use crate::cluster_id::ClusterIdCell;
use crate::codec;
use crate::error::{Error as ConsensusError, Result, TransportFailure};
use crate::security::NodeTls;

/// The path on a node's Raft port that answers with the node's cluster id (an empty frame
/// stamped with it); see [`Transport::peer_cluster_id`].
pub const CLUSTER_ID_PATH: &str = "/raft/cluster";

/// The path on a node's Raft port that sends back the bytes it is sent; see [`Transport::echo`].
pub const ECHO_PATH: &str = "/raft/echo";

/// The largest echo payload, in bytes (a bounded bandwidth probe).
pub const MAX_ECHO_BYTES: usize = 1 << 20;

/// The client side of node-to-node traffic for one local node.
#[derive(Debug, Clone)]
pub struct Transport {
    local: PeerId,
    client: reqwest::Client,
    faults: FaultInjector,
    cluster: ClusterIdCell,
    /// `https` with [`Transport::with_tls`], `http` otherwise.
    scheme: &'static str,
}

fn http_client(tls: Option<rustls::ClientConfig>) -> Result<reqwest::Client> {
    let mut builder = reqwest::Client::builder()
        .tcp_nodelay(true)
        .pool_idle_timeout(Duration::from_secs(30))
        .connect_timeout(Duration::from_secs(1));
    if let Some(config) = tls {
        builder = builder.tls_backend_preconfigured(config);
    }
    builder
        .build()
        .map_err(|e| ConsensusError::Raft(format!("cannot build the HTTP client: {e}")))
}

impl Transport {
    /// A transport for the node `local`, subject to `faults`.
    pub fn new(local: PeerId, faults: FaultInjector) -> Result<Self> {
        Ok(Self {
            local,
            client: http_client(None)?,
            faults,
            cluster: ClusterIdCell::default(),
            scheme: "http",
        })
    }

    /// Builder: every request goes over mutual TLS with `tls` (this node's certificate, and the
    /// cluster CA that peers' certificates must chain to). A rotation of `tls` applies to the
    /// next connection; pooled connections carry on.
    pub fn with_tls(mut self, tls: &NodeTls) -> Result<Self> {
        self.client = http_client(Some((*tls.client_config()).clone()))?;
        self.scheme = "https";
        Ok(self)
    }

    /// True when requests go over mutual TLS.
    pub fn is_tls(&self) -> bool {
        self.scheme == "https"
    }

    /// Builder: stamps every request with the id in `cluster` (empty while it is unknown), and
    /// refuses answers from another cluster.
    pub fn with_cluster_id(mut self, cluster: ClusterIdCell) -> Self {
        self.cluster = cluster;
        self
    }

    /// Asks the node at `addr` which cluster it belongs to (`POST {CLUSTER_ID_PATH}`), within
    /// `timeout`. A node that has not bootstrapped or joined yet answers an error.
    pub async fn peer_cluster_id(&self, addr: &str, timeout: Duration) -> Result<String> {
        let (cluster, ()) = self
            .call_framed(None, addr, CLUSTER_ID_PATH, &(), timeout)
            .await?;
        if cluster.is_empty() {
            return Err(ConsensusError::Unavailable(format!(
                "the node at {addr} has no cluster id yet (it has not bootstrapped or joined)"
            )));
        }
        Ok(cluster)
    }

    /// Sends `payload_bytes` bytes to the node at `addr` (`POST {ECHO_PATH}`), which sends them
    /// back, and returns the time from the call to the end of the answer. Like every request it
    /// passes through the fault layer, so injected delay, drops and cut links show in the result.
    /// `target` names the peer for the fault layer. Errors: a payload above [`MAX_ECHO_BYTES`],
    /// any transport error, or an answer of another length.
    pub async fn echo(
        &self,
        target: Option<PeerId>,
        addr: &str,
        payload_bytes: usize,
        timeout: Duration,
    ) -> Result<Duration> {
        if payload_bytes > MAX_ECHO_BYTES {
            return Err(ConsensusError::RaftConfig {
                field: "echo payload",
                value: payload_bytes.to_string(),
                expected: format!("at most {MAX_ECHO_BYTES} bytes"),
            });
        }
        let payload = vec![0u8; payload_bytes];
        let started = tokio::time::Instant::now();
        let back: Vec<u8> = self
            .call(target, addr, ECHO_PATH, &payload, timeout)
            .await?;
        let elapsed = started.elapsed();
        if back.len() != payload_bytes {
            return Err(ConsensusError::Transport {
                target: format!("{addr}{ECHO_PATH}"),
                failure: TransportFailure::BadAnswer,
                detail: format!("sent {payload_bytes} bytes, {} came back", back.len()),
            });
        }
        Ok(elapsed)
    }

    /// The fault layer this transport obeys.
    pub fn faults(&self) -> &FaultInjector {
        &self.faults
    }

    /// Posts `body` as a [`codec`] frame to `http(s)://{addr}{path}` and decodes the frame that
    /// answers it, within
    /// `timeout`. `target` names the peer for the fault layer when it is known.
    ///
    /// Errors are [`ConsensusError::Transport`] with a [`TransportFailure`] that says whether
    /// the request may have been delivered.
    pub async fn call<Req, Resp>(
        &self,
        target: Option<PeerId>,
        addr: &str,
        path: &str,
        body: &Req,
        timeout: Duration,
    ) -> Result<Resp>
    where
        Req: Serialize + ?Sized,
        Resp: DeserializeOwned,
    {
        let (theirs, answer) = self.call_framed(target, addr, path, body, timeout).await?;
        match self.cluster.get() {
            Some(ours) if !theirs.is_empty() && theirs != ours => {
                Err(ConsensusError::ClusterMismatch {
                    ours,
                    theirs,
                    peer: format!("the node answering at {addr}"),
                })
            }
            _ => Ok(answer),
        }
    }

    /// [`Transport::call`], returning the cluster id the answer carries too.
    async fn call_framed<Req, Resp>(
        &self,
        target: Option<PeerId>,
        addr: &str,
        path: &str,
        body: &Req,
        timeout: Duration,
    ) -> Result<(String, Resp)>
    where
        Req: Serialize + ?Sized,
        Resp: DeserializeOwned,
    {
        let name = match target {
            Some(id) => format!("node {id} at {addr}{path}"),
            None => format!("{addr}{path}"),
        };
        let fail = |failure, detail: String| ConsensusError::Transport {
            target: name.clone(),
            failure,
            detail,
        };
        let verdict = self.faults.verdict(self.local, target);
        if !verdict.delay.is_zero() {
            tokio::time::sleep(verdict.delay).await;
        }
        if verdict.request_blocked {
            return Err(fail(
                TransportFailure::NotDelivered,
                "dropped by the fault injector".into(),
            ));
        }
        let frame = codec::to_cluster_frame(&self.cluster.get().unwrap_or_default(), body)?;
        let sent = self
            .client
            .post(format!("{}://{addr}{path}", self.scheme))
            .header(CONTENT_TYPE, codec::WIRE_CONTENT_TYPE)
            .body(frame)
            .timeout(timeout)
            .send()
            .await;
        let resp = match sent {
            Ok(resp) => resp,
            Err(e) if e.is_connect() => {
                return Err(fail(TransportFailure::NotDelivered, e.to_string()));
            }
            Err(e) => return Err(fail(TransportFailure::NoAnswer, e.to_string())),
        };
        let status = resp.status();
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| fail(TransportFailure::NoAnswer, e.to_string()))?;
        if verdict.response_blocked {
            return Err(fail(
                TransportFailure::NoAnswer,
                "answer dropped by the fault injector".into(),
            ));
        }
        if !status.is_success() {
            return Err(fail(
                TransportFailure::Rejected(status.as_u16()),
                String::from_utf8_lossy(&bytes).into_owned(),
            ));
        }
        codec::from_cluster_frame(&bytes)
            .map_err(|e| fail(TransportFailure::BadAnswer, e.to_string()))
    }
}
