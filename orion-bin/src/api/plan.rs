//! `POST /v1/plan`: a dry run. The spec (validated like a deploy, with the cluster's limits)
//! is added to the current state as if applied, and the reconciler and scheduler the leader runs
//! plan it; nothing is written. The answer gives each node's score from each scorer and its
//! total, or why it was rejected, and the node each replica would go to.

use std::collections::HashMap;

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use orion_core::model::NodeId;
use orion_core::reconciler::{Action, ReconcileInput, ReconcilePolicy, VersionedSpec, reconcile};
use orion_core::scheduler::{
    ClusterView, PlacementOutcome, PlacementRequest, Rejection, RejectionSummary,
};
use orion_core::store::keys;
use serde::{Deserialize, Serialize};

use super::errors::ApiResult;
use super::routes::{ApiState, spec_from_body};
use super::tokens::Caller;

/// One node in a plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanNode {
    pub node: NodeId,
    /// The filters accept it.
    pub feasible: bool,
    /// 1 for the scheduler's first choice for the first replica; absent when not ranked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rank: Option<usize>,
    /// Weighted total of the scores.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total: Option<f64>,
    /// Each scorer's raw score in [0, 1], in pipeline order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scores: Vec<(String, f64)>,
    /// Why it was rejected (or why a feasible node has no score), as text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The scheduler's rejection, as it serializes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejection: Option<serde_json::Value>,
}

/// Where one replica would go.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlannedReplica {
    pub slot: u32,
    pub task_id: String,
    /// The node, or none when it would stay pending.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<NodeId>,
    /// Why it would stay pending.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending: Option<String>,
}

/// The answer of `POST /v1/plan`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanResult {
    pub service: String,
    pub replicas: u32,
    /// Each scorer's weight for this spec, in pipeline order.
    pub weights: Vec<(String, f64)>,
    /// Every node: ranked ones first, best first, then the others by name.
    pub nodes: Vec<PlanNode>,
    /// The replicas the reconciler would create or move now, with their nodes.
    pub placements: Vec<PlannedReplica>,
}

/// `text` of one rejection, through the scheduler's own grouping: `filter: kind (detail)`.
fn describe(node: &str, r: &Rejection) -> String {
    let summary = RejectionSummary::from_rejections(&[(node.to_owned(), r.clone())]);
    match summary.groups.first() {
        Some(g) if g.details.is_empty() => format!("{}: {}", g.filter, g.kind),
        Some(g) => {
            let details: Vec<&str> = g.details.iter().map(|(d, _)| d.as_str()).collect();
            format!("{}: {} ({})", g.filter, g.kind, details.join("; "))
        }
        None => summary.to_string(),
    }
}

fn rejected(node: &str, r: &Rejection) -> PlanNode {
    PlanNode {
        node: node.to_owned(),
        feasible: false,
        rank: None,
        total: None,
        scores: Vec::new(),
        reason: Some(describe(node, r)),
        rejection: serde_json::to_value(r).ok(),
    }
}

