//! `orion token recover --data-dir DIR`: a new admin API token for whoever can write a voter's
//! data dir (see docs/security.md, "Recover a lost admin token").
//!
//! The store keeps only token hashes and is written through Raft, so a token cannot be minted
//! from the files alone. Instead:
//!
//! 1. The CLI checks that `DIR` is a voter's data dir (it holds `keys/ca.key`) and writes the
//!    request file `DIR/recover-admin-token` (mode 0600).
//! 2. The node running on `DIR` looks for that file every [`POLL`] (and at start). It accepts
//!    it only when it is a regular file (not a symlink) owned by the data dir's owner or root,
//!    and only on a node holding the CA key; it then creates an admin token named
//!    [`RECOVERED_TOKEN_NAME`] in the store (this needs a quorum), writes it to
//!    `DIR/credentials` (mode 0600, join-token lines kept), and removes the request. A
//!    request it refuses is removed and the reason logged.
//! 3. The CLI waits at most [`WAIT`] for the request to be gone and prints the new token. If the
//!    node is not running, the request stays and is handled at its next start.
//!
//! So only someone who may write the data dir (the node's user or root) gets a token; nothing
//! is reachable over the network.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::credentials::{CREDENTIALS_FILE, VOTER_JOIN_TOKEN, WORKER_JOIN_TOKEN};

/// The request file's name in a data dir.
pub const REQUEST_FILE: &str = "recover-admin-token";
/// The name of the tokens made so.
pub const RECOVERED_TOKEN_NAME: &str = "recovered-admin";
/// How often a node looks for a request.
pub const POLL: Duration = Duration::from_secs(1);
/// How long the CLI waits for the node to handle its request.
pub const WAIT: Duration = Duration::from_secs(30);

