//! How gossip datagrams move: a [`Transport`] trait with a real UDP implementation
//! ([`UdpTransport`]) and an in-process one ([`MemoryNetwork`] / [`MemoryTransport`]), plus a
//! [`LinkFaults`] filter that both use to cut and heal links between named members.
//!
//! A transport is datagram-shaped and unreliable by contract: `send_to` may drop, and nothing
//! above it assumes delivery or order.

use std::collections::{HashMap, HashSet};
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

/// The largest datagram a transport delivers; larger ones are truncated by UDP and dropped as
/// malformed above it.
pub const MAX_DATAGRAM: usize = 64 * 1024;

/// A datagram transport for gossip.
#[async_trait]
pub trait Transport: Send + Sync + std::fmt::Debug + 'static {
    /// The address other members send to.
    fn local_addr(&self) -> SocketAddr;

    /// Sends one datagram. Best effort: a cut link or a full buffer drops it silently.
    async fn send_to(&self, to: SocketAddr, data: &[u8]) -> io::Result<()>;

    /// Receives the next datagram into `buf`, returning its length and sender.
    ///
    /// Cancel-safe: dropping the future loses no datagram.
    async fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)>;
}

/// A shared set of cut links, used by both transports to simulate partitions.
///
/// A link is cut in both directions. Clones share the same state.
#[derive(Debug, Clone, Default)]
pub struct LinkFaults {
    cut: Arc<Mutex<HashSet<(SocketAddr, SocketAddr)>>>,
}

impl LinkFaults {
    /// No link cut.
    pub fn new() -> Self {
        LinkFaults::default()
    }

    fn lock(&self) -> MutexGuard<'_, HashSet<(SocketAddr, SocketAddr)>> {
        self.cut.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Cuts the link between `a` and `b` (both directions).
    pub fn cut(&self, a: SocketAddr, b: SocketAddr) {
        let mut cut = self.lock();
        cut.insert((a, b));
        cut.insert((b, a));
    }

    /// Cuts every link between a member of `side_a` and a member of `side_b`.
    pub fn partition(&self, side_a: &[SocketAddr], side_b: &[SocketAddr]) {
        for a in side_a {
            for b in side_b {
                self.cut(*a, *b);
            }
        }
    }

    /// Restores the link between `a` and `b`.
    pub fn heal(&self, a: SocketAddr, b: SocketAddr) {
        let mut cut = self.lock();
        cut.remove(&(a, b));
        cut.remove(&(b, a));
    }

    /// Restores every link.
    pub fn heal_all(&self) {
        self.lock().clear();
    }

    /// True when datagrams from `from` to `to` are dropped.
    pub fn is_cut(&self, from: SocketAddr, to: SocketAddr) -> bool {
        self.lock().contains(&(from, to))
    }
}

/// Gossip over a real UDP socket, with an optional [`LinkFaults`] filter on both directions.
#[derive(Debug)]
pub struct UdpTransport {
    socket: UdpSocket,
    local: SocketAddr,
    faults: LinkFaults,
}

impl UdpTransport {
    /// Binds `addr` (port 0 picks a free port).
    pub async fn bind(addr: SocketAddr) -> io::Result<Self> {
        Self::bind_with_faults(addr, LinkFaults::new()).await
    }

    /// Binds `addr` and drops datagrams on links that `faults` cuts (for partition tests).
    pub async fn bind_with_faults(addr: SocketAddr, faults: LinkFaults) -> io::Result<Self> {
        let socket = UdpSocket::bind(addr).await?;
        let local = socket.local_addr()?;
        Ok(UdpTransport {
            socket,
            local,
            faults,
        })
    }
}

#[async_trait]
impl Transport for UdpTransport {
    fn local_addr(&self) -> SocketAddr {
        self.local
    }

    async fn send_to(&self, to: SocketAddr, data: &[u8]) -> io::Result<()> {
        if self.faults.is_cut(self.local, to) {
            return Ok(());
        }
        self.socket.send_to(data, to).await.map(|_| ())
    }

    async fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        loop {
            let (len, from) = self.socket.recv_from(buf).await?;
            if !self.faults.is_cut(from, self.local) {
                return Ok((len, from));
            }
        }
    }
}

type Datagram = (SocketAddr, Vec<u8>);

/// An in-process network of [`MemoryTransport`]s addressed by (never bound) socket addresses,
/// with links that can be cut and healed through [`MemoryNetwork::faults`].
#[derive(Debug, Clone, Default)]
pub struct MemoryNetwork {
    endpoints: Arc<Mutex<HashMap<SocketAddr, Endpoint>>>,
    next_endpoint: Arc<AtomicU64>,
    faults: LinkFaults,
}

#[derive(Debug)]
struct Endpoint {
    serial: u64,
    inbox: mpsc::UnboundedSender<Datagram>,
}

impl MemoryNetwork {
    /// An empty network with no link cut.
    pub fn new() -> Self {
        MemoryNetwork::default()
    }

    /// The link filter of this network.
    pub fn faults(&self) -> &LinkFaults {
        &self.faults
    }

