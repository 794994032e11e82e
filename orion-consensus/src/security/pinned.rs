//! [`PinnedCaVerifier`]: how a joining node checks the cluster's CA before it sends anything.

use std::sync::{Arc, Mutex, PoisonError};

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};

use super::{CaDigest, provider};

/// Verifies a server's certificate against the CA whose digest a join token carries, inside the
/// TLS handshake: the server presents its chain (its certificate, then the CA's, as every Orion
/// node does); a CA certificate of that digest must be in it, and the server's certificate must
/// be signed by it and valid for the address dialled. Otherwise the handshake fails, so no
/// request (and no token) is ever sent. The digest found instead is kept for the error.
#[derive(Debug)]
pub struct PinnedCaVerifier {
    expected: CaDigest,
    found: Mutex<Option<String>>,
}

impl PinnedCaVerifier {
    /// A verifier for the CA of digest `expected`.
    pub fn new(expected: CaDigest) -> Arc<Self> {
        Arc::new(PinnedCaVerifier {
            expected,
            found: Mutex::new(None),
        })
    }

    /// The CA digest the server presented when it was not the expected one (the digests of
    /// every certificate after its own, or "no CA certificate"), once a handshake failed so.
    pub fn mismatch(&self) -> Option<String> {
        self.found
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl ServerCertVerifier for PinnedCaVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(ca) = intermediates
            .iter()
            .find(|c| CaDigest::of(c) == self.expected)
        else {
            let found = if intermediates.is_empty() {
                "no CA certificate".to_owned()
            } else {
                intermediates
                    .iter()
                    .map(|c| CaDigest::of(c).to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            *self.found.lock().unwrap_or_else(PoisonError::into_inner) = Some(found);
            return Err(rustls::Error::General(format!(
                "the server's CA is not the one the join token names ({})",
                self.expected
            )));
        };
        let mut roots = RootCertStore::empty();
        roots.add(ca.clone().into_owned())?;
        let inner = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider())
            .build()
            .map_err(|e| rustls::Error::General(e.to_string()))?;
        inner.verify_server_cert(end_entity, &[], server_name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &provider().signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &provider().signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        provider()
            .signature_verification_algorithms
            .supported_schemes()
    }
}