pub(super) async fn plan(
    State(state): State<ApiState>,
    axum::Extension(caller): axum::Extension<Caller>,
    headers: HeaderMap,
    body: String,
) -> ApiResult<Json<PlanResult>> {
    let spec = spec_from_body(&state, &caller, &headers, &body)?;
    let cluster = state.store.load_state().await?;
    let scheduler = &*state.scheduler;

    // The state as if the spec were applied: it replaces the service of its name.
    let mut specs: Vec<VersionedSpec> = Vec::new();
    // A new service takes the version after the one its name last had (kept across deletes).
    let mut version = match state
        .store
        .inner()
        .get(&keys::service_version(&spec.name))
        .await?
    {
        Some(kv) => serde_json::from_slice::<u64>(&kv.value).unwrap_or(0) + 1,
        None => 1,
    };
    for s in &cluster.services {
        if s.spec.name == spec.name {
            // As the store counts versions: scaling settings alone keep the version.
            let mut same_tasks = s.spec.clone();
            same_tasks.replicas = spec.replicas;
            same_tasks.scale_policy = spec.scale_policy.clone();
            same_tasks.update_strategy = spec.update_strategy.clone();
            version = if same_tasks == spec {
                s.spec_version
            } else {
                s.spec_version + 1
            };
        } else {
            specs.push(VersionedSpec::new(s.spec.clone(), s.spec_version));
        }
    }
    specs.push(VersionedSpec::new(spec.clone(), version));
    let reconciled = reconcile(
        &ReconcileInput {
            specs: &specs,
            tasks: &cluster.tasks,
            nodes: &cluster.nodes,
            network: &cluster.network,
            now: crate::chaos::now_ms(),
            policy: ReconcilePolicy {
                limits: state.settings.limits,
                ..ReconcilePolicy::default()
            },
        },
        scheduler,
    );
    let mut placements = Vec::new();
    for a in &reconciled.actions {
        if let Action::Create { task, .. } = a
            && task.service == spec.name
        {
            placements.push(PlannedReplica {
                slot: task.slot,
                task_id: task.id.to_string(),
                node: task.node.as_deref().map(str::to_owned),
                pending: task
                    .node
                    .is_none()
                    .then(|| task.error.as_deref().unwrap_or_default().to_owned()),
            });
        }
    }

    // The score table: the first replica's placement over the current state.
    let task_id = placements
        .first()
        .map_or_else(|| format!("{}-plan", spec.name), |p| p.task_id.clone());
    let req = PlacementRequest::new(&spec, &task_id);
    let nodes = scheduler.annotated_nodes(&cluster.nodes, &cluster.network, crate::chaos::now_ms());
    let view = ClusterView::new(nodes.into_owned(), &cluster.tasks, cluster.network.clone());
    let mut nodes = Vec::new();
    match scheduler.place(&req, &view) {
        PlacementOutcome::Placed(p) => {
            let mut ranked: HashMap<&str, usize> = HashMap::new();
            for (i, c) in p.candidates.iter().enumerate() {
                ranked.insert(&c.node, i);
                nodes.push(PlanNode {
                    node: c.node.clone(),
                    feasible: true,
                    rank: Some(i + 1),
                    total: Some(c.total),
                    scores: c
                        .by_scorer
                        .iter()
                        .map(|(n, s)| ((*n).to_owned(), *s))
                        .collect(),
                    reason: None,
                    rejection: None,
                });
            }
            // Nodes the placement kept no score for: the first filter that rejects them, or
            // feasible ones the scheduler did not keep among its best (or did not visit).
            let mut others: Vec<_> = view
                .nodes()
                .iter()
                .filter(|nv| !ranked.contains_key(nv.node.id.as_str()))
                .collect();
            others.sort_by(|a, b| a.node.id.cmp(&b.node.id));
            for nv in others {
                match scheduler.check(&req, &nv.node.id, &view) {
                    Err(r) => nodes.push(rejected(&nv.node.id, &r)),
                    Ok(()) => nodes.push(PlanNode {
                        node: nv.node.id.clone(),
                        feasible: true,
                        rank: None,
                        total: None,
                        scores: Vec::new(),
                        reason: Some(format!(
                            "feasible, not among the {} best candidates the scheduler keeps \
                             (or not visited: sampling above {} nodes)",
                            p.candidates.len(),
                            scheduler.config().full_scan_up_to
                        )),
                        rejection: None,
                    }),
                }
            }
        }
        PlacementOutcome::Unplaceable { rejections } => {
            let mut rejections = rejections;
            rejections.sort_by(|a, b| a.0.cmp(&b.0));
            nodes.extend(rejections.iter().map(|(n, r)| rejected(n, r)));
        }
    }
    Ok(Json(PlanResult {
        service: spec.name.clone(),
        replicas: spec.replicas,
        weights: scheduler
            .weights_for(&req)
            .into_iter()
            .map(|(n, w)| (n.to_owned(), w))
            .collect(),
        nodes,
        placements,
    }))
}
