//! Join tokens for nodes, kept hashed in the replicated store so that any voter admits with the
//! current ones and a rotation through any node takes effect everywhere at once (admission reads
//! them before every request, `orion_consensus::security::admission::TokenSource`).
//!
//! | key | value |
//! |---|---|
//! | [`CA_DIGEST_KEY`] | the cluster CA's digest (hex), written at bootstrap |
//! | [`JOIN_TOKENS_PREFIX`]`voter`, `…worker` | SHA-256 (hex) of the current token's secret |
//!
//! `POST /v1/join-tokens/{voter|worker}/rotate` (admin) mints a new token of that role, replaces
//! the previous one (refused from then on) and answers it, shown this once.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{Method, StatusCode};
use orion_consensus::security::{CaDigest, JoinToken, Role};
use orion_core::store::{Compare, Op, Store, Txn};
use serde::{Deserialize, Serialize};

use super::access::{Access, RouteTable};
use super::errors::{ApiResult, HttpError};
use super::routes::ApiState;

/// The cluster CA's digest.
pub const CA_DIGEST_KEY: &str = "/orion/security/ca-digest";
/// The hashes of the current join tokens, one key per role.
pub const JOIN_TOKENS_PREFIX: &str = "/orion/security/join-tokens/";

/// The answer to a rotation: the new token, shown once.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RotatedJoinToken {
    pub role: String,
    pub token: String,
}

fn key_of(role: Role) -> String {
    format!("{JOIN_TOKENS_PREFIX}{role}")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex32(text: &[u8]) -> Option<[u8; 32]> {
    let text = std::str::from_utf8(text).ok()?;
    if text.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// At first bootstrap: records the CA digest and mints the voter and worker tokens, unless they
/// were made before (then `None`). Returns them the one time they are made, to print once.
pub async fn bootstrap(
    store: &dyn Store,
    ca: &CaDigest,
) -> orion_core::Result<Option<(JoinToken, JoinToken)>> {
    let voter = JoinToken::generate(ca.clone(), Role::Voter);
    let worker = JoinToken::generate(ca.clone(), Role::Worker);
    let done = store
        .txn(
            Txn::new()
                .when(Compare::Missing(CA_DIGEST_KEY.into()))
                .and_then(Op::Put(
                    CA_DIGEST_KEY.into(),
                    ca.as_str().as_bytes().to_vec(),
                ))
                .and_then(Op::Put(
                    key_of(Role::Voter),
                    hex(&voter.secret_hash()).into_bytes(),
                ))
                .and_then(Op::Put(
                    key_of(Role::Worker),
                    hex(&worker.secret_hash()).into_bytes(),
                )),
        )
        .await?;
    Ok(done.succeeded.then_some((voter, worker)))
}

/// The hashes of the current join tokens.
pub async fn current(store: &dyn Store) -> orion_core::Result<Vec<(Role, [u8; 32])>> {
    let mut out = Vec::new();
    for role in [Role::Voter, Role::Worker] {
        if let Some(kv) = store.get(&key_of(role)).await?
            && let Some(hash) = unhex32(&kv.value)
        {
            out.push((role, hash));
        }
    }
    Ok(out)
}

/// Mints a new token of `role` and makes it the only one of its role.
pub async fn rotate(store: &dyn Store, role: Role) -> orion_core::Result<JoinToken> {
    let Some(digest) = store.get(CA_DIGEST_KEY).await? else {
        return Err(orion_core::Error::NotFound {
            kind: "cluster CA digest",
            name: "(this cluster was bootstrapped without node certificates)".into(),
        });
    };
    let digest = std::str::from_utf8(&digest.value)
        .ok()
        .and_then(|d| CaDigest::parse(d).ok())
        .ok_or_else(|| orion_core::Error::Conflict("the stored CA digest is malformed".into()))?;
    let token = JoinToken::generate(digest, role);
    store
        .put(&key_of(role), hex(&token.secret_hash()).into_bytes())
        .await?;
    Ok(token)
}

/// The join token routes, to merge into the API's route table.
pub fn routes() -> RouteTable {
    RouteTable::default().add(
        Method::POST,
        "/v1/join-tokens/{role}/rotate",
        Access::Admin,
        rotate_route,
    )
}

/// `POST /v1/join-tokens/{voter|worker}/rotate`: 201 with the new token, shown this once.
async fn rotate_route(
    State(state): State<ApiState>,
    Path(role): Path<String>,
) -> ApiResult<(StatusCode, Json<RotatedJoinToken>)> {
    let role = Role::parse(&role).map_err(|_| {
        HttpError::bad_request(format!(
            "join token role {:?}: expected voter or worker",
            role.chars().take(32).collect::<String>()
        ))
    })?;
    let token = rotate(state.store.inner().as_ref(), role).await?;
    tracing::info!(%role, "join token rotated; the previous one is refused from now on");
    Ok((
        StatusCode::CREATED,
        Json(RotatedJoinToken {
            role: role.to_string(),
            token: token.to_string(),
        }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use orion_core::store::MemoryStore;

    #[tokio::test]
    async fn bootstrap_once_then_rotation_replaces_a_role() {
        let store = MemoryStore::new();
        let ca = CaDigest::of(b"ca");
        let (voter, worker) = bootstrap(&store, &ca).await.unwrap().expect("made");
        assert!(bootstrap(&store, &ca).await.unwrap().is_none());
        let hashes = current(&store).await.unwrap();
        assert!(hashes.contains(&(Role::Voter, voter.secret_hash())));
        assert!(hashes.contains(&(Role::Worker, worker.secret_hash())));
        let new = rotate(&store, Role::Worker).await.unwrap();
        assert_eq!(new.ca_digest(), &ca);
        let hashes = current(&store).await.unwrap();
        assert!(hashes.contains(&(Role::Worker, new.secret_hash())));
        assert!(!hashes.contains(&(Role::Worker, worker.secret_hash())));
        assert!(hashes.contains(&(Role::Voter, voter.secret_hash())));
    }
}
