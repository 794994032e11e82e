//! The envelope around every gossip datagram.
//!
//! `ORNG` magic, a version byte and a kind byte, then the payload:
//! - `SWIM`: a foca packet (probes, acks, announces, piggybacked updates);
//! - `HELLO`: "who are you?", sent to a seed address whose node id is not known yet;
//! - `HELLO_REPLY`: the seed's identity, so the joiner can announce itself to it through SWIM;
//! - `LEAVE`: the sender leaves gracefully; receivers report `Left`, never `Dead`.
//!
//! Anything else (foreign traffic, garbage, truncated data) is a [`Malformed`] packet: dropped and
//! counted, never acted on.

use super::identity::NodeIdentity;

const MAGIC: &[u8; 4] = b"ORNG";
const VERSION: u8 = 1;
const HEADER_LEN: usize = MAGIC.len() + 2;

const KIND_SWIM: u8 = 0;
const KIND_HELLO: u8 = 1;
const KIND_HELLO_REPLY: u8 = 2;
const KIND_LEAVE: u8 = 3;

/// A decoded envelope.
#[derive(Debug)]
pub(crate) enum Frame<'a> {
    Swim(&'a [u8]),
    Hello,
    HelloReply(NodeIdentity),
    Leave(NodeIdentity),
}

/// Why a datagram was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Malformed {
    /// Too short, wrong magic or unknown version: not Orion gossip.
    Foreign,
    /// Orion gossip of an unknown kind or with an undecodable payload.
    BadPayload,
}

fn envelope(kind: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
    out.extend_from_slice(MAGIC);
    out.push(VERSION);
    out.push(kind);
    out.extend_from_slice(payload);
    out
}

fn identity_envelope(kind: u8, identity: &NodeIdentity) -> Vec<u8> {
    // Serializing a plain struct of strings, maps and integers into a Vec cannot fail.
    let payload = postcard::to_allocvec(identity).unwrap_or_default();
    envelope(kind, &payload)
}

pub(crate) fn swim(payload: &[u8]) -> Vec<u8> {
    envelope(KIND_SWIM, payload)
}

pub(crate) fn hello() -> Vec<u8> {
    envelope(KIND_HELLO, &[])
}

pub(crate) fn hello_reply(identity: &NodeIdentity) -> Vec<u8> {
    identity_envelope(KIND_HELLO_REPLY, identity)
}

pub(crate) fn leave(identity: &NodeIdentity) -> Vec<u8> {
    identity_envelope(KIND_LEAVE, identity)
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

/// Decodes one datagram; never panics, whatever the bytes.
pub(crate) fn decode(datagram: &[u8]) -> Result<Frame<'_>, Malformed> {
    if datagram.len() < HEADER_LEN
        || &datagram[..MAGIC.len()] != MAGIC
        || datagram[MAGIC.len()] != VERSION
    {
        return Err(Malformed::Foreign);
    }
    let payload = &datagram[HEADER_LEN..];
    match datagram[MAGIC.len() + 1] {
        KIND_SWIM if !payload.is_empty() => Ok(Frame::Swim(payload)),
        KIND_HELLO if payload.is_empty() => Ok(Frame::Hello),
        KIND_HELLO_REPLY => decode_identity(payload).map(Frame::HelloReply),
        KIND_LEAVE => decode_identity(payload).map(Frame::Leave),
        _ => Err(Malformed::BadPayload),
    }
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
    fn frames_round_trip() {
        let id = identity();
        assert!(matches!(decode(&swim(b"xyz")), Ok(Frame::Swim(b"xyz"))));
        assert!(matches!(decode(&hello()), Ok(Frame::Hello)));
        assert!(matches!(decode(&hello_reply(&id)), Ok(Frame::HelloReply(got)) if got == id));
        assert!(matches!(decode(&leave(&id)), Ok(Frame::Leave(got)) if got == id));
    }

    #[test]
    fn garbage_is_malformed_never_a_panic() {
        assert_eq!(decode(b"").unwrap_err(), Malformed::Foreign);
        assert_eq!(decode(b"GET / HTTP/1.1").unwrap_err(), Malformed::Foreign);
        assert_eq!(
            decode(b"ORNG\x01\x09abc").unwrap_err(),
            Malformed::BadPayload
        );
        assert_eq!(
            decode(b"ORNG\x01\x02\xff\xff").unwrap_err(),
            Malformed::BadPayload
        );
        let mut truncated = leave(&identity());
        truncated.truncate(truncated.len() - 3);
        assert_eq!(decode(&truncated).unwrap_err(), Malformed::BadPayload);
    }
}
