//! End to end: the DNS server of real `orion` nodes (Docker runtime), asked by clients Orion
//! didn't write: `dig` (Debian's dnsutils) and hickory-resolver with its cache off. Every wait
//! is bounded; no timing is asserted.

mod support;

/// The DNS clients of orion-dns's own tests: `dig` and a cache-less hickory-resolver.
#[path = "../orion-dns/tests/support.rs"]
mod dns_clients;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;

use dns_clients::{dig, resolver};
use hickory_resolver::Resolver;
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use support::*;
use tokio::process::Command;

/// Generous bound for records to follow the state (the goal is 1 s; CI machines are slow).
const FOLLOW: Duration = Duration::from_secs(20);

/// A busybox httpd service with a named port: `_http._tcp.<name>.orion.`.
fn named_port_spec(name: &str, replicas: u32) -> String {
    let mut spec: serde_json::Value = serde_json::from_str(&http_spec(name, replicas)).unwrap();
    spec["ports"] = serde_json::json!([{"container_port": 8080, "name": "http"}]);
    spec.to_string()
}

/// The `(port, target)` pairs of an SRV answer from dig.
async fn srv_set(server: SocketAddr, name: &str) -> BTreeSet<(u16, String)> {
    dig(server, name, "SRV")
        .await
        .1
        .iter()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            (f.len() == 8 && f[3] == "SRV").then(|| (f[6].parse().unwrap_or(0), f[7].to_owned()))
        })
        .collect()
}

/// The SRV `(port, target)` set hickory-resolver gets; empty on any error.
async fn resolver_srv(r: &Resolver<TokioRuntimeProvider>, name: &str) -> BTreeSet<(u16, String)> {
    match r
        .lookup(name, hickory_resolver::proto::rr::RecordType::SRV)
        .await
    {
        Ok(l) => l
            .answers()
            .iter()
            .filter_map(|rec| match &rec.data {
                hickory_resolver::proto::rr::RData::SRV(s) => Some((s.port, s.target.to_ascii())),
                _ => None,
            })
            .collect(),
        Err(_) => BTreeSet::new(),
    }
}

/// The `(host port, node target)` each task should answer under.
fn expected(tasks: &[orion_core::model::Task]) -> BTreeSet<(u16, String)> {
    tasks
        .iter()
        .map(|t| {
            let node = t.node.clone().unwrap_or_default();
            (host_port(t).unwrap_or(0), format!("{node}._nodes.orion."))
        })
        .collect()
}

async fn wait_srv(server: SocketAddr, name: &str, want: &BTreeSet<(u16, String)>) {
    let r = resolver(server);
    wait_for(&format!("SRV {name} = {want:?}"), FOLLOW, || async {
        let by_dig = srv_set(server, name).await;
        let by_hickory = resolver_srv(&r, name).await;
        if &by_dig == want && &by_hickory == want {
            Ok(())
        } else {
            Err(format!("dig {by_dig:?}, hickory {by_hickory:?}"))
        }
    })
    .await
}

#[tokio::test]
async fn records_follow_scaling_and_killed_replicas_and_containers_resolve() {
    let mut cluster = TestCluster::new("dns1", &[Role::Single]).await;
    // This node gives containers its resolver at the Docker bridge gateway (port 53).
    cluster.nodes[0].dns_containers = "auto".into();
    cluster.start(0).await;
    let dns = cluster.nodes[0].dns;
    let srv = "_http._tcp.web.orion.";

    cluster.deploy(0, &named_port_spec("web", 2)).await;
    let tasks = cluster
        .wait_serving(0, "web", 2, Duration::from_secs(90))
        .await;
    wait_srv(dns, srv, &expected(&tasks)).await;
    let (status, a) = dig(dns, "web.orion.", "A").await;
    assert_eq!(status, "NOERROR");
    assert!(
        a.iter().all(|l| l.ends_with("IN A 127.0.0.1")) && !a.is_empty(),
        "{a:?}"
    );
    let per_task = format!("{}.web.orion.", tasks[0].id);
    assert_eq!(dig(dns, &per_task, "A").await.1.len(), 1);
    assert_eq!(dig(dns, "nope.orion.", "A").await.0, "NXDOMAIN");
    assert_eq!(dig(dns, "example.com.", "A").await.0, "REFUSED");
    let (status, soa) = dig(dns, "orion.", "SOA").await;
    assert_eq!(status, "NOERROR");
    assert_eq!(soa.len(), 1, "{soa:?}");

    // The CLI asks the same server.
    let out = cluster.cli(
        0,
        &[
            "dns",
            "lookup",
            srv,
            "--type",
            "srv",
            "--server",
            &dns.to_string(),
            "-o",
            "json",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["status"], "NOERROR");
    assert_eq!(json["answers"].as_array().unwrap().len(), 2);

    // A container Orion started resolves the service through its default resolver.
    let container = tasks[0].container_id.clone().unwrap();
    let resolv = std::process::Command::new("docker")
        .args(["exec", &container, "cat", "/etc/resolv.conf"])
        .output()
        .unwrap();
    let resolv = String::from_utf8_lossy(&resolv.stdout).to_string();
    assert!(resolv.contains("search orion"), "{resolv}");
    wait_for("nslookup web.orion inside a container", FOLLOW, || async {
        let out = Command::new("docker")
            .args(["exec", &container, "nslookup", "web.orion"])
            .output()
            .await
            .map_err(|e| e.to_string())?;
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        if out.status.success() && text.contains("127.0.0.1") {
            Ok(())
        } else {
            Err(format!("{text}{}", String::from_utf8_lossy(&out.stderr)))
        }
    })
    .await;

    // Scale down to one, then up to three: the records follow.
    cluster.scale(0, "web", 1).await;
    let tasks = cluster
        .wait_serving(0, "web", 1, Duration::from_secs(60))
        .await;
    wait_srv(dns, srv, &expected(&tasks)).await;
    cluster.scale(0, "web", 3).await;
    let tasks = cluster
        .wait_serving(0, "web", 3, Duration::from_secs(90))
        .await;
    wait_srv(dns, srv, &expected(&tasks)).await;

    // Kill a replica's container: its port leaves the answer, which then lists exactly the
    // replicas that run (a replacement joins once the reconciler starts one).
    let victim = tasks[0].clone();
    docker_kill(victim.container_id.as_deref().unwrap());
    let gone = host_port(&victim).unwrap();
    wait_for(
        "the killed replica leaves the SRV answer",
        FOLLOW,
        || async {
            let running: Vec<_> = cluster
                .tasks(0, "web")
                .await?
                .into_iter()
                .filter(|t| t.state == orion_core::model::TaskState::Running)
                .collect();
            let now = srv_set(dns, srv).await;
            if now.iter().all(|(p, _)| *p != gone) && now == expected(&running) {
                Ok(())
            } else {
                Err(format!("{now:?}, running {running:?}"))
            }
        },
    )
    .await;
}

#[tokio::test]
async fn every_node_of_three_gives_the_same_answers() {
    let cluster = TestCluster::three("dns3").await;
    cluster.deploy(0, &named_port_spec("api", 3)).await;
    let tasks = cluster
        .wait_serving(0, "api", 3, Duration::from_secs(120))
        .await;
    let want = expected(&tasks);
    for node in &cluster.nodes {
        wait_srv(node.dns, "_http._tcp.api.orion.", &want).await;
        let (status, ns) = dig(node.dns, "orion.", "NS").await;
        assert_eq!(status, "NOERROR");
        assert_eq!(ns.len(), 3, "one NS per node: {ns:?}");
    }
}
