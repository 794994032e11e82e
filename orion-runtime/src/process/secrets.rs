//! Secrets for host processes: env only. A process shares the host's filesystem, so a file at
//! an absolute path such as `/run/secrets/db` cannot be given to one task alone; such a secret
//! is refused with an error that says to deliver it as env, never written somewhere else.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;

use orion_core::runtime::ContainerSpec;
use orion_core::secrets::SecretTarget;

use super::NAME;
use crate::error::{Result, RuntimeError};

/// Refuses file secrets, and env values with a NUL byte (which no environment can hold).
pub(super) fn check(spec: &ContainerSpec) -> Result<()> {
    for secret in &spec.secrets {
        match &secret.target {
            SecretTarget::File(path) => {
                return Err(RuntimeError::Unsupported {
                    backend: NAME,
                    feature: format!("secret {:?} as the file {path}", secret.name),
                    hint: "a host process shares the host's filesystem, so a file path cannot \
                           be private to one task; deliver it as env (secrets: [{name, env}]), \
                           or run the service with the docker runtime"
                        .to_owned(),
                });
            }
            SecretTarget::Env(var) if secret.value.expose().contains(&0) => {
                return Err(RuntimeError::InvalidSpec {
                    field: format!("secrets.{}", secret.name),
                    value: format!("{:?}", secret.value),
                    expected: format!("a value without NUL bytes for env {var}"),
                });
            }
            SecretTarget::Env(_) => {}
        }
    }
    Ok(())
}

/// The env entries of `spec`'s env secrets.
pub(super) fn env(spec: &ContainerSpec) -> impl Iterator<Item = (String, OsString)> + '_ {
    spec.secrets.iter().filter_map(|s| match &s.target {
        SecretTarget::Env(var) => {
            Some((var.clone(), OsString::from_vec(s.value.expose().to_vec())))
        }
        SecretTarget::File(_) => None,
    })
}

#[cfg(test)]
mod tests {
    use orion_core::secrets::{SecretDelivery, SecretValue};

    use super::*;

    fn spec(target: SecretTarget, value: &[u8]) -> ContainerSpec {
        ContainerSpec {
            secrets: vec![SecretDelivery {
                name: "db".into(),
                target,
                value: SecretValue::new(value.to_vec()).unwrap(),
            }],
            ..ContainerSpec::default()
        }
    }

    #[test]
    fn env_is_delivered_and_files_are_refused_naming_the_secret() {
        let ok = spec(SecretTarget::Env("DB".into()), b"pw");
        check(&ok).unwrap();
        assert_eq!(env(&ok).collect::<Vec<_>>(), [("DB".into(), "pw".into())]);
        let err = check(&spec(SecretTarget::File("/run/secrets/db".into()), b"pw"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("\"db\"") && err.contains("as env"), "{err}");
        assert!(check(&spec(SecretTarget::Env("DB".into()), b"a\0b")).is_err());
    }
}
