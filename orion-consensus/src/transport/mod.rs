//! Node-to-node connections: the one place where Orion nodes call each other.
//!
//! Requests are [`codec`](crate::codec) frames POSTed over HTTP/1.1 on plain TCP (pooled
//! keep-alive connections). Every request
//! passes through the [`FaultInjector`] first. Mutual TLS and join tokens will be added here,
//! and only here.

mod fault;

use std::time::Duration;

use reqwest::header::CONTENT_TYPE;
use serde::Serialize;
use serde::de::DeserializeOwned;

pub use fault::{FaultInjector, PeerId};

use crate::codec;
use crate::error::{Error as ConsensusError, Result, TransportFailure};

/// The client side of node-to-node traffic for one local node.
#[derive(Debug, Clone)]
pub struct Transport {
    local: PeerId,
    client: reqwest::Client,
    faults: FaultInjector,
}

impl Transport {
    /// A transport for the node `local`, subject to `faults`.
    pub fn new(local: PeerId, faults: FaultInjector) -> Result<Self> {
        let client = reqwest::Client::builder()
            .tcp_nodelay(true)
            .pool_idle_timeout(Duration::from_secs(30))
            .connect_timeout(Duration::from_secs(1))
            .build()
            .map_err(|e| ConsensusError::Raft(format!("cannot build the HTTP client: {e}")))?;
        Ok(Self {
            local,
            client,
            faults,
        })
    }

    /// The fault layer this transport obeys.
    pub fn faults(&self) -> &FaultInjector {
        &self.faults
    }

    /// Posts `body` as a [`codec`] frame to `http://{addr}{path}` and decodes the frame that
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
        let frame = codec::to_frame(body)?;
        let sent = self
            .client
            .post(format!("http://{addr}{path}"))
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
        codec::from_frame(&bytes).map_err(|e| fail(TransportFailure::BadAnswer, e.to_string()))
    }
}
