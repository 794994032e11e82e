//! [`NodeCert`], the node's TLS configurations ([`NodeTls`]) and their rotation.

use std::fmt;
use std::future::Future;
use std::net::IpAddr;
use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rcgen::{CertificateParams, KeyPair};
use rustls::client::ResolvesClientCert;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, RootCertStore, ServerConfig, SignatureScheme};

use super::ca::node_sans;
use super::{CaDigest, ClusterCa, Role, provider, read_if_exists, write_private};
use crate::error::{Error, Result};

/// The shortest node certificate rotation period accepted (1 h).
pub const MIN_ROTATION_PERIOD: Duration = Duration::from_secs(3600);

/// How long a node certificate lives; it is renewed once two thirds of it have passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RotationPeriod(Duration);

impl RotationPeriod {
    /// A period of `period`; at least [`MIN_ROTATION_PERIOD`], at most 10 years.
    pub fn new(period: Duration) -> Result<Self> {
        let max = Duration::from_secs(10 * 365 * 24 * 3600);
        if period < MIN_ROTATION_PERIOD || period > max {
            return Err(Error::RaftConfig {
                field: "certificate rotation period",
                value: format!("{period:?}"),
                expected: "at least 1h and at most 10 years".into(),
            });
        }
        Ok(RotationPeriod(period))
    }

    /// The certificate lifetime.
    pub fn get(self) -> Duration {
        self.0
    }

    /// When a certificate expiring at `not_after` is due for renewal: when a third of the
    /// period is left.
    pub fn renew_at(self, not_after: SystemTime) -> SystemTime {
        not_after - self.0 / 3
    }
}

impl Default for RotationPeriod {
    /// 24 hours.
    fn default() -> Self {
        RotationPeriod(Duration::from_secs(24 * 3600))
    }
}

/// A node's certificate chain (its certificate, then the CA's) and private key.
pub struct NodeCert {
    chain: Vec<CertificateDer<'static>>,
    key: PrivatePkcs8KeyDer<'static>,
    not_after: SystemTime,
}

impl fmt::Debug for NodeCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NodeCert")
            .field("not_after", &self.not_after)
            .field("key", &"<redacted>")
            .finish()
    }
}

impl Clone for NodeCert {
    fn clone(&self) -> Self {
        NodeCert {
            chain: self.chain.clone(),
            key: self.key.clone_key(),
            not_after: self.not_after,
        }
    }
}

/// A fresh key pair and a certificate signing request (DER) for `node_name` and `addresses`.
pub fn signing_request(node_name: &str, addresses: &[IpAddr]) -> Result<(KeyPair, Vec<u8>)> {
    let key = KeyPair::generate().map_err(|e| Error::security("node key", e))?;
    let mut params = CertificateParams::default();
    params.subject_alt_names = node_sans(node_name, addresses)?;
    let csr = params
        .serialize_request(&key)
        .map_err(|e| Error::security("certificate signing request", e))?;
    Ok((key, csr.der().to_vec()))
}

impl NodeCert {
    /// Issues a certificate for `node_name` and `addresses` with a CA held on this node: a new
    /// key, a CSR, signed for `validity`.
    pub fn issue(
        ca: &ClusterCa,
        node_name: &str,
        role: Role,
        addresses: &[IpAddr],
        validity: Duration,
    ) -> Result<Self> {
        let (key, csr) = signing_request(node_name, addresses)?;
        let cert = ca.sign_csr(&csr, node_name, role, validity)?;
        Self::from_parts(&key, cert, ca.cert_der().clone())
    }

    /// A node certificate from its key, the certificate the CA signed, and the CA certificate.
    pub fn from_parts(
        key: &KeyPair,
        cert: CertificateDer<'static>,
        ca: CertificateDer<'static>,
    ) -> Result<Self> {
        let not_after = not_after(&cert)?;
        Ok(NodeCert {
            chain: vec![cert, ca],
            key: PrivatePkcs8KeyDer::from(key.serialize_der()),
            not_after,
        })
    }

    /// When the certificate expires.
    pub fn not_after(&self) -> SystemTime {
        self.not_after
    }

    /// The node name (common name) and role (organizational unit) this certificate carries.
    pub fn identity(&self) -> Option<(String, Option<Role>)> {
        identity_of(&self.chain[0])
    }

