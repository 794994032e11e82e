//! The server in-process on a MemoryStore, asked by clients Orion didn't write: hickory-resolver
//! (cache off) and `dig`.

mod support;

use std::net::IpAddr;
use std::time::Duration;

use hickory_proto::rr::{RData, RecordType};
use orion_core::model::{NetworkMeasurement, TaskState};
use support::*;

const WAIT: Duration = Duration::from_secs(10);

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[tokio::test]
async fn a_records_follow_scaling_and_killed_replicas() {
    let (store, _server, addr) = start("n1").await;
    let r = resolver(addr);
    add_node(&store, "n1", "127.0.0.11").await;
    add_node(&store, "n2", "127.0.0.12").await;
    add_service(&store, "web").await;
    assert!(
        eventually(WAIT, || async {
            resolve_a(&r, "web.orion.").await.is_empty()
        })
        .await
    );

    // Scale up: two replicas on two nodes.
    let t1 = run_task(&store, "web", 0, "n1", 31000).await;
    let t2 = run_task(&store, "web", 1, "n2", 31010).await;
    let both = |mut v: Vec<IpAddr>| {
        v.sort();
        v == vec![ip("127.0.0.11"), ip("127.0.0.12")]
    };
    assert!(eventually(WAIT, || async { both(resolve_a(&r, "web.orion.").await) }).await);
    let (status, answers) = dig(addr, "web.orion.", "A").await;
    assert_eq!(status, "NOERROR");
    assert_eq!(answers.len(), 2, "{answers:?}");

    // Per task.
    let name = format!("{}.web.orion.", t2.id);
    assert_eq!(resolve_a(&r, &name).await, vec![ip("127.0.0.12")]);

    // Kill one replica: it fails; only n1 stays.
    store
        .update_task(&t2.id, |t| t.transition(TaskState::Failed))
        .await
        .unwrap();
    assert!(
        eventually(WAIT, || async {
            resolve_a(&r, "web.orion.").await == vec![ip("127.0.0.11")]
        })
        .await
    );
    assert_eq!(dig(addr, &name, "A").await.0, "NXDOMAIN");

    // An unhealthy replica is not served either.
    store
        .update_task(&t1.id, |t| {
            t.health = orion_core::model::TaskHealth::Unhealthy;
            Ok(())
        })
        .await
        .unwrap();
    assert!(
        eventually(WAIT, || async {
            resolve_a(&r, "web.orion.").await.is_empty()
        })
        .await
    );

    // Scale down to nothing: the task records go away, the name stays (NODATA, not NXDOMAIN).
    store.delete_task(&t1.id).await.unwrap();
    store.delete_task(&t2.id).await.unwrap();
    assert!(
        eventually(WAIT, || async {
            dig(addr, "web.orion.", "A").await == ("NOERROR".into(), vec![])
        })
        .await
    );
}

#[tokio::test]
async fn srv_answers_carry_host_ports_named_and_numbered() {
    let (store, _server, addr) = start("n1").await;
    let r = resolver(addr);
    add_node(&store, "n1", "127.0.0.11").await;
    add_service(&store, "web").await;
    run_task(&store, "web", 0, "n1", 32000).await;
    let ports = |name: &'static str| {
        let r = &r;
        async move {
            match r.lookup(name, RecordType::SRV).await {
                Ok(l) => l
                    .answers()
                    .iter()
                    .filter_map(|rec| match &rec.data {
                        RData::SRV(s) => Some((s.port, s.target.to_ascii())),
                        _ => None,
                    })
                    .collect::<Vec<_>>(),
                Err(_) => Vec::new(),
            }
        }
    };
    assert!(
        eventually(WAIT, || async {
            !ports("_http._tcp.web.orion.").await.is_empty()
        })
        .await
    );
    assert_eq!(
        ports("_http._tcp.web.orion.").await,
        vec![(32000, "n1._nodes.orion.".to_owned())]
    );
    assert_eq!(
        ports("_8080._tcp.web.orion.").await,
        vec![(32001, "n1._nodes.orion.".to_owned())]
    );
    let (status, answers) = dig(addr, "_8080._tcp.web.orion.", "SRV").await;
    assert_eq!(status, "NOERROR");
    assert!(
        answers[0].ends_with("32001 n1._nodes.orion."),
        "{answers:?}"
    );
    // The SRV target resolves.
    assert_eq!(
        resolve_a(&r, "n1._nodes.orion.").await,
        vec![ip("127.0.0.11")]
    );
    // A port the spec does not have.
    assert_eq!(
        dig(addr, "_https._tcp.web.orion.", "SRV").await.0,
        "NXDOMAIN"
    );
}

