//! Rendering of API objects as tables, JSON or YAML (`-o table|json|yaml`).

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};

use comfy_table::{Table, presets::NOTHING};
use orion_core::model::{Node, Task};
use serde::Serialize;

use crate::api::types::{ClusterStatus, ServiceStatus};
use crate::cli::{Command, OutputFormat};
use crate::client::exit;
use crate::commands::Exit;

/// `-o wide`: tables keep every cell whole.
static WIDE: AtomicBool = AtomicBool::new(false);

/// The format commands render in: `-o wide` is a table (whose cells are then never cut, see
/// [`render_list`]); the others are themselves.
pub fn table_or(format: OutputFormat) -> OutputFormat {
    if format == OutputFormat::Wide {
        WIDE.store(true, Ordering::Relaxed);
        OutputFormat::Table
    } else {
        format
    }
}

fn wide() -> bool {
    WIDE.load(Ordering::Relaxed)
}

/// Refuses `-o` for the commands that have no structured output: running a node, and `logs`
/// (the containers' own lines).
pub fn check_format(command: &Command, format: OutputFormat) -> anyhow::Result<()> {
    if format == OutputFormat::Table {
        return Ok(());
    }
    let what = match command {
        Command::Server(_) | Command::Up(_) => "running a node",
        Command::Start(s) if s.file.is_none() => "running a node",
        Command::Logs { .. } => "`logs` (it prints the containers' own lines)",
        _ => return Ok(()),
    };
    Err(Exit {
        code: exit::USAGE,
        message: format!(
            "-o {}: {what} has no structured output; leave -o out",
            match format {
                OutputFormat::Wide => "wide",
                OutputFormat::Json => "json",
                _ => "yaml",
            }
        ),
    }
    .into())
}

/// Least width a column is cut to so a table fits the terminal.
const MIN_COLUMN: usize = 8;

/// Cuts the cells of `rows` so the table (one space of padding each side of every cell) fits
/// `width` columns: the widest column is narrowed first, none below [`MIN_COLUMN`]; a cut cell
/// ends with `…`.
pub fn fit(header: &[&str], rows: &mut [Vec<String>], width: usize) {
    let n = header.len();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows.iter() {
        for (i, cell) in row.iter().enumerate().take(n) {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let total = |w: &[usize]| w.iter().map(|c| c + 2).sum::<usize>();
    while total(&widths) > width {
        let Some((i, &w)) = widths.iter().enumerate().max_by_key(|(_, w)| **w) else {
            break;
        };
        if w <= MIN_COLUMN {
            break;
        }
        widths[i] = w - 1;
    }
    for row in rows.iter_mut() {
        for (i, cell) in row.iter_mut().enumerate().take(n) {
            if cell.chars().count() > widths[i] {
                let keep: String = cell.chars().take(widths[i].saturating_sub(1)).collect();
                *cell = format!("{keep}…");
            }
        }
    }
}

/// The terminal's width when stdout is one and `-o wide` was not asked for.
fn table_width() -> Option<usize> {
    if wide() || !std::io::stdout().is_terminal() {
        return None;
    }
    console::Term::stdout()
        .size_checked()
        .map(|(_, cols)| usize::from(cols))
}

/// Something that can be shown as a table.
pub trait Tabular {
    fn header() -> Vec<&'static str>;
    fn row(&self) -> Vec<String>;
}

/// Renders `items` in `format`.
pub fn render_list<T: Tabular + Serialize>(items: &[T], format: OutputFormat) -> String {
    match format {
        OutputFormat::Table | OutputFormat::Wide => {
            table(&T::header(), items.iter().map(Tabular::row).collect())
        }
        _ => render_value(&items, format),
    }
}

/// A table of `rows` under `header`, cut to the terminal's width ([`fit`]) unless `-o wide`
/// or stdout is not a terminal.
pub fn table(header: &[&str], mut rows: Vec<Vec<String>>) -> String {
    if let Some(width) = table_width() {
        fit(header, &mut rows, width);
    }
    let mut table = Table::new();
    table.load_preset(NOTHING).set_header(header.to_vec());
    for row in rows {
        table.add_row(row);
    }
    table.to_string()
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
            self.id.to_string(),
            self.service.to_string(),
            self.node.as_deref().unwrap_or("-").to_owned(),
            self.state.to_string(),
            self.health.to_string(),
            ports,
            self.restarts.to_string(),
            task_reason(self),
        ]
    }
}

/// Longest reason shown in a table cell off a terminal (`-o wide`, `get` and `-o json|yaml`
/// show it whole).
const MAX_CELL: usize = 100;

