//! Log streaming: one task's logs from the node that runs it, and a service's logs aggregated
//! from every node that runs one of its tasks. Lines are plain text, prefixed with the task id
//! when aggregated.

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::Response;
use futures::stream::{self, BoxStream, StreamExt};
use orion_core::model::Task;
use orion_core::runtime::LogOptions;
use serde::Deserialize;

use super::errors::{ApiResult, HttpError};
use super::routes::ApiState;

#[derive(Debug, Clone, Copy, Deserialize)]
pub struct LogQuery {
    #[serde(default)]
    follow: bool,
    tail: Option<usize>,
}

type Lines = BoxStream<'static, Result<String, std::io::Error>>;

fn text(stream: Lines) -> Response {
    Response::builder()
        .header("content-type", "text/plain; charset=utf-8")
        .body(Body::from_stream(stream))
        .expect("static headers are valid")
}

/// The task's lines, read locally when it runs here, otherwise from its node's API.
/// `auth` (the caller's `Authorization` header) is sent on to the other node, which checks it
/// against the same replicated tokens.
async fn task_lines(
    state: &ApiState,
    task: &Task,
    q: LogQuery,
    prefix: bool,
    auth: Option<&HeaderValue>,
) -> ApiResult<Lines> {
    let node = task
        .node
        .clone()
        .ok_or_else(|| HttpError::bad_request(format!("task {} is not placed yet", task.id)))?;
    let tag = if prefix {
        format!("{} | ", task.id)
    } else {
        String::new()
    };
    if node == state.node_id {
        let container = task.container_id.clone().ok_or_else(|| {
            HttpError::bad_request(format!("task {} has no container yet", task.id))
        })?;
        let logs = state
            .runtime
            .logs(
                &container,
                LogOptions {
                    follow: q.follow,
                    tail: q.tail,
                },
            )
            .await?;
        return Ok(logs
            .map(move |l| match l {
                Ok(l) => Ok(format!("{tag}{}\n", l.line)),
                Err(e) => Err(std::io::Error::other(e.to_string())),
            })
            .boxed());
    }
    let api = state
        .store
        .get_node(&node)
        .await?
        .map(|n| n.addresses.api)
        .filter(|a| !a.is_empty())
        .ok_or_else(|| {
            HttpError::new(
                axum::http::StatusCode::BAD_GATEWAY,
                format!("node {node} has no API address"),
            )
        })?;
    let mut url = format!(
        "{}://{api}/v1/tasks/{}/logs?follow={}",
        state.settings.peer_scheme, task.id, q.follow
    );
    if let Some(n) = q.tail {
        url.push_str(&format!("&tail={n}"));
    }
    // Connecting is bounded by the client; the answer's headers, and when not following the
    // whole answer, by the proxy timeout. A followed stream may stay quiet for any time.
    let bound = state.settings.proxy_timeout;
    let mut req = state.http.get(&url);
    if let Some(auth) = auth {
        req = req.header(header::AUTHORIZATION, auth.clone());
    }
    if !q.follow {
        req = req.timeout(bound);
    }
    let too_slow = || {
        HttpError::new(
            axum::http::StatusCode::GATEWAY_TIMEOUT,
            format!(
                "node {node} did not answer for the logs of {} within {bound:?} (api.proxyTimeout)",
                task.id
            ),
        )
    };
    let resp = match tokio::time::timeout(bound, req.send()).await {
        Ok(Err(e)) if e.is_timeout() => return Err(too_slow()),
        Ok(r) => r.and_then(|r| r.error_for_status()).map_err(|e| {
            HttpError::new(
                axum::http::StatusCode::BAD_GATEWAY,
                format!("cannot read logs of {} from node {node}: {e}", task.id),
            )
        })?,
        Err(_) => return Err(too_slow()),
    };
    // Re-split into lines so prefixes land at line starts.
    let mut pending = String::new();
    let body = resp.bytes_stream().map(move |chunk| {
        let chunk = chunk.map_err(std::io::Error::other)?;
        pending.push_str(&String::from_utf8_lossy(&chunk));
        let mut out = String::new();
        while let Some(pos) = pending.find('\n') {
            let line: String = pending.drain(..=pos).collect();
            out.push_str(&tag);
            out.push_str(&line);
        }
        Ok(out)
    });
    Ok(body.boxed())
}

/// `GET /v1/tasks/{id}/logs`.
pub async fn task_logs(
    State(state): State<ApiState>,
    Path(id): Path<String>,
    Query(q): Query<LogQuery>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let task = state
        .store
        .get_task(&id)
        .await?
        .ok_or_else(|| HttpError::not_found("task", &id))?;
    let auth = headers.get(header::AUTHORIZATION);
    Ok(text(task_lines(&state, &task, q, false, auth).await?))
}

/// `GET /v1/services/{name}/logs`: every live task's logs, merged as they come.
pub async fn service_logs(
    State(state): State<ApiState>,
    Path(name): Path<String>,
    Query(q): Query<LogQuery>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let auth = headers.get(header::AUTHORIZATION);
    if state.store.get_service(&name).await?.is_none() {
        return Err(HttpError::not_found("service", &name));
    }
    let tasks = state.store.tasks_of_service(&name).await?;
    let mut streams = Vec::new();
    for task in tasks
        .iter()
        .filter(|t| t.container_id.is_some() && !t.state.is_terminal())
    {
        match task_lines(&state, task, q, true, auth).await {
            Ok(s) => streams.push(s),
            Err(e) => streams
                .push(stream::once(async move { Ok(format!("[{}]\n", e.body.error)) }).boxed()),
        }
    }
    Ok(text(stream::select_all(streams).boxed()))
}