#[tokio::test]
async fn nxdomain_refused_soa_and_ns() {
    let (store, _server, addr) = start("n1").await;
    add_node(&store, "n1", "127.0.0.11").await;
    add_service(&store, "web").await;
    assert!(
        eventually(WAIT, || async {
            dig(addr, "web.orion.", "A").await.0 == "NOERROR"
        })
        .await
    );
    assert_eq!(dig(addr, "nope.orion.", "A").await.0, "NXDOMAIN");
    assert_eq!(dig(addr, "a.b.c.d.orion.", "A").await.0, "NXDOMAIN");
    assert_eq!(dig(addr, "example.com.", "A").await.0, "REFUSED");
    assert_eq!(dig(addr, "orionx.", "A").await.0, "REFUSED");
    let (status, soa) = dig(addr, "orion.", "SOA").await;
    assert_eq!(status, "NOERROR");
    assert!(
        soa[0].contains("SOA n1._nodes.orion. hostmaster.orion."),
        "{soa:?}"
    );
    let (_, ns) = dig(addr, "orion.", "NS").await;
    assert_eq!(ns.len(), 1);
    assert!(ns[0].ends_with("NS n1._nodes.orion."), "{ns:?}");
    // TTL is the default, 5 s.
    assert!(soa[0].split(' ').nth(1) == Some("5"), "{soa:?}");
}

#[tokio::test]
async fn answers_follow_proximity_once_measured() {
    let (store, _server, addr) = start("n1").await;
    let r = resolver(addr);
    for (id, a) in [
        ("n1", "127.0.0.11"),
        ("n2", "127.0.0.12"),
        ("n3", "127.0.0.13"),
    ] {
        add_node(&store, id, a).await;
    }
    add_service(&store, "web").await;
    for (slot, node) in ["n1", "n2", "n3"].into_iter().enumerate() {
        run_task(&store, "web", slot as u32, node, 33000 + 10 * slot as u16).await;
    }
    // Without measurements: round-robin, so the first answer changes between queries.
    assert!(
        eventually(WAIT, || async {
            resolve_a(&r, "web.orion.").await.len() == 3
        })
        .await
    );
    let mut firsts = std::collections::HashSet::new();
    for _ in 0..6 {
        firsts.insert(resolve_a(&r, "web.orion.").await[0]);
    }
    assert!(
        firsts.len() > 1,
        "round-robin expected, got first answers {firsts:?}"
    );

    // n3 is near, n2 far (measured from n1); n1 itself is nearest.
    for (to, rtt) in [("n2", 40.0), ("n3", 5.0)] {
        let m = NetworkMeasurement {
            from: "n1".into(),
            to: to.into(),
            rtt_ms: rtt,
            ..Default::default()
        };
        store.put_measurement(&m).await.unwrap();
    }
    let expected = vec![ip("127.0.0.11"), ip("127.0.0.13"), ip("127.0.0.12")];
    assert!(
        eventually(WAIT, || async {
            resolve_a(&r, "web.orion.").await == expected
        })
        .await
    );
    for _ in 0..3 {
        assert_eq!(resolve_a(&r, "web.orion.").await, expected);
        let (_, answers) = dig(addr, "web.orion.", "A").await;
        let got: Vec<&str> = answers
            .iter()
            .map(|l| l.rsplit(' ').next().unwrap())
            .collect();
        assert_eq!(got, ["127.0.0.11", "127.0.0.13", "127.0.0.12"]);
    }
    // SRV: priorities follow the rank.
    let (_, srv) = dig(addr, "_http._tcp.web.orion.", "SRV").await;
    let targets: Vec<&str> = srv.iter().map(|l| l.rsplit(' ').next().unwrap()).collect();
    assert_eq!(
        targets,
        ["n1._nodes.orion.", "n3._nodes.orion.", "n2._nodes.orion."]
    );
    assert!(srv[0].contains("SRV 0 "), "{srv:?}");
    assert!(srv[2].contains("SRV 2 "), "{srv:?}");
}

