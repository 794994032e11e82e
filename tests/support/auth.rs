//! API tokens in tests: a client that sends one, and the management token a bootstrapping
//! node writes to its data dir.

use std::time::Duration;

use super::{NodeProc, wait_for};

/// An HTTP client for tests, sending `token` (when not empty) as a bearer token.
pub fn http_client(token: &str) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    if !token.is_empty() {
        let mut value = reqwest::header::HeaderValue::from_str(&format!("Bearer {token}"))
            .expect("a token is a valid header value");
        value.set_sensitive(true);
        headers.insert(reqwest::header::AUTHORIZATION, value);
    }
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .default_headers(headers)
        .build()
        .expect("http client")
}

/// Waits (at most 30 s) for the management token a bootstrapping node writes to
/// `<data_dir>/credentials`, and returns it.
pub async fn wait_credentials(node: &NodeProc) -> String {
    let path = node.data_dir.join("credentials");
    wait_for(
        &format!("{} to hold the management token", path.display()),
        Duration::from_secs(30),
        || async {
            let text = std::fs::read_to_string(&path).map_err(|e| e.to_string())?;
            text.lines()
                .map(str::trim)
                .find(|l| l.starts_with("orion_"))
                .map(str::to_owned)
                .ok_or_else(|| format!("no token line in {text:?}"))
        },
    )
    .await
}

/// The `(voter, worker)` join tokens a bootstrapping cluster node writes to
/// `<data_dir>/credentials` with its management token (call after [`wait_credentials`]).
pub fn read_join_tokens(node: &NodeProc) -> (String, String) {
    let path = node.data_dir.join("credentials");
    let text = std::fs::read_to_string(&path).expect("read the credentials file");
    let find = |prefix: &str| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(prefix))
            .map(|t| t.trim().to_owned())
            .unwrap_or_else(|| panic!("no {prefix:?} line in {}: {text}", path.display()))
    };
    (find("voter-join-token "), find("worker-join-token "))
}
