//! Secrets for Docker containers: env entries, and files bind-mounted read-only from a host
//! tmpfs ([`crate::secret_files`]), as Swarm does. (An archive upload into a `--tmpfs` mount
//! cannot work: before start the engine writes it under the mount, which then hides it.)

use bollard::models::{ContainerCreateBody, Mount, MountType};
use orion_core::runtime::ContainerSpec;
use orion_core::secrets::SecretTarget;

use crate::error::{Result, RuntimeError};
use crate::secret_files::{SECRETS_DIR_LABEL, StagedSecrets};

/// Adds `spec`'s env secrets and the `staged` files to the create request.
pub(super) fn apply(
    body: &mut ContainerCreateBody,
    spec: &ContainerSpec,
    staged: Option<&StagedSecrets>,
) -> Result<()> {
    for secret in &spec.secrets {
        let SecretTarget::Env(var) = &secret.target else {
            continue;
        };
        let text = std::str::from_utf8(secret.value.expose())
            .ok()
            .filter(|t| !t.contains('\0'))
            .ok_or_else(|| RuntimeError::InvalidSpec {
                field: format!("secrets.{}", secret.name),
                value: format!("{:?}", secret.value),
                expected: format!(
                    "UTF-8 text without NUL for env {var}; deliver a binary secret as a file"
                ),
            })?;
        body.env
            .get_or_insert_with(Vec::new)
            .push(format!("{var}={text}"));
    }
    if let Some(staged) = staged {
        let host = body.host_config.get_or_insert_with(Default::default);
        let mounts = host.mounts.get_or_insert_with(Vec::new);
        for (source, target) in &staged.files {
            mounts.push(Mount {
                target: Some(target.clone()),
                source: Some(source.display().to_string()),
                typ: Some(MountType::BIND),
                read_only: Some(true),
                ..Mount::default()
            });
        }
        body.labels.get_or_insert_with(Default::default).insert(
            SECRETS_DIR_LABEL.to_owned(),
            staged.dir.display().to_string(),
        );
    }
    Ok(())
}
