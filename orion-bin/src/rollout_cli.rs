//! `orion rollout status|history|undo|pause|resume|promote SERVICE` and `orion restart SERVICE`:
//! clients of `/v1/services/{name}/rollout` and `/v1/services/{name}/restart`.

use anyhow::Result;
use clap::Subcommand;
use reqwest::Method;
use serde_json::json;

use crate::api::rollout::RolloutStatus;
use crate::cli::OutputFormat;
use crate::client::Client;
use crate::output::render_value;

/// `orion rollout ...`.
#[derive(Debug, Subcommand)]
pub enum RolloutAction {
    /// The current rollout: phase, canary, replicas per version, why it paused or rolled back.
    Status {
        /// The service.
        service: String,
    },
    /// The stored spec versions (how many are kept: `rollout.history` in orion.yaml).
    History {
        /// The service.
        service: String,
    },
    /// Go back to the previous version (or `--to-version V` from the history), with the
    /// update strategy.
    Undo {
        /// The service.
        service: String,
        /// The spec version to go back to (`rollout history` lists the kept ones).
        #[arg(long)]
        to_version: Option<u64>,
    },
    /// Start no further replacement until `resume`.
    Pause {
        /// The service.
        service: String,
    },
    /// Continue a paused rollout (failures that paused it are forgotten).
    Resume {
        /// The service.
        service: String,
    },
    /// Let a canary rollout replace every replica.
    Promote {
        /// The service.
        service: String,
    },
}

/// Runs `orion rollout ACTION`.
pub async fn rollout(client: &Client, action: RolloutAction, format: OutputFormat) -> Result<()> {
    let base = |service: &str| format!("/v1/services/{service}/rollout");
    let status: RolloutStatus = match &action {
        RolloutAction::Status { service } | RolloutAction::History { service } => {
            client.get(&base(service)).await?
        }
        RolloutAction::Undo {
            service,
            to_version,
        } => {
            let body = json!({ "to_version": to_version });
            client
                .call(
                    Method::POST,
                    &format!("{}/undo", base(service)),
                    Some(&body),
                )
                .await?
        }
        RolloutAction::Pause { service } => {
            post(client, &format!("{}/pause", base(service))).await?
        }
        RolloutAction::Resume { service } => {
            post(client, &format!("{}/resume", base(service))).await?
        }
        RolloutAction::Promote { service } => {
            post(client, &format!("{}/promote", base(service))).await?
        }
    };
    if format != OutputFormat::Table {
        println!("{}", render_value(&status, format));
        return Ok(());
    }
    match action {
        RolloutAction::History { .. } => print_history(&status),
        _ => print_status(&status),
    }
    Ok(())
}

/// Runs `orion restart SERVICE`.
pub async fn restart(client: &Client, service: &str, format: OutputFormat) -> Result<()> {
    let status: RolloutStatus = post(client, &format!("/v1/services/{service}/restart")).await?;
    if format != OutputFormat::Table {
        println!("{}", render_value(&status, format));
        return Ok(());
    }
    println!(
        "service {service} restarting: every replica is replaced by version {} under its \
         update strategy (`orion rollout status {service}`)",
        status.version
    );
    Ok(())
}

async fn post(client: &Client, path: &str) -> Result<RolloutStatus> {
    Ok(client.call(Method::POST, path, None::<&()>).await?)
}

fn print_status(s: &RolloutStatus) {
    let phase = match &s.rollout {
        None => "starting (the leader has not recorded it yet)".to_owned(),
        Some(r) if s.canary_waiting => format!(
            "{} (canary: {} replica(s) first; `orion rollout promote {}` for the rest)",
            r.phase.as_str(),
            r.canary,
            s.service
        ),
        Some(r) => r.phase.as_str().to_owned(),
    };
    println!("service:  {}", s.service);
    println!("version:  {}", s.version);
    println!("phase:    {phase}");
    if let Some(r) = &s.rollout {
        if let Some(p) = r.previous_version {
            println!("replaces: version {p}");
        }
        if let Some(from) = r.rolled_back_from {
            println!("rolled back from version {from}");
        }
        if let Some(why) = &r.reason {
            println!("reason:   {why}");
        }
    }
    println!("VERSION  REPLICAS  SERVING");
    for (v, n) in &s.replicas_by_version {
        let serving = s.serving_by_version.get(v).copied().unwrap_or(0);
        println!("{v:<8} {n:<9} {serving}");
    }
}

fn print_history(s: &RolloutStatus) {
    println!("VERSION  IMAGE");
    for h in &s.history {
        let mark = if h.current { "  (current)" } else { "" };
        println!("{:<8} {}{mark}", h.version, h.image);
    }
}
