//! [`SharedKv`]: a key/value as a store keeps it, shared between its key set, its history and
//! its snapshots.

use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{KeyValue, Revision};

/// A [`KeyValue`] kept compactly and shared: the key and the value in one allocation, behind an
/// [`Arc`], so the key set, the watch history and a snapshot hold the same bytes and cloning one
/// copies nothing. A leader keeps two per task (its record and its replica-slot record), and a
/// [`KeyValue`] costs three allocations (the `Arc`'s, the key's and the value's) where this costs
/// two.
///
/// Equality compares contents. Serializes exactly as the [`KeyValue`] it holds, so a snapshot
/// reads back either way.
#[derive(Clone, PartialEq, Eq)]
pub struct SharedKv(Arc<Stored>);

#[derive(PartialEq, Eq)]
struct Stored {
    create_revision: Revision,
    mod_revision: Revision,
    version: u64,
    /// Where the key ends in `bytes` (the value follows).
    key_len: usize,
    /// The key's UTF-8 bytes, then the value.
    bytes: Box<[u8]>,
}

impl SharedKv {
    /// The key.
    pub fn key(&self) -> &str {
        // Built from a `String`, so always UTF-8: the fallback is never taken.
        std::str::from_utf8(self.key_bytes()).unwrap_or_default()
    }

    /// The key's bytes (ordered as the key is).
    pub fn key_bytes(&self) -> &[u8] {
        &self.0.bytes[..self.0.key_len]
    }

    /// The value.
    pub fn value(&self) -> &[u8] {
        &self.0.bytes[self.0.key_len..]
    }

    /// Revision of the write that created the key.
    pub fn create_revision(&self) -> Revision {
        self.0.create_revision
    }

    /// Revision of the last write to the key.
    pub fn mod_revision(&self) -> Revision {
        self.0.mod_revision
    }

    /// Writes since creation.
    pub fn version(&self) -> u64 {
        self.0.version
    }

    /// A copy as a [`KeyValue`].
    pub fn to_key_value(&self) -> KeyValue {
        KeyValue {
            key: self.key().to_owned(),
            value: self.value().to_vec(),
            create_revision: self.0.create_revision,
            mod_revision: self.0.mod_revision,
            version: self.0.version,
        }
    }
}

impl From<KeyValue> for SharedKv {
    fn from(kv: KeyValue) -> Self {
        let mut bytes = Vec::with_capacity(kv.key.len() + kv.value.len());
        bytes.extend_from_slice(kv.key.as_bytes());
        bytes.extend_from_slice(&kv.value);
        SharedKv(Arc::new(Stored {
            create_revision: kv.create_revision,
            mod_revision: kv.mod_revision,
            version: kv.version,
            key_len: kv.key.len(),
            bytes: bytes.into_boxed_slice(),
        }))
    }
}

impl std::fmt::Debug for SharedKv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedKv")
            .field("key", &self.key())
            .field("value_len", &self.value().len())
            .field("create_revision", &self.0.create_revision)
            .field("mod_revision", &self.0.mod_revision)
            .field("version", &self.0.version)
            .finish()
    }
}

/// [`KeyValue`]'s serialized form, borrowed.
#[derive(Serialize)]
struct KeyValueRef<'a> {
    key: &'a str,
    #[serde(with = "serde_bytes")]
    value: &'a [u8],
    create_revision: Revision,
    mod_revision: Revision,
    version: u64,
}

impl Serialize for SharedKv {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        KeyValueRef {
            key: self.key(),
            value: self.value(),
            create_revision: self.0.create_revision,
            mod_revision: self.0.mod_revision,
            version: self.0.version,
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for SharedKv {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        KeyValue::deserialize(deserializer).map(SharedKv::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(key: &str, value: &[u8]) -> KeyValue {
        KeyValue {
            key: key.to_owned(),
            value: value.to_vec(),
            create_revision: 3,
            mod_revision: 7,
            version: 2,
        }
    }

    #[test]
    fn holds_the_key_value_it_was_made_from() {
        for (key, value) in [("/a/b", &b"xyz"[..]), ("/é", b""), ("", b"v"), ("", b"")] {
            let shared = SharedKv::from(kv(key, value));
            assert_eq!((shared.key(), shared.value()), (key, value));
            assert_eq!(shared.key_bytes(), key.as_bytes());
            assert_eq!((shared.create_revision(), shared.mod_revision()), (3, 7));
            assert_eq!(shared.version(), 2);
            assert_eq!(shared.to_key_value(), kv(key, value));
        }
    }

    #[test]
    fn serializes_as_the_key_value_it_holds() {
        let original = kv("/orion/tasks/web-0-a", b"\x01record");
        let shared = SharedKv::from(original.clone());
        let as_kv = postcard::to_allocvec(&original).unwrap();
        assert_eq!(postcard::to_allocvec(&shared).unwrap(), as_kv);
        assert_eq!(postcard::from_bytes::<SharedKv>(&as_kv).unwrap(), shared);
        let json = serde_json::to_string(&shared).unwrap();
        assert_eq!(json, serde_json::to_string(&original).unwrap());
        assert_eq!(serde_json::from_str::<SharedKv>(&json).unwrap(), shared);
    }
}
