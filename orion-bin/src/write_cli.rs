//! The commands that write a service and then wait for its rollout: `apply`, `deploy`, `run`
//! and `scale` ([`crate::progress`] does the waiting), and what `deploy` reads from its flags.

use std::path::Path;

use anyhow::Result;
use orion_core::model::ServiceSpec;
use orion_core::model::spec::{AffinityRule, CpuLimit, ResourceSpec, units};
use reqwest::Method;

use crate::api::types::{ScaleRequest, ServiceStatus};
use crate::cli::{DeployArgs, RunArgs};
use crate::client::{Client, exit};
use crate::commands::{Exit, load_specs, parse_port, service_name_from_image};
use crate::progress::{self, RolloutResult, Watch};

/// A refused flag value (exit code 4).
fn invalid(message: String) -> anyhow::Error {
    Exit {
        code: exit::INVALID,
        message,
    }
    .into()
}

/// `--cpu`: a whole number of millicores (`500`, `500m`), cores with a decimal point (`0.5`,
/// `1.0`), or the spec's forms (`0.5cpu`, `2cores`).
pub fn parse_cpu(text: &str) -> Result<u64> {
    let t = text.trim();
    let parsed = if t.contains('.') && t.parse::<f64>().is_ok() {
        units::parse_millicores(&format!("{t}cpu"))
    } else {
        units::parse_millicores(t)
    };
    parsed.map_err(|e| {
        invalid(format!(
            "--cpu {text:?}: {e} (a decimal number such as 0.5 is taken as cores)"
        ))
    })
}

/// `--cpu-limit`: `reserved`, `none`, or an amount as [`parse_cpu`] reads it.
pub fn parse_cpu_limit(text: &str) -> Result<CpuLimit> {
    match text.trim() {
        "reserved" => Ok(CpuLimit::Reserved),
        "none" => Ok(CpuLimit::None),
        amount => parse_cpu(amount).map(CpuLimit::Millicores).map_err(|_| {
            invalid(format!(
                "--cpu-limit {text:?}: expected `reserved` (capped at --cpu), `none` (no cap), \
                 or millicores or cores as for --cpu (`1500m`, `1.5`)"
            ))
        }),
    }
}

/// `--memory`: bytes, or with the spec's units (`64Mi`, `1Gi`, `500M`).
pub fn parse_memory(text: &str) -> Result<u64> {
    units::parse_bytes(text.trim()).map_err(|e| invalid(format!("--memory {text:?}: {e}")))
}

/// The command of `deploy`: the words after `--`, or `--command` split like a shell would.
pub fn parse_command(args: &DeployArgs) -> Result<Vec<String>> {
    if let Some(line) = &args.command {
        let words = shlex::split(line).ok_or_else(|| {
            invalid(format!(
                "--command {line:?}: unbalanced quotes; expected words split like a shell's, \
                 e.g. --command \"sh -c 'echo hi'\""
            ))
        })?;
        if words.is_empty() {
            return Err(invalid(
                "--command \"\": empty; give the program and its arguments".to_owned(),
            ));
        }
        return Ok(words);
    }
    Ok(args.args.clone())
}

/// The spec `deploy` writes.
pub fn deploy_spec(args: &DeployArgs) -> Result<ServiceSpec> {
    let image = args
        .image
        .as_deref()
        .or(args.image_flag.as_deref())
        .expect("clap requires one of IMAGE and --image");
    let name = match &args.name {
        Some(n) => n.clone(),
        None => service_name_from_image(image),
    };
    let mut spec = ServiceSpec::new(&name, image, args.replicas);
    spec.ports = args
        .ports
        .iter()
        .map(|p| parse_port(p))
        .collect::<Result<_>>()?;
    spec.env = args.env.clone();
    spec.command = parse_command(args)?;
    let defaults = ResourceSpec::default();
    spec.resources.cpu_millicores = match &args.cpu {
        Some(c) => parse_cpu(c)?,
        None => defaults.cpu_millicores,
    };
    if let Some(limit) = &args.cpu_limit {
        spec.resources.cpu_limit = parse_cpu_limit(limit)?;
    }
    spec.resources.memory_bytes = match &args.memory {
        Some(m) => parse_memory(m)?,
        None => defaults.memory_bytes,
    };
    if let Some(zone) = &args.network_affinity {
        spec.scheduling.affinity.push(AffinityRule::Zone {
            zones: vec![zone.clone()],
            required: false,
        });
    }
    spec.validate()?;
    Ok(spec)
}

