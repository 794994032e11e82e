//! DockerRuntime behaviour beyond the shared suite: env, workdir, mounts, hosts, dns, limits,
//! network modes, fixed ports, OOM, name conflicts. Needs the real engine (fails without it).

use std::collections::BTreeMap;
use std::time::Duration;

use orion_core::Error;
use orion_core::model::spec::{NetworkMode, Protocol};
use orion_core::runtime::{ContainerStatus, Mount, PortBinding, Runtime};
use orion_core::testing::runtime::{
    assert_http_answers, test_labels, wait_for_exit, wait_for_exit_within, with_cleanup,
};
use orion_runtime::DockerRuntime;
use orion_runtime::testing::{ensure_test_image, http_server_spec, require_docker, shell_spec};

async fn runtime() -> DockerRuntime {
    ensure_test_image()
        .await
        .expect("the busybox test image loads");
    DockerRuntime::from_client(require_docker().await)
}

fn name(labels: &BTreeMap<String, String>, i: usize) -> String {
    format!("orion-df-{}-{i}", labels["io.orion.conformance"])
}

async fn exec_out(runtime: &DockerRuntime, id: &str, script: &str) -> (i64, String) {
    let out = runtime
        .exec(id, &["sh".into(), "-c".into(), script.into()])
        .await
        .unwrap();
    (out.exit_code, out.stdout)
}

#[tokio::test]
async fn env_workdir_mounts_hosts_and_dns_reach_the_container() {
    let runtime = runtime().await;
    let labels = test_labels("docker-config");
    let host_dir = tempfile::tempdir().unwrap();
    std::fs::write(host_dir.path().join("hello.txt"), "from the host\n").unwrap();
    let volume = format!("orion-df-vol-{}", labels["io.orion.conformance"]);
    with_cleanup(&runtime, &labels, async {
        let mut spec = shell_spec(&name(&labels, 0), "sleep 300", &labels);
        spec.env = vec!["GREETING=hi there".into()];
        spec.workdir = "/tmp".into();
        spec.mounts = vec![
            Mount {
                source: host_dir.path().display().to_string(),
                target: "/host".into(),
                read_only: true,
            },
            Mount {
                source: volume.clone(),
                target: "/data".into(),
                read_only: false,
            },
        ];
        spec.extra_hosts = vec!["orion-peer:10.1.2.3".into()];
        spec.dns = vec!["127.0.0.53".into()];
        let info = runtime.create_and_start(&spec).await.unwrap();
        let id = info.id.as_str();

        assert_eq!(
            exec_out(&runtime, id, "echo $GREETING").await,
            (0, "hi there\n".into())
        );
        assert_eq!(exec_out(&runtime, id, "pwd").await, (0, "/tmp\n".into()));
        assert_eq!(
            exec_out(&runtime, id, "cat /host/hello.txt").await,
            (0, "from the host\n".into())
        );
        let (code, _) = exec_out(&runtime, id, "echo x > /host/new.txt").await;
        assert_ne!(code, 0, "a read-only bind mount refuses writes");
        assert_eq!(
            exec_out(&runtime, id, "echo kept > /data/f && cat /data/f").await,
            (0, "kept\n".into())
        );
        let (_, hosts) = exec_out(&runtime, id, "cat /etc/hosts").await;
        assert!(
            hosts.contains("10.1.2.3\torion-peer") || hosts.contains("10.1.2.3 orion-peer"),
            "{hosts}"
        );
        let (_, resolv) = exec_out(&runtime, id, "cat /etc/resolv.conf").await;
        assert!(resolv.contains("nameserver 127.0.0.53"), "{resolv}");
    })
    .await;
    let _ = runtime
        .client()
        .remove_volume(
            &volume,
            None::<bollard::query_parameters::RemoveVolumeOptions>,
        )
        .await;
}

#[tokio::test]
async fn a_cpu_reservation_without_a_cap_sets_shares_and_no_quota() {
    let runtime = runtime().await;
    let labels = test_labels("docker-cpu-shares");
    with_cleanup(&runtime, &labels, async {
        let mut spec = shell_spec(&name(&labels, 0), "sleep 300", &labels);
        spec.cpu_millicores = 0;
        spec.cpu_reserved_millicores = 250;
        let info = runtime.create_and_start(&spec).await.unwrap();
        let host = runtime
            .client()
            .inspect_container(&info.id, None)
            .await
            .unwrap()
            .host_config
            .unwrap();
        assert_eq!(host.nano_cpus.unwrap_or(0), 0, "no CFS quota");
        assert_eq!(host.cpu_quota.unwrap_or(0), 0, "no CFS quota");
        assert_eq!(host.cpu_shares, Some(256), "weighted by its reservation");
    })
    .await;
}

