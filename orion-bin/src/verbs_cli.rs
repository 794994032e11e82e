//! Client verbs in the kubectl and docker style: `exec`, `logs` with its flags, `delete` by
//! name, file (`-f`) or label selector (`-l`), and `ps`, `status` and `get` with `-l`.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use clap::Args;
use futures::StreamExt;
use orion_core::model::Task;
use reqwest::Method;
use serde::Serialize;

use crate::api::types::ServiceStatus;
use crate::cli::OutputFormat;
use crate::client::{Client, exit};
use crate::commands::{Exit, load_specs};
use crate::describe_cli::is_not_found;
use crate::output::{render_list, render_value};
use crate::selector::Selector;

/// `orion exec TASK -- CMD...`.
#[derive(Debug, Clone, Args)]
pub struct ExecArgs {
    /// The task to run the command in (`orion ps` lists them); it must be running.
    pub task: String,
    /// The command and its arguments, after `--`.
    #[arg(last = true, required = true, value_name = "CMD")]
    pub command: Vec<String>,
}

/// `orion logs SERVICE`.
#[derive(Debug, Clone, Args)]
pub struct LogsArgs {
    /// The service whose tasks' logs to show.
    pub service: String,
    /// Keep streaming new lines.
    #[arg(short, long)]
    pub follow: bool,
    /// Only the last N lines of each task.
    #[arg(long, value_name = "N")]
    pub tail: Option<usize>,
    /// Only lines written since then: a duration ago (`10m`, `1h30m`) or a time
    /// (`2024-05-01T10:00:00Z`). Needs the Docker runtime.
    #[arg(long, value_name = "DURATION|TIME")]
    pub since: Option<String>,
    /// Start each line with the time it was written (RFC 3339). Needs the Docker runtime.
    #[arg(short, long)]
    pub timestamps: bool,
    /// The logs of each replica's last exited task (a crash's output) instead of the live ones.
    #[arg(short, long, conflicts_with = "follow")]
    pub previous: bool,
}

/// `--since` as seconds since the Unix epoch: a duration ago or an RFC 3339 time.
pub fn parse_since(text: &str, now: SystemTime) -> Result<i64, String> {
    let when = match humantime::parse_duration(text) {
        Ok(ago) => now.checked_sub(ago),
        Err(_) => humantime::parse_rfc3339_weak(text).ok(),
    };
    let when = when.ok_or_else(|| {
        format!(
            "--since {text:?}: expected a duration ago such as 10m or 2h, or a time such as \
             2024-05-01T10:00:00Z"
        )
    })?;
    let secs = when
        .duration_since(UNIX_EPOCH)
        .map_err(|_| format!("--since {text:?}: a time before 1970"))?
        .as_secs();
    i64::try_from(secs).map_err(|_| format!("--since {text:?}: too far in the future"))
}

/// `orion logs SERVICE [-f] [--tail N] [--since T] [--timestamps] [--previous]`.
pub async fn logs(client: &Client, args: &LogsArgs) -> Result<()> {
    let mut path = format!("/v1/services/{}/logs?follow={}", args.service, args.follow);
    if let Some(n) = args.tail {
        path.push_str(&format!("&tail={n}"));
    }
    if let Some(text) = &args.since {
        let since = parse_since(text, SystemTime::now()).map_err(|message| Exit {
            code: exit::USAGE,
            message,
        })?;
        path.push_str(&format!("&since={since}"));
    }
    if args.timestamps {
        path.push_str("&timestamps=true");
    }
    if args.previous {
        path.push_str("&previous=true");
    }
    let resp = client.stream(&path).await?;
    let mut body = resp.bytes_stream();
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.context("log stream interrupted")?;
        out.write_all(&chunk)?;
        out.flush()?;
    }
    Ok(())
}

/// What `POST /v1/tasks/{id}/exec` answers.
#[derive(Debug, serde::Deserialize, Serialize)]
struct ExecResult {
    task: String,
    node: String,
    exit_code: i64,
    stdout: String,
    stderr: String,
    truncated: bool,
}

/// `orion exec TASK -- CMD...`: prints the command's output and exits with its exit code
/// (a code outside 0-255 becomes 255).
///
/// The global `--timeout` bounds the command's run on the node (1 s to 10 min there, default
/// 20 s); the request itself may last a little longer, for the answer to come back.
pub async fn exec(
    client: &Client,
    args: &ExecArgs,
    timeout: Option<std::time::Duration>,
    format: OutputFormat,
) -> Result<()> {
    #[derive(Serialize)]
    struct Body<'a> {
        command: &'a [String],
        #[serde(skip_serializing_if = "Option::is_none")]
        timeout: Option<String>,
    }
    const ANSWER_MARGIN: std::time::Duration = std::time::Duration::from_secs(5);
    let run_bound = timeout.unwrap_or(std::time::Duration::from_secs(20));
    let client = client.clone().with_timeout(run_bound + ANSWER_MARGIN);
    let result: ExecResult = client
        .call(
            Method::POST,
            &format!("/v1/tasks/{}/exec", args.task),
            Some(&Body {
                command: &args.command,
                timeout: timeout.map(|t| humantime::format_duration(t).to_string()),
            }),
        )
        .await?;
    use std::io::Write;
    if format == OutputFormat::Table {
        std::io::stdout().write_all(result.stdout.as_bytes())?;
        std::io::stderr().write_all(result.stderr.as_bytes())?;
        if result.truncated {
            eprintln!("(output cut at 1 MiB per stream)");
        }
    } else {
        println!("{}", render_value(&result, format));
    }
    std::io::stdout().flush()?;
    let code = u8::try_from(result.exit_code).unwrap_or(255);
    if code != 0 {
        std::process::exit(i32::from(code));
    }
    Ok(())
}

