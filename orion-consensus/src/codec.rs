//! The binary encoding of everything Raft writes to disk or sends to a peer.
//!
//! - **Stored** bytes (log entries, vote, snapshots) are plain [postcard]: compact, and an order
//!   of magnitude cheaper to encode and decode than JSON for byte-heavy entries. sled checksums
//!   its own pages, so stored bytes carry no checksum of their own.
//! - **Wire** frames (Raft RPCs and their answers) are postcard followed by a CRC-32 (IEEE, little
//!   endian) of those bytes, sent with the content type [`WIRE_CONTENT_TYPE`]. postcard is not
//!   self-describing, so without the checksum a flipped byte could decode into a different but
//!   valid message (a vote with another term, say). A frame that is truncated, corrupt, has
//!   trailing bytes, or does not decode as the expected type is refused with
//!   [`Error::Codec`](crate::Error::Codec), whose reason says which.
//!
//! The format is versioned as a whole: [`STORAGE_FORMAT`] is recorded in each data dir's
//! identity file, and the version is part of the wire content type.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Error, Result};

/// The content type of a Raft wire frame (format version 1).
pub const WIRE_CONTENT_TYPE: &str = "application/vnd.orion.raft.v1";

/// The version of the on-disk encoding. Version 0 (JSON) was written by Orion before the binary
/// codec; such a data dir is refused at start with a message saying so.
pub const STORAGE_FORMAT: u32 = 1;

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

/// Encodes `value` as a wire frame: postcard body, then its CRC-32.
pub fn to_frame<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>> {
    let mut frame = to_bytes(value)?;
    let crc = crc32fast::hash(&frame);
    frame.extend_from_slice(&crc.to_le_bytes());
    Ok(frame)
}

/// Checks a wire frame's checksum and decodes its body as `T`.
pub fn from_frame<T: DeserializeOwned>(frame: &[u8]) -> Result<T> {
    let what = short_type_name::<T>();
    let Some(body_len) = frame.len().checked_sub(4) else {
        return Err(Error::codec(
            what,
            format_args!(
                "a frame of {} bytes is truncated: a frame is a postcard body and a 4-byte CRC-32",
                frame.len()
            ),
        ));
    };
    let (body, crc) = frame.split_at(body_len);
    let found = u32::from_le_bytes([crc[0], crc[1], crc[2], crc[3]]);
    let computed = crc32fast::hash(body);
    if found != computed {
        return Err(Error::codec(
            what,
            format_args!(
                "frame checksum mismatch (CRC-32 {found:#010x} in the frame, {computed:#010x} \
                 computed over its {body_len} body bytes): the frame is corrupt or truncated"
            ),
        ));
    }
    from_bytes(body)
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
    fn every_truncation_of_a_frame_is_refused() {
        let frame = to_frame(&sample()).unwrap();
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
        let frame = to_frame(&sample()).unwrap();
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
