//! Serving the API so that misbehaving clients cannot take the node down.
//!
//! - **Header-read timeout** (`api.headerReadTimeout`, default 10 s): hyper closes a connection
//!   that has not sent a whole request head that long after it opened or after its previous
//!   response, so idle and half-open connections do not pile up.
//! - **Request timeout** (`api.requestTimeout`, default 30 s): a request with no response by then
//!   is answered 408 (tower-http's `TimeoutLayer`). It bounds reading the body and the handler,
//!   not a streamed response body (followed logs keep streaming).
//! - **Connection cap**: at most [`connection_cap`] connections are open; at the cap the server
//!   stops accepting, and new connections wait in the listen backlog until one closes. The cap
//!   stays below the process's open-file limit (RLIMIT_NOFILE), leaving [`fd_headroom`]
//!   descriptors for the node's own files and sockets (store, Raft, gossip, the container
//!   engine, logs), so a flood of connections cannot starve the agent or the store.
//!
//! - **TLS** when given a server configuration (the node's certificate, see docs/security.md):
//!   each handshake runs in the connection's own task, within the header-read timeout, so a
//!   slow or plaintext client holds up nobody.
//!
//! HTTP/1.1 only: the CLI and the nodes speak HTTP/1.1 to each other, and serving HTTP/2 by
//! sniffing the preface would read from a connection before its header timeout starts.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower_http::timeout::TimeoutLayer;
use tracing::{debug, info, warn};

use crate::config::ApiConfig;

/// Fewest connections the cap allows, however low the file limit.
pub const MIN_CONNECTIONS: usize = 16;
/// How long shutdown waits for open connections (followed log streams never finish).
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);
/// Pause after a failed accept (for instance EMFILE), so a failure does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// The soft RLIMIT_NOFILE of this process, from `/proc/self/limits`; `None` when it cannot be
/// read or is unlimited.
pub fn open_file_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    parse_open_file_limit(&limits)
}

fn parse_open_file_limit(limits: &str) -> Option<u64> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Descriptors kept for the node itself out of `file_limit`: a quarter of it, at least 256
/// (sled and Raft files, peer sockets, the engine's socket, one or more pipes per process-runtime
/// task up to `maxContainersPerNode`, log streams).
pub fn fd_headroom(file_limit: u64) -> u64 {
    (file_limit / 4).max(256)
}

/// The connection cap for an open-file limit of `file_limit` (1024 when unknown) and the
/// configured `api.maxConnections` (0: none): `file_limit - fd_headroom`, lowered to the
/// configured value, never below [`MIN_CONNECTIONS`].
pub fn connection_cap(file_limit: Option<u64>, configured: usize) -> usize {
    let limit = file_limit.unwrap_or(1024);
    let by_files = usize::try_from(limit.saturating_sub(fd_headroom(limit))).unwrap_or(usize::MAX);
    let cap = if configured == 0 {
        by_files
    } else {
        configured.min(by_files)
    };
    cap.max(MIN_CONNECTIONS)
}

/// The request timeout: 408 when a request has no response after `timeout`.
pub fn request_timeout_layer(timeout: Duration) -> TimeoutLayer {
    TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, timeout)
}

/// Serves `router` (its request timeout is applied by `api::router`) on `listener` until `shutdown` completes,
/// with the header-read timeout and connection cap of `config`; then lets open connections
/// finish for a few seconds.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    config: &ApiConfig,
    tls: Option<Arc<rustls::ServerConfig>>,
    shutdown: impl Future<Output = ()> + Send,
) {
    let tls = tls.map(tokio_rustls::TlsAcceptor::from);
    let file_limit = open_file_limit();
    let cap = connection_cap(file_limit, config.max_connections);
    info!(
        max_connections = cap,
        open_file_limit = file_limit.map_or("unknown".into(), |l| l.to_string()),
        header_read_timeout = ?config.header_read_timeout,
        request_timeout = ?config.request_timeout,
        "API server limits"
    );
    let slots = Arc::new(Semaphore::new(cap));
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(config.header_read_timeout);
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    let mut at_cap_logged = false;
    loop {
        let permit = match slots.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                if !at_cap_logged {
                    warn!(
                        max_connections = cap,
                        "API at its connection cap; new connections wait"
                    );
                    at_cap_logged = true;
                }
                tokio::select! {
                    p = slots.clone().acquire_owned() => p.expect("the semaphore is never closed"),
                    () = &mut shutdown => break,
                }
            }
        };
        let (stream, remote) = tokio::select! {
            r = listener.accept() => match r {
                Ok(accepted) => accepted,
                Err(e) => {
                    warn!("API accept failed: {e}");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        if slots.available_permits() > cap / 2 {
            at_cap_logged = false;
        }
        let service = TowerToHyperService::new(router.clone());
        let Some(acceptor) = tls.clone() else {
            let conn = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
            tokio::spawn(async move {
                if let Err(e) = conn.await {
                    debug!(%remote, "API connection ended: {e}");
                }
                drop(permit);
            });
            continue;
        };
        let (http, watcher) = (http.clone(), graceful.watcher());
        let handshake_timeout = config.header_read_timeout;
        tokio::spawn(async move {
            let stream =
                match tokio::time::timeout(handshake_timeout, acceptor.accept(stream)).await {
                    Ok(Ok(stream)) => stream,
                    Ok(Err(e)) => {
                        debug!(%remote, "API TLS handshake refused: {e}");
                        return;
                    }
                    Err(_) => {
                        debug!(%remote, "API TLS handshake timed out");
                        return;
                    }
                };
            let conn = watcher.watch(http.serve_connection(TokioIo::new(stream), service));
            if let Err(e) = conn.await {
                debug!(%remote, "API connection ended: {e}");
            }
            drop(permit);
        });
    }
    drop(listener);
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        debug!("API connections still open after {SHUTDOWN_GRACE:?}; closing them");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_open_file_limit_is_read_from_proc() {
        let text = "Limit                     Soft Limit           Hard Limit           Units     \n\
                    Max processes             63448                63448                processes \n\
                    Max open files            1024                 524288               files     \n";
        assert_eq!(parse_open_file_limit(text), Some(1024));
        assert_eq!(
            parse_open_file_limit("Max open files  unlimited unlimited files"),
            None
        );
        assert!(open_file_limit().is_some(), "this process has a file limit");
    }

    #[test]
    fn the_cap_leaves_headroom_below_the_file_limit() {
        assert_eq!(connection_cap(Some(1024), 0), 768);
        assert_eq!(connection_cap(Some(20_000), 0), 15_000);
        assert_eq!(connection_cap(Some(20_000), 500), 500);
        assert_eq!(
            connection_cap(Some(1024), 5000),
            768,
            "never above the file limit"
        );
        assert_eq!(connection_cap(Some(100), 0), MIN_CONNECTIONS);
        assert_eq!(connection_cap(None, 0), 768);
    }
}
