//! Mapping of errors to HTTP responses: 4xx for the caller's mistakes, naming the field and the
//! reason; 503 when the cluster cannot serve (no quorum); 500 otherwise.

use axum::Json;
use axum::http::StatusCode;
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
                error: e.to_string(),
                fields,
            },
        }
    }
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        (self.status, Json(self.body)).into_response()
    }
}

/// Result of a handler.
pub type ApiResult<T> = Result<T, HttpError>;
