//! Spec history and rollout records: what `orion rollout history|undo|pause|resume|promote` and
//! `orion restart` read and write, and what the reconcile controller stores as a rollout
//! advances.
//!
//! Every new spec version is written to the history ([`keys::spec_history`]) in the same
//! transaction as the spec, and the oldest versions beyond the limit
//! ([`ClusterStore::with_spec_history`]) are deleted in it. A rollback writes an older version's
//! spec back *with that version number*, so the tasks still running it are kept and only the
//! newer ones are replaced; the next change then takes a version above every one in the
//! history, so no version is ever reused.

use serde::Serialize;

use super::{
    ClusterStore, MAX_CAS_ATTEMPTS, VersionedService, check_segment, decode, encode, gave_up, keys,
};
use crate::error::{Error, Result, ValidationErrors};
use crate::model::{Millis, ServiceSpec};
use crate::reconciler::Rollout;
use crate::store::{Compare, Op, Revision, Store, Txn};

/// Spec versions kept per service unless [`ClusterStore::with_spec_history`] says otherwise.
pub const DEFAULT_SPEC_HISTORY: usize = 10;
/// The most spec versions a store may keep per service.
pub const MAX_SPEC_HISTORY: usize = 100;

/// One stored spec version of a service.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SpecRevision {
    pub version: u64,
    pub spec: ServiceSpec,
}

impl<S> ClusterStore<S> {
    /// This store, keeping the newest `limit` spec versions of each service for `rollout
    /// history` and `undo` (older ones are deleted as new versions are stored).
    /// [`Error::Invalid`] unless `1 <= limit <=` [`MAX_SPEC_HISTORY`].
    pub fn with_spec_history(mut self, limit: usize) -> Result<Self> {
        if !(1..=MAX_SPEC_HISTORY).contains(&limit) {
            let mut errors = ValidationErrors::default();
            errors.push(
                "spec_history",
                limit,
                format!("from 1 to {MAX_SPEC_HISTORY} spec versions kept per service"),
            );
            return Err(errors.into());
        }
        self.history_limit = limit;
        Ok(self)
    }

    /// Spec versions kept per service.
    pub fn spec_history_limit(&self) -> usize {
        self.history_limit
    }
}

impl<S: Store> ClusterStore<S> {
    /// The versions in service `name`'s history, oldest first.
    pub(super) async fn history_versions(&self, name: &str) -> Result<Vec<u64>> {
        let range = self.store.range(&keys::spec_history_of(name)).await?;
        let prefix = keys::spec_history_of(name);
        let mut versions: Vec<u64> = range
            .kvs
            .iter()
            .filter_map(|kv| kv.key.strip_prefix(&prefix)?.parse().ok())
            .collect();
        versions.sort_unstable();
        Ok(versions)
    }

    /// The ops that add `spec` at `version` to the history holding `existing` and delete the
    /// oldest entries beyond the limit.
    pub(super) fn history_ops(
        &self,
        spec: &ServiceSpec,
        version: u64,
        existing: &[u64],
    ) -> Result<Vec<Op>> {
        let key = keys::spec_history(&spec.name, version);
        let mut ops = vec![Op::Put(key.clone(), encode(&key, spec)?)];
        let kept_old = self.history_limit.saturating_sub(1);
        let surplus = existing.len().saturating_sub(kept_old);
        for &old in existing.iter().take(surplus) {
            ops.push(Op::Delete(keys::spec_history(&spec.name, old)));
        }
        Ok(ops)
    }

    /// Service `name`'s stored spec versions, oldest first (at most the history limit; empty
    /// for a service that never existed).
    pub async fn spec_history(&self, name: &str) -> Result<Vec<SpecRevision>> {
        check_segment("name", name)?;
        let prefix = keys::spec_history_of(name);
        let range = self.store.range(&prefix).await?;
        let mut out = Vec::with_capacity(range.kvs.len());
        for kv in &range.kvs {
            if let Some(version) = kv.key.strip_prefix(&prefix).and_then(|v| v.parse().ok()) {
                out.push(SpecRevision {
                    version,
                    spec: decode(kv)?,
                });
            }
        }
        out.sort_by_key(|r| r.version);
        Ok(out)
    }

    /// Service `name`'s rollout record and its `mod_revision`, if one was stored.
    pub async fn get_rollout(&self, name: &str) -> Result<Option<(Rollout, Revision)>> {
        check_segment("name", name)?;
        match self.store.get(&keys::rollout(name)).await? {
            Some(kv) => Ok(Some((decode(&kv)?, kv.mod_revision))),
            None => Ok(None),
        }
    }

    /// Stores `record` if its key is still at `expected` (0: absent) and every compare in
    /// `fence` holds; false otherwise (re-read and decide again).
    pub async fn put_rollout_if(
        &self,
        record: &Rollout,
        expected: Revision,
        fence: Option<&Compare>,
    ) -> Result<bool> {
        check_segment("name", &record.service)?;
        let key = keys::rollout(&record.service);
        let mut txn = Txn::new()
            .when(Compare::ModRevision(key.clone(), expected))
            .and_then(Op::Put(key.clone(), encode(&key, record)?));
        if let Some(f) = fence {
            txn = txn.when(f.clone());
        }
        Ok(self.store.txn(txn).await?.succeeded)
    }

