//! Client commands: each turns its arguments into API calls and prints the result.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use futures::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use orion_core::model::spec::{
    self, AffinityRule, PortSpec, ResourceSpec, SpecFormat, compose, parse_specs,
};
use orion_core::model::{Node, ServiceSpec, Task};
use reqwest::Method;

use crate::api::types::{ClusterStatus, ScaleRequest, ServiceStatus};
use crate::cli::{DeployArgs, OutputFormat, RunArgs};
use crate::client::{Client, ClientError, exit};
use crate::output::{Tabular, render_cluster, render_list, render_value};

/// How long a command waits for a rollout before giving up (exit code 6).
const ROLLOUT_TIMEOUT: Duration = Duration::from_secs(180);

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
pub fn validate(path: &Path) -> Result<()> {
    let specs = load_specs(path)?;
    let names: Vec<_> = specs.iter().map(|s| s.name.as_str()).collect();
    println!(
        "{}: valid ({} service{}: {})",
        path.display(),
        specs.len(),
        if specs.len() == 1 { "" } else { "s" },
        names.join(", ")
    );
    Ok(())
}

/// `apply -f FILE` and `start FILE`.
pub async fn apply(client: &Client, path: &Path, wait: bool) -> Result<()> {
    let specs = load_specs(path)?;
    for spec in &specs {
        put_service(client, spec, wait).await?;
    }
    Ok(())
}

async fn put_service(client: &Client, spec: &ServiceSpec, wait: bool) -> Result<()> {
    let status: ServiceStatus = client
        .call(
            Method::PUT,
            &format!("/v1/services/{}", spec.name),
            Some(spec),
        )
        .await?;
    println!(
        "service {} applied (version {}, {} replica{})",
        spec.name,
        status.version,
        spec.replicas,
        if spec.replicas == 1 { "" } else { "s" }
    );
    if wait {
        wait_for_rollout(client, &spec.name).await?;
    }
    Ok(())
}

/// Parses a `--port` value with the spec's own port syntax (`80`, `8080:80`, `8080:80/udp`).
pub fn parse_port(text: &str) -> Result<PortSpec> {
    spec::parse_port(text).map_err(|e| anyhow::anyhow!("--port {e}"))
}

/// `deploy --image --name ...`.
pub async fn deploy(client: &Client, args: &DeployArgs) -> Result<()> {
    let mut spec = ServiceSpec::new(&args.name, &args.image, args.replicas);
    spec.ports = args
        .ports
        .iter()
        .map(|p| parse_port(p))
        .collect::<Result<_>>()?;
    spec.env = args.env.clone();
    let defaults = ResourceSpec::default();
    spec.resources.cpu_millicores = args.cpu.unwrap_or(defaults.cpu_millicores);
    spec.resources.memory_bytes = args.memory.unwrap_or(defaults.memory_bytes);
    if let Some(zone) = &args.network_affinity {
        spec.scheduling.affinity.push(AffinityRule::Zone {
            zones: vec![zone.clone()],
            required: false,
        });
    }
    spec.validate()?;
    put_service(client, &spec, !args.detach).await
}

