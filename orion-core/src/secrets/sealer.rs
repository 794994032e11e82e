//! Sealing secrets at rest with XChaCha20-Poly1305.

use std::fmt;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::{SecretValue, check_secret_name};
use crate::error::{Error, Result, ValidationErrors};

/// The version of the sealed form written by this code.
pub const SEALED_FORMAT: u32 = 1;

/// Nonce length of XChaCha20-Poly1305: long enough to draw at random for every value.
const NONCE_BYTES: usize = 24;

/// A secret as stored: its name, when it was created, the id of the key that sealed it, the
/// random nonce and the ciphertext (with its 16-byte tag). Holds no plaintext; listing these is
/// safe, but the API still answers only [`SealedSecret::name`], `created_at_ms` and `key_id`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedSecret {
    /// The form's version ([`SEALED_FORMAT`]).
    pub format: u32,
    pub name: String,
    /// Milliseconds since the Unix epoch.
    pub created_at_ms: u64,
    /// The id of the key that sealed it ([`SecretSealer::key_id`]).
    pub key_id: String,
    #[serde(with = "serde_bytes")]
    pub nonce: Vec<u8>,
    #[serde(with = "serde_bytes")]
    pub ciphertext: Vec<u8>,
}

impl fmt::Debug for SealedSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SealedSecret")
            .field("name", &self.name)
            .field("created_at_ms", &self.created_at_ms)
            .field("key_id", &self.key_id)
            .field("ciphertext_bytes", &self.ciphertext.len())
            .finish()
    }
}

/// One key: its id and its cipher.
struct Key {
    id: String,
    cipher: XChaCha20Poly1305,
}

impl Key {
    fn new(key: [u8; 32]) -> Self {
        let key = Zeroizing::new(key);
        let digest = Sha256::new()
            .chain_update(b"orion secret key id v1\0")
            .chain_update(key.as_slice())
            .finalize();
        let id = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
        Key {
            id,
            cipher: XChaCha20Poly1305::new(key.as_slice().into()),
        }
    }
}

/// Seals and opens secrets with a 32-byte key (the cluster key, or a key derived from it).
///
/// Contract: every [`seal`](Self::seal) draws a fresh random nonce; the secret's name is the
/// associated data, so a sealed value moved under another name does not open; a sealed value
/// names its key's id (the first 8 bytes of a SHA-256 of the key, in hex: it reveals nothing of
/// the key), and [`open`](Self::open) picks the key by that id among the current key and the
/// previous ones given to [`with_previous_key`](Self::with_previous_key), so values sealed before
/// a rotation still open. `Debug` shows key ids only.
pub struct SecretSealer {
    current: Key,
    previous: Vec<Key>,
}

