//! The CLI's HTTP client for the API, with errors that map to exit codes.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::api::types::ApiError;

/// Exit codes of client commands (documented in docs/cli.md): 0 success, 2 a bad command line
/// (clap's own code), and the ones below.
pub mod exit {
    /// Anything else went wrong.
    pub const FAILURE: u8 = 1;
    /// A bad command line (clap's code; also a `--log-level` that is not a level or filter).
    pub const USAGE: u8 = 2;
    /// The named object does not exist.
    pub const NOT_FOUND: u8 = 3;
    /// The input (spec, flags) was refused; nothing was changed.
    pub const INVALID: u8 = 4;
    /// The API could not be reached, or the cluster has no quorum.
    pub const UNAVAILABLE: u8 = 5;
    /// A rollout did not converge in time.
    pub const TIMEOUT: u8 = 6;
    /// No token, an unknown or revoked one (401), or a role without the permission (403).
    pub const DENIED: u8 = 7;
    /// A rollout cannot proceed: no node can take a replica, every new replica fails, or the
    /// cluster rolled it back.
    pub const ROLLOUT_FAILED: u8 = 8;
}

/// Why a client command failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The request could not be sent or its answer not read. `cause` is the whole chain of
    /// causes, rendered once (the error has no `source`, so nothing prints twice).
    #[error(
        "cannot reach the Orion API at {addr}: {cause}\n(is a node running? set --addr or ORION_ADDR)"
    )]
    Unreachable { addr: String, cause: String },
    /// No answer within the request's time bound (`--timeout`).
    #[error(
        "no answer from the Orion API at {addr} within {} (--timeout): the node may be paused, \
         overloaded or without quorum",
        humantime::format_duration(*.after)
    )]
    Timeout { addr: String, after: Duration },
    #[error("{}", render_api_error(.status, .body))]
    Api { status: StatusCode, body: ApiError },
    #[error("unexpected response from {addr}: {reason}")]
    Protocol { addr: String, reason: String },
}

fn render_api_error(status: &StatusCode, body: &ApiError) -> String {
    let mut s = format!("{} ({})", body.error, status.as_u16());
    for f in &body.fields {
        s.push_str(&format!("\n  - {f}"));
    }
    s
}

impl ClientError {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            ClientError::Unreachable { .. } | ClientError::Timeout { .. } => exit::UNAVAILABLE,
            ClientError::Api { status, .. } => match *status {
                StatusCode::NOT_FOUND => exit::NOT_FOUND,
                StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => exit::DENIED,
                StatusCode::SERVICE_UNAVAILABLE | StatusCode::GATEWAY_TIMEOUT => exit::UNAVAILABLE,
                s if s.is_client_error() => exit::INVALID,
                _ => exit::FAILURE,
            },
            ClientError::Protocol { .. } => exit::FAILURE,
        }
    }
}

/// How long one request may take by default, from sending it to the end of its answer.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Bounds of `--timeout`.
pub const MIN_TIMEOUT: Duration = Duration::from_millis(100);
/// Bounds of `--timeout`.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(24 * 3600);

/// Parses `--timeout`: a humantime duration (`2s`, `500ms`, `5m`) from 100 ms to 24 h.
pub fn parse_timeout(text: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(text.trim())
        .map_err(|e| format!("{text:?} is not a duration ({e}); expected e.g. 2s, 500ms, 5m"))?;
    if !(MIN_TIMEOUT..=MAX_TIMEOUT).contains(&d) {
        return Err(format!("{text:?} is out of range; expected 100ms to 24h"));
    }
    Ok(d)
}

/// A client of one node's API.
///
/// Contract: every request, from sending it to reading the end of its answer, is bounded by
/// the client's timeout ([`DEFAULT_REQUEST_TIMEOUT`] unless [`Client::with_timeout`]); past it
/// the call fails with [`ClientError::Timeout`]. A stream ([`Client::stream`]) is bounded only
/// until its answer's head arrives.
#[derive(Clone)]
pub struct Client {
    base: String,
    http: reqwest::Client,
    /// Sent as `Authorization: Bearer <token>` on every request.
    token: Option<String>,
    /// Bound of one request.
    timeout: Duration,
}

