//! The typed layer (`ClusterStore`) on MemoryStore and SledStore.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use orion_core::Error;
use orion_core::model::{
    NetworkMeasurement, Node, NodeStatus, Resources, ServiceSpec, Task, TaskState,
};
use orion_core::store::{
    ClusterStore, MemoryStore, SledStore, Store, TypedEvent, TypedWatch, keys,
};

const WAIT: Duration = Duration::from_secs(30);

async fn next<T>(watch: &mut TypedWatch<T>) -> orion_core::Result<TypedEvent<T>> {
    tokio::time::timeout(WAIT, watch.next())
        .await
        .expect("a watch event within the bound")
        .expect("the watch stays open")
}

fn measurement(from: &str, to: &str, rtt_ms: f64) -> NetworkMeasurement {
    NetworkMeasurement {
        from: from.into(),
        to: to.into(),
        rtt_ms,
        jitter_ms: 0.1,
        loss: 0.0,
        bandwidth_mbps: Some(1000.0),
        measured_at: 1,
        ..NetworkMeasurement::default()
    }
}

fn cpu(millicores: u64) -> Resources {
    Resources {
        cpu_millicores: millicores,
        ..Resources::default()
    }
}

#[tokio::test]
async fn spec_version_grows_only_on_change_and_survives_deletion() {
    let cs = ClusterStore::new(MemoryStore::new());
    let web = ServiceSpec::new("web", "nginx:1", 2);
    let v1 = cs.put_service(&web).await.unwrap();
    assert_eq!((v1.spec_version, v1.spec.clone()), (1, web.clone()));

    let revision = cs.inner().revision().await.unwrap();
    let same = cs.put_service(&web).await.unwrap();
    assert_eq!(same, v1, "an identical spec is not a new version");
    assert_eq!(
        cs.inner().revision().await.unwrap(),
        revision,
        "nothing written"
    );

    let mut changed = web.clone();
    changed.env = vec!["MODE=fast".into()];
    let v2 = cs.put_service(&changed).await.unwrap();
    assert_eq!(v2.spec_version, 2);
    assert_eq!(cs.get_service("web").await.unwrap(), Some(v2.clone()));

    cs.put_service(&ServiceSpec::new("api", "api:1", 1))
        .await
        .unwrap();
    let listed = cs.list_services().await.unwrap();
    let names: Vec<(&str, u64)> = listed
        .iter()
        .map(|s| (s.spec.name.as_str(), s.spec_version))
        .collect();
    assert_eq!(names, [("api", 1), ("web", 2)]);

    assert!(cs.delete_service("web").await.unwrap());
    assert!(!cs.delete_service("web").await.unwrap());
    assert_eq!(cs.get_service("web").await.unwrap(), None);
    let again = cs.put_service(&web).await.unwrap();
    assert_eq!(
        again.spec_version, 3,
        "a recreated service never reuses a version"
    );
}

#[tokio::test]
async fn scaling_keeps_the_spec_version_and_update_service_is_atomic() {
    let cs = ClusterStore::new(MemoryStore::new());
    cs.put_service(&ServiceSpec::new("web", "nginx:1", 2))
        .await
        .unwrap();

    let scaled = cs
        .update_service("web", |s| {
            s.replicas = 7;
            Ok(())
        })
        .await
        .unwrap();
    assert_eq!(
        (scaled.spec.replicas, scaled.spec_version),
        (7, 1),
        "scaling is not a rollout"
    );
    let stored = cs.get_service("web").await.unwrap().unwrap();
    assert_eq!(stored, scaled);

    let rolled = cs
        .update_service("web", |s| {
            s.image = "nginx:2".into();
            Ok(())
        })
        .await
        .unwrap();
    assert_eq!((rolled.spec.replicas, rolled.spec_version), (7, 2));

    let mut rescaled = rolled.spec.clone();
    rescaled.replicas = 1;
    assert_eq!(cs.put_service(&rescaled).await.unwrap().spec_version, 2);

    let err = cs.update_service("nope", |_| Ok(())).await.unwrap_err();
    assert!(err.is_not_found(), "{err}");
    let err = cs
        .update_service("web", |s| {
            s.name = "api".into();
            Ok(())
        })
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Invalid(_)), "{err}");
    assert_eq!(cs.list_services().await.unwrap().len(), 1);
}

