//! `security:` in orion.yaml: node-to-node security settings (see docs/security.md).
//!
//! ```yaml
//! security:
//!   certRotation: 24h     # node certificate lifetime; renewed when a third is left; at least 1h
//!   externalCa:           # optional: the bootstrap node's CA instead of a generated one
//!     certFile: /etc/orion/ca.crt   # PEM, absolute path; the first certificate is the CA
//!     keyFile: /etc/orion/ca.key    # PEM (unencrypted PKCS#8), absolute path, mode 0600 or 0400
//! ```

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use orion_consensus::security::{ClusterCa, RotationPeriod};
use serde::{Deserialize, Serialize};

use super::humantime_serde_compat;

/// Node-to-node security settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SecuritySection {
    /// How long a node certificate is valid; it is renewed when a third of it is left. At least
    /// 1 h, at most 10 years; default 24 h.
    #[serde(with = "humantime_serde_compat", alias = "certRotation")]
    pub cert_rotation: Duration,
    /// A CA of the operator's (root or intermediate) that the bootstrapping node uses instead
    /// of generating one; see [`ExternalCa`].
    #[serde(alias = "externalCa")]
    pub external_ca: Option<ExternalCa>,
}

/// `security.externalCa`: the certificate and key files of an external CA. Read only on a node
/// that bootstraps (or already holds that same CA): it signs the node certificates, and its
/// digest is what join tokens pin. Both paths are absolute; each file at most
/// [`MAX_PEM_BYTES`]; the key file must grant no permission to group or others.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExternalCa {
    /// The CA certificate (PEM; the first certificate in the file is the CA).
    #[serde(alias = "certFile")]
    pub cert_file: Option<PathBuf>,
    /// The CA's private key (PEM, unencrypted PKCS#8: RSA, ECDSA P-256/P-384 or Ed25519).
    #[serde(alias = "keyFile")]
    pub key_file: Option<PathBuf>,
}

/// The largest `certFile` or `keyFile` accepted, in bytes.
pub const MAX_PEM_BYTES: u64 = 64 * 1024;

impl ExternalCa {
    /// Both paths, checked: present and absolute.
    fn paths(&self) -> anyhow::Result<(&Path, &Path)> {
        Ok((
            checked_path(&self.cert_file, "certFile")?,
            checked_path(&self.key_file, "keyFile")?,
        ))
    }

    /// Reads both files and checks the CA (see [`orion_consensus::security::ClusterCa::external`]).
    ///
    /// Errors name the field and the file: missing or unreadable, larger than
    /// [`MAX_PEM_BYTES`], a key file with any permission for group or others, not PEM, not a
    /// CA, a key that is not the certificate's.
    pub fn load(&self) -> anyhow::Result<ClusterCa> {
        let (cert_file, key_file) = self.paths()?;
        let cert = read_pem(cert_file, "certFile", false)?;
        let key = read_pem(key_file, "keyFile", true)?;
        ClusterCa::external(&cert, &key).map_err(|e| {
            anyhow::anyhow!(
                "security.externalCa ({}, {}): {e}",
                cert_file.display(),
                key_file.display()
            )
        })
    }
}

impl ExternalCa {
    /// The digest of the CA in `certFile` (the key file is not read): to compare with the CA a
    /// data dir already holds.
    pub fn cert_digest(&self) -> anyhow::Result<orion_consensus::security::CaDigest> {
        let (cert_file, _) = self.paths()?;
        let cert = read_pem(cert_file, "certFile", false)?;
        let ca = ClusterCa::from_pem(&cert, None).map_err(|e| {
            anyhow::anyhow!("security.externalCa.certFile {}: {e}", cert_file.display())
        })?;
        Ok(ca.digest())
    }
}

