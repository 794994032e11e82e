//! The Raft port: an axum server taking [`codec`](crate::codec) frames POSTed by peers, with the
//! content type [`WIRE_CONTENT_TYPE`]; every answer is a frame too, except `/raft/status`, which
//! answers JSON for people and scripts.
//!
//! | path | body | answer |
//! |---|---|---|
//! | `/raft/append` | `AppendEntriesRequest` | `Result<AppendEntriesResponse, RaftError>` |
//! | `/raft/vote` | `VoteRequest` | `Result<VoteResponse, RaftError>` |
//! | `/raft/prevote` | `PreVoteRequest` | `PreVoteResponse` (see `election.rs`) |
//! | `/raft/snapshot` | `InstallSnapshotRequest` (one chunk) | `Result<InstallSnapshotResponse, RaftError>` |
//! | `/raft/leader` | `LeaderRequest` | `Result<LeaderResponse, WireError>` |
//! | `/raft/status` | anything (GET or POST) | `RaftStatus` as JSON |
//! | `/raft/cluster` | `()` | `()`, in a frame stamped with this node's cluster id |
//! | `/raft/echo` | bytes (at most `MAX_ECHO_BYTES`) | the same bytes (network probes) |
//!
//! A request with another content type is answered `415 Unsupported Media Type`, and a body that
//! is truncated, corrupt or not the path's message is answered `400 Bad Request`; both answers
//! say what was wrong and what is accepted, and are logged. A frame stamped with another
//! cluster id than this node's is answered `409 Conflict` naming both ids (a node with no id
//! yet adopts the id of the Raft RPCs it receives: a wiped member restarted without
//! `--bootstrap` catches up; it never adopts one from other requests), and logged at most once per [`MISMATCH_LOG_PERIOD`] with the count of the
//! ones held back. The node carries on.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use openraft::raft::AppendEntriesResponse;

use super::election::{self, Elections, PreVoteRequest};
use super::identity::DataDirIdentity;
use super::leader::{LeaderOps, LeaderRequest};
use super::network::paths;
use super::node::status_of;
use super::server_tls;
use crate::cluster_id::LogLimiter;
use crate::codec::{self, WIRE_CONTENT_TYPE};
use crate::error::Error;
use crate::security::{PeerInfo, RaftTls, TlsListener};
use crate::transport::{CLUSTER_ID_PATH, ECHO_PATH, MAX_ECHO_BYTES};

/// A peer of another cluster retries every heartbeat: log its refusal at most this often.
pub(crate) const MISMATCH_LOG_PERIOD: Duration = Duration::from_secs(10);

/// The largest message accepted (a snapshot chunk is at most 1 MiB, an append batch is small).
const BODY_LIMIT: usize = 64 * 1024 * 1024;

#[derive(Debug, Clone)]
struct ServerState {
    ops: LeaderOps,
    committed: Arc<AtomicU64>,
    elections: Elections,
    identity: Arc<DataDirIdentity>,
    mismatch_log: Arc<LogLimiter>,
    /// False until a node started on an empty data dir is admitted (see `super::membership`).
    admitted: Arc<AtomicBool>,
}

/// Whether a frame of another cluster may make a node that has no cluster id adopt it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Adopt {
    /// Raft RPCs (append, vote, snapshot) come from a cluster whose configuration holds this
    /// node's id and address: a member whose data dir was wiped and restarted without
    /// `--bootstrap` and admitted again. It adopts their cluster id (durably, before answering)
    /// and catches up.
    FromRaftPeers,
    /// Other requests never make a node adopt an id.
    Never,
}

/// Refuses Raft traffic to a node not admitted yet (`503`), saying why.
fn not_admitted(s: &ServerState, path: &str) -> Option<Response> {
    if s.admitted.load(Ordering::SeqCst) {
        return None;
    }
    tracing::debug!(path, "refused raft traffic: this node is not admitted yet");
    Some(
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "{path}: this node started on an empty data dir and is not a member yet; it \
                 accepts Raft traffic once a leader has admitted it (RaftNode::join), which \
                 replaces any member of the same id (a wiped voter) with a new learner"
            ),
        )
            .into_response(),
    )
}

/// Why a request was refused: its status and the text saying what is accepted.
type Refusal = (StatusCode, String);

