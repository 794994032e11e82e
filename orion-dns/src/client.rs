//! A minimal DNS client for `orion dns lookup` and the benchmarks: one question, over UDP, and
//! again over TCP when the answer comes back truncated.

use std::net::SocketAddr;
use std::time::Duration;

use hickory_proto::op::{Edns, Message, Query};
use hickory_proto::rr::{Name, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::error::{Error, Result};

/// The largest answer accepted over TCP, bytes (the protocol's own limit).
const MAX_TCP_ANSWER: usize = 65_535;

/// A query message for `name`/`qtype` with a random id and EDNS (4096-byte UDP answers).
pub fn query_message(name: &Name, qtype: RecordType) -> Message {
    let mut msg = Message::query();
    msg.add_query(Query::query(name.clone(), qtype));
    let mut edns = Edns::new();
    edns.set_max_payload(4096);
    msg.set_edns(edns);
    msg
}

/// Asks `server` for `name`/`qtype`, waiting at most `timeout` per attempt. Fails on timeout, on
/// an answer that does not parse, and on one whose id or question does not match.
pub async fn lookup(
    server: SocketAddr,
    name: &Name,
    qtype: RecordType,
    timeout: Duration,
) -> Result<Message> {
    let fail = |reason: String| Error::Query { server, reason };
    let msg = query_message(name, qtype);
    let bytes = msg.to_vec().map_err(|e| fail(e.to_string()))?;
    let local: SocketAddr = if server.is_ipv4() {
        "0.0.0.0:0".parse().expect("literal")
    } else {
        "[::]:0".parse().expect("literal")
    };
    let socket = tokio::net::UdpSocket::bind(local)
        .await
        .map_err(|e| fail(format!("cannot open a UDP socket: {e}")))?;
    socket
        .connect(server)
        .await
        .map_err(|e| fail(e.to_string()))?;
    socket.send(&bytes).await.map_err(|e| fail(e.to_string()))?;
    let mut buf = vec![0u8; 4096];
    let answer = loop {
        let n = tokio::time::timeout(timeout, socket.recv(&mut buf))
            .await
            .map_err(|_| fail(format!("no answer over UDP within {timeout:?}")))?
            .map_err(|e| fail(e.to_string()))?;
        match Message::from_vec(&buf[..n]) {
            Ok(m) if m.metadata.id == msg.metadata.id => break m,
            // A stray datagram (an old answer): keep waiting, within the same timeout.
            _ => continue,
        }
    };
    if !answer.metadata.truncation {
        return Ok(answer);
    }
    tokio::time::timeout(timeout, lookup_tcp(server, &bytes))
        .await
        .map_err(|_| fail(format!("no answer over TCP within {timeout:?}")))?
        .map_err(|e| fail(format!("over TCP: {e}")))
}

async fn lookup_tcp(server: SocketAddr, query: &[u8]) -> std::io::Result<Message> {
    let mut stream = tokio::net::TcpStream::connect(server).await?;
    let len = u16::try_from(query.len()).map_err(std::io::Error::other)?;
    stream.write_all(&len.to_be_bytes()).await?;
    stream.write_all(query).await?;
    let len = usize::from(stream.read_u16().await?);
    let mut buf = vec![0u8; len.min(MAX_TCP_ANSWER)];
    stream.read_exact(&mut buf).await?;
    Message::from_vec(&buf).map_err(std::io::Error::other)
}
