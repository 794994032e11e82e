//! End to end: `orion context` and `--context` against a real `orion up` node (process
//! runtime, no Docker): a context's address and credentials file reach the node, `--addr` wins
//! over the context, and an unknown context is refused naming the defined ones.

mod support;

use std::process::{Command, Output, Stdio};

use support::{NodeRuntime, ORION_BIN, Role, TestCluster};

/// `orion <args>` with the client config `config`, and no address, token or context from the
/// environment.
fn orion(config: &std::path::Path, args: &[&str]) -> Output {
    Command::new(&*ORION_BIN)
        .env("ORION_CONFIG", config)
        .env_remove("ORION_ADDR")
        .env_remove("ORION_TOKEN")
        .env_remove("ORION_CREDENTIALS")
        .env_remove("ORION_CONTEXT")
        .current_dir(config.parent().expect("a directory"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run orion")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[tokio::test]
async fn a_context_gives_client_commands_their_address_and_token() {
    let mut cluster =
        TestCluster::with_runtime("contexts", &[Role::Single], NodeRuntime::Process).await;
    cluster.start(0).await;
    let node = &cluster.nodes[0];
    let config = cluster.dir().join("client").join("config.yaml");
    std::fs::create_dir_all(config.parent().unwrap()).unwrap();
    // The harness's nodes serve the API as plain HTTP on loopback, and the CA beside the
    // credentials file would make an address without a scheme https.
    let addr = format!("http://{}", node.api);
    let credentials = node.data_dir.join("credentials");

    let out = orion(
        &config,
        &[
            "context",
            "set",
            "local",
            "--addr",
            &addr,
            "--credentials",
            credentials.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let out = orion(
        &config,
        &["context", "set", "nowhere", "--addr", "127.0.0.1:9"],
    );
    assert!(out.status.success(), "{}", text(&out));

    // By name, then as the current context.
    let out = orion(&config, &["--context", "local", "nodes", "-o", "json"]);
    assert!(out.status.success(), "{}", text(&out));
    let nodes: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(nodes[0]["id"], node.id.as_str(), "{nodes}");
    let out = orion(&config, &["context", "use", "local"]);
    assert!(out.status.success(), "{}", text(&out));
    let out = orion(&config, &["nodes", "-o", "json"]);
    assert!(out.status.success(), "{}", text(&out));

    // --addr wins over the context (exit code 5: the API cannot be reached).
    let out = orion(&config, &["--addr", "127.0.0.1:9", "nodes"]);
    assert_eq!(out.status.code(), Some(5), "{}", text(&out));
    let out = orion(&config, &["context", "list"]);
    assert!(text(&out).contains("*  local"), "{}", text(&out));

    let out = orion(&config, &["--context", "qa", "nodes"]);
    assert!(!out.status.success());
    let err = text(&out);
    assert!(
        err.contains("no such context") && err.contains("local, nowhere"),
        "{err}"
    );
}
