//! Writes of service specs: the one CAS attempt every spec write makes (spec, version counter and
//! history in one transaction), and, for callers that must not overwrite what someone else
//! stored, create-if-missing and replace-if-unchanged (optimistic concurrency on the spec's
//! `mod_revision`). Read-modify-write is [`ClusterStore::update_service`].

use super::{
    ClusterStore, MAX_CAS_ATTEMPTS, VersionedService, check_segment, decode, encode, gave_up, keys,
    same_task_template,
};
use crate::error::{Error, Result};
use crate::model::ServiceSpec;
use crate::store::{Compare, KeyValue, Op, Revision, Store, Txn};

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

impl<S: Store> ClusterStore<S> {
    pub(super) async fn read_service_keys(
        &self,
        name: &str,
    ) -> Result<(Option<KeyValue>, Option<KeyValue>)> {
        let current = self.store.get(&keys::service(name)).await?;
        let version_kv = self.store.get(&keys::service_version(name)).await?;
        Ok((current, version_kv))
    }

    /// One CAS attempt at storing `spec` over what was read; `None` when another write won.
    pub(super) async fn write_service(
        &self,
        spec: ServiceSpec,
        stored: Option<ServiceSpec>,
        current: Option<KeyValue>,
        version_kv: Option<KeyValue>,
    ) -> Result<Option<VersionedService>> {
        self.write_service_with(spec, stored, current, version_kv, false)
            .await
    }

    /// [`ClusterStore::write_service`]; `force_new_version` gives even an identical spec the
    /// next version (a restart: every task is replaced).
    pub(super) async fn write_service_with(
        &self,
        spec: ServiceSpec,
        stored: Option<ServiceSpec>,
        current: Option<KeyValue>,
        version_kv: Option<KeyValue>,
        force_new_version: bool,
    ) -> Result<Option<VersionedService>> {
        let version: u64 = version_kv.as_ref().map(decode).transpose()?.unwrap_or(0);
        if let (Some(stored), Some(current)) = (&stored, &current)
            && *stored == spec
            && !force_new_version
        {
            return Ok(Some(VersionedService {
                spec,
                spec_version: version,
                mod_revision: current.mod_revision,
            }));
        }
        let history = self.history_versions(&spec.name).await?;
        let next = match &stored {
            Some(stored)
                if same_task_template(stored, &spec) && version > 0 && !force_new_version =>
            {
                version
            }
            // After a rollback the counter is below versions in the history: never reuse one.
            _ => version.max(history.last().copied().unwrap_or(0)) + 1,
        };
        let (spec_key, version_key) =
            (keys::service(&spec.name), keys::service_version(&spec.name));
        let mut history_ops = Vec::new();
        if next != version {
            history_ops = self.history_ops(&spec, next, &history)?;
        }
        // Both keys are written every time, so equal mod revisions mark a consistent pair.
        let mut txn = Txn::new()
            .when(Compare::ModRevision(
                spec_key.clone(),
                current.map_or(0, |kv| kv.mod_revision),
            ))
            .when(Compare::ModRevision(
                version_key.clone(),
                version_kv.map_or(0, |kv| kv.mod_revision),
            ))
            .and_then(Op::Put(spec_key.clone(), encode(&spec_key, &spec)?))
            .and_then(Op::Put(version_key.clone(), encode(&version_key, &next)?));
        for op in history_ops {
            txn = txn.and_then(op);
        }
        let result = self.store.txn(txn).await?;
        Ok(result.succeeded.then_some(VersionedService {
            spec,
            spec_version: next,
            mod_revision: result.revision,
        }))
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
