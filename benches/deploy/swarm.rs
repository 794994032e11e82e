//! Docker Swarm's side, on the same engine: `docker swarm init --advertise-addr 127.0.0.1`, a
//! service of the same containers (`--publish mode=host,target=8080` gives each replica its own
//! free host port, as Orion does), then `docker swarm leave --force` whatever happened.

use std::collections::HashMap;
use std::process::Command;
use std::time::{Duration, Instant};

use bollard::query_parameters::ListContainersOptions;
use orion_runtime::testing::TEST_IMAGE;

use super::{CPU_MILLICORES, CpuMode, Figures, LIMIT, MEMORY_BYTES, POLL, Sizes};

fn docker(args: &[&str]) -> Result<String, String> {
    let out = Command::new("docker")
        .args(args)
        .output()
        .map_err(|e| format!("cannot run docker: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    } else {
        Err(format!(
            "docker {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Removes the service and leaves the swarm on drop, also on a panic.
struct SwarmGuard {
    service: String,
}

impl Drop for SwarmGuard {
    fn drop(&mut self) {
        let _ = docker(&["service", "rm", &self.service]);
        let label = format!("label=com.docker.swarm.service.name={}", self.service);
        // The tasks' containers go away after the service; wait for them (bounded), then leave.
        for _ in 0..300 {
            if docker(&["ps", "-aq", "--filter", &label]).is_ok_and(|s| s.is_empty()) {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        if let Err(e) = docker(&["swarm", "leave", "--force"]) {
            eprintln!("swarm bench: leaving the swarm failed: {e}");
        }
    }
}

/// Ids of the running containers of `service`.
async fn running(docker: &bollard::Docker, service: &str) -> Result<Vec<String>, String> {
    let filters = HashMap::from([
        (
            "label".to_owned(),
            vec![format!("com.docker.swarm.service.name={service}")],
        ),
        ("status".to_owned(), vec!["running".to_owned()]),
    ]);
    let options = ListContainersOptions {
        filters: Some(filters),
        ..ListContainersOptions::default()
    };
    let list = docker
        .list_containers(Some(options))
        .await
        .map_err(|e| e.to_string())?;
    Ok(list.into_iter().filter_map(|c| c.id).collect())
}

async fn until_running(
    docker: &bollard::Docker,
    service: &str,
    n: usize,
    not: Option<&str>,
) -> Result<Vec<String>, String> {
    let started = Instant::now();
    let mut last = String::new();
    for _ in 0..(LIMIT.as_millis() / POLL.as_millis() + 1) {
        match running(docker, service).await {
            Ok(ids) if ids.len() == n && not.is_none_or(|k| !ids.iter().any(|i| i == k)) => {
                return Ok(ids);
            }
            Ok(ids) => last = format!("{} running", ids.len()),
            Err(e) => last = e,
        }
        if started.elapsed() > LIMIT {
            break;
        }
        tokio::time::sleep(POLL).await;
    }
    Err(format!("{n} replicas not running within {LIMIT:?}: {last}"))
}

/// Deploy, scale and a killed container's replacement; `Err(reason)` when no swarm can be used.
pub async fn measure(sizes: Sizes, mode: CpuMode) -> Result<Figures, String> {
    let state = docker(&["info", "--format", "{{.Swarm.LocalNodeState}}"])?;
    if state != "inactive" {
        return Err(format!(
            "the engine is already in a swarm ({state}); not ours to use"
        ));
    }
    docker(&["swarm", "init", "--advertise-addr", "127.0.0.1"])?;
    let service = format!("orion-bench-{}", std::process::id());
    let _guard = SwarmGuard {
        service: service.clone(),
    };
    let client = orion_runtime::docker::connect()
        .await
        .map_err(|e| e.to_string())?;
    let (cpus, memory) = (
        format!("{}", CPU_MILLICORES as f64 / 1000.0),
        MEMORY_BYTES.to_string(),
    );
    let replicas = sizes.deploy.to_string();
    let t = Instant::now();
    docker(&[
        "service",
        "create",
        "--detach",
        "--no-resolve-image",
        "--name",
        &service,
        "--replicas",
        &replicas,
        "--restart-condition",
        "any",
        mode.swarm_flag(),
        &cpus,
        "--limit-memory",
        &memory,
        "--publish",
        "mode=host,target=8080",
        TEST_IMAGE,
        "sh",
        "-c",
        "exec httpd -f -p 8080 -h /www",
    ])?;
    let first = until_running(&client, &service, sizes.deploy, None).await?;
    let deploy = t.elapsed();

    let t = Instant::now();
    docker(&[
        "service",
        "scale",
        "--detach",
        &format!("{service}={}", sizes.scale_to),
    ])?;
    until_running(&client, &service, sizes.scale_to, None).await?;
    let scale = t.elapsed();

    let t = Instant::now();
    docker(&["kill", &first[0]])?;
    until_running(&client, &service, sizes.scale_to, Some(&first[0])).await?;
    let replace = t.elapsed();
    Ok(Figures {
        deploy,
        scale,
        replace,
    })
}
