//! The binary encoding of everything Raft writes to disk or sends to a peer.
//!
//! - **Stored** bytes (log entries, vote, snapshots) are plain [postcard]: compact, and an order
//!   of magnitude cheaper to encode and decode than JSON for byte-heavy entries. sled checksums
//!   its own pages, so stored bytes carry no checksum of their own.
//! - **Wire** frames (Raft RPCs and their answers) are a header naming the sender's cluster
//!   (one length byte, 0 to [`MAX_CLUSTER_ID_LEN`], then the [cluster id](crate::cluster_id) as
//!   ASCII; length 0 for a node that has none yet), the postcard body, and a CRC-32 (IEEE, little
//!   endian) of everything before it, sent with the content type [`WIRE_CONTENT_TYPE`]. postcard
//!   is not self-describing, so without the checksum a flipped byte could decode into a
//!   different but valid message (a vote with another term, say). A frame that is truncated,
//!   corrupt, has trailing bytes, a bad cluster id, or does not decode as the expected type is
//!   refused with [`Error::Codec`](crate::Error::Codec), whose reason says which. Checking the
//!   cluster id against the receiver's is the receiver's job (see `raft/server.rs`).
//!
//! The format is versioned as a whole: [`STORAGE_FORMAT`] is recorded in each data dir's
//! identity file, and the version is part of the wire content type.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::cluster_id::{MAX_CLUSTER_ID_LEN, validate_cluster_id};
use crate::error::{Error, Result};

/// The content type of a Raft wire frame (format version 2: version 1 had no cluster id).
pub const WIRE_CONTENT_TYPE: &str = "application/vnd.orion.raft.v2";

/// The version of the on-disk encoding. Version 0 (JSON) was written by Orion before the binary
/// codec, version 1 kept the log in sled (not fsync'd); such a data dir is refused at start with
/// a message saying so. Version 2: the log in fdatasync'd segment files.
pub const STORAGE_FORMAT: u32 = 2;

fn short_type_name<T: ?Sized>() -> &'static str {
    let full = std::any::type_name::<T>();
    // `openraft::raft::VoteRequest<u64>` -> `VoteRequest<u64>`: enough to recognise it.
    let generic_start = full.find('<').unwrap_or(full.len());
    let base_start = full[..generic_start].rfind("::").map_or(0, |i| i + 2);
    &full[base_start..]
}

/// Encodes `value` for storage.
pub fn to_bytes<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>> {
    // Only a bug can get here: every type Orion stores or sends has a postcard encoding.
    postcard::to_allocvec(value)
        .map_err(|e| Error::Raft(format!("cannot encode {}: {e}", short_type_name::<T>())))
}

/// Decodes stored bytes as `T`; every byte must be used.
pub fn from_bytes<T: DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    let expected = short_type_name::<T>();
    let (value, rest) = postcard::take_from_bytes::<T>(bytes)
        .map_err(|e| Error::codec(expected, format_args!("not a valid encoding ({e})")))?;
    if rest.is_empty() {
        Ok(value)
    } else {
        Err(Error::codec(
            expected,
            format_args!("{} trailing bytes after a complete value", rest.len()),
        ))
    }
}

/// Encodes `value` as a wire frame from a node that knows no cluster id yet.
pub fn to_frame<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>> {
    to_cluster_frame("", value)
}

/// Encodes `value` as a wire frame from a node of `cluster` (empty: none yet): the cluster
/// header, the postcard body, then the CRC-32 of both. Errors when `cluster` is not a valid id.
pub fn to_cluster_frame<T: Serialize + ?Sized>(cluster: &str, value: &T) -> Result<Vec<u8>> {
    if !cluster.is_empty() {
        validate_cluster_id(cluster)?;
    }
    let mut frame = Vec::with_capacity(1 + cluster.len());
    // A valid id is at most MAX_CLUSTER_ID_LEN (64) bytes, so its length fits in one byte.
    frame.push(cluster.len() as u8);
    frame.extend_from_slice(cluster.as_bytes());
    // Encoded straight into the frame: a snapshot's frame is the whole store, so no second copy.
    let mut frame = postcard::to_extend(value, frame)
        .map_err(|e| Error::Raft(format!("cannot encode {}: {e}", short_type_name::<T>())))?;
    let crc = crc32fast::hash(&frame);
    frame.extend_from_slice(&crc.to_le_bytes());
    Ok(frame)
}

/// Checks a wire frame's checksum and decodes its body as `T`, whatever cluster sent it.
pub fn from_frame<T: DeserializeOwned>(frame: &[u8]) -> Result<T> {
    from_cluster_frame(frame).map(|(_, value)| value)
}

