//! Reading a spec from a request body: format, validation, what this version does not act on,
//! and whether the caller may write it.

use axum::http::{HeaderMap, StatusCode, header};
use orion_core::model::spec::{ServiceSpec, SpecFormat, parse_spec_with};

use super::access::check_spec_for;
use super::errors::{ApiResult, HttpError};
use super::routes::ApiState;
use super::tokens::Caller;

/// Reads a spec body in the format its content type names (JSON or YAML; the forgery guard
/// refuses other types before this), validates it against the cluster's limits, and checks that
/// `caller` may write it (scope, host access: [`check_spec_for`]).
pub(in crate::api) fn spec_from_body(
    state: &ApiState,
    caller: &Caller,
    headers: &HeaderMap,
    body: &str,
) -> ApiResult<ServiceSpec> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let format = if content_type.contains("json") {
        SpecFormat::Json
    } else if content_type.contains("yaml") {
        SpecFormat::Yaml
    } else {
        SpecFormat::Auto
    };
    if body.trim().is_empty() {
        return Err(HttpError::bad_request(
            "empty body: send a service spec as JSON or YAML",
        ));
    }
    let spec = parse_spec_with(body, format, &state.settings.limits)?;
    let scorers: Vec<&str> = state.scheduler.stages().iter().map(|s| s.name).collect();
    if spec.scheduling.network_aware == Some(true)
        && !scorers.contains(&orion_netscore::scoring::NETWORK)
    {
        return Err(HttpError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!(
                "scheduling.network_aware: true, but this cluster's scheduler has no `{}` \
                 scorer (its stages: {}); remove the field, or set `scheduler.networkAware: \
                 true` in orion.yaml",
                orion_netscore::scoring::NETWORK,
                scorers.join(", ")
            ),
        ));
    }
    check_spec_for(state, caller, &spec)?;
    Ok(spec)
}
