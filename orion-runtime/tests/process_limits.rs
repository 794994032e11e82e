//! ProcessRuntime and CPU/memory limits: enforced in a cgroup v2 sub-cgroup when the host offers
//! one, otherwise run without them (a warning, once per task), or refused when required.
//!
//! The cgroup v2 writes are checked on a directory tree shaped like cgroupfs (the test host may be
//! cgroup v1); the real host is checked for what it offers.

use std::collections::BTreeMap;
use std::path::Path;

use orion_core::runtime::{ContainerSpec, Runtime};
use orion_core::testing::runtime::{test_labels, wait_for_exit, with_cleanup};
use orion_runtime::ProcessRuntime;
use orion_runtime::process::LimitSupport;

fn limited(name: &str, script: &str, labels: &BTreeMap<String, String>) -> ContainerSpec {
    ContainerSpec {
        name: name.to_owned(),
        image: "/bin/sh".into(),
        command: vec!["-c".into(), script.into()],
        labels: labels.clone(),
        cpu_millicores: 250,
        memory_bytes: 32 << 20,
        ..ContainerSpec::default()
    }
}

/// A tree with the files of a cgroup v2 root offering cpu and memory.
fn fake_cgroup_v2_root() -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    std::fs::write(
        root.path().join("cgroup.controllers"),
        "cpuset cpu io memory pids\n",
    )
    .unwrap();
    std::fs::write(root.path().join("cgroup.subtree_control"), "").unwrap();
    root
}

/// Every task carries CPU and memory requests (validation demands them), so a runtime that
/// refuses limits runs nothing: without cgroup v2 the process must run, unlimited.
#[tokio::test]
async fn limits_are_accepted_and_run_unenforced_without_cgroup_v2() {
    let state = tempfile::tempdir().unwrap();
    let no_cgroups = tempfile::tempdir().unwrap();
    let runtime = ProcessRuntime::new(state.path())
        .unwrap()
        .with_cgroup_root(no_cgroups.path(), "orion-test");
    match runtime.limit_support() {
        LimitSupport::NotEnforced { reason } => {
            assert!(reason.contains("no cgroup v2 hierarchy"), "{reason}");
            assert!(
                reason.contains(&no_cgroups.path().display().to_string()),
                "{reason}"
            );
        }
        other => panic!("an empty directory is no cgroup root: {other:?}"),
    }
    let labels = test_labels("process-unlimited");
    with_cleanup(&runtime, &labels, async {
        let info = runtime
            .create_and_start(&limited("unlimited", "sleep 300", &labels))
            .await
            .expect("a spec with limits runs without cgroup v2");
        assert!(info.status.is_running(), "{:?}", info.status);
        let stats = runtime.stats(&info.id).await.unwrap();
        assert_eq!(stats.memory_limit_bytes, None, "no limit is enforced");
        let done = runtime
            .create_and_start(&limited("done", "exit 0", &labels))
            .await
            .unwrap();
        assert_eq!(wait_for_exit(&runtime, &done.id).await, (0, false));
    })
    .await;
}

#[tokio::test]
async fn limits_go_to_a_cgroup_v2_sub_cgroup_that_is_removed_with_the_process() {
    let state = tempfile::tempdir().unwrap();
    let root = fake_cgroup_v2_root();
    let runtime = ProcessRuntime::new(state.path())
        .unwrap()
        .with_cgroup_root(root.path(), "orion-test");
    let parent = root.path().join("orion-test");
    assert_eq!(
        runtime.limit_support(),
        &LimitSupport::Enforced {
            parent: parent.clone()
        }
    );
    assert_eq!(
        std::fs::read_to_string(root.path().join("cgroup.subtree_control")).unwrap(),
        "+cpu +memory",
        "cpu and memory are enabled for the runtime's parent"
    );
    let labels = test_labels("process-cgroup");
    with_cleanup(&runtime, &labels, async {
        let info = runtime
            .create_and_start(&limited("limited", "sleep 300", &labels))
            .await
            .unwrap();
        let cgroup = parent.join(&info.id);
        let read = |file: &str| std::fs::read_to_string(cgroup.join(file)).unwrap();
        assert_eq!(read("cpu.max"), "25000 100000");
        assert_eq!(read("memory.max"), (32u64 << 20).to_string());
        assert_eq!(
            read("cgroup.procs"),
            info.pid.expect("a running pid").to_string(),
            "the supervisor joined the cgroup (the program is born there)"
        );
        let stats = runtime.stats(&info.id).await.unwrap();
        assert_eq!(stats.memory_limit_bytes, Some(32 << 20));

        let unlimited = ContainerSpec {
            cpu_millicores: 0,
            memory_bytes: 0,
            ..limited("plain", "sleep 300", &labels)
        };
        let plain = runtime.create_and_start(&unlimited).await.unwrap();
        assert!(!parent.join(&plain.id).exists(), "no cgroup without limits");

        runtime.remove(&info.id).await.unwrap();
        assert!(!cgroup.exists(), "the cgroup goes with the process");
    })
    .await;
}

/// What the default runtime says about this host matches the host: enforced exactly when
/// `/sys/fs/cgroup` is a cgroup v2 root with cpu and memory.
#[tokio::test]
async fn the_default_runtime_reports_what_this_host_offers() {
    let state = tempfile::tempdir().unwrap();
    let runtime = ProcessRuntime::new(state.path()).unwrap();
    let controllers = std::fs::read_to_string(Path::new("/sys/fs/cgroup/cgroup.controllers"));
    let v2_with_both = controllers.as_deref().is_ok_and(|c| {
        let c: Vec<&str> = c.split_whitespace().collect();
        c.contains(&"cpu") && c.contains(&"memory")
    });
    match runtime.limit_support() {
        LimitSupport::Enforced { parent } => {
            assert!(
                v2_with_both,
                "enforced on a host without cgroup v2 cpu+memory"
            );
            assert!(parent.starts_with("/sys/fs/cgroup"), "{}", parent.display());
        }
        LimitSupport::NotEnforced { reason } => {
            assert!(!v2_with_both || nix_is_not_root(), "v2 is there: {reason}");
            assert!(reason.contains("/sys/fs/cgroup"), "{reason}");
        }
    }
}

fn nix_is_not_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .map(|u| u.split_whitespace().next() != Some("0"))
        })
        .unwrap_or(true)
}
