//! [`Admission`]: what a node holding the CA key answers to joining and renewing nodes.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

use super::{ClusterCa, ClusterKey, JoinToken, Role, RotationPeriod, TokenRegistry};
use crate::error::{Error, Result};

/// The longest node name accepted in an admission request.
pub const MAX_NODE_NAME_LEN: usize = 64;

/// A joining node's request: its token, its name, and a CSR for its own key.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AdmitRequest {
    /// The join token, in its text form.
    pub token: String,
    /// The node's name (the certificate's common name).
    pub node_name: String,
    /// A certificate signing request (DER) for the node's key.
    pub csr: Vec<u8>,
}

/// What an admitted node receives, over TLS pinned to the CA its token names.
#[derive(Clone, Serialize, Deserialize)]
pub struct AdmitResponse {
    /// Its certificate (DER), signed by the cluster CA.
    pub cert: Vec<u8>,
    /// The CA certificate (DER).
    pub ca: Vec<u8>,
    /// The cluster key (for gossip and at-rest keys).
    pub cluster_key: [u8; 32],
    /// The role the token admitted it as.
    pub role: Role,
    /// The CA key (PEM), for nodes admitted as voters, so that every voter admits and renews;
    /// `None` for workers.
    pub ca_key: Option<String>,
}

impl std::fmt::Debug for AdmitResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdmitResponse")
            .field("role", &self.role)
            .field("cluster_key", &"<redacted>")
            .finish()
    }
}

/// A renewing node's request, sent over mutual TLS with its current certificate.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RenewRequest {
    /// A certificate signing request (DER) for the node's new key.
    pub csr: Vec<u8>,
}

/// Where the current join tokens' hashes live when they are kept outside the registry (the
/// `orion` binary keeps them in the replicated store, so that any voter admits and a rotation
/// through any node takes effect everywhere): read before every admission.
pub type TokenSource = Arc<
    dyn Fn() -> std::pin::Pin<
            Box<dyn std::future::Future<Output = Result<Vec<(Role, [u8; 32])>>> + Send>,
        > + Send
        + Sync,
>;

/// Admits nodes holding a current join token, and renews the certificates of nodes that
/// present a valid one. Runs on nodes that hold the CA key.
pub struct Admission {
    ca: Arc<ClusterCa>,
    tokens: Arc<TokenRegistry>,
    cluster_key: ClusterKey,
    period: RotationPeriod,
    requests: AtomicU64,
    source: Option<TokenSource>,
}

impl std::fmt::Debug for Admission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admission")
            .field("ca", &self.ca)
            .field("period", &self.period)
            .field("token_source", &self.source.is_some())
            .finish_non_exhaustive()
    }
}

/// Checks a node name from outside: 1 to [`MAX_NODE_NAME_LEN`] of `a-z A-Z 0-9 - _ .`.
pub fn validate_node_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NODE_NAME_LEN
        && name
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(Error::JoinRefused(format!(
            "node name {:?}: expected 1 to {MAX_NODE_NAME_LEN} characters of a-z, A-Z, 0-9, \
             '-', '_' or '.'",
            name.chars().take(MAX_NODE_NAME_LEN + 8).collect::<String>()
        )))
    }
}

impl Admission {
    /// Admission with the CA `ca` (which must hold its key), the tokens in `tokens`, handing
    /// out `cluster_key`, issuing certificates valid for `period`.
    pub fn new(
        ca: Arc<ClusterCa>,
        tokens: Arc<TokenRegistry>,
        cluster_key: ClusterKey,
        period: RotationPeriod,
    ) -> Result<Self> {
        if !ca.can_sign() {
            return Err(Error::security(
                "admission",
                "the CA key is not on this node; only a node holding it admits and renews",
            ));
        }
        Ok(Admission {
            ca,
            tokens,
            cluster_key,
            period,
            requests: AtomicU64::new(0),
            source: None,
        })
    }

    /// Reads the current tokens from `source` before every admission (see [`TokenSource`]);
    /// a role missing from what it returns admits nobody.
    pub fn with_token_source(mut self, source: TokenSource) -> Self {
        self.source = Some(source);
        self
    }

    /// Installs the tokens of the [`TokenSource`], if there is one.
    pub async fn refresh_tokens(&self) -> Result<()> {
        let Some(source) = &self.source else {
            return Ok(());
        };
        let current = source().await?;
        self.tokens.replace_hashes(&current);
        Ok(())
    }

    /// The join tokens (to rotate them).
    pub fn tokens(&self) -> &Arc<TokenRegistry> {
        &self.tokens
    }

    /// The CA.
    pub fn ca(&self) -> &Arc<ClusterCa> {
        &self.ca
    }

    /// How many admission requests reached this node (any outcome).
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::SeqCst)
    }

    /// Admits the node of `request` if its token is current: a certificate for its CSR with
    /// the token's role, the CA and the cluster key. Errors never say which part of a token
    /// was wrong.
    pub fn admit(&self, request: &AdmitRequest) -> Result<AdmitResponse> {
        self.requests.fetch_add(1, Ordering::SeqCst);
        validate_node_name(&request.node_name)?;
        let token = JoinToken::parse(&request.token)?;
        if *token.ca_digest() != self.ca.digest() {
            return Err(Error::JoinRefused(
                "the join token names another CA than this cluster's".into(),
            ));
        }
        let role = self.tokens.admit(&token)?;
        let cert = self
            .ca
            .sign_csr(&request.csr, &request.node_name, role, self.period.get())?;
        tracing::info!(node = %request.node_name, %role, "admitted a node");
        Ok(AdmitResponse {
            cert: cert.to_vec(),
            ca: self.ca.cert_der().to_vec(),
            cluster_key: self.cluster_key.to_bytes(),
            role,
            ca_key: match role {
                Role::Voter => self.ca.key_pem(),
                Role::Worker => None,
            },
        })
    }

    /// A new certificate, same name and role, for the node that presented the verified
    /// certificate naming `node` with `role`.
    pub fn renew(&self, node: &str, role: Role, request: &RenewRequest) -> Result<Vec<u8>> {
        let cert = self
            .ca
            .sign_csr(&request.csr, node, role, self.period.get())?;
        Ok(cert.to_vec())
    }
}
