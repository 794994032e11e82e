use std::collections::BTreeMap;
use std::time::Duration;

use futures::StreamExt;

use super::*;
use crate::runtime::{Mount, PortBinding};

/// Upper bound on any wait in these tests (a bound, never an assertion on speed).
const WAIT: Duration = Duration::from_secs(10);

fn spec(name: &str, image: &str) -> ContainerSpec {
    ContainerSpec {
        name: name.to_owned(),
        image: image.to_owned(),
        labels: BTreeMap::from([("io.orion.task".to_owned(), name.to_owned())]),
        ..ContainerSpec::default()
    }
}

fn port(container_port: u16, host_port: u16) -> PortBinding {
    PortBinding {
        container_port,
        host_port,
        protocol: Protocol::Tcp,
        host_ip: "127.0.0.1".to_owned(),
    }
}

/// Waits (bounded) until the container is no longer running, by following its logs to the end.
async fn wait_exit(fake: &FakeRuntime, id: &str) -> ContainerStatus {
    let follow = LogOptions {
        follow: true,
        tail: Some(0),
        ..LogOptions::default()
    };
    let mut logs = fake.logs(id, follow).await.unwrap();
    tokio::time::timeout(WAIT, async { while logs.next().await.is_some() {} })
        .await
        .expect("the container did not exit in time");
    fake.inspect(id).await.unwrap().status
}

#[tokio::test]
async fn dynamic_ports_are_real_looking_and_fixed_ports_exclusive() {
    let fake = FakeRuntime::new();
    let mut a = spec("a", "img");
    a.ports = vec![port(80, 0), port(81, 0), port(82, 18080)];
    a.mounts = vec![Mount {
        source: "/tmp".into(),
        target: "/data".into(),
        read_only: true,
    }];
    let info = fake.create_and_start(&a).await.unwrap();
    assert_eq!(info.status, ContainerStatus::Running);
    assert_eq!(info.id.len(), 64);
    let hosts: Vec<u16> = info.ports.iter().map(|p| p.host_port).collect();
    assert!(DYNAMIC_PORTS.contains(&hosts[0]) && DYNAMIC_PORTS.contains(&hosts[1]));
    assert_ne!(hosts[0], hosts[1]);
    assert_eq!(hosts[2], 18080);
    assert_eq!(info.ports[0].host_ip, "127.0.0.1");
    assert_eq!(info.ports[0].protocol, "tcp");

    let mut b = spec("b", "img");
    b.ports = vec![port(80, 18080)];
    let err = fake.create_and_start(&b).await.unwrap_err();
    assert!(matches!(err, Error::Conflict(_)), "{err}");
    assert!(err.to_string().contains("18080/tcp"), "{err}");
    assert_eq!(
        fake.list(&BTreeMap::new()).await.unwrap().len(),
        1,
        "nothing left behind"
    );

    // The same port twice in one spec is refused too.
    let mut twice = spec("twice", "img");
    twice.ports = vec![port(80, 19000), port(81, 19000)];
    assert!(fake.create_and_start(&twice).await.is_err());

    // A stopped container frees its ports.
    fake.stop(&info.id, Duration::ZERO).await.unwrap();
    let b = fake.create_and_start(&b).await.unwrap();
    assert_eq!(b.ports[0].host_port, 18080);
}

