//! End-to-end tests of a three-node cluster (`orion server --bootstrap` + two `--join`) against
//! the real Docker engine: spread, node loss and return, leader loss, agent restart adoption.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use orion_core::model::Task;
use reqwest::Method;
use support::{TestCluster, http_spec, wait_for};

const CONVERGE: Duration = Duration::from_secs(90);

fn container_ids(tasks: &[Task]) -> BTreeSet<String> {
    tasks
        .iter()
        .filter_map(|t| t.container_id.clone())
        .collect()
}

fn per_node(tasks: &[Task]) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for t in tasks {
        *m.entry(t.node.as_deref().unwrap_or_default().to_owned())
            .or_insert(0) += 1;
    }
    m
}

/// The leader as node `i` reports it.
async fn leader_seen_by(c: &TestCluster, i: usize) -> Result<String, String> {
    let (status, body) = c.request(i, Method::GET, "/v1/cluster", None).await;
    body["leader"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("{status}: {body}"))
}

/// Index of a node that runs at least one of `tasks` and is not `avoid`.
fn node_with_tasks(c: &TestCluster, tasks: &[Task], avoid: &str) -> usize {
    let counts = per_node(tasks);
    c.nodes
        .iter()
        .position(|n| n.id != avoid && counts.get(&n.id).copied().unwrap_or(0) > 0)
        .unwrap_or_else(|| panic!("no node other than {avoid} runs a task: {counts:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn six_replicas_survive_the_loss_and_return_of_a_node() {
    let mut c = TestCluster::three("spread").await;
    c.deploy(0, &http_spec("six", 6)).await;
    let tasks = c.wait_serving(0, "six", 6, CONVERGE).await;
    let ids: BTreeSet<String> = c.node_ids().into_iter().collect();
    for t in &tasks {
        assert!(
            ids.contains(t.node.as_deref().unwrap_or("")),
            "placed on a cluster node: {t:?}"
        );
    }
    assert_eq!(c.running_containers("six"), container_ids(&tasks));

    let leader = wait_for("a leader", CONVERGE, || leader_seen_by(&c, 0)).await;
    let victim = node_with_tasks(&c, &tasks, &leader);
    let victim_id = c.nodes[victim].id.clone();
    let api = if victim == 0 { 1 } else { 0 };
    c.nodes[victim].kill9();

    let moved = wait_for("six replicas off the killed node", CONVERGE, || async {
        let tasks = c.serving_now(api, "six", 6).await?;
        match tasks
            .iter()
            .find(|t| t.node.as_deref() == Some(victim_id.as_str()))
        {
            Some(t) => Err(format!("{} still on {victim_id}", t.id)),
            None => Ok(tasks),
        }
    })
    .await;
    assert_eq!(moved.len(), 6);

    c.start(victim).await;
    wait_for(
        "the returning node's stale containers to be removed",
        CONVERGE,
        || async {
            let tasks = c.serving_now(api, "six", 6).await?;
            let assigned: BTreeSet<String> = tasks
                .iter()
                .filter(|t| t.node.as_deref() == Some(victim_id.as_str()))
                .filter_map(|t| t.container_id.clone())
                .collect();
            let on_victim = c.containers_on(victim);
            let all = c.running_containers("six");
            if on_victim == assigned && all == container_ids(&tasks) {
                Ok(())
            } else {
                Err(format!(
                    "on {victim_id}: {on_victim:?}, assigned {assigned:?}, all {all:?}"
                ))
            }
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_leader_moves_the_controllers() {
    let mut c = TestCluster::three("leader").await;
    let leader = wait_for("a leader", CONVERGE, || leader_seen_by(&c, 0)).await;
    let li = c
        .nodes
        .iter()
        .position(|n| n.id == leader)
        .unwrap_or_else(|| panic!("leader {leader} is not a cluster node"));
    c.nodes[li].kill9();
    let other = (li + 1) % 3;
    let new_leader = wait_for("a new leader", CONVERGE, || async {
        match leader_seen_by(&c, other).await {
            Ok(l) if l != leader => Ok(l),
            Ok(l) => Err(format!("still {l}")),
            Err(e) => Err(e),
        }
    })
    .await;
    assert_ne!(new_leader, leader);
    c.deploy(other, &http_spec("after", 2)).await;
    let tasks = c.wait_serving(other, "after", 2, CONVERGE).await;
    assert!(
        tasks
            .iter()
            .all(|t| t.node.as_deref() != Some(leader.as_str())),
        "nothing runs on the dead node: {tasks:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarted_agent_adopts_its_containers() {
    let mut c = TestCluster::three("agent").await;
    c.deploy(0, &http_spec("stay", 6)).await;
    let tasks = c.wait_serving(0, "stay", 6, CONVERGE).await;
    let leader = wait_for("a leader", CONVERGE, || leader_seen_by(&c, 0)).await;
    let agent = node_with_tasks(&c, &tasks, &leader);
    let api = c.nodes.iter().position(|n| n.id == leader).unwrap_or(0);
    let before = c.containers_on(agent);
    assert!(!before.is_empty());

    c.restart_sigterm(agent).await;
    c.deploy(api, &http_spec("probe", 3)).await;
    c.wait_serving(api, "probe", 3, CONVERGE).await;
    let after = c.wait_serving(api, "stay", 6, CONVERGE).await;
    assert_eq!(
        container_ids(&after),
        container_ids(&tasks),
        "same container ids"
    );
    let stay_on_agent: BTreeSet<String> = c
        .containers_on(agent)
        .intersection(&c.running_containers("stay"))
        .cloned()
        .collect();
    assert_eq!(
        stay_on_agent, before,
        "the agent kept exactly its containers"
    );
}

/// A false death: a node frozen (SIGSTOP) well past detection and the grace period is marked
/// down and its replicas run elsewhere; when it thaws, its original containers are still the
/// same ones, they are kept, and the surplus replacements are stopped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_node_keeps_its_containers_and_the_surplus_is_stopped() {
    let c = TestCluster::three("frozen").await;
    c.deploy(0, &http_spec("keep", 6)).await;
    let tasks = c.wait_serving(0, "keep", 6, CONVERGE).await;
    let leader = wait_for("a leader", CONVERGE, || leader_seen_by(&c, 0)).await;
    let victim = node_with_tasks(&c, &tasks, &leader);
    let victim_id = c.nodes[victim].id.clone();
    let api = c.nodes.iter().position(|n| n.id == leader).unwrap_or(0);
    let originals = c.containers_on(victim);
    assert!(!originals.is_empty());

    c.nodes[victim].signal("STOP");
    wait_for(
        "six replicas serving off the frozen node",
        CONVERGE,
        || async {
            let serving = c.serving_now(api, "keep", 6).await?;
            match serving
                .iter()
                .find(|t| t.node.as_deref() == Some(victim_id.as_str()))
            {
                Some(t) => Err(format!("{} still counted on {victim_id}", t.id)),
                None => Ok(()),
            }
        },
    )
    .await;
    assert_eq!(
        c.containers_on(victim),
        originals,
        "frozen, nothing touched its containers"
    );
    c.nodes[victim].signal("CONT");

    wait_for(
        "the originals back in service, the surplus stopped",
        CONVERGE,
        || async {
            let serving = c.serving_now(api, "keep", 6).await?;
            let all = c.running_containers("keep");
            let on_victim: BTreeSet<String> = serving
                .iter()
                .filter(|t| t.node.as_deref() == Some(victim_id.as_str()))
                .filter_map(|t| t.container_id.clone())
                .collect();
            if on_victim == originals && all == container_ids(&serving) && all.len() == 6 {
                Ok(())
            } else {
                Err(format!(
                    "on {victim_id}: {on_victim:?} (originals {originals:?}), all {all:?}"
                ))
            }
        },
    )
    .await;
    assert_eq!(
        c.containers_on(victim),
        originals,
        "the same containers, never restarted"
    );
}

/// Every node stopped and started again, the bootstrap node first: every container is kept,
/// with the same ids.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarting_every_node_together_keeps_every_container() {
    let mut c = TestCluster::three("all").await;
    c.deploy(0, &http_spec("all", 6)).await;
    let tasks = c.wait_serving(0, "all", 6, CONVERGE).await;
    let before = c.running_containers("all");
    assert_eq!(before, container_ids(&tasks));
    for n in &mut c.nodes {
        n.kill9();
    }
    for i in 0..3 {
        c.start(i).await;
    }
    let after = wait_for("six replicas serving again", CONVERGE, || async {
        let serving = c.serving_now(0, "all", 6).await?;
        if container_ids(&serving) == before {
            Ok(serving)
        } else {
            Err(format!("{:?} != {before:?}", container_ids(&serving)))
        }
    })
    .await;
    assert_eq!(after.len(), 6);
    // And it stays that way: nothing is replaced once the cluster has settled.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(c.running_containers("all"), before);
}
