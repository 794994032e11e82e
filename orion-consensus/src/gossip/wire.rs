//! The envelope around every gossip datagram.
//!
//! `ORNG` magic, a version byte, a kind byte, the sender's [cluster id](crate::cluster_id) (a
//! length byte, 0 to 64, then ASCII; length 0 when the sender has none yet), then the payload:
//! - `SWIM`: a foca packet (probes, acks, announces, piggybacked updates);
//! - `HELLO`: "who are you?", sent to a seed address whose node id is not known yet, with the
//!   sender's identity, so the seed can refuse a second process using a live member's node id;
//! - `HELLO_REPLY`: the seed's identity, so the joiner can announce itself to it through SWIM;
//! - `LEAVE`: the sender leaves gracefully; receivers report `Left`, never `Dead`;
//! - `REFUSE`: the answer to a `HELLO` whose node id a live member already uses, with that
//!   member's identity.
//!
//! Anything else (foreign traffic, garbage, truncated data) is a [`Malformed`] packet: dropped and
//! counted, never acted on. Whether the cluster id is the receiver's is the actor's check.

use super::identity::NodeIdentity;
use crate::cluster_id::{MAX_CLUSTER_ID_LEN, validate_cluster_id};

const MAGIC: &[u8; 4] = b"ORNG";
/// Version 1 had no cluster id and an empty `HELLO`.
const VERSION: u8 = 2;
const HEADER_LEN: usize = MAGIC.len() + 3;

const KIND_SWIM: u8 = 0;
const KIND_HELLO: u8 = 1;
const KIND_HELLO_REPLY: u8 = 2;
const KIND_LEAVE: u8 = 3;
const KIND_REFUSE: u8 = 4;

/// A decoded envelope.
#[derive(Debug)]
pub(crate) enum Frame<'a> {
    Swim(&'a [u8]),
    Hello(NodeIdentity),
    HelloReply(NodeIdentity),
    Leave(NodeIdentity),
    Refuse(NodeIdentity),
}

/// Why a datagram was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Malformed {
    /// Too short, wrong magic or unknown version: not Orion gossip.
    Foreign,
    /// Orion gossip of an unknown kind, with a bad cluster id or an undecodable payload.
    BadPayload,
}

/// The envelope of `kind` from a node of `cluster` (empty: none yet). A cluster id that is
/// not valid is sent as none (the config and the learned ids are validated before use).
fn envelope(cluster: &str, kind: u8, payload: &[u8]) -> Vec<u8> {
    let cluster = if validate_cluster_id(cluster).is_ok() {
        cluster
    } else {
        ""
    };
    let mut out = Vec::with_capacity(HEADER_LEN + cluster.len() + payload.len());
    out.extend_from_slice(MAGIC);
    out.push(VERSION);
    out.push(kind);
    // At most MAX_CLUSTER_ID_LEN (64) bytes: fits in one byte.
    out.push(cluster.len() as u8);
    out.extend_from_slice(cluster.as_bytes());
    out.extend_from_slice(payload);
    out
}

fn identity_envelope(cluster: &str, kind: u8, identity: &NodeIdentity) -> Vec<u8> {
    // Serializing a plain struct of strings, maps and integers into a Vec cannot fail.
    let payload = postcard::to_allocvec(identity).unwrap_or_default();
    envelope(cluster, kind, &payload)
}

pub(crate) fn swim(cluster: &str, payload: &[u8]) -> Vec<u8> {
    envelope(cluster, KIND_SWIM, payload)
}

pub(crate) fn hello(cluster: &str, own: &NodeIdentity) -> Vec<u8> {
    identity_envelope(cluster, KIND_HELLO, own)
}

pub(crate) fn hello_reply(cluster: &str, identity: &NodeIdentity) -> Vec<u8> {
    identity_envelope(cluster, KIND_HELLO_REPLY, identity)
}

pub(crate) fn leave(cluster: &str, identity: &NodeIdentity) -> Vec<u8> {
    identity_envelope(cluster, KIND_LEAVE, identity)
}

pub(crate) fn refuse(cluster: &str, holder: &NodeIdentity) -> Vec<u8> {
    identity_envelope(cluster, KIND_REFUSE, holder)
}

/// The encoded size of `identity` in a header, to check it fits the packet budget.
pub(crate) fn identity_len(identity: &NodeIdentity) -> usize {
    postcard::to_allocvec(identity).map_or(usize::MAX, |bytes| bytes.len())
}

