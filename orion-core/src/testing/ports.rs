//! Loopback ports that stay a test's own for the whole test process.
//!
//! A port found by binding `127.0.0.1:0` and releasing it comes from the kernel's ephemeral range,
//! which the kernel also hands to every outgoing connection and Docker to every dynamically
//! published container port. A node that is killed and restarted on "its" port can then find it
//! taken. [`reserve_loopback_port`] picks ports *below* the ephemeral range instead, and holds an
//! exclusive lock file per port for the life of the process, so concurrent test processes that use
//! this helper never share one. Every port returned was also free for both TCP and UDP when picked.

use std::fs::{File, OpenOptions};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, UdpSocket};
use std::path::PathBuf;
use std::sync::Mutex;

/// The range reserved ports come from: above the well-known and registered services most hosts
/// run, below Linux's default ephemeral range (32768–60999).
pub const RESERVED_RANGE: std::ops::Range<u16> = 20_000..32_000;

/// Lock files held until the process exits (the kernel releases them then, even on a crash).
static HELD: Mutex<Vec<File>> = Mutex::new(Vec::new());

/// A `127.0.0.1` address whose port no other test process using this helper will get, that the
/// kernel will not hand out as an ephemeral port, and that was free for TCP and UDP when picked.
///
/// # Panics
/// When every port in [`RESERVED_RANGE`] is taken or locked, or the lock directory cannot be made.
pub fn reserve_loopback_port() -> SocketAddr {
    let dir = lock_dir();
    std::fs::create_dir_all(&dir)
        .unwrap_or_else(|e| panic!("cannot create the port lock dir {}: {e}", dir.display()));
    let span = u32::from(RESERVED_RANGE.end - RESERVED_RANGE.start);
    // Start at a point that differs per process and per call, so processes rarely probe the same
    // ports first; the lock files settle the rare overlap.
    let seed = format!("{}/{}/{}", std::process::id(), held_count(), nanos());
    let start = (crate::hash::stable_hash(seed.as_bytes()) % u64::from(span)) as u32;
    for step in 0..span {
        let port = RESERVED_RANGE.start + ((start + step) % span) as u16;
        let Some(lock) = try_lock(&dir, port) else {
            continue;
        };
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        if TcpListener::bind(addr).is_ok() && UdpSocket::bind(addr).is_ok() {
            HELD.lock().unwrap_or_else(|p| p.into_inner()).push(lock);
            return addr;
        }
    }
    panic!("no free loopback port in {RESERVED_RANGE:?}");
}

fn lock_dir() -> PathBuf {
    std::env::temp_dir().join("orion-test-ports")
}

fn try_lock(dir: &std::path::Path, port: u16) -> Option<File> {
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join(port.to_string()))
        .ok()?;
    file.try_lock().ok()?;
    Some(file)
}

fn held_count() -> usize {
    HELD.lock().unwrap_or_else(|p| p.into_inner()).len()
}

fn nanos() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_ports_are_distinct_below_the_ephemeral_range_and_locked() {
        let a = reserve_loopback_port();
        let b = reserve_loopback_port();
        assert_ne!(a, b);
        for addr in [a, b] {
            assert!(RESERVED_RANGE.contains(&addr.port()), "{addr}");
            // Another opener (as another process would be) cannot take the lock.
            let again = try_lock(&lock_dir(), addr.port());
            assert!(again.is_none(), "{addr} is not locked");
        }
    }
}
