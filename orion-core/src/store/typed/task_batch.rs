//! Many task records in one transaction: the write path of the controllers' batched plans
//! (`orion_core::reconciler::apply_plan`), one revision (and one Raft entry) for many actions.

use super::{ClusterStore, check_segment, decode, encode_task, keys};
use crate::error::Result;
use crate::model::Task;
use crate::store::{Compare, Op, Revision, Store, Txn};

impl<S: Store> ClusterStore<S> {
    /// Writes every task of `records`, each followed by its extra ops, in one transaction if
    /// every compare in `when` holds; `Ok(false)` (nothing written) when one does not. All or
    /// nothing: the tasks share one revision. An invalid id fails before anything is written.
    pub async fn put_tasks_if(
        &self,
        records: &[(&Task, Vec<Op>)],
        when: Vec<Compare>,
    ) -> Result<bool> {
        let mut txn = Txn::new();
        txn.compare = when;
        for (task, also) in records {
            check_segment("id", &task.id)?;
            let key = keys::task(&task.id);
            txn.success
                .push(Op::Put(key.clone(), encode_task(&key, task)?));
            txn.success.extend(also.iter().cloned());
        }
        Ok(self.store.txn(txn).await?.succeeded)
    }

    /// The task `id` and the `mod_revision` of its record, if it exists: what a
    /// compare-and-swap of it compares (`Compare::ModRevision`, see [`Self::put_tasks_if`]).
    pub async fn get_task_revision(&self, id: &str) -> Result<Option<(Task, Revision)>> {
        check_segment("id", id)?;
        match self.store.get(&keys::task(id)).await? {
            Some(kv) => Ok(Some((decode(&kv)?, kv.mod_revision))),
            None => Ok(None),
        }
    }
}