#[tokio::test]
async fn task_crud_queries_and_state_transitions() {
    let cs = ClusterStore::new(MemoryStore::new());
    let mut a = Task::new("web", 0, 1, cpu(100));
    a.node = Some("n1".into());
    let mut b = Task::new("web", 1, 1, cpu(100));
    b.node = Some("n2".into());
    let c = Task::new("db", 0, 1, cpu(100));
    for t in [&a, &b, &c] {
        cs.create_task(t).await.unwrap();
    }
    let err = cs.create_task(&a).await.unwrap_err();
    assert!(matches!(err, Error::Conflict(_)), "{err}");

    assert_eq!(cs.get_task(&a.id).await.unwrap(), Some(a.clone()));
    assert_eq!(cs.list_tasks().await.unwrap().len(), 3);
    let mut web: Vec<String> = cs
        .tasks_of_service("web")
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.id.to_string())
        .collect();
    web.sort();
    let mut expected = vec![a.id.clone(), b.id.clone()];
    expected.sort();
    assert_eq!(web, expected);
    let on_n2: Vec<String> = cs
        .tasks_on_node("n2")
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.id.to_string())
        .collect();
    assert_eq!(on_n2, [b.id.clone()]);

    let updated = cs
        .update_task(&a.id, |t| t.transition(TaskState::Scheduled))
        .await
        .unwrap();
    assert_eq!(updated.state, TaskState::Scheduled);
    assert_eq!(
        cs.get_task(&a.id).await.unwrap().unwrap().state,
        TaskState::Scheduled
    );

    let revision = cs.inner().revision().await.unwrap();
    let err = cs
        .update_task(&a.id, |t| t.transition(TaskState::Completed))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::IllegalTransition { .. }), "{err}");
    assert_eq!(
        cs.inner().revision().await.unwrap(),
        revision,
        "a failed update writes nothing"
    );

    let err = cs
        .update_task("web-9-missing", |_| Ok(()))
        .await
        .unwrap_err();
    assert!(err.is_not_found(), "{err}");
    let err = cs
        .update_task(&a.id, |t| {
            t.id = "other".into();
            Ok(())
        })
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Invalid(_)), "{err}");

    assert!(cs.delete_task(&c.id).await.unwrap());
    assert_eq!(cs.get_task(&c.id).await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_update_task_loses_no_update() {
    const WRITERS: u32 = 4;
    const UPDATES: u32 = 25;
    let cs = Arc::new(ClusterStore::new(MemoryStore::new()));
    let task = Task::new("web", 0, 1, Resources::default());
    cs.create_task(&task).await.unwrap();
    let mut handles = Vec::new();
    for _ in 0..WRITERS {
        let (cs, id) = (Arc::clone(&cs), task.id.clone());
        handles.push(tokio::spawn(async move {
            for _ in 0..UPDATES {
                cs.update_task(&id, |t| {
                    t.restarts += 1;
                    Ok(())
                })
                .await
                .unwrap();
            }
        }));
    }
    for handle in handles {
        handle.await.unwrap();
    }
    let stored = cs.get_task(&task.id).await.unwrap().unwrap();
    assert_eq!(stored.restarts, WRITERS * UPDATES);
}

#[tokio::test]
async fn watch_tasks_reports_typed_puts_and_deletes_with_previous_values() {
    let cs = ClusterStore::new(MemoryStore::new());
    let mut watch = cs.watch_tasks(0).await.unwrap();
    let task = Task::new("web", 0, 1, Resources::default());
    let created = cs.create_task(&task).await.unwrap();
    cs.put_node(&Node::new("n1", cpu(1000))).await.unwrap(); // not a task: not reported
    cs.update_task(&task.id, |t| t.transition(TaskState::Scheduled))
        .await
        .unwrap();
    cs.delete_task(&task.id).await.unwrap();

    match next(&mut watch).await.unwrap() {
        TypedEvent::Put {
            id,
            value,
            prev,
            revision,
        } => {
            assert_eq!(
                (id, value, prev, revision),
                (task.id.to_string(), task.clone(), None, created)
            );
        }
        other => panic!("expected the create, got {other:?}"),
    }
    match next(&mut watch).await.unwrap() {
        TypedEvent::Put { value, prev, .. } => {
            assert_eq!(value.state, TaskState::Scheduled);
            assert_eq!(prev.map(|p| p.state), Some(TaskState::Pending));
        }
        other => panic!("expected the update, got {other:?}"),
    }
    match next(&mut watch).await.unwrap() {
        TypedEvent::Delete { id, prev, .. } => {
            assert_eq!(id, task.id);
            assert_eq!(prev.map(|p| p.state), Some(TaskState::Scheduled));
        }
        other => panic!("expected the delete, got {other:?}"),
    }
}

#[tokio::test]
async fn nodes_measurements_and_state_at_one_revision() {
    let cs = ClusterStore::new(MemoryStore::new());
    cs.put_node(&Node::new("n1", cpu(1000)).with_label("zone", "a"))
        .await
        .unwrap();
    cs.put_node(&Node::new("n2", cpu(2000))).await.unwrap();
    let drained = cs
        .update_node("n2", |n| {
            n.status = NodeStatus::Draining;
            Ok(())
        })
        .await
        .unwrap();
    assert_eq!(drained.status, NodeStatus::Draining);
    assert_eq!(cs.get_node("n1").await.unwrap().unwrap().zone(), Some("a"));

    for m in [
        measurement("n1", "n2", 1.5),
        measurement("n2", "n1", 1.7),
        measurement("n2", "n3", 9.0),
    ] {
        cs.put_measurement(&m).await.unwrap();
    }
    assert_eq!(
        cs.get_measurement("n1", "n2")
            .await
            .unwrap()
            .unwrap()
            .rtt_ms,
        1.5
    );
    assert_eq!(
        cs.get_measurement("n3", "n2").await.unwrap(),
        None,
        "one direction only"
    );
    let matrix = cs.network_matrix().await.unwrap();
    assert_eq!((matrix.len(), matrix.rtt_ms("n3", "n2")), (3, Some(9.0)));

    cs.put_service(&ServiceSpec::new("web", "nginx:1", 1))
        .await
        .unwrap();
    cs.create_task(&Task::new("web", 0, 1, cpu(10)))
        .await
        .unwrap();
    let state = cs.load_state().await.unwrap();
    assert_eq!(state.revision, cs.inner().revision().await.unwrap());
    assert_eq!(state.services.len(), 1);
    assert_eq!(state.services[0].spec_version, 1);
    assert_eq!(state.tasks.len(), 1);
    let nodes: Vec<&str> = state.nodes.iter().map(|n| n.id.as_str()).collect();
    assert_eq!(nodes, ["n1", "n2"]);
    assert_eq!(state.network.len(), 3);

    assert_eq!(cs.delete_measurements_of("n1").await.unwrap(), 2);
    let left: Vec<(String, String)> = cs
        .list_measurements()
        .await
        .unwrap()
        .into_iter()
        .map(|m| (m.from, m.to))
        .collect();
    assert_eq!(left, [("n2".to_owned(), "n3".to_owned())]);
    assert!(cs.delete_node("n1").await.unwrap());
    assert_eq!(cs.list_nodes().await.unwrap().len(), 1);
}

#[tokio::test]
async fn bad_names_are_invalid_and_undecodable_bytes_are_corrupt() {
    let cs = ClusterStore::new(MemoryStore::new());
    let err = cs
        .put_service(&ServiceSpec::new("a/b", "x", 1))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Invalid(_)), "{err}");
    assert!(err.to_string().contains("without '/'"), "{err}");
    assert!(matches!(
        cs.get_task("").await.unwrap_err(),
        Error::Invalid(_)
    ));
    let err = cs
        .put_measurement(&measurement("n1", "", 1.0))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("to"), "{err}");

    let mut watch = cs.watch_tasks(0).await.unwrap();
    let key = keys::task("broken");
    cs.inner().put(&key, b"{not json".to_vec()).await.unwrap();
    for err in [
        cs.list_tasks().await.unwrap_err(),
        cs.get_task("broken").await.unwrap_err(),
        next(&mut watch).await.unwrap_err(),
    ] {
        match err {
            Error::Corrupt { key: k, .. } => assert_eq!(k, key),
            other => panic!("expected Corrupt, got {other}"),
        }
    }
}