impl std::fmt::Debug for Client {
    /// Never shows the token.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl Client {
    /// A client for `addr` (`host:port` or a full `http://` URL).
    pub fn new(addr: &str) -> Self {
        let base = if addr.starts_with("http://") || addr.starts_with("https://") {
            addr.trim_end_matches('/').to_owned()
        } else {
            format!("http://{}", addr.trim_end_matches('/'))
        };
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(3))
            .build()
            .expect("a TLS-free reqwest client always builds");
        Client {
            base,
            http,
            token: None,
            timeout: DEFAULT_REQUEST_TIMEOUT,
        }
    }

    /// This client, bounding every request by `timeout`.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The bound of one request.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// This client, trusting only the CA certificate(s) in `ca_pem` (PEM) for TLS; an address
    /// given without a scheme is then reached over `https`. `None` leaves the client as it is
    /// (an address without a scheme is reached over plain `http`).
    pub fn with_ca(mut self, ca_pem: Option<&[u8]>, addr: &str) -> anyhow::Result<Self> {
        let Some(pem) = ca_pem else {
            return Ok(self);
        };
        let certs = reqwest::Certificate::from_pem_bundle(pem)
            .map_err(|e| anyhow::anyhow!("the cluster CA certificate (--ca / ORION_CA): {e}"))?;
        if certs.is_empty() {
            anyhow::bail!("the cluster CA file (--ca / ORION_CA) holds no PEM certificate");
        }
        self.http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(3))
            .tls_certs_only(certs)
            .build()
            .map_err(|e| anyhow::anyhow!("cannot set up TLS with the cluster CA: {e}"))?;
        if !(addr.starts_with("http://") || addr.starts_with("https://")) {
            self.base = format!("https://{}", addr.trim_end_matches('/'));
        }
        Ok(self)
    }

    /// This client, sending `token` with every request.
    pub fn with_token(mut self, token: Option<String>) -> Self {
        self.token = token;
        self
    }

    fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        let req = self.http.request(method, self.url(path));
        match &self.token {
            Some(token) => req.bearer_auth(token),
            None => req,
        }
    }

    /// `GET path`, decoded.
    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        self.call(Method::GET, path, None::<&()>).await
    }

    /// `method path` with a JSON body, decoded.
    pub async fn call<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<T, ClientError> {
        let mut req = self.request(method, path);
        if let Some(b) = body {
            req = req.json(b);
        }
        self.decode(req).await
    }

    /// `POST path` with raw bytes as the body (a secret's value), decoded.
    pub async fn post_bytes<T: DeserializeOwned>(
        &self,
        path: &str,
        body: Vec<u8>,
    ) -> Result<T, ClientError> {
        let req = self
            .request(Method::POST, path)
            .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
            .body(body);
        self.decode(req).await
    }

    /// `f` bounded by this client's timeout.
    async fn bounded<T>(
        &self,
        f: impl std::future::Future<Output = Result<T, ClientError>>,
    ) -> Result<T, ClientError> {
        tokio::time::timeout(self.timeout, f)
            .await
            .unwrap_or_else(|_| {
                Err(ClientError::Timeout {
                    addr: self.base.clone(),
                    after: self.timeout,
                })
            })
    }

    /// `GET path`, as a response to stream (logs).
    pub async fn stream(&self, path: &str) -> Result<reqwest::Response, ClientError> {
        self.bounded(async {
            let resp = self
                .request(Method::GET, path)
                .send()
                .await
                .map_err(|e| self.unreachable(e))?;
            self.check(resp).await
        })
        .await
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    fn unreachable(&self, source: reqwest::Error) -> ClientError {
        // reqwest's own message repeats the URL; its causes say what failed.
        let mut causes = Vec::new();
        let mut next = std::error::Error::source(&source);
        while let Some(e) = next {
            causes.push(e.to_string());
            next = e.source();
        }
        let cause = if causes.is_empty() {
            source.to_string()
        } else {
            causes.join(": ")
        };
        ClientError::Unreachable {
            addr: self.base.clone(),
            cause,
        }
    }

    async fn check(&self, resp: reqwest::Response) -> Result<reqwest::Response, ClientError> {
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        let text = resp.text().await.unwrap_or_default();
        let mut body = serde_json::from_str::<ApiError>(&text).unwrap_or(ApiError {
            code: String::new(),
            error: if text.is_empty() {
                status.canonical_reason().unwrap_or("error").to_owned()
            } else {
                text
            },
            fields: Vec::new(),
        });
        if status == StatusCode::UNAUTHORIZED && self.token.is_none() {
            body.error.push_str(
                "\n(no token was sent: set ORION_TOKEN, or --credentials FILE; a node that \
                 bootstraps writes one to <data dir>/credentials)",
            );
        }
        Err(ClientError::Api { status, body })
    }

    async fn decode<T: DeserializeOwned>(
        &self,
        req: reqwest::RequestBuilder,
    ) -> Result<T, ClientError> {
        self.bounded(async {
            let resp = req.send().await.map_err(|e| self.unreachable(e))?;
            let resp = self.check(resp).await?;
            let bytes = resp.bytes().await.map_err(|e| self.unreachable(e))?;
            serde_json::from_slice(&bytes).map_err(|e| ClientError::Protocol {
                addr: self.base.clone(),
                reason: e.to_string(),
            })
        })
        .await
    }
}
