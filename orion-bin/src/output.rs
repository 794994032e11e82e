//! Rendering of API objects as tables, JSON or YAML (`-o table|json|yaml`).

use comfy_table::{Table, presets::NOTHING};
use orion_core::model::{Node, Task};
use serde::Serialize;

use crate::api::types::{ClusterStatus, ServiceStatus};
use crate::cli::OutputFormat;

/// Something that can be shown as a table.
pub trait Tabular {
    fn header() -> Vec<&'static str>;
    fn row(&self) -> Vec<String>;
}

/// Renders `items` in `format`.
pub fn render_list<T: Tabular + Serialize>(items: &[T], format: OutputFormat) -> String {
    match format {
        OutputFormat::Table => {
            let mut table = Table::new();
            table.load_preset(NOTHING).set_header(T::header());
            for item in items {
                table.add_row(item.row());
            }
            table.to_string()
        }
        _ => render_value(&items, format),
    }
}

/// Renders one object as JSON or YAML (tables fall back to YAML for single objects).
pub fn render_value<T: Serialize>(value: &T, format: OutputFormat) -> String {
    match format {
        OutputFormat::Json => serde_json::to_string_pretty(value).unwrap_or_default(),
        _ => serde_saphyr::to_string(value).unwrap_or_default(),
    }
}

fn mib(bytes: u64) -> String {
    format!("{}Mi", bytes / (1024 * 1024))
}

impl Tabular for ServiceStatus {
    fn header() -> Vec<&'static str> {
        vec!["SERVICE", "IMAGE", "REPLICAS", "VERSION", "PORTS"]
    }
    fn row(&self) -> Vec<String> {
        let ports = self
            .spec
            .ports
            .iter()
            .map(|p| {
                format!(
                    "{}->{}/{}",
                    p.host_port,
                    p.container_port,
                    p.protocol.as_str()
                )
            })
            .collect::<Vec<_>>()
            .join(",");
        vec![
            self.spec.name.clone(),
            self.spec.image.clone(),
            format!("{}/{}", self.running, self.desired),
            self.version.to_string(),
            ports,
        ]
    }
}

impl Tabular for Task {
    fn header() -> Vec<&'static str> {
        vec![
            "TASK", "SERVICE", "NODE", "STATE", "HEALTH", "PORTS", "RESTARTS", "ERROR",
        ]
    }
    fn row(&self) -> Vec<String> {
        let ports = self
            .ports
            .iter()
            .map(|p| format!("{}:{}->{}", p.host_ip, p.host_port, p.container_port))
            .collect::<Vec<_>>()
            .join(",");
        vec![
            self.id.clone(),
            self.service.clone(),
            self.node.clone().unwrap_or_else(|| "-".into()),
            self.state.to_string(),
            self.health.to_string(),
            ports,
            self.restarts.to_string(),
            task_reason(self),
        ]
    }
}

/// Longest reason shown in a table cell (`get` and `-o json|yaml` show it whole).
const MAX_CELL: usize = 100;

/// The task's error, else the output of its last failed health check, cut for a table.
fn task_reason(t: &Task) -> String {
    let text = match (&t.error, &t.health_output) {
        (Some(e), _) => e.clone(),
        (None, Some(h)) => format!("health check: {h}"),
        (None, None) => return String::new(),
    };
    let one_line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match one_line.char_indices().nth(MAX_CELL) {
        Some((i, _)) => format!("{}…", &one_line[..i]),
        None => one_line,
    }
}

/// The failed attempts of a service (restarts in place and reschedules), oldest first, for
/// `status SERVICE`.
pub fn render_attempts(failed: &[Task]) -> String {
    let mut rows: Vec<&Task> = failed.iter().collect();
    rows.sort_by_key(|t| (t.created_at, t.updated_at));
    let mut table = Table::new();
    table.load_preset(NOTHING).set_header(vec![
        "TASK", "SLOT", "NODE", "ATTEMPT", "RESTARTS", "EXIT", "REASON",
    ]);
    for t in rows {
        table.add_row(vec![
            t.id.clone(),
            t.slot.to_string(),
            t.node.clone().unwrap_or_else(|| "-".into()),
            t.attempt.to_string(),
            t.restarts.to_string(),
            t.exit_code.map_or("-".into(), |c| c.to_string()),
            task_reason(t),
        ]);
    }
    table.to_string()
}

/// The replicas the leader moved (re-placement off a degraded link, rebalancing toward a node
/// that joined or came back), oldest first, with why, for `status SERVICE`; `None` when there
/// are none. The reason is shown whole.
pub fn render_moves(tasks: &[Task]) -> Option<String> {
    let mut rows: Vec<&Task> = tasks.iter().filter(|t| t.moved_because.is_some()).collect();
    if rows.is_empty() {
        return None;
    }
    rows.sort_by_key(|t| (t.created_at, t.id.as_str()));
    let mut table = Table::new();
    table
        .load_preset(NOTHING)
        .set_header(vec!["TASK", "SLOT", "NODE", "STATE", "WHY"]);
    for t in rows {
        table.add_row(vec![
            t.id.clone(),
            t.slot.to_string(),
            t.node.clone().unwrap_or_else(|| "-".into()),
            t.state.to_string(),
            t.moved_because.clone().unwrap_or_default(),
        ]);
    }
    Some(table.to_string())
}

impl Tabular for Node {
    fn header() -> Vec<&'static str> {
        vec!["NODE", "STATUS", "ZONE", "CPU", "MEMORY", "API"]
    }
    fn row(&self) -> Vec<String> {
        vec![
            self.id.clone(),
            self.status.to_string(),
            self.zone().unwrap_or("-").to_owned(),
            format!(
                "{}/{}m",
                self.allocated.cpu_millicores, self.capacity.cpu_millicores
            ),
            format!(
                "{}/{}",
                mib(self.allocated.memory_bytes),
                mib(self.capacity.memory_bytes)
            ),
            self.addresses.api.clone(),
        ]
    }
}

/// The `cluster` command's table form.
pub fn render_cluster(status: &ClusterStatus, format: OutputFormat) -> String {
    if format != OutputFormat::Table {
        return render_value(status, format);
    }
    let mut out = format!(
        "cluster {}  (answered by {})\nleader:   {}\nterm:     {}\nvoters:   {}\nlearners: {}\ncommit:   {}  applied: {}\n\n",
        status.cluster_id,
        status.node_id,
        status.leader.as_deref().unwrap_or("none (no quorum)"),
        status.term,
        status.voters.join(", "),
        if status.learners.is_empty() {
            "-".to_owned()
        } else {
            status.learners.join(", ")
        },
        status.commit_index,
        status.applied_index,
    );
    let mut table = Table::new();
    table
        .load_preset(NOTHING)
        .set_header(vec!["MEMBER", "STATE", "ZONE", "API", "RAFT", "GOSSIP"]);
    for m in &status.members {
        table.add_row(vec![
            m.id.clone(),
            format!("{:?}", m.state).to_lowercase(),
            m.labels.get("zone").cloned().unwrap_or_else(|| "-".into()),
            m.addresses.api.clone(),
            m.addresses.raft.clone(),
            m.addresses.gossip.clone(),
        ]);
    }
    out.push_str(&table.to_string());
    out
}
