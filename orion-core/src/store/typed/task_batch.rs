//! Many task records in one transaction: the write path of the controllers' batched plans
//! (`orion_core::reconciler::apply_plan`), one revision (and one Raft entry) for many actions.

use super::{ClusterStore, check_segment, encode, keys};
use crate::error::Result;
use crate::model::Task;
use crate::store::{Compare, Op, Store, Txn};

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
            txn.success.push(Op::Put(key.clone(), encode(&key, *task)?));
            txn.success.extend(also.iter().cloned());
        }
        Ok(self.store.txn(txn).await?.succeeded)
    }
}
