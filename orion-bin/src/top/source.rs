//! What `orion top` asks the node, each request bounded by a timeout: the poll (nodes, services,
//! tasks, network), events, a task's logs, scale and drain.

use std::future::Future;
use std::time::Duration;

use futures::StreamExt;
use orion_core::model::{Node, Task};
use reqwest::Method;

use super::events;
use super::state::{EventLine, Snapshot};
use crate::api::network::NetworkView;
use crate::api::types::{ScaleRequest, ServiceStatus};
use crate::client::Client;

/// Log lines asked for (`tail`) when a task's logs are opened.
pub const LOG_TAIL_LINES: usize = 200;
/// The most log bytes read for one task; the rest of a larger answer is dropped.
pub const MAX_LOG_BYTES: usize = 256 * 1024;

/// `fut`, or an error naming `what` when it takes longer than `timeout`.
async fn bounded<T, E: std::fmt::Display>(
    what: &str,
    timeout: Duration,
    fut: impl Future<Output = Result<T, E>>,
) -> Result<T, String> {
    match tokio::time::timeout(timeout, fut).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(format!("{what}: {e}")),
        Err(_) => Err(format!("{what}: no answer within {timeout:?}")),
    }
}

/// One poll: nodes, services and active tasks (all required), and the network view (optional:
/// when it fails the view is `None` and the rest still shows). Each request within `timeout`.
pub async fn poll(client: &Client, timeout: Duration) -> Result<Snapshot, String> {
    let (nodes, services, tasks, network) = tokio::join!(
        bounded(
            "GET /v1/nodes",
            timeout,
            client.get::<Vec<Node>>("/v1/nodes")
        ),
        bounded(
            "GET /v1/services",
            timeout,
            client.get::<Vec<ServiceStatus>>("/v1/services")
        ),
        bounded(
            "GET /v1/tasks",
            timeout,
            client.get::<Vec<Task>>("/v1/tasks")
        ),
        bounded(
            "GET /v1/network",
            timeout,
            client.get::<NetworkView>("/v1/network")
        ),
    );
    let mut nodes = nodes?;
    nodes.sort_by(|a, b| a.id.cmp(&b.id));
    let mut services = services?;
    services.sort_by(|a, b| a.spec.name.cmp(&b.spec.name));
    let mut tasks = tasks?;
    tasks.sort_by(|a, b| (&a.service, a.slot, &a.id).cmp(&(&b.service, b.slot, &b.id)));
    Ok(Snapshot {
        nodes,
        services,
        tasks,
        network: network.ok(),
    })
}

/// The events between two polls. The one place to change when the node serves
/// `GET /v1/events`: read them from there instead of deriving them.
pub async fn events_between(
    _client: &Client,
    old: Option<&Snapshot>,
    new: &Snapshot,
) -> Vec<EventLine> {
    events::diff(old, new, &clock_now())
}

/// `HH:MM:SS` of the current UTC time.
fn clock_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    format!(
        "{:02}:{:02}:{:02}",
        (secs / 3600) % 24,
        (secs / 60) % 60,
        secs % 60
    )
}

/// The last [`LOG_TAIL_LINES`] lines of `task` (at most [`MAX_LOG_BYTES`]), within `timeout`.
pub async fn task_logs(
    client: &Client,
    task: &str,
    timeout: Duration,
) -> Result<Vec<String>, String> {
    let path = format!("/v1/tasks/{task}/logs?follow=false&tail={LOG_TAIL_LINES}");
    let read = async {
        let resp = client.stream(&path).await.map_err(|e| e.to_string())?;
        let mut body = resp.bytes_stream();
        let mut bytes = Vec::new();
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| format!("log stream interrupted: {e}"))?;
            let room = MAX_LOG_BYTES - bytes.len();
            bytes.extend_from_slice(&chunk[..chunk.len().min(room)]);
            if bytes.len() == MAX_LOG_BYTES {
                break;
            }
        }
        Ok::<_, String>(bytes)
    };
    let bytes = bounded(&format!("logs of {task}"), timeout, read).await?;
    Ok(String::from_utf8_lossy(&bytes)
        .lines()
        .map(str::to_owned)
        .collect())
}

/// `POST /v1/services/{service}/scale`, within `timeout`; the new desired count.
pub async fn scale(
    client: &Client,
    service: &str,
    replicas: u32,
    timeout: Duration,
) -> Result<u32, String> {
    let status: ServiceStatus = bounded(
        &format!("scale {service}"),
        timeout,
        client.call(
            Method::POST,
            &format!("/v1/services/{service}/scale"),
            Some(&ScaleRequest { replicas }),
        ),
    )
    .await?;
    Ok(status.desired)
}

/// `POST /v1/nodes/{node}/drain`, within `timeout`.
pub async fn drain(client: &Client, node: &str, timeout: Duration) -> Result<(), String> {
    let _: Node = bounded(
        &format!("drain {node}"),
        timeout,
        client.call(
            Method::POST,
            &format!("/v1/nodes/{node}/drain"),
            None::<&()>,
        ),
    )
    .await?;
    Ok(())
}
