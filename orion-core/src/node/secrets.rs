//! The agent's side of secrets: opening the values a task's service references, just before
//! its container starts.

use std::sync::Arc;

use super::agent::Agent;
use crate::error::{Error, Result};
use crate::model::spec::ServiceSpec;
use crate::runtime::Runtime;
use crate::secrets::{SecretDelivery, SecretSealer};
use crate::store::Store;

impl<S: Store, R: Runtime + ?Sized> Agent<S, R> {
    /// This agent, opening secrets with `sealer` (without one, a task whose service references
    /// a secret fails to start with an error saying so).
    pub fn with_secrets(mut self, sealer: Arc<SecretSealer>) -> Self {
        self.secrets = Some(sealer);
        self
    }

    /// Opens every secret `spec` references, for the runtime to deliver. Errors name the secret
    /// and never carry its value: [`Error::NotFound`] when it was removed since the spec was
    /// accepted, [`Error::Secret`] when this node cannot open it (no key, another key).
    pub(super) async fn open_secrets(&self, spec: &ServiceSpec) -> Result<Vec<SecretDelivery>> {
        if spec.secrets.is_empty() {
            return Ok(Vec::new());
        }
        let Some(sealer) = &self.secrets else {
            return Err(Error::Secret {
                name: spec.secrets[0].name.clone(),
                reason: format!(
                    "node {} has no cluster key to open secrets with",
                    self.node_id
                ),
            });
        };
        let mut out = Vec::with_capacity(spec.secrets.len());
        for r in &spec.secrets {
            let sealed = self
                .store
                .get_secret(&r.name)
                .await?
                .ok_or_else(|| Error::not_found("secret", &r.name))?;
            out.push(SecretDelivery {
                name: r.name.clone(),
                target: r.target(),
                value: sealer.open(&sealed)?,
            });
        }
        Ok(out)
    }
}