/// Services whose labels match `selector`.
async fn selected_services(client: &Client, selector: &Selector) -> Result<Vec<ServiceStatus>> {
    let all: Vec<ServiceStatus> = client.get("/v1/services").await?;
    Ok(all
        .into_iter()
        .filter(|s| selector.matches(&s.spec.labels))
        .collect())
}

/// `status -l` and `get -l`: the services that match.
pub async fn services_selected(
    client: &Client,
    selector: &Selector,
    format: OutputFormat,
) -> Result<()> {
    let services = selected_services(client, selector).await?;
    if services.is_empty() && format == OutputFormat::Table {
        eprintln!("no service matches the selector");
        return Ok(());
    }
    println!("{}", render_list(&services, format));
    Ok(())
}

/// `ps -l`: the tasks of the services that match.
pub async fn ps_selected(
    client: &Client,
    service: Option<&str>,
    all: bool,
    selector: &Selector,
    format: OutputFormat,
) -> Result<()> {
    let names: Vec<String> = selected_services(client, selector)
        .await?
        .into_iter()
        .map(|s| s.spec.name)
        .filter(|n| service.is_none_or(|s| s == n))
        .collect();
    let tasks: Vec<Task> = client.get(&format!("/v1/tasks?all={all}")).await?;
    let tasks: Vec<Task> = tasks
        .into_iter()
        .filter(|t| names.iter().any(|n| *n == t.service))
        .collect();
    println!("{}", render_list(&tasks, format));
    Ok(())
}

/// What `delete` did, for `-o json|yaml`.
#[derive(Debug, Default, Serialize)]
struct Deleted {
    deleted: Vec<String>,
    /// Named (by the file) but not stored.
    not_found: Vec<String>,
}

/// `orion delete SERVICE | -f FILE | -l SELECTOR` (alias of `rm`).
pub async fn delete(
    client: &Client,
    service: Option<&str>,
    file: Option<&Path>,
    selector: Option<&Selector>,
    format: OutputFormat,
) -> Result<()> {
    let names: Vec<String> = match (service, file, selector) {
        (Some(name), None, None) => vec![name.to_owned()],
        (None, Some(path), None) => load_specs(path)?.into_iter().map(|s| s.name).collect(),
        (None, None, Some(sel)) => selected_services(client, sel)
            .await?
            .into_iter()
            .map(|s| s.spec.name)
            .collect(),
        _ => {
            return Err(Exit {
                code: exit::USAGE,
                message: "delete: name one SERVICE, or give -f FILE or -l SELECTOR (one of them)"
                    .into(),
            }
            .into());
        }
    };
    let mut done = Deleted::default();
    for name in names {
        let path = format!("/v1/services/{name}");
        match client
            .call::<(), serde_json::Value>(Method::DELETE, &path, None)
            .await
        {
            Ok(_) => {
                if format == OutputFormat::Table {
                    println!("service {name} removed");
                }
                done.deleted.push(name);
            }
            Err(e) if is_not_found(&e) && service.is_none() => {
                if format == OutputFormat::Table {
                    eprintln!("service {name} does not exist");
                }
                done.not_found.push(name);
            }
            Err(e) => return Err(e.into()),
        }
    }
    if format != OutputFormat::Table {
        println!("{}", render_value(&done, format));
    } else if done.deleted.is_empty() && done.not_found.is_empty() {
        eprintln!("no service matches the selector; nothing removed");
    }
    if !done.not_found.is_empty() {
        return Err(Exit {
            code: exit::NOT_FOUND,
            message: format!(
                "{} of the file's services did not exist: {}",
                done.not_found.len(),
                done.not_found.join(", ")
            ),
        }
        .into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn since_takes_a_duration_ago_or_a_time() {
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(parse_since("1h", now).unwrap(), 1_700_000_000 - 3600);
        assert_eq!(
            parse_since("2024-05-01T10:00:00Z", now).unwrap(),
            1_714_557_600
        );
        let e = parse_since("yesterday", now).unwrap_err();
        assert!(e.contains("expected a duration ago"), "{e}");
    }
}