    /// The node's certificate (DER).
    pub fn cert_der(&self) -> &CertificateDer<'static> {
        &self.chain[0]
    }

    /// Writes `node.crt` (the chain, PEM) and `node.key` (mode 0600) into `keys_dir`.
    pub fn save(&self, keys_dir: &Path) -> Result<()> {
        let chain: Vec<pem::Pem> = self
            .chain
            .iter()
            .map(|c| pem::Pem::new("CERTIFICATE", c.to_vec()))
            .collect();
        write_private(
            &keys_dir.join("node.crt"),
            pem::encode_many(&chain).as_bytes(),
            0o644,
        )?;
        let key = pem::Pem::new("PRIVATE KEY", self.key.secret_pkcs8_der().to_vec());
        write_private(
            &keys_dir.join("node.key"),
            pem::encode(&key).as_bytes(),
            0o600,
        )
    }

    /// Loads `node.crt` and `node.key` from `keys_dir`, or `None` when either is missing.
    pub fn load(keys_dir: &Path) -> Result<Option<Self>> {
        let (Some(chain), Some(key)) = (
            read_if_exists(&keys_dir.join("node.crt"))?,
            read_if_exists(&keys_dir.join("node.key"))?,
        ) else {
            return Ok(None);
        };
        super::cluster_key::check_private(&keys_dir.join("node.key"))?;
        let bad = |what: &str, e: &dyn fmt::Display| {
            Error::security(format!("{what} in {keys_dir:?}"), e)
        };
        let chain: Vec<CertificateDer<'static>> = pem::parse_many(&chain)
            .map_err(|e| bad("node.crt", &e))?
            .into_iter()
            .map(|p| CertificateDer::from(p.into_contents()))
            .collect();
        let key = pem::parse(&key).map_err(|e| bad("node.key", &e))?;
        let Some(leaf) = chain.first() else {
            return Err(bad("node.crt", &"no certificate"));
        };
        Ok(Some(NodeCert {
            not_after: not_after(leaf)?,
            chain,
            key: PrivatePkcs8KeyDer::from(key.into_contents()),
        }))
    }

    fn certified_key(&self) -> Result<Arc<CertifiedKey>> {
        CertifiedKey::from_der(
            self.chain.clone(),
            PrivateKeyDer::Pkcs8(self.key.clone_key()),
            &provider(),
        )
        .map(Arc::new)
        .map_err(|e| Error::security("node certificate and key", e))
    }
}

/// The expiry of the certificate `der`.
fn not_after(der: &CertificateDer<'_>) -> Result<SystemTime> {
    let (_, cert) = x509_parser::parse_x509_certificate(der)
        .map_err(|e| Error::security("parsing a certificate", e))?;
    let secs = cert.validity().not_after.timestamp();
    Ok(UNIX_EPOCH + Duration::from_secs(u64::try_from(secs).unwrap_or(0)))
}

/// The node name (common name) and role (organizational unit) in a node certificate, if it
/// carries them.
pub(crate) fn identity_of(der: &CertificateDer<'_>) -> Option<(String, Option<Role>)> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let subject = cert.subject();
    let name = subject.iter_common_name().next()?.as_str().ok()?.to_owned();
    let role = subject
        .iter_organizational_unit()
        .next()
        .and_then(|ou| ou.as_str().ok())
        .and_then(|ou| Role::parse(ou).ok());
    Some((name, role))
}

/// The certificate a node presents, shared by its TLS server and client and swapped atomically
/// by a rotation: each handshake reads the current one.
#[derive(Clone)]
pub struct CertSlot(Arc<RwLock<Arc<CertifiedKey>>>);

impl fmt::Debug for CertSlot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CertSlot")
    }
}

impl CertSlot {
    fn current(&self) -> Arc<CertifiedKey> {
        self.0
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn swap(&self, new: Arc<CertifiedKey>) {
        *self
            .0
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = new;
    }
}

impl ResolvesServerCert for CertSlot {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

impl ResolvesClientCert for CertSlot {
    fn resolve(&self, _hints: &[&[u8]], _schemes: &[SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// A node's mutual-TLS setup: the cluster CA it trusts and the certificate it presents, as a
/// rustls server configuration (client certificates signed by the CA are verified; a client
/// without one may complete the handshake, and the Raft port then refuses it everything but
/// admission) and a client configuration (servers must present a certificate signed by the CA
/// for the address dialled).
#[derive(Clone)]
pub struct NodeTls {
    ca_digest: CaDigest,
    slot: CertSlot,
    not_after: Arc<RwLock<SystemTime>>,
    server: Arc<ServerConfig>,
    client: Arc<ClientConfig>,
}

impl fmt::Debug for NodeTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NodeTls")
            .field("ca_digest", &self.ca_digest)
            .field("not_after", &self.not_after())
            .finish()
    }
}

impl NodeTls {
    /// The TLS setup of a node trusting `ca` and presenting `cert`.
    pub fn new(ca: &ClusterCa, cert: &NodeCert) -> Result<Self> {
        let tls = |e: rustls::Error| Error::security("TLS configuration", e);
        let mut roots = RootCertStore::empty();
        roots.add(ca.cert_der().clone()).map_err(tls)?;
        let roots = Arc::new(roots);
        let slot = CertSlot(Arc::new(RwLock::new(cert.certified_key()?)));
        let verifier = WebPkiClientVerifier::builder_with_provider(roots.clone(), provider())
            .allow_unauthenticated()
            .build()
            .map_err(|e| Error::security("client certificate verifier", e))?;
        let mut server = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(tls)?
            .with_client_cert_verifier(verifier)
            .with_cert_resolver(Arc::new(slot.clone()));
        let mut client = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(tls)?
            .with_root_certificates(roots)
            .with_client_cert_resolver(Arc::new(slot.clone()));
        // No session resumption: every new connection verifies both certificates again, so a
        // rotated-out, expired or foreign certificate is never let through on an old session.
        // Connections are pooled, so full handshakes are rare.
        server.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
        server.send_tls13_tickets = 0;
        client.resumption = rustls::client::Resumption::disabled();
        Ok(NodeTls {
            ca_digest: ca.digest(),
            slot,
            not_after: Arc::new(RwLock::new(cert.not_after())),
            server: Arc::new(server),
            client: Arc::new(client),
        })
    }

