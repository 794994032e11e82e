//! [`JoinToken`]s and the [`TokenRegistry`] that admits them.

use std::fmt;
use std::sync::{Mutex, PoisonError};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::{CaDigest, hex};
use crate::error::{Error, Result};

/// The prefix and version of Orion join tokens.
const TOKEN_PREFIX: &str = "ORN1";

/// The longest join token accepted, in characters.
pub const MAX_TOKEN_LEN: usize = 256;

/// What an admitted node may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// May become a Raft voter.
    Voter,
    /// Runs tasks; never a Raft voter.
    Worker,
}

impl Role {
    /// `voter` or `worker`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Voter => "voter",
            Role::Worker => "worker",
        }
    }

    /// Parses `voter` or `worker`; errors say what is accepted.
    pub fn parse(text: &str) -> Result<Self> {
        match text {
            "voter" => Ok(Role::Voter),
            "worker" => Ok(Role::Worker),
            other => Err(Error::JoinRefused(format!(
                "role {:?}: expected voter or worker",
                other.chars().take(32).collect::<String>()
            ))),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A join token, `ORN1::<CA digest>::<role>::<secret>` (k3s and Swarm style): the digest lets a
/// joining node check the cluster's CA before it sends anything; the secret (32 random bytes in
/// hex) admits it with the role. `Debug` hides the secret; `Display` writes the whole token.
#[derive(Clone, PartialEq, Eq)]
pub struct JoinToken {
    ca: CaDigest,
    role: Role,
    secret: String,
}

impl fmt::Debug for JoinToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinToken")
            .field("ca", &self.ca)
            .field("role", &self.role)
            .field("secret", &"<redacted>")
            .finish()
    }
}

impl fmt::Display for JoinToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{TOKEN_PREFIX}::{}::{}::{}",
            self.ca, self.role, self.secret
        )
    }
}

impl JoinToken {
    /// A new token with a random secret for the CA of digest `ca`.
    pub fn generate(ca: CaDigest, role: Role) -> Self {
        JoinToken {
            ca,
            role,
            secret: hex(&rand::random::<[u8; 32]>()),
        }
    }

    /// Parses a token. Errors say what is accepted, never echoing the secret.
    pub fn parse(text: &str) -> Result<Self> {
        let expected = "expected ORN1::<64 hex digits of the CA digest>::<voter|worker>::<secret \
                        of 64 hex digits>, as printed at bootstrap or by `orion token rotate`";
        let text = text.trim();
        if text.len() > MAX_TOKEN_LEN {
            return Err(Error::JoinRefused(format!(
                "join token of {} characters: {expected}",
                text.len()
            )));
        }
        let parts: Vec<&str> = text.split("::").collect();
        let [prefix, ca, role, secret] = parts.as_slice() else {
            return Err(Error::JoinRefused(format!(
                "join token with {} parts: {expected}",
                parts.len()
            )));
        };
        if *prefix != TOKEN_PREFIX {
            return Err(Error::JoinRefused(format!("join token prefix: {expected}")));
        }
        if secret.len() != 64 || !secret.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Error::JoinRefused(format!("join token secret: {expected}")));
        }
        Ok(JoinToken {
            ca: CaDigest::parse(ca)?,
            role: Role::parse(role)?,
            secret: secret.to_ascii_lowercase(),
        })
    }

    /// The digest of the CA the joining node must find.
    pub fn ca_digest(&self) -> &CaDigest {
        &self.ca
    }

    /// The role this token admits.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The SHA-256 of the secret, as stored by a [`TokenRegistry`].
    pub fn secret_hash(&self) -> [u8; 32] {
        Sha256::digest(self.secret.as_bytes()).into()
    }
}

/// The current token of each role, kept as hashes of their secrets. Admitting compares in
/// constant time; a rotated-out token is refused.
#[derive(Debug, Default)]
pub struct TokenRegistry {
    current: Mutex<Vec<(Role, [u8; 32])>>,
}