#[tokio::test]
async fn vivaldi_estimates_order_answers_without_measurements() {
    let (store, _server, addr) = start("n1").await;
    let r = resolver(addr);
    for (id, a, x) in [
        ("n1", "127.0.0.11", 0.0),
        ("n2", "127.0.0.12", 50.0),
        ("n3", "127.0.0.13", 10.0),
    ] {
        add_node(&store, id, a).await;
        let c = orion_core::model::NetworkCoordinate {
            node: id.into(),
            position: vec![x, 0.0],
            height_ms: 0.1,
            error: 0.2,
            updated_at: 0,
        };
        store.put_coordinate(&c).await.unwrap();
    }
    add_service(&store, "web").await;
    for (slot, node) in ["n2", "n3", "n1"].into_iter().enumerate() {
        run_task(&store, "web", slot as u32, node, 35000 + 10 * slot as u16).await;
    }
    let expected = vec![ip("127.0.0.11"), ip("127.0.0.13"), ip("127.0.0.12")];
    assert!(
        eventually(WAIT, || async {
            resolve_a(&r, "web.orion.").await == expected
        })
        .await
    );
    // A wildcard-looking name is just an unknown name.
    assert_eq!(dig(addr, "*.orion.", "SOA").await.0, "NXDOMAIN");
}

#[tokio::test]
async fn answers_are_bounded() {
    let (store, _server, addr) = start("n1").await;
    add_node(&store, "n1", "127.0.0.11").await;
    add_service(&store, "big").await;
    for slot in 0..70u32 {
        run_task(&store, "big", slot, "n1", 36000 + 2 * slot as u16).await;
    }
    let max = orion_dns::MAX_ANSWERS;
    assert!(
        eventually(WAIT, || async {
            dig(addr, "_http._tcp.big.orion.", "SRV").await.1.len() == max
        })
        .await
    );
}

#[tokio::test]
async fn names_outside_the_zone_are_forwarded_only_when_configured() {
    // The upstream: another server, for `upstream.`.
    let up_store = orion_core::store::ClusterStore::new(orion_core::store::MemoryStore::new());
    let up_addr = orion_core::testing::ports::reserve_loopback_port();
    let _upstream = orion_dns::DnsServer::start(
        up_store.clone(),
        orion_dns::DnsConfig::new("u1", "upstream.").unwrap(),
        &[up_addr],
    )
    .await
    .unwrap();
    add_node(&up_store, "u1", "127.0.0.21").await;
    add_service(&up_store, "db").await;
    run_task(&up_store, "db", 0, "u1", 37000).await;
    assert!(
        eventually(WAIT, || async {
            dig(up_addr, "db.upstream.", "A").await.1.len() == 1
        })
        .await
    );

    // Without forwarding: REFUSED (already covered), with it: the upstream's answer.
    let store = orion_core::store::ClusterStore::new(orion_core::store::MemoryStore::new());
    let addr = orion_core::testing::ports::reserve_loopback_port();
    let config = orion_dns::DnsConfig::new("n1", "orion.")
        .unwrap()
        .with_forward(vec![up_addr])
        .unwrap();
    let _server = orion_dns::DnsServer::start(store.clone(), config, &[addr])
        .await
        .unwrap();
    let r = resolver(addr);
    assert!(
        eventually(WAIT, || async {
            resolve_a(&r, "db.upstream.").await == vec![ip("127.0.0.21")]
        })
        .await
    );
    let (status, answers) = dig(addr, "db.upstream.", "A").await;
    assert_eq!(status, "NOERROR");
    assert!(answers[0].ends_with("A 127.0.0.21"), "{answers:?}");
    assert_eq!(dig(addr, "nope.upstream.", "A").await.0, "NXDOMAIN");
    // An upstream that refuses (outside its zone) fails the lookup: SERVFAIL, never a hang.
    assert_eq!(dig(addr, "example.com.", "A").await.0, "SERVFAIL");
    // Its own zone is still answered locally.
    assert_eq!(dig(addr, "nope.orion.", "A").await.0, "NXDOMAIN");

    let too_many = vec![up_addr; orion_dns::MAX_FORWARD + 1];
    let e = orion_dns::DnsConfig::new("n1", "orion.")
        .unwrap()
        .with_forward(too_many)
        .unwrap_err();
    assert!(e.to_string().contains("at most 4"), "{e}");
}
