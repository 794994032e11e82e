//! An orchestrator in one file: a memory store, static membership, a fake runtime and a scorer of
//! our own, composed from `orion-core`. Swap any one for the real thing (SledStore or RaftStore,
//! gossip, Docker) and the rest does not change.
use orion_core::membership::{Member, MemberState, Membership, StaticMembership};
use orion_core::model::{Node, NodeAddresses, Resources, ServiceSpec, TaskState};
use orion_core::reconciler::{ReconcileInput, VersionedSpec, apply_plan, reconcile};
use orion_core::runtime::{ContainerSpec, FakeRuntime, Runtime};
use orion_core::scheduler::{ClusterView, NodeView, PlacementRequest, Scheduler, SchedulerConfig, Scorer};
use orion_core::store::{ClusterStore, MemoryStore};

/// Our own scorer: prefer nodes in the "green" zone (renewable power), whatever else is true.
#[derive(Debug)]
struct PreferGreen;

impl Scorer for PreferGreen {
    fn name(&self) -> &'static str {
        "prefer_green"
    }
    fn score(&self, _: &PlacementRequest<'_>, node: &NodeView, _: &ClusterView) -> f64 {
        if node.node.zone() == Some("green") { 1.0 } else { 0.0 }
    }
}

fn member(id: &str, zone: &str) -> Member {
    let labels = [("zone".to_owned(), zone.to_owned())].into();
    let capacity = Resources::new(2000, 4 << 30);
    let (addresses, state, incarnation) = (NodeAddresses::default(), MemberState::Alive, 0);
    Member { id: id.into(), addresses, labels, capacity, state, incarnation }
}

#[tokio::main]
async fn main() -> orion_core::Result<()> {
    let store = ClusterStore::new(MemoryStore::new());
    let membership = StaticMembership::new(member("n1", "grey"), vec![member("n2", "green"), member("n3", "green")])?;
    let runtime = FakeRuntime::new();
    let scheduler = Scheduler::default_pipeline_with(SchedulerConfig::default(), vec![(Box::new(PreferGreen), 2.0)]);

    for m in membership.members().await? {
        store.put_node(&Node { labels: m.labels, ..Node::new(m.id, m.capacity) }).await?;
    }
    store.put_service(&ServiceSpec::new("web", "nginx:alpine", 4)).await?;

    // One controller round: reconcile, commit the plan, then let each "agent" start its tasks.
    let state = store.load_state().await?;
    let specs: Vec<_> = state.services.iter().map(|s| VersionedSpec::new(s.spec.clone(), s.spec_version)).collect();
    let input = ReconcileInput { specs: &specs, tasks: &state.tasks, nodes: &state.nodes, network: &state.network, now: 0 };
    let plan = reconcile(&input, &scheduler);
    assert!(apply_plan(&store, &plan).await.is_empty(), "every action applies");

    for task in store.list_tasks().await? {
        let spec = ContainerSpec { name: task.id.clone(), image: "nginx:alpine".into(), ..Default::default() };
        let container = runtime.create_and_start(&spec).await?;
        store.update_task(&task.id, |t| {
            t.transition(TaskState::Starting)?;
            t.transition(TaskState::Running)?;
            t.container_id = Some(container.id.clone());
            Ok(())
        }).await?;
    }
    for t in store.list_tasks().await? {
        println!("{:<24} {:<4} {}", t.id, t.node.as_deref().unwrap_or("-"), t.state);
    }
    let on_green = store.list_tasks().await?.iter().filter(|t| t.node.as_deref() != Some("n1")).count();
    println!("{on_green} of 4 replicas run in the green zone");
    Ok(())
}
