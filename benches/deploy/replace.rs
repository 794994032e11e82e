//! The traced path of one killed container until its replacement runs: the engine's `die`,
//! `destroy`, `create` and `start` events for the task's containers, and when the API first shows
//! the task restarting (the agent's status write) and running on its new container.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bollard::query_parameters::EventsOptions;
use futures::StreamExt;
use orion_core::model::TaskState;
use orion_core::runtime::labels;

use super::support::{TestCluster, docker_kill};
use super::{LIMIT, POLL};

/// The engine actions followed, in the order they happen on the path.
const ACTIONS: [&str; 4] = ["die", "destroy", "create", "start"];

/// When each stage of one replacement was first seen, in ms after `docker kill` was run.
#[derive(Debug, Default)]
pub struct ReplaceTrace {
    stages: Vec<(&'static str, Option<f64>)>,
    /// The node's last log lines about the task.
    log: Vec<String>,
}

/// The node's log lines about the killed task printed at most.
const MAX_LOG_LINES: usize = 8;

fn millis_after(t0: SystemTime, t: SystemTime) -> f64 {
    match t.duration_since(t0) {
        Ok(d) => d.as_secs_f64() * 1000.0,
        Err(e) => -(e.duration().as_secs_f64() * 1000.0),
    }
}

/// Kills `container` (of task `task` of `service`) and waits until the task runs on another
/// container; returns the time that took and the traced stages.
pub async fn kill_and_trace(
    c: &TestCluster,
    service: &str,
    task: &str,
    container: &str,
) -> (Duration, ReplaceTrace) {
    let docker = orion_runtime::docker::connect()
        .await
        .expect("the Docker engine");
    let filters = HashMap::from([
        ("type".to_owned(), vec!["container".to_owned()]),
        ("label".to_owned(), vec![format!("{}={task}", labels::TASK)]),
        (
            "event".to_owned(),
            ACTIONS.iter().map(|a| (*a).to_owned()).collect(),
        ),
    ]);
    let seen: Arc<Mutex<HashMap<String, SystemTime>>> = Arc::default();
    let sink = seen.clone();
    let follower = tokio::spawn(async move {
        let options = EventsOptions {
            filters: Some(filters),
            ..EventsOptions::default()
        };
        let mut stream = docker.events(Some(options));
        while let Some(Ok(e)) = stream.next().await {
            let (Some(action), Some(nanos)) = (e.action, e.time_nano) else {
                continue;
            };
            let at = UNIX_EPOCH + Duration::from_nanos(nanos.max(0) as u64);
            sink.lock()
                .expect("events lock")
                .entry(action)
                .or_insert(at);
        }
    });
    // The engine subscribes the stream when the request reaches it.
    tokio::time::sleep(Duration::from_millis(100)).await;

    let restarts_before = c
        .tasks(0, service)
        .await
        .ok()
        .and_then(|ts| ts.into_iter().find(|t| t.id == task))
        .map_or(0, |t| t.restarts);
    let killed_at = SystemTime::now();
    let t = Instant::now();
    docker_kill(container);
    let (mut restarting, mut running) = (None, None);
    let max_polls = LIMIT.as_millis() / POLL.as_millis() + 1;
    for _ in 0..max_polls {
        if let Ok(tasks) = c.tasks(0, service).await
            && let Some(now) = tasks.iter().find(|t| t.id == task)
        {
            let at = SystemTime::now();
            if now.restarts > restarts_before {
                restarting.get_or_insert(at);
            }
            if now.state == TaskState::Running
                && now
                    .container_id
                    .as_deref()
                    .is_some_and(|id| id != container)
            {
                running = Some(at);
                break;
            }
        }
        if t.elapsed() > LIMIT {
            break;
        }
        tokio::time::sleep(POLL).await;
    }
    let took = t.elapsed();
    assert!(
        running.is_some(),
        "orion: task {task} not running on a new container within {LIMIT:?}"
    );
    // The last events may trail the API's answer by a little.
    tokio::time::sleep(Duration::from_millis(200)).await;
    follower.abort();
    let engine = std::mem::take(&mut *seen.lock().expect("events lock"));
    let at = |t: Option<SystemTime>| t.map(|t| millis_after(killed_at, t));
    let engine_at = |action: &str| at(engine.get(action).copied());
    // The node's own account of the path: its log lines about the task since the kill.
    let log: Vec<String> = c.nodes[0]
        .read_log()
        .lines()
        .filter(|l| l.contains(task))
        .map(str::to_owned)
        .collect();
    let log = log[log.len().saturating_sub(MAX_LOG_LINES)..].to_vec();
    let trace = ReplaceTrace {
        log,
        stages: vec![
            ("engine: old container died", engine_at("die")),
            (
                "seen restarting (agent's status write)",
                at(restarting.or(running)),
            ),
            ("engine: old container removed", engine_at("destroy")),
            ("engine: new container created", engine_at("create")),
            ("engine: new container started", engine_at("start")),
            ("seen `running` on the new container", at(running)),
        ],
    };
    (took, trace)
}

impl ReplaceTrace {
    pub fn print(&self) {
        println!("{:<46} {:>9}", "stage", "ms");
        for (name, ms) in &self.stages {
            match ms {
                Some(ms) => println!("{name:<46} {ms:>9.0}"),
                None => println!("{name:<46} {:>9}", "-"),
            }
        }
        println!("the node's last log lines about the task:");
        for line in &self.log {
            println!("  {line}");
        }
    }
}
