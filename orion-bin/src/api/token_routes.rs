//! `/v1/tokens`: create, list and revoke API tokens (admin only; see [`super::tokens`]).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{Method, StatusCode};

use super::access::{Access, RouteTable};
use super::errors::{ApiResult, HttpError};
use super::routes::ApiState;
use super::tokens::{self, CreatedToken, TokenInfo, TokenRequest};

/// The token routes, to merge into the API's route table.
pub fn routes() -> RouteTable {
    RouteTable::default()
        .add(Method::GET, "/v1/tokens", Access::Admin, list)
        .add(Method::POST, "/v1/tokens", Access::Admin, create)
        .add(Method::DELETE, "/v1/tokens/{id}", Access::Admin, revoke)
}

/// `GET /v1/tokens`: every token, without secrets or hashes.
async fn list(State(state): State<ApiState>) -> ApiResult<Json<Vec<TokenInfo>>> {
    let records = tokens::list(state.store.inner().as_ref()).await?;
    Ok(Json(records.iter().map(TokenInfo::from).collect()))
}

/// `POST /v1/tokens` `{"name", "role", "scope"?}`: 201 with the token, shown this once.
async fn create(
    State(state): State<ApiState>,
    body: Option<Json<TokenRequest>>,
) -> ApiResult<(StatusCode, Json<CreatedToken>)> {
    let Some(Json(request)) = body else {
        return Err(HttpError::bad_request(
            "body: expected JSON {\"name\": \"ci\", \"role\": \"admin|operator|read-only\", \"scope\": \"web\"}",
        ));
    };
    let created = tokens::create(state.store.inner().as_ref(), &request).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// `DELETE /v1/tokens/{id}`: the token is refused from now on; 404 for an unknown id, 409 for
/// the last admin token.
async fn revoke(
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    let store = state.store.inner().as_ref();
    let all = tokens::list(store).await?;
    let admins = all.iter().filter(|t| t.role == tokens::Role::Admin).count();
    if admins == 1
        && all
            .iter()
            .any(|t| t.id == id && t.role == tokens::Role::Admin)
    {
        return Err(HttpError::new(
            StatusCode::CONFLICT,
            format!(
                "token {id} is the last admin token: create another admin token before \
                 revoking it, or nobody could manage tokens any more"
            ),
        ));
    }
    if !tokens::revoke(store, &id).await? {
        return Err(HttpError::not_found("token", &id));
    }
    Ok(Json(serde_json::json!({ "revoked": id })))
}
