//! A three-node orchestrator composed from `orion-core`: one memory store, static membership, a
//! fake runtime per node and a scorer of our own, run by the library's real agent and controllers.
//! Swap any one for the real thing (RaftStore, gossip, Docker) and the rest does not change.
use std::sync::Arc;
use std::time::Duration;

use orion_core::membership::{Member, StaticMembership};
use orion_core::model::{Resources, ServiceSpec, Task, TaskState};
use orion_core::node::{Leadership, Node};
use orion_core::runtime::FakeRuntime;
use orion_core::scheduler::{ClusterView, NodeView, PlacementRequest, Scheduler, Scorer};
use orion_core::store::{ClusterStore, MemoryStore};
use tokio::sync::watch;

/// Our own scorer: prefer nodes in the "green" zone (renewable power).
#[derive(Debug)]
struct PreferGreen;

impl Scorer for PreferGreen {
    fn name(&self) -> &'static str {
        "prefer_green"
    }
    fn score(&self, _: &PlacementRequest<'_>, node: &NodeView, _: &ClusterView) -> f64 {
        f64::from(u8::from(node.node.zone() == Some("green")))
    }
}

const CAPACITY: Resources = Resources::new(2000, 4 << 30);

#[tokio::main]
async fn main() -> orion_core::Result<()> {
    let store = ClusterStore::new(MemoryStore::new());
    let zones = [("n1", "grey"), ("n2", "green"), ("n3", "green")];
    let member = |(id, zone): &(&str, &str)| Member::alive(*id, CAPACITY).with_label("zone", *zone);
    let members: Vec<Member> = zones.iter().map(member).collect();
    let (stop, shutdown) = watch::channel(false);
    let (mut running, mut leaders) = (Vec::new(), Vec::new());
    for (i, me) in members.iter().enumerate() {
        let peers = members.iter().filter(|m| m.id != me.id).cloned().collect();
        let membership = Arc::new(StaticMembership::new(me.clone(), peers)?);
        let custom = vec![(Box::new(PreferGreen) as Box<dyn Scorer>, 2.0)];
        let scheduler = Scheduler::default_pipeline_with(Default::default(), custom);
        // n1 leads: its controllers place tasks; every node's agent runs its own.
        let term = (i == 0).then_some(Leadership::Leader { term: 1 });
        let (leader_tx, leadership) = watch::channel(term.unwrap_or_default());
        let runtime = Arc::new(FakeRuntime::new());
        let builder = Node::builder(&*me.id, store.clone(), membership, runtime);
        let node = builder.scheduler(scheduler).leadership(leadership).build();
        running.push(tokio::spawn(node.run(shutdown.clone())));
        leaders.push(leader_tx);
    }
    let web = ServiceSpec::new("web", "nginx:alpine", 4);
    store.put_service(&web).await?;

    let mut converged = false;
    for _ in 0..200 {
        let tasks = store.list_tasks().await?;
        let running = tasks.iter().filter(|t| t.state == TaskState::Running);
        converged = running.count() == 4;
        if converged {
            let line = |t: &Task| println!("{} on {:?}: {}", t.id, t.node, t.state);
            tasks.iter().for_each(line);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = stop.send(true);
    for r in running {
        let _ = r.await;
    }
    assert!(converged, "4 replicas did not reach running within 10 s");
    Ok(())
}
