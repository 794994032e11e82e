//! `orion chaos ...` and `orion plan -f FILE`: clients of `/v1/chaos` and `/v1/plan`.

use std::path::Path;

use anyhow::{Result, bail};
use clap::Subcommand;
use reqwest::Method;
use serde_json::json;

use crate::api::plan::PlanResult;
use crate::chaos::monkey::Severity;
use crate::chaos::{ChaosStatus, StopResult};
use crate::cli::OutputFormat;
use crate::client::Client;
use crate::commands::load_specs;
use crate::output::render_value;

/// `orion chaos ...`. Durations are like `100ms`, `30s`, `2m`; every fault lasts 1 s to 1 h and
/// ends by itself.
#[derive(Debug, Subcommand)]
pub enum ChaosAction {
    /// Add latency to every node-to-node request of some nodes (or all).
    Latency {
        /// Added delay, at most 10s.
        #[arg(long)]
        increase: String,
        /// `all` or node ids separated by commas.
        #[arg(long)]
        nodes: String,
        /// How long the fault lasts, 1s to 1h; it ends by itself.
        #[arg(long)]
        duration: String,
    },
    /// Cut the links between groups of nodes: `A,B:C`.
    NetworkPartition {
        /// Groups of node ids: commas within a group, colons between groups (`n1,n2:n3`).
        #[arg(long)]
        partition: String,
        /// How long the fault lasts, 1s to 1h; it ends by itself.
        #[arg(long)]
        duration: String,
    },
    /// Cut every link of one node, as if it had failed.
    NodeFailure {
        /// The node id whose links are cut.
        #[arg(long)]
        target: String,
        /// How long the fault lasts, 1s to 1h; it ends by itself.
        #[arg(long)]
        duration: String,
    },
    /// Random faults, one per interval (each lasting half of it), for a bounded time.
    Monkey {
        /// Time between faults, 2s to 1h.
        #[arg(long)]
        interval: String,
        /// Which faults it picks: low (latency), medium (latency, node failures) or high
        /// (partitions too).
        #[arg(long, value_enum, default_value_t = Severity::Medium)]
        severity: Severity,
        /// How long the monkey runs: default ten intervals, at most 1h and 60 faults.
        #[arg(long)]
        duration: Option<String>,
    },
    /// Active and scheduled faults, with the time left.
    Status,
    /// End every fault now.
    Stop,
}

fn print_faults(faults: &[ChaosStatus], format: OutputFormat) {
    if format != OutputFormat::Table {
        println!("{}", render_value(&faults, format));
        return;
    }
    if faults.is_empty() {
        println!("no chaos faults");
        return;
    }
    println!(
        "{:<18} {:<9} {:>9} {:>9}  FAULT",
        "ID", "STATE", "STARTS IN", "ENDS IN"
    );
    for f in faults {
        println!(
            "{:<18} {:<9} {:>8.1}s {:>8.1}s  {}",
            f.fault.id,
            if f.active { "active" } else { "scheduled" },
            f.starts_in_ms as f64 / 1000.0,
            f.remaining_ms as f64 / 1000.0,
            f.fault.kind.describe()
        );
    }
}

/// `orion chaos ...`.
pub async fn chaos(client: &Client, action: ChaosAction, format: OutputFormat) -> Result<()> {
    let (path, body) = match action {
        ChaosAction::Status => {
            let faults: Vec<ChaosStatus> = client.get("/v1/chaos").await?;
            print_faults(&faults, format);
            return Ok(());
        }
        ChaosAction::Stop => {
            let stopped: StopResult = client
                .call(Method::DELETE, "/v1/chaos", None::<&()>)
                .await?;
            match format {
                OutputFormat::Table => println!("{} fault(s) stopped", stopped.stopped.len()),
                _ => println!("{}", render_value(&stopped, format)),
            }
            return Ok(());
        }
        ChaosAction::Latency {
            increase,
            nodes,
            duration,
        } => (
            "latency",
            json!({"increase": increase, "nodes": nodes, "duration": duration}),
        ),
        ChaosAction::NetworkPartition {
            partition,
            duration,
        } => (
            "network-partition",
            json!({"partition": partition, "duration": duration}),
        ),
        ChaosAction::NodeFailure { target, duration } => (
            "node-failure",
            json!({"target": target, "duration": duration}),
        ),
        ChaosAction::Monkey {
            interval,
            severity,
            duration,
        } => {
            let mut body = json!({"interval": interval, "severity": severity});
            if let Some(d) = duration {
                body["duration"] = json!(d);
            }
            ("monkey", body)
        }
    };
    let created: Vec<ChaosStatus> = client
        .call(Method::POST, &format!("/v1/chaos/{path}"), Some(&body))
        .await?;
    print_faults(&created, format);
    Ok(())
}

fn print_plan(plan: &PlanResult) {
    println!(
        "service {} ({} replica{})",
        plan.service,
        plan.replicas,
        if plan.replicas == 1 { "" } else { "s" }
    );
    let width = plan
        .nodes
        .iter()
        .map(|n| n.node.len())
        .chain([4])
        .max()
        .unwrap_or(4);
    let mut header = format!("{:>4}  {:<width$}  {:>7}", "RANK", "NODE", "TOTAL");
    for (name, weight) in &plan.weights {
        let label = format!("{name} x{weight:.2}");
        header.push_str(&format!("  {label:>w$}", w = name.len() + 6));
    }
    println!("{header}");
    for n in &plan.nodes {
        let rank = n.rank.map_or("-".to_owned(), |r| r.to_string());
        let total = n.total.map_or("-".to_owned(), |t| format!("{t:.4}"));
        let mut line = format!("{rank:>4}  {:<width$}  {total:>7}", n.node);
        if n.scores.is_empty() {
            line.push_str(&format!(
                "  {}",
                n.reason
                    .as_deref()
                    .unwrap_or(if n.feasible { "feasible" } else { "rejected" })
            ));
        } else {
            for ((name, _), (_, s)) in plan.weights.iter().zip(&n.scores) {
                line.push_str(&format!("  {s:>w$.4}", w = name.len() + 6));
            }
        }
        println!("{line}");
    }
    if plan.placements.is_empty() {
        println!("nothing to place: the cluster already runs this spec");
    }
    for p in &plan.placements {
        match (&p.node, &p.pending) {
            (Some(node), _) => println!("replica {} -> {node}", p.slot),
            (None, reason) => println!(
                "replica {} -> pending: {}",
                p.slot,
                reason.as_deref().unwrap_or("no feasible node")
            ),
        }
    }
}

/// `orion plan -f FILE`: each service of the file, planned on its own against the current
/// state.
pub async fn plan(client: &Client, path: &Path, format: OutputFormat) -> Result<()> {
    let specs = load_specs(path)?;
    if specs.is_empty() {
        bail!("{}: no service to plan", path.display());
    }
    let mut plans = Vec::new();
    for spec in &specs {
        let plan: PlanResult = client.call(Method::POST, "/v1/plan", Some(spec)).await?;
        plans.push(plan);
    }
    match format {
        OutputFormat::Table => {
            for (i, p) in plans.iter().enumerate() {
                if i > 0 {
                    println!();
                }
                print_plan(p);
            }
        }
        _ if plans.len() == 1 => println!("{}", render_value(&plans[0], format)),
        _ => println!("{}", render_value(&plans, format)),
    }
    Ok(())
}
