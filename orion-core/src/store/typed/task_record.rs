//! The stored form of a [`Task`]: its JSON without the fields that hold their defaults.
//!
//! A leader keeps every task's record in its store, every Raft entry and snapshot carries them,
//! and a running task's `null`s, `"unknown"` health and zero restarts are about a fifth of its
//! JSON. The store therefore writes a task with those fields left out, while [`Task`]'s own
//! serde form (what the API answers) keeps them. Reading needs nothing special: every field
//! left out here is `#[serde(default)]` on [`Task`], so the stored form decodes to the same task
//! (`decode_of_the_stored_form_is_the_task` below), and records written in the full form before
//! decode as they always did.

use serde::Serialize;

use super::encode;
use crate::error::Result;
use crate::model::{DesiredState, Millis, NodeId, PublishedPort, Resources, Task, TaskHealth};
use crate::model::{TaskId, TaskState};

/// [`Task`] by reference, serialized in its field order without its default-valued fields.
#[derive(Serialize)]
struct StoredTask<'a> {
    id: &'a TaskId,
    service: &'a String,
    slot: &'a u32,
    spec_version: &'a u64,
    #[serde(skip_serializing_if = "is_default")]
    node: &'a Option<NodeId>,
    state: &'a TaskState,
    #[serde(skip_serializing_if = "is_default")]
    desired: &'a DesiredState,
    resources: &'a Resources,
    #[serde(skip_serializing_if = "is_default")]
    container_id: &'a Option<String>,
    #[serde(skip_serializing_if = "is_default")]
    ports: &'a Vec<PublishedPort>,
    #[serde(skip_serializing_if = "is_default")]
    exit_code: &'a Option<i64>,
    #[serde(skip_serializing_if = "is_default")]
    error: &'a Option<String>,
    #[serde(skip_serializing_if = "is_default")]
    health: &'a TaskHealth,
    #[serde(skip_serializing_if = "is_default")]
    health_output: &'a Option<String>,
    #[serde(skip_serializing_if = "is_default")]
    restarts: &'a u32,
    #[serde(skip_serializing_if = "is_default")]
    attempt: &'a u32,
    #[serde(skip_serializing_if = "is_default")]
    moved_because: &'a Option<String>,
    #[serde(skip_serializing_if = "is_default")]
    trace_parent: &'a Option<String>,
    created_at: &'a Millis,
    updated_at: &'a Millis,
}

fn is_default<T: Default + PartialEq>(value: &&T) -> bool {
    **value == T::default()
}

impl<'a> From<&'a Task> for StoredTask<'a> {
    fn from(task: &'a Task) -> Self {
        // No `..`: a field added to `Task` does not compile here until it is stored too.
        let Task {
            id,
            service,
            slot,
            spec_version,
            node,
            state,
            desired,
            resources,
            container_id,
            ports,
            exit_code,
            error,
            health,
            health_output,
            restarts,
            attempt,
            moved_because,
            trace_parent,
            created_at,
            updated_at,
        } = task;
        StoredTask {
            id,
            service,
            slot,
            spec_version,
            node,
            state,
            desired,
            resources,
            container_id,
            ports,
            exit_code,
            error,
            health,
            health_output,
            restarts,
            attempt,
            moved_because,
            trace_parent,
            created_at,
            updated_at,
        }
    }
}

/// The bytes the store keeps for `task` under `key` (see the module docs).
pub(super) fn encode_task(key: &str, task: &Task) -> Result<Vec<u8>> {
    encode(key, &StoredTask::from(task))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{DesiredState, TaskHealth};

    fn running() -> Task {
        let mut task = Task::new("web", 3, 2, Resources::new(250, 64 << 20));
        task.node = Some("node-1".into());
        task.state = TaskState::Running;
        task.container_id = Some("c0ffee".into());
        task.ports = vec![PublishedPort {
            container_port: 80,
            host_port: 30080,
            protocol: "tcp".into(),
            host_ip: "0.0.0.0".into(),
        }];
        task
    }

    fn every_field_set() -> Task {
        let mut task = running();
        task.state = TaskState::Failed;
        task.desired = DesiredState::Shutdown;
        task.exit_code = Some(137);
        task.error = Some("killed".into());
        task.health = TaskHealth::Unhealthy;
        task.health_output = Some("connection refused".into());
        task.restarts = 4;
        task.attempt = 2;
        task.moved_because = Some("latency to db".into());
        task.trace_parent = Some("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".into());
        task
    }

    fn stored(task: &Task) -> serde_json::Value {
        serde_json::from_slice(&encode_task("/orion/tasks/x", task).unwrap()).unwrap()
    }

    #[test]
    fn decode_of_the_stored_form_is_the_task() {
        for task in [
            Task::new("web", 0, 1, Resources::default()),
            running(),
            every_field_set(),
        ] {
            let bytes = encode_task("/orion/tasks/x", &task).unwrap();
            assert_eq!(serde_json::from_slice::<Task>(&bytes).unwrap(), task);
        }
    }

    #[test]
    fn the_stored_form_omits_default_fields_only() {
        let keys = |v: serde_json::Value| -> Vec<String> {
            v.as_object().unwrap().keys().cloned().collect()
        };
        assert_eq!(
            keys(stored(&running())),
            [
                "container_id",
                "created_at",
                "id",
                "node",
                "ports",
                "resources",
                "service",
                "slot",
                "spec_version",
                "state",
                "updated_at",
            ]
        );
        // A task with every field set is stored with every field the API shows.
        let full = every_field_set();
        assert_eq!(stored(&full), serde_json::to_value(&full).unwrap());
    }

    #[test]
    fn the_api_form_of_a_task_keeps_its_default_fields() {
        let api = serde_json::to_value(running()).unwrap();
        for field in ["exit_code", "error", "health", "restarts", "desired"] {
            assert!(api.get(field).is_some(), "{field} missing from {api}");
        }
    }
}
