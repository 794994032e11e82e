//! Malformed, truncated, oversized and random packets never crash the server or stop it
//! answering.

mod support;

use std::time::Duration;

use hickory_proto::rr::{Name, RecordType};
use rand::{Rng, SeedableRng};
use support::*;
use tokio::io::AsyncWriteExt;

#[tokio::test]
async fn garbage_never_stops_the_server() {
    let (store, _server, addr) = start("n1").await;
    add_node(&store, "n1", "127.0.0.11").await;
    add_service(&store, "web").await;
    run_task(&store, "web", 0, "n1", 34000).await;
    assert!(
        eventually(Duration::from_secs(10), || async {
            dig(addr, "web.orion.", "A").await.1.len() == 1
        })
        .await
    );

    let good =
        orion_dns::client::query_message(&Name::from_ascii("web.orion.").unwrap(), RecordType::A)
            .to_vec()
            .unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(13);
    let udp = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut packets: Vec<Vec<u8>> = vec![
        Vec::new(),
        vec![0],
        vec![0xff; 12],
        vec![0; 65_000],
        good[..good.len() / 2].to_vec(),
        // A header claiming 65535 questions, and a name with a compression loop.
        [
            &good[..4],
            &[0xff, 0xff, 0, 0, 0, 0, 0, 0],
            &[0xc0, 0x0c, 0, 1, 0, 1],
        ]
        .concat(),
    ];
    for i in 0..good.len() {
        packets.push(good[..i].to_vec());
    }
    for _ in 0..500 {
        let len = rng.random_range(0..1500);
        let mut p: Vec<u8> = (0..len).map(|_| rng.random()).collect();
        if rng.random_bool(0.5) && p.len() > good.len() {
            // Valid header and question, random tail / flipped bytes.
            p[..good.len()].copy_from_slice(&good);
            let at = rng.random_range(0..good.len());
            p[at] ^= rng.random::<u8>();
        }
        packets.push(p);
    }
    for p in &packets {
        let _ = udp.send_to(p, addr).await;
    }
    // Over TCP: bad lengths, half messages, random bytes, connections dropped mid-message.
    for p in packets.iter().take(60) {
        if let Ok(mut s) = tokio::net::TcpStream::connect(addr).await {
            let len = u16::try_from(p.len().min(65_535)).unwrap();
            let _ = s.write_all(&len.wrapping_add(7).to_be_bytes()).await;
            let _ = s.write_all(p).await;
        }
    }
    // Still answering, over both transports.
    let r = resolver(addr);
    assert!(
        eventually(Duration::from_secs(10), || async {
            resolve_a(&r, "web.orion.").await.len() == 1
                && dig(addr, "web.orion.", "A").await.1.len() == 1
        })
        .await
    );
    let answer = orion_dns::client::lookup(
        addr,
        &Name::from_ascii("web.orion.").unwrap(),
        RecordType::A,
        Duration::from_secs(2),
    )
    .await
    .unwrap();
    assert_eq!(answer.answers.len(), 1);
}
