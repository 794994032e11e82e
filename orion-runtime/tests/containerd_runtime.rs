//! ContainerdRuntime against the real containerd (namespace `orion-test`), with a busybox image
//! built here. These tests fail, never skip, when containerd is unreachable.

mod containerd_support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use containerd_support::{IMAGE, SAVED_IMAGE, docker_save_tar, runtime, runtime_with_image};
use futures::StreamExt;
use orion_core::Error;
use orion_core::model::spec::{NetworkMode, Protocol};
use orion_core::runtime::{
    ContainerSpec, ContainerStatus, LogLine, LogOptions, LogStream, Mount, PortBinding, Runtime,
    labels,
};
use orion_runtime::containerd::ContainerdRuntime;

/// Upper bound for any wait in these tests.
const PATIENCE: Duration = Duration::from_secs(30);

fn spec(name: &str, command: &[&str]) -> ContainerSpec {
    ContainerSpec {
        name: name.to_string(),
        image: IMAGE.to_string(),
        command: command.iter().map(|s| s.to_string()).collect(),
        network_mode: NetworkMode::None,
        labels: BTreeMap::from([(labels::MANAGED.to_string(), "true".to_string())]),
        ..ContainerSpec::default()
    }
}

/// Removes leftovers of an earlier, interrupted run.
async fn fresh(rt: &ContainerdRuntime, names: &[&str]) {
    for name in names {
        match rt.remove(name).await {
            Ok(()) => {}
            Err(e) if e.is_not_found() => {}
            Err(e) => panic!("cannot clean up {name}: {e}"),
        }
    }
}

