//! ProcessRuntime behaviour beyond the shared suite: env and ports in the environment, working
//! directory, what is Unsupported, SIGKILL after the grace period, exit codes and the pid-reuse
//! guard across a recreated runtime, names, ids.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::StreamExt;
use orion_core::Error;
use orion_core::model::spec::{NetworkMode, Protocol};
use orion_core::runtime::{
    ContainerSpec, ContainerStatus, LogOptions, LogStream, Mount, PortBinding, Runtime,
};
use orion_core::testing::runtime::{test_labels, wait_for_exit, with_cleanup};
use orion_runtime::ProcessRuntime;

fn sh(name: &str, script: &str, labels: &BTreeMap<String, String>) -> ContainerSpec {
    ContainerSpec {
        name: name.to_owned(),
        image: "/bin/sh".into(),
        command: vec!["-c".into(), script.into()],
        labels: labels.clone(),
        ..ContainerSpec::default()
    }
}

async fn stdout_of(runtime: &ProcessRuntime, id: &str) -> Vec<String> {
    let lines: Vec<_> = runtime
        .logs(id, LogOptions::default())
        .await
        .unwrap()
        .collect()
        .await;
    lines
        .into_iter()
        .map(|l| l.unwrap())
        .filter(|l| l.stream == LogStream::Stdout)
        .map(|l| l.line)
        .collect()
}

#[tokio::test]
async fn env_ports_and_workdir_reach_the_program() {
    let state = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let runtime = ProcessRuntime::new(state.path()).unwrap();
    let labels = test_labels("process-env");
    with_cleanup(&runtime, &labels, async {
        let mut spec = sh(
            "env",
            "echo $GREETING; echo $PORT $ORION_PORT_8080; pwd",
            &labels,
        );
        spec.env = vec!["GREETING=hi there".into()];
        spec.workdir = work.path().display().to_string();
        spec.ports = vec![PortBinding {
            container_port: 8080,
            host_port: 18080,
            protocol: Protocol::Tcp,
            host_ip: "127.0.0.1".into(),
        }];
        let info = runtime.create_and_start(&spec).await.unwrap();
        assert_eq!(info.ports[0].host_port, 18080);
        assert_eq!(wait_for_exit(&runtime, &info.id).await, (0, false));
        let canonical = work.path().canonicalize().unwrap();
        assert_eq!(
            stdout_of(&runtime, &info.id).await,
            [
                "hi there".to_owned(),
                "18080 18080".to_owned(),
                canonical.display().to_string()
            ]
        );
    })
    .await;
}

#[tokio::test]
async fn what_a_host_process_cannot_do_is_unsupported_not_ignored() {
    let state = tempfile::tempdir().unwrap();
    // No cgroup v2 there: limits cannot be enforced, and this runtime requires them.
    let no_cgroups = tempfile::tempdir().unwrap();
    let runtime = ProcessRuntime::new(state.path())
        .unwrap()
        .with_cgroup_root(no_cgroups.path(), "orion-test")
        .require_resource_limits(true);
    let labels = test_labels("process-unsupported");
    with_cleanup(&runtime, &labels, async {
        let base = sh("u", "exit 0", &labels);
        let cases: Vec<(&str, ContainerSpec)> = vec![
            (
                "mounts",
                ContainerSpec {
                    mounts: vec![Mount {
                        source: "/srv".into(),
                        target: "/data".into(),
                        read_only: true,
                    }],
                    ..base.clone()
                },
            ),
            (
                "network",
                ContainerSpec {
                    network_mode: NetworkMode::None,
                    ..base.clone()
                },
            ),
            (
                "network",
                ContainerSpec {
                    network: Some("backend".into()),
                    ..base.clone()
                },
            ),
            (
                "dns",
                ContainerSpec {
                    dns: vec!["1.1.1.1".into()],
                    ..base.clone()
                },
            ),
            (
                "limits",
                ContainerSpec {
                    memory_bytes: 64 << 20,
                    ..base.clone()
                },
            ),
        ];
        for (feature, spec) in cases {
            match runtime.create_and_start(&spec).await {
                Err(Error::Unsupported {
                    backend,
                    feature: f,
                    ..
                }) => {
                    assert_eq!(backend, "process");
                    assert!(f.to_lowercase().contains(feature), "{f} names {feature}");
                }
                other => panic!("{feature}: expected Unsupported, got {other:?}"),
            }
        }
        let bad_env = ContainerSpec {
            env: vec!["NOEQUALS".into()],
            ..base.clone()
        };
        let err = runtime.create_and_start(&bad_env).await.unwrap_err();
        assert!(
            matches!(err, Error::Invalid(_)) && err.to_string().contains("KEY=value"),
            "{err}"
        );
        assert!(runtime.list(&labels).await.unwrap().is_empty());

        let lenient = ProcessRuntime::new(state.path())
            .unwrap()
            .with_cgroup_root(no_cgroups.path(), "orion-test");
        let limited = ContainerSpec {
            memory_bytes: 64 << 20,
            cpu_millicores: 100,
            ..base
        };
        let info = lenient.create_and_start(&limited).await.unwrap();
        assert_eq!(wait_for_exit(&lenient, &info.id).await, (0, false));
    })
    .await;
}

