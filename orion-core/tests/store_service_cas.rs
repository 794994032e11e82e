//! Conditional service writes of the typed layer: create-if-missing and replace-if-unchanged.

use std::sync::Arc;

use orion_core::Error;
use orion_core::model::ServiceSpec;
use orion_core::store::{ClusterStore, MemoryStore, SledStore};

/// Of many racing creates of one name exactly one wins, and the stored spec is the winner's.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_creates_of_one_name_give_one_winner() {
    let cs = Arc::new(ClusterStore::new(MemoryStore::new()));
    for round in 0..20 {
        let name = format!("svc-{round}");
        let attempts: Vec<_> = (0..8)
            .map(|i| {
                let cs = cs.clone();
                let spec = ServiceSpec::new(name.clone(), format!("img:{i}"), 1);
                tokio::spawn(async move { (spec.image.clone(), cs.create_service(&spec).await) })
            })
            .collect();
        let mut winners = Vec::new();
        for a in attempts {
            let (image, result) = a.await.unwrap();
            match result {
                Ok(v) => winners.push((image, v)),
                Err(Error::Conflict(msg)) => assert!(msg.contains("already exists"), "{msg}"),
                Err(e) => panic!("unexpected error: {e}"),
            }
        }
        assert_eq!(winners.len(), 1, "round {round}: {} winners", winners.len());
        let stored = cs.get_service(&name).await.unwrap().unwrap();
        assert_eq!(stored.spec.image, winners[0].0);
        assert_eq!(stored.spec_version, 1);
    }
}

#[tokio::test]
async fn create_refuses_an_existing_service_and_versions_survive_delete() {
    let cs = ClusterStore::new(MemoryStore::new());
    let first = cs
        .create_service(&ServiceSpec::new("web", "nginx:1", 5))
        .await
        .unwrap();
    assert_eq!(first.spec_version, 1);
    let err = cs
        .create_service(&ServiceSpec::new("web", "nginx:2", 1))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Conflict(_)), "{err}");
    let kept = cs.get_service("web").await.unwrap().unwrap();
    assert_eq!(
        (kept.spec.image.as_str(), kept.spec.replicas),
        ("nginx:1", 5)
    );

    assert!(cs.delete_service("web").await.unwrap());
    let again = cs
        .create_service(&ServiceSpec::new("web", "nginx:3", 1))
        .await
        .unwrap();
    assert_eq!(
        again.spec_version, 2,
        "a re-created service never reuses a version"
    );
}

#[tokio::test]
async fn put_if_applies_only_at_the_expected_revision() {
    let dir = tempfile::tempdir().unwrap();
    let cs = ClusterStore::new(SledStore::open(dir.path().join("db")).unwrap());
    let v1 = cs
        .create_service(&ServiceSpec::new("web", "nginx:1", 2))
        .await
        .unwrap();
    let v2 = cs
        .put_service_if(&ServiceSpec::new("web", "nginx:2", 2), v1.mod_revision)
        .await
        .unwrap();
    assert!(v2.mod_revision > v1.mod_revision);
    assert_eq!(v2.spec_version, 2);

    // A writer holding the old revision loses, and nothing is overwritten.
    let err = cs
        .put_service_if(&ServiceSpec::new("web", "nginx:old", 2), v1.mod_revision)
        .await
        .unwrap_err();
    match err {
        Error::Conflict(msg) => {
            assert!(msg.contains(&v1.mod_revision.to_string()), "{msg}");
            assert!(msg.contains(&v2.mod_revision.to_string()), "{msg}");
        }
        other => panic!("expected a conflict, got {other}"),
    }
    assert_eq!(
        cs.get_service("web").await.unwrap().unwrap().spec.image,
        "nginx:2"
    );

    let err = cs
        .put_service_if(&ServiceSpec::new("db", "pg:1", 1), 1)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err}");
}
