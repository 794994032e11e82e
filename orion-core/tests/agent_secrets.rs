//! The agent opens a task's secrets just before its container starts: with the key that sealed
//! them the task runs; a node without a key, with another key, or a secret removed since, fails
//! the task with a reason that names the secret and never holds its value.

use std::sync::Arc;

use orion_core::model::{ServiceSpec, Task, TaskState};
use orion_core::node::{Agent, SystemClock};
use orion_core::runtime::FakeRuntime;
use orion_core::secrets::{SecretRef, SecretSealer, SecretValue};
use orion_core::store::{ClusterStore, MemoryStore};

const VALUE: &str = "the-plaintext-value";

/// A store with secret `db` sealed by key `[1; 32]`, a service `app` using it as env, and one
/// task of it scheduled on n1; the task after one agent pass with `sealer`.
async fn one_pass(sealer: Option<SecretSealer>, create_secret: bool) -> Task {
    let store = ClusterStore::new(Arc::new(MemoryStore::new()));
    if create_secret {
        let sealed = SecretSealer::new([1; 32])
            .seal("db", &SecretValue::new(VALUE.into()).unwrap(), 0)
            .unwrap();
        store.create_secret(&sealed).await.unwrap();
    }
    let mut spec = ServiceSpec::new("app", "busybox", 1);
    spec.secrets = vec![SecretRef {
        name: "db".into(),
        env: Some("DB".into()),
        file: None,
    }];
    store.put_service(&spec).await.unwrap();
    let mut task = Task::new("app", 0, 1, Default::default());
    task.node = Some("n1".into());
    task.transition(TaskState::Scheduled).unwrap();
    store.create_task(&task).await.unwrap();
    let mut agent = Agent::new(
        "n1",
        store.clone(),
        Arc::new(FakeRuntime::new()),
        Arc::new(SystemClock),
        "127.0.0.1",
    );
    if let Some(sealer) = sealer {
        agent = agent.with_secrets(Arc::new(sealer));
    }
    agent.sync().await.unwrap();
    store.get_task(&task.id).await.unwrap().unwrap()
}

#[tokio::test]
async fn a_task_with_secrets_runs_with_the_sealing_key() {
    let task = one_pass(Some(SecretSealer::new([1; 32])), true).await;
    assert_eq!(task.state, TaskState::Running, "{task:?}");
}

#[tokio::test]
async fn a_task_whose_secrets_cannot_be_opened_fails_saying_why() {
    let cases = [
        (None, true, "no cluster key"),
        (
            Some(SecretSealer::new([2; 32])),
            true,
            "but this node holds key",
        ),
        (
            Some(SecretSealer::new([1; 32])),
            false,
            "secret \"db\" not found",
        ),
    ];
    for (sealer, create, reason) in cases {
        let task = one_pass(sealer, create).await;
        assert_eq!(task.state, TaskState::Failed, "{task:?}");
        let error = task.error.unwrap_or_default();
        assert!(error.contains(reason) && !error.contains(VALUE), "{error}");
    }
}