/// The task's error, else the output of its last failed health check, on one line, cut for a
/// table unless `-o wide`.
fn task_reason(t: &Task) -> String {
    let text = match (&t.error, &t.health_output) {
        (Some(e), _) => e.to_string(),
        (None, Some(h)) => format!("health check: {h}"),
        (None, None) => return String::new(),
    };
    let one_line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if wide() {
        return one_line;
    }
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
    let rows = rows
        .into_iter()
        .map(|t| {
            vec![
                t.id.to_string(),
                t.slot.to_string(),
                t.node.as_deref().unwrap_or("-").to_owned(),
                t.attempt.to_string(),
                t.restarts.to_string(),
                t.exit_code.map_or("-".into(), |c| c.to_string()),
                task_reason(t),
            ]
        })
        .collect();
    table(
        &[
            "TASK", "SLOT", "NODE", "ATTEMPT", "RESTARTS", "EXIT", "REASON",
        ],
        rows,
    )
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
            t.id.to_string(),
            t.slot.to_string(),
            t.node.as_deref().unwrap_or("-").to_owned(),
            t.state.to_string(),
            t.moved_because.as_deref().unwrap_or_default().to_owned(),
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
    let rows = status
        .members
        .iter()
        .map(|m| {
            vec![
                m.id.clone(),
                format!("{:?}", m.state).to_lowercase(),
                m.labels.get("zone").cloned().unwrap_or_else(|| "-".into()),
                m.addresses.api.clone(),
                m.addresses.raft.clone(),
                m.addresses.gossip.clone(),
            ]
        })
        .collect();
    out.push_str(&table(
        &["MEMBER", "STATE", "ZONE", "API", "RAFT", "GOSSIP"],
        rows,
    ));
    out
}

/// The autoscaler's view of a service for `status SERVICE`: its bounds and targets, the latest
/// evaluation, and the latest changes with their inputs and reasons (oldest first).
pub fn render_autoscale(
    policy: &orion_core::model::spec::ScalePolicy,
    record: Option<&orion_core::autoscale::AutoscaleRecord>,
) -> String {
    use orion_core::autoscale::ScaleDecision;
    let percent = |v: Option<f64>| v.map_or("-".to_owned(), |v| format!("{v:.0}%"));
    let mut out = format!(
        "Autoscaling: {}-{} replicas, target cpu {}, memory {}, cooldown {}s, stabilization {}s",
        policy.min_replicas,
        policy.max_replicas,
        percent(policy.target_cpu),
        percent(policy.target_memory),
        policy.cooldown_seconds,
        policy.stabilization_seconds,
    );
    let Some(record) = record else {
        out.push_str("\nNo evaluation yet.");
        return out;
    };
    let when = |d: &ScaleDecision| {
        let ago = orion_core::model::now_millis().saturating_sub(d.at) / 1000;
        format!("{ago}s ago")
    };
    if let Some(last) = &record.last {
        out.push_str(&format!(
            "\nLatest: {} ({}), {} -> {}: {}",
            last.outcome.as_str(),
            when(last),
            last.from,
            last.to,
            last.reason
        ));
    }
    if !record.decisions.is_empty() {
        let mut table = Table::new();
        table.load_preset(NOTHING).set_header(vec![
            "WHEN", "CHANGE", "FROM", "TO", "CPU", "MEMORY", "SAMPLED", "REASON",
        ]);
        for d in &record.decisions {
            table.add_row(vec![
                when(d),
                d.outcome.as_str().to_owned(),
                d.from.to_string(),
                d.to.to_string(),
                percent(d.usage.map(|u| u.cpu_percent)),
                percent(d.usage.map(|u| u.memory_percent)),
                d.usage.map_or("-".into(), |u| u.replicas.to_string()),
                d.reason.clone(),
            ]);
        }
        out.push('\n');
        out.push_str(&table.to_string());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_fit_by_cutting_the_widest_column_first() {
        let header = ["TASK", "ERROR"];
        let mut rows = vec![vec!["web-0".to_owned(), "x".repeat(100)]];
        fit(&header, &mut rows, 40);
        assert_eq!(rows[0][0], "web-0", "the narrow column is whole");
        assert_eq!(rows[0][1].chars().count(), 40 - 2 - 2 - 5);
        assert!(rows[0][1].ends_with('…'));
        let mut narrow = vec![vec!["a".repeat(20), "b".repeat(20)]];
        fit(&header, &mut narrow, 10);
        assert!(
            narrow[0].iter().all(|c| c.chars().count() == MIN_COLUMN),
            "{narrow:?}"
        );
    }
}
