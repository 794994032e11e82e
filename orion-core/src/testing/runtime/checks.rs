//! The checks of the runtime suite, one `pub async fn` per behaviour (re-exported by the parent).

use std::future::Future;
use std::time::Duration;

use super::{
    PortSupport, RuntimeFixture, assert_http_answers, collect_logs, container_name, of_stream,
    start, test_labels, wait_for_exit, with_cleanup,
};
use crate::Error;
use crate::model::spec::{NetworkMode, Protocol};
use crate::runtime::{
    ContainerInfo, ContainerSpec, ContainerStatus, LogOptions, LogStream, PortBinding, Runtime,
};

pub async fn lifecycle<R: Runtime>(runtime: &R, fixture: &RuntimeFixture) {
    let labels = test_labels("lifecycle");
    with_cleanup(runtime, &labels, async {
        let spec = fixture.script_spec(&container_name(&labels, 0), "sleep 300", &labels);
        let info = start(runtime, &spec).await;
        assert!(!info.id.is_empty());
        assert_eq!(info.name, spec.name);
        assert_eq!(info.status, ContainerStatus::Running);
        for (k, v) in &labels {
            assert_eq!(info.labels.get(k), Some(v), "label {k} on the container");
        }
        let inspected = runtime.inspect(&info.id).await.unwrap();
        assert!(inspected.status.is_running(), "{:?}", inspected.status);
        let listed = runtime.list(&labels).await.unwrap();
        assert_eq!(ids(&listed), vec![info.id.clone()]);

        runtime
            .stop(&info.id, Duration::from_secs(1))
            .await
            .unwrap();
        let stopped = runtime.inspect(&info.id).await.unwrap();
        assert!(
            matches!(stopped.status, ContainerStatus::Exited { .. }),
            "after stop: {:?}",
            stopped.status
        );
        runtime.remove(&info.id).await.unwrap();
        assert!(runtime.inspect(&info.id).await.unwrap_err().is_not_found());
        assert!(runtime.remove(&info.id).await.unwrap_err().is_not_found());
        assert!(runtime.list(&labels).await.unwrap().is_empty());
    })
    .await;
}

/// Exit codes 0 and 3 are reported as such, without OOM.
pub async fn exit_codes<R: Runtime>(runtime: &R, fixture: &RuntimeFixture) {
    let labels = test_labels("exit-codes");
    with_cleanup(runtime, &labels, async {
        for (i, code) in [0_i64, 3].into_iter().enumerate() {
            let name = container_name(&labels, i);
            let info = start(
                runtime,
                &fixture.script_spec(&name, &format!("exit {code}"), &labels),
            )
            .await;
            assert_eq!(wait_for_exit(runtime, &info.id).await, (code, false));
        }
    })
    .await;
}

/// stdout and stderr are told apart; `tail` keeps the last lines; `follow` ends at exit;
/// `timestamps` and `since` work or are refused as `Unsupported`.
pub async fn logs<R: Runtime>(runtime: &R, fixture: &RuntimeFixture) {
    let labels = test_labels("logs");
    with_cleanup(runtime, &labels, async {
        let script = "echo out-1; echo err-1 >&2; echo out-2; echo out-3";
        let info = start(
            runtime,
            &fixture.script_spec(&container_name(&labels, 0), script, &labels),
        )
        .await;
        wait_for_exit(runtime, &info.id).await;
        let all = collect_logs(runtime, &info.id, LogOptions::default()).await;
        assert_eq!(
            of_stream(&all, LogStream::Stdout),
            ["out-1", "out-2", "out-3"]
        );
        assert_eq!(of_stream(&all, LogStream::Stderr), ["err-1"]);

        let script = "for i in 1 2 3 4 5; do echo line-$i; done";
        let info = start(
            runtime,
            &fixture.script_spec(&container_name(&labels, 1), script, &labels),
        )
        .await;
        wait_for_exit(runtime, &info.id).await;
        let tail = LogOptions {
            follow: false,
            tail: Some(2),
            ..LogOptions::default()
        };
        let last = collect_logs(runtime, &info.id, tail).await;
        assert_eq!(of_stream(&last, LogStream::Stdout), ["line-4", "line-5"]);

        // Times: either honoured (each line starts with its RFC 3339 time; `since` in the
        // future leaves nothing) or refused as Unsupported, never ignored.
        let timed = LogOptions {
            tail: Some(1),
            timestamps: true,
            ..LogOptions::default()
        };
        match runtime.logs(&info.id, timed).await {
            Err(e) => assert!(
                matches!(e, crate::Error::Unsupported { .. }),
                "timestamps: expected lines or Unsupported, got {e}"
            ),
            Ok(_) => {
                let lines = collect_logs(runtime, &info.id, timed).await;
                let line = &of_stream(&lines, LogStream::Stdout)[0];
                let (time, rest) = line.split_once(' ').expect("a time, then the line");
                assert!(time.starts_with("20") && time.contains('T'), "{line}");
                assert_eq!(rest, "line-5");
                let future = LogOptions {
                    since: Some(i64::from(i32::MAX)),
                    ..LogOptions::default()
                };
                assert!(collect_logs(runtime, &info.id, future).await.is_empty());
            }
        }

        let script = "echo first; sleep 1; echo second";
        let info = start(
            runtime,
            &fixture.script_spec(&container_name(&labels, 2), script, &labels),
        )
        .await;
        let follow = LogOptions {
            follow: true,
            tail: None,
            ..LogOptions::default()
        };
        let followed = collect_logs(runtime, &info.id, follow).await;
        assert_eq!(of_stream(&followed, LogStream::Stdout), ["first", "second"]);
        assert!(
            !runtime.inspect(&info.id).await.unwrap().status.is_running(),
            "a followed stream ends only when the container exits"
        );
    })
    .await;
}

