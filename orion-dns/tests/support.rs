//! Shared set-up for the DNS tests: a MemoryStore cluster, a server on a reserved loopback port,
//! and the clients (hickory-resolver with its cache off, `dig`).

#![allow(dead_code)]

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use hickory_resolver::Resolver;
use hickory_resolver::config::{NameServerConfig, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use orion_core::model::spec::{PortSpec, Protocol};
use orion_core::model::{Node, PublishedPort, Resources, ServiceSpec, Task, TaskState};
use orion_core::store::{ClusterStore, MemoryStore};
use orion_dns::{DnsConfig, DnsServer};
use tokio::process::Command;

pub type Store = ClusterStore<MemoryStore>;

/// A store and a server answering for `orion.` as node `me`.
pub async fn start(me: &str) -> (Store, DnsServer, SocketAddr) {
    let store = ClusterStore::new(MemoryStore::new());
    let addr = orion_core::testing::ports::reserve_loopback_port();
    let server = DnsServer::start(
        store.clone(),
        DnsConfig::new(me, "orion.").unwrap(),
        &[addr],
    )
    .await
    .unwrap();
    (store, server, addr)
}

/// Node `id` advertising `ip`.
pub async fn add_node(store: &Store, id: &str, ip: &str) {
    let mut node = Node::new(id, Resources::new(4000, 1 << 30));
    node.addresses.api = format!("{ip}:9000");
    store.put_node(&node).await.unwrap();
}

/// Service `name` with a port named `http` (80/tcp) and an unnamed one (8080/tcp).
pub async fn add_service(store: &Store, name: &str) {
    let mut spec = ServiceSpec::new(name, "busybox", 1);
    spec.ports = vec![
        PortSpec {
            container_port: 80,
            host_port: 0,
            protocol: Protocol::Tcp,
            name: Some("http".into()),
        },
        PortSpec {
            container_port: 8080,
            host_port: 0,
            protocol: Protocol::Tcp,
            name: None,
        },
    ];
    store.put_service(&spec).await.unwrap();
}

/// A running task of `service` on `node`, publishing 80 on `host_port` and 8080 on
/// `host_port + 1`.
pub async fn run_task(store: &Store, service: &str, slot: u32, node: &str, host_port: u16) -> Task {
    let mut t = Task::new(service, slot, 1, Resources::default());
    t.node = Some(node.into());
    for s in [
        TaskState::Scheduled,
        TaskState::Starting,
        TaskState::Running,
    ] {
        t.transition(s).unwrap();
    }
    t.ports = vec![
        PublishedPort {
            container_port: 80,
            host_port,
            protocol: "tcp".into(),
            host_ip: Default::default(),
        },
        PublishedPort {
            container_port: 8080,
            host_port: host_port + 1,
            protocol: "tcp".into(),
            host_ip: Default::default(),
        },
    ];
    store.create_task(&t).await.unwrap();
    t
}

/// hickory-resolver pointed at `server` only, cache off, one attempt of 2 s.
pub fn resolver(server: SocketAddr) -> Resolver<TokioRuntimeProvider> {
    let mut ns = NameServerConfig::udp_and_tcp(server.ip());
    for c in &mut ns.connections {
        c.port = server.port();
    }
    let config = ResolverConfig::from_parts(None, vec![], vec![ns]);
    let mut builder = Resolver::builder_with_config(config, TokioRuntimeProvider::default());
    let opts = builder.options_mut();
    opts.cache_size = 0;
    opts.attempts = 1;
    opts.timeout = Duration::from_secs(2);
    builder.build().unwrap()
}

/// The A answers hickory-resolver gets for `name`, in order; empty on NXDOMAIN or no records.
pub async fn resolve_a(r: &Resolver<TokioRuntimeProvider>, name: &str) -> Vec<IpAddr> {
    match r.lookup_ip(name).await {
        Ok(ips) => ips.iter().collect(),
        Err(e) if e.is_nx_domain() || e.is_no_records_found() => Vec::new(),
        Err(e) => panic!("lookup {name}: {e}"),
    }
}

/// `dig @server -p port NAME TYPE` with the answer section only, one line per record; also
/// returns the response status (`NOERROR`, `NXDOMAIN`, `REFUSED`...).
pub async fn dig(server: SocketAddr, name: &str, qtype: &str) -> (String, Vec<String>) {
    let out = Command::new("dig")
        .args([
            &format!("@{}", server.ip()),
            "-p",
            &server.port().to_string(),
            name,
            qtype,
            "+tries=1",
            "+time=2",
            "+noall",
            "+comments",
            "+answer",
        ])
        .output()
        .await
        .expect("dig (Debian's dnsutils; `make setup` installs it)");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let status = text
        .split("status: ")
        .nth(1)
        .and_then(|s| s.split(',').next())
        .unwrap_or("no answer")
        .to_owned();
    let answers = text
        .lines()
        .filter(|l| !l.starts_with(';') && !l.trim().is_empty())
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    (status, answers)
}

/// Polls `check` every 50 ms until it returns true, for at most `limit`; returns whether it did.
pub async fn eventually<F, Fut>(limit: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    for _ in 0..10_000 {
        if check().await {
            return true;
        }
        if start.elapsed() > limit {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}
