//! Secrets: named values (passwords, tokens, keys) that services receive as env or as files, and
//! that are stored only sealed.
//!
//! - [`SecretValue`] holds a plaintext in memory: at most [`MAX_SECRET_BYTES`], wiped on drop,
//!   and its `Debug` never shows the bytes (`SecretValue(<redacted, 12 bytes>)`). It has no
//!   `Serialize`, so it cannot end up in a JSON answer or a stored record by accident.
//! - [`SecretSealer`] seals a value into a [`SealedSecret`] with XChaCha20-Poly1305 under a
//!   32-byte cluster key (a fresh random nonce per value, the secret's name as associated data,
//!   and the key's id in the sealed form so keys can rotate). Only the sealed form is stored.
//! - [`SecretRef`] is a service spec's reference to a secret (`secrets:` in the spec), and
//!   [`SecretDelivery`] is what the agent hands a runtime once it opened the value.
//!
//! ```
//! use orion_core::secrets::{SecretSealer, SecretValue};
//! let sealer = SecretSealer::new([7; 32]);
//! let sealed = sealer.seal("db-password", &SecretValue::new(b"hunter2".to_vec())?, 0)?;
//! assert!(!sealed.ciphertext.windows(7).any(|w| w == b"hunter2"));
//! assert_eq!(sealer.open(&sealed)?.expose(), b"hunter2");
//! assert_eq!(format!("{:?}", sealer.open(&sealed)?), "SecretValue(<redacted, 7 bytes>)");
//! # Ok::<(), orion_core::Error>(())
//! ```

use std::fmt;

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::error::{Result, ValidationErrors};

mod sealer;

pub use sealer::{SealedSecret, SecretSealer};

/// The largest secret value, in bytes (as Kubernetes' 1 MiB is far more than a password needs,
/// and every value is replicated to every node).
pub const MAX_SECRET_BYTES: usize = 64 * 1024;

/// The most secrets one service may reference.
pub const MAX_SECRETS_PER_SERVICE: usize = 64;

/// The directory a file secret goes to when its reference gives no `file` path.
pub const DEFAULT_SECRET_DIR: &str = "/run/secrets";

/// The mode of every secret file: read-only for its owner.
pub const SECRET_FILE_MODE: u32 = 0o400;

/// Checks a secret's name: a DNS label (1-63 of `a-z`, `0-9`, `-`, not starting or ending with
/// `-`), as service names. Returns what is accepted when it is not one.
pub fn check_secret_name(name: &str) -> std::result::Result<(), &'static str> {
    let ok = (1..=63).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err("a DNS label: 1-63 of a-z, 0-9 and '-', not starting or ending with '-'")
    }
}

/// A secret's plaintext, in memory only: at most [`MAX_SECRET_BYTES`], wiped when dropped,
/// redacted in `Debug`, and never serialized.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretValue(Zeroizing<Vec<u8>>);

impl SecretValue {
    /// Wraps `bytes`; [`crate::Error::Invalid`] (field `value`) when empty or larger than
    /// [`MAX_SECRET_BYTES`].
    pub fn new(bytes: Vec<u8>) -> Result<Self> {
        let bytes = Zeroizing::new(bytes);
        if bytes.is_empty() || bytes.len() > MAX_SECRET_BYTES {
            let mut errors = ValidationErrors::default();
            errors.push(
                "value",
                format!("{} bytes", bytes.len()),
                format!("1 to {MAX_SECRET_BYTES} bytes (64 KiB)"),
            );
            return Err(errors.into());
        }
        Ok(SecretValue(bytes))
    }

    /// The plaintext. Hand it only to what delivers it (a runtime), never to a log or an answer.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// The size in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Always false: a value has at least one byte.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretValue(<redacted, {} bytes>)", self.0.len())
    }
}

/// A service's reference to a secret: delivered as the env variable `env`, or as a file at
/// `file` (absolute; [`DEFAULT_SECRET_DIR`]`/<name>` when neither is given), never both.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretRef {
    /// The secret's name (`orion secret create NAME`).
    pub name: String,
    /// Deliver as this environment variable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<String>,
    /// Deliver as a file at this absolute path, mode 0400.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
}

impl SecretRef {
    /// Where the secret goes: the env variable, or the file path (the default when unset).
    pub fn target(&self) -> SecretTarget {
        match (&self.env, &self.file) {
            (Some(var), _) => SecretTarget::Env(var.clone()),
            (None, Some(path)) => SecretTarget::File(path.clone()),
            (None, None) => SecretTarget::File(format!("{DEFAULT_SECRET_DIR}/{}", self.name)),
        }
    }
}

/// Where a runtime puts a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretTarget {
    /// An environment variable of the container's main process.
    Env(String),
    /// A file at this absolute path in the container, mode [`SECRET_FILE_MODE`].
    File(String),
}

/// One opened secret for a runtime to deliver. `Debug` shows the name and target only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretDelivery {
    pub name: String,
    pub target: SecretTarget,
    pub value: SecretValue,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_dns_labels() {
        for good in ["db", "db-password", "a1", &"x".repeat(63)] {
            assert!(check_secret_name(good).is_ok(), "{good}");
        }
        for bad in ["", "-db", "db-", "DB", "db_pw", "a/b", &"x".repeat(64)] {
            assert!(check_secret_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn values_are_bounded_and_redacted() {
        assert!(SecretValue::new(Vec::new()).is_err());
        assert!(SecretValue::new(vec![1; MAX_SECRET_BYTES + 1]).is_err());
        let v = SecretValue::new(b"hunter2".to_vec()).unwrap();
        let shown = format!("{v:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        let delivery = SecretDelivery {
            name: "db".into(),
            target: SecretTarget::Env("DB".into()),
            value: v,
        };
        assert!(!format!("{delivery:?}").contains("hunter2"));
    }

    #[test]
    fn a_reference_without_a_target_is_a_file_in_run_secrets() {
        let r = SecretRef {
            name: "db".into(),
            env: None,
            file: None,
        };
        assert_eq!(r.target(), SecretTarget::File("/run/secrets/db".into()));
    }
}