#[tokio::test]
async fn names_are_unique_and_bad_specs_are_refused() {
    let fake = FakeRuntime::new();
    fake.create_and_start(&spec("web", "img")).await.unwrap();
    let err = fake
        .create_and_start(&spec("web", "img"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("already in use"), "{err}");
    let err = fake.create_and_start(&spec("x", "")).await.unwrap_err();
    assert!(matches!(err, Error::Invalid(_)), "{err}");
}

#[tokio::test]
async fn stop_remove_inspect_follow_the_contract() {
    let fake = FakeRuntime::new();
    let info = fake.create_and_start(&spec("web", "img")).await.unwrap();
    fake.stop(&info.id, Duration::from_secs(1)).await.unwrap();
    let stopped = fake.inspect(&info.id).await.unwrap();
    assert_eq!(
        stopped.status,
        ContainerStatus::Exited {
            code: STOPPED_CODE,
            oom_killed: false
        }
    );
    fake.stop(&info.id, Duration::ZERO)
        .await
        .expect("stop on a stopped container succeeds");
    fake.remove(&info.id).await.unwrap();
    assert!(fake.inspect(&info.id).await.unwrap_err().is_not_found());
    assert!(fake.remove(&info.id).await.unwrap_err().is_not_found());
    assert!(
        fake.stop("nope", Duration::ZERO)
            .await
            .unwrap_err()
            .is_not_found()
    );

    let running = fake.create_and_start(&spec("web", "img")).await.unwrap();
    fake.remove(&running.id)
        .await
        .expect("a running container is killed, then removed");
    assert!(fake.list(&BTreeMap::new()).await.unwrap().is_empty());
}

#[tokio::test]
async fn list_by_label_survives_recreating_the_runtime() {
    let fake = FakeRuntime::new();
    let handle = fake.clone();
    let mut a = spec("a", "img");
    a.labels.insert("io.orion.service".into(), "web".into());
    let mut b = spec("b", "img");
    b.labels.insert("io.orion.service".into(), "api".into());
    fake.create_and_start(&a).await.unwrap();
    fake.create_and_start(&b).await.unwrap();
    drop(fake);
    let web = BTreeMap::from([("io.orion.service".to_owned(), "web".to_owned())]);
    let found = handle.list(&web).await.unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].name, "a");
    assert_eq!(handle.list(&BTreeMap::new()).await.unwrap().len(), 2);
}

