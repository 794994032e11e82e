//! The Raft port: an axum server taking JSON POSTs from peers.
//!
//! | path | body | answer |
//! |---|---|---|
//! | `/raft/append` | `AppendEntriesRequest` | `Result<AppendEntriesResponse, RaftError>` |
//! | `/raft/vote` | `VoteRequest` | `Result<VoteResponse, RaftError>` |
//! | `/raft/snapshot` | `InstallSnapshotRequest` (one chunk) | `Result<InstallSnapshotResponse, RaftError>` |
//! | `/raft/leader` | `LeaderRequest` | `Result<LeaderResponse, WireError>` |
//! | `/raft/status` | anything | `RaftStatus` |
//!
//! A body that is not valid JSON for its path is answered `400 Bad Request` with the decoding
//! error, and logged; the node carries on.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
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

/// The largest message accepted (a snapshot chunk is at most 1 MiB, an append batch is small).
const BODY_LIMIT: usize = 64 * 1024 * 1024;

#[derive(Debug, Clone)]
struct ServerState {
    ops: LeaderOps,
    committed: Arc<AtomicU64>,
}

/// Decodes a JSON body; on failure logs it and returns the 400 answer's text.
fn decode<T: DeserializeOwned>(path: &str, body: &Bytes) -> Result<T, String> {
    serde_json::from_slice(body).map_err(|e| {
        tracing::warn!(path, bytes = body.len(), error = %e, "rejected a malformed raft message");
        format!("malformed message on {path}: {e}; expected a JSON body for this path")
    })
}

fn reject(reason: String) -> Response {
    (StatusCode::BAD_REQUEST, reason).into_response()
}

fn answer<T: Serialize>(value: T) -> Response {
    Json(value).into_response()
}

async fn append(State(s): State<ServerState>, body: Bytes) -> Response {
    match decode(paths::APPEND, &body) {
        Ok(req) => answer(s.ops.raft.append_entries(req).await),
        Err(reason) => reject(reason),
    }
}

async fn vote(State(s): State<ServerState>, body: Bytes) -> Response {
    match decode(paths::VOTE, &body) {
        Ok(req) => answer(s.ops.raft.vote(req).await),
        Err(reason) => reject(reason),
    }
}

async fn snapshot(State(s): State<ServerState>, body: Bytes) -> Response {
    match decode(paths::SNAPSHOT, &body) {
        Ok(req) => answer(s.ops.raft.install_snapshot(req).await),
        Err(reason) => reject(reason),
    }
}

async fn leader(State(s): State<ServerState>, body: Bytes) -> Response {
    match decode::<LeaderRequest>(paths::LEADER, &body) {
        Ok(req) => answer(s.ops.handle(req).await),
        Err(reason) => reject(reason),
    }
}

async fn status(State(s): State<ServerState>) -> Response {
    answer(status_of(&s.ops.raft, &s.committed))
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
