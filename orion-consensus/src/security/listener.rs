//! [`TlsListener`]: a TCP listener whose connections complete a TLS handshake before axum sees
//! them, carrying the verified client's identity ([`PeerInfo`]).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::connect_info::Connected;
use axum::serve::{IncomingStream, Listener};
use rustls::ServerConfig;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use super::Role;
use super::node_cert::identity_of;

/// The longest a TLS handshake may take before the connection is dropped.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// Refused handshakes are logged at most this often.
static REFUSED_HANDSHAKES: crate::cluster_id::LogLimiter =
    crate::cluster_id::LogLimiter::new(Duration::from_secs(10));

/// The most handshakes in progress at once; further connections wait to be accepted.
pub const MAX_PENDING_HANDSHAKES: usize = 256;

/// Who is at the other end of a connection to the Raft port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerInfo {
    /// The peer's address.
    pub addr: SocketAddr,
    /// The node name and role in the client certificate it presented, verified against the
    /// cluster CA; `None` for a plaintext port, or a TLS client without a certificate (a
    /// joining node).
    pub node: Option<(String, Option<Role>)>,
    /// True when the connection is TLS.
    pub tls: bool,
}

impl Connected<IncomingStream<'_, TlsListener>> for PeerInfo {
    fn connect_info(stream: IncomingStream<'_, TlsListener>) -> Self {
        stream.remote_addr().clone()
    }
}

impl Connected<IncomingStream<'_, TcpListener>> for PeerInfo {
    fn connect_info(stream: IncomingStream<'_, TcpListener>) -> Self {
        PeerInfo {
            addr: *stream.remote_addr(),
            node: None,
            tls: false,
        }
    }
}

/// Accepts TCP connections and completes their TLS handshakes in their own tasks (at most
/// [`MAX_PENDING_HANDSHAKES`] at once, each within [`HANDSHAKE_TIMEOUT`]), so a slow or
/// hostile client never holds up the others. A failed handshake (plaintext, a certificate of
/// another CA, an expired one) is logged at debug level and dropped.
#[derive(Debug)]
pub struct TlsListener {
    local: SocketAddr,
    ready: mpsc::Receiver<(TlsStream<TcpStream>, PeerInfo)>,
}

impl TlsListener {
    /// Serves TLS with `config` on `listener`. The accept loop ends when this is dropped.
    pub fn new(listener: TcpListener, config: Arc<ServerConfig>) -> std::io::Result<Self> {
        let local = listener.local_addr()?;
        let (tx, ready) = mpsc::channel(64);
        let acceptor = TlsAcceptor::from(config);
        let permits = Arc::new(Semaphore::new(MAX_PENDING_HANDSHAKES));
        tokio::spawn(async move {
            loop {
                let Ok(permit) = permits.clone().acquire_owned().await else {
                    return;
                };
                let accepted = tokio::select! {
                    accepted = listener.accept() => accepted,
                    () = tx.closed() => return,
                };
                let (tcp, addr) = match accepted {
                    Ok(conn) => conn,
                    Err(e) => {
                        tracing::debug!(error = %e, "accept failed on the Raft port");
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    }
                };
                let _ = tcp.set_nodelay(true);
                let acceptor = acceptor.clone();
                let tx = tx.clone();
                tokio::spawn(async move {
                    let _permit = permit;
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                        Ok(Ok(tls)) => {
                            let node = tls
                                .get_ref()
                                .1
                                .peer_certificates()
                                .and_then(|chain| chain.first())
                                .and_then(identity_of);
                            let peer = PeerInfo {
                                addr,
                                node,
                                tls: true,
                            };
                            let _ = tx.send((tls, peer)).await;
                        }
                        Ok(Err(e)) => {
                            // A peer of another cluster (another CA) retries every heartbeat.
                            if let Some(held_back) = REFUSED_HANDSHAKES.allow() {
                                tracing::warn!(
                                    peer = %addr,
                                    error = %e,
                                    held_back,
                                    "refused a TLS handshake on the Raft port (plaintext, or a \
                                     certificate not of this cluster's CA)"
                                );
                            }
                        }
                        Err(_) => tracing::debug!(peer = %addr, "TLS handshake timed out"),
                    }
                });
            }
        });
        Ok(TlsListener { local, ready })
    }
}

impl Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = PeerInfo;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(conn) => conn,
            // The accept loop only ends once this listener is gone.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(PeerInfo {
            addr: self.local,
            node: None,
            tls: true,
        })
    }
}
