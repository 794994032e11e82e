//! `orion describe service|task|node NAME` and `orion events [-w]`.

use std::time::{Duration, UNIX_EPOCH};

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use comfy_table::{Table, presets::NOTHING};
use futures::StreamExt;
use orion_core::model::{Node, Task};
use serde::Serialize;

use crate::api::types::ServiceStatus;
use crate::cli::OutputFormat;
use crate::client::{Client, ClientError};
use crate::events::ClusterEvent;
use crate::output::{render_list, render_value};

/// How many recent events `describe` shows.
pub const DESCRIBE_EVENTS: usize = 20;
/// Longest `--limit` of `events` (what a node keeps).
const MAX_LIMIT: usize = crate::events::EVENT_CAPACITY;

/// What `describe` shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DescribeKind {
    /// A service: its spec, replicas, tasks and events.
    Service,
    /// A task: its record and events.
    Task,
    /// A node: its record, allocation, tasks and events.
    Node,
}

/// `orion describe KIND NAME`.
#[derive(Debug, Clone, Args)]
pub struct DescribeArgs {
    /// The kind of object: service, task or node.
    #[arg(value_enum)]
    pub kind: DescribeKind,
    /// The service's name, the task's id or the node's id.
    pub name: String,
}

/// `orion events`.
#[derive(Debug, Clone, Args)]
pub struct EventsArgs {
    /// Keep watching: print new events as they happen (until interrupted).
    #[arg(short, long)]
    pub watch: bool,
    /// Only events after this store revision (the `revision` of an event already seen).
    #[arg(long, value_name = "REVISION", default_value_t = 0)]
    pub since: u64,
    /// Only events about this service (its tasks included).
    #[arg(long)]
    pub service: Option<String>,
    /// Only events about this task.
    #[arg(long)]
    pub task: Option<String>,
    /// Only events about this node (tasks placed on it included).
    #[arg(long)]
    pub node: Option<String>,
    /// Only the newest N events (1 to 2000) before watching.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=MAX_LIMIT as u64))]
    pub limit: Option<u64>,
}

fn time_of(ms: u64) -> String {
    let t = UNIX_EPOCH + Duration::from_millis(ms);
    humantime::format_rfc3339_seconds(t).to_string()
}

fn event_row(e: &ClusterEvent) -> Vec<String> {
    vec![
        time_of(e.time),
        format!("{:?}", e.severity).to_lowercase(),
        e.reason.clone(),
        format!("{}/{}", e.kind, e.name),
        e.message.clone(),
    ]
}

const EVENT_HEADER: [&str; 5] = ["TIME", "TYPE", "REASON", "OBJECT", "MESSAGE"];

/// Events as a table (without a header row when `header` is false).
pub fn events_table(events: &[ClusterEvent], header: bool) -> String {
    let mut table = Table::new();
    table.load_preset(NOTHING);
    if header {
        table.set_header(EVENT_HEADER.to_vec());
    }
    for e in events {
        table.add_row(event_row(e));
    }
    table.to_string()
}