    /// Presents `cert` from the next handshake on (server and client side). Connections already
    /// open carry on; nothing in flight fails. Errors when the key does not match the
    /// certificate (the current certificate stays).
    pub fn rotate(&self, cert: &NodeCert) -> Result<()> {
        let key = cert.certified_key()?;
        self.slot.swap(key);
        *self
            .not_after
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = cert.not_after();
        Ok(())
    }

    /// When the certificate presented now expires.
    pub fn not_after(&self) -> SystemTime {
        *self
            .not_after
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The digest of the trusted CA.
    pub fn ca_digest(&self) -> &CaDigest {
        &self.ca_digest
    }

    /// The server side (the Raft port).
    pub fn server_config(&self) -> Arc<ServerConfig> {
        self.server.clone()
    }

    /// The client side (the node's [`Transport`](crate::transport::Transport)).
    pub fn client_config(&self) -> Arc<ClientConfig> {
        self.client.clone()
    }

    /// Renews the certificate before it expires, forever: sleeps until `period.renew_at(expiry)`,
    /// calls `renew` for a new certificate and [`rotate`](Self::rotate)s to it. A failed renewal
    /// is logged and retried after 10 s doubling to 5 min (never past expiry unnoticed: each
    /// failure is logged with the time left). Run it in a task; it ends when dropped.
    pub async fn renew_forever<F, Fut>(self, period: RotationPeriod, mut renew: F)
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<NodeCert>>,
    {
        let mut backoff = Duration::from_secs(10);
        loop {
            let due = period.renew_at(self.not_after());
            let wait = due.duration_since(SystemTime::now()).unwrap_or_default();
            tokio::time::sleep(wait).await;
            match renew()
                .await
                .and_then(|cert| self.rotate(&cert).map(|()| cert))
            {
                Ok(cert) => {
                    tracing::info!(not_after = ?cert.not_after(), "node certificate rotated");
                    backoff = Duration::from_secs(10);
                }
                Err(e) => {
                    let left = self
                        .not_after()
                        .duration_since(SystemTime::now())
                        .unwrap_or_default();
                    tracing::error!(error = %e, ?left, "node certificate renewal failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(300));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_periods_below_an_hour_are_refused() {
        let err = RotationPeriod::new(Duration::from_secs(60)).expect_err("too short");
        assert!(err.to_string().contains("at least 1h"), "{err}");
        let p = RotationPeriod::new(Duration::from_secs(3 * 3600)).expect("3h");
        let expiry = UNIX_EPOCH + Duration::from_secs(10 * 3600);
        assert_eq!(
            p.renew_at(expiry),
            UNIX_EPOCH + Duration::from_secs(9 * 3600)
        );
    }

    #[test]
    fn an_issued_certificate_names_its_node_and_role_and_survives_a_reload() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ca = ClusterCa::load_or_generate(dir.path(), "c1").expect("ca");
        let cert = NodeCert::issue(
            &ca,
            "n1",
            Role::Worker,
            &["127.0.0.1".parse().expect("ip")],
            Duration::from_secs(3600),
        )
        .expect("issue");
        assert_eq!(
            identity_of(cert.cert_der()),
            Some(("n1".to_owned(), Some(Role::Worker)))
        );
        cert.save(dir.path()).expect("save");
        let back = NodeCert::load(dir.path()).expect("load").expect("present");
        assert_eq!(back.cert_der(), cert.cert_der());
        assert_eq!(back.not_after(), cert.not_after());
        let again = ClusterCa::load_or_generate(dir.path(), "c1").expect("reload");
        assert_eq!(again.digest(), ca.digest());
        assert!(again.can_sign());
        NodeTls::new(&again, &back).expect("tls from reloaded files");
    }
}