#[tokio::test]
async fn sled_typed_state_and_spec_versions_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let task = Task::new("web", 0, 1, Resources::default());
    {
        let cs = ClusterStore::new(SledStore::open(&path).unwrap());
        cs.put_service(&ServiceSpec::new("web", "nginx:1", 1))
            .await
            .unwrap();
        cs.put_service(&ServiceSpec::new("web", "nginx:2", 1))
            .await
            .unwrap();
        cs.create_task(&task).await.unwrap();
    }
    let cs = ClusterStore::new(SledStore::open(&path).unwrap());
    assert_eq!(
        cs.get_service("web").await.unwrap().unwrap().spec_version,
        2
    );
    assert_eq!(cs.get_task(&task.id).await.unwrap(), Some(task));
    let v3 = cs
        .put_service(&ServiceSpec::new("web", "nginx:3", 1))
        .await
        .unwrap();
    assert_eq!(v3.spec_version, 3);
}

#[tokio::test]
async fn network_coordinates_round_trip_and_list_in_node_order() {
    use orion_core::model::NetworkCoordinate;
    let store = ClusterStore::new(MemoryStore::new());
    let coordinate = |node: &str, x: f64| NetworkCoordinate {
        node: node.into(),
        position: vec![x, 0.0, 0.0],
        height_ms: 1.0,
        error: 0.2,
        updated_at: 5,
    };
    store.put_coordinate(&coordinate("n2", 3.0)).await.unwrap();
    store.put_coordinate(&coordinate("n1", 0.0)).await.unwrap();
    store.put_coordinate(&coordinate("n1", 1.0)).await.unwrap();
    assert_eq!(
        store.get_coordinate("n1").await.unwrap(),
        Some(coordinate("n1", 1.0))
    );
    let all = store.list_coordinates().await.unwrap();
    assert_eq!(all, vec![coordinate("n1", 1.0), coordinate("n2", 3.0)]);
    assert_eq!(all[0].estimate_rtt_ms(&all[1]), Some(4.0));
    assert!(store.put_coordinate(&coordinate("a/b", 0.0)).await.is_err());
    // Coordinates are not measurements.
    assert!(store.list_measurements().await.unwrap().is_empty());
}

#[test]
fn a_measurement_from_before_the_new_fields_still_reads() {
    let old = r#"{"from":"a","to":"b","rtt_ms":2.5}"#;
    let m: NetworkMeasurement = serde_json::from_str(old).unwrap();
    assert_eq!((m.rtt_p90_ms, m.stability, m.link_down), (0.0, 0.0, false));
}
