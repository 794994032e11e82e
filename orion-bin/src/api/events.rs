//! `GET /v1/events`: the cluster events this node derived (see [`crate::events`]), oldest
//! first, as a JSON array; with `watch=true`, as a stream of one JSON object per line that
//! first sends the kept events and then each new one.
//!
//! Query: `since=REVISION` (only events of later store revisions), `service=`, `task=`,
//! `node=` (only events about that object), `limit=N` (the newest N, 1 to
//! [`crate::events::EVENT_CAPACITY`]), `watch=true`, `timeout=` (how long a watch lasts, 1 s
//! to 1 h, default [`DEFAULT_WATCH`]). A watch also ends when it falls more than
//! [`crate::events::WATCH_BUFFER`] events behind; the client resumes with `since=` the last
//! revision it got.

use std::time::Duration;

use axum::Json;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use serde::Deserialize;
use tokio::sync::broadcast::error::RecvError;

use super::errors::{ApiResult, HttpError};
use super::routes::ApiState;
use crate::events::{ClusterEvent, EVENT_CAPACITY};

/// How long a watch lasts without `timeout=`.
pub const DEFAULT_WATCH: Duration = Duration::from_secs(600);
/// The longest watch.
pub const MAX_WATCH: Duration = Duration::from_secs(3600);

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventQuery {
    #[serde(default)]
    since: u64,
    service: Option<String>,
    task: Option<String>,
    node: Option<String>,
    limit: Option<usize>,
    #[serde(default)]
    watch: bool,
    timeout: Option<String>,
}

impl EventQuery {
    fn wants(&self, e: &ClusterEvent) -> bool {
        e.revision > self.since
            && self
                .service
                .as_ref()
                .is_none_or(|s| e.service.as_ref() == Some(s))
            && self
                .task
                .as_ref()
                .is_none_or(|t| e.kind == "task" && &e.name == t)
            && self
                .node
                .as_ref()
                .is_none_or(|n| e.node.as_ref() == Some(n))
    }

    fn watch_for(&self) -> ApiResult<Duration> {
        let Some(text) = &self.timeout else {
            return Ok(DEFAULT_WATCH);
        };
        let bad = || {
            HttpError::bad_request(format!(
                "timeout: got {text:?}, expected a duration from 1s to 1h, such as 30s or 10m"
            ))
        };
        let d = humantime::parse_duration(text).map_err(|_| bad())?;
        if d < Duration::from_secs(1) || d > MAX_WATCH {
            return Err(bad());
        }
        Ok(d)
    }
}

fn line(e: &ClusterEvent) -> Result<String, std::io::Error> {
    let mut s = serde_json::to_string(e).map_err(std::io::Error::other)?;
    s.push('\n');
    Ok(s)
}

/// `GET /v1/events`.
pub async fn events(
    State(state): State<ApiState>,
    Query(q): Query<EventQuery>,
) -> ApiResult<Response> {
    if let Some(n) = q.limit
        && !(1..=EVENT_CAPACITY).contains(&n)
    {
        return Err(HttpError::bad_request(format!(
            "limit: got {n}, expected 1 to {EVENT_CAPACITY} (the events a node keeps)"
        )));
    }
    let watch_for = q.watch_for()?;
    // Subscribe first, so no event falls between what is kept and what follows.
    let mut feed = state.events.subscribe();
    let mut kept: Vec<ClusterEvent> = state
        .events
        .since(q.since)
        .into_iter()
        .filter(|e| q.wants(e))
        .collect();
    if let Some(n) = q.limit {
        let skip = kept.len().saturating_sub(n);
        kept.drain(..skip);
    }
    if !q.watch {
        return Ok(Json(kept).into_response());
    }
    let last = kept.last().map_or(q.since, |e| e.revision);
    // Events of the last revision already sent may come again through the feed: skip them.
    let mut sent_at_last: Vec<ClusterEvent> = kept
        .iter()
        .filter(|e| e.revision == last)
        .cloned()
        .collect();
    let first = futures::stream::iter(kept.iter().map(line).collect::<Vec<_>>());
    let live = async_stream_of(move |tx| async move {
        let deadline = tokio::time::Instant::now() + watch_for;
        let mut last = last;
        loop {
            let next = tokio::time::timeout_at(deadline, feed.recv()).await;
            match next {
                Ok(Ok(e)) => {
                    if e.revision < last || !q.wants(&e) {
                        continue;
                    }
                    if e.revision == last
                        && let Some(i) = sent_at_last.iter().position(|s| *s == e)
                    {
                        sent_at_last.swap_remove(i);
                        continue;
                    }
                    last = e.revision;
                    if tx.send(line(&e)).await.is_err() {
                        return;
                    }
                }
                // Too far behind, the log gone, or the watch's time is up: end; the client
                // resumes with `since=`.
                Ok(Err(RecvError::Lagged(_))) | Ok(Err(RecvError::Closed)) | Err(_) => return,
            }
        }
    });
    let body = first.chain(live);
    Ok(Response::builder()
        .header("content-type", "application/x-ndjson")
        .body(Body::from_stream(body))
        .expect("static headers are valid"))
}

type Item = Result<String, std::io::Error>;

/// A stream fed by `producer` through a small channel (the producer stops when the client
/// goes away: its sends fail).
fn async_stream_of<F, Fut>(producer: F) -> impl futures::Stream<Item = Item> + Send + 'static
where
    F: FnOnce(tokio::sync::mpsc::Sender<Item>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    tokio::spawn(producer(tx));
    tokio_stream_from(rx)
}

fn tokio_stream_from(
    mut rx: tokio::sync::mpsc::Receiver<Item>,
) -> impl futures::Stream<Item = Item> + Send + 'static {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}
