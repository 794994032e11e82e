//! How a node that has no certificate yet is admitted: over TLS pinned to the CA digest of its
//! join token, so a node of another CA never sees the token.

use std::net::IpAddr;
use std::time::Duration;

use reqwest::header::CONTENT_TYPE;
use rustls::pki_types::CertificateDer;

use crate::codec;
use crate::error::{Error, Result};
use crate::security::admission::{AdmitRequest, AdmitResponse, RenewRequest};
use crate::security::{
    CaDigest, ClusterCa, ClusterKey, JoinToken, NodeCert, PinnedCaVerifier, Role, provider,
    signing_request,
};
use crate::transport::Transport;

/// The path on a CA-holding node's Raft port that admits nodes with a join token.
pub const ADMIT_PATH: &str = "/raft/admit";

/// The path on a CA-holding node's Raft port that renews a node's certificate (mutual TLS).
pub const RENEW_PATH: &str = "/raft/renew";

/// The path on any node's Raft port (mutual TLS) that answers its gossip address.
pub const GOSSIP_PATH: &str = "/raft/gossip";

/// The gossip address of the node whose Raft port is `addr`, asked over mutual TLS with
/// `transport` (a node that was admitted through that port uses it as its gossip seed).
pub async fn gossip_addr_of(
    transport: &Transport,
    addr: &str,
    timeout: Duration,
) -> Result<String> {
    transport.call(None, addr, GOSSIP_PATH, &(), timeout).await
}

/// What an admitted node gets.
#[derive(Debug)]
pub struct Admitted {
    /// Its certificate and key (the key never left this node).
    pub cert: NodeCert,
    /// The cluster CA: with its key for a voter (so it admits and renews too), without for a
    /// worker.
    pub ca: ClusterCa,
    /// The cluster key.
    pub cluster_key: ClusterKey,
    /// The role the token admitted it as.
    pub role: Role,
}

/// Asks the node at `addr` (a Raft address) to admit this node, named `node_name`, reachable at
/// `addresses`, with `token`. The TLS handshake first checks that the server presents a
/// certificate of the CA named by the token: on a mismatch it fails with
/// [`Error::CaDigestMismatch`] and nothing was sent. Otherwise it sends the token and a CSR for
/// a fresh key, and returns the signed certificate, the CA and the cluster key.
pub async fn request_admission(
    addr: &str,
    token: &JoinToken,
    node_name: &str,
    addresses: &[IpAddr],
    timeout: Duration,
) -> Result<Admitted> {
    let verifier = PinnedCaVerifier::new(token.ca_digest().clone());
    let config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::security("join TLS configuration", e))?
        .dangerous()
        .with_custom_certificate_verifier(verifier.clone())
        .with_no_client_auth();
    let client = reqwest::Client::builder()
        .tls_backend_preconfigured(config)
        .connect_timeout(Duration::from_secs(1))
        .pool_max_idle_per_host(0)
        .build()
        .map_err(|e| Error::security("join HTTP client", e))?;
    let (key, csr) = signing_request(node_name, addresses)?;
    let request = AdmitRequest {
        token: token.to_string(),
        node_name: node_name.to_owned(),
        csr,
    };
    let target = format!("{addr}{ADMIT_PATH}");
    let sent = client
        .post(format!("https://{target}"))
        .header(CONTENT_TYPE, codec::WIRE_CONTENT_TYPE)
        .body(codec::to_cluster_frame("", &request)?)
        .timeout(timeout)
        .send()
        .await;
    let resp = match sent {
        Ok(resp) => resp,
        Err(e) => {
            if let Some(found) = verifier.mismatch() {
                return Err(Error::CaDigestMismatch {
                    addr: addr.to_owned(),
                    expected: token.ca_digest().to_string(),
                    found,
                });
            }
            return Err(Error::Unavailable(format!("join through {target}: {e}")));
        }
    };
    let status = resp.status();
    let bytes = resp
        .bytes()
        .await
        .map_err(|e| Error::Unavailable(format!("join through {target}: {e}")))?;
    if !status.is_success() {
        return Err(Error::JoinRefused(format!(
            "{target} answered {status}: {}",
            String::from_utf8_lossy(&bytes)
        )));
    }
    let (_, answer): (String, AdmitResponse) = codec::from_cluster_frame(&bytes)?;
    if CaDigest::of(&answer.ca) != *token.ca_digest() {
        return Err(Error::CaDigestMismatch {
            addr: addr.to_owned(),
            expected: token.ca_digest().to_string(),
            found: CaDigest::of(&answer.ca).to_string(),
        });
    }
    let ca = CertificateDer::from(answer.ca);
    let cluster_ca = match &answer.ca_key {
        Some(key) => ClusterCa::from_pem(
            &pem::encode(&pem::Pem::new("CERTIFICATE", ca.to_vec())),
            Some(key),
        )?,
        None => ClusterCa::trust_only(ca.clone()),
    };
    Ok(Admitted {
        cert: NodeCert::from_parts(&key, CertificateDer::from(answer.cert), ca.clone())?,
        ca: cluster_ca,
        cluster_key: ClusterKey::from_bytes(answer.cluster_key),
        role: answer.role,
    })
}

/// Asks the CA-holding node at `addr` for a new certificate for this node, over mutual TLS with
/// `transport` (which presents the current certificate; the new one keeps its name and role),
/// for a fresh key with `addresses`. `ca` is the cluster CA certificate, put in the new chain.
/// Hand the result to [`NodeTls::rotate`](crate::security::NodeTls::rotate).
pub async fn renew(
    transport: &Transport,
    addr: &str,
    node_name: &str,
    addresses: &[IpAddr],
    ca: &CertificateDer<'static>,
    timeout: Duration,
) -> Result<NodeCert> {
    if !transport.is_tls() {
        return Err(Error::security(
            "certificate renewal",
            "the transport is plain HTTP; renewal needs mutual TLS with the current certificate",
        ));
    }
    let (key, csr) = signing_request(node_name, addresses)?;
    let cert: Vec<u8> = transport
        .call(None, addr, RENEW_PATH, &RenewRequest { csr }, timeout)
        .await?;
    NodeCert::from_parts(&key, CertificateDer::from(cert), ca.clone())
}