    /// Attaches an endpoint at `addr`, replacing any previous one there (a restart).
    pub fn bind(&self, addr: SocketAddr) -> MemoryTransport {
        let (tx, rx) = mpsc::unbounded_channel();
        let serial = self.next_endpoint.fetch_add(1, Ordering::Relaxed);
        self.endpoints
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(addr, Endpoint { serial, inbox: tx });
        MemoryTransport {
            local: addr,
            serial,
            network: self.clone(),
            inbox: tokio::sync::Mutex::new(rx),
        }
    }
}

/// One endpoint of a [`MemoryNetwork`]. Dropping it detaches the address (like a dead process).
#[derive(Debug)]
pub struct MemoryTransport {
    local: SocketAddr,
    serial: u64,
    network: MemoryNetwork,
    inbox: tokio::sync::Mutex<mpsc::UnboundedReceiver<Datagram>>,
}

#[async_trait]
impl Transport for MemoryTransport {
    fn local_addr(&self) -> SocketAddr {
        self.local
    }

    async fn send_to(&self, to: SocketAddr, data: &[u8]) -> io::Result<()> {
        if self.network.faults.is_cut(self.local, to) {
            return Ok(());
        }
        let endpoints = self
            .network
            .endpoints
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(peer) = endpoints.get(&to) {
            // A closed inbox is a dead peer: the datagram is lost, like UDP to a closed port.
            let _ = peer.inbox.send((self.local, data.to_vec()));
        }
        Ok(())
    }

    async fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        let mut inbox = self.inbox.lock().await;
        loop {
            let Some((from, data)) = inbox.recv().await else {
                return Err(io::Error::new(
                    io::ErrorKind::NotConnected,
                    "in-process endpoint detached from its network",
                ));
            };
            // A link cut while the datagram was in flight drops it too.
            if self.network.faults.is_cut(from, self.local) {
                continue;
            }
            let len = data.len().min(buf.len());
            buf[..len].copy_from_slice(&data[..len]);
            return Ok((len, from));
        }
    }
}

impl Drop for MemoryTransport {
    fn drop(&mut self) {
        let mut endpoints = self
            .network
            .endpoints
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if endpoints
            .get(&self.local)
            .is_some_and(|endpoint| endpoint.serial == self.serial)
        {
            endpoints.remove(&self.local);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    async fn recv_now(transport: &dyn Transport) -> Option<(Vec<u8>, SocketAddr)> {
        let mut buf = [0u8; 64];
        let received = tokio::time::timeout(
            std::time::Duration::from_millis(50),
            transport.recv_from(&mut buf),
        )
        .await
        .ok()?
        .ok()?;
        Some((buf[..received.0].to_vec(), received.1))
    }

    #[tokio::test]
    async fn memory_links_cut_and_heal_in_both_directions() {
        let network = MemoryNetwork::new();
        let (a, b) = (network.bind(addr(1)), network.bind(addr(2)));
        a.send_to(addr(2), b"hi").await.expect("send");
        assert_eq!(recv_now(&b).await, Some((b"hi".to_vec(), addr(1))));

        network.faults().cut(addr(1), addr(2));
        a.send_to(addr(2), b"lost")
            .await
            .expect("send to a cut link is not an error");
        b.send_to(addr(1), b"lost").await.expect("send");
        assert_eq!(recv_now(&b).await, None);
        assert_eq!(recv_now(&a).await, None);

        network.faults().heal_all();
        b.send_to(addr(1), b"back").await.expect("send");
        assert_eq!(recv_now(&a).await, Some((b"back".to_vec(), addr(2))));
    }

    #[tokio::test]
    async fn a_dropped_memory_endpoint_is_silent_and_its_address_can_be_rebound() {
        let network = MemoryNetwork::new();
        let a = network.bind(addr(1));
        drop(network.bind(addr(2)));
        a.send_to(addr(2), b"nobody").await.expect("send to nobody");
        let restarted = network.bind(addr(2));
        assert_eq!(
            recv_now(&restarted).await,
            None,
            "the old life's datagram is gone"
        );
        a.send_to(addr(2), b"hello again").await.expect("send");
        assert_eq!(
            recv_now(&restarted).await,
            Some((b"hello again".to_vec(), addr(1)))
        );
    }

    #[tokio::test]
    async fn udp_fault_filter_drops_cut_links() {
        let faults = LinkFaults::new();
        let any: SocketAddr = "127.0.0.1:0".parse().expect("literal");
        let a = UdpTransport::bind_with_faults(any, faults.clone())
            .await
            .expect("bind");
        let b = UdpTransport::bind_with_faults(any, faults.clone())
            .await
            .expect("bind");
        faults.partition(&[a.local_addr()], &[b.local_addr()]);
        a.send_to(b.local_addr(), b"x").await.expect("send");
        assert_eq!(recv_now(&b).await, None);
        faults.heal(a.local_addr(), b.local_addr());
        a.send_to(b.local_addr(), b"y").await.expect("send");
        assert_eq!(recv_now(&b).await, Some((b"y".to_vec(), a.local_addr())));
    }
}