/// A busy container reports CPU use above zero and some memory (what the autoscaler divides
/// by the task's requests); a stopped one reports no CPU use; a removed one is `NotFound`.
pub async fn stats<R: Runtime>(runtime: &R, fixture: &RuntimeFixture) {
    let labels = test_labels("stats");
    with_cleanup(runtime, &labels, async {
        let spec = fixture.script_spec(&container_name(&labels, 0), "while :; do :; done", &labels);
        let info = start(runtime, &spec).await;
        let stats = runtime.stats(&info.id).await.unwrap();
        assert!(
            stats.cpu_percent.is_finite() && stats.cpu_percent > 0.0,
            "{stats:?}"
        );
        assert!(stats.memory_bytes > 0, "{stats:?}");
        assert!(
            stats
                .memory_limit_bytes
                .is_none_or(|l| l >= stats.memory_bytes),
            "{stats:?}"
        );
        runtime
            .stop(&info.id, Duration::from_secs(1))
            .await
            .unwrap();
        let stopped = runtime.stats(&info.id).await.unwrap();
        assert_eq!(stopped.cpu_percent, 0.0, "a stopped container: {stopped:?}");
        runtime.remove(&info.id).await.unwrap();
        match runtime.stats(&info.id).await {
            Err(Error::NotFound { .. }) => {}
            other => panic!("stats of a removed container gave {other:?}, expected NotFound"),
        }
    })
    .await;
}

/// An image that cannot be obtained is `ImageUnavailable` naming it, and leaves nothing behind.
pub async fn bad_image<R: Runtime>(runtime: &R, fixture: &RuntimeFixture) {
    let labels = test_labels("bad-image");
    with_cleanup(runtime, &labels, async {
        let missing = fixture.missing_image.as_str();
        match runtime.ensure_image(missing).await {
            Err(Error::ImageUnavailable { image, .. }) => assert_eq!(image, missing),
            other => panic!("ensure_image({missing}) gave {other:?}, expected ImageUnavailable"),
        }
        let mut spec = fixture.script_spec(&container_name(&labels, 0), "exit 0", &labels);
        spec.image = missing.to_owned();
        match runtime.create_and_start(&spec).await {
            Err(Error::ImageUnavailable { image, .. }) => assert_eq!(image, missing),
            other => panic!("create_and_start with {missing} gave {other:?}"),
        }
        assert!(runtime.list(&labels).await.unwrap().is_empty());
    })
    .await;
}

