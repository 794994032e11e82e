//! OCI pieces: the image config, chain ids, and the runtime spec runc gets.

use orion_core::error::ValidationErrors;
use orion_core::model::spec::NetworkMode;
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::content::hex;
use crate::error::{Result, RuntimeError};

/// The type URL containerd expects on a container's spec.
pub(crate) const SPEC_TYPE_URL: &str = "types.containerd.io/opencontainers/runtime-spec/1/Spec";
/// The type URL of an exec process spec.
pub(crate) const PROCESS_TYPE_URL: &str =
    "types.containerd.io/opencontainers/runtime-spec/1/Process";
const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// CFS period in microseconds; quota = millicores * period / 1000.
const CPU_PERIOD: u64 = 100_000;
/// The kernel rejects quotas under 1ms.
const MIN_CPU_QUOTA: u64 = 1_000;

/// An image's config blob (only what a container needs).
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct ImageConfigFile {
    #[serde(default)]
    pub config: Option<ImageRuntimeConfig>,
    pub rootfs: RootFs,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ImageRuntimeConfig {
    #[serde(default)]
    pub env: Option<Vec<String>>,
    #[serde(default)]
    pub cmd: Option<Vec<String>>,
    #[serde(default)]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default)]
    pub working_dir: Option<String>,
    #[serde(default)]
    pub user: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct RootFs {
    #[serde(default)]
    pub diff_ids: Vec<String>,
}

/// Chain ids of a layer stack: `chain[0] = diff[0]`, `chain[i] = sha256(chain[i-1] + " " + diff[i])`.
pub(crate) fn chain_ids(diff_ids: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(diff_ids.len());
    for diff in diff_ids {
        let next = match out.last() {
            None => diff.clone(),
            Some(parent) => format!(
                "sha256:{}",
                hex(&Sha256::digest(format!("{parent} {diff}").as_bytes()))
            ),
        };
        out.push(next);
    }
    out
}

/// One mount for the spec (already resolved to a host path).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BindMount {
    pub source: String,
    pub target: String,
    pub read_only: bool,
}

/// Everything the runtime spec is made from.
#[derive(Debug, Clone)]
pub(crate) struct SpecInput {
    pub id: String,
    pub cgroup_parent: String,
    pub process: ProcessInput,
    pub network_mode: NetworkMode,
    pub memory_bytes: u64,
    pub cpu_millicores: u64,
    /// CPU shares for the reservation (`None`: the runtime's default).
    pub cpu_shares: Option<u64>,
    pub mounts: Vec<BindMount>,
}

/// The main process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ProcessInput {
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: String,
    pub uid: u32,
    pub gid: u32,
}

/// Combines the image's defaults with the spec's overrides, Docker's way: the command replaces
/// `Cmd` and keeps `Entrypoint`; an entrypoint replaces `Entrypoint` and drops `Cmd`; env entries
/// override the image's by key.
pub(crate) fn process_input(
    image: &ImageConfigFile,
    entrypoint: Option<&[String]>,
    command: &[String],
    env: &[String],
    workdir: &str,
) -> Result<ProcessInput> {
    let defaults = image.config.clone().unwrap_or_default();
    let mut args = match entrypoint {
        Some(entrypoint) => entrypoint.to_vec(),
        None => defaults.entrypoint.clone().unwrap_or_default(),
    };
    if !command.is_empty() {
        args.extend(command.iter().cloned());
    } else if entrypoint.is_none() {
        args.extend(defaults.cmd.clone().unwrap_or_default());
    }
    let mut errors = ValidationErrors::default();
    if args.is_empty() {
        errors.push(
            "command",
            "[]",
            "a command, since the image has neither Entrypoint nor Cmd",
        );
    }
    let mut merged: Vec<String> = defaults.env.clone().unwrap_or_default();
    for (i, entry) in env.iter().enumerate() {
        let Some((key, _)) = entry.split_once('=').filter(|(k, _)| !k.is_empty()) else {
            errors.push(format!("env[{i}]"), format!("{entry:?}"), "KEY=value");
            continue;
        };
        merged.retain(|e| e.split_once('=').map(|(k, _)| k) != Some(key));
        merged.push(entry.clone());
    }
    if !merged.iter().any(|e| e.starts_with("PATH=")) {
        merged.insert(0, DEFAULT_PATH.to_string());
    }
    let cwd = if !workdir.is_empty() {
        workdir.to_string()
    } else {
        defaults
            .working_dir
            .clone()
            .filter(|w| !w.is_empty())
            .unwrap_or_else(|| "/".to_string())
    };
    if !cwd.starts_with('/') {
        errors.push("workdir", format!("{cwd:?}"), "an absolute path");
    }
    let (uid, gid) = match parse_user(defaults.user.as_deref().unwrap_or("")) {
        Some(ids) => ids,
        None => {
            return Err(RuntimeError::Unsupported {
                backend: super::NAME,
                feature: format!("image user {:?}", defaults.user.unwrap_or_default()),
                hint: "the containerd backend accepts numeric users (uid or uid:gid) only"
                    .to_string(),
            });
        }
    };
    errors.into_result()?;
    Ok(ProcessInput {
        args,
        env: merged,
        cwd,
        uid,
        gid,
    })
}

