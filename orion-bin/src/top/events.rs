//! Live events for `orion top`, derived from the differences between two polls: nodes that
//! appear, leave or change status, services created, removed or scaled, and tasks that appear,
//! change state or health, or end.
//!
//! The node has no event stream yet; when `GET /v1/events` exists, only
//! [`super::source::events_between`] changes (to read it instead of calling [`diff`]).

use std::collections::HashMap;

use orion_core::model::TaskState;

use super::state::{EventLine, Snapshot};

/// The events that explain going from `old` to `new`, stamped `at`. The first poll (no `old`)
/// yields none: what exists then is the starting point, not news.
pub fn diff(old: Option<&Snapshot>, new: &Snapshot, at: &str) -> Vec<EventLine> {
    let Some(old) = old else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut push = |kind: &'static str, object: &str, message: String| {
        out.push(EventLine {
            at: at.to_owned(),
            kind,
            object: object.to_owned(),
            message,
        })
    };

    let old_nodes: HashMap<&str, _> = old.nodes.iter().map(|n| (n.id.as_str(), n)).collect();
    for n in &new.nodes {
        match old_nodes.get(n.id.as_str()) {
            None => push("node", &n.id, format!("joined ({})", n.status)),
            Some(o) if o.status != n.status => {
                push("node", &n.id, format!("{} -> {}", o.status, n.status))
            }
            Some(_) => {}
        }
    }
    for o in &old.nodes {
        if !new.nodes.iter().any(|n| n.id == o.id) {
            push("node", &o.id, "left the cluster".to_owned());
        }
    }

    let old_services: HashMap<&str, _> = old
        .services
        .iter()
        .map(|s| (s.spec.name.as_str(), s))
        .collect();
    for s in &new.services {
        match old_services.get(s.spec.name.as_str()) {
            None => push(
                "service",
                &s.spec.name,
                format!("created ({} desired)", s.desired),
            ),
            Some(o) if o.desired != s.desired => push(
                "service",
                &s.spec.name,
                format!("scaled {} -> {}", o.desired, s.desired),
            ),
            Some(o) if o.version != s.version => push(
                "service",
                &s.spec.name,
                format!("updated to version {}", s.version),
            ),
            Some(_) => {}
        }
    }
    for o in &old.services {
        if !new.services.iter().any(|s| s.spec.name == o.spec.name) {
            push("service", &o.spec.name, "removed".to_owned());
        }
    }

    let old_tasks: HashMap<&str, _> = old.tasks.iter().map(|t| (t.id.as_str(), t)).collect();
    for t in &new.tasks {
        let place = t.node.as_deref().unwrap_or("unplaced");
        match old_tasks.get(t.id.as_str()) {
            None => push("task", &t.id, format!("{} on {place}", t.state)),
            Some(o) if o.state != t.state => {
                let mut message = format!("{} -> {} on {place}", o.state, t.state);
                if t.state == TaskState::Failed
                    && let Some(e) = &t.error
                {
                    message.push_str(&format!(": {e}"));
                }
                push("task", &t.id, message)
            }
            Some(o) if o.health != t.health => push(
                "task",
                &t.id,
                format!("health {}", super::state::health_word(t)),
            ),
            Some(o) if o.restarts != t.restarts => push(
                "task",
                &t.id,
                format!("restarted ({} restarts)", t.restarts),
            ),
            Some(_) => {}
        }
    }
    for o in &old.tasks {
        if !new.tasks.iter().any(|t| t.id == o.id) {
            push("task", &o.id, "ended".to_owned());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use orion_core::model::{Node, Resources, ServiceSpec, Task};

    use super::*;
    use crate::api::types::ServiceStatus;

    fn snap(nodes: &[&str], replicas: u32, tasks: Vec<Task>) -> Snapshot {
        let spec = ServiceSpec::new("web", "img", replicas);
        Snapshot {
            nodes: nodes
                .iter()
                .map(|id| Node::new(*id, Resources::new(1000, 1 << 30)))
                .collect(),
            services: vec![ServiceStatus::new(spec, 1, &tasks)],
            tasks,
            network: None,
        }
    }

    #[test]
    fn the_first_poll_is_no_news() {
        assert!(diff(None, &snap(&["a"], 1, vec![]), "00:00:00").is_empty());
    }

    #[test]
    fn joins_scales_and_task_changes_are_events() {
        let mut task = Task::new("web", 0, 1, Resources::default());
        let old = snap(&["a"], 1, vec![task.clone()]);
        task.state = TaskState::Running;
        let new = snap(&["a", "b"], 3, vec![task.clone()]);
        let events = diff(Some(&old), &new, "12:00:00");
        let text: Vec<String> = events
            .iter()
            .map(|e| format!("{} {} {}", e.kind, e.object, e.message))
            .collect();
        assert_eq!(
            text,
            vec![
                "node b joined (ready)".to_owned(),
                "service web scaled 1 -> 3".to_owned(),
                format!("task {} pending -> running on unplaced", task.id),
            ]
        );
        let gone = snap(&["a"], 3, vec![]);
        let events = diff(Some(&new), &gone, "12:00:01");
        assert!(events.iter().any(|e| e.message == "left the cluster"));
        assert!(events.iter().any(|e| e.message == "ended"));
    }
}
