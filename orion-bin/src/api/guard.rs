//! Browser-forgery protection, applied to every request before routing:
//!
//! - **Host**: the `Host` header, when present (browsers always send it), must be an IP address (with or without port), `localhost`, or a
//!   name listed in `api.allowedHosts`; otherwise 421. This defeats DNS rebinding, where a page
//!   of `evil.example` resolves its own name to the node's address.
//! - **Origin**: a request that carries `Origin` (browsers send it on cross-origin requests and
//!   on every write) is refused with 403 unless the origin is the API itself
//!   (`http://<Host>` or `https://<Host>`) or listed in `api.allowedOrigins`. `Origin: null`
//!   (sandboxed frames, files) is refused too.
//! - **Content-Type**: a request with a body must declare `application/json` or
//!   `application/yaml` (parameters such as `charset` are fine); otherwise 415. A secret's value
//!   (`POST /v1/secrets/{name}`) is declared `application/octet-stream` instead. Browsers can
//!   send `text/plain`, form and multipart bodies cross-site without a preflight, never these.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::errors::HttpError;

/// Content types a request body may declare.
pub const BODY_TYPES: [&str; 2] = ["application/json", "application/yaml"];
/// The content type of a secret's raw value, accepted only under [`RAW_BODY_PREFIX`].
pub const RAW_BODY_TYPE: &str = "application/octet-stream";
/// The routes whose body is raw bytes: a secret's value.
pub const RAW_BODY_PREFIX: &str = "/v1/secrets/";

/// The names and origins allowed besides the defaults (from `api:` in orion.yaml).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ForgeryGuard {
    /// Host names (lowercase, without port) accepted in `Host` besides IPs and `localhost`.
    pub allowed_hosts: Vec<String>,
    /// Origins (`scheme://host[:port]`, lowercase) accepted besides the API's own.
    pub allowed_origins: Vec<String>,
}

impl ForgeryGuard {
    /// The host part of a `Host` value (`[::1]:8000` -> `::1`, `a:80` -> `a`).
    fn host_name(host: &str) -> &str {
        if let Some(rest) = host.strip_prefix('[') {
            return rest.split(']').next().unwrap_or(rest);
        }
        match host.rsplit_once(':') {
            Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
            _ => host,
        }
    }

    fn host_allowed(&self, host: &str) -> bool {
        let name = Self::host_name(host).to_ascii_lowercase();
        name.parse::<std::net::IpAddr>().is_ok()
            || name == "localhost"
            || self.allowed_hosts.contains(&name)
    }

    fn origin_allowed(&self, origin: &str, host: &str) -> bool {
        let origin = origin.to_ascii_lowercase();
        let host = host.to_ascii_lowercase();
        origin == format!("http://{host}")
            || origin == format!("https://{host}")
            || self.allowed_origins.contains(&origin)
    }

    /// The refusal for a request with `headers`, if it is refused (a body is known from
    /// `Content-Length` or `Transfer-Encoding`).
    #[cfg(test)]
    pub fn check(&self, headers: &HeaderMap) -> Result<(), HttpError> {
        self.check_request(headers, has_body(headers), false)
    }

