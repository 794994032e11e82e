//! How typed values are kept as bytes: JSON, except tasks, which are kept in a compact binary
//! form.
//!
//! A leader keeps every task's record in its store, every Raft entry and snapshot carries them,
//! and every watcher decodes them. A running task's JSON is about 450 bytes, most of it field
//! names and defaults; its binary record is about a third of that and decodes several times
//! faster. The API's `Task` JSON is unchanged: only the store's bytes differ.
//!
//! **The binary record.** One tag byte, [`TASK_RECORD_V1`], then the task's fields in
//! [`Task`]'s declaration order, encoded with postcard (varint integers, length-prefixed
//! strings, enum variants by index), with no field left out. No JSON text starts with that tag
//! byte, so [`decode`] tells the two apart: records written as JSON by earlier versions (in full,
//! or without their default fields) decode as they always did.
//!
//! **Stability.** The layout of a tag is frozen: records written with it live in stores, logs and
//! snapshots. `the_v1_layout_is_frozen` pins its bytes. A change to [`Task`] or to the types it
//! holds (a field added, moved or retyped, an enum variant inserted before others) fails that
//! test; such a change needs a new tag, with the old tag's layout still decoded.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Error, Result};
use crate::model::{CompactString, DesiredState, Millis, PublishedPort, Resources, Task};
use crate::model::{TaskHealth, TaskState};
use crate::store::KeyValue;

/// The first byte of a binary task record (layout version 1). No JSON text starts with it.
pub const TASK_RECORD_V1: u8 = 0x01;

/// [`Task`] by reference, every field in its declaration order: the v1 layout.
#[derive(Serialize)]
struct TaskRecordV1<'a> {
    id: &'a CompactString,
    service: &'a CompactString,
    slot: &'a u32,
    spec_version: &'a u64,
    node: &'a Option<CompactString>,
    state: &'a TaskState,
    desired: &'a DesiredState,
    resources: &'a Resources,
    container_id: &'a Option<String>,
    ports: &'a Vec<PublishedPort>,
    exit_code: &'a Option<i64>,
    error: &'a Option<Box<str>>,
    health: &'a TaskHealth,
    health_output: &'a Option<Box<str>>,
    restarts: &'a u32,
    attempt: &'a u32,
    moved_because: &'a Option<Box<str>>,
    trace_parent: &'a Option<Box<str>>,
    created_at: &'a Millis,
    updated_at: &'a Millis,
}