/// The query of `args` from revision `since`; `limit` only on the first request of a watch.
fn query(args: &EventsArgs, since: u64, with_limit: bool) -> String {
    let mut q = vec![format!("since={since}")];
    for (key, value) in [
        ("service", &args.service),
        ("task", &args.task),
        ("node", &args.node),
    ] {
        if let Some(v) = value {
            q.push(format!("{key}={}", urlencode(v)));
        }
    }
    if let Some(n) = args.limit.filter(|_| with_limit) {
        q.push(format!("limit={n}"));
    }
    q.join("&")
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `orion events [-w]`.
pub async fn events(client: &Client, args: &EventsArgs, format: OutputFormat) -> Result<()> {
    if !args.watch {
        let got: Vec<ClusterEvent> = client
            .get(&format!("/v1/events?{}", query(args, args.since, true)))
            .await?;
        match format {
            OutputFormat::Table if got.is_empty() => eprintln!("no events"),
            OutputFormat::Table => println!("{}", events_table(&got, true)),
            _ => println!("{}", render_value(&got, format)),
        }
        return Ok(());
    }
    let mut since = args.since;
    let mut first = true;
    if format == OutputFormat::Table {
        println!("{}", events_table(&[], true));
    }
    // A watch ends after its time or when it falls behind; it is resumed from the last
    // revision printed.
    loop {
        let path = format!("/v1/events?{}&watch=true", query(args, since, first));
        let resp = client.stream(&path).await?;
        let mut body = resp.bytes_stream();
        let mut pending = String::new();
        while let Some(chunk) = body.next().await {
            let chunk = chunk.context("the event stream broke off")?;
            pending.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(pos) = pending.find('\n') {
                let line: String = pending.drain(..=pos).collect();
                let event: ClusterEvent = serde_json::from_str(line.trim())
                    .with_context(|| format!("unexpected event line {line:?}"))?;
                since = since.max(event.revision);
                match format {
                    OutputFormat::Table => println!("{}", events_table(&[event], false)),
                    _ => println!("{}", serde_json::to_string(&event)?),
                }
            }
        }
        first = false;
    }
}

/// The newest [`DESCRIBE_EVENTS`] events matching `filter` (`service=web` and the like).
async fn recent_events(client: &Client, filter: &str) -> Result<Vec<ClusterEvent>> {
    Ok(client
        .get(&format!("/v1/events?{filter}&limit={DESCRIBE_EVENTS}"))
        .await?)
}

#[derive(Serialize)]
struct ServiceDescription {
    service: ServiceStatus,
    tasks: Vec<Task>,
    events: Vec<ClusterEvent>,
}

#[derive(Serialize)]
struct TaskDescription {
    task: Task,
    events: Vec<ClusterEvent>,
}

#[derive(Serialize)]
struct NodeDescription {
    node: Node,
    tasks: Vec<Task>,
    events: Vec<ClusterEvent>,
}

fn field(out: &mut String, name: &str, value: impl std::fmt::Display) {
    out.push_str(&format!("{:<13}{value}\n", format!("{name}:")));
}

fn labels_text(labels: &std::collections::BTreeMap<String, String>) -> String {
    if labels.is_empty() {
        return "-".into();
    }
    labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

fn events_section(out: &mut String, events: &[ClusterEvent]) {
    out.push_str("\nEvents:\n");
    if events.is_empty() {
        out.push_str("  none kept by this node\n");
    } else {
        out.push_str(&events_table(events, true));
        out.push('\n');
    }
}

fn tasks_section(out: &mut String, tasks: &[Task]) {
    out.push_str("\nTasks:\n");
    if tasks.is_empty() {
        out.push_str("  none\n");
    } else {
        out.push_str(&render_list(tasks, OutputFormat::Table));
        out.push('\n');
    }
}

/// `orion describe service|task|node NAME`.
pub async fn describe(client: &Client, args: &DescribeArgs, format: OutputFormat) -> Result<()> {
    let name = urlencode(&args.name);
    let text = match args.kind {
        DescribeKind::Service => {
            let service: ServiceStatus = client.get(&format!("/v1/services/{name}")).await?;
            let tasks: Vec<Task> = client.get(&format!("/v1/tasks?service={name}")).await?;
            let events = recent_events(client, &format!("service={name}")).await?;
            let d = ServiceDescription {
                service,
                tasks,
                events,
            };
            if format != OutputFormat::Table {
                println!("{}", render_value(&d, format));
                return Ok(());
            }
            let s = &d.service;
            let mut out = String::new();
            field(&mut out, "Name", &s.spec.name);
            field(&mut out, "Image", &s.spec.image);
            field(
                &mut out,
                "Replicas",
                format!("{} serving / {} desired", s.running, s.desired),
            );
            field(&mut out, "Version", s.version);
            field(&mut out, "Labels", labels_text(&s.spec.labels));
            let ports: Vec<String> = s
                .spec
                .ports
                .iter()
                .map(|p| {
                    format!(
                        "{}:{}/{}",
                        p.host_port,
                        p.container_port,
                        p.protocol.as_str()
                    )
                })
                .collect();
            field(
                &mut out,
                "Ports",
                if ports.is_empty() {
                    "-".into()
                } else {
                    ports.join(",")
                },
            );
            field(
                &mut out,
                "Resources",
                format!(
                    "{}m CPU, {} MiB memory",
                    s.spec.resources.cpu_millicores,
                    s.spec.resources.memory_bytes / (1024 * 1024)
                ),
            );
            if !s.spec.command.is_empty() {
                field(&mut out, "Command", s.spec.command.join(" "));
            }
            tasks_section(&mut out, &d.tasks);
            events_section(&mut out, &d.events);
            out
        }
        DescribeKind::Task => {
            let task: Task = client.get(&format!("/v1/tasks/{name}")).await?;
            let events = recent_events(client, &format!("task={name}")).await?;
            let d = TaskDescription { task, events };
            if format != OutputFormat::Table {
                println!("{}", render_value(&d, format));
                return Ok(());
            }
            let t = &d.task;
            let mut out = String::new();
            field(&mut out, "Task", &t.id);
            field(
                &mut out,
                "Service",
                format!(
                    "{} (replica {}, version {})",
                    t.service, t.slot, t.spec_version
                ),
            );
            field(
                &mut out,
                "Node",
                t.node.as_deref().unwrap_or("- (not placed)"),
            );
            field(
                &mut out,
                "State",
                format!("{} (desired {:?})", t.state, t.desired).to_lowercase(),
            );
            field(&mut out, "Health", t.health);
            field(
                &mut out,
                "Container",
                t.container_id.as_deref().unwrap_or("-"),
            );
            field(&mut out, "Restarts", t.restarts);
            field(&mut out, "Attempt", t.attempt);
            if let Some(code) = t.exit_code {
                field(&mut out, "Exit code", code);
            }
            if let Some(e) = &t.error {
                field(&mut out, "Error", e);
            }
            if let Some(h) = &t.health_output {
                field(&mut out, "Last check", h);
            }
            if let Some(m) = &t.moved_because {
                field(&mut out, "Moved", m);
            }
            events_section(&mut out, &d.events);
            out
        }
        DescribeKind::Node => {
            let node: Node = client.get(&format!("/v1/nodes/{name}")).await?;
            let tasks: Vec<Task> = client.get(&format!("/v1/tasks?node={name}")).await?;
            let events = recent_events(client, &format!("node={name}")).await?;
            let d = NodeDescription {
                node,
                tasks,
                events,
            };
            if format != OutputFormat::Table {
                println!("{}", render_value(&d, format));
                return Ok(());
            }
            let n = &d.node;
            let mut out = String::new();
            field(&mut out, "Node", &n.id);
            field(&mut out, "Status", n.status);
            field(&mut out, "Zone", n.zone().unwrap_or("-"));
            field(&mut out, "Labels", labels_text(&n.labels));
            field(
                &mut out,
                "CPU",
                format!(
                    "{}m of {}m allocated",
                    n.allocated.cpu_millicores, n.capacity.cpu_millicores
                ),
            );
            field(
                &mut out,
                "Memory",
                format!(
                    "{} MiB of {} MiB allocated",
                    n.allocated.memory_bytes / (1024 * 1024),
                    n.capacity.memory_bytes / (1024 * 1024)
                ),
            );
            field(&mut out, "API", &n.addresses.api);
            field(&mut out, "Raft", &n.addresses.raft);
            tasks_section(&mut out, &d.tasks);
            events_section(&mut out, &d.events);
            out
        }
    };
    print!("{text}");
    Ok(())
}

/// True when `err` is the API's 404.
pub fn is_not_found(err: &ClientError) -> bool {
    matches!(err, ClientError::Api { status, .. } if *status == reqwest::StatusCode::NOT_FOUND)
}