/// Decodes a request frame of this node's cluster; on failure logs it and returns the refusal.
fn decode<T: DeserializeOwned>(
    state: &ServerState,
    adopt: Adopt,
    path: &str,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<T, Refusal> {
    let (theirs, value) = decode_any_cluster(path, headers, body)?;
    let ours = state.identity.cluster_id();
    match &ours {
        Some(ours) if *ours == theirs => return Ok(value),
        // Neither has an id: nodes from before cluster ids.
        None if theirs.is_empty() => return Ok(value),
        None if adopt == Adopt::FromRaftPeers => {
            let peer = format!("the sender of a {path} request");
            return match state.identity.adopt(&theirs, &peer) {
                Ok(()) => Ok(value),
                Err(e) => Err((StatusCode::CONFLICT, e.to_string())),
            };
        }
        _ => {}
    }
    let none = |id: Option<String>| id.unwrap_or_else(|| "(none yet)".to_owned());
    let err = Error::ClusterMismatch {
        ours: none(ours),
        theirs: none(Some(theirs).filter(|id| !id.is_empty())),
        peer: format!("the sender of a {path} request"),
    };
    if let Some(held_back) = state.mismatch_log.allow() {
        tracing::warn!(path, held_back, error = %err, "refused a raft message of another cluster");
    }
    Err((StatusCode::CONFLICT, err.to_string()))
}

/// Decodes a request frame from any cluster; on failure logs it and returns the refusal.
fn decode_any_cluster<T: DeserializeOwned>(
    path: &str,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<(String, T), Refusal> {
    let content_type = headers
        .get(CONTENT_TYPE)
        .map(|v| v.to_str().unwrap_or("<not text>"));
    if content_type != Some(WIRE_CONTENT_TYPE) {
        let found = content_type.unwrap_or("none");
        tracing::warn!(
            path,
            content_type = found,
            "rejected a raft message of the wrong type"
        );
        return Err((
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "content type {found:?} is not accepted on {path}; send a {WIRE_CONTENT_TYPE} \
                 frame (an Orion node of the same version)"
            ),
        ));
    }
    codec::from_cluster_frame(body).map_err(|e| {
        tracing::warn!(path, bytes = body.len(), error = %e, "rejected a malformed raft message");
        (
            StatusCode::BAD_REQUEST,
            format!("malformed message on {path}: {e}"),
        )
    })
}

fn answer<T: Serialize>(state: &ServerState, value: T) -> Response {
    match codec::to_cluster_frame(&state.identity.cluster_id().unwrap_or_default(), &value) {
        Ok(frame) => ([(CONTENT_TYPE, WIRE_CONTENT_TYPE)], frame).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

async fn append(State(s): State<ServerState>, headers: HeaderMap, body: Bytes) -> Response {
    if let Some(refusal) = not_admitted(&s, paths::APPEND) {
        return refusal;
    }
    match decode(&s, Adopt::FromRaftPeers, paths::APPEND, &headers, &body) {
        Ok(req) => {
            let resp = s.ops.raft.append_entries(req).await;
            // Anything but "your term is stale" comes from the current leader.
            if matches!(&resp, Ok(r) if !matches!(r, AppendEntriesResponse::HigherVote(_))) {
                s.elections.contact.touch();
            }
            answer(&s, resp)
        }
        Err(refusal) => refusal.into_response(),
    }
}

async fn vote(State(s): State<ServerState>, headers: HeaderMap, body: Bytes) -> Response {
    if let Some(refusal) = not_admitted(&s, paths::VOTE) {
        return refusal;
    }
    match decode(&s, Adopt::FromRaftPeers, paths::VOTE, &headers, &body) {
        Ok(req) => {
            let resp = s.ops.raft.vote(req).await;
            // Having just voted, give that candidate time to win before campaigning.
            if matches!(&resp, Ok(r) if r.vote_granted) {
                s.elections.contact.touch();
            }
            answer(&s, resp)
        }
        Err(refusal) => refusal.into_response(),
    }
}

async fn prevote(State(s): State<ServerState>, headers: HeaderMap, body: Bytes) -> Response {
    if let Some(refusal) = not_admitted(&s, paths::PREVOTE) {
        return refusal;
    }
    match decode::<PreVoteRequest>(&s, Adopt::Never, paths::PREVOTE, &headers, &body) {
        Ok(req) => answer(&s, election::answer(&s.elections, &req)),
        Err(refusal) => refusal.into_response(),
    }
}

async fn snapshot(State(s): State<ServerState>, headers: HeaderMap, body: Bytes) -> Response {
    if let Some(refusal) = not_admitted(&s, paths::SNAPSHOT) {
        return refusal;
    }
    match decode(&s, Adopt::FromRaftPeers, paths::SNAPSHOT, &headers, &body) {
        Ok(req) => {
            let resp = s.ops.raft.install_snapshot(req).await;
            if resp.is_ok() {
                s.elections.contact.touch();
            }
            answer(&s, resp)
        }
        Err(refusal) => refusal.into_response(),
    }
}

async fn leader(
    State(s): State<ServerState>,
    peer: Option<axum::Extension<PeerInfo>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match decode::<LeaderRequest>(&s, Adopt::Never, paths::LEADER, &headers, &body) {
        Ok(req) => {
            let req = match server_tls::mark_workers(peer.as_ref().map(|p| &p.0), req) {
                Ok(req) => req,
                Err(refusal) => return refusal.into_response(),
            };
            answer(&s, s.ops.handle(req).await)
        }
        Err(refusal) => refusal.into_response(),
    }
}

/// Which cluster this node is in: an empty frame stamped with its id, from any sender.
async fn cluster_id(State(s): State<ServerState>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(refusal) = decode_any_cluster::<()>(CLUSTER_ID_PATH, &headers, &body) {
        return refusal.into_response();
    }
    if s.identity.cluster_id().is_none() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "this node has no cluster id yet: it has not bootstrapped or joined a cluster",
        )
            .into_response();
    }
    answer(&s, ())
}

/// Sends back the bytes it is sent, for the network prober; frames of this node's cluster only.
async fn echo(State(s): State<ServerState>, headers: HeaderMap, body: Bytes) -> Response {
    match decode::<Vec<u8>>(&s, Adopt::Never, ECHO_PATH, &headers, &body) {
        Ok(payload) if payload.len() > MAX_ECHO_BYTES => (
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "{ECHO_PATH}: {} bytes; at most {MAX_ECHO_BYTES} are echoed",
                payload.len()
            ),
        )
            .into_response(),
        Ok(payload) => answer(&s, payload),
        Err(refusal) => refusal.into_response(),
    }
}

