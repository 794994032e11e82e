//! End to end: `orion token recover --data-dir DIR` against a real `orion up` process (process
//! runtime): a new admin token for whoever can write the node's data dir, in its credentials
//! file, working at once; a dir that is not a voter's is refused.

mod support;

use std::os::unix::fs::MetadataExt;

use reqwest::StatusCode;
use serde_json::Value;
use support::{NodeRuntime, Role, TestCluster, http_client};

/// `orion token recover` with `args`, with no API token from the environment.
fn recover(args: &[&std::ffi::OsStr]) -> std::process::Output {
    std::process::Command::new(&*support::ORION_BIN)
        .env_remove("ORION_TOKEN")
        .env_remove("ORION_CREDENTIALS")
        .args(["token", "recover", "--data-dir"])
        .args(args)
        .output()
        .expect("run orion")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_admin_token_is_recovered_from_the_data_dir_of_a_running_node() {
    let mut c = TestCluster::with_runtime("recover", &[Role::Single], NodeRuntime::Process).await;
    c.start(0).await;
    let data_dir = c.nodes[0].data_dir.clone();

    let out = recover(&[data_dir.as_os_str()]);
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let token = stdout.lines().last().unwrap_or_default().trim().to_owned();
    assert!(token.starts_with("orion_") && token != c.token, "{stdout}");

    // In the credentials file (mode 0600), the request consumed, and it works as admin.
    let credentials = data_dir.join("credentials");
    assert_eq!(
        std::fs::metadata(&credentials).unwrap().mode() & 0o777,
        0o600
    );
    let text = std::fs::read_to_string(&credentials).unwrap();
    assert!(text.contains(&token), "{text}");
    assert!(!data_dir.join("recover-admin-token").exists());
    let resp = http_client(&token)
        .get(c.nodes[0].url("/v1/tokens"))
        .send()
        .await
        .expect("the node answers");
    assert_eq!(resp.status(), StatusCode::OK);
    let listed: Value = resp.json().await.expect("json");
    assert!(listed.to_string().contains("recovered-admin"), "{listed}");

    // A directory that is not a voter's data dir: refused, saying what is expected.
    let empty = c.dir().join("not-a-data-dir");
    std::fs::create_dir_all(&empty).unwrap();
    let out = recover(&[empty.as_os_str()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("is not the data dir of a voter"), "{err}");
    assert!(!empty.join("recover-admin-token").exists());
}