#[tokio::test]
async fn logs_honour_tail_and_follow_until_exit() {
    let fake = FakeRuntime::new();
    let id = fake.create_and_start(&spec("web", "img")).await.unwrap().id;
    for i in 0..3 {
        fake.write_log(&id, LogStream::Stdout, format!("line {i}"))
            .unwrap();
    }
    let tail = LogOptions {
        follow: false,
        tail: Some(2),
        ..LogOptions::default()
    };
    let lines: Vec<_> = fake.logs(&id, tail).await.unwrap().collect().await;
    let text: Vec<_> = lines.into_iter().map(|l| l.unwrap().line).collect();
    assert_eq!(text, ["line 1", "line 2"]);

    let follow = LogOptions {
        follow: true,
        tail: Some(1),
        ..LogOptions::default()
    };
    let mut stream = fake.logs(&id, follow).await.unwrap();
    let first = tokio::time::timeout(WAIT, stream.next()).await.unwrap();
    assert_eq!(first.unwrap().unwrap().line, "line 2");
    let writer = fake.clone();
    let wid = id.clone();
    tokio::spawn(async move {
        writer.write_log(&wid, LogStream::Stderr, "late").unwrap();
        writer.exit(&wid, 0).unwrap();
    });
    let late = tokio::time::timeout(WAIT, stream.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(
        (late.stream, late.line.as_str()),
        (LogStream::Stderr, "late")
    );
    let end = tokio::time::timeout(WAIT, stream.next()).await.unwrap();
    assert!(end.is_none(), "follow ends when the container exits");
    assert!(fake.logs("nope", tail).await.is_err());
}

#[tokio::test]
async fn stats_report_the_limit_and_what_was_set() {
    let fake = FakeRuntime::new();
    let mut s = spec("web", "img");
    s.memory_bytes = 64 << 20;
    let id = fake.create_and_start(&s).await.unwrap().id;
    let st = fake.stats(&id).await.unwrap();
    assert_eq!(st.memory_limit_bytes, Some(64 << 20));
    assert!(st.memory_bytes <= 64 << 20);
    let set = ContainerStats {
        cpu_percent: 150.0,
        memory_bytes: 32 << 20,
        memory_limit_bytes: Some(64 << 20),
    };
    fake.set_stats(&id, set).unwrap();
    assert_eq!(fake.stats(&id).await.unwrap(), set);
    fake.exit(&id, 1).unwrap();
    assert_eq!(fake.stats(&id).await.unwrap().cpu_percent, 0.0);
}

#[tokio::test]
async fn exec_runs_only_in_running_containers_with_planned_exit_codes() {
    let fake = FakeRuntime::with_faults(FaultPlan::new().exec_exit_code("false", 1));
    let id = fake.create_and_start(&spec("web", "img")).await.unwrap().id;
    let cmd = |c: &[&str]| c.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let out = fake
        .exec(&id, &cmd(&["echo", "hi", "there"]))
        .await
        .unwrap();
    assert_eq!((out.exit_code, out.stdout.as_str()), (0, "hi there\n"));
    assert_eq!(fake.exec(&id, &cmd(&["false"])).await.unwrap().exit_code, 1);
    assert!(matches!(fake.exec(&id, &[]).await, Err(Error::Invalid(_))));
    fake.exit(&id, 0).unwrap();
    let err = fake.exec(&id, &cmd(&["true"])).await.unwrap_err();
    assert!(err.to_string().contains("not running"), "{err}");
}

#[tokio::test]
async fn start_failures_for_every_image_or_one() {
    let fake = FakeRuntime::with_faults(FaultPlan::new().fail_every_start());
    let err = fake.create_and_start(&spec("a", "img")).await.unwrap_err();
    assert!(err.to_string().contains("injected start failure"), "{err}");
    assert!(fake.list(&BTreeMap::new()).await.unwrap().is_empty());

    fake.set_faults(FaultPlan::new().fail_start_for("bad"));
    assert!(fake.create_and_start(&spec("a", "bad")).await.is_err());
    assert!(fake.create_and_start(&spec("b", "good")).await.is_ok());
}

#[tokio::test]
async fn unknown_images_are_unavailable() {
    let fake = FakeRuntime::with_faults(FaultPlan::new().unknown_image("ghost:1"));
    let err = fake.ensure_image("ghost:1").await.unwrap_err();
    assert!(matches!(&err, Error::ImageUnavailable { image, .. } if image == "ghost:1"));
    let err = fake
        .create_and_start(&spec("a", "ghost:1"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::ImageUnavailable { .. }), "{err}");
    fake.ensure_image("busybox").await.unwrap();
}

#[tokio::test]
async fn crashes_exit_with_the_planned_code() {
    let plan = FaultPlan::new()
        .crash_after(Duration::from_millis(20), 2)
        .crash_image_after("oom", Duration::from_millis(10), 137);
    let fake = FakeRuntime::with_faults(plan);
    let a = fake.create_and_start(&spec("a", "img")).await.unwrap();
    assert!(a.status.is_running(), "a crash comes after the start");
    let b = fake.create_and_start(&spec("b", "oom")).await.unwrap();
    assert_eq!(
        wait_exit(&fake, &a.id).await,
        ContainerStatus::Exited {
            code: 2,
            oom_killed: false
        }
    );
    assert!(matches!(
        wait_exit(&fake, &b.id).await,
        ContainerStatus::Exited { code: 137, .. }
    ));
}

#[tokio::test]
async fn slow_start_returns_only_after_its_delay() {
    let fake = FakeRuntime::with_faults(FaultPlan::new().slow_start(Duration::from_millis(50)));
    let s = spec("slow", "img");
    let mut start = Box::pin(fake.create_and_start(&s));
    assert!(
        futures::poll!(start.as_mut()).is_pending(),
        "a slow start is still pending when first polled"
    );
    assert!(fake.list(&BTreeMap::new()).await.unwrap().is_empty());
    let info = tokio::time::timeout(WAIT, start).await.unwrap().unwrap();
    assert!(info.status.is_running());
}

#[tokio::test]
async fn exit_knob_ends_the_container_and_frees_its_ports() {
    let fake = FakeRuntime::new();
    let mut s = spec("a", "img");
    s.ports = vec![port(80, 18181)];
    let id = fake.create_and_start(&s).await.unwrap().id;
    fake.exit(&id, 3).unwrap();
    assert_eq!(
        fake.inspect(&id).await.unwrap().status,
        ContainerStatus::Exited {
            code: 3,
            oom_killed: false
        }
    );
    fake.exit(&id, 9).unwrap();
    assert!(matches!(
        fake.inspect(&id).await.unwrap().status,
        ContainerStatus::Exited { code: 3, .. }
    ));
    let mut again = spec("b", "img");
    again.ports = vec![port(80, 18181)];
    fake.create_and_start(&again).await.unwrap();
    assert!(fake.exit("nope", 1).unwrap_err().is_not_found());
}
