//! Client commands: each turns its arguments into API calls and prints the result.

use std::path::Path;

use anyhow::{Context, Result};
use orion_core::model::spec::{self, PortSpec, SpecFormat, compose, parse_specs};
use orion_core::model::{Node, ServiceSpec, Task};
use reqwest::Method;

use crate::api::types::{ClusterStatus, ServiceStatus};
use crate::cli::OutputFormat;
use crate::client::{Client, ClientError, exit};
use crate::output::{Tabular, render_cluster, render_list, render_value};

/// A failure with a specific exit code.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Exit {
    pub code: u8,
    pub message: String,
}

/// The exit code for any error a command returns.
pub fn exit_code(err: &anyhow::Error) -> u8 {
    if let Some(e) = err.downcast_ref::<Exit>() {
        return e.code;
    }
    if let Some(e) = err.downcast_ref::<ClientError>() {
        return e.exit_code();
    }
    if let Some(e) = err.downcast_ref::<orion_core::Error>() {
        return match e {
            orion_core::Error::Invalid(_) | orion_core::Error::Parse(_) => exit::INVALID,
            orion_core::Error::NotFound { .. } => exit::NOT_FOUND,
            orion_core::Error::Unavailable(_) => exit::UNAVAILABLE,
            _ => exit::FAILURE,
        };
    }
    exit::FAILURE
}

fn read_file(path: &Path) -> Result<String> {
    if path == Path::new("-") {
        return std::io::read_to_string(std::io::stdin()).context("cannot read standard input");
    }
    std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}

/// Reads and validates a spec file locally (nothing is sent). A Compose file is imported
/// ([`compose::parse_compose`]), its notes printed on stderr.
pub fn load_specs(path: &Path) -> Result<Vec<ServiceSpec>> {
    let text = read_file(path)?;
    if compose::is_compose(&text) {
        let import = compose::parse_compose(&text, &compose_options(path)?)
            .with_context(|| format!("{}", path.display()))?;
        for note in &import.notes {
            eprintln!("note: {}: {note}", path.display());
        }
        return Ok(import.specs);
    }
    parse_specs(&text, SpecFormat::from_path(path)).with_context(|| format!("{}", path.display()))
}

/// What a Compose file may read: `env_file`s next to it, and for `${VAR}` this process's
/// environment over the project's `.env` file (Compose's order).
fn compose_options(path: &Path) -> Result<compose::ComposeOptions> {
    let project_dir = (path != Path::new("-")).then(|| {
        path.parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .to_path_buf()
    });
    let mut variables = std::collections::BTreeMap::new();
    if let Some(dot_env) = project_dir.as_ref().map(|d| d.join(".env"))
        && dot_env.is_file()
    {
        for entry in dotenvy::from_path_iter(&dot_env)
            .with_context(|| format!("cannot read {}", dot_env.display()))?
        {
            let (key, value) =
                entry.with_context(|| format!("cannot read {}", dot_env.display()))?;
            variables.insert(key, value);
        }
    }
    variables.extend(std::env::vars());
    Ok(compose::ComposeOptions {
        source: path.display().to_string(),
        project_dir,
        variables,
    })
}

/// `validate -f FILE`.
pub fn validate(path: &Path, format: OutputFormat) -> Result<()> {
    let specs = load_specs(path)?;
    let names: Vec<_> = specs.iter().map(|s| s.name.as_str()).collect();
    if structured(format) {
        let out = serde_json::json!({
            "file": path.display().to_string(),
            "valid": true,
            "services": names,
        });
        println!("{}", render_value(&out, format));
        return Ok(());
    }
    println!(
        "{}: valid ({} service{}: {})",
        path.display(),
        specs.len(),
        if specs.len() == 1 { "" } else { "s" },
        names.join(", ")
    );
    Ok(())
}

/// True for `-o json|yaml`.
pub fn structured(format: OutputFormat) -> bool {
    matches!(format, OutputFormat::Json | OutputFormat::Yaml)
}

/// Parses a `--port` value with the spec's own port syntax (`80`, `8080:80`, `8080:80/udp`).
pub fn parse_port(text: &str) -> Result<PortSpec> {
    spec::parse_port(text).map_err(|e| {
        Exit {
            code: exit::INVALID,
            message: format!("--port {e}"),
        }
        .into()
    })
}

/// `nginx:1.25` -> `nginx`, `ghcr.io/acme/web-app:v2` -> `web-app`.
pub fn service_name_from_image(image: &str) -> String {
    let last = image.rsplit('/').next().unwrap_or(image);
    let base = last.split([':', '@']).next().unwrap_or(last);
    let mut name: String = base
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    name.truncate(63);
    let name = name.trim_matches('-').to_owned();
    if name.is_empty() {
        "service".into()
    } else {
        name
    }
}