fn accepted_line(verb: &str, status: &ServiceStatus) {
    println!(
        "service {} {verb} (version {}, {} replica{})",
        status.spec.name,
        status.version,
        status.desired,
        if status.desired == 1 { "" } else { "s" }
    );
}

/// Waits for each accepted write (unless detached) and reports them.
async fn watch_all(client: &Client, accepted: &[ServiceStatus], watch: &Watch) -> Result<()> {
    let mut results = Vec::with_capacity(accepted.len());
    for status in accepted {
        results.push(if watch.detach {
            RolloutResult::detached(status)
        } else {
            progress::wait(client, status, watch).await
        });
    }
    progress::report(&results, watch)
}

async fn put(client: &Client, spec: &ServiceSpec, watch: &Watch) -> Result<ServiceStatus> {
    let status: ServiceStatus = watch
        .client(client)
        .call(
            Method::PUT,
            &format!("/v1/services/{}", spec.name),
            Some(spec),
        )
        .await?;
    if !watch.structured() {
        accepted_line("applied", &status);
    }
    Ok(status)
}

/// `apply -f FILE` and `start FILE`: every service is written first, then each is waited for.
pub async fn apply(client: &Client, path: &Path, watch: &Watch) -> Result<()> {
    let specs = load_specs(path)?;
    let mut accepted = Vec::with_capacity(specs.len());
    for spec in &specs {
        accepted.push(put(client, spec, watch).await?);
    }
    watch_all(client, &accepted, watch).await
}

/// `deploy IMAGE [-- COMMAND ARGS...]`.
pub async fn deploy(client: &Client, args: &DeployArgs, watch: &Watch) -> Result<()> {
    let spec = deploy_spec(args)?;
    let status = put(client, &spec, watch).await?;
    watch_all(client, &[status], watch).await
}

/// `run --image --replicas`: creates the service, never replaces one (409, exit code 4).
pub async fn run(client: &Client, args: &RunArgs, watch: &Watch) -> Result<()> {
    let name = match &args.name {
        Some(n) => n.clone(),
        None => service_name_from_image(&args.image),
    };
    let spec = ServiceSpec::new(name, &args.image, args.replicas);
    spec.validate()?;
    let status: ServiceStatus = watch
        .client(client)
        .call(Method::POST, "/v1/services", Some(&spec))
        .await?;
    if !watch.structured() {
        accepted_line("created", &status);
    }
    watch_all(client, &[status], watch).await
}

