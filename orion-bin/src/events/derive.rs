//! Events from one store change: the new value compared with the one it replaced.

use orion_core::model::{Node, NodeStatus, ServiceSpec, Task, TaskState, now_millis};
use orion_core::reconciler::Rollout;
use orion_core::store::{EventKind, KeyValue, WatchEvent, decode_value, keys};
use serde::de::DeserializeOwned;

use super::{ClusterEvent, Severity};

fn decode<T: DeserializeOwned>(kv: Option<&KeyValue>) -> Option<T> {
    kv.filter(|kv| !kv.value.is_empty())
        .and_then(|kv| decode_value(&kv.key, &kv.value).ok())
}

/// The events one change means (none for keys no one asks about, such as measurements).
pub fn derive(change: &WatchEvent) -> Vec<ClusterEvent> {
    let key = change.kv.key.as_str();
    let revision = change.revision();
    let new = (change.kind == EventKind::Put).then_some(&change.kv);
    let old = change.prev.as_ref();
    let mut out = Vec::new();
    if let Some(id) = key.strip_prefix(keys::TASKS) {
        task_events(id, decode(old), decode(new), &mut out);
    } else if let Some(id) = key.strip_prefix(keys::NODES) {
        node_events(id, decode(old), decode(new), &mut out);
    } else if let Some(name) = key.strip_prefix(keys::SERVICES) {
        service_events(name, decode(old), decode(new), &mut out);
    } else if let Some(name) = key.strip_prefix(keys::ROLLOUTS) {
        rollout_events(name, decode(old), decode(new), &mut out);
    }
    for e in &mut out {
        e.revision = revision;
    }
    out
}

fn event(kind: &str, name: &str, reason: &str, message: String) -> ClusterEvent {
    ClusterEvent {
        revision: 0,
        time: now_millis(),
        severity: Severity::Normal,
        reason: reason.to_owned(),
        kind: kind.to_owned(),
        name: name.to_owned(),
        service: None,
        node: None,
        message,
    }
}

fn task_event(task: &Task, reason: &str, message: String) -> ClusterEvent {
    let mut e = event("task", &task.id, reason, message);
    e.service = Some(task.service.to_string());
    e.node = task.node.as_deref().map(str::to_owned);
    if task.updated_at > 0 {
        e.time = task.updated_at;
    }
    e
}

fn task_events(id: &str, old: Option<Task>, new: Option<Task>, out: &mut Vec<ClusterEvent>) {
    let Some(task) = new else {
        if let Some(old) = old {
            let mut e = task_event(&old, "removed", format!("task {id} removed"));
            e.time = now_millis();
            out.push(e);
        }
        return;
    };
    let Some(old) = old else {
        let mut message = format!(
            "task {id} created for replica {} of {} (version {})",
            task.slot, task.service, task.spec_version
        );
        if let Some(why) = &task.moved_because {
            message.push_str(&format!(", moved: {why}"));
            out.push(task_event(&task, "moved", message));
        } else {
            out.push(task_event(&task, "created", message));
        }
        if let Some(node) = &task.node {
            out.push(task_event(&task, "placed", format!("placed on {node}")));
        } else if let Some(error) = &task.error {
            let mut e = task_event(&task, "pending", format!("not placed: {error}"));
            e.severity = Severity::Warning;
            out.push(e);
        }
        return;
    };
    if old.node.is_none()
        && let Some(node) = &task.node
    {
        out.push(task_event(&task, "placed", format!("placed on {node}")));
    }
    if old.desired != task.desired {
        let why = task
            .moved_because
            .as_deref()
            .map(|m| format!(": {m}"))
            .unwrap_or_default();
        out.push(task_event(
            &task,
            "stopping",
            format!("desired state {:?}{why}", task.desired).to_lowercase(),
        ));
    }
    if old.restarts < task.restarts {
        let mut e = task_event(
            &task,
            "restarted",
            format!(
                "restarted in place (restart {}{})",
                task.restarts,
                task.exit_code
                    .map(|c| format!(", exit code {c}"))
                    .unwrap_or_default()
            ),
        );
        e.severity = Severity::Warning;
        out.push(e);
    }
    if old.health != task.health && task.state == TaskState::Running {
        let mut e = task_event(&task, "health", format!("health {}", task.health));
        if task.health == orion_core::model::TaskHealth::Unhealthy {
            e.severity = Severity::Warning;
            if let Some(output) = &task.health_output {
                e.message.push_str(&format!(": {output}"));
            }
        }
        out.push(e);
    }
    if old.state != task.state {
        let mut message = format!("{} -> {}", old.state, task.state);
        let failed = matches!(task.state, TaskState::Failed | TaskState::Lost);
        if let Some(code) = task.exit_code.filter(|_| task.state.is_terminal()) {
            message.push_str(&format!(", exit code {code}"));
        }
        if let Some(error) = task.error.as_ref().filter(|_| failed) {
            message.push_str(&format!(": {error}"));
        }
        let mut e = task_event(&task, task.state.as_str(), message);
        if failed {
            e.severity = Severity::Warning;
        }
        out.push(e);
    }
}