#[tokio::test]
async fn cpu_and_memory_limits_are_set_and_the_oom_killer_is_reported() {
    let runtime = runtime().await;
    let labels = test_labels("docker-limits");
    with_cleanup(&runtime, &labels, async {
        let mut spec = shell_spec(&name(&labels, 0), "sleep 300", &labels);
        spec.cpu_millicores = 250;
        spec.memory_bytes = 32 << 20;
        let info = runtime.create_and_start(&spec).await.unwrap();
        let inspect = runtime
            .client()
            .inspect_container(&info.id, None)
            .await
            .unwrap();
        let host = inspect.host_config.unwrap();
        assert_eq!(host.nano_cpus, Some(250_000_000));
        assert_eq!(host.memory, Some(32 << 20));
        let stats = runtime.stats(&info.id).await.unwrap();
        assert_eq!(stats.memory_limit_bytes, Some(32 << 20));

        // A line of zeros with no newline: `tail` buffers all of it until the OOM killer ends it.
        // The shell then lives 2 s more and exits with tail's status: with cgroup v1 the shim
        // reports the OOM event from the container's cgroup, and a container that ended at
        // once could remove that cgroup before the event was read (the engine then never set
        // `OOMKilled`: 1 run in about 40 under load).
        let mut hog = shell_spec(
            &name(&labels, 1),
            "head -c 200000000 /dev/zero | tail; status=$?; sleep 2; exit $status",
            &labels,
        );
        hog.memory_bytes = 16 << 20;
        let hog = runtime.create_and_start(&hog).await.unwrap();
        // The hog is usually OOM-killed within a second, but on a loaded host it took over 30 s
        // in 7 runs of 40 (89 s at worst, load 12-19 on 2 cores; docs/runtimes.md), past the
        // suite's usual 30 s bound.
        let (code, _) = wait_for_exit_within(&runtime, &hog.id, OOM_KILL_WAIT).await;
        assert_eq!(code, 137, "the OOM killer's SIGKILL");
        // The engine sets `OOMKilled` from the shim's OOM event, which it handles apart from
        // the exit event and which can arrive after it (more often under load): an inspect
        // right after the exit may not show it yet. Wait for it, bounded.
        assert!(
            oom_flag_set(&runtime, &hog.id).await,
            "exit 137 without OOMKilled after {OOM_FLAG_WAIT:?}"
        );
    })
    .await;
}

/// The bound on the hog's OOM kill (a guard against hanging, not a timing assertion).
const OOM_KILL_WAIT: Duration = Duration::from_secs(300);

/// How long the OOM flag may lag behind the exit before the test fails.
const OOM_FLAG_WAIT: Duration = Duration::from_secs(10);

