//! API tokens: roles, the records kept in the replicated store, and checking a presented token.
//!
//! A token reads `orion_<id>_<secret>`: `id` is 16 hex digits (public: it names the token in
//! `orion token list` and `revoke`), `secret` 64 hex digits (256 random bits). The store keeps,
//! under [`TOKENS_PREFIX`]`<id>`, the token's name, role, scope and the SHA-256 of the secret,
//! never the secret itself; checking a token reads the record by id and compares the hashes in
//! constant time (`subtle`). A secret is shown once, when the token is created. Revoking deletes
//! the record, so the token is refused on every node as soon as the delete is committed.

use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use orion_core::model::spec::validate::is_dns_label;
use orion_core::store::{Compare, Op, Store, Txn};

/// Keys of token records: `/orion/api-tokens/<id>` -> [`TokenRecord`] (JSON).
pub const TOKENS_PREFIX: &str = "/orion/api-tokens/";
/// Written with the management token, so a restarted bootstrap node never makes a second one.
pub const BOOTSTRAP_MARKER: &str = "/orion/api-token-bootstrap";
/// Most tokens a cluster keeps (creating more is a 409).
pub const MAX_TOKENS: usize = 1000;
/// Longest token name and scope prefix.
pub const MAX_NAME_LEN: usize = 63;
/// Name of the token made at bootstrap.
pub const MANAGEMENT_TOKEN_NAME: &str = "management";

/// What a token may do. Each role can do everything the roles before it can.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Reads: every `GET` (and `/metrics`).
    ReadOnly,
    /// Reads, and changes to services, tasks and node scheduling (drain, undrain), plans.
    Operator,
    /// Everything: tokens, chaos, cluster membership, and specs that use host access.
    Admin,
}

impl Role {
    /// The name in the API and the CLI: `read-only`, `operator`, `admin`.
    pub fn name(self) -> &'static str {
        match self {
            Role::ReadOnly => "read-only",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "read-only" => Ok(Role::ReadOnly),
            "operator" => Ok(Role::Operator),
            "admin" => Ok(Role::Admin),
            other => Err(format!(
                "role {other:?}: expected admin, operator or read-only"
            )),
        }
    }
}

/// A token as stored (the secret only as its hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRecord {
    pub id: String,
    pub name: String,
    pub role: Role,
    /// When set, the token reaches only services whose name starts with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// Milliseconds since the Unix epoch.
    pub created_at_ms: u64,
    /// SHA-256 of the secret, hex.
    pub secret_sha256: String,
}

/// A token as listed: everything but the hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TokenInfo {
    pub id: String,
    pub name: String,
    pub role: Role,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    pub created_at_ms: u64,
}

impl From<&TokenRecord> for TokenInfo {
    fn from(r: &TokenRecord) -> Self {
        TokenInfo {
            id: r.id.clone(),
            name: r.name.clone(),
            role: r.role,
            scope: r.scope.clone(),
            created_at_ms: r.created_at_ms,
        }
    }
}

/// A new token: its listing and the token text, shown this once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CreatedToken {
    #[serde(flatten)]
    pub info: TokenInfo,
    pub token: String,
}

/// `POST /v1/tokens` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    pub name: String,
    pub role: Role,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

impl TokenRequest {
    /// Checks the name (a DNS label) and the scope (1-63 of a-z, 0-9, '-').
    pub fn check(&self) -> Result<(), String> {
        if !is_dns_label(&self.name) {
            return Err(format!(
                "name: got {:?}, expected a DNS label (a-z, 0-9 and '-', at most {MAX_NAME_LEN})",
                self.name
            ));
        }
        if let Some(scope) = &self.scope {
            let ok = !scope.is_empty()
                && scope.len() <= MAX_NAME_LEN
                && scope
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
            if !ok {
                return Err(format!(
                    "scope: got {scope:?}, expected a service name prefix of 1-{MAX_NAME_LEN} \
                     characters of a-z, 0-9 and '-'"
                ));
            }
        }
        Ok(())
    }
}

