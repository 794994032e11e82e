//! The controllers that run on the Raft leader only: node liveness from membership, and the
//! reconcile loop that turns specs into placed tasks.
//!
//! They hold no state the store does not hold. Every action is applied as a compare-and-swap on
//! one task, keyed by its id, so when leadership moves mid-plan the new leader simply reconciles
//! again from the store and redoes what is missing.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use orion_core::membership::{Member, MemberState, Membership, MembershipEvent};
use orion_core::model::{Node, NodeStatus, now_millis};
use orion_core::reconciler::{ReconcileInput, VersionedSpec, apply_plan, reconcile};
use orion_core::scheduler::Scheduler;
use orion_core::store::{ClusterStore, Store, keys};
use tokio::sync::watch;
use tracing::{debug, info, warn};

use super::SharedStore;

/// Reconciles until `leader` turns false or `shutdown` turns true: after every change to the
/// cluster state (debounced), and at least every `interval`.
pub async fn reconcile_loop(
    store: ClusterStore<SharedStore>,
    scheduler: Arc<Scheduler>,
    interval: Duration,
    mut leader: watch::Receiver<bool>,
) {
    let mut changes = None;
    loop {
        if !*leader.borrow() {
            return;
        }
        let state = match store.load_state().await {
            Ok(s) => s,
            Err(e) => {
                warn!(error = %e, "cannot read the cluster state; retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
        };
        if changes.is_none() {
            changes = store
                .inner()
                .watch(keys::ROOT, state.revision + 1)
                .await
                .ok();
        }
        let specs: Vec<VersionedSpec> = state
            .services
            .iter()
            .map(|s| VersionedSpec::new(s.spec.clone(), s.spec_version))
            .collect();
        let plan = reconcile(
            &ReconcileInput {
                specs: &specs,
                tasks: &state.tasks,
                nodes: &state.nodes,
                network: &state.network,
                now: now_millis(),
            },
            &scheduler,
        );
        debug!(actions = plan.actions.len(), "applying plan");
        for (task, e) in apply_plan(&store, &plan).await {
            warn!(%task, error = %e, "action failed; the next round retries");
        }
        for u in &plan.unplaced {
            debug!(service = %u.service, slot = u.slot, "cannot place: {} nodes rejected", u.rejections.len());
        }
        // Wait for a change or the interval; then let a burst of writes settle.
        let wait = async {
            match changes.as_mut() {
                Some(s) => {
                    if !matches!(s.next().await, Some(Ok(_))) {
                        return false;
                    }
                    true
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            ok = wait => {
                if !ok { changes = None; }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            _ = tokio::time::sleep(interval) => {}
            r = leader.changed() => if r.is_err() { return; },
        }
    }
}

/// The node record for a member: alive members are `Ready` unless draining.
fn node_from_member(m: &Member, existing: Option<&Node>, max_tasks: Option<u32>) -> Node {
    let mut node = existing
        .cloned()
        .unwrap_or_else(|| Node::new(m.id.clone(), m.capacity));
    node.addresses = m.addresses.clone();
    node.labels = m.labels.clone();
    node.capacity = m.capacity;
    node.max_tasks = max_tasks;
    node.status = match (m.state, node.status) {
        (MemberState::Alive | MemberState::Suspect, NodeStatus::Draining) => NodeStatus::Draining,
        (MemberState::Alive | MemberState::Suspect, _) => NodeStatus::Ready,
        (MemberState::Dead | MemberState::Left, _) => NodeStatus::Down,
    };
    node.updated_at = now_millis();
    node
}

async fn upsert_member(
    store: &ClusterStore<SharedStore>,
    m: &Member,
    max_tasks: Option<u32>,
) -> orion_core::Result<()> {
    let existing = store.get_node(&m.id).await?;
    let node = node_from_member(m, existing.as_ref(), max_tasks);
    if existing.as_ref().is_some_and(|e| {
        e.status == node.status
            && e.capacity == node.capacity
            && e.labels == node.labels
            && e.addresses == node.addresses
            && e.max_tasks == node.max_tasks
    }) {
        return Ok(());
    }
    if existing.as_ref().map(|e| e.status) != Some(node.status) {
        info!(node = %node.id, status = %node.status, "node status");
    }
    store.put_node(&node).await?;
    Ok(())
}

/// Keeps node records in step with membership until `leader` turns false: members become
/// nodes, dead or departed members become `Down` (and the reconciler replaces their tasks).
pub async fn node_liveness_loop(
    store: ClusterStore<SharedStore>,
    membership: Arc<dyn Membership>,
    max_tasks: Option<u32>,
    mut leader: watch::Receiver<bool>,
) {
    let mut events = membership.subscribe();
    // Catch up with what happened while another node was leader.
    match membership.members().await {
        Ok(members) => {
            let known: Vec<String> = members.iter().map(|m| m.id.clone()).collect();
            for m in &members {
                if let Err(e) = upsert_member(&store, m, max_tasks).await {
                    warn!(node = %m.id, error = %e, "cannot record node");
                }
            }
            // Nodes in the store that membership does not know at all are gone.
            if let Ok(nodes) = store.list_nodes().await {
                for n in nodes.iter().filter(|n| !known.contains(&n.id)) {
                    if n.status != NodeStatus::Down {
                        let _ = store
                            .update_node(&n.id, |n| {
                                n.status = NodeStatus::Down;
                                Ok(())
                            })
                            .await;
                    }
                }
            }
        }
        Err(e) => warn!(error = %e, "cannot list members"),
    }
    loop {
        tokio::select! {
            ev = events.next() => {
                let Some(ev) = ev else { return };
                let result = match &ev {
                    MembershipEvent::Joined(m)
                    | MembershipEvent::Recovered(m)
                    | MembershipEvent::Updated(m) => upsert_member(&store, m, max_tasks).await,
                    MembershipEvent::Dead(id) | MembershipEvent::Left(id) => {
                        info!(node = %id, event = ?ev, "node down");
                        store
                            .update_node(id, |n| {
                                n.status = NodeStatus::Down;
                                n.updated_at = now_millis();
                                Ok(())
                            })
                            .await
                            .map(|_| ())
                    }
                    MembershipEvent::Suspect(id) => {
                        debug!(node = %id, "node suspect");
                        Ok(())
                    }
                };
                if let Err(e) = result
                    && !e.is_not_found()
                {
                    warn!(node = %ev.node_id(), error = %e, "cannot record membership change");
                }
            }
            r = leader.changed() => {
                if r.is_err() || !*leader.borrow() { return; }
            }
        }
    }
}
