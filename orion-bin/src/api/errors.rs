//! Mapping of errors to HTTP responses: 4xx for the caller's mistakes, naming the field and the
//! reason; 503 when the cluster cannot serve (no quorum); 500 otherwise.
//!
//! Every error response is an [`ApiError`] JSON body: the handlers' own errors ([`HttpError`]),
//! unknown routes ([`unknown_route`], 404), and, through the [`json_errors`] middleware,
//! whatever axum and tower answer on their own (405 for a method a route does not serve, bad
//! query strings and bodies, 413 beyond the body limit, 408 on timeout).

use axum::Json;
use axum::extract::Request;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use orion_core::error::FieldError;

use super::types::ApiError;

/// An error response.
#[derive(Debug)]
pub struct HttpError {
    pub status: StatusCode,
    pub body: ApiError,
}

impl HttpError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        HttpError {
            status,
            body: ApiError {
                code: String::new(),
                error: message.into(),
                fields: Vec::new(),
            },
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn not_found(kind: &str, name: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, format!("{kind} {name:?} not found"))
    }
}

impl From<orion_core::Error> for HttpError {
    fn from(e: orion_core::Error) -> Self {
        use orion_core::Error as E;
        let status = match &e {
            E::Invalid(_) | E::Parse(_) => StatusCode::UNPROCESSABLE_ENTITY,
            E::NotFound { .. } => StatusCode::NOT_FOUND,
            E::Conflict(_) | E::IllegalTransition { .. } => StatusCode::CONFLICT,
            E::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            E::Unsupported { .. } => StatusCode::NOT_IMPLEMENTED,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let fields = match &e {
            E::Invalid(v) => v.0.clone(),
            E::Parse(p) => vec![FieldError {
                path: p.path.clone(),
                value: String::new(),
                expected: p.message.clone(),
            }],
            _ => Vec::new(),
        };
        HttpError {
            status,
            body: ApiError {
                code: String::new(),
                error: e.to_string(),
                fields,
            },
        }
    }
}

impl IntoResponse for HttpError {
    /// The body as JSON, its `code` filled from the status when empty.
    fn into_response(mut self) -> Response {
        if self.body.code.is_empty() {
            self.body.code = code_of(self.status).to_owned();
        }
        (self.status, Json(self.body)).into_response()
    }
}

/// The `code` of an error body with `status`.
pub fn code_of(status: StatusCode) -> &'static str {
    match status {
        StatusCode::BAD_REQUEST => "bad_request",
        StatusCode::UNAUTHORIZED => "unauthorized",
        StatusCode::FORBIDDEN => "forbidden",
        StatusCode::MISDIRECTED_REQUEST => "misdirected_request",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::REQUEST_TIMEOUT => "request_timeout",
        StatusCode::CONFLICT => "conflict",
        StatusCode::PRECONDITION_FAILED => "precondition_failed",
        StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::UNPROCESSABLE_ENTITY => "invalid",
        StatusCode::TOO_MANY_REQUESTS => "too_many_requests",
        StatusCode::NOT_IMPLEMENTED => "unsupported",
        StatusCode::BAD_GATEWAY => "bad_gateway",
        StatusCode::SERVICE_UNAVAILABLE => "unavailable",
        StatusCode::GATEWAY_TIMEOUT => "gateway_timeout",
        s if s.is_client_error() => "client_error",
        _ => "internal",
    }
}

/// The fallback of every unknown path: 404 naming the method and path.
pub async fn unknown_route(method: Method, uri: Uri) -> HttpError {
    HttpError::new(
        StatusCode::NOT_FOUND,
        format!("no route {method} {}", uri.path()),
    )
}

/// Largest plain-text error body [`json_errors`] reads to rewrite it.
const MAX_TEXT_ERROR: usize = 64 * 1024;

/// Rewrites every error response (4xx, 5xx) that is not JSON into an [`ApiError`] with the same
/// status and headers: axum's extractor rejections (bad query strings and JSON bodies, with the
/// field they name), 405 for a method a route does not serve, 413 from the body limit, 408 from
/// the request timeout. JSON errors and successes pass untouched.
pub async fn json_errors(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let uri = request.uri().clone();
    let response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) || is_json(response.headers()) {
        return response;
    }
    let query = uri.query();
    let (mut parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, MAX_TEXT_ERROR)
        .await
        .unwrap_or_default();
    let mut error = from_text(status, String::from_utf8_lossy(&bytes).trim(), query);
    if status == StatusCode::METHOD_NOT_ALLOWED {
        // axum adds the `Allow` header after this middleware, on the way out.
        error.body.error = format!(
            "method {method} is not allowed on {}; the Allow header lists the allowed ones",
            uri.path()
        );
    }
    let mut rewritten = error.into_response();
    parts.headers.remove(header::CONTENT_TYPE);
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.remove(header::TRANSFER_ENCODING);
    for (name, value) in rewritten.headers() {
        parts.headers.insert(name.clone(), value.clone());
    }
    *rewritten.headers_mut() = parts.headers;
    rewritten
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"))
}

/// Prefixes of axum's rejection texts that go on with `<field path>: <reason>`, and whether the
/// field is a query parameter.
const DESERIALIZE_PREFIXES: &[(&str, bool)] = &[
    ("Failed to deserialize query string: ", true),
    (
        "Failed to deserialize the JSON body into the target type: ",
        false,
    ),
];

/// The error for a plain-text error `text` (empty: the status's reason): a rejection that names
/// a field gets it in `fields`, with its value from `query` when it is a query parameter.
fn from_text(status: StatusCode, text: &str, query: Option<&str>) -> HttpError {
    let message = if text.is_empty() {
        status.canonical_reason().unwrap_or("error").to_lowercase()
    } else {
        text.to_owned()
    };
    let mut error = HttpError::new(status, message);
    for &(prefix, in_query) in DESERIALIZE_PREFIXES {
        let Some(rest) = text.strip_prefix(prefix) else {
            continue;
        };
        if let Some((path, reason)) = rest.split_once(": ")
            && !path.is_empty()
            && !path.contains(char::is_whitespace)
        {
            let value = query
                .filter(|_| in_query)
                .and_then(|q| query_value(q, path))
                .unwrap_or_default();
            error.body.fields.push(FieldError {
                path: path.to_owned(),
                value,
                expected: reason.to_owned(),
            });
        }
    }
    error
}

/// The (first) raw value of parameter `name` in query string `query`.
fn query_value(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        (key == name).then(|| value.to_owned())
    })
}

/// Result of a handler.
pub type ApiResult<T> = Result<T, HttpError>;
