//! `/v1/secrets`: create, list and remove secrets. No route ever answers a value: a secret is
//! written once (sealed by this node's key before it reaches the store) and read back only by
//! agents, which open it to start containers.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{Method, StatusCode};
use axum::response::IntoResponse;
use orion_core::error::ValidationErrors;
use orion_core::model::spec::ServiceSpec;
use orion_core::secrets::{SealedSecret, SecretValue, check_secret_name};
use serde::Serialize;

use super::access::{Access, RouteTable};
use super::errors::{ApiResult, HttpError};
use super::routes::ApiState;

/// What the API tells about a secret: never its value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct SecretInfo {
    pub name: String,
    /// Milliseconds since the Unix epoch.
    pub created_at_ms: u64,
    /// The id of the key that sealed it.
    pub key_id: String,
}

impl From<&SealedSecret> for SecretInfo {
    fn from(s: &SealedSecret) -> Self {
        SecretInfo {
            name: s.name.clone(),
            created_at_ms: s.created_at_ms,
            key_id: s.key_id.clone(),
        }
    }
}

/// The secret routes: reading names and metadata needs a token, writing needs an operator.
pub fn routes() -> RouteTable {
    use Access::{Operate, Read};
    use Method as M;
    RouteTable::default()
        .add(M::GET, "/v1/secrets", Read, list_secrets)
        .add(M::GET, "/v1/secrets/{name}", Read, get_secret)
        .add(M::POST, "/v1/secrets/{name}", Operate, create_secret)
        .add(M::DELETE, "/v1/secrets/{name}", Operate, delete_secret)
}

fn checked_name(name: &str) -> ApiResult<()> {
    check_secret_name(name).map_err(|expected| {
        let mut errors = ValidationErrors::default();
        errors.push("name", format!("{name:?}"), expected);
        orion_core::Error::from(errors).into()
    })
}

/// `POST /v1/secrets/{name}`: the body is the value (any bytes, 1 B to 64 KiB); 201 with
/// [`SecretInfo`], 409 when the name exists.
async fn create_secret(
    State(state): State<ApiState>,
    Path(name): Path<String>,
    body: Bytes,
) -> ApiResult<impl IntoResponse> {
    checked_name(&name)?;
    let Some(sealer) = &state.secrets else {
        return Err(HttpError::new(
            StatusCode::NOT_IMPLEMENTED,
            "this node holds no cluster key, so it cannot seal secrets",
        ));
    };
    let value = SecretValue::new(body.to_vec())?;
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    let sealed = sealer.seal(&name, &value, now_ms)?;
    state.store.create_secret(&sealed).await?;
    Ok((StatusCode::CREATED, Json(SecretInfo::from(&sealed))))
}

/// `GET /v1/secrets`: every secret's name, creation time and key id, by name.
async fn list_secrets(State(state): State<ApiState>) -> ApiResult<Json<Vec<SecretInfo>>> {
    let secrets = state.store.list_secrets().await?;
    Ok(Json(secrets.iter().map(SecretInfo::from).collect()))
}

/// `GET /v1/secrets/{name}`: one secret's [`SecretInfo`] (404 when absent).
async fn get_secret(
    State(state): State<ApiState>,
    Path(name): Path<String>,
) -> ApiResult<Json<SecretInfo>> {
    checked_name(&name)?;
    match state.store.get_secret(&name).await? {
        Some(s) => Ok(Json(SecretInfo::from(&s))),
        None => Err(HttpError::not_found("secret", &name)),
    }
}

/// `DELETE /v1/secrets/{name}`: 404 when absent, 409 naming the services that reference it.
async fn delete_secret(
    State(state): State<ApiState>,
    Path(name): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    checked_name(&name)?;
    let users: Vec<String> = state
        .store
        .list_services()
        .await?
        .into_iter()
        .filter(|s| s.spec.secrets.iter().any(|r| r.name == name))
        .map(|s| s.spec.name)
        .collect();
    if !users.is_empty() {
        return Err(HttpError::new(
            StatusCode::CONFLICT,
            format!(
                "secret {name:?} is used by service(s) {}; remove it from their specs first",
                users.join(", ")
            ),
        ));
    }
    if !state.store.delete_secret(&name).await? {
        return Err(HttpError::not_found("secret", &name));
    }
    Ok(Json(serde_json::json!({ "deleted": name })))
}

/// Refuses (422, naming each) a spec that references secrets that do not exist: a service is
/// never accepted that could not start.
pub(super) async fn check_references(state: &ApiState, spec: &ServiceSpec) -> ApiResult<()> {
    let mut errors = ValidationErrors::default();
    for (i, r) in spec.secrets.iter().enumerate() {
        if state.store.get_secret(&r.name).await?.is_none() {
            errors.push(
                format!("secrets[{i}].name"),
                format!("{:?}", r.name),
                "an existing secret (create it first: orion secret create NAME)",
            );
        }
    }
    errors
        .into_result()
        .map_err(|e| orion_core::Error::from(e).into())
}