/// Polls `inspect` (bounded by [`OOM_FLAG_WAIT`]) until the exited container reports
/// `oom_killed`; false if it never does.
async fn oom_flag_set(runtime: &DockerRuntime, id: &str) -> bool {
    let deadline = tokio::time::Instant::now() + OOM_FLAG_WAIT;
    loop {
        let status = runtime.inspect(id).await.unwrap().status;
        if matches!(
            status,
            ContainerStatus::Exited {
                oom_killed: true,
                ..
            }
        ) {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn network_modes_and_ports_that_would_be_ignored() {
    let runtime = runtime().await;
    let labels = test_labels("docker-net");
    with_cleanup(&runtime, &labels, async {
        let mut none = shell_spec(&name(&labels, 0), "sleep 300", &labels);
        none.network_mode = NetworkMode::None;
        let info = runtime.create_and_start(&none).await.unwrap();
        let (_, links) = exec_out(&runtime, &info.id, "ls /sys/class/net").await;
        assert_eq!(links.split_whitespace().collect::<Vec<_>>(), ["lo"]);

        let mut host_with_ports = http_server_spec(&name(&labels, 1), &labels);
        host_with_ports.network_mode = NetworkMode::Host;
        let err = runtime
            .create_and_start(&host_with_ports)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Invalid(_)), "{err}");
        assert!(err.to_string().contains("ports"), "{err}");
    })
    .await;
}

#[tokio::test]
async fn fixed_host_port_is_published_as_asked() {
    let runtime = runtime().await;
    let labels = test_labels("docker-fixed-port");
    with_cleanup(&runtime, &labels, async {
        let free = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut spec = http_server_spec(&name(&labels, 0), &labels);
        spec.ports = vec![PortBinding {
            container_port: 8080,
            host_port: free,
            protocol: Protocol::Tcp,
            host_ip: "127.0.0.1".into(),
        }];
        let info = runtime.create_and_start(&spec).await.unwrap();
        assert_eq!(info.ports.len(), 1);
        assert_eq!(info.ports[0].host_port, free);
        assert_http_answers(free).await;
    })
    .await;
}

#[tokio::test]
async fn a_taken_name_is_a_conflict_and_unknown_ids_are_not_found() {
    let runtime = runtime().await;
    let labels = test_labels("docker-names");
    with_cleanup(&runtime, &labels, async {
        let spec = shell_spec(&name(&labels, 0), "sleep 300", &labels);
        runtime.create_and_start(&spec).await.unwrap();
        let err = runtime.create_and_start(&spec).await.unwrap_err();
        assert!(matches!(err, Error::Conflict(_)), "{err}");
        assert_eq!(runtime.list(&labels).await.unwrap().len(), 1);

        let missing = "orion-no-such-container";
        assert!(runtime.inspect(missing).await.unwrap_err().is_not_found());
        assert!(
            runtime
                .stop(missing, Duration::from_secs(1))
                .await
                .unwrap_err()
                .is_not_found()
        );
        assert!(runtime.stats(missing).await.unwrap_err().is_not_found());
        assert!(
            runtime
                .logs(missing, Default::default())
                .await
                .err()
                .unwrap()
                .is_not_found()
        );
    })
    .await;
}

#[tokio::test]
async fn exit_status_is_read_back_by_list() {
    let runtime = runtime().await;
    let labels = test_labels("docker-list-status");
    with_cleanup(&runtime, &labels, async {
        let spec = shell_spec(&name(&labels, 0), "exit 7", &labels);
        let info = runtime.create_and_start(&spec).await.unwrap();
        wait_for_exit(&runtime, &info.id).await;
        let listed = runtime.list(&labels).await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(
            listed[0].status,
            ContainerStatus::Exited {
                code: 7,
                oom_killed: false
            }
        );
        assert_eq!(listed[0].image, orion_runtime::testing::TEST_IMAGE);
    })
    .await;
}

#[tokio::test]
async fn running_containers_are_listed_as_inspected_and_exits_are_fed() {
    use futures::StreamExt;
    let runtime = runtime().await;
    let labels = test_labels("docker-exit-feed");
    let others = test_labels("docker-exit-feed-others");
    with_cleanup(&runtime, &others, async {
        with_cleanup(&runtime, &labels, async {
            let mut exits = runtime.watch_exits(&labels).await.unwrap();
            let served = http_server_spec(&name(&labels, 0), &labels);
            let a = runtime.create_and_start(&served).await.unwrap();
            let slept = shell_spec(&name(&labels, 1), "sleep 300", &labels);
            let b = runtime.create_and_start(&slept).await.unwrap();
            let not_ours = shell_spec(&name(&others, 2), "sleep 300", &others);
            let o = runtime.create_and_start(&not_ours).await.unwrap();

            // Running containers come from the engine's list alone: the same as an inspect,
            // except the process id, which the list does not carry.
            let listed = runtime.list(&labels).await.unwrap();
            assert_eq!(listed.len(), 2);
            for c in [&a, &b] {
                let mut inspected = runtime.inspect(&c.id).await.unwrap();
                inspected.pid = None;
                let from_list = listed.iter().find(|l| l.id == c.id).expect("listed");
                assert_eq!(*from_list, inspected);
            }
            assert_eq!(listed.iter().find(|l| l.id == a.id).unwrap().ports.len(), 1);

            // Exits of containers with other labels are not fed; this one's is, by id.
            runtime.stop(&o.id, Duration::ZERO).await.unwrap();
            runtime.stop(&b.id, Duration::ZERO).await.unwrap();
            let fed = tokio::time::timeout(Duration::from_secs(30), exits.next())
                .await
                .expect("an exit fed within 30 s")
                .expect("the feed is open")
                .unwrap();
            assert_eq!(fed, b.id);
        })
        .await;
    })
    .await;
}