fn decode_identity(payload: &[u8]) -> Result<NodeIdentity, Malformed> {
    match postcard::take_from_bytes::<NodeIdentity>(payload) {
        Ok((identity, [])) => Ok(identity),
        _ => Err(Malformed::BadPayload),
    }
}

/// Decodes one datagram into the sender's cluster id (empty: none) and the frame; never
/// panics, whatever the bytes.
pub(crate) fn decode(datagram: &[u8]) -> Result<(&str, Frame<'_>), Malformed> {
    if datagram.len() < HEADER_LEN
        || &datagram[..MAGIC.len()] != MAGIC
        || datagram[MAGIC.len()] != VERSION
    {
        return Err(Malformed::Foreign);
    }
    let kind = datagram[MAGIC.len() + 1];
    let cluster_len = usize::from(datagram[MAGIC.len() + 2]);
    let rest = &datagram[HEADER_LEN..];
    if cluster_len > MAX_CLUSTER_ID_LEN || cluster_len > rest.len() {
        return Err(Malformed::BadPayload);
    }
    let (cluster, payload) = rest.split_at(cluster_len);
    let cluster = std::str::from_utf8(cluster)
        .ok()
        .filter(|id| id.is_empty() || validate_cluster_id(id).is_ok())
        .ok_or(Malformed::BadPayload)?;
    let frame = match kind {
        KIND_SWIM if !payload.is_empty() => Frame::Swim(payload),
        KIND_HELLO => Frame::Hello(decode_identity(payload)?),
        KIND_HELLO_REPLY => Frame::HelloReply(decode_identity(payload)?),
        KIND_LEAVE => Frame::Leave(decode_identity(payload)?),
        KIND_REFUSE => Frame::Refuse(decode_identity(payload)?),
        _ => return Err(Malformed::BadPayload),
    };
    Ok((cluster, frame))
}

#[cfg(test)]
mod tests {
    use super::*;
    use orion_core::model::{NodeAddresses, Resources};

    fn identity() -> NodeIdentity {
        NodeIdentity {
            id: "n1".into(),
            boot: 1,
            generation: 2,
            gossip_addr: "127.0.0.1:7000".parse().expect("literal address"),
            addresses: NodeAddresses::default(),
            labels: [("zone".to_string(), "a".to_string())].into(),
            capacity: Resources::new(1000, 1 << 30),
        }
    }

    #[test]
    fn frames_round_trip_with_the_cluster_id() {
        let id = identity();
        assert!(matches!(
            decode(&swim("c1", b"xyz")),
            Ok(("c1", Frame::Swim(b"xyz")))
        ));
        assert!(matches!(decode(&hello("", &id)), Ok(("", Frame::Hello(got))) if got == id));
        assert!(
            matches!(decode(&hello_reply("c1", &id)), Ok(("c1", Frame::HelloReply(got))) if got == id)
        );
        assert!(matches!(decode(&leave("c1", &id)), Ok(("c1", Frame::Leave(got))) if got == id));
        assert!(matches!(decode(&refuse("c1", &id)), Ok(("c1", Frame::Refuse(got))) if got == id));
        assert!(
            matches!(decode(&swim("not valid!", b"x")), Ok(("", _))),
            "an invalid id is sent as none"
        );
    }

    #[test]
    fn garbage_is_malformed_never_a_panic() {
        assert_eq!(decode(b"").unwrap_err(), Malformed::Foreign);
        assert_eq!(decode(b"GET / HTTP/1.1").unwrap_err(), Malformed::Foreign);
        assert_eq!(
            decode(b"ORNG\x01\x00\x00abc").unwrap_err(),
            Malformed::Foreign,
            "version 1"
        );
        assert_eq!(
            decode(b"ORNG\x02\x09\x00abc").unwrap_err(),
            Malformed::BadPayload
        );
        assert_eq!(
            decode(b"ORNG\x02\x02\x00\xff\xff").unwrap_err(),
            Malformed::BadPayload
        );
        assert_eq!(
            decode(b"ORNG\x02\x00\x09c1").unwrap_err(),
            Malformed::BadPayload,
            "cluster id longer than the datagram"
        );
        assert_eq!(
            decode(b"ORNG\x02\x00\x02a b").unwrap_err(),
            Malformed::BadPayload,
            "cluster id with a space"
        );
        let mut truncated = leave("c1", &identity());
        truncated.truncate(truncated.len() - 3);
        assert_eq!(decode(&truncated).unwrap_err(), Malformed::BadPayload);
    }
}
