//! Routes of the kubectl- and docker-style verbs: `GET /v1/events` (Read) and
//! `POST /v1/tasks/{id}/exec` (Operate).
//!
//! `exec` runs a command in a running task's container through [`Runtime::exec`] on the node
//! that runs it (another node's API is asked, with the caller's token). Body:
//! `{"command": ["sh", "-c", "..."], "timeout": "20s"}`. Bounds: at most [`MAX_EXEC_ARGS`]
//! arguments of [`MAX_EXEC_ARGS_BYTES`] in all; `timeout` from 1 s to 10 min (default
//! [`DEFAULT_EXEC_TIMEOUT`]) and below `api.requestTimeout`; each of stdout and stderr is cut
//! at [`MAX_EXEC_OUTPUT`] bytes (`truncated` says so). The answer carries the command's exit
//! code; a command still running at its timeout is a 504.
//!
//! [`Runtime::exec`]: orion_core::runtime::Runtime::exec

use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::{Extension, Json};
use orion_core::model::TaskState;
use serde::{Deserialize, Serialize};

use super::access::{Access, RouteTable};
use super::errors::{ApiResult, HttpError};
use super::routes::ApiState;
use super::tokens::Caller;

/// Most arguments of an exec'd command.
pub const MAX_EXEC_ARGS: usize = 256;
/// Most bytes of an exec'd command's arguments together.
pub const MAX_EXEC_ARGS_BYTES: usize = 64 * 1024;
/// Each of stdout and stderr is cut at this many bytes (the runtimes' own bound).
pub const MAX_EXEC_OUTPUT: usize = orion_core::runtime::MAX_EXEC_OUTPUT;
/// How long an exec may run without `timeout`.
pub const DEFAULT_EXEC_TIMEOUT: Duration = Duration::from_secs(20);
/// The longest `timeout` an exec may ask for.
pub const MAX_EXEC_TIMEOUT: Duration = Duration::from_secs(600);

/// The routes of this module.
pub fn routes() -> RouteTable {
    RouteTable::default()
        .add(
            Method::GET,
            "/v1/events",
            Access::Read,
            super::events::events,
        )
        .add(Method::POST, "/v1/tasks/{id}/exec", Access::Operate, exec)
}

/// `POST /v1/tasks/{id}/exec`'s body.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExecRequest {
    pub command: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
}

/// What an exec printed and how it ended.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ExecResponse {
    pub task: String,
    pub node: String,
    pub exit_code: i64,
    pub stdout: String,
    pub stderr: String,
    /// True when stdout or stderr was cut at [`MAX_EXEC_OUTPUT`] bytes.
    pub truncated: bool,
}

fn invalid(message: String) -> HttpError {
    HttpError::new(StatusCode::UNPROCESSABLE_ENTITY, message)
}

impl ExecRequest {
    /// Checks the bounds; the time the command may run.
    fn check(&self, request_timeout: Duration) -> ApiResult<Duration> {
        if self.command.is_empty() || self.command[0].is_empty() {
            return Err(invalid(
                "command: expected a program and its arguments, e.g. [\"sh\", \"-c\", \"ls\"]"
                    .into(),
            ));
        }
        if self.command.len() > MAX_EXEC_ARGS {
            return Err(invalid(format!(
                "command: got {} arguments, expected at most {MAX_EXEC_ARGS}",
                self.command.len()
            )));
        }
        let bytes: usize = self.command.iter().map(String::len).sum();
        if bytes > MAX_EXEC_ARGS_BYTES {
            return Err(invalid(format!(
                "command: got {bytes} bytes of arguments, expected at most {MAX_EXEC_ARGS_BYTES}"
            )));
        }
        if self.command.iter().any(|a| a.contains('\0')) {
            return Err(invalid("command: an argument contains a NUL byte".into()));
        }
        let Some(text) = &self.timeout else {
            return Ok(DEFAULT_EXEC_TIMEOUT.min(
                request_timeout
                    .saturating_sub(Duration::from_secs(1))
                    .max(Duration::from_secs(1)),
            ));
        };
        let wanted = humantime::parse_duration(text)
            .ok()
            .filter(|d| *d >= Duration::from_secs(1) && *d <= MAX_EXEC_TIMEOUT)
            .ok_or_else(|| {
                invalid(format!(
                    "timeout: got {text:?}, expected a duration from 1s to 10m, such as 30s"
                ))
            })?;
        if wanted >= request_timeout {
            return Err(invalid(format!(
                "timeout: got {text}, expected less than this node's api.requestTimeout ({})",
                humantime::format_duration(request_timeout)
            )));
        }
        Ok(wanted)
    }
}

/// `text` cut at [`MAX_EXEC_OUTPUT`] bytes (on a character boundary); whether it was cut.
fn bounded(mut text: String) -> (String, bool) {
    if text.len() <= MAX_EXEC_OUTPUT {
        return (text, false);
    }
    let mut end = MAX_EXEC_OUTPUT;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    (text, true)
}

