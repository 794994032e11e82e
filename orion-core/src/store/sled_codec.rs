//! The byte layout of `SledStore`'s trees. Compact and versionless on purpose: the format is
//! private to `SledStore`, and every decode failure is an [`Error::Corrupt`] naming the key.
//!
//! - `kv` tree: key bytes -> `create_revision | mod_revision | version` (3 × u64 BE) `| value`.
//! - `history` tree: revision (u64 BE) -> `count: u32 BE`, then per event
//!   `kind: u8 (0 put, 1 delete) | kv | has_prev: u8 | prev kv?`, where a kv is
//!   `key_len: u32 BE | key | 3 × u64 BE | value_len: u32 BE | value`.
//! - `meta` tree: `revision`, `compacted` -> u64 BE.

use super::{EventKind, KeyValue, Revision, WatchEvent};
use crate::error::{Error, Result};

/// Encodes a kv tree value (the key is the tree key).
pub(crate) fn encode_entry(kv: &KeyValue) -> Vec<u8> {
    let mut out = Vec::with_capacity(24 + kv.value.len());
    out.extend_from_slice(&kv.create_revision.to_be_bytes());
    out.extend_from_slice(&kv.mod_revision.to_be_bytes());
    out.extend_from_slice(&kv.version.to_be_bytes());
    out.extend_from_slice(&kv.value);
    out
}

/// Decodes a kv tree entry.
pub(crate) fn decode_entry(key: &[u8], bytes: &[u8]) -> Result<KeyValue> {
    let key = decode_key(key)?;
    let mut reader = Reader::new(bytes, &key);
    let create_revision = reader.u64()?;
    let mod_revision = reader.u64()?;
    let version = reader.u64()?;
    let value = reader.rest().to_vec();
    Ok(KeyValue {
        key,
        value,
        create_revision,
        mod_revision,
        version,
    })
}

/// A tree key as UTF-8.
pub(crate) fn decode_key(key: &[u8]) -> Result<String> {
    String::from_utf8(key.to_vec()).map_err(|e| Error::Corrupt {
        key: String::from_utf8_lossy(key).into_owned(),
        reason: format!("key is not UTF-8: {e}"),
    })
}

/// Encodes the events of one revision.
pub(crate) fn encode_events(events: &[WatchEvent]) -> Vec<u8> {
    let mut out = Vec::new();
    push_len(&mut out, events.len());
    for event in events {
        out.push(match event.kind {
            EventKind::Put => 0,
            EventKind::Delete => 1,
        });
        push_kv(&mut out, &event.kv);
        match &event.prev {
            Some(prev) => {
                out.push(1);
                push_kv(&mut out, prev);
            }
            None => out.push(0),
        }
    }
    out
}

/// Decodes the events of one revision, stored under history key `revision`.
pub(crate) fn decode_events(revision: Revision, bytes: &[u8]) -> Result<Vec<WatchEvent>> {
    let name = format!("history/{revision}");
    let mut reader = Reader::new(bytes, &name);
    let count = reader.len()?;
    let mut events = Vec::with_capacity(count.min(1024));
    for _ in 0..count {
        let kind = match reader.u8()? {
            0 => EventKind::Put,
            1 => EventKind::Delete,
            other => return Err(reader.corrupt(format!("unknown event kind {other}"))),
        };
        let kv = reader.kv()?;
        let prev = match reader.u8()? {
            0 => None,
            1 => Some(reader.kv()?),
            other => return Err(reader.corrupt(format!("bad prev flag {other}"))),
        };
        events.push(WatchEvent { kind, kv, prev });
    }
    Ok(events)
}

/// Decodes a u64 stored big-endian (meta values, history keys).
pub(crate) fn decode_u64(name: &str, bytes: &[u8]) -> Result<u64> {
    Reader::new(bytes, name).u64()
}

fn push_len(out: &mut Vec<u8>, len: usize) {
    // Lengths above u32::MAX cannot occur: sled values are far smaller.
    out.extend_from_slice(&u32::try_from(len).unwrap_or(u32::MAX).to_be_bytes());
}