    /// Applies `f` to service `name`'s rollout record and stores it, atomically (retrying on a
    /// conflicting write). [`Error::NotFound`] when the service has no rollout record yet (the
    /// leader writes one in its first round after the service is stored).
    pub async fn update_rollout<F>(&self, name: &str, mut f: F) -> Result<Rollout>
    where
        F: FnMut(&mut Rollout) -> Result<()>,
    {
        for _ in 0..MAX_CAS_ATTEMPTS {
            let (mut record, revision) = self
                .get_rollout(name)
                .await?
                .ok_or_else(|| Error::not_found("rollout", name))?;
            f(&mut record)?;
            if self.put_rollout_if(&record, revision, None).await? {
                return Ok(record);
            }
        }
        Err(gave_up(&keys::rollout(name)))
    }

    /// Gives service `name` a new spec version without changing its spec, so every task is
    /// replaced under its update strategy (`orion restart`). [`Error::NotFound`] without it.
    pub async fn restart_service(&self, name: &str) -> Result<VersionedService> {
        check_segment("name", name)?;
        for _ in 0..MAX_CAS_ATTEMPTS {
            let (current, version_kv) = self.read_service_keys(name).await?;
            let current = current.ok_or_else(|| Error::not_found("service", name))?;
            let stored: ServiceSpec = decode(&current)?;
            if let Some(done) = self
                .write_service_with(
                    stored.clone(),
                    Some(stored),
                    Some(current),
                    version_kv,
                    true,
                )
                .await?
            {
                return Ok(done);
            }
        }
        Err(gave_up(&keys::service(name)))
    }

    /// Rolls service `name` back to spec version `to` from its history (its image, command,
    /// env... with the current `replicas`, `scale_policy` and `update_strategy`), keeping that
    /// version number, and stores a rollout record saying so (`reason`, started at `now`), all
    /// in one transaction that also checks `fence` (when given). `to: None` means the version
    /// the current rollout replaced. Errors: [`Error::NotFound`] (no such service),
    /// [`Error::Conflict`] (no previous version, already at `to`, or a concurrent change),
    /// [`Error::Invalid`] (`to` is not in the history; the message lists the kept versions).
    pub async fn rollback_service(
        &self,
        name: &str,
        to: Option<u64>,
        reason: &str,
        now: Millis,
        fence: Option<&Compare>,
    ) -> Result<VersionedService> {
        check_segment("name", name)?;
        let (current, version_kv) = self.read_service_keys(name).await?;
        let current = current.ok_or_else(|| Error::not_found("service", name))?;
        let stored: ServiceSpec = decode(&current)?;
        let version: u64 = version_kv.as_ref().map(decode).transpose()?.unwrap_or(0);
        let record = self.get_rollout(name).await?;
        let to = match to.or_else(|| record.as_ref().and_then(|(r, _)| r.previous_version)) {
            Some(to) => to,
            None => {
                return Err(Error::Conflict(format!(
                    "service {name:?} has no previous version to go back to (it is at version \
                     {version}); name one with --to-version"
                )));
            }
        };
        if to == version {
            return Err(Error::Conflict(format!(
                "service {name:?} is already at version {to}"
            )));
        }
        let history = self.spec_history(name).await?;
        let Some(old) = history.iter().find(|r| r.version == to) else {
            let kept: Vec<String> = history.iter().map(|r| r.version.to_string()).collect();
            let mut errors = ValidationErrors::default();
            errors.push(
                "to_version",
                to,
                format!(
                    "a version in {name:?}'s history: {}",
                    if kept.is_empty() {
                        "none is kept".to_owned()
                    } else {
                        kept.join(", ")
                    }
                ),
            );
            return Err(errors.into());
        };
        let spec = ServiceSpec {
            replicas: stored.replicas,
            scale_policy: stored.scale_policy.clone(),
            update_strategy: stored.update_strategy.clone(),
            ..old.spec.clone()
        };
        let mut rollout = Rollout::new(name, to, Some(version), 0, now);
        rollout.rolled_back_from = Some(version);
        rollout.reason = Some(reason.to_owned());
        let (spec_key, version_key, rollout_key) = (
            keys::service(name),
            keys::service_version(name),
            keys::rollout(name),
        );
        let mut txn = Txn::new()
            .when(Compare::ModRevision(spec_key.clone(), current.mod_revision))
            .when(Compare::ModRevision(
                version_key.clone(),
                version_kv.map_or(0, |kv| kv.mod_revision),
            ))
            .when(Compare::ModRevision(
                rollout_key.clone(),
                record.map_or(0, |(_, rev)| rev),
            ))
            .and_then(Op::Put(spec_key.clone(), encode(&spec_key, &spec)?))
            .and_then(Op::Put(version_key.clone(), encode(&version_key, &to)?))
            .and_then(Op::Put(
                rollout_key.clone(),
                encode(&rollout_key, &rollout)?,
            ));
        if let Some(f) = fence {
            txn = txn.when(f.clone());
        }
        let result = self.store.txn(txn).await?;
        if !result.succeeded {
            return Err(Error::Conflict(format!(
                "service {name:?} or its rollout changed while rolling back; read it again and \
                 retry"
            )));
        }
        Ok(VersionedService {
            spec,
            spec_version: to,
            mod_revision: result.revision,
        })
    }
}