impl TokenRegistry {
    /// An empty registry, which admits nobody.
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes `token` the one token of its role (replacing, so rotating out, the previous one).
    pub fn install(&self, token: &JoinToken) {
        let mut current = self.current.lock().unwrap_or_else(PoisonError::into_inner);
        current.retain(|(role, _)| *role != token.role);
        current.push((token.role, token.secret_hash()));
    }

    /// Makes the token of `role` whose secret hashes to `hash` the one token of that role (for
    /// hashes kept elsewhere, e.g. in the replicated store).
    pub fn install_hash(&self, role: Role, hash: [u8; 32]) {
        let mut current = self.current.lock().unwrap_or_else(PoisonError::into_inner);
        current.retain(|(r, _)| *r != role);
        current.push((role, hash));
    }

    /// Makes `hashes` the current tokens, and only them.
    pub fn replace_hashes(&self, hashes: &[(Role, [u8; 32])]) {
        let mut current = self.current.lock().unwrap_or_else(PoisonError::into_inner);
        *current = hashes.to_vec();
    }

    /// Mints a new token of `role` for the CA of digest `ca`, installs it (the previous token of
    /// that role is refused from now on) and returns it: print it once, it is not kept.
    pub fn rotate(&self, ca: CaDigest, role: Role) -> JoinToken {
        let token = JoinToken::generate(ca, role);
        self.install(&token);
        token
    }

    /// The role `token` admits, if it is the current token of its role; otherwise an error that
    /// does not say which part was wrong.
    pub fn admit(&self, token: &JoinToken) -> Result<Role> {
        let hash = token.secret_hash();
        let current = self.current.lock().unwrap_or_else(PoisonError::into_inner);
        let known = current
            .iter()
            .any(|(role, h)| *role == token.role && bool::from(h.ct_eq(&hash)));
        if known {
            Ok(token.role)
        } else {
            Err(Error::JoinRefused(
                "the join token is not a current token of this cluster (it may have been \
                 rotated out); get a current one with `orion token rotate`"
                    .into(),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest() -> CaDigest {
        CaDigest::of(b"a ca")
    }

    #[test]
    fn a_token_round_trips_and_hides_its_secret_in_debug() {
        let token = JoinToken::generate(digest(), Role::Worker);
        let text = token.to_string();
        assert!(text.starts_with("ORN1::"), "{text}");
        assert_eq!(JoinToken::parse(&text).expect("parse"), token);
        assert!(!format!("{token:?}").contains(&token.secret));
    }

    #[test]
    fn malformed_tokens_are_refused_saying_what_is_accepted() {
        let good = JoinToken::generate(digest(), Role::Voter).to_string();
        for bad in [
            "",
            "ORN1::abc",
            &good.replace("ORN1", "K10"),
            &good.replace("voter", "boss"),
            &format!("{good}00"),
            &"x".repeat(300),
        ] {
            let err = JoinToken::parse(bad).expect_err(bad).to_string();
            assert!(err.contains("expected"), "{bad}: {err}");
        }
    }

    #[test]
    fn a_rotated_out_token_is_refused_and_roles_are_separate() {
        let registry = TokenRegistry::new();
        let old = registry.rotate(digest(), Role::Worker);
        let voter = registry.rotate(digest(), Role::Voter);
        assert_eq!(registry.admit(&old).expect("current"), Role::Worker);
        let new = registry.rotate(digest(), Role::Worker);
        let err = registry.admit(&old).expect_err("rotated out").to_string();
        assert!(err.contains("rotated out"), "{err}");
        assert_eq!(registry.admit(&new).expect("new"), Role::Worker);
        assert_eq!(registry.admit(&voter).expect("voter kept"), Role::Voter);
        let forged = JoinToken::parse(&new.to_string().replace("::worker::", "::voter::"))
            .expect("well formed");
        registry
            .admit(&forged)
            .expect_err("a worker secret never admits a voter");
    }
}
