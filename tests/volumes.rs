//! End-to-end named volumes against the real Docker engine (one node): the data a replica
//! writes to a named volume survives a rolling update (v1 writes, v2 reads) and the replacement
//! of a killed container on the same node.

mod support;

use std::process::{Command, Stdio};
use std::time::Duration;

use orion_core::model::Task;
use reqwest::Method;
use serde_json::{Value, json};
use support::{TestCluster, docker_exec_sh, docker_kill, wait_for};

const CONVERGE: Duration = Duration::from_secs(90);

/// Removes the test's Docker volume on drop (after the cluster's containers are gone).
struct VolumeGuard(String);

impl Drop for VolumeGuard {
    fn drop(&mut self) {
        let _ = Command::new("docker")
            .args(["volume", "rm", "-f", &self.0])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// One replica with `volume` on /data: the first replica ever writes `$MARK` to /data/first;
/// every replica appends `$MARK` to /data/log when it starts; then it serves HTTP.
fn spec(name: &str, volume: &str, mark: &str) -> Value {
    json!({
        "name": name,
        "image": orion_runtime::testing::TEST_IMAGE,
        "replicas": 1,
        "env": [format!("MARK={mark}")],
        "volumes": [format!("{volume}:/data")],
        "command": ["sh", "-c",
            "[ -f /data/first ] || echo \"$MARK\" > /data/first; echo \"$MARK\" >> /data/log; exec httpd -f -p 8080 -h /www"],
        "ports": [{"container_port": 8080}],
    })
}

/// The one running task of `service` with a container, from spec version `version` at least,
/// other than `not` (a container id).
async fn running_one(c: &TestCluster, service: &str, version: u64, not: Option<&str>) -> Task {
    wait_for(
        &format!("one running replica of {service} version {version}"),
        CONVERGE,
        || async {
            let tasks = c.serving_now(0, service, 1).await?;
            let t = tasks.into_iter().next().ok_or("no task")?;
            if t.spec_version < version {
                return Err(format!("{} is version {}", t.id, t.spec_version));
            }
            if t.container_id.as_deref() == not {
                return Err(format!("{} still runs the old container", t.id));
            }
            Ok(t)
        },
    )
    .await
}

fn read(container: &str, file: &str) -> String {
    docker_exec_sh(container, &format!("cat /data/{file}")).unwrap_or_else(|e| panic!("{e}"))
}

#[tokio::test]
async fn a_named_volume_keeps_its_data_across_a_rolling_update_and_a_killed_container() {
    let c = TestCluster::single("volumes").await;
    let volume = format!("orion-e2e-vol-{}", std::process::id());
    let _guard = VolumeGuard(volume.clone());
    c.deploy(0, &spec("keeper", &volume, "v1").to_string())
        .await;
    let v1 = running_one(&c, "keeper", 1, None).await;
    let v1_container = v1.container_id.clone().expect("a container");
    assert_eq!(read(&v1_container, "first"), "v1\n");

    // A rolling update (env changes): v2 runs in a new container and reads what v1 wrote.
    let (status, body) = c
        .request(
            0,
            Method::PUT,
            "/v1/services/keeper",
            Some((
                "application/json",
                spec("keeper", &volume, "v2").to_string().into_bytes(),
            )),
        )
        .await;
    assert!(status.is_success(), "PUT refused: {status} {body}");
    let v2 = running_one(&c, "keeper", 2, Some(&v1_container)).await;
    let v2_container = v2.container_id.clone().expect("a container");
    assert_ne!(v2_container, v1_container, "a new container");
    assert_eq!(
        read(&v2_container, "first"),
        "v1\n",
        "v1's data survived the update"
    );
    assert_eq!(read(&v2_container, "log"), "v1\nv2\n");

    // The container is killed: what runs next on the node (a restart in place or a
    // replacement) reads the same data.
    docker_kill(&v2_container);
    let after = wait_for("the killed replica to run again", CONVERGE, || async {
        let tasks = c.serving_now(0, "keeper", 1).await?;
        let t = tasks.into_iter().next().ok_or("no task")?;
        let id = t.container_id.clone().ok_or("no container")?;
        let log = docker_exec_sh(&id, "cat /data/log")?;
        if log.lines().count() >= 3 {
            Ok((t, id))
        } else {
            Err(format!("{} log so far: {log:?}", t.id))
        }
    })
    .await;
    assert_eq!(after.0.node.as_deref(), Some(c.nodes[0].id.as_str()));
    assert_eq!(
        read(&after.1, "first"),
        "v1\n",
        "the data survived the kill"
    );
    assert_eq!(read(&after.1, "log"), "v1\nv2\nv2\n");
}