fn parse_user(user: &str) -> Option<(u32, u32)> {
    if user.is_empty() {
        return Some((0, 0));
    }
    match user.split_once(':') {
        Some((u, g)) => Some((u.parse().ok()?, g.parse().ok()?)),
        None => user.parse().ok().map(|u| (u, u)),
    }
}

/// CFS quota for a millicore limit (None = unlimited).
pub(crate) fn cpu_quota(millicores: u64) -> Option<i64> {
    (millicores > 0).then(|| {
        let quota = millicores.saturating_mul(CPU_PERIOD) / 1000;
        quota.max(MIN_CPU_QUOTA).min(i64::MAX as u64) as i64
    })
}

fn capabilities() -> Value {
    let caps = [
        "CAP_CHOWN",
        "CAP_DAC_OVERRIDE",
        "CAP_FSETID",
        "CAP_FOWNER",
        "CAP_MKNOD",
        "CAP_NET_RAW",
        "CAP_SETGID",
        "CAP_SETUID",
        "CAP_SETFCAP",
        "CAP_SETPCAP",
        "CAP_NET_BIND_SERVICE",
        "CAP_SYS_CHROOT",
        "CAP_KILL",
        "CAP_AUDIT_WRITE",
    ];
    json!({ "bounding": caps, "effective": caps, "permitted": caps })
}

