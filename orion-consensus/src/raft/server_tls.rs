//! The Raft port over mutual TLS: only nodes presenting a certificate of the cluster CA are
//! served, except for admission (`/raft/admit`), which a joining node without one reaches with
//! its join token; renewal (`/raft/renew`) is for nodes with a valid certificate.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::post;

use crate::cluster_id::LogLimiter;
use crate::codec;
use crate::raft::leader::LeaderRequest;
use crate::security::admission::{Admission, AdmitRequest, RenewRequest};
use crate::security::{PeerInfo, Role};
use crate::transport::join::{ADMIT_PATH, GOSSIP_PATH, RENEW_PATH};

/// The largest admission or renewal request accepted (a token and a CSR).
const ADMISSION_BODY_LIMIT: usize = 64 * 1024;

/// Refusals of clients without a certificate are logged at most this often.
const REFUSAL_LOG_PERIOD: Duration = Duration::from_secs(10);

static REFUSALS: LogLimiter = LogLimiter::new(REFUSAL_LOG_PERIOD);

/// Lets through requests from clients that presented a certificate of the cluster CA, and
/// admission requests; refuses everything else with `403` saying what is accepted.
pub(crate) async fn require_node_certificate(
    ConnectInfo(peer): ConnectInfo<PeerInfo>,
    mut request: Request,
    next: Next,
) -> Response {
    if peer.node.is_some() || request.uri().path() == ADMIT_PATH {
        request.extensions_mut().insert(peer);
        return next.run(request).await;
    }
    let path = request.uri().path().to_owned();
    if let Some(held_back) = REFUSALS.allow() {
        tracing::warn!(peer = %peer.addr, %path, held_back, "refused a client without a node certificate");
    }
    (
        StatusCode::FORBIDDEN,
        format!(
            "{path}: this port serves only nodes presenting a certificate of the cluster CA; a \
             new node joins with a join token (POST {ADMIT_PATH})"
        ),
    )
        .into_response()
}

/// The admission routes, answered by `admission` (or refused when this node holds no CA key),
/// and `/raft/gossip`, answering `gossip_addr` to nodes with a certificate.
pub(crate) fn routes(admission: Option<Arc<Admission>>, gossip_addr: Option<String>) -> Router {
    Router::new()
        .route(ADMIT_PATH, post(admit))
        .route(RENEW_PATH, post(renew))
        .layer(DefaultBodyLimit::max(ADMISSION_BODY_LIMIT))
        .with_state(admission)
        .route(
            GOSSIP_PATH,
            post(move || {
                let addr = gossip_addr.clone();
                async move {
                    match addr {
                        Some(addr) => frame(&addr),
                        None => (
                            StatusCode::NOT_FOUND,
                            "this node does not tell its gossip address",
                        )
                            .into_response(),
                    }
                }
            }),
        )
}

/// Marks a join request as a worker's when the node sending it presents a worker certificate,
/// and refuses a worker asking for another node than itself. Requests from a node with a voter
/// certificate (the joining voter, or a member forwarding a join) are left as they are.
pub(crate) fn mark_workers(
    peer: Option<&PeerInfo>,
    request: LeaderRequest,
) -> Result<LeaderRequest, Refusal> {
    let Some((name, role)) = peer.and_then(|p| p.node.as_ref()) else {
        return Ok(request);
    };
    if *role == Some(Role::Voter) {
        return Ok(request);
    }
    match request {
        LeaderRequest::Join(mut join) => {
            if join.node_id != crate::cluster::raft_id(name) {
                return Err((
                    StatusCode::FORBIDDEN,
                    format!(
                        "a worker certificate ({name}) may only join as itself, not as Raft node {}",
                        join.node_id
                    ),
                ));
            }
            join.worker = true;
            Ok(LeaderRequest::Join(join))
        }
        LeaderRequest::Remove(_) => Err((
            StatusCode::FORBIDDEN,
            "a worker certificate may not change the membership".to_owned(),
        )),
        other => Ok(other),
    }
}

fn no_ca_key() -> Response {
    (
        StatusCode::NOT_FOUND,
        "this node does not hold the cluster CA key, so it neither admits nor renews; use a \
         node that does (the bootstrap node)",
    )
        .into_response()
}

fn refused(e: &crate::Error) -> Response {
    (StatusCode::FORBIDDEN, e.to_string()).into_response()
}

/// Why a request was refused: its status and the text saying what is accepted.
type Refusal = (StatusCode, String);

fn decode<T: serde::de::DeserializeOwned>(
    path: &str,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<T, Refusal> {
    let content_type = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    if content_type != Some(codec::WIRE_CONTENT_TYPE) {
        return Err((
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("{path}: send a {} frame", codec::WIRE_CONTENT_TYPE),
        ));
    }
    codec::from_cluster_frame(body)
        .map(|(_, v)| v)
        .map_err(|e| {
            (
                StatusCode::BAD_REQUEST,
                format!("malformed message on {path}: {e}"),
            )
        })
}

fn frame<T: serde::Serialize>(value: &T) -> Response {
    match codec::to_cluster_frame("", value) {
        Ok(bytes) => (
            [(axum::http::header::CONTENT_TYPE, codec::WIRE_CONTENT_TYPE)],
            bytes,
        )
            .into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

async fn admit(
    State(admission): State<Option<Arc<Admission>>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(admission) = admission else {
        return no_ca_key();
    };
    let request: AdmitRequest = match decode(ADMIT_PATH, &headers, &body) {
        Ok(r) => r,
        Err(refusal) => return refusal.into_response(),
    };
    if let Err(e) = admission.refresh_tokens().await {
        tracing::warn!(error = %e, "cannot read the current join tokens");
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("cannot read the current join tokens ({e}); try again"),
        )
            .into_response();
    }
    match admission.admit(&request) {
        Ok(answer) => frame(&answer),
        Err(e) => {
            tracing::warn!(node = %request.node_name.chars().take(64).collect::<String>(), error = %e, "refused an admission request");
            refused(&e)
        }
    }
}

async fn renew(
    State(admission): State<Option<Arc<Admission>>>,
    ConnectInfo(peer): ConnectInfo<PeerInfo>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(admission) = admission else {
        return no_ca_key();
    };
    let Some((node, role)) = peer.node else {
        return (
            StatusCode::FORBIDDEN,
            "renewal needs the node's current certificate",
        )
            .into_response();
    };
    let request: RenewRequest = match decode(RENEW_PATH, &headers, &body) {
        Ok(r) => r,
        Err(refusal) => return refusal.into_response(),
    };
    match admission.renew(&node, role.unwrap_or(Role::Worker), &request) {
        Ok(cert) => frame(&cert),
        Err(e) => refused(&e),
    }
}