fn print_list<T: Tabular + serde::Serialize>(items: &[T], format: OutputFormat) {
    println!("{}", render_list(items, format));
}

/// `status [SERVICE]`.
pub async fn status(client: &Client, service: Option<&str>, format: OutputFormat) -> Result<()> {
    match service {
        Some(name) => {
            let status: ServiceStatus = client.get(&format!("/v1/services/{name}")).await?;
            if format == OutputFormat::Table {
                print_list(std::slice::from_ref(&status), format);
                let tasks: Vec<Task> = client.get(&format!("/v1/tasks?service={name}")).await?;
                println!();
                print_list(&tasks, format);
                let all: Vec<Task> = client
                    .get(&format!("/v1/tasks?service={name}&all=true"))
                    .await?;
                let moves = crate::output::render_moves(&all);
                let failed: Vec<Task> = all
                    .into_iter()
                    .filter(|t| t.state == orion_core::model::TaskState::Failed)
                    .collect();
                if !failed.is_empty() {
                    println!("\nFailed attempts (restarts in place, then reschedules):");
                    println!("{}", crate::output::render_attempts(&failed));
                }
                if let Some(policy) = &status.spec.scale_policy {
                    let view = crate::output::render_autoscale(policy, status.autoscale.as_ref());
                    println!("\n{view}");
                }
                if let Some(moves) = moves {
                    println!("\nMoves (re-placement and rebalancing, start new then stop old):");
                    println!("{moves}");
                }
            } else {
                println!("{}", render_value(&status, format));
            }
        }
        None => {
            let services: Vec<ServiceStatus> = client.get("/v1/services").await?;
            print_list(&services, format);
        }
    }
    Ok(())
}

/// `ps` / `list`: active tasks and, for each slot of a service's current version, its latest
/// failed task with the reason; `--all` every task.
pub async fn ps(
    client: &Client,
    service: Option<&str>,
    all: bool,
    format: OutputFormat,
) -> Result<()> {
    let mut query = vec!["all=true".to_owned()];
    if let Some(s) = service {
        query.push(format!("service={s}"));
    }
    let tasks: Vec<Task> = client
        .get(&format!("/v1/tasks?{}", query.join("&")))
        .await?;
    if all {
        print_list(&tasks, format);
        return Ok(());
    }
    let services: Vec<ServiceStatus> = match service {
        Some(s) => vec![client.get(&format!("/v1/services/{s}")).await?],
        None => client.get("/v1/services").await?,
    };
    let versions = services
        .iter()
        .map(|s| (s.spec.name.clone(), s.version))
        .collect();
    print_list(&active_and_current_failures(tasks, &versions), format);
    Ok(())
}

/// The active tasks, and the latest failed task of each slot of each service's current
/// version (`versions`: service name to version), in the order given.
pub fn active_and_current_failures(
    tasks: Vec<Task>,
    versions: &std::collections::BTreeMap<String, u64>,
) -> Vec<Task> {
    use orion_core::model::TaskState;
    let mut latest_failed: std::collections::BTreeMap<(&str, u32), &Task> = Default::default();
    for t in &tasks {
        if t.state == TaskState::Failed
            && versions.get(t.service.as_str()) == Some(&t.spec_version)
            && latest_failed
                .get(&(t.service.as_str(), t.slot))
                .is_none_or(|l| t.updated_at >= l.updated_at)
        {
            latest_failed.insert((t.service.as_str(), t.slot), t);
        }
    }
    let keep: std::collections::BTreeSet<String> =
        latest_failed.values().map(|t| t.id.to_string()).collect();
    tasks
        .into_iter()
        .filter(|t| t.is_active() || keep.contains(t.id.as_str()))
        .collect()
}

/// `get ID`: a task, or else a service of that name.
pub async fn get(client: &Client, id: &str, format: OutputFormat) -> Result<()> {
    match client.get::<Task>(&format!("/v1/tasks/{id}")).await {
        Ok(task) => println!("{}", render_value(&task, format)),
        Err(ClientError::Api { status, .. }) if status == reqwest::StatusCode::NOT_FOUND => {
            let svc: ServiceStatus = client.get(&format!("/v1/services/{id}")).await?;
            println!("{}", render_value(&svc, format));
        }
        Err(e) => return Err(e.into()),
    }
    Ok(())
}

/// `nodes` / `list-nodes`.
pub async fn nodes(client: &Client, format: OutputFormat) -> Result<()> {
    let nodes: Vec<Node> = client.get("/v1/nodes").await?;
    print_list(&nodes, format);
    Ok(())
}