/// Status is for people and scripts (`curl`), so it stays JSON.
async fn status(State(s): State<ServerState>) -> Response {
    axum::Json(status_of(&s.ops.raft, &s.committed)).into_response()
}

/// Serves the Raft port on `listener` until `stop` turns true: plain HTTP, or mutual TLS with
/// `tls` (see `server_tls`).
#[allow(clippy::too_many_arguments)]
pub(crate) fn serve(
    listener: TcpListener,
    ops: LeaderOps,
    committed: Arc<AtomicU64>,
    elections: Elections,
    identity: Arc<DataDirIdentity>,
    admitted: Arc<AtomicBool>,
    tls: Option<RaftTls>,
    gossip_addr: Option<String>,
    mut stop: watch::Receiver<bool>,
) -> std::io::Result<JoinHandle<()>> {
    let app = Router::new()
        .route(paths::APPEND, post(append))
        .route(paths::VOTE, post(vote))
        .route(paths::PREVOTE, post(prevote))
        .route(paths::SNAPSHOT, post(snapshot))
        .route(paths::LEADER, post(leader))
        .route(paths::STATUS, post(status).get(status))
        .route(CLUSTER_ID_PATH, post(cluster_id))
        .route(ECHO_PATH, post(echo))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(ServerState {
            ops,
            committed,
            elections,
            identity,
            mismatch_log: Arc::new(LogLimiter::new(MISMATCH_LOG_PERIOD)),
            admitted,
        });
    let shutdown = async move {
        let _ = stop.wait_for(|stopped| *stopped).await;
    };
    let Some(tls) = tls else {
        return Ok(tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app)
                .with_graceful_shutdown(shutdown)
                .await
            {
                tracing::error!(error = %e, "raft port stopped");
            }
        }));
    };
    let app = app
        .merge(server_tls::routes(tls.admission.clone(), gossip_addr))
        .layer(axum::middleware::from_fn(
            server_tls::require_node_certificate,
        ));
    let listener = TlsListener::new(listener, tls.node.server_config())?;
    Ok(tokio::spawn(async move {
        if let Err(e) = axum::serve(
            listener,
            app.into_make_service_with_connect_info::<PeerInfo>(),
        )
        .with_graceful_shutdown(shutdown)
        .await
        {
            tracing::error!(error = %e, "raft port stopped");
        }
    }))
}