#[tokio::test]
async fn a_program_ignoring_sigterm_is_killed_after_the_grace_period() {
    let state = tempfile::tempdir().unwrap();
    let runtime = ProcessRuntime::new(state.path()).unwrap();
    let labels = test_labels("process-sigkill");
    with_cleanup(&runtime, &labels, async {
        let info = runtime
            .create_and_start(&sh(
                "stubborn",
                "trap '' TERM; echo ready; sleep 300",
                &labels,
            ))
            .await
            .unwrap();
        // Stop only once the trap is set, or SIGTERM would arrive first.
        for _ in 0..300 {
            if stdout_of(&runtime, &info.id).await == ["ready"] {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(stdout_of(&runtime, &info.id).await, ["ready"]);
        runtime
            .stop(&info.id, Duration::from_millis(300))
            .await
            .unwrap();
        assert_eq!(
            runtime.inspect(&info.id).await.unwrap().status,
            ContainerStatus::Exited {
                code: 137,
                oom_killed: false
            }
        );
        let polite = runtime
            .create_and_start(&sh("polite", "sleep 300", &labels))
            .await
            .unwrap();
        runtime
            .stop(&polite.id, Duration::from_secs(10))
            .await
            .unwrap();
        assert_eq!(
            runtime.inspect(&polite.id).await.unwrap().status,
            ContainerStatus::Exited {
                code: 143,
                oom_killed: false
            },
            "SIGTERM reached the program, and the supervisor recorded its code"
        );
    })
    .await;
}

#[tokio::test]
async fn exit_code_is_known_to_a_recreated_runtime_and_pid_reuse_is_detected() {
    let state = tempfile::tempdir().unwrap();
    let labels = test_labels("process-restart");
    let first = ProcessRuntime::new(state.path()).unwrap();
    let exits = first
        .create_and_start(&sh("exits", "sleep 0.3; exit 5", &labels))
        .await
        .unwrap();
    let runs = first
        .create_and_start(&sh("runs", "sleep 300", &labels))
        .await
        .unwrap();
    drop(first);

    let second = ProcessRuntime::new(state.path()).unwrap();
    with_cleanup(&second, &labels, async {
        assert_eq!(wait_for_exit(&second, &exits.id).await, (5, false));

        // Pretend the pid now belongs to another process: same pid, another start time.
        let record_path = state.path().join(&runs.id).join("record.json");
        let original = std::fs::read_to_string(&record_path).unwrap();
        let mut record: serde_json::Value = serde_json::from_str(&original).unwrap();
        let ticks = record["start_ticks"].as_u64().unwrap();
        record["start_ticks"] = (ticks + 1).into();
        std::fs::write(&record_path, record.to_string()).unwrap();
        let status = second.inspect(&runs.id).await.unwrap().status;
        assert!(
            !status.is_running(),
            "a pid with another start time is not ours: {status:?}"
        );
        std::fs::write(&record_path, original).unwrap();
        assert!(second.inspect(&runs.id).await.unwrap().status.is_running());
    })
    .await;
}

#[tokio::test]
async fn names_are_unique_and_foreign_ids_are_not_found() {
    let state = tempfile::tempdir().unwrap();
    let runtime = ProcessRuntime::new(state.path()).unwrap();
    let labels = test_labels("process-names");
    with_cleanup(&runtime, &labels, async {
        let spec = sh("only-one", "sleep 300", &labels);
        runtime.create_and_start(&spec).await.unwrap();
        let err = runtime.create_and_start(&spec).await.unwrap_err();
        assert!(matches!(err, Error::Conflict(_)), "{err}");
        for id in ["", "..", "../etc", "nope"] {
            assert!(
                runtime.inspect(id).await.unwrap_err().is_not_found(),
                "{id:?}"
            );
        }
        let err = runtime.ensure_image("relative/prog").await.unwrap_err();
        assert!(err.to_string().contains("absolute"), "{err}");
    })
    .await;
}