/// Checks a wire frame's checksum and decodes it: the sender's cluster id (empty when it has
/// none yet) and the body as `T`.
pub fn from_cluster_frame<T: DeserializeOwned>(frame: &[u8]) -> Result<(String, T)> {
    let what = short_type_name::<T>();
    let Some(checked_len) = frame.len().checked_sub(4) else {
        return Err(Error::codec(
            what,
            format_args!(
                "a frame of {} bytes is truncated: a frame is a cluster header, a postcard body \
                 and a 4-byte CRC-32",
                frame.len()
            ),
        ));
    };
    let (checked, crc) = frame.split_at(checked_len);
    let found = u32::from_le_bytes([crc[0], crc[1], crc[2], crc[3]]);
    let computed = crc32fast::hash(checked);
    if found != computed {
        return Err(Error::codec(
            what,
            format_args!(
                "frame checksum mismatch (CRC-32 {found:#010x} in the frame, {computed:#010x} \
                 computed over its {checked_len} bytes): the frame is corrupt or truncated"
            ),
        ));
    }
    let Some((&id_len, rest)) = checked.split_first() else {
        return Err(Error::codec(what, "the frame has no cluster header"));
    };
    let id_len = usize::from(id_len);
    if id_len > MAX_CLUSTER_ID_LEN || id_len > rest.len() {
        return Err(Error::codec(
            what,
            format_args!(
                "the cluster header claims a {id_len}-byte cluster id; at most \
                 {MAX_CLUSTER_ID_LEN} bytes are accepted, and {} follow",
                rest.len()
            ),
        ));
    }
    let (id, body) = rest.split_at(id_len);
    let cluster = std::str::from_utf8(id)
        .ok()
        .filter(|id| id.is_empty() || validate_cluster_id(id).is_ok())
        .ok_or_else(|| Error::codec(what, "the cluster header is not a valid cluster id"))?;
    Ok((cluster.to_owned(), from_bytes(body)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raft::{Command, CommandResponse, WireError};
    use orion_core::store::{Compare, Op, Txn, TxnResult};

    fn sample() -> Command {
        Command::Batch(vec![
            Command::Txn(
                Txn::new()
                    .when(Compare::Value("k".into(), vec![0, 255, 7]))
                    .and_then(Op::Put("k".into(), vec![1; 300]))
                    .or_else(Op::DeletePrefix("p/".into())),
            ),
            Command::Compact(42),
        ])
    }

    #[test]
    fn stored_and_framed_values_round_trip() {
        let cmd = sample();
        assert_eq!(
            from_bytes::<Command>(&to_bytes(&cmd).unwrap()).unwrap(),
            cmd
        );
        assert_eq!(
            from_frame::<Command>(&to_frame(&cmd).unwrap()).unwrap(),
            cmd
        );
        let resp = CommandResponse {
            result: Err(WireError::NotLeader {
                leader: Some(3),
                leader_addr: None,
            }),
            batch: vec![Ok(TxnResult {
                succeeded: true,
                revision: 9,
            })],
        };
        assert_eq!(
            from_frame::<CommandResponse>(&to_frame(&resp).unwrap()).unwrap(),
            resp
        );
    }

    #[test]
    fn byte_values_keep_their_json_form_for_the_api() {
        // `serde_bytes` makes values plain bytes for postcard; JSON must still see number arrays.
        let op = Op::Put("k".into(), vec![1, 255]);
        let json = serde_json::to_string(&op).unwrap();
        assert_eq!(json, r#"{"Put":["k",[1,255]]}"#);
        assert_eq!(serde_json::from_str::<Op>(&json).unwrap(), op);
        assert_eq!(from_bytes::<Op>(&to_bytes(&op).unwrap()).unwrap(), op);
    }

    #[test]
    fn frames_carry_the_cluster_id() {
        let frame = to_cluster_frame("c-1", &sample()).unwrap();
        let (cluster, cmd) = from_cluster_frame::<Command>(&frame).unwrap();
        assert_eq!((cluster.as_str(), cmd), ("c-1", sample()));
        let (cluster, _) = from_cluster_frame::<Command>(&to_frame(&sample()).unwrap()).unwrap();
        assert_eq!(
            cluster, "",
            "a node without a cluster id sends an empty one"
        );
        let err = to_cluster_frame("not an id", &sample()).unwrap_err();
        assert!(err.to_string().contains("invalid cluster id"), "{err}");
    }

    #[test]
    fn every_truncation_of_a_frame_is_refused() {
        let frame = to_cluster_frame("c-1", &sample()).unwrap();
        for len in 0..frame.len() {
            assert!(
                from_frame::<Command>(&frame[..len]).is_err(),
                "a frame cut to {len} of {} bytes was accepted",
                frame.len()
            );
        }
    }

    #[test]
    fn every_single_bit_flip_is_refused() {
        let frame = to_cluster_frame("c-1", &sample()).unwrap();
        for byte in 0..frame.len() {
            for bit in 0..8 {
                let mut corrupt = frame.clone();
                corrupt[byte] ^= 1 << bit;
                assert!(
                    from_frame::<Command>(&corrupt).is_err(),
                    "flipping bit {bit} of byte {byte} went unnoticed"
                );
            }
        }
    }

    #[test]
    fn errors_say_what_was_expected() {
        let err = from_frame::<Command>(b"{\"vote\":1}").unwrap_err();
        assert!(err.to_string().contains("checksum"), "{err}");
        let err = from_bytes::<Command>(&[9, 9, 9]).unwrap_err();
        assert!(err.to_string().contains("Command"), "{err}");
        let mut extra = to_bytes(&Command::Compact(1)).unwrap();
        extra.push(0);
        let err = from_bytes::<Command>(&extra).unwrap_err();
        assert!(err.to_string().contains("1 trailing bytes"), "{err}");
        let err = from_frame::<Command>(&[1, 2]).unwrap_err();
        assert!(err.to_string().contains("truncated"), "{err}");
    }
}