    /// [`ForgeryGuard::check`] for a request that carries a body when `with_body`; with
    /// `raw_body`, [`RAW_BODY_TYPE`] is accepted too.
    pub fn check_request(
        &self,
        headers: &HeaderMap,
        with_body: bool,
        raw_body: bool,
    ) -> Result<(), HttpError> {
        // A request without Host (HTTP/1.0, in-process calls) is no browser's: browsers always
        // send one.
        let host = headers
            .get(header::HOST)
            .map(|v| v.to_str().unwrap_or(""))
            .unwrap_or_default();
        let hosts = headers.get_all(header::HOST).iter().count();
        if hosts > 1 || (hosts == 1 && !self.host_allowed(host)) {
            return Err(HttpError::new(
                StatusCode::MISDIRECTED_REQUEST,
                format!(
                    "Host {host:?} is not a name this node answers to: use its IP address or \
                     localhost, or list the name in api.allowedHosts"
                ),
            ));
        }
        if let Some(origin) = headers.get(header::ORIGIN) {
            let origin = origin.to_str().unwrap_or("(not text)");
            if !self.origin_allowed(origin, host) {
                return Err(HttpError::new(
                    StatusCode::FORBIDDEN,
                    format!(
                        "Origin {origin:?} is not this API's own origin: cross-site browser \
                         requests are refused (list trusted origins in api.allowedOrigins)"
                    ),
                ));
            }
        }
        if with_body {
            let declared = headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            let media = declared.split(';').next().unwrap_or("").trim();
            let raw_ok = raw_body && media.eq_ignore_ascii_case(RAW_BODY_TYPE);
            if !raw_ok && !BODY_TYPES.iter().any(|t| media.eq_ignore_ascii_case(t)) {
                return Err(HttpError::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    format!(
                        "Content-Type {declared:?}: a request body must be declared as {}",
                        BODY_TYPES.join(" or ")
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// True when the request carries a body (a non-zero length, or a chunked one).
fn has_body(headers: &HeaderMap) -> bool {
    headers.contains_key(header::TRANSFER_ENCODING)
        || headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim() != "0")
}

/// The middleware: refuses what [`ForgeryGuard::check`] refuses.
pub async fn refuse_forgeries(
    State(guard): State<std::sync::Arc<ForgeryGuard>>,
    request: Request,
    next: Next,
) -> Response {
    use axum::body::HttpBody;
    let with_body = has_body(request.headers()) || request.body().size_hint().exact() != Some(0);
    let raw_body = request.uri().path().starts_with(RAW_BODY_PREFIX);
    match guard.check_request(request.headers(), with_body, raw_body) {
        Ok(()) => next.run(request).await,
        Err(e) => e.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn hosts_are_ips_localhost_or_listed_names() {
        let guard = ForgeryGuard {
            allowed_hosts: vec!["orion.internal".into()],
            ..Default::default()
        };
        for ok in [
            "127.0.0.1:8000",
            "[::1]:8000",
            "localhost:8000",
            "ORION.internal",
            "10.0.0.5",
        ] {
            assert!(guard.check(&headers(&[("host", ok)])).is_ok(), "{ok}");
        }
        for refused in ["evil.example:8000", "", "127.0.0.1.evil.example"] {
            let e = guard.check(&headers(&[("host", refused)])).unwrap_err();
            assert_eq!(e.status, StatusCode::MISDIRECTED_REQUEST, "{refused}");
        }
    }

    #[test]
    fn foreign_origins_and_undeclared_bodies_are_refused() {
        let guard = ForgeryGuard {
            allowed_origins: vec!["https://console.example".into()],
            ..Default::default()
        };
        let host = ("host", "127.0.0.1:8000");
        assert!(
            guard
                .check(&headers(&[host, ("origin", "http://127.0.0.1:8000")]))
                .is_ok()
        );
        assert!(
            guard
                .check(&headers(&[host, ("origin", "https://console.example")]))
                .is_ok()
        );
        for origin in ["http://evil.example", "null", "http://127.0.0.1:9999"] {
            let e = guard
                .check(&headers(&[host, ("origin", origin)]))
                .unwrap_err();
            assert_eq!(e.status, StatusCode::FORBIDDEN, "{origin}");
        }
        let body = ("content-length", "12");
        for ct in ["text/plain", "application/x-www-form-urlencoded", ""] {
            let e = guard
                .check(&headers(&[host, body, ("content-type", ct)]))
                .unwrap_err();
            assert_eq!(e.status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{ct}");
        }
        for ct in ["application/json", "application/yaml; charset=utf-8"] {
            assert!(
                guard
                    .check(&headers(&[host, body, ("content-type", ct)]))
                    .is_ok()
            );
        }
        assert!(
            guard
                .check(&headers(&[host, ("content-length", "0")]))
                .is_ok(),
            "no body, no type needed"
        );
    }
}