fn push_kv(out: &mut Vec<u8>, kv: &KeyValue) {
    push_len(out, kv.key.len());
    out.extend_from_slice(kv.key.as_bytes());
    out.extend_from_slice(&kv.create_revision.to_be_bytes());
    out.extend_from_slice(&kv.mod_revision.to_be_bytes());
    out.extend_from_slice(&kv.version.to_be_bytes());
    push_len(out, kv.value.len());
    out.extend_from_slice(&kv.value);
}

/// A bounds-checked reader; every failure names what was being decoded.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
    name: &'a str,
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8], name: &'a str) -> Self {
        Reader { bytes, at: 0, name }
    }

    fn corrupt(&self, reason: String) -> Error {
        Error::Corrupt {
            key: self.name.to_owned(),
            reason: format!("{reason} (at byte {} of {})", self.at, self.bytes.len()),
        }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&end| end <= self.bytes.len());
        match end {
            Some(end) => {
                let slice = &self.bytes[self.at..end];
                self.at = end;
                Ok(slice)
            }
            None => Err(self.corrupt(format!("truncated: needed {n} more bytes"))),
        }
    }

    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }

    fn u64(&mut self) -> Result<u64> {
        let mut buf = [0u8; 8];
        buf.copy_from_slice(self.take(8)?);
        Ok(u64::from_be_bytes(buf))
    }

    fn len(&mut self) -> Result<usize> {
        let mut buf = [0u8; 4];
        buf.copy_from_slice(self.take(4)?);
        Ok(u32::from_be_bytes(buf) as usize)
    }

    fn rest(&mut self) -> &'a [u8] {
        let rest = &self.bytes[self.at..];
        self.at = self.bytes.len();
        rest
    }

    fn kv(&mut self) -> Result<KeyValue> {
        let key_len = self.len()?;
        let key = self.take(key_len)?;
        let key = String::from_utf8(key.to_vec())
            .map_err(|e| self.corrupt(format!("event key is not UTF-8: {e}")))?;
        let create_revision = self.u64()?;
        let mod_revision = self.u64()?;
        let version = self.u64()?;
        let value_len = self.len()?;
        let value = self.take(value_len)?.to_vec();
        Ok(KeyValue {
            key,
            value,
            create_revision,
            mod_revision,
            version,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(key: &str, value: &[u8], rev: Revision) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: value.to_vec(),
            create_revision: 1,
            mod_revision: rev,
            version: 2,
        }
    }

    #[test]
    fn entries_and_events_round_trip() {
        let entry = kv("/a", b"hello", 7);
        assert_eq!(decode_entry(b"/a", &encode_entry(&entry)).unwrap(), entry);
        let events = vec![
            WatchEvent {
                kind: EventKind::Put,
                kv: kv("/a", b"x", 3),
                prev: Some(kv("/a", b"", 2)),
            },
            WatchEvent {
                kind: EventKind::Delete,
                kv: kv("/b", b"", 3),
                prev: None,
            },
        ];
        assert_eq!(decode_events(3, &encode_events(&events)).unwrap(), events);
    }

    #[test]
    fn truncated_or_garbage_bytes_are_corrupt_errors() {
        let bytes = encode_events(&[WatchEvent {
            kind: EventKind::Put,
            kv: kv("/a", b"value", 3),
            prev: None,
        }]);
        for cut in 0..bytes.len() {
            let err = decode_events(3, &bytes[..cut]).unwrap_err();
            assert!(matches!(err, Error::Corrupt { .. }), "{err}");
        }
        let err = decode_entry(b"/a", b"short").unwrap_err();
        assert!(err.to_string().contains("truncated"), "{err}");
        let err = decode_events(9, &[0, 0, 0, 1, 7]).unwrap_err();
        assert!(err.to_string().contains("unknown event kind 7"), "{err}");
    }
}
