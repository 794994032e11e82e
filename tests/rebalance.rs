//! End-to-end rebalancing against the real Docker engine, three nodes on loopback: a node is
//! stopped and wiped (a reboot that loses its containers), its replicas move to the other two;
//! it comes back and gets its share back, with the moves in flight sampled throughout (within
//! the budget) and never fewer than `replicas - budget` replicas running. Swarm leaves such a
//! node empty.

mod support;

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::Duration;

use orion_core::model::{DesiredState, Task, TaskState};
use orion_core::reconciler::REBALANCE_PREFIX;
use support::{TestCluster, http_spec, wait_for};

const CONVERGE: Duration = Duration::from_secs(120);
/// Bound on the sampling loop while the node gets its share back (samples; each ~100 ms+).
const MAX_SAMPLES: usize = 1_500;
const REPLICAS: usize = 6;
const BUDGET: usize = 1;

const YAML: &str = "scheduler:
  rebalance: { enabled: true, minSpread: 2, maxInFlight: 1, cooldown: 1s }
";

fn per_node(tasks: &[Task]) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for t in tasks.iter().filter(|t| t.is_active()) {
        *out.entry(t.node.as_deref().unwrap_or_default().to_owned())
            .or_default() += 1;
    }
    out
}

/// Running and still wanted: what serves (the service has no health check).
fn running(tasks: &[Task]) -> usize {
    tasks
        .iter()
        .filter(|t| t.state == TaskState::Running && t.desired == DesiredState::Running)
        .count()
}

fn is_rebalance(t: &Task) -> bool {
    t.moved_because
        .as_deref()
        .is_some_and(|m| m.starts_with(REBALANCE_PREFIX))
}

#[tokio::test]
async fn a_stopped_node_gets_its_share_back_within_the_budget() {
    let mut c = TestCluster::three_configured("rebalance", Some(YAML)).await;
    c.deploy(0, &http_spec("spread", REPLICAS as u32)).await;
    c.wait_serving(0, "spread", REPLICAS, CONVERGE).await;
    let n3 = c.nodes[2].id.clone();

    // Node 3 goes away with its containers.
    c.nodes[2].kill9();
    let ids: Vec<String> = c.containers_on(2).into_iter().collect();
    if !ids.is_empty() {
        let status = Command::new("docker")
            .args(["rm", "-f"])
            .args(&ids)
            .stdout(Stdio::null())
            .status()
            .expect("docker rm");
        assert!(status.success());
    }
    let moved_away = wait_for(
        "the replicas of node 3 to run elsewhere",
        CONVERGE,
        || async {
            let tasks = c.tasks(0, "spread").await?;
            let elsewhere = tasks
                .iter()
                .filter(|t| t.state == TaskState::Running && t.node.as_deref() != Some(n3.as_str()))
                .count();
            if elsewhere == REPLICAS {
                Ok(tasks)
            } else {
                Err(format!("{:?}", per_node(&tasks)))
            }
        },
    )
    .await;
    assert!(!per_node(&moved_away).contains_key(&n3));

    // It comes back, empty: replicas move to it one at a time.
    c.start(2).await;
    let back_at = std::time::Instant::now();
    let (mut most_in_flight, mut least_running) = (0usize, usize::MAX);
    let mut last = String::new();
    let mut done = None;
    for _ in 0..MAX_SAMPLES {
        let tasks = c.tasks(0, "spread").await.unwrap_or_default();
        if !tasks.is_empty() {
            let in_flight = tasks
                .iter()
                .filter(|t| is_rebalance(t) && t.is_active() && t.state != TaskState::Running)
                .count();
            most_in_flight = most_in_flight.max(in_flight);
            least_running = least_running.min(running(&tasks));
            let counts = per_node(&tasks);
            last = format!("{counts:?}");
            let on3 = tasks
                .iter()
                .filter(|t| {
                    t.state == TaskState::Running
                        && t.desired == DesiredState::Running
                        && t.node.as_deref() == Some(n3.as_str())
                })
                .count();
            if on3 == REPLICAS / 3
                && running(&tasks) == REPLICAS
                && tasks.iter().filter(|t| t.is_active()).count() == REPLICAS
            {
                done = Some(tasks);
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let tasks = done.unwrap_or_else(|| panic!("node 3 did not get its share back: {last}"));
    eprintln!(
        "node 3 back: {:.1} s until its share ran there; at most {most_in_flight} moves in \
         flight, at least {least_running} of {REPLICAS} running",
        back_at.elapsed().as_secs_f64()
    );
    assert!(
        per_node(&tasks).values().all(|&n| n == REPLICAS / 3),
        "{:?}",
        per_node(&tasks)
    );
    assert!(
        most_in_flight <= BUDGET,
        "{most_in_flight} moves in flight at once, budget {BUDGET}"
    );
    assert!(
        least_running >= REPLICAS - BUDGET,
        "{least_running} replicas running at the lowest"
    );
    // Every replica on node 3 got there by rebalancing, and says why.
    for t in tasks
        .iter()
        .filter(|t| t.node.as_deref() == Some(n3.as_str()))
    {
        let why = t.moved_because.as_deref().unwrap_or_default();
        assert!(why.starts_with(REBALANCE_PREFIX), "{}: {why:?}", t.id);
        assert!(why.contains(&format!("to {n3}")), "{why}");
    }
    // `orion status SERVICE` lists the moves with their reasons.
    let out = c.cli(0, &["status", "spread"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("Moves"), "{text}");
    assert!(text.contains(REBALANCE_PREFIX), "{text}");
    // And it stays put: nothing moves back and forth.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let later = c.tasks(0, "spread").await.expect("tasks");
    let mut ids: Vec<&str> = later
        .iter()
        .filter(|t| t.is_active())
        .map(|t| t.id.as_str())
        .collect();
    let mut before: Vec<&str> = tasks
        .iter()
        .filter(|t| t.is_active())
        .map(|t| t.id.as_str())
        .collect();
    ids.sort();
    before.sort();
    assert_eq!(ids, before, "no further moves once balanced");
}