/// The process part of the spec (also used for exec).
pub(crate) fn process_json(p: &ProcessInput) -> Value {
    json!({
        "terminal": false,
        "user": { "uid": p.uid, "gid": p.gid },
        "args": p.args,
        "env": p.env,
        "cwd": p.cwd,
        "capabilities": capabilities(),
        "rlimits": [{ "type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024 }],
        "noNewPrivileges": true,
    })
}

/// The full OCI runtime spec, modelled on containerd's defaults.
pub(crate) fn runtime_spec(input: &SpecInput) -> Value {
    let mut namespaces = vec![
        json!({"type": "pid"}),
        json!({"type": "ipc"}),
        json!({"type": "uts"}),
        json!({"type": "mount"}),
    ];
    if input.network_mode != NetworkMode::Host {
        namespaces.push(json!({"type": "network"}));
    }
    let mut mounts = vec![
        json!({"destination": "/proc", "type": "proc", "source": "proc",
               "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
               "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
        json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts",
               "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]}),
        json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
               "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]}),
        json!({"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
               "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/sys", "type": "sysfs", "source": "sysfs",
               "options": ["nosuid", "noexec", "nodev", "ro"]}),
        json!({"destination": "/run", "type": "tmpfs", "source": "tmpfs",
               "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
    ];
    for m in &input.mounts {
        let mode = if m.read_only { "ro" } else { "rw" };
        mounts.push(
            json!({"destination": m.target, "type": "bind", "source": m.source,
                           "options": ["rbind", "rprivate", mode]}),
        );
    }
    let mut resources = json!({ "devices": [{ "allow": false, "access": "rwm" }] });
    if input.memory_bytes > 0 {
        resources["memory"] = json!({ "limit": input.memory_bytes.min(i64::MAX as u64) });
    }
    let mut cpu = serde_json::Map::new();
    if let Some(quota) = cpu_quota(input.cpu_millicores) {
        cpu.insert("quota".into(), json!(quota));
        cpu.insert("period".into(), json!(CPU_PERIOD));
    }
    if let Some(shares) = input.cpu_shares {
        cpu.insert("shares".into(), json!(shares));
    }
    if !cpu.is_empty() {
        resources["cpu"] = Value::Object(cpu);
    }
    let hostname: String = input.id.chars().take(63).collect();
    json!({
        "ociVersion": "1.0.2-dev",
        "process": process_json(&input.process),
        "root": { "path": "rootfs", "readonly": false },
        "hostname": hostname,
        "mounts": mounts,
        "linux": {
            "resources": resources,
            "cgroupsPath": format!("/{}/{}", input.cgroup_parent, input.id),
            "namespaces": namespaces,
            "maskedPaths": [
                "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware",
                "/proc/scsi"
            ],
            "readonlyPaths": [
                "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"
            ],
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(entrypoint: &[&str], cmd: &[&str]) -> ImageConfigFile {
        let strings = |v: &[&str]| Some(v.iter().map(|s| s.to_string()).collect());
        ImageConfigFile {
            config: Some(ImageRuntimeConfig {
                env: Some(vec!["PATH=/bin".into(), "A=1".into()]),
                cmd: strings(cmd),
                entrypoint: strings(entrypoint),
                working_dir: Some("/srv".into()),
                user: None,
            }),
            rootfs: RootFs::default(),
        }
    }

    #[test]
    fn command_replaces_cmd_and_keeps_entrypoint() {
        let img = image(&["/init"], &["serve"]);
        let p = process_input(&img, None, &[], &[], "").unwrap();
        assert_eq!(p.args, ["/init", "serve"]);
        assert_eq!(p.cwd, "/srv");
        let p = process_input(&img, None, &["run".into()], &["A=2".into()], "/tmp").unwrap();
        assert_eq!(p.args, ["/init", "run"]);
        assert_eq!(p.env, ["PATH=/bin", "A=2"]);
        assert_eq!(p.cwd, "/tmp");
    }

    #[test]
    fn an_entrypoint_replaces_the_images_and_drops_its_cmd() {
        let img = image(&["/init"], &["serve"]);
        let shell = ["sh".to_string(), "-c".to_string()];
        let p = process_input(&img, Some(&shell), &[], &[], "").unwrap();
        assert_eq!(p.args, ["sh", "-c"]);
        let p = process_input(&img, Some(&shell), &["echo hi".into()], &[], "").unwrap();
        assert_eq!(p.args, ["sh", "-c", "echo hi"]);
    }

    #[test]
    fn bad_process_inputs_name_their_fields() {
        let img = image(&[], &[]);
        let Err(RuntimeError::InvalidFields(errors)) =
            process_input(&img, None, &[], &["novalue".into()], "relative")
        else {
            panic!("expected InvalidFields");
        };
        let paths: Vec<_> = errors.0.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["command", "env[0]", "workdir"]);
    }

    #[test]
    fn chain_ids_follow_the_oci_rule() {
        let diffs = vec!["sha256:a".to_string(), "sha256:b".to_string()];
        let chains = chain_ids(&diffs);
        assert_eq!(chains[0], "sha256:a");
        let expected = format!("sha256:{}", hex(&Sha256::digest(b"sha256:a sha256:b")));
        assert_eq!(chains[1], expected);
    }

    #[test]
    fn limits_and_network_shape_the_spec() {
        let input = SpecInput {
            id: "c1".into(),
            cgroup_parent: "orion".into(),
            process: process_input(&image(&[], &["sh"]), None, &[], &[], "").unwrap(),
            network_mode: NetworkMode::Host,
            memory_bytes: 64 << 20,
            cpu_millicores: 250,
            cpu_shares: Some(256),
            mounts: vec![BindMount {
                source: "/data".into(),
                target: "/d".into(),
                read_only: true,
            }],
        };
        let spec = runtime_spec(&input);
        assert_eq!(spec["linux"]["resources"]["memory"]["limit"], 64 << 20);
        assert_eq!(spec["linux"]["resources"]["cpu"]["quota"], 25_000);
        assert_eq!(spec["linux"]["resources"]["cpu"]["shares"], 256);
        let unlimited = runtime_spec(&SpecInput {
            cpu_millicores: 0,
            ..input.clone()
        });
        let cpu = &unlimited["linux"]["resources"]["cpu"];
        assert_eq!((cpu.get("quota"), &cpu["shares"]), (None, &json!(256)));
        assert_eq!(spec["linux"]["cgroupsPath"], "/orion/c1");
        let namespaces = spec["linux"]["namespaces"].as_array().unwrap();
        assert!(!namespaces.iter().any(|n| n["type"] == "network"));
        let last = spec["mounts"].as_array().unwrap().last().unwrap().clone();
        assert_eq!(last["options"][2], "ro");
        assert_eq!(cpu_quota(1), Some(MIN_CPU_QUOTA as i64));
        assert_eq!(cpu_quota(0), None);
    }
}