/// A command that cannot start is an error, and nothing is left behind.
pub async fn bad_command<R: Runtime>(runtime: &R, fixture: &RuntimeFixture) {
    let labels = test_labels("bad-command");
    with_cleanup(runtime, &labels, async {
        let (image, command) = fixture.bad_command.clone();
        let spec = ContainerSpec {
            image,
            ..fixture.spec(&container_name(&labels, 0), command, &labels)
        };
        let result = runtime.create_and_start(&spec).await;
        assert!(
            result.is_err(),
            "a command that cannot start gave {result:?}"
        );
        assert!(
            runtime.list(&labels).await.unwrap().is_empty(),
            "nothing left behind"
        );
    })
    .await;
}

/// `stop` on an exited container succeeds, twice.
pub async fn stop_stopped<R: Runtime>(runtime: &R, fixture: &RuntimeFixture) {
    let labels = test_labels("stop-stopped");
    with_cleanup(runtime, &labels, async {
        let info = start(
            runtime,
            &fixture.script_spec(&container_name(&labels, 0), "exit 0", &labels),
        )
        .await;
        wait_for_exit(runtime, &info.id).await;
        runtime
            .stop(&info.id, Duration::from_secs(1))
            .await
            .unwrap();
        runtime
            .stop(&info.id, Duration::from_secs(1))
            .await
            .unwrap();
        assert_eq!(wait_for_exit(runtime, &info.id).await, (0, false));
        runtime.remove(&info.id).await.unwrap();
    })
    .await;
}

/// A new runtime value (an agent restart) lists the same containers, still running, and can
/// stop and remove them.
pub async fn adopt_after_restart<R, F, Fut>(make: F, fixture: &RuntimeFixture)
where
    R: Runtime,
    F: Fn() -> Fut,
    Fut: Future<Output = R>,
{
    let labels = test_labels("adopt");
    let second = make().await;
    with_cleanup(&second, &labels, async {
        let first = make().await;
        let mut started = Vec::new();
        for i in 0..2 {
            let spec = fixture.script_spec(&container_name(&labels, i), "sleep 300", &labels);
            started.push(start(&first, &spec).await.id);
        }
        drop(first);
        let restarted = make().await;
        let listed = restarted.list(&labels).await.unwrap();
        let mut listed_ids = ids(&listed);
        listed_ids.sort();
        started.sort();
        assert_eq!(listed_ids, started, "the same containers, not copies");
        for info in &listed {
            assert!(info.status.is_running(), "{} is {:?}", info.id, info.status);
        }
        for id in &started {
            restarted.stop(id, Duration::from_secs(1)).await.unwrap();
            restarted.remove(id).await.unwrap();
        }
        assert!(restarted.list(&labels).await.unwrap().is_empty());
    })
    .await;
}

/// `count` containers started at once all run, and all go away.
pub async fn concurrent_starts<R: Runtime>(runtime: &R, fixture: &RuntimeFixture, count: usize) {
    let labels = test_labels("concurrent");
    with_cleanup(runtime, &labels, async {
        let specs: Vec<_> = (0..count)
            .map(|i| fixture.script_spec(&container_name(&labels, i), "sleep 300", &labels))
            .collect();
        let started =
            futures::future::join_all(specs.iter().map(|s| runtime.create_and_start(s))).await;
        let started: Vec<ContainerInfo> = started
            .into_iter()
            .map(|r| r.expect("every concurrent start succeeds"))
            .collect();
        let listed = runtime.list(&labels).await.unwrap();
        assert_eq!(listed.len(), count);
        assert!(listed.iter().all(|i| i.status.is_running()), "{listed:?}");
        let removed =
            futures::future::join_all(started.iter().map(|i| runtime.remove(&i.id))).await;
        for r in removed {
            r.unwrap();
        }
        assert!(runtime.list(&labels).await.unwrap().is_empty());
    })
    .await;
}

/// `exec` returns the command's exit code and both outputs; an unknown id is `NotFound`.
pub async fn exec<R: Runtime>(runtime: &R, fixture: &RuntimeFixture) {
    let labels = test_labels("exec");
    with_cleanup(runtime, &labels, async {
        let info = start(
            runtime,
            &fixture.script_spec(&container_name(&labels, 0), "sleep 300", &labels),
        )
        .await;
        let command: Vec<String> = ["sh", "-c", "echo exec-out; echo exec-err >&2; exit 4"]
            .map(String::from)
            .to_vec();
        let out = runtime.exec(&info.id, &command).await.unwrap();
        assert_eq!(out.exit_code, 4);
        assert_eq!(out.stdout, "exec-out\n");
        assert_eq!(out.stderr, "exec-err\n");
        let missing = runtime.exec("orion-no-such-container", &command).await;
        assert!(missing.unwrap_err().is_not_found());
    })
    .await;
}

