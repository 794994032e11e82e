//! The API's OpenAPI 3.1 document, generated from the code with utoipa and served at
//! `GET /v1/openapi.json`.
//!
//! - Each route's operation (parameters, body, answers) is in [`paths`]; the schemas are
//!   derived from the types the handlers use (`ToSchema` next to their `Serialize`).
//! - Security comes from the route table ([`super::routes::route_table`]): an operation needs the
//!   `bearer` scheme unless its route is [`Access::Open`]; `/metrics` takes it optionally
//!   (`api.metricsWithoutToken`). Each operation's description ends with the least role.
//! - Every operation answers errors (`4XX`, `5XX`) with the JSON error shape ([`ApiError`]).
//!
//! Unit tests check that the document and the route table list the same (path, method) pairs
//! and that docs/api.md documents exactly those routes.

mod paths;
#[cfg(test)]
mod tests;

use std::sync::OnceLock;

use axum::http::{Method, header};
use axum::response::{IntoResponse, Response};
use utoipa::OpenApi;
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};

use super::access::{Access, RouteEntry};
use super::types::ApiError;

/// Name of the security scheme: `Authorization: Bearer <token>`.
pub const BEARER: &str = "bearer";
/// Name of the shared error response.
const ERROR_RESPONSE: &str = "Error";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Orion API",
        description = "The HTTP API every Orion node serves (see docs/api.md). Every error is \
                       JSON: `{code, error, fields}`.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    paths(
        paths::healthz,
        paths::healthz_v1,
        paths::metrics,
        paths::openapi,
        paths::list_services,
        paths::create_service,
        paths::get_service,
        paths::put_service,
        paths::delete_service,
        paths::scale_service,
        paths::service_logs,
        paths::rollout_status,
        paths::rollout_pause,
        paths::rollout_resume,
        paths::rollout_promote,
        paths::rollout_undo,
        paths::restart,
        paths::list_tasks,
        paths::get_task,
        paths::stop_task,
        paths::task_logs,
        paths::simple_task,
        paths::list_nodes,
        paths::get_node,
        paths::drain_node,
        paths::undrain_node,
        paths::cluster_status,
        paths::remove_member,
        paths::network,
        paths::plan,
        paths::chaos_list,
        paths::chaos_stop,
        paths::chaos_latency,
        paths::chaos_partition,
        paths::chaos_node_failure,
        paths::chaos_monkey,
        paths::list_secrets,
        paths::get_secret,
        paths::create_secret,
        paths::delete_secret,
        paths::list_tokens,
        paths::create_token,
        paths::revoke_token,
        paths::rotate_join_token,
        paths::exec_task,
        paths::events,
    ),
    components(schemas(ApiError))
)]
struct ApiDoc;

/// The operation of `method` in `item`, if the document has one.
fn operation_mut<'a>(
    item: &'a mut utoipa::openapi::PathItem,
    method: &Method,
) -> Option<&'a mut Operation> {
    match *method {
        Method::GET => item.get.as_mut(),
        Method::POST => item.post.as_mut(),
        Method::PUT => item.put.as_mut(),
        Method::DELETE => item.delete.as_mut(),
        Method::PATCH => item.patch.as_mut(),
        _ => None,
    }
}

/// The document for the routes `entries` (the route table): [`ApiDoc`] with the bearer scheme,
/// each operation's security and least role from its entry, and the error responses.
pub fn document_for(entries: &[RouteEntry]) -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    let components = doc.components.get_or_insert_with(Default::default);
    components.security_schemes.insert(
        BEARER.to_owned(),
        RefOr::T(SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .description(Some(
                    "An API token (`orion token create`); the CLI reads ORION_TOKEN or the \
                     credentials file",
                ))
                .build(),
        )),
    );
    components.responses.insert(
        ERROR_RESPONSE.to_owned(),
        RefOr::T(
            ResponseBuilder::new()
                .description(
                    "An error: `code` (one per status), `error` (what went wrong) and, for bad \
                     input, `fields` (path, value, expected)",
                )
                .content(
                    "application/json",
                    ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name("ApiError")))
                        .build(),
                )
                .build(),
        ),
    );
    for entry in entries {
        let Some(item) = doc.paths.paths.get_mut(entry.path) else {
            continue;
        };
        let Some(op) = operation_mut(item, &entry.method) else {
            continue;
        };
        let bearer = || SecurityRequirement::new(BEARER, Vec::<String>::new());
        let (security, needs) = match entry.access {
            Access::Open => (Vec::new(), "no token"),
            Access::Metrics => (
                vec![SecurityRequirement::default(), bearer()],
                "a token of any role, unless `api.metricsWithoutToken` is set",
            ),
            Access::Read => (vec![bearer()], "a token of any role (`read-only` or above)"),
            Access::Operate => (vec![bearer()], "an `operator` or `admin` token"),
            Access::Admin => (vec![bearer()], "an `admin` token"),
        };
        op.security = Some(security);
        let text = op.description.take().unwrap_or_default();
        let sep = if text.is_empty() { "" } else { "\n\n" };
        op.description = Some(format!("{text}{sep}Needs {needs}."));
        for range in ["4XX", "5XX"] {
            op.responses.responses.insert(
                range.to_owned(),
                RefOr::Ref(Ref::from_response_name(ERROR_RESPONSE)),
            );
        }
    }
    doc
}

/// The document of the API's route table, as JSON (built once).
pub fn document_json() -> &'static str {
    static JSON: OnceLock<String> = OnceLock::new();
    JSON.get_or_init(|| {
        let table = super::routes::route_table();
        let doc = document_for(table.entries());
        serde_json::to_string_pretty(&doc).expect("the document serializes")
    })
}

/// `GET /v1/openapi.json`: this API's OpenAPI document.
pub async fn serve() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        document_json(),
    )
        .into_response()
}
