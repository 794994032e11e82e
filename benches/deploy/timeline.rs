//! The traced timeline of one deploy: when each task was committed (its `created_at`), first
//! seen `starting` and `running` through the API (polled every [`super::POLL`]), and when the
//! engine created and started its container (Docker's event stream, nanosecond timestamps).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bollard::query_parameters::EventsOptions;
use futures::StreamExt;
use orion_core::model::TaskState;
use orion_core::runtime::labels;

/// When one task was first seen in each state (wall clock).
#[derive(Debug, Clone)]
pub struct TaskSeen {
    committed: SystemTime,
    starting: Option<SystemTime>,
    running: Option<SystemTime>,
}

impl TaskSeen {
    /// A task created at `created_at` (ms since the epoch, the leader's clock: this host's).
    pub fn new(created_at: u64) -> Self {
        TaskSeen {
            committed: UNIX_EPOCH + Duration::from_millis(created_at),
            starting: None,
            running: None,
        }
    }

    pub fn observe(&mut self, state: TaskState, at: SystemTime) {
        match state {
            TaskState::Starting => {
                self.starting.get_or_insert(at);
            }
            TaskState::Running => {
                // A start seen only as running was starting by then at the latest.
                self.starting.get_or_insert(at);
                self.running.get_or_insert(at);
            }
            _ => {}
        }
    }
}

/// Task id -> when the engine created and started its container.
pub type EngineTimes = HashMap<String, (Option<SystemTime>, Option<SystemTime>)>;

/// The engine's `create` and `start` events for containers of one node, per task.
#[derive(Debug)]
pub struct EngineEvents {
    seen: Arc<Mutex<EngineTimes>>,
    follower: tokio::task::JoinHandle<()>,
}

impl EngineEvents {
    /// Follows the engine's events for containers labelled with `node`, from now on.
    pub async fn follow(node: &str) -> Self {
        let docker = orion_runtime::docker::connect()
            .await
            .expect("the Docker engine");
        let filters = HashMap::from([
            ("type".to_owned(), vec!["container".to_owned()]),
            ("label".to_owned(), vec![format!("{}={node}", labels::NODE)]),
            (
                "event".to_owned(),
                vec!["create".to_owned(), "start".to_owned()],
            ),
        ]);
        let seen = Arc::new(Mutex::new(HashMap::new()));
        let sink = seen.clone();
        let follower = tokio::spawn(async move {
            let options = EventsOptions {
                filters: Some(filters),
                ..EventsOptions::default()
            };
            let mut stream = docker.events(Some(options));
            while let Some(Ok(e)) = stream.next().await {
                let task = e
                    .actor
                    .as_ref()
                    .and_then(|a| a.attributes.as_ref())
                    .and_then(|a| a.get(labels::TASK).cloned());
                let (Some(task), Some(nanos)) = (task, e.time_nano) else {
                    continue;
                };
                let at = UNIX_EPOCH + Duration::from_nanos(nanos.max(0) as u64);
                let mut seen = sink.lock().expect("events lock");
                let entry: &mut (Option<SystemTime>, Option<SystemTime>) =
                    seen.entry(task).or_default();
                match e.action.as_deref() {
                    Some("create") => entry.0 = entry.0.or(Some(at)),
                    Some("start") => entry.1 = entry.1.or(Some(at)),
                    _ => {}
                }
            }
        });
        // The engine subscribes the stream when the request reaches it.
        tokio::time::sleep(Duration::from_millis(100)).await;
        EngineEvents { seen, follower }
    }

    /// Stops following; returns task id -> (created, started).
    pub fn stop(self) -> EngineTimes {
        self.follower.abort();
        std::mem::take(&mut *self.seen.lock().expect("events lock"))
    }
}

/// Per stage, the times of every task relative to the API request.
#[derive(Debug)]
pub struct Timeline {
    stages: Vec<(&'static str, Vec<f64>)>,
    create_gaps: Vec<f64>,
}

fn millis_after(t0: SystemTime, t: SystemTime) -> f64 {
    match t.duration_since(t0) {
        Ok(d) => d.as_secs_f64() * 1000.0,
        Err(e) => -(e.duration().as_secs_f64() * 1000.0),
    }
}

impl Timeline {
    pub fn build(
        requested: SystemTime,
        seen: HashMap<String, TaskSeen>,
        engine: EngineTimes,
    ) -> Self {
        let mut committed = Vec::new();
        let mut starting = Vec::new();
        let mut created = Vec::new();
        let mut started = Vec::new();
        let mut running = Vec::new();
        let mut engine_to_running = Vec::new();
        for (task, s) in &seen {
            committed.push(millis_after(requested, s.committed));
            starting.extend(s.starting.map(|t| millis_after(requested, t)));
            running.extend(s.running.map(|t| millis_after(requested, t)));
            if let Some((c, st)) = engine.get(task) {
                created.extend(c.map(|t| millis_after(requested, t)));
                started.extend(st.map(|t| millis_after(requested, t)));
                if let (Some(st), Some(run)) = (st, s.running) {
                    engine_to_running.push(millis_after(*st, run));
                }
            }
        }
        let mut sorted = created.clone();
        sorted.sort_by(f64::total_cmp);
        let create_gaps = sorted.windows(2).map(|w| w[1] - w[0]).collect();
        Timeline {
            stages: vec![
                ("task committed (placed) by the reconciler", committed),
                ("seen `starting` (agent's first write)", starting),
                ("engine: container created", created),
                ("engine: container started", started),
                ("seen `running` (agent's status write)", running),
                (
                    "  engine start -> seen running (per task)",
                    engine_to_running,
                ),
            ],
            create_gaps,
        }
    }

    pub fn print(&self) {
        println!(
            "{:<46} {:>6} {:>9} {:>9} {:>9}",
            "stage", "tasks", "first", "median", "last"
        );
        let row = |name: &str, v: &[f64]| {
            let mut v = v.to_vec();
            v.sort_by(f64::total_cmp);
            if v.is_empty() {
                println!("{name:<46} {:>6}", 0);
                return;
            }
            println!(
                "{:<46} {:>6} {:>9.0} {:>9.0} {:>9.0}",
                name,
                v.len(),
                v[0],
                v[v.len() / 2],
                v[v.len() - 1]
            );
        };
        for (name, v) in &self.stages {
            row(name, v);
        }
        row(
            "gap between successive container creates",
            &self.create_gaps,
        );
    }
}