/// Who called, once their token checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub token_id: String,
    pub role: Role,
    pub scope: Option<String>,
}

impl Caller {
    /// True when this caller may touch service `name` (always, without a scope).
    pub fn reaches_service(&self, name: &str) -> bool {
        self.scope.as_deref().is_none_or(|p| name.starts_with(p))
    }
}

fn sha256_hex(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    hex::encode(buf)
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// `(id, secret)` of a token text, when it has the token's shape.
fn split_token(text: &str) -> Option<(&str, &str)> {
    let (id, secret) = text.strip_prefix("orion_")?.split_once('_')?;
    let hex_of = |s: &str, len: usize| s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit());
    (hex_of(id, 16) && hex_of(secret, 64)).then_some((id, secret))
}

/// A new record for `request` and its token text.
fn mint(request: &TokenRequest) -> (TokenRecord, String) {
    let id = random_hex(8);
    let secret = random_hex(32);
    let record = TokenRecord {
        id: id.clone(),
        name: request.name.clone(),
        role: request.role,
        scope: request.scope.clone(),
        created_at_ms: now_ms(),
        secret_sha256: sha256_hex(&secret),
    };
    (record, format!("orion_{id}_{secret}"))
}

fn encode(record: &TokenRecord) -> orion_core::Result<Vec<u8>> {
    serde_json::to_vec(record).map_err(|e| orion_core::Error::backend("encode token", e))
}

/// Every token record (records that do not decode are skipped).
pub async fn list(store: &dyn Store) -> orion_core::Result<Vec<TokenRecord>> {
    let range = store.range(TOKENS_PREFIX).await?;
    Ok(range
        .kvs
        .iter()
        .filter_map(|kv| serde_json::from_slice(&kv.value).ok())
        .collect())
}

/// Creates a token for `request` (checked first); `Conflict` at [`MAX_TOKENS`].
pub async fn create(store: &dyn Store, request: &TokenRequest) -> orion_core::Result<CreatedToken> {
    request
        .check()
        .map_err(|e| orion_core::Error::Invalid(single_field_error(&e)))?;
    if list(store).await?.len() >= MAX_TOKENS {
        return Err(orion_core::Error::Conflict(format!(
            "this cluster already has {MAX_TOKENS} tokens, the most it keeps; revoke unused ones"
        )));
    }
    let (record, token) = mint(request);
    let key = format!("{TOKENS_PREFIX}{}", record.id);
    let done = store
        .txn(
            Txn::new()
                .when(Compare::Missing(key.clone()))
                .and_then(Op::Put(key, encode(&record)?)),
        )
        .await?;
    if !done.succeeded {
        return Err(orion_core::Error::Conflict(
            "token id collision; try again".into(),
        ));
    }
    Ok(CreatedToken {
        info: TokenInfo::from(&record),
        token,
    })
}

fn single_field_error(message: &str) -> orion_core::error::ValidationErrors {
    let (path, expected) = message.split_once(": ").unwrap_or(("body", message));
    let mut errs = orion_core::error::ValidationErrors::default();
    errs.push(path, "", expected);
    errs
}

/// Deletes token `id`; false when there is none.
pub async fn revoke(store: &dyn Store, id: &str) -> orion_core::Result<bool> {
    if id.is_empty() || id.contains('/') {
        return Ok(false);
    }
    Ok(store
        .delete(&format!("{TOKENS_PREFIX}{id}"))
        .await?
        .is_some())
}