impl<'a> From<&'a Task> for TaskRecordV1<'a> {
    fn from(task: &'a Task) -> Self {
        // No `..`: a field added to `Task` does not compile here until the layout is revised.
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
        TaskRecordV1 {
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

/// `value`'s JSON, without spare capacity (an in-process store keeps the bytes as given).
pub(super) fn encode<T: Serialize>(key: &str, value: &T) -> Result<Vec<u8>> {
    let mut bytes =
        serde_json::to_vec(value).map_err(|e| Error::backend(format!("encoding {key}"), e))?;
    bytes.shrink_to_fit();
    Ok(bytes)
}

/// The bytes the store keeps for `task` under `key`: its binary record (see the module docs),
/// without spare capacity.
pub(super) fn encode_task(key: &str, task: &Task) -> Result<Vec<u8>> {
    let mut bytes = postcard::to_extend(&TaskRecordV1::from(task), vec![TASK_RECORD_V1])
        .map_err(|e| Error::backend(format!("encoding {key}"), e))?;
    bytes.shrink_to_fit();
    Ok(bytes)
}

/// Decodes `value`, read under `key`: a binary record (a task's) or JSON, whichever its first
/// byte says. [`Error::Corrupt`], naming the key, for bytes that are neither, or that hold
/// another type.
///
/// This is how every reader outside the typed layer (DNS, events, tools) should decode a value
/// it read from the store: a task's bytes are not JSON.
pub fn decode_value<T: DeserializeOwned>(key: &str, value: &[u8]) -> Result<T> {
    let corrupt = |reason: String| Error::Corrupt {
        key: key.to_owned(),
        reason,
    };
    match value.split_first() {
        Some((&TASK_RECORD_V1, body)) => match postcard::take_from_bytes::<T>(body) {
            Ok((value, [])) => Ok(value),
            Ok((_, rest)) => Err(corrupt(format!(
                "binary record: {} bytes left over after the value",
                rest.len()
            ))),
            Err(e) => Err(corrupt(format!("binary record: {e}"))),
        },
        _ => serde_json::from_slice(value).map_err(|e| corrupt(e.to_string())),
    }
}

/// [`decode_value`] of a key/value read from the store.
pub(super) fn decode<T: DeserializeOwned>(kv: &KeyValue) -> Result<T> {
    decode_value(&kv.key, &kv.value)
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
        task.id = "web-3-0badf00d".into();
        task.state = TaskState::Failed;
        task.desired = DesiredState::Shutdown;
        task.resources.disk_bytes = 1 << 30;
        task.exit_code = Some(-137);
        task.error = Some("killed".into());
        task.health = TaskHealth::Unhealthy;
        task.health_output = Some("connection refused".into());
        task.restarts = 4;
        task.attempt = 2;
        task.moved_because = Some("latency to db".into());
        task.trace_parent = Some("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".into());
        task.created_at = 1_780_000_000_000;
        task.updated_at = 1_780_000_012_345;
        task
    }

    fn kv(value: Vec<u8>) -> KeyValue {
        KeyValue {
            key: "/orion/tasks/x".into(),
            value,
            create_revision: 1,
            mod_revision: 1,
            version: 1,
        }
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn a_task_decodes_from_its_binary_record() {
        for task in [
            Task::new("web", 0, 1, Resources::default()),
            running(),
            every_field_set(),
        ] {
            let bytes = encode_task("/orion/tasks/x", &task).unwrap();
            assert_eq!(bytes[0], TASK_RECORD_V1);
            assert_eq!(decode::<Task>(&kv(bytes)).unwrap(), task);
        }
    }

    #[test]
    fn the_binary_record_is_a_fraction_of_the_json() {
        let task = running();
        let binary = encode_task("/orion/tasks/x", &task).unwrap().len();
        let json = serde_json::to_vec(&task).unwrap().len();
        assert!(binary * 3 < json, "binary {binary} B, JSON {json} B");
    }

    #[test]
    fn the_v1_layout_is_frozen() {
        // A change here means records already written cannot be read: see the module docs.
        const V1: &str = "010e7765622d332d306261646630306403776562030201066e6f64652d310501\
                          fa018080802080808080040106633066666565015080eb010374637007302e30\
                          2e302e3001910201066b696c6c6564030112636f6e6e656374696f6e20726566\
                          757365640402010d6c6174656e637920746f206462013730302d306166373635\
                          31393136636434336464383434386562323131633830333139632d6237616436\
                          62373136393230333333312d303180909282e733b9f09282e733";
        let bytes = encode_task("/orion/tasks/x", &every_field_set()).unwrap();
        assert_eq!(hex(&bytes), V1);
    }

    #[test]
    fn json_records_of_earlier_versions_still_decode() {
        let task = every_field_set();
        let full = serde_json::to_vec(&task).unwrap();
        assert_eq!(decode::<Task>(&kv(full)).unwrap(), task);
        // The default fields left out, as the stored form of 2026-12-06 wrote it.
        let task = running();
        let mut compact = serde_json::to_value(&task).unwrap();
        for field in ["exit_code", "error", "health", "restarts", "desired"] {
            compact.as_object_mut().unwrap().remove(field);
        }
        let bytes = serde_json::to_vec(&compact).unwrap();
        assert_eq!(decode::<Task>(&kv(bytes)).unwrap(), task);
    }

    #[test]
    fn bytes_that_are_not_a_record_are_corrupt_and_named() {
        let mut cut = encode_task("/orion/tasks/x", &running()).unwrap();
        cut.truncate(cut.len() / 2);
        let mut longer = encode_task("/orion/tasks/x", &running()).unwrap();
        longer.push(0);
        for bytes in [cut, longer, b"{not json".to_vec(), vec![0x02, 1, 2]] {
            match decode::<Task>(&kv(bytes.clone())) {
                Err(Error::Corrupt { key, .. }) => assert_eq!(key, "/orion/tasks/x"),
                other => panic!("{bytes:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn the_api_form_of_a_task_keeps_its_default_fields() {
        let api = serde_json::to_value(running()).unwrap();
        for field in ["exit_code", "error", "health", "restarts", "desired"] {
            assert!(api.get(field).is_some(), "{field} missing from {api}");
        }
    }
}
