//! How a pass hands its converges off: each task it claims ([`super::inflight`]) becomes an
//! operation, awaited by [`Agent::sync`] or spawned by the agent's loop so that the loop goes on
//! taking events while the engine works.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use tracing::{Instrument, info_span, warn};

use super::Agent;
use super::inflight::Claim;
use crate::model::Task;
use crate::model::spec::ServiceSpec;
use crate::runtime::{ContainerInfo, Runtime, labels};
use crate::store::Store;

/// Times an operation converges its task again for news that came while it ran, at most; the
/// next pass sees anything later.
const MAX_ROUNDS: usize = 4;

impl<S: Store, R: Runtime + ?Sized> Agent<S, R> {
    /// Converges each task of `work` (read at `epoch`, with its container) that it can claim,
    /// at most [`Agent::max_in_flight`] at once. A task whose service is not in `specs` is
    /// converged without its health check. Tasks with an operation under way are skipped, and
    /// marked to be converged again when it ends if `wake` or if they changed in a way that
    /// matters (see [`super::inflight`]). With `detach`, the operations are spawned and this
    /// returns at once; else it returns when they have ended.
    pub(super) async fn converge_all(
        &self,
        work: Vec<(Task, Option<ContainerInfo>)>,
        specs: &HashMap<String, ServiceSpec>,
        epoch: u64,
        wake: bool,
        detach: Option<&Arc<Self>>,
    ) {
        let claimed: Vec<_> = work
            .into_iter()
            .filter(|(task, _)| self.inflight.claim(task, epoch, wake) == Claim::Taken)
            .map(|(task, container)| {
                let spec = specs.get(task.service.as_str()).cloned();
                (task, container, spec)
            })
            .collect();
        match detach {
            Some(agent) => {
                for (task, container, spec) in claimed {
                    let agent = agent.clone();
                    tokio::spawn(async move { agent.operate(task, container, spec).await });
                }
            }
            None => {
                let operations = claimed
                    .into_iter()
                    .map(|(task, container, spec)| self.operate(task, container, spec));
                futures::future::join_all(operations).await;
            }
        }
    }

    /// One claimed task's operation: converges it under an engine slot, then again from a fresh
    /// read while passes marked it meanwhile, and releases the claim.
    async fn operate(
        &self,
        mut task: Task,
        mut container: Option<ContainerInfo>,
        mut spec: Option<ServiceSpec>,
    ) {
        // Every line logged while converging a task carries its task, service and node.
        let span =
            info_span!("task", task = %task.id, service = %task.service, node = %self.node_id);
        async {
            for _ in 0..MAX_ROUNDS {
                {
                    let _slot = self.inflight.permit().await;
                    if let Err(e) = self.converge(&task, container, spec.as_ref()).await {
                        warn!(task = %task.id, error = %e, "could not converge task");
                    }
                }
                if !self.inflight.finish(&task.id) {
                    return;
                }
                match self.reread(&task.id).await {
                    Ok(Some(fresh)) => (task, container, spec) = fresh,
                    Ok(None) => break,
                    Err(e) => {
                        warn!(task = %task.id, error = %e, "could not re-read task; the next pass will");
                        break;
                    }
                }
            }
            self.inflight.release(&task.id);
        }
        .instrument(span)
        .await;
    }

    /// Task `id` as the store has it now, with its container and its service's spec; `None`
    /// when it is gone or no longer on this node.
    async fn reread(
        &self,
        id: &str,
    ) -> crate::Result<Option<(Task, Option<ContainerInfo>, Option<ServiceSpec>)>> {
        let Some(task) = self.store.get_task(id).await? else {
            return Ok(None);
        };
        if task.node.as_deref() != Some(self.node_id.as_str()) {
            return Ok(None);
        }
        let mut wanted: BTreeMap<String, String> = self.node_labels();
        wanted.insert(labels::TASK.to_owned(), id.to_owned());
        let container = self.runtime.list(&wanted).await?.into_iter().next();
        let spec = self.store.get_service(&task.service).await?.map(|s| s.spec);
        Ok(Some((task, container, spec)))
    }
}
