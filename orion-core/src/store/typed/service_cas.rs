//! Conditional writes of service specs, for callers that must not overwrite what someone else
//! stored: create-if-missing and replace-if-unchanged (optimistic concurrency on the spec's
//! `mod_revision`). Read-modify-write is [`ClusterStore::update_service`].

use super::{
    ClusterStore, MAX_CAS_ATTEMPTS, VersionedService, check_segment, decode, gave_up, keys,
};
use crate::error::{Error, Result};
use crate::model::ServiceSpec;
use crate::store::{Revision, Store};

impl<S: Store> ClusterStore<S> {
    /// Stores `spec` only if no service has its name, with the next spec version (a service
    /// deleted and created again never reuses a version). [`Error::Conflict`] when it exists,
    /// also when another writer creates it between this call's read and write: of any number
    /// of racing creates of one name, exactly one succeeds.
    pub async fn create_service(&self, spec: &ServiceSpec) -> Result<VersionedService> {
        check_segment("name", &spec.name)?;
        for _ in 0..MAX_CAS_ATTEMPTS {
            let (current, version_kv) = self.read_service_keys(&spec.name).await?;
            if current.is_some() {
                return Err(exists(&spec.name));
            }
            if let Some(done) = self
                .write_service(spec.clone(), None, None, version_kv)
                .await?
            {
                return Ok(done);
            }
            // Lost a race: either the service now exists (conflict, next round) or only its
            // version counter moved (a concurrent delete-and-create cycle); read again.
        }
        Err(gave_up(&keys::service(&spec.name)))
    }

    /// Stores `spec` only if the stored spec of its name was last written at `expected` (its
    /// [`VersionedService::mod_revision`], the API's ETag). [`Error::NotFound`] when there is no
    /// such service; [`Error::Conflict`] naming both revisions when it changed since, including
    /// by a write that lands between this call's read and write. Spec versions move as in
    /// [`ClusterStore::put_service`]; an identical spec writes nothing.
    pub async fn put_service_if(
        &self,
        spec: &ServiceSpec,
        expected: Revision,
    ) -> Result<VersionedService> {
        check_segment("name", &spec.name)?;
        let (current, version_kv) = self.read_service_keys(&spec.name).await?;
        let current = current.ok_or_else(|| Error::not_found("service", &spec.name))?;
        if current.mod_revision != expected {
            return Err(changed(&spec.name, expected, current.mod_revision));
        }
        let stored: ServiceSpec = decode(&current)?;
        match self
            .write_service(spec.clone(), Some(stored), Some(current), version_kv)
            .await?
        {
            Some(done) => Ok(done),
            None => {
                let now = self
                    .store
                    .get(&keys::service(&spec.name))
                    .await?
                    .map_or(0, |kv| kv.mod_revision);
                Err(changed(&spec.name, expected, now))
            }
        }
    }
}

fn exists(name: &str) -> Error {
    Error::Conflict(format!(
        "service {name:?} already exists; change it with PUT /v1/services/{name} (or delete it first)"
    ))
}

fn changed(name: &str, expected: Revision, now: Revision) -> Error {
    let now = if now == 0 {
        "it has been deleted".to_owned()
    } else {
        format!("it is now at revision {now}")
    };
    Error::Conflict(format!(
        "service {name:?} changed since revision {expected} (the If-Match given): {now}; \
         read it again and retry"
    ))
}