/// `run --image --replicas` (the service is named after the image).
pub async fn run(client: &Client, args: &RunArgs) -> Result<()> {
    let name = match &args.name {
        Some(n) => n.clone(),
        None => service_name_from_image(&args.image),
    };
    let spec = ServiceSpec::new(name, &args.image, args.replicas);
    spec.validate()?;
    // Create-if-missing: `run` never replaces a service (409, exit code 4).
    let status: ServiceStatus = client
        .call(Method::POST, "/v1/services", Some(&spec))
        .await?;
    println!(
        "service {} created (version {}, {} replica{})",
        spec.name,
        status.version,
        spec.replicas,
        if spec.replicas == 1 { "" } else { "s" }
    );
    if !args.detach {
        wait_for_rollout(client, &spec.name).await?;
    }
    Ok(())
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

/// Polls the service until all replicas run, with a progress bar.
pub async fn wait_for_rollout(client: &Client, service: &str) -> Result<()> {
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg} [{bar:30}] {pos}/{len} running ({elapsed})")
            .expect("static template")
            .progress_chars("=> "),
    );
    bar.set_message(service.to_owned());
    let started = Instant::now();
    loop {
        let status: ServiceStatus = client.get(&format!("/v1/services/{service}")).await?;
        bar.set_length(u64::from(status.desired));
        bar.set_position(u64::from(status.running));
        if status.running >= status.desired {
            bar.finish();
            return Ok(());
        }
        if started.elapsed() > ROLLOUT_TIMEOUT {
            bar.abandon();
            return Err(Exit {
                code: exit::TIMEOUT,
                message: format!(
                    "{service}: {}/{} replicas running after {}s; see `orion ps --service {service}`",
                    status.running,
                    status.desired,
                    ROLLOUT_TIMEOUT.as_secs()
                ),
            }
            .into());
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
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

/// `ps` / `list`.
pub async fn ps(
    client: &Client,
    service: Option<&str>,
    all: bool,
    format: OutputFormat,
) -> Result<()> {
    let mut query = vec![];
    if let Some(s) = service {
        query.push(format!("service={s}"));
    }
    if all {
        query.push("all=true".to_owned());
    }
    let tasks: Vec<Task> = client
        .get(&format!("/v1/tasks?{}", query.join("&")))
        .await?;
    print_list(&tasks, format);
    Ok(())
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

/// `logs SERVICE [-f]`.
pub async fn logs(client: &Client, service: &str, follow: bool, tail: Option<usize>) -> Result<()> {
    let mut path = format!("/v1/services/{service}/logs?follow={follow}");
    if let Some(n) = tail {
        path.push_str(&format!("&tail={n}"));
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

/// `scale SERVICE N`.
pub async fn scale(client: &Client, service: &str, replicas: u32, wait: bool) -> Result<()> {
    let status: ServiceStatus = client
        .call(
            Method::POST,
            &format!("/v1/services/{service}/scale"),
            Some(&ScaleRequest { replicas }),
        )
        .await?;
    println!(
        "service {service} scaled to {replicas} (version {})",
        status.version
    );
    if wait {
        wait_for_rollout(client, service).await?;
    }
    Ok(())
}

/// `rm SERVICE`.
pub async fn rm(client: &Client, service: &str) -> Result<()> {
    let _: serde_json::Value = client
        .call(
            Method::DELETE,
            &format!("/v1/services/{service}"),
            None::<&()>,
        )
        .await?;
    println!("service {service} removed");
    Ok(())
}

/// `stop ID`: a task id stops that task; a service name removes the service.
pub async fn stop(client: &Client, id: &str) -> Result<()> {
    match client
        .call::<(), serde_json::Value>(Method::DELETE, &format!("/v1/tasks/{id}"), None)
        .await
    {
        Ok(_) => {
            println!("task {id} stopping");
            Ok(())
        }
        Err(ClientError::Api { status, .. }) if status == reqwest::StatusCode::NOT_FOUND => {
            rm(client, id).await
        }
        Err(e) => Err(e.into()),
    }
}

/// `drain NODE`.
pub async fn drain(client: &Client, node: &str) -> Result<()> {
    let _: Node = client
        .call(
            Method::POST,
            &format!("/v1/nodes/{node}/drain"),
            None::<&()>,
        )
        .await?;
    println!("node {node} draining: its tasks move elsewhere and nothing new is placed on it");
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
pub async fn undrain(client: &Client, node: &str) -> Result<()> {
    let n: Node = client
        .call(
            Method::POST,
            &format!("/v1/nodes/{node}/undrain"),
            None::<&()>,
        )
        .await?;
    if n.status == orion_core::model::NodeStatus::Ready {
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
    println!("removed {node} from the Raft membership");
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