async fn wait_exited(rt: &ContainerdRuntime, id: &str) -> ContainerStatus {
    let started = Instant::now();
    loop {
        let status = rt.inspect(id).await.unwrap().status;
        if matches!(status, ContainerStatus::Exited { .. }) {
            return status;
        }
        assert!(
            started.elapsed() < PATIENCE,
            "{id} did not exit: {status:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn all_logs(rt: &ContainerdRuntime, id: &str, options: LogOptions) -> Vec<LogLine> {
    let stream = rt.logs(id, options).await.unwrap();
    tokio::time::timeout(PATIENCE, stream.map(|l| l.unwrap()).collect::<Vec<_>>())
        .await
        .expect("log stream ended")
}

/// Polls the logs until `line` shows up (the logger writes asynchronously).
async fn wait_for_line(rt: &ContainerdRuntime, id: &str, line: &str) -> Vec<LogLine> {
    let started = Instant::now();
    loop {
        let lines = all_logs(rt, id, LogOptions::default()).await;
        if lines
            .iter()
            .any(|l| l.line == line || l.line.starts_with(&format!("{line}:")))
        {
            return lines;
        }
        assert!(
            started.elapsed() < PATIENCE,
            "{line:?} never logged: {lines:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn imports_oci_layout_and_docker_save_and_never_pulls() {
    let state = tempfile::tempdir().unwrap();
    let rt = runtime_with_image(state.path()).await;
    rt.ensure_image(IMAGE).await.unwrap();

    let imported = rt
        .import_image_tar(std::io::Cursor::new(docker_save_tar()), None)
        .await
        .unwrap();
    assert_eq!(imported.len(), 1);
    assert_eq!(imported[0].name, SAVED_IMAGE);
    rt.ensure_image(SAVED_IMAGE).await.unwrap();

    // Re-importing under another name is harmless and reuses the unpacked layers.
    let again = rt
        .import_image_tar(
            std::io::Cursor::new(docker_save_tar()),
            Some("orion-test/renamed:1"),
        )
        .await
        .unwrap();
    assert_eq!(again[0].chain_id, imported[0].chain_id);
    rt.ensure_image("orion-test/renamed:1").await.unwrap();

    let err = rt.ensure_image("orion-test/absent:1").await.unwrap_err();
    match &err {
        Error::ImageUnavailable { image, reason } => {
            assert_eq!(image, "orion-test/absent:1");
            assert!(reason.contains("does not pull"), "{reason}");
        }
        other => panic!("expected ImageUnavailable, got {other:?}"),
    }

    let err = rt
        .import_image_tar(std::io::Cursor::new(b"not a tarball".to_vec()), None)
        .await
        .unwrap_err();
    assert!(
        matches!(err, orion_runtime::RuntimeError::InvalidFields(_)),
        "{err:?}"
    );
    // The same kind of error callers of the Runtime trait see.
    assert!(matches!(Error::from(err), Error::Invalid(_)));
}

#[tokio::test]
async fn lifecycle_exit_codes_and_separate_streams() {
    let state = tempfile::tempdir().unwrap();
    let rt = runtime_with_image(state.path()).await;
    let (short, long) = ("orion-test-exit", "orion-test-sleep");
    fresh(&rt, &[short, long]).await;

    let info = rt
        .create_and_start(&spec(
            short,
            &["sh", "-c", "echo out; echo err >&2; exit 3"],
        ))
        .await
        .unwrap();
    assert_eq!(info.id, short);
    assert_eq!(info.image, IMAGE);
    assert_eq!(
        wait_exited(&rt, short).await,
        ContainerStatus::Exited {
            code: 3,
            oom_killed: false
        }
    );
    wait_for_line(&rt, short, "err").await;
    let lines = all_logs(&rt, short, LogOptions::default()).await;
    assert!(lines.contains(&LogLine {
        stream: LogStream::Stdout,
        line: "out".into()
    }));
    assert!(lines.contains(&LogLine {
        stream: LogStream::Stderr,
        line: "err".into()
    }));

    let info = rt
        .create_and_start(&spec(long, &["sleep", "300"]))
        .await
        .unwrap();
    assert_eq!(info.status, ContainerStatus::Running);
    assert!(info.pid.is_some());
    // PID 1 ignores SIGTERM without a handler, so stop escalates to SIGKILL after the grace.
    rt.stop(long, Duration::from_millis(500)).await.unwrap();
    assert_eq!(
        rt.inspect(long).await.unwrap().status,
        ContainerStatus::Exited {
            code: 137,
            oom_killed: false
        }
    );
    rt.stop(long, Duration::from_millis(500)).await.unwrap();
    rt.stop(short, Duration::from_millis(500)).await.unwrap();

    let err = rt
        .create_and_start(&spec(long, &["true"]))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Conflict(_)), "{err:?}");

    for id in [short, long] {
        rt.remove(id).await.unwrap();
        assert!(rt.inspect(id).await.unwrap_err().is_not_found());
        assert!(rt.remove(id).await.unwrap_err().is_not_found());
        assert!(
            rt.stop(id, Duration::ZERO)
                .await
                .unwrap_err()
                .is_not_found()
        );
    }
}

#[tokio::test]
async fn logs_tail_and_follow_until_exit() {
    let state = tempfile::tempdir().unwrap();
    let rt = runtime_with_image(state.path()).await;
    let id = "orion-test-logs";
    fresh(&rt, &[id]).await;
    let script = "for i in 1 2 3 4 5; do echo line$i; done; \
                  while [ ! -e /tmp/go ]; do sleep 0.05; done; echo late >&2";
    rt.create_and_start(&spec(id, &["sh", "-c", script]))
        .await
        .unwrap();
    wait_for_line(&rt, id, "line5").await;

    let tail = all_logs(
        &rt,
        id,
        LogOptions {
            follow: false,
            tail: Some(2),
            ..LogOptions::default()
        },
    )
    .await;
    let text: Vec<_> = tail.iter().map(|l| l.line.as_str()).collect();
    assert_eq!(text, ["line4", "line5"]);

    let follow = rt
        .logs(
            id,
            LogOptions {
                follow: true,
                tail: Some(1),
                ..LogOptions::default()
            },
        )
        .await
        .unwrap();
    let out = rt
        .exec(id, &["touch".into(), "/tmp/go".into()])
        .await
        .unwrap();
    assert_eq!(out.exit_code, 0);
    let followed: Vec<LogLine> =
        tokio::time::timeout(PATIENCE, follow.map(|l| l.unwrap()).collect::<Vec<_>>())
            .await
            .expect("follow ends when the container exits");
    let expected = [
        LogLine {
            stream: LogStream::Stdout,
            line: "line5".into(),
        },
        LogLine {
            stream: LogStream::Stderr,
            line: "late".into(),
        },
    ];
    assert_eq!(followed, expected);
    // The order across the two streams is kept, so `tail` is the last lines of both.
    let tail = all_logs(
        &rt,
        id,
        LogOptions {
            follow: false,
            tail: Some(2),
            ..LogOptions::default()
        },
    )
    .await;
    assert_eq!(tail, expected);
    rt.remove(id).await.unwrap();
}

#[tokio::test]
async fn exec_reports_output_and_exit_codes() {
    let state = tempfile::tempdir().unwrap();
    let rt = runtime_with_image(state.path()).await;
    let id = "orion-test-exec";
    fresh(&rt, &[id]).await;
    let mut s = spec(id, &["sleep", "300"]);
    s.env = vec!["GREETING=hi".into()];
    rt.create_and_start(&s).await.unwrap();

    let cmd = |parts: &[&str]| parts.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let out = rt
        .exec(
            id,
            &cmd(&[
                "sh",
                "-c",
                "echo $GREETING $ORION_IMAGE; echo oops >&2; exit 4",
            ]),
        )
        .await
        .unwrap();
    assert_eq!(out.exit_code, 4);
    assert_eq!(out.stdout, "hi busybox\n");
    assert_eq!(out.stderr, "oops\n");

    let missing = rt.exec(id, &cmd(&["/no/such/program"])).await.unwrap();
    assert_eq!(missing.exit_code, 127, "{missing:?}");

    rt.stop(id, Duration::ZERO).await.unwrap();
    let err = rt.exec(id, &cmd(&["true"])).await.unwrap_err();
    assert!(matches!(err, Error::Conflict(_)), "{err:?}");
    rt.remove(id).await.unwrap();
}

#[tokio::test]
async fn stats_report_limits_and_usage() {
    let state = tempfile::tempdir().unwrap();
    let rt = runtime_with_image(state.path()).await;
    let id = "orion-test-stats";
    fresh(&rt, &[id]).await;
    let mut s = spec(id, &["sh", "-c", "while :; do :; done"]);
    s.cpu_millicores = 500;
    s.memory_bytes = 64 << 20;
    rt.create_and_start(&s).await.unwrap();

    let stats = rt.stats(id).await.unwrap();
    assert_eq!(stats.memory_limit_bytes, Some(64 << 20));
    assert!(stats.memory_bytes > 0, "{stats:?}");
    assert!(stats.cpu_percent > 0.0, "{stats:?}");

    rt.stop(id, Duration::ZERO).await.unwrap();
    let stopped = rt.stats(id).await.unwrap();
    assert_eq!(stopped.cpu_percent, 0.0);
    rt.remove(id).await.unwrap();
    assert!(rt.stats(id).await.unwrap_err().is_not_found());
}

#[tokio::test]
async fn volumes_bind_mounts_and_network_none() {
    let state = tempfile::tempdir().unwrap();
    let rt = runtime_with_image(state.path()).await;
    let (writer, reader) = ("orion-test-vol-w", "orion-test-vol-r");
    fresh(&rt, &[writer, reader]).await;
    let host_dir = tempfile::tempdir().unwrap();
    std::fs::write(host_dir.path().join("hello"), "from host\n").unwrap();
    let bind_ro = Mount {
        source: host_dir.path().to_string_lossy().into_owned(),
        target: "/host".into(),
        read_only: true,
    };
    let volume = Mount {
        source: "orion-test-volume".into(),
        target: "/data".into(),
        read_only: false,
    };

    let mut w = spec(
        writer,
        &[
            "sh",
            "-c",
            "cat /host/hello > /data/copy && ! touch /host/denied && cat /proc/net/dev",
        ],
    );
    w.mounts = vec![bind_ro.clone(), volume.clone()];
    rt.create_and_start(&w).await.unwrap();
    assert!(matches!(
        wait_exited(&rt, writer).await,
        ContainerStatus::Exited { code: 0, .. }
    ));
    assert!(!host_dir.path().join("denied").exists());
    // network none: only the loopback interface (the `lo:` line of /proc/net/dev).
    let lines = wait_for_line(&rt, writer, "    lo").await;
    assert!(
        lines
            .iter()
            .any(|l| l.stream == LogStream::Stderr && l.line.contains("Read-only file system")),
        "{lines:?}"
    );
    let interfaces: Vec<_> = lines
        .iter()
        .filter(|l| l.stream == LogStream::Stdout)
        .filter_map(|l| {
            l.line
                .split_once(':')
                .map(|(name, _)| name.trim().to_string())
        })
        .filter(|name| !name.contains('|') && !name.is_empty())
        .collect();
    assert_eq!(interfaces, ["lo"], "{lines:?}");

    let mut r = spec(reader, &["cat", "/data/copy"]);
    r.mounts = vec![volume];
    rt.create_and_start(&r).await.unwrap();
    wait_exited(&rt, reader).await;
    wait_for_line(&rt, reader, "from host").await;

    for id in [writer, reader] {
        rt.remove(id).await.unwrap();
    }
}

#[tokio::test]
async fn list_finds_containers_after_the_runtime_is_recreated() {
    let state = tempfile::tempdir().unwrap();
    let names = ["orion-test-list-a", "orion-test-list-b"];
    let service = format!("svc-{}", std::process::id());
    {
        let rt = runtime_with_image(state.path()).await;
        fresh(&rt, &names).await;
        for (i, name) in names.iter().enumerate() {
            let mut s = spec(name, &["sleep", "300"]);
            s.labels.insert(labels::SERVICE.into(), service.clone());
            s.labels.insert(labels::TASK.into(), format!("task-{i}"));
            rt.create_and_start(&s).await.unwrap();
        }
    }
    let rt = runtime(state.path()).await;
    let by_service = BTreeMap::from([(labels::SERVICE.to_string(), service.clone())]);
    let found = rt.list(&by_service).await.unwrap();
    let ids: Vec<_> = found.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, names);
    assert!(found.iter().all(|c| c.status.is_running()));

    let mut by_task = by_service.clone();
    by_task.insert(labels::TASK.into(), "task-1".into());
    let found = rt.list(&by_task).await.unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].id, names[1]);
    assert_eq!(found[0].labels[labels::TASK], "task-1");

    for name in names {
        rt.remove(name).await.unwrap();
    }
    assert!(rt.list(&by_service).await.unwrap().is_empty());
}

