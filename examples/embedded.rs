//! An orchestrator composed from `orion-core`: memory store, static membership, fake runtime and
//! a scorer of our own. Swap any one for the real thing and the rest does not change.
use orion_core::membership::{Member, Membership, StaticMembership};
use orion_core::model::{Node, Resources, ServiceSpec, TaskState};
use orion_core::reconciler::{ReconcileInput, VersionedSpec, apply_plan, reconcile};
use orion_core::runtime::{ContainerSpec, FakeRuntime, Runtime};
use orion_core::scheduler::{ClusterView, NodeView, PlacementRequest, Scorer};
use orion_core::scheduler::{Scheduler, SchedulerConfig};
use orion_core::store::{ClusterStore, MemoryStore};

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

fn member(id: &str, zone: &str) -> Member {
    Member::alive(id, Resources::new(2000, 4 << 30)).with_label("zone", zone)
}

#[tokio::main]
async fn main() -> orion_core::Result<()> {
    let store = ClusterStore::new(MemoryStore::new());
    let peers = vec![member("n2", "green"), member("n3", "green")];
    let membership = StaticMembership::new(member("n1", "grey"), peers)?;
    let runtime = FakeRuntime::new();
    let custom = vec![(Box::new(PreferGreen) as Box<dyn Scorer>, 2.0)];
    let scheduler = Scheduler::default_pipeline_with(SchedulerConfig::default(), custom);

    for m in membership.members().await? {
        let mut node = Node::new(m.id, m.capacity);
        node.labels = m.labels;
        store.put_node(&node).await?;
    }
    let web = ServiceSpec::new("web", "nginx:alpine", 4);
    store.put_service(&web).await?;

    // One controller round: reconcile and commit the plan, then each agent starts its tasks.
    let state = store.load_state().await?;
    let s = &state.services[0];
    let specs = [VersionedSpec::new(s.spec.clone(), s.spec_version)];
    let (tasks, nodes, network) = (&state.tasks, &state.nodes, &state.network);
    let input = ReconcileInput {
        specs: &specs,
        tasks,
        nodes,
        network,
        now: 0,
    };
    let failed = apply_plan(&store, &reconcile(&input, &scheduler)).await;
    assert!(failed.is_empty(), "{failed:?}");
    for mut task in store.list_tasks().await? {
        let mut container = ContainerSpec::default();
        (container.name, container.image) = (task.id.clone(), web.image.clone());
        task.container_id = Some(runtime.create_and_start(&container).await?.id);
        task.transition(TaskState::Starting)?;
        task.transition(TaskState::Running)?;
        store.put_task(&task).await?;
        println!("{} on {:?}: {}", task.id, task.node, task.state);
    }
    Ok(())
}
