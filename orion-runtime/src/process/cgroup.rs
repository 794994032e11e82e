//! CPU and memory limits for supervised processes, through cgroup v2.
//!
//! At construction the runtime checks the cgroup root (`/sys/fs/cgroup` by default): it must be a
//! cgroup v2 hierarchy (`cgroup.controllers` present) offering the `cpu` and `memory`
//! controllers. It then creates a parent it owns (`<root>/orion-processes` by default) and enables
//! both controllers for the parent and its children (`+cpu +memory` in `cgroup.subtree_control`
//! of the root and of the parent). Each process with a limit gets `<parent>/<id>`, with
//! `cpu.max` = `<millicores * 100> 100000` (CFS quota over a 100 ms period, at least 1 ms) and
//! `memory.max` = the bytes, and `cpu.weight` from the CPU reservation (with or without a quota);
//! the supervisor joins it before it starts the program, so the
//! program and all its children are limited. The cgroup is removed with the process.
//!
//! When any of that is impossible (cgroup v1 host, controllers missing, no permission), limits
//! are [`LimitSupport::NotEnforced`] with the reason; the runtime then runs the process without
//! them (or refuses, with `require_resource_limits`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{Result, RuntimeError};

/// Where cgroup v2 is mounted on a unified-hierarchy host.
pub const DEFAULT_CGROUP_ROOT: &str = "/sys/fs/cgroup";
/// The parent cgroup the runtime creates under the root, and owns.
pub const DEFAULT_CGROUP_PARENT: &str = "orion-processes";
/// The CFS period of `cpu.max`, in microseconds.
pub const CPU_PERIOD_US: u64 = 100_000;
/// The smallest CFS quota the kernel accepts, in microseconds.
const MIN_CPU_QUOTA_US: u64 = 1_000;
/// How long `remove` waits for the kernel to release a cgroup whose processes just died.
const REMOVE_WAIT: Duration = Duration::from_secs(2);
const REMOVE_POLL: Duration = Duration::from_millis(20);

/// Whether this runtime can enforce CPU and memory limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LimitSupport {
    /// Limits are applied in a sub-cgroup of `parent`, one per process.
    Enforced {
        /// The parent cgroup directory the runtime owns.
        parent: PathBuf,
    },
    /// Limits cannot be applied here; `reason` says why.
    NotEnforced {
        /// What is missing, e.g. "no cgroup v2 hierarchy at /sys/fs/cgroup".
        reason: String,
    },
}

impl LimitSupport {
    /// Checks `root` and prepares `<root>/<parent>` (see the module docs). Never fails: anything
    /// missing becomes [`LimitSupport::NotEnforced`] with the reason.
    pub(crate) fn prepare(root: &Path, parent: &str) -> LimitSupport {
        match prepare(root, parent) {
            Ok(parent) => LimitSupport::Enforced { parent },
            Err(reason) => LimitSupport::NotEnforced { reason },
        }
    }
}

fn prepare(root: &Path, parent: &str) -> std::result::Result<PathBuf, String> {
    let controllers_file = root.join("cgroup.controllers");
    let controllers = std::fs::read_to_string(&controllers_file).map_err(|e| {
        format!(
            "no cgroup v2 hierarchy at {} ({}: {e}; a cgroup v1 host cannot be used)",
            root.display(),
            controllers_file.display()
        )
    })?;
    let available: Vec<&str> = controllers.split_whitespace().collect();
    for needed in ["cpu", "memory"] {
        if !available.contains(&needed) {
            return Err(format!(
                "the cgroup v2 hierarchy at {} does not offer the {needed} controller (it has: {})",
                root.display(),
                controllers.trim()
            ));
        }
    }
    if parent.is_empty() || parent.contains('/') || parent.starts_with('.') {
        return Err(format!(
            "cgroup parent {parent:?}: expected one directory name such as {DEFAULT_CGROUP_PARENT}"
        ));
    }
    enable_controllers(root)?;
    let dir = root.join(parent);
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    enable_controllers(&dir)?;
    Ok(dir)
}

/// Makes `cpu` and `memory` available to the children of `dir`.
fn enable_controllers(dir: &Path) -> std::result::Result<(), String> {
    let file = dir.join("cgroup.subtree_control");
    let enabled = std::fs::read_to_string(&file).unwrap_or_default();
    let enabled: Vec<&str> = enabled.split_whitespace().collect();
    if enabled.contains(&"cpu") && enabled.contains(&"memory") {
        return Ok(());
    }
    std::fs::write(&file, "+cpu +memory")
        .map_err(|e| format!("cannot enable cpu and memory in {}: {e}", file.display()))
}

/// The `cpu.max` line for `millicores` (1000 = one core).
pub(crate) fn cpu_max(millicores: u64) -> String {
    let quota = millicores
        .saturating_mul(CPU_PERIOD_US / 1000)
        .max(MIN_CPU_QUOTA_US);
    format!("{quota} {CPU_PERIOD_US}")
}