/// `exec` keeps at most [`crate::runtime::MAX_EXEC_OUTPUT`] bytes of a stream and says so.
pub async fn exec_bounds<R: Runtime>(runtime: &R, fixture: &RuntimeFixture) {
    let labels = test_labels("exec-bounds");
    with_cleanup(runtime, &labels, async {
        let info = start(
            runtime,
            &fixture.script_spec(&container_name(&labels, 0), "sleep 300", &labels),
        )
        .await;
        let limit = crate::runtime::MAX_EXEC_OUTPUT;
        let script = format!(
            "head -c {} /dev/zero | tr '\\0' x; echo e >&2",
            limit + 4096
        );
        let command: Vec<String> = vec!["sh".into(), "-c".into(), script];
        let out = runtime.exec(&info.id, &command).await.unwrap();
        assert_eq!(out.exit_code, 0, "{}", out.stderr);
        assert_eq!(out.stdout.len(), limit);
        assert!(out.stdout.bytes().all(|b| b == b'x'));
        assert_eq!(out.stderr, "e\n");
        assert!(out.truncated);
        let small = runtime
            .exec(&info.id, &["echo".to_owned(), "hi".to_owned()])
            .await
            .unwrap();
        assert!(!small.truncated && small.stdout == "hi\n", "{small:?}");
    })
    .await;
}

/// Ports: a dynamic host port is chosen, read back, and answers HTTP on 127.0.0.1, or publishing
/// is refused as `Unsupported`; with [`PortSupport::HostNetwork`], publishing is refused and an
/// unpublished server on the host's network answers on 127.0.0.1.
pub async fn ports<R: Runtime>(runtime: &R, fixture: &RuntimeFixture) {
    let labels = test_labels("ports");
    with_cleanup(runtime, &labels, async {
        let binding = |host_port| PortBinding {
            container_port: 8080,
            host_port,
            protocol: Protocol::Tcp,
            host_ip: "127.0.0.1".to_owned(),
        };
        let mut spec = fixture.spec(&container_name(&labels, 0), Vec::new(), &labels);
        match &fixture.ports {
            PortSupport::Dynamic {
                command,
                container_port,
            } => {
                spec.command = command.clone();
                spec.ports = vec![PortBinding {
                    container_port: *container_port,
                    ..binding(0)
                }];
                let info = start(runtime, &spec).await;
                assert_eq!(info.ports.len(), 1, "{:?}", info.ports);
                let port = &info.ports[0];
                assert_eq!(
                    (port.container_port, port.host_ip.as_str()),
                    (*container_port, "127.0.0.1")
                );
                assert_ne!(port.host_port, 0, "the real port is read back");
                assert_http_answers(port.host_port).await;
            }
            PortSupport::HostNetwork { command } => {
                spec.command = command.clone();
                spec.network_mode = NetworkMode::Host;
                let free = free_port().await;
                spec.env = vec![format!("PORT={free}")];
                spec.ports = vec![binding(free)];
                assert_unsupported(runtime.create_and_start(&spec).await);
                assert!(
                    runtime.list(&labels).await.unwrap().is_empty(),
                    "a refused spec leaves nothing behind"
                );
                spec.ports = Vec::new();
                let info = start(runtime, &spec).await;
                assert!(info.ports.is_empty(), "{:?}", info.ports);
                assert_http_answers(free).await;
            }
            PortSupport::None => {
                spec.command = fixture
                    .shell
                    .iter()
                    .cloned()
                    .chain(["sleep 300".to_owned()])
                    .collect();
                spec.ports = vec![binding(0)];
                assert_unsupported(runtime.create_and_start(&spec).await);
            }
        }
    })
    .await;
}

fn assert_unsupported(result: crate::Result<ContainerInfo>) {
    assert!(
        matches!(result, Err(Error::Unsupported { .. })),
        "expected Unsupported, got {result:?}"
    );
}

fn ids(infos: &[ContainerInfo]) -> Vec<String> {
    infos.iter().map(|i| i.id.clone()).collect()
}

/// A port free on 127.0.0.1 right now.
async fn free_port() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap().port()
}