/// A path of `security.externalCa.{field}`: present and absolute.
fn checked_path<'a>(p: &'a Option<PathBuf>, field: &str) -> anyhow::Result<&'a Path> {
    let Some(p) = p.as_deref() else {
        anyhow::bail!(
            "security.externalCa.{field} is missing: both certFile and keyFile (PEM files, \
             absolute paths) are needed"
        );
    };
    if !p.is_absolute() {
        anyhow::bail!(
            "security.externalCa.{field}: got {}, expected an absolute path",
            p.display()
        );
    }
    Ok(p)
}

/// Reads a PEM file of at most [`MAX_PEM_BYTES`]; with `private`, refuses one that group or
/// others may access (the mode is read from the opened file).
fn read_pem(path: &Path, field: &str, private: bool) -> anyhow::Result<String> {
    use std::os::unix::fs::PermissionsExt;
    let what = || format!("security.externalCa.{field} {}", path.display());
    let file =
        std::fs::File::open(path).map_err(|e| anyhow::anyhow!("{}: cannot open: {e}", what()))?;
    let meta = file
        .metadata()
        .map_err(|e| anyhow::anyhow!("{}: {e}", what()))?;
    if !meta.is_file() {
        anyhow::bail!("{}: not a regular file", what());
    }
    let mode = meta.permissions().mode() & 0o777;
    if private && mode & 0o077 != 0 {
        anyhow::bail!(
            "{}: mode {mode:04o} lets group or others access the CA key; expected no permission \
             for them (e.g. `chmod 600 {}`)",
            what(),
            path.display()
        );
    }
    if meta.len() > MAX_PEM_BYTES {
        anyhow::bail!(
            "{}: {} bytes; at most {MAX_PEM_BYTES} are accepted",
            what(),
            meta.len()
        );
    }
    let mut text = String::new();
    file.take(MAX_PEM_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(|e| anyhow::anyhow!("{}: cannot read as PEM text: {e}", what()))?;
    if text.len() as u64 > MAX_PEM_BYTES {
        anyhow::bail!("{}: larger than {MAX_PEM_BYTES} bytes", what());
    }
    Ok(text)
}

impl Default for SecuritySection {
    fn default() -> Self {
        SecuritySection {
            cert_rotation: RotationPeriod::default().get(),
            external_ca: None,
        }
    }
}

impl SecuritySection {
    /// Checks what can be checked without reading files: the rotation period, and that
    /// `externalCa`, when given, names both files by absolute paths.
    pub fn check(&self) -> anyhow::Result<()> {
        self.rotation()?;
        if let Some(external) = &self.external_ca {
            external.paths()?;
        }
        Ok(())
    }

    /// The rotation period, checked.
    pub fn rotation(&self) -> anyhow::Result<RotationPeriod> {
        RotationPeriod::new(self.cert_rotation).map_err(|_| {
            anyhow::anyhow!(
                "security.certRotation: got {}, expected at least 1h and at most 10 years \
                 (e.g. 24h)",
                humantime::format_duration(self.cert_rotation)
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rotation_under_an_hour_is_refused_saying_what_is_accepted() {
        let s = SecuritySection {
            cert_rotation: Duration::from_secs(59 * 60),
            external_ca: None,
        };
        let err = s.rotation().unwrap_err().to_string();
        assert!(
            err.contains("security.certRotation") && err.contains("at least 1h"),
            "{err}"
        );
        assert_eq!(
            SecuritySection::default().rotation().unwrap().get(),
            Duration::from_secs(24 * 3600)
        );
    }

    /// A self-signed certificate (a CA when `ca`) and its key, written to `dir/<name>.crt` and
    /// `dir/<name>.key` (mode 0600).
    fn write_ca(dir: &Path, name: &str, ca: bool) -> ExternalCa {
        use std::os::unix::fs::PermissionsExt;
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, format!("Test {name}"));
        if ca {
            params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        }
        let cert = params.self_signed(&key).unwrap();
        let (cert_file, key_file) = (
            dir.join(format!("{name}.crt")),
            dir.join(format!("{name}.key")),
        );
        std::fs::write(&cert_file, cert.pem()).unwrap();
        std::fs::write(&key_file, key.serialize_pem()).unwrap();
        std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).unwrap();
        ExternalCa {
            cert_file: Some(cert_file),
            key_file: Some(key_file),
        }
    }

    fn parse(yaml: &str) -> anyhow::Result<crate::config::Config> {
        let config: crate::config::Config = serde_saphyr::from_str(yaml)?;
        config.check()?;
        Ok(config)
    }

    #[test]
    fn external_ca_is_parsed_and_a_missing_or_relative_file_is_refused() {
        let config = parse(
            "security:\n  externalCa:\n    certFile: /etc/orion/ca.crt\n    keyFile: /etc/orion/ca.key\n",
        )
        .unwrap();
        let external = config.security.external_ca.unwrap();
        assert_eq!(external.cert_file.unwrap(), Path::new("/etc/orion/ca.crt"));
        assert_eq!(external.key_file.unwrap(), Path::new("/etc/orion/ca.key"));

        let err = parse("security:\n  externalCa:\n    certFile: /etc/orion/ca.crt\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("security.externalCa.keyFile is missing"),
            "{err}"
        );
        let err = parse("security:\n  externalCa: { certFile: ca.crt, keyFile: /k }\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("security.externalCa.certFile: got ca.crt, expected an absolute path"),
            "{err}"
        );
        assert!(
            parse("security:\n  externalCa: { certFile: /c, keyFile: /k, pass: x }\n").is_err()
        );
    }

    #[test]
    fn an_external_ca_is_loaded_with_its_key_and_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let external = write_ca(dir.path(), "ca", true);
        let ca = external.load().unwrap();
        assert!(ca.can_sign());
        let pem = std::fs::read_to_string(external.cert_file.as_ref().unwrap()).unwrap();
        assert_eq!(ca.cert_pem().replace('\r', "").trim(), pem.trim());
    }

    #[test]
    fn an_external_ca_that_is_not_a_ca_or_whose_key_differs_or_is_open_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let err = |e: &ExternalCa| format!("{:#}", e.load().unwrap_err());

        let leaf = write_ca(dir.path(), "leaf", false);
        let e = err(&leaf);
        assert!(e.contains("not a CA certificate"), "{e}");

        let ca = write_ca(dir.path(), "ca", true);
        let other = write_ca(dir.path(), "other", true);
        let mixed = ExternalCa {
            cert_file: ca.cert_file.clone(),
            key_file: other.key_file.clone(),
        };
        let e = err(&mixed);
        assert!(e.contains("the key does not match the certificate"), "{e}");

        let key_file = ca.key_file.clone().unwrap();
        std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o640)).unwrap();
        let e = err(&ca);
        assert!(
            e.contains("security.externalCa.keyFile")
                && e.contains("mode 0640")
                && e.contains("chmod 600"),
            "{e}"
        );
        std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o400)).unwrap();
        ca.load().unwrap();

        let missing = ExternalCa {
            cert_file: Some(dir.path().join("absent.crt")),
            key_file: ca.key_file.clone(),
        };
        let e = err(&missing);
        assert!(
            e.contains("security.externalCa.certFile") && e.contains("cannot open"),
            "{e}"
        );

        let garbage = dir.path().join("garbage.key");
        std::fs::write(
            &garbage,
            "-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n",
        )
        .unwrap();
        std::fs::set_permissions(&garbage, std::fs::Permissions::from_mode(0o600)).unwrap();
        let not_pkcs8 = ExternalCa {
            cert_file: ca.cert_file.clone(),
            key_file: Some(garbage),
        };
        let e = err(&not_pkcs8);
        assert!(e.contains("expected an unencrypted PKCS#8 PEM key"), "{e}");

        let big = dir.path().join("big.crt");
        std::fs::write(&big, vec![b'A'; MAX_PEM_BYTES as usize + 1]).unwrap();
        let oversized = ExternalCa {
            cert_file: Some(big),
            key_file: ca.key_file.clone(),
        };
        let e = err(&oversized);
        assert!(e.contains("at most 65536 are accepted"), "{e}");
    }
}
