//! Autoscaling state: the nodes' usage reports and each service's autoscale record, and the
//! one fenced transaction that changes `replicas` together with the record.

use super::{ClusterStore, check_segment, decode, encode, keys};
use crate::autoscale::{AutoscaleRecord, UsageReport};
use crate::error::{Error, Result};
use crate::model::ServiceSpec;
use crate::store::{Compare, Op, Revision, Store, Txn};

impl<S: Store> ClusterStore<S> {
    /// Stores every report in `reports` in one write (a node's whole sample round).
    pub async fn put_usage_reports(&self, reports: &[UsageReport]) -> Result<()> {
        if reports.is_empty() {
            return Ok(());
        }
        let mut txn = Txn::new();
        for r in reports {
            check_segment("service", &r.service)?;
            check_segment("node", &r.node)?;
            let key = keys::usage(&r.service, &r.node);
            txn = txn.and_then(Op::Put(key.clone(), encode(&key, r)?));
        }
        self.store.txn(txn).await?;
        Ok(())
    }

    /// Every usage report, of every service and node.
    pub async fn list_usage_reports(&self) -> Result<Vec<UsageReport>> {
        let range = self.store.range(keys::USAGE).await?;
        range.kvs.iter().map(decode).collect()
    }

    /// Deletes the given keys (usage reports or autoscale records) in one write, if `fence`
    /// (when given) holds.
    pub async fn delete_autoscale_keys(
        &self,
        keys: Vec<String>,
        fence: Option<&Compare>,
    ) -> Result<bool> {
        if keys.is_empty() {
            return Ok(true);
        }
        let mut txn = Txn::new();
        for k in keys {
            txn = txn.and_then(Op::Delete(k));
        }
        if let Some(f) = fence {
            txn = txn.when(f.clone());
        }
        Ok(self.store.txn(txn).await?.succeeded)
    }

    /// Service `name`'s autoscale record and its `mod_revision`, if one was stored.
    pub async fn get_autoscale(&self, name: &str) -> Result<Option<(AutoscaleRecord, Revision)>> {
        check_segment("name", name)?;
        match self.store.get(&keys::autoscale(name)).await? {
            Some(kv) => Ok(Some((decode(&kv)?, kv.mod_revision))),
            None => Ok(None),
        }
    }

    /// Every autoscale record, with its `mod_revision`.
    pub async fn list_autoscale(&self) -> Result<Vec<(AutoscaleRecord, Revision)>> {
        let range = self.store.range(keys::AUTOSCALE).await?;
        range
            .kvs
            .iter()
            .map(|kv| Ok((decode(kv)?, kv.mod_revision)))
            .collect()
    }

    /// Stores `record`, and when `replicas` is given sets the service's `replicas` to it (its
    /// spec version unchanged), in one transaction that succeeds only if the spec is still at
    /// `spec_revision`, the record at `record_revision` (0: absent) and `fence` (when given)
    /// holds. False when any of them moved: read again and decide again.
    pub async fn put_autoscale_if(
        &self,
        record: &AutoscaleRecord,
        record_revision: Revision,
        replicas: Option<(u32, Revision)>,
        fence: Option<&Compare>,
    ) -> Result<bool> {
        let name = record.service.as_str();
        check_segment("name", name)?;
        let record_key = keys::autoscale(name);
        let mut txn = Txn::new()
            .when(Compare::ModRevision(record_key.clone(), record_revision))
            .and_then(Op::Put(record_key.clone(), encode(&record_key, record)?));
        if let Some((replicas, spec_revision)) = replicas {
            let (current, version_kv) = self.read_service_keys(name).await?;
            let current = current.ok_or_else(|| Error::not_found("service", name))?;
            if current.mod_revision != spec_revision {
                return Ok(false);
            }
            let mut spec: ServiceSpec = decode(&current)?;
            spec.replicas = replicas;
            let version: u64 = version_kv.as_ref().map(decode).transpose()?.unwrap_or(0);
            let (spec_key, version_key) = (keys::service(name), keys::service_version(name));
            // Both keys are written, as every spec write does (equal mod revisions mark a
            // consistent pair); the version stays: only `replicas` changed.
            txn = txn
                .when(Compare::ModRevision(spec_key.clone(), spec_revision))
                .when(Compare::ModRevision(
                    version_key.clone(),
                    version_kv.map_or(0, |kv| kv.mod_revision),
                ))
                .and_then(Op::Put(spec_key.clone(), encode(&spec_key, &spec)?))
                .and_then(Op::Put(
                    version_key.clone(),
                    encode(&version_key, &version)?,
                ));
        }
        if let Some(f) = fence {
            txn = txn.when(f.clone());
        }
        Ok(self.store.txn(txn).await?.succeeded)
    }
}