/// The CLI side: writes the request and waits for the node to answer it (see the module doc).
pub async fn recover(data_dir: &Path) -> Result<()> {
    let ca_key = data_dir.join("keys").join("ca.key");
    match std::fs::symlink_metadata(&ca_key) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!(
            "{} is not the data dir of a voter (it holds no keys/ca.key): run `orion token \
             recover` against the --data-dir of a voter node",
            data_dir.display()
        ),
        Err(e) => bail!(
            "cannot read {}: {e}; run as the node's user or root",
            ca_key.display()
        ),
    }
    let credentials = data_dir.join(CREDENTIALS_FILE);
    let before = std::fs::read_to_string(&credentials).ok();
    let request = data_dir.join(REQUEST_FILE);
    orion_consensus::security::write_private(&request, b"admin\n", 0o600)
        .with_context(|| format!("cannot write the request {}", request.display()))?;
    let deadline = tokio::time::Instant::now() + WAIT;
    while request.exists() {
        if tokio::time::Instant::now() >= deadline {
            bail!(
                "no running node took the request {} within {}s; the node on {} handles it when \
                 it starts (and has a quorum), then the new token is in {} (remove the request \
                 file to cancel)",
                request.display(),
                WAIT.as_secs(),
                data_dir.display(),
                credentials.display()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let after = std::fs::read_to_string(&credentials).ok();
    if after.is_none() || after == before {
        bail!(
            "the node refused the request (its log says why); {} is unchanged",
            credentials.display()
        );
    }
    let token = crate::credentials::read_credentials(&credentials)?;
    println!(
        "new admin token (also written to {}, mode 0600); it is shown only this once:",
        credentials.display()
    );
    println!("{token}");
    Ok(())
}

/// Why the request file in `data_dir` is not accepted, or `None` when it is acceptable (see the
/// module doc).
fn refusal(data_dir: &Path, request: &std::fs::Metadata) -> Option<String> {
    if !request.file_type().is_file() {
        return Some("it is not a regular file".into());
    }
    let owner = match std::fs::metadata(data_dir) {
        Ok(meta) => meta.uid(),
        Err(e) => return Some(format!("the data dir cannot be read: {e}")),
    };
    if request.uid() != owner && request.uid() != 0 {
        return Some(format!(
            "it is owned by uid {}, neither the data dir's owner ({owner}) nor root",
            request.uid()
        ));
    }
    if !orion_consensus::security::keys_dir(data_dir)
        .join("ca.key")
        .exists()
    {
        return Some("this node holds no CA key (only voters recover tokens)".into());
    }
    None
}

/// The node side: handles requests in `data_dir` forever (run it in a task).
pub async fn serve_requests(store: crate::node::SharedStore, data_dir: PathBuf) {
    let request = data_dir.join(REQUEST_FILE);
    let mut warned = false;
    loop {
        if let Ok(meta) = std::fs::symlink_metadata(&request) {
            match refusal(&data_dir, &meta) {
                Some(why) => {
                    tracing::warn!(request = %request.display(), "admin token recovery refused: {why}");
                    let _ = std::fs::remove_file(&request);
                }
                None => match mint(store.as_ref(), &data_dir).await {
                    Ok(id) => {
                        tracing::info!(token_id = %id, "admin token recovered into the credentials file");
                        let _ = std::fs::remove_file(&request);
                        warned = false;
                    }
                    Err(e) if !warned => {
                        warned = true;
                        tracing::warn!("admin token recovery pending: {e:#}; retrying");
                    }
                    Err(e) => tracing::debug!("admin token recovery pending: {e:#}"),
                },
            }
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Creates the admin token and writes it to the credentials file, keeping its join-token lines;
/// returns the token's id.
async fn mint(store: &dyn orion_core::store::Store, data_dir: &Path) -> Result<String> {
    let created = crate::api::tokens::create(
        store,
        &crate::api::tokens::TokenRequest {
            name: RECOVERED_TOKEN_NAME.into(),
            role: crate::api::tokens::Role::Admin,
            scope: None,
        },
    )
    .await
    .context("cannot create the token")?;
    let path = data_dir.join(CREDENTIALS_FILE);
    let old = std::fs::read_to_string(&path).unwrap_or_default();
    let mut text = format!(
        "# Orion admin token, made by `orion token recover` (token id {})\n{}\n",
        created.info.id, created.token
    );
    for line in old.lines() {
        if line.starts_with(VOTER_JOIN_TOKEN) || line.starts_with(WORKER_JOIN_TOKEN) {
            text.push_str(line);
            text.push('\n');
        }
    }
    orion_consensus::security::write_private(&path, text.as_bytes(), 0o600)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(created.info.id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_is_accepted_only_as_a_regular_file_on_a_voter() {
        let dir = tempfile::tempdir().unwrap();
        let request = dir.path().join(REQUEST_FILE);
        std::fs::write(&request, "admin\n").unwrap();
        let meta = std::fs::symlink_metadata(&request).unwrap();
        let why = refusal(dir.path(), &meta).expect("no CA key here");
        assert!(why.contains("holds no CA key"), "{why}");

        let keys = orion_consensus::security::keys_dir(dir.path());
        std::fs::create_dir_all(&keys).unwrap();
        std::fs::write(keys.join("ca.key"), "key").unwrap();
        assert_eq!(refusal(dir.path(), &meta), None);

        std::fs::remove_file(&request).unwrap();
        std::os::unix::fs::symlink(keys.join("ca.key"), &request).unwrap();
        let meta = std::fs::symlink_metadata(&request).unwrap();
        let why = refusal(dir.path(), &meta).expect("a symlink");
        assert!(why.contains("not a regular file"), "{why}");
    }

    #[tokio::test]
    async fn the_cli_refuses_a_dir_that_is_not_a_voters() {
        let dir = tempfile::tempdir().unwrap();
        let err = recover(dir.path()).await.unwrap_err().to_string();
        assert!(err.contains("is not the data dir of a voter"), "{err}");
        assert!(!dir.path().join(REQUEST_FILE).exists());
    }
}