/// The caller a presented token `text` stands for; `None` when it is malformed, unknown,
/// revoked or its secret does not match.
pub async fn verify(store: &dyn Store, text: &str) -> orion_core::Result<Option<Caller>> {
    let Some((id, secret)) = split_token(text) else {
        return Ok(None);
    };
    let Some(kv) = store.get(&format!("{TOKENS_PREFIX}{id}")).await? else {
        return Ok(None);
    };
    let Ok(record) = serde_json::from_slice::<TokenRecord>(&kv.value) else {
        return Ok(None);
    };
    let presented = sha256_hex(secret);
    let matches: bool = presented
        .as_bytes()
        .ct_eq(record.secret_sha256.as_bytes())
        .into();
    Ok(matches.then_some(Caller {
        token_id: record.id,
        role: record.role,
        scope: record.scope,
    }))
}

/// Makes the cluster's first admin token, named [`MANAGEMENT_TOKEN_NAME`], unless one was made
/// before (by this node or another): returns its text the one time it is made, `None` after.
pub async fn bootstrap_management_token(store: &dyn Store) -> orion_core::Result<Option<String>> {
    if store.get(BOOTSTRAP_MARKER).await?.is_some() {
        return Ok(None);
    }
    let (record, token) = mint(&TokenRequest {
        name: MANAGEMENT_TOKEN_NAME.into(),
        role: Role::Admin,
        scope: None,
    });
    let key = format!("{TOKENS_PREFIX}{}", record.id);
    let done = store
        .txn(
            Txn::new()
                .when(Compare::Missing(BOOTSTRAP_MARKER.into()))
                .and_then(Op::Put(BOOTSTRAP_MARKER.into(), record.id.clone().into()))
                .and_then(Op::Put(key, encode(&record)?)),
        )
        .await?;
    Ok(done.succeeded.then_some(token))
}

#[cfg(test)]
mod tests {
    use super::*;
    use orion_core::store::MemoryStore;

    fn request(role: Role, scope: Option<&str>) -> TokenRequest {
        TokenRequest {
            name: "ci".into(),
            role,
            scope: scope.map(str::to_owned),
        }
    }

    #[tokio::test]
    async fn a_token_verifies_until_revoked_and_only_its_hash_is_stored() {
        let store = MemoryStore::new();
        let made = create(&store, &request(Role::Operator, Some("web")))
            .await
            .unwrap();
        let caller = verify(&store, &made.token).await.unwrap().unwrap();
        assert_eq!(caller.role, Role::Operator);
        assert!(caller.reaches_service("web-2") && !caller.reaches_service("db"));
        let (_, secret) = split_token(&made.token).unwrap();
        let stored = store.range(TOKENS_PREFIX).await.unwrap();
        let raw = String::from_utf8_lossy(&stored.kvs[0].value).to_string();
        assert!(!raw.contains(secret), "the secret is not stored: {raw}");

        let mut wrong = made.token.clone();
        let last = wrong.pop().unwrap();
        wrong.push(if last == '0' { '1' } else { '0' });
        assert_eq!(verify(&store, &wrong).await.unwrap(), None);
        assert_eq!(verify(&store, "orion_junk").await.unwrap(), None);

        assert!(revoke(&store, &made.info.id).await.unwrap());
        assert_eq!(verify(&store, &made.token).await.unwrap(), None);
        assert!(!revoke(&store, &made.info.id).await.unwrap());
    }

    #[tokio::test]
    async fn the_management_token_is_made_once() {
        let store = MemoryStore::new();
        let first = bootstrap_management_token(&store).await.unwrap().unwrap();
        assert_eq!(
            verify(&store, &first).await.unwrap().unwrap().role,
            Role::Admin
        );
        assert_eq!(bootstrap_management_token(&store).await.unwrap(), None);
        assert_eq!(list(&store).await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn bad_names_and_scopes_are_refused() {
        let store = MemoryStore::new();
        let mut bad = request(Role::Admin, Some("Web/"));
        assert!(create(&store, &bad).await.is_err());
        bad.scope = None;
        bad.name = "no spaces".into();
        assert!(create(&store, &bad).await.is_err());
        assert!("root".parse::<Role>().unwrap_err().contains("read-only"));
    }
}