fn node_events(id: &str, old: Option<Node>, new: Option<Node>, out: &mut Vec<ClusterEvent>) {
    let with_node = |mut e: ClusterEvent| {
        e.node = Some(id.to_owned());
        e
    };
    match (old, new) {
        (None, Some(node)) => out.push(with_node(event(
            "node",
            id,
            "joined",
            format!("node {id} joined ({})", node.status),
        ))),
        (Some(_), None) => out.push(with_node(event(
            "node",
            id,
            "removed",
            format!("node {id} removed"),
        ))),
        (Some(old), Some(node)) if old.status != node.status => {
            let reason = match node.status {
                NodeStatus::Down => "down",
                NodeStatus::Draining => "draining",
                NodeStatus::Ready => "ready",
            };
            let mut e = with_node(event(
                "node",
                id,
                reason,
                format!("node {id}: {} -> {}", old.status, node.status),
            ));
            if node.status == NodeStatus::Down {
                e.severity = Severity::Warning;
            }
            out.push(e);
        }
        _ => {}
    }
}

fn service_events(
    name: &str,
    old: Option<ServiceSpec>,
    new: Option<ServiceSpec>,
    out: &mut Vec<ClusterEvent>,
) {
    let with_service = |mut e: ClusterEvent| {
        e.service = Some(name.to_owned());
        e
    };
    match (old, new) {
        (None, Some(spec)) => out.push(with_service(event(
            "service",
            name,
            "created",
            format!("service {name} created: {} x{}", spec.image, spec.replicas),
        ))),
        (Some(_), None) => out.push(with_service(event(
            "service",
            name,
            "removed",
            format!("service {name} removed"),
        ))),
        (Some(old), Some(spec)) if old != spec => {
            let only_replicas = old.replicas != spec.replicas && {
                let mut same = old.clone();
                same.replicas = spec.replicas;
                same == spec
            };
            let message = if only_replicas {
                format!("scaled {} -> {}", old.replicas, spec.replicas)
            } else if old.image != spec.image {
                format!("image {} -> {}", old.image, spec.image)
            } else {
                "spec updated".to_owned()
            };
            let reason = if message.starts_with("scaled") {
                "scaled"
            } else {
                "updated"
            };
            out.push(with_service(event("service", name, reason, message)));
        }
        _ => {}
    }
}

fn rollout_events(
    name: &str,
    old: Option<Rollout>,
    new: Option<Rollout>,
    out: &mut Vec<ClusterEvent>,
) {
    let Some(r) = new else { return };
    let changed = old.as_ref().is_none_or(|o| {
        o.version != r.version || o.phase != r.phase || o.rolled_back_from != r.rolled_back_from
    });
    if !changed {
        return;
    }
    let mut message = format!("rollout of version {}: {}", r.version, r.phase.as_str());
    if let Some(from) = r.rolled_back_from {
        message.push_str(&format!(" (rolled back from version {from})"));
    }
    if let Some(reason) = &r.reason {
        message.push_str(&format!(": {reason}"));
    }
    let mut e = event("service", name, "rollout", message);
    e.service = Some(name.to_owned());
    if r.updated_at > 0 {
        e.time = r.updated_at;
    }
    if r.rolled_back_from.is_some() || r.phase == orion_core::reconciler::RolloutPhase::Paused {
        e.severity = Severity::Warning;
    }
    out.push(e);
}
