//! The Raft port: an axum server taking [`codec`](crate::codec) frames POSTed by peers, with the
//! content type [`WIRE_CONTENT_TYPE`]; every answer is a frame too, except `/raft/status`, which
//! answers JSON for people and scripts.
//!
//! | path | body | answer |
//! |---|---|---|
//! | `/raft/append` | `AppendEntriesRequest` | `Result<AppendEntriesResponse, RaftError>` |
//! | `/raft/vote` | `VoteRequest` | `Result<VoteResponse, RaftError>` |
//! | `/raft/snapshot` | `InstallSnapshotRequest` (one chunk) | `Result<InstallSnapshotResponse, RaftError>` |
//! | `/raft/leader` | `LeaderRequest` | `Result<LeaderResponse, WireError>` |
//! | `/raft/status` | anything (GET or POST) | `RaftStatus` as JSON |
//!
//! A request with another content type is answered `415 Unsupported Media Type`, and a body that
//! is truncated, corrupt or not the path's message is answered `400 Bad Request`; both answers
//! say what was wrong and what is accepted, and are logged. The node carries on.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

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

use super::leader::{LeaderOps, LeaderRequest};
use super::network::paths;
use super::node::status_of;
use crate::codec::{self, WIRE_CONTENT_TYPE};

/// The largest message accepted (a snapshot chunk is at most 1 MiB, an append batch is small).
const BODY_LIMIT: usize = 64 * 1024 * 1024;

#[derive(Debug, Clone)]
struct ServerState {
    ops: LeaderOps,
    committed: Arc<AtomicU64>,
}

/// Why a request was refused: its status and the text saying what is accepted.
type Refusal = (StatusCode, String);

/// Decodes a request frame; on failure logs it and returns the refusal.
fn decode<T: DeserializeOwned>(
    path: &str,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<T, Refusal> {
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
    codec::from_frame(body).map_err(|e| {
        tracing::warn!(path, bytes = body.len(), error = %e, "rejected a malformed raft message");
        (
            StatusCode::BAD_REQUEST,
            format!("malformed message on {path}: {e}"),
        )
    })
}

fn answer<T: Serialize>(value: T) -> Response {
    match codec::to_frame(&value) {
        Ok(frame) => ([(CONTENT_TYPE, WIRE_CONTENT_TYPE)], frame).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

async fn append(State(s): State<ServerState>, headers: HeaderMap, body: Bytes) -> Response {
    match decode(paths::APPEND, &headers, &body) {
        Ok(req) => answer(s.ops.raft.append_entries(req).await),
        Err(refusal) => refusal.into_response(),
    }
}

async fn vote(State(s): State<ServerState>, headers: HeaderMap, body: Bytes) -> Response {
    match decode(paths::VOTE, &headers, &body) {
        Ok(req) => answer(s.ops.raft.vote(req).await),
        Err(refusal) => refusal.into_response(),
    }
}

async fn snapshot(State(s): State<ServerState>, headers: HeaderMap, body: Bytes) -> Response {
    match decode(paths::SNAPSHOT, &headers, &body) {
        Ok(req) => answer(s.ops.raft.install_snapshot(req).await),
        Err(refusal) => refusal.into_response(),
    }
}

async fn leader(State(s): State<ServerState>, headers: HeaderMap, body: Bytes) -> Response {
    match decode::<LeaderRequest>(paths::LEADER, &headers, &body) {
        Ok(req) => answer(s.ops.handle(req).await),
        Err(refusal) => refusal.into_response(),
    }
}

/// Status is for people and scripts (`curl`), so it stays JSON.
async fn status(State(s): State<ServerState>) -> Response {
    axum::Json(status_of(&s.ops.raft, &s.committed)).into_response()
}

/// Serves the Raft port on `listener` until `stop` turns true.
pub(crate) fn serve(
    listener: TcpListener,
    ops: LeaderOps,
    committed: Arc<AtomicU64>,
    mut stop: watch::Receiver<bool>,
) -> JoinHandle<()> {
    let app = Router::new()
        .route(paths::APPEND, post(append))
        .route(paths::VOTE, post(vote))
        .route(paths::SNAPSHOT, post(snapshot))
        .route(paths::LEADER, post(leader))
        .route(paths::STATUS, post(status).get(status))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(ServerState { ops, committed });
    tokio::spawn(async move {
        let shutdown = async move {
            let _ = stop.wait_for(|stopped| *stopped).await;
        };
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
        {
            tracing::error!(error = %e, "raft port stopped");
        }
    })
}
