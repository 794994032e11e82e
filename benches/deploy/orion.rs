//! Orion's side: one `orion up` node (the release binary) on the engine, driven through its API.

use std::collections::HashMap;
use std::time::{Instant, SystemTime};

use orion_core::model::{Task, TaskState};

use super::replace::{ReplaceTrace, kill_and_trace};
use super::support::{Role, TestCluster, http_spec_restart};
use super::timeline::{EngineEvents, TaskSeen, Timeline};
use super::{CPU_MILLICORES, CpuMode, Figures, LIMIT, POLL, Sizes};

const SERVICE: &str = "deploy";

/// Polls the API until `n` tasks of the service run, none on a container in `not`; records when
/// each task was first seen in each state into `seen`.
async fn until_running(
    c: &TestCluster,
    n: usize,
    not: Option<&str>,
    seen: &mut HashMap<String, TaskSeen>,
) -> Vec<Task> {
    let started = Instant::now();
    let mut last = String::new();
    let max_polls = LIMIT.as_millis() / POLL.as_millis() + 1;
    for _ in 0..max_polls {
        match c.tasks(0, SERVICE).await {
            Ok(tasks) => {
                let now = SystemTime::now();
                for t in &tasks {
                    seen.entry(t.id.to_string())
                        .or_insert_with(|| TaskSeen::new(t.created_at))
                        .observe(t.state, now);
                }
                let running = tasks
                    .iter()
                    .filter(|t| t.state == TaskState::Running && t.container_id.is_some())
                    .filter(|t| not.is_none() || t.container_id.as_deref() != not)
                    .count();
                if running == n && tasks.len() == n {
                    return tasks;
                }
                last = format!("{running} of {} running", tasks.len());
            }
            Err(e) => last = e,
        }
        if started.elapsed() > LIMIT {
            break;
        }
        tokio::time::sleep(POLL).await;
    }
    panic!("orion: {n} replicas not running within {LIMIT:?}: {last}");
}

/// The environment variable that sets the node's `agent.maxInFlight` (unset: the binary's
/// default, and no config file, so an older binary runs too).
pub const MAX_IN_FLIGHT_ENV: &str = "ORION_BENCH_MAX_IN_FLIGHT";

/// [`MAX_IN_FLIGHT_ENV`], checked: 1 to 256.
fn max_in_flight() -> Option<usize> {
    let raw = std::env::var(MAX_IN_FLIGHT_ENV).ok()?;
    match raw.parse::<usize>() {
        Ok(n) if (1..=256).contains(&n) => Some(n),
        _ => panic!("{MAX_IN_FLIGHT_ENV}: got {raw:?}, expected 1 to 256"),
    }
}

/// Deploy, scale and a killed container's replacement; the deploy and the replacement are
/// traced.
pub async fn measure(sizes: Sizes, mode: CpuMode) -> (Figures, Timeline, ReplaceTrace) {
    let mut c = TestCluster::new("deploy", &[Role::Single]).await;
    if let Some(n) = max_in_flight() {
        c.nodes[0].use_config(&format!("agent: {{ maxInFlight: {n} }}"));
    }
    c.start(0).await;
    let mut spec: serde_json::Value =
        serde_json::from_str(&http_spec_restart(SERVICE, sizes.deploy as u32, "always"))
            .expect("JSON");
    spec["resources"] = serde_json::json!({
        "cpu_millicores": CPU_MILLICORES,
        "cpu_limit": mode.cpu_limit(),
    });

    let events = EngineEvents::follow(&c.nodes[0].id).await;
    let mut seen = HashMap::new();
    let requested = SystemTime::now();
    let t = Instant::now();
    c.deploy(0, &spec.to_string()).await;
    let tasks = until_running(&c, sizes.deploy, None, &mut seen).await;
    let deploy = t.elapsed();
    let trace = Timeline::build(requested, seen, events.stop());

    let t = Instant::now();
    c.scale(0, SERVICE, sizes.scale_to as u32).await;
    until_running(&c, sizes.scale_to, None, &mut HashMap::new()).await;
    let scale = t.elapsed();

    let killed = tasks[0].container_id.clone().expect("a container id");
    let (replace, replaced) = kill_and_trace(&c, SERVICE, &tasks[0].id, &killed).await;
    until_running(&c, sizes.scale_to, Some(&killed), &mut HashMap::new()).await;
    (
        Figures {
            deploy,
            scale,
            replace,
        },
        trace,
        replaced,
    )
}