/// `scale SERVICE N`.
pub async fn scale(client: &Client, service: &str, replicas: u32, watch: &Watch) -> Result<()> {
    let status: ServiceStatus = watch
        .client(client)
        .call(
            Method::POST,
            &format!("/v1/services/{service}/scale"),
            Some(&ScaleRequest { replicas }),
        )
        .await?;
    if !watch.structured() {
        println!(
            "service {service} scaled to {replicas} (version {})",
            status.version
        );
    }
    watch_all(client, &[status], watch).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    fn deploy_args(argv: &[&str]) -> DeployArgs {
        let mut full = vec!["orion", "deploy"];
        full.extend_from_slice(argv);
        match Cli::try_parse_from(full).unwrap().command {
            Command::Deploy(a) => a,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn cpu_takes_millicores_and_cores() {
        assert_eq!(parse_cpu("500").unwrap(), 500);
        assert_eq!(parse_cpu("500m").unwrap(), 500);
        assert_eq!(parse_cpu("0.5").unwrap(), 500);
        assert_eq!(parse_cpu("1.0").unwrap(), 1000);
        assert_eq!(parse_cpu("0.5cpu").unwrap(), 500);
        assert_eq!(parse_cpu("2cores").unwrap(), 2000);
        let err = parse_cpu("half").unwrap_err().to_string();
        assert!(
            err.contains("--cpu \"half\"") && err.contains("0.5cpu"),
            "{err}"
        );
    }

    #[test]
    fn memory_takes_bytes_and_units() {
        assert_eq!(parse_memory("67108864").unwrap(), 64 << 20);
        assert_eq!(parse_memory("64Mi").unwrap(), 64 << 20);
        assert_eq!(parse_memory("1G").unwrap(), 1_000_000_000);
        let err = parse_memory("64 parsecs").unwrap_err().to_string();
        assert!(err.contains("--memory") && err.contains("Mi"), "{err}");
    }

    #[test]
    fn deploy_takes_the_image_positionally_and_the_command_after_dashes() {
        let a = deploy_args(&["nginx:1.25", "--replicas", "2", "--", "sh", "-c", "echo hi"]);
        let spec = deploy_spec(&a).unwrap();
        assert_eq!(spec.name, "nginx");
        assert_eq!(spec.image, "nginx:1.25");
        assert_eq!(spec.command, ["sh", "-c", "echo hi"]);
        let a = deploy_args(&["--image", "busybox", "--command", "sh -c 'echo hi'"]);
        assert_eq!(deploy_spec(&a).unwrap().command, ["sh", "-c", "echo hi"]);
        let a = deploy_args(&["busybox", "--command", "sh -c 'echo"]);
        assert!(
            deploy_spec(&a)
                .unwrap_err()
                .to_string()
                .contains("unbalanced quotes")
        );
        let a = deploy_args(&["busybox", "--cpu", "0.25", "--memory", "64Mi"]);
        let spec = deploy_spec(&a).unwrap();
        assert_eq!(spec.resources.cpu_millicores, 250);
        assert_eq!(spec.resources.memory_bytes, 64 << 20);
        assert_eq!(spec.resources.cpu_limit, CpuLimit::Reserved);
        for (written, limit) in [
            ("none", CpuLimit::None),
            ("1.5", CpuLimit::Millicores(1500)),
            ("800m", CpuLimit::Millicores(800)),
        ] {
            let a = deploy_args(&["busybox", "--cpu", "0.25", "--cpu-limit", written]);
            assert_eq!(deploy_spec(&a).unwrap().resources.cpu_limit, limit);
        }
        let below = deploy_args(&["busybox", "--cpu", "0.5", "--cpu-limit", "0.25"]);
        let err = deploy_spec(&below).unwrap_err().to_string();
        assert!(err.contains("resources.cpu_limit"), "{err}");
        let bad = deploy_args(&["busybox", "--cpu-limit", "unbounded"]);
        let err = deploy_spec(&bad).unwrap_err().to_string();
        assert!(
            err.contains("--cpu-limit \"unbounded\"") && err.contains("`none`"),
            "{err}"
        );
    }

    #[test]
    fn timeouts_are_bounded_and_global() {
        let cli = Cli::try_parse_from(["orion", "ps", "--timeout", "2s"]).unwrap();
        assert_eq!(cli.timeout, Some(std::time::Duration::from_secs(2)));
        let cli = Cli::try_parse_from(["orion", "--timeout", "5m", "scale", "web", "3"]).unwrap();
        assert_eq!(cli.timeout, Some(std::time::Duration::from_secs(300)));
        for bad in ["0s", "50ms", "25h", "soon"] {
            let err = Cli::try_parse_from(["orion", "ps", "--timeout", bad]).unwrap_err();
            assert!(err.to_string().contains("expected"), "{bad}: {err}");
        }
        let cli = Cli::try_parse_from(["orion", "dns", "lookup", "web", "--timeout", "1s"]);
        assert!(cli.is_ok(), "dns lookup takes the global flag");
    }

    #[test]
    fn stop_takes_yes() {
        let cli = Cli::try_parse_from(["orion", "stop", "web", "-y"]).unwrap();
        assert!(matches!(cli.command, Command::Stop { yes: true, .. }));
        let cli = Cli::try_parse_from(["orion", "stop", "web"]).unwrap();
        assert!(matches!(cli.command, Command::Stop { yes: false, .. }));
    }

    #[test]
    fn deploy_needs_one_image() {
        let mut argv = vec!["orion", "deploy"];
        assert!(Cli::try_parse_from(&argv).is_err());
        argv.extend(["a", "--image", "b"]);
        assert!(Cli::try_parse_from(&argv).is_err());
        let both = ["orion", "deploy", "a", "--command", "x", "--", "y"];
        assert!(Cli::try_parse_from(both).is_err());
    }
}