/// `rm SERVICE`.
pub async fn rm(client: &Client, service: &str, format: OutputFormat) -> Result<()> {
    let answer: serde_json::Value = client
        .call(
            Method::DELETE,
            &format!("/v1/services/{service}"),
            None::<&()>,
        )
        .await?;
    if structured(format) {
        println!("{}", render_value(&answer, format));
    } else {
        println!("service {service} removed");
    }
    Ok(())
}

/// `stop ID [--yes]`: a task id stops that task; a service name removes the service, after
/// [`crate::prompt::confirm`].
pub async fn stop(client: &Client, id: &str, yes: bool, format: OutputFormat) -> Result<()> {
    match client
        .call::<(), Task>(Method::DELETE, &format!("/v1/tasks/{id}"), None)
        .await
    {
        Ok(task) => {
            if structured(format) {
                println!("{}", render_value(&task, format));
            } else {
                println!("task {id} stopping");
            }
            Ok(())
        }
        Err(ClientError::Api { status, .. }) if status == reqwest::StatusCode::NOT_FOUND => {
            let svc = match client
                .get::<ServiceStatus>(&format!("/v1/services/{id}"))
                .await
            {
                Err(ClientError::Api { status, .. })
                    if status == reqwest::StatusCode::NOT_FOUND =>
                {
                    return Err(Exit {
                        code: exit::NOT_FOUND,
                        message: format!(
                            "no task or service named {id:?} (see `orion ps`, `orion status`)"
                        ),
                    }
                    .into());
                }
                other => other?,
            };
            crate::prompt::confirm_removal(&svc, yes)?;
            rm(client, id, format).await
        }
        Err(e) => Err(e.into()),
    }
}

/// `drain NODE`.
pub async fn drain(client: &Client, node: &str, format: OutputFormat) -> Result<()> {
    let drained: Node = client
        .call(
            Method::POST,
            &format!("/v1/nodes/{node}/drain"),
            None::<&()>,
        )
        .await?;
    if structured(format) {
        println!("{}", render_value(&drained, format));
    } else {
        println!("node {node} draining: its tasks move elsewhere and nothing new is placed on it");
    }
    let nodes: Vec<Node> = client.get("/v1/nodes").await?;
    if !nodes
        .iter()
        .any(|n| n.id != node && n.status == orion_core::model::NodeStatus::Ready)
    {
        eprintln!(
            "warning: {node} was the last schedulable node: its tasks keep running there until \
             another node is ready, and new tasks stay pending (undo with `orion undrain {node}`)"
        );
    }
    Ok(())
}

/// `undrain NODE` (alias `uncordon`).
pub async fn undrain(client: &Client, node: &str, format: OutputFormat) -> Result<()> {
    let n: Node = client
        .call(
            Method::POST,
            &format!("/v1/nodes/{node}/undrain"),
            None::<&()>,
        )
        .await?;
    if structured(format) {
        println!("{}", render_value(&n, format));
    } else if n.status == orion_core::model::NodeStatus::Ready {
        println!("node {node} is schedulable again");
    } else {
        println!(
            "node {node} is {:?}, not draining: nothing to undo",
            n.status
        );
    }
    Ok(())
}

/// `cluster`.
pub async fn cluster(client: &Client, format: OutputFormat) -> Result<()> {
    let status: ClusterStatus = client.get("/v1/cluster").await?;
    println!("{}", render_cluster(&status, format));
    Ok(())
}

/// `cluster remove NODE`.
pub async fn cluster_remove(client: &Client, node: &str, format: OutputFormat) -> Result<()> {
    let status: ClusterStatus = client
        .call(
            Method::DELETE,
            &format!("/v1/cluster/members/{node}"),
            None::<&()>,
        )
        .await?;
    if !structured(format) {
        println!("removed {node} from the Raft membership");
    }
    println!("{}", render_cluster(&status, format));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_parse_in_every_short_form() {
        let p = parse_port("80").unwrap();
        assert_eq!((p.host_port, p.container_port), (0, 80));
        let p = parse_port("8080:80/udp").unwrap();
        assert_eq!(
            (p.host_port, p.container_port, p.protocol),
            (8080, 80, spec::Protocol::Udp)
        );
        assert!(
            parse_port("80/sctp")
                .unwrap_err()
                .to_string()
                .contains("`tcp` or `udp`")
        );
        assert!(
            parse_port("x:80")
                .unwrap_err()
                .to_string()
                .contains("not a port")
        );
    }

    #[test]
    fn service_names_derive_from_images() {
        assert_eq!(service_name_from_image("nginx"), "nginx");
        assert_eq!(service_name_from_image("nginx:1.25"), "nginx");
        assert_eq!(
            service_name_from_image("reg.example/acme/Web_App:v2"),
            "web-app"
        );
    }
}
