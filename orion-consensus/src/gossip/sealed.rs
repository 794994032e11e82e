//! [`SealedTransport`]: gossip datagrams authenticated and encrypted with the cluster key.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};

use super::transport::{MAX_DATAGRAM, Transport};
use crate::cluster_id::LogLimiter;
use crate::security::ClusterKey;

/// The first byte of a sealed datagram: the format version, also authenticated.
const SEALED_V1: u8 = 1;
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;

/// The bytes sealing adds to a datagram (version, nonce, tag): 41.
pub const SEAL_OVERHEAD: usize = 1 + NONCE_LEN + TAG_LEN;

/// The purpose the gossip key is derived for ([`ClusterKey::derive`]).
pub const GOSSIP_KEY_PURPOSE: &str = "gossip-xchacha20poly1305-v1";

/// Wraps a gossip [`Transport`]: every datagram sent is sealed with XChaCha20-Poly1305 under a
/// key derived from the [`ClusterKey`] (a random 24-byte nonce each), and every datagram
/// received is opened; one that does not open (plaintext, another cluster's key, tampered,
/// truncated) is dropped, counted and logged at most every 10 s, and never reaches the SWIM
/// state machine.
pub struct SealedTransport {
    inner: Arc<dyn Transport>,
    cipher: XChaCha20Poly1305,
    dropped: AtomicU64,
    log: LogLimiter,
}

impl std::fmt::Debug for SealedTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealedTransport")
            .field("inner", &self.inner)
            .field("dropped", &self.dropped())
            .finish_non_exhaustive()
    }
}

impl SealedTransport {
    /// Seals `inner` with the gossip key derived from `key`.
    pub fn new(inner: Arc<dyn Transport>, key: &ClusterKey) -> Self {
        let derived = key.derive(GOSSIP_KEY_PURPOSE);
        SealedTransport {
            inner,
            cipher: XChaCha20Poly1305::new(&derived.into()),
            dropped: AtomicU64::new(0),
            log: LogLimiter::new(Duration::from_secs(10)),
        }
    }

    /// How many received datagrams did not open and were dropped.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    fn seal(&self, data: &[u8]) -> io::Result<Vec<u8>> {
        let nonce: [u8; NONCE_LEN] = rand::random();
        let sealed = self
            .cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: data,
                    aad: &[SEALED_V1],
                },
            )
            .map_err(|_| io::Error::other("gossip datagram could not be sealed"))?;
        let mut out = Vec::with_capacity(1 + NONCE_LEN + sealed.len());
        out.push(SEALED_V1);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    fn open(&self, datagram: &[u8]) -> Option<Vec<u8>> {
        if datagram.len() < SEAL_OVERHEAD || datagram[0] != SEALED_V1 {
            return None;
        }
        let (nonce, sealed) = datagram[1..].split_at(NONCE_LEN);
        self.cipher
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: sealed,
                    aad: &[SEALED_V1],
                },
            )
            .ok()
    }
}

#[async_trait]
impl Transport for SealedTransport {
    fn local_addr(&self) -> SocketAddr {
        self.inner.local_addr()
    }

    async fn send_to(&self, to: SocketAddr, data: &[u8]) -> io::Result<()> {
        let sealed = self.seal(data)?;
        self.inner.send_to(to, &sealed).await
    }

    async fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        let mut raw = vec![0u8; MAX_DATAGRAM];
        loop {
            let (len, from) = self.inner.recv_from(&mut raw).await?;
            match self.open(&raw[..len]) {
                Some(plain) if plain.len() <= buf.len() => {
                    buf[..plain.len()].copy_from_slice(&plain);
                    return Ok((plain.len(), from));
                }
                _ => {
                    self.dropped.fetch_add(1, Ordering::Relaxed);
                    if let Some(held_back) = self.log.allow() {
                        tracing::warn!(
                            %from,
                            bytes = len,
                            held_back,
                            "dropped a gossip datagram that is not sealed with this cluster's key"
                        );
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gossip::MemoryNetwork;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    async fn recv_within(t: &dyn Transport) -> Option<Vec<u8>> {
        let mut buf = vec![0u8; MAX_DATAGRAM];
        tokio::time::timeout(Duration::from_millis(200), t.recv_from(&mut buf))
            .await
            .ok()
            .map(|r| {
                let (n, _) = r.expect("recv");
                buf[..n].to_vec()
            })
    }

    #[tokio::test]
    async fn sealed_datagrams_open_only_with_the_same_cluster_key() {
        let net = MemoryNetwork::new();
        let key = ClusterKey::generate();
        let a = SealedTransport::new(Arc::new(net.bind(addr(1))), &key);
        let b_raw: Arc<dyn Transport> = Arc::new(net.bind(addr(2)));
        let b = SealedTransport::new(b_raw, &key);
        let stranger = SealedTransport::new(Arc::new(net.bind(addr(3))), &ClusterKey::generate());
        let plain = net.bind(addr(4));

        a.send_to(addr(2), b"ping").await.expect("send");
        assert_eq!(recv_within(&b).await.as_deref(), Some(&b"ping"[..]));

        stranger.send_to(addr(2), b"forged").await.expect("send");
        plain.send_to(addr(2), b"plaintext").await.expect("send");
        let mut tampered = a.seal(b"x").expect("seal");
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        plain.send_to(addr(2), &tampered).await.expect("send");
        assert_eq!(recv_within(&b).await, None, "nothing foreign opens");
        assert_eq!(b.dropped(), 3);
    }
}