impl fmt::Debug for SecretSealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretSealer")
            .field("key_id", &self.current.id)
            .field(
                "previous_key_ids",
                &self.previous.iter().map(|k| &k.id).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl SecretSealer {
    /// A sealer that seals with `key`.
    pub fn new(key: [u8; 32]) -> Self {
        SecretSealer {
            current: Key::new(key),
            previous: Vec::new(),
        }
    }

    /// This sealer, also opening values sealed with `key` (a key rotated out).
    pub fn with_previous_key(mut self, key: [u8; 32]) -> Self {
        self.previous.push(Key::new(key));
        self
    }

    /// The id of the key new values are sealed with.
    pub fn key_id(&self) -> &str {
        &self.current.id
    }

    /// Seals `value` as secret `name` (a DNS label; [`Error::Invalid`] otherwise), created at
    /// `now_ms`.
    pub fn seal(&self, name: &str, value: &SecretValue, now_ms: u64) -> Result<SealedSecret> {
        if let Err(expected) = check_secret_name(name) {
            let mut errors = ValidationErrors::default();
            errors.push("name", format!("{name:?}"), expected);
            return Err(errors.into());
        }
        let mut nonce = vec![0u8; NONCE_BYTES];
        rand::rng().fill_bytes(&mut nonce);
        let ciphertext = self
            .current
            .cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: value.expose(),
                    aad: name.as_bytes(),
                },
            )
            .map_err(|_| secret_error(name, "encryption failed"))?;
        Ok(SealedSecret {
            format: SEALED_FORMAT,
            name: name.to_owned(),
            created_at_ms: now_ms,
            key_id: self.current.id.clone(),
            nonce,
            ciphertext,
        })
    }

    /// Opens a sealed value. [`Error::Secret`] when its key is not one of this sealer's (naming
    /// both ids), or when it does not authenticate (altered, or stored under another name).
    pub fn open(&self, sealed: &SealedSecret) -> Result<SecretValue> {
        let name = &sealed.name;
        if sealed.format != SEALED_FORMAT {
            return Err(secret_error(
                name,
                &format!(
                    "sealed form {} is not known here (this node reads form {SEALED_FORMAT})",
                    sealed.format
                ),
            ));
        }
        let key = std::iter::once(&self.current)
            .chain(&self.previous)
            .find(|k| k.id == sealed.key_id)
            .ok_or_else(|| {
                secret_error(
                    name,
                    &format!(
                        "sealed with key {}, but this node holds key {} (every node needs the \
                         cluster key that sealed it)",
                        sealed.key_id, self.current.id
                    ),
                )
            })?;
        if sealed.nonce.len() != NONCE_BYTES {
            return Err(secret_error(name, "the stored nonce is not 24 bytes"));
        }
        let plain = key
            .cipher
            .decrypt(
                XNonce::from_slice(&sealed.nonce),
                Payload {
                    msg: &sealed.ciphertext,
                    aad: name.as_bytes(),
                },
            )
            .map_err(|_| secret_error(name, "the sealed value does not authenticate"))?;
        SecretValue::new(plain)
    }
}

fn secret_error(name: &str, reason: &str) -> Error {
    Error::Secret {
        name: name.to_owned(),
        reason: reason.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(text: &str) -> SecretValue {
        SecretValue::new(text.as_bytes().to_vec()).unwrap()
    }

    #[test]
    fn seal_then_open_gives_the_value_back_and_the_ciphertext_hides_it() {
        let sealer = SecretSealer::new([1; 32]);
        let a = sealer.seal("db", &value("p4ssw0rd-p4ssw0rd"), 5).unwrap();
        let b = sealer.seal("db", &value("p4ssw0rd-p4ssw0rd"), 5).unwrap();
        assert_ne!(a.nonce, b.nonce, "a fresh nonce per value");
        assert_ne!(a.ciphertext, b.ciphertext);
        let json = serde_json::to_string(&a).unwrap();
        assert!(!json.contains("p4ssw0rd"));
        assert!(!format!("{a:?}").contains("p4ssw0rd"));
        assert_eq!(sealer.open(&a).unwrap().expose(), b"p4ssw0rd-p4ssw0rd");
    }

    #[test]
    fn another_key_or_name_or_altered_bytes_do_not_open() {
        let sealer = SecretSealer::new([1; 32]);
        let sealed = sealer.seal("db", &value("secret"), 0).unwrap();
        let other = SecretSealer::new([2; 32]);
        let err = other.open(&sealed).unwrap_err().to_string();
        assert!(
            err.contains(sealer.key_id()) && err.contains(other.key_id()),
            "{err}"
        );

        let mut moved = sealed.clone();
        moved.name = "web".into();
        assert!(sealer.open(&moved).is_err());

        let mut altered = sealed.clone();
        altered.ciphertext[0] ^= 1;
        assert!(sealer.open(&altered).is_err());
    }

    #[test]
    fn a_rotated_sealer_opens_old_values_and_seals_with_the_new_key() {
        let old = SecretSealer::new([1; 32]);
        let sealed = old.seal("db", &value("secret"), 0).unwrap();
        let rotated = SecretSealer::new([9; 32]).with_previous_key([1; 32]);
        assert_eq!(rotated.open(&sealed).unwrap().expose(), b"secret");
        assert_ne!(
            rotated.seal("db", &value("x"), 0).unwrap().key_id,
            old.key_id()
        );
        assert!(!format!("{rotated:?}").contains("[9"));
    }

    #[test]
    fn a_bad_name_is_refused() {
        let sealer = SecretSealer::new([1; 32]);
        assert!(matches!(
            sealer.seal("Bad_Name", &value("x"), 0),
            Err(Error::Invalid(_))
        ));
    }
}