/// Creates `<parent>/<id>` with the limits set (0 = no limit on that resource). Nothing is left
/// behind on error.
pub(crate) fn create(
    parent: &Path,
    id: &str,
    cpu_millicores: u64,
    cpu_weight: Option<u64>,
    memory_bytes: u64,
) -> Result<PathBuf> {
    let dir = parent.join(id);
    std::fs::create_dir(&dir)
        .map_err(|e| RuntimeError::io(format!("creating cgroup {}", dir.display()), e))?;
    let mut writes = Vec::new();
    if cpu_millicores > 0 {
        writes.push(("cpu.max", cpu_max(cpu_millicores)));
    }
    if let Some(weight) = cpu_weight {
        writes.push(("cpu.weight", weight.to_string()));
    }
    if memory_bytes > 0 {
        writes.push(("memory.max", memory_bytes.to_string()));
    }
    for (file, value) in writes {
        let path = dir.join(file);
        if let Err(e) = std::fs::write(&path, &value) {
            remove(&dir);
            return Err(RuntimeError::io(
                format!("writing {value:?} to {}", path.display()),
                e,
            ));
        }
    }
    Ok(dir)
}

/// Moves `pid` into the cgroup (its later children are born there).
pub(crate) fn add_process(cgroup: &Path, pid: u32) -> Result<()> {
    let path = cgroup.join("cgroup.procs");
    std::fs::write(&path, pid.to_string())
        .map_err(|e| RuntimeError::io(format!("writing pid {pid} to {}", path.display()), e))
}

/// Removes the cgroup once its processes are gone (the kernel releases it shortly after they
/// are reaped; bounded by [`REMOVE_WAIT`]). Failures are logged, never fatal: a leftover empty
/// cgroup costs nothing and is named in the log.
pub(crate) fn remove(cgroup: &Path) {
    let deadline = std::time::Instant::now() + REMOVE_WAIT;
    loop {
        match std::fs::remove_dir(cgroup) {
            Ok(()) => return,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
            // Not cgroupfs (a test tree): its control files are regular files.
            Err(e) if e.kind() == std::io::ErrorKind::DirectoryNotEmpty => {
                if let Err(e) = std::fs::remove_dir_all(cgroup) {
                    tracing::warn!(cgroup = %cgroup.display(), error = %e, "cannot remove a process cgroup");
                }
                return;
            }
            Err(e) => {
                if std::time::Instant::now() >= deadline {
                    tracing::warn!(cgroup = %cgroup.display(), error = %e, "cannot remove a process cgroup");
                    return;
                }
                std::thread::sleep(REMOVE_POLL);
            }
        }
    }
}

/// True when the kernel's OOM killer killed a process of this cgroup (`memory.events`).
pub(crate) fn oom_killed(cgroup: &Path) -> bool {
    std::fs::read_to_string(cgroup.join("memory.events"))
        .ok()
        .and_then(|text| {
            text.lines()
                .find_map(|l| l.strip_prefix("oom_kill "))
                .and_then(|n| n.trim().parse::<u64>().ok())
        })
        .is_some_and(|n| n > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v2_tree(controllers: &str) -> tempfile::TempDir {
        let root = tempfile::tempdir().unwrap();
        std::fs::write(root.path().join("cgroup.controllers"), controllers).unwrap();
        std::fs::write(root.path().join("cgroup.subtree_control"), "").unwrap();
        root
    }

    #[test]
    fn cpu_max_is_a_quota_over_100ms_with_a_1ms_floor() {
        assert_eq!(cpu_max(250), "25000 100000");
        assert_eq!(cpu_max(2000), "200000 100000");
        assert_eq!(cpu_max(5), "1000 100000");
    }

    #[test]
    fn a_v1_host_or_missing_controllers_are_not_enforced_with_the_reason() {
        let empty = tempfile::tempdir().unwrap();
        let LimitSupport::NotEnforced { reason } = LimitSupport::prepare(empty.path(), "p") else {
            panic!("an empty dir is no cgroup v2 root");
        };
        assert!(reason.contains("no cgroup v2 hierarchy"), "{reason}");
        let root = v2_tree("cpuset io pids");
        let LimitSupport::NotEnforced { reason } = LimitSupport::prepare(root.path(), "p") else {
            panic!("no cpu controller");
        };
        assert!(reason.contains("cpu controller"), "{reason}");
        let root = v2_tree("cpu memory");
        let LimitSupport::NotEnforced { reason } = LimitSupport::prepare(root.path(), "../x")
        else {
            panic!("a path is no parent name");
        };
        assert!(reason.contains("one directory name"), "{reason}");
    }

    #[test]
    fn the_parent_is_created_with_controllers_enabled_and_a_child_gets_the_limits() {
        let root = v2_tree("cpuset cpu io memory pids");
        let support = LimitSupport::prepare(root.path(), "orion-t");
        let parent = root.path().join("orion-t");
        assert_eq!(
            support,
            LimitSupport::Enforced {
                parent: parent.clone()
            }
        );
        let enabled = std::fs::read_to_string(root.path().join("cgroup.subtree_control")).unwrap();
        assert_eq!(enabled, "+cpu +memory");
        let child = create(&parent, "abc", 500, Some(20), 64 << 20).unwrap();
        assert_eq!(
            std::fs::read_to_string(child.join("cpu.max")).unwrap(),
            "50000 100000"
        );
        assert_eq!(
            std::fs::read_to_string(child.join("cpu.weight")).unwrap(),
            "20"
        );
        assert_eq!(
            std::fs::read_to_string(child.join("memory.max")).unwrap(),
            (64u64 << 20).to_string()
        );
        add_process(&child, 4242).unwrap();
        assert_eq!(
            std::fs::read_to_string(child.join("cgroup.procs")).unwrap(),
            "4242"
        );
        assert!(!oom_killed(&child));
        std::fs::write(child.join("memory.events"), "low 0\noom 1\noom_kill 1\n").unwrap();
        assert!(oom_killed(&child));
        remove(&child);
        assert!(!child.exists());
    }
}
