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

/// `?follow=&tail=&since=&timestamps=&previous=`: `since` in seconds since the Unix epoch;
/// `previous` (service logs only) reads, per replica slot, the newest task that has exited
/// instead of the live ones. `since` and `timestamps` need a runtime that records times
/// (Docker); others refuse them (501).
#[derive(Debug, Clone, Copy, Deserialize)]
pub struct LogQuery {
    #[serde(default)]
    follow: bool,
    tail: Option<usize>,
    since: Option<i64>,
    #[serde(default)]
    timestamps: bool,
    #[serde(default)]
    previous: bool,
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
                    since: q.since,
                    timestamps: q.timestamps,
                },
            )
            .await?;
        let lines = logs.map(move |l| match l {
            Ok(l) => Ok(format!("{tag}{}\n", l.line)),
            Err(e) => Err(std::io::Error::other(e.to_string())),
        });
        return Ok(ending_in_a_note(lines.boxed(), &task.id));
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
    if let Some(t) = q.since {
        url.push_str(&format!("&since={t}"));
    }
    if q.timestamps {
        url.push_str("&timestamps=true");
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
    Ok(ending_in_a_note(body.boxed(), &task.id))
}

/// `lines` up to its first error, which becomes a last line `[logs of TASK ended: ERROR]`.
/// Once the answer's headers are sent an error cannot change its status; ending the stream
/// with a note keeps the HTTP answer whole (an error item would make hyper cut the chunked
/// body, which clients see as a broken connection), and in a service's merged logs it ends only
/// that task's part.
pub(super) fn ending_in_a_note(lines: Lines, task: &str) -> Lines {
    let task = task.to_owned();
    lines
        .scan(false, move |ended, item| {
            if *ended {
                return futures::future::ready(None);
            }
            let line = item.unwrap_or_else(|e| {
                *ended = true;
                format!("[logs of {task} ended: {e}]\n")
            });
            futures::future::ready(Some(Ok(line)))
        })
        .boxed()
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
    let chosen = if q.previous {
        previous_tasks(&tasks)
    } else {
        tasks
            .iter()
            .filter(|t| t.container_id.is_some() && !t.state.is_terminal())
            .collect()
    };
    if chosen.is_empty() {
        let message = if q.previous {
            format!(
                "service {name} has no exited task whose container is still kept;                  `orion ps --service {name} --all` lists its tasks"
            )
        } else {
            format!(
                "service {name} has no running task ({} task records, none with a live                  container); `orion logs {name} --previous` reads the last exited ones,                  `orion ps --service {name} --all` lists them",
                tasks.len()
            )
        };
        return Err(HttpError::new(axum::http::StatusCode::CONFLICT, message));
    }
    let mut streams = Vec::new();
    for task in chosen {
        match task_lines(&state, task, q, true, auth).await {
            Ok(s) => streams.push(s),
            Err(e) => streams
                .push(stream::once(async move { Ok(format!("[{}]\n", e.body.error)) }).boxed()),
        }
    }
    Ok(text(stream::select_all(streams).boxed()))
}

/// Per replica slot, the newest task that has ended and still names its container.
fn previous_tasks(tasks: &[Task]) -> Vec<&Task> {
    let mut by_slot: std::collections::BTreeMap<u32, &Task> = std::collections::BTreeMap::new();
    for t in tasks
        .iter()
        .filter(|t| t.container_id.is_some() && t.state.is_terminal())
    {
        let newer = by_slot
            .get(&t.slot)
            .is_none_or(|old| (t.updated_at, t.attempt) > (old.updated_at, old.attempt));
        if newer {
            by_slot.insert(t.slot, t);
        }
    }
    by_slot.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_stream_error_ends_the_lines_with_a_note_instead_of_an_error() {
        let items: Vec<Result<String, std::io::Error>> = vec![
            Ok("a\n".into()),
            Err(std::io::Error::other("engine went away")),
            Ok("never\n".into()),
        ];
        let out: Vec<String> = ending_in_a_note(stream::iter(items).boxed(), "web-0-1")
            .map(|l| l.expect("no error reaches the body"))
            .collect()
            .await;
        assert_eq!(out, ["a\n", "[logs of web-0-1 ended: engine went away]\n"]);
    }
}