/// `POST /v1/tasks/{id}/exec`.
async fn exec(
    State(state): State<ApiState>,
    Extension(_caller): Extension<Caller>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Option<Json<ExecRequest>>,
) -> ApiResult<Json<ExecResponse>> {
    let Some(Json(req)) = body else {
        return Err(HttpError::bad_request(
            "body: expected JSON {\"command\": [\"sh\", \"-c\", \"ls\"], \"timeout\": \"20s\"}",
        ));
    };
    let limit = req.check(state.settings.request_timeout)?;
    let task = state
        .store
        .get_task(&id)
        .await?
        .ok_or_else(|| HttpError::not_found("task", &id))?;
    let (Some(node), Some(container)) = (
        task.node.as_deref().map(str::to_owned),
        task.container_id.clone(),
    ) else {
        return Err(not_running(&id, task.state));
    };
    if task.state != TaskState::Running {
        return Err(not_running(&id, task.state));
    }
    if node != state.node_id {
        return proxy(&state, &node, &id, &req, limit, &headers).await;
    }
    let output =
        match tokio::time::timeout(limit, state.runtime.exec(&container, &req.command)).await {
            Ok(result) => result?,
            Err(_) => {
                return Err(HttpError::new(
                    StatusCode::GATEWAY_TIMEOUT,
                    format!(
                        "the command did not finish within {} (timeout); its output is lost",
                        humantime::format_duration(limit)
                    ),
                ));
            }
        };
    // The runtime keeps at most MAX_EXEC_OUTPUT per stream; cut again for any that does not.
    let (stdout, cut_out) = bounded(output.stdout);
    let (stderr, cut_err) = bounded(output.stderr);
    Ok(Json(ExecResponse {
        task: id,
        node,
        exit_code: output.exit_code,
        stdout,
        stderr,
        truncated: output.truncated || cut_out || cut_err,
    }))
}

fn not_running(id: &str, state: TaskState) -> HttpError {
    HttpError::new(
        StatusCode::CONFLICT,
        format!("task {id} is {state}, not running: exec needs a running task (see `orion ps`)"),
    )
}

/// Asks `node`'s API to run the exec, with the caller's token, within `limit` and a margin.
async fn proxy(
    state: &ApiState,
    node: &str,
    id: &str,
    req: &ExecRequest,
    limit: Duration,
    headers: &HeaderMap,
) -> ApiResult<Json<ExecResponse>> {
    let api = state
        .store
        .get_node(node)
        .await?
        .map(|n| n.addresses.api)
        .filter(|a| !a.is_empty())
        .ok_or_else(|| {
            HttpError::new(
                StatusCode::BAD_GATEWAY,
                format!("node {node} has no API address"),
            )
        })?;
    let mut forwarded = req.clone();
    forwarded.timeout = Some(format!("{}s", limit.as_secs().max(1)));
    let mut call = state
        .http
        .post(format!("http://{api}/v1/tasks/{id}/exec"))
        .json(&forwarded)
        .timeout(limit + state.settings.proxy_timeout);
    if let Some(auth) = headers.get(header::AUTHORIZATION) {
        call = call.header(header::AUTHORIZATION, auth.clone());
    }
    let resp = call.send().await.map_err(|e| {
        HttpError::new(
            StatusCode::BAD_GATEWAY,
            format!("cannot reach node {node} to exec in {id}: {e}"),
        )
    })?;
    let status = resp.status();
    let bytes = resp.bytes().await.map_err(|e| {
        HttpError::new(
            StatusCode::BAD_GATEWAY,
            format!("node {node} broke off its answer for the exec in {id}: {e}"),
        )
    })?;
    if !status.is_success() {
        let message = serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|v| v["error"].as_str().map(str::to_owned))
            .unwrap_or_else(|| String::from_utf8_lossy(&bytes).into_owned());
        let code = StatusCode::from_u16(status.as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
        return Err(HttpError::new(code, format!("node {node}: {message}")));
    }
    serde_json::from_slice(&bytes).map(Json).map_err(|e| {
        HttpError::new(
            StatusCode::BAD_GATEWAY,
            format!("node {node} answered the exec in {id} with something else: {e}"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(command: &[&str], timeout: Option<&str>) -> ExecRequest {
        ExecRequest {
            command: command.iter().map(|s| s.to_string()).collect(),
            timeout: timeout.map(str::to_owned),
        }
    }

    #[test]
    fn exec_requests_are_bounded() {
        let t = Duration::from_secs(30);
        assert_eq!(req(&["ls"], None).check(t).unwrap(), DEFAULT_EXEC_TIMEOUT);
        assert!(req(&[], None).check(t).is_err());
        let long = vec!["x"; MAX_EXEC_ARGS + 1];
        assert!(req(&long, None).check(t).is_err());
        let e = req(&["ls"], Some("1h")).check(t).unwrap_err();
        assert!(e.body.error.contains("1s to 10m"), "{}", e.body.error);
        let e = req(&["ls"], Some("40s")).check(t).unwrap_err();
        assert!(
            e.body.error.contains("api.requestTimeout"),
            "{}",
            e.body.error
        );
        assert_eq!(
            req(&["ls"], Some("5s")).check(t).unwrap(),
            Duration::from_secs(5)
        );
    }

    #[test]
    fn output_is_cut_on_a_character_boundary() {
        let (s, cut) = bounded("é".repeat(MAX_EXEC_OUTPUT));
        assert!(cut && s.len() <= MAX_EXEC_OUTPUT && s.len() > MAX_EXEC_OUTPUT - 2);
        assert_eq!(bounded("ok".into()), ("ok".to_owned(), false));
    }
}