#[tokio::test]
async fn failures_leave_nothing_behind() {
    let state = tempfile::tempdir().unwrap();
    let rt = runtime_with_image(state.path()).await;
    let id = "orion-test-fail";
    fresh(&rt, &[id]).await;

    let mut bad_image = spec(id, &["true"]);
    bad_image.image = "orion-test/not-imported:1".into();
    let err = rt.create_and_start(&bad_image).await.unwrap_err();
    assert!(matches!(err, Error::ImageUnavailable { .. }), "{err:?}");
    assert!(rt.inspect(id).await.unwrap_err().is_not_found());

    let err = rt
        .create_and_start(&spec(id, &["/no/such/program"]))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Invalid(_)), "{err:?}");
    assert!(err.to_string().contains("command"), "{err}");
    assert!(rt.inspect(id).await.unwrap_err().is_not_found());
    assert!(!state.path().join("containers").join(id).exists());

    let mut bridge = spec(id, &["true"]);
    bridge.network_mode = NetworkMode::Bridge;
    let err = rt.create_and_start(&bridge).await.unwrap_err();
    assert!(matches!(err, Error::Unsupported { .. }), "{err:?}");

    let mut ports = spec(id, &["true"]);
    ports.network_mode = NetworkMode::Host;
    ports.ports = vec![PortBinding {
        container_port: 80,
        host_port: 0,
        protocol: Protocol::Tcp,
        host_ip: "127.0.0.1".into(),
    }];
    let err = rt.create_and_start(&ports).await.unwrap_err();
    assert!(err.to_string().contains("port publishing"), "{err}");

    let mut bad_mount = spec(id, &["true"]);
    bad_mount.mounts = vec![Mount {
        source: "/no/such/host/dir".into(),
        target: "/x".into(),
        read_only: false,
    }];
    let err = rt.create_and_start(&bad_mount).await.unwrap_err();
    assert!(err.to_string().contains("mounts[0].source"), "{err}");
    assert!(rt.inspect(id).await.unwrap_err().is_not_found());
}

