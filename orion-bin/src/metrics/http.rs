//! The API middleware that counts requests and times them, by matched route.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;

use super::{Metrics, RouteCodeLabels, RouteLabels};

/// Route label of a request that matched no route (404s): the raw path is never a label.
pub const UNMATCHED: &str = "unmatched";

/// The method as a label: the standard methods by name, anything else `other`.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// Counts the request in `orion_api_requests_total{method,route,code}` and observes the time to
/// its response head in `orion_api_request_duration_seconds{method,route}`. `route` is the
/// route template that matched (`/v1/services/{name}`), or `unmatched`. Add it with
/// `Router::layer` (not `route_layer`), so unmatched requests are counted too.
pub async fn track_requests(
    State(metrics): State<Arc<Metrics>>,
    request: Request,
    next: Next,
) -> Response {
    let start = Instant::now();
    let method = method_label(request.method());
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or(UNMATCHED, MatchedPath::as_str)
        .to_owned();
    let response = next.run(request).await;
    let code = response.status().as_u16();
    let labels = RouteLabels { method, route };
    metrics
        .api_latency
        .get_or_create(&labels)
        .observe(start.elapsed().as_secs_f64());
    metrics
        .api_requests
        .get_or_create(&RouteCodeLabels {
            method,
            route: labels.route,
            code,
        })
        .inc();
    response
}
