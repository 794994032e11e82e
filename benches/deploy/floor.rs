//! The engine floor: the same containers Orion's agent would make, created and started straight
//! through the Docker API (`DockerRuntime::create_and_start`: image check, create, start,
//! inspect), [`PARALLEL`] at a time, as the agent converges.

use std::time::{Duration, Instant};

use futures::StreamExt;
use orion_core::model::{Resources, ServiceSpec, Task};
use orion_core::node::container_spec;
use orion_core::runtime::{ContainerInfo, Runtime, labels};
use orion_runtime::DockerRuntime;

use super::{CPU_MILLICORES, CpuMode, Figures, MEMORY_BYTES, Sizes, support};

/// Containers started at once: the agent's bound.
pub const PARALLEL: usize = orion_core::node::MAX_PARALLEL_CONVERGE;

/// Removes every container labelled with the floor's node id, also on a panic.
struct Cleanup(String);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let ids = support::docker_ps_all(&[&format!("label={}={}", labels::NODE, self.0)]);
        if !ids.is_empty() {
            let _ = std::process::Command::new("docker")
                .args(["rm", "-f"])
                .args(&ids)
                .output();
        }
    }
}

async fn start_slots(
    docker: &DockerRuntime,
    spec: &ServiceSpec,
    node: &str,
    slots: std::ops::Range<usize>,
) -> Vec<ContainerInfo> {
    futures::stream::iter(slots)
        .map(|slot| async move {
            let task = Task::new(
                &spec.name,
                slot as u32,
                1,
                Resources::new(CPU_MILLICORES, MEMORY_BYTES),
            );
            let c = container_spec(spec, &task, node, "127.0.0.1");
            docker
                .create_and_start(&c)
                .await
                .unwrap_or_else(|e| panic!("floor: create and start {}: {e}", c.name))
        })
        .buffer_unordered(PARALLEL)
        .collect()
        .await
}

/// Deploy, scale and one replacement, straight through the engine.
pub async fn measure(sizes: Sizes, mode: CpuMode) -> Figures {
    let docker = DockerRuntime::connect().await.expect("the Docker engine");
    let node = format!("floor-{}", std::process::id());
    let _cleanup = Cleanup(node.clone());
    let mut spec: ServiceSpec =
        serde_json::from_str(&support::http_spec("floor", 1)).expect("spec");
    spec.resources.cpu_limit = mode.cpu_limit();

    let t = Instant::now();
    let first = start_slots(&docker, &spec, &node, 0..sizes.deploy).await;
    let deploy = t.elapsed();

    let t = Instant::now();
    start_slots(&docker, &spec, &node, sizes.deploy..sizes.scale_to).await;
    let scale = t.elapsed();

    // The floor of a replacement: the dead container removed and a new one started.
    support::docker_kill(&first[0].id);
    let t = Instant::now();
    docker.remove(&first[0].id).await.expect("remove");
    start_slots(&docker, &spec, &node, sizes.scale_to..sizes.scale_to + 1).await;
    let replace: Duration = t.elapsed();
    Figures {
        deploy,
        scale,
        replace,
    }
}