#[tokio::test]
async fn twenty_concurrent_containers() {
    let state = tempfile::tempdir().unwrap();
    let rt = runtime_with_image(state.path()).await;
    let names: Vec<String> = (0..20).map(|i| format!("orion-test-many-{i:02}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    fresh(&rt, &refs).await;
    let group = format!("many-{}", std::process::id());

    let started = futures::future::join_all(names.iter().map(|name| {
        let mut s = spec(name, &["sleep", "300"]);
        s.labels.insert(labels::SERVICE.into(), group.clone());
        let rt = rt.clone();
        async move { rt.create_and_start(&s).await }
    }))
    .await;
    for (name, result) in names.iter().zip(started) {
        let info = result.unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(info.status.is_running(), "{name}: {:?}", info.status);
    }
    let filter = BTreeMap::from([(labels::SERVICE.to_string(), group)]);
    assert_eq!(rt.list(&filter).await.unwrap().len(), 20);

    let removed = futures::future::join_all(names.iter().map(|name| rt.remove(name))).await;
    for (name, result) in names.iter().zip(removed) {
        result.unwrap_or_else(|e| panic!("remove {name}: {e}"));
    }
    assert!(rt.list(&filter).await.unwrap().is_empty());
}

#[tokio::test]
async fn oom_kill_is_reported() {
    let state = tempfile::tempdir().unwrap();
    let rt = runtime_with_image(state.path()).await;
    let (hog, killed) = ("orion-test-oom", "orion-test-killed");
    fresh(&rt, &[hog, killed]).await;
    // The string doubles until the 16 MiB limit is hit.
    let mut s = spec(hog, &["sh", "-c", "x=0123456789; while :; do x=$x$x; done"]);
    s.memory_bytes = 16 << 20;
    rt.create_and_start(&s).await.unwrap();
    assert_eq!(
        wait_exited(&rt, hog).await,
        ContainerStatus::Exited {
            code: 137,
            oom_killed: true
        }
    );
    // A plain SIGKILL (exit 137 too) is not an OOM kill.
    rt.create_and_start(&spec(killed, &["sleep", "300"]))
        .await
        .unwrap();
    rt.stop(killed, Duration::ZERO).await.unwrap();
    assert_eq!(
        rt.inspect(killed).await.unwrap().status,
        ContainerStatus::Exited {
            code: 137,
            oom_killed: false
        }
    );
    for id in [hog, killed] {
        rt.remove(id).await.unwrap();
    }
}

/// `GET /` over loopback; `None` until something answers.
fn http_get(port: u16) -> Option<String> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    stream.write_all(b"GET /index.html HTTP/1.0\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    Some(response)
}

#[tokio::test]
async fn host_network_serves_on_loopback() {
    let state = tempfile::tempdir().unwrap();
    let rt = runtime_with_image(state.path()).await;
    let id = "orion-test-host-net";
    fresh(&rt, &[id]).await;
    let www = tempfile::tempdir().unwrap();
    std::fs::write(www.path().join("index.html"), "hello from containerd\n").unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen = format!("127.0.0.1:{port}");
    let mut s = spec(id, &["httpd", "-f", "-p", &listen, "-h", "/www"]);
    s.network_mode = NetworkMode::Host;
    s.mounts = vec![Mount {
        source: www.path().to_string_lossy().into_owned(),
        target: "/www".into(),
        read_only: true,
    }];
    let info = rt.create_and_start(&s).await.unwrap();
    assert!(info.status.is_running(), "{:?}", info.status);
    assert!(info.ports.is_empty());

    let started = Instant::now();
    let response = loop {
        if let Some(r) = tokio::task::spawn_blocking(move || http_get(port))
            .await
            .unwrap()
        {
            break r;
        }
        assert!(
            started.elapsed() < PATIENCE,
            "httpd never answered on {listen}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.ends_with("hello from containerd\n"), "{response}");
    rt.remove(id).await.unwrap();
}

#[tokio::test]
async fn same_name_twice_at_once_gives_one_container_and_one_conflict() {
    let state = tempfile::tempdir().unwrap();
    let rt = runtime_with_image(state.path()).await;
    let id = "orion-test-race";
    fresh(&rt, &[id]).await;
    let s = spec(id, &["sh", "-c", "echo ready; sleep 300"]);
    let (a, b) = tokio::join!(rt.create_and_start(&s), rt.create_and_start(&s));
    let (ok, conflict) = match (a, b) {
        (Ok(info), Err(e)) | (Err(e), Ok(info)) => (info, e),
        other => panic!("expected one success and one conflict, got {other:?}"),
    };
    assert!(matches!(conflict, Error::Conflict(_)), "{conflict:?}");
    assert!(ok.status.is_running());
    // The loser did not touch the winner's files: its output still arrives.
    wait_for_line(&rt, id, "ready").await;
    rt.remove(id).await.unwrap();
}

#[tokio::test]
async fn another_snapshotter_unpacks_an_imported_image_on_first_use() {
    let state = tempfile::tempdir().unwrap();
    // Imported (and unpacked) with overlayfs...
    runtime_with_image(state.path()).await;
    // ...then used through the native snapshotter, which unpacks it again from the content store.
    let rt = ContainerdRuntime::connect(orion_runtime::containerd::ContainerdConfig {
        namespace: containerd_support::NAMESPACE.into(),
        snapshotter: "native".into(),
        state_dir: state.path().to_path_buf(),
        ..Default::default()
    })
    .await
    .unwrap();
    let id = "orion-test-native";
    fresh(&rt, &[id]).await;
    rt.ensure_image(IMAGE).await.unwrap();
    rt.create_and_start(&spec(id, &["echo", "native rootfs"]))
        .await
        .unwrap();
    assert!(matches!(
        wait_exited(&rt, id).await,
        ContainerStatus::Exited { code: 0, .. }
    ));
    wait_for_line(&rt, id, "native rootfs").await;
    rt.remove(id).await.unwrap();
}
